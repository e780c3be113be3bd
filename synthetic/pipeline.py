"""The section-4 pipeline on arrays you supply: fit (optionally), unlearn a grid, record.

:func:`unlearning_pipeline` is the public entry point for your own data: give it forget and
retain training sets, evaluation inputs, the uninformed labels, optionally a random-feature
matrix ``W`` (without it the model is plain logistic regression on ``x``) and optionally
the reference and retrained parameters (without them both are fitted, as in the paper).
It runs every requested setting as one jitted, vmapped, sharded call and returns plain
numpy arrays.
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from synthetic import engine
from synthetic.models import random_features
from theory.methods import get_method

__all__ = ["unlearning_pipeline"]


def _as_2d(name: str, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or min(x.shape) < 1:
        raise ValueError(f"{name} must be a non-empty 2-D array (examples, features), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite")
    return x


def _as_labels(name: str, y, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), one label per example, got {y.shape}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError(f"{name} must hold labels in {{0, 1}}, got values {np.unique(y)[:5]}")
    return y.astype(np.int32)


def unlearning_pipeline(
    *,
    x_forget,
    y_forget,
    x_retain,
    y_retain,
    x_eval_forget,
    x_eval_retain,
    y_idk,
    methods: Sequence[str],
    learning_rates: Sequence[float],
    betas: Optional[Sequence[float]] = None,
    w=None,
    theta_ref=None,
    theta_retr=None,
    steps: int = 2000,
    eval_every: int = 25,
    fit_solver: str = "newton",
    fit_steps: Optional[int] = None,
    fit_learning_rate: float = 0.05,
) -> dict[str, np.ndarray]:
    """Unlearn with each setting ``(methods[c], learning_rates[c], betas[c])`` and record.

    Args:
      x_forget, y_forget: forget training inputs ``(n_f, d)`` and labels in {0, 1}.
      x_retain, y_retain: retain training inputs ``(n_r, d)`` and labels.
      x_eval_forget, x_eval_retain: evaluation inputs for the distances (no labels needed).
      y_idk: the uninformed label per forget example (IDK and DPO's preferred answer).
      methods: method names (see ``theory.methods.METHODS``), one per setting.
      learning_rates: gradient-descent step size per setting.
      betas: beta per setting (default 1.0 each; ignored by methods without one).
      w: optional random-feature matrix ``(n_features, d)``; the model is then
        ``sigma(theta^T ReLU(W x))``, else ``sigma(theta^T x)``.
      theta_ref, theta_retr: optional reference / retrained parameters. If either is
        missing, both are fitted from zero: ``fit_solver="newton"`` (exact, default) or
        ``"gd"`` (the paper's 20000 steps at learning rate 0.05).
      steps, eval_every: unlearning steps and the recording interval (must divide steps).
    Returns:
      Arrays with leading axis ``C`` (settings): ``forget_distance, retain_distance,
      forget_kl, loss, param_distance (C, E)`` and ``diverged_step (C,)``; plus ``steps
      (E,)``, ``theta_ref``, ``theta_retr``, ``ref_grad_norm`` and ``retr_grad_norm``
      (NaN when the parameters were given), and the settings table ``setting_method``,
      ``setting_learning_rate``, ``setting_beta``.

    Example::

        out = unlearning_pipeline(x_forget=xf, y_forget=yf, x_retain=xr, y_retain=yr,
                                  x_eval_forget=xef, x_eval_retain=xer, y_idk=yidk,
                                  methods=["GA", "NPO+RT"], learning_rates=[5e-4, 5e-3])
        out["retain_distance"][1, -1]   # NPO+RT's retain distance at the last step
    """
    x_forget, x_retain = _as_2d("x_forget", x_forget), _as_2d("x_retain", x_retain)
    x_eval_forget, x_eval_retain = _as_2d("x_eval_forget", x_eval_forget), _as_2d("x_eval_retain", x_eval_retain)
    d = x_forget.shape[1]
    for name, x in (("x_retain", x_retain), ("x_eval_forget", x_eval_forget), ("x_eval_retain", x_eval_retain)):
        if x.shape[1] != d:
            raise ValueError(f"{name} must have {d} columns like x_forget, got {x.shape[1]}")
    y_forget = _as_labels("y_forget", y_forget, len(x_forget))
    y_retain = _as_labels("y_retain", y_retain, len(x_retain))
    y_idk = _as_labels("y_idk", y_idk, len(x_forget))
    methods = list(methods)
    if not methods:
        raise ValueError("methods must name at least one method")
    if len(learning_rates) != len(methods):
        raise ValueError(f"learning_rates must have one entry per method ({len(methods)}), got {len(learning_rates)}")
    betas = [1.0] * len(methods) if betas is None else list(betas)
    if len(betas) != len(methods):
        raise ValueError(f"betas must have one entry per method ({len(methods)}), got {len(betas)}")
    resolved = [get_method(m, beta=b) for m, b in zip(methods, betas)]

    if w is not None:
        w = _as_2d("w", w)
        if w.shape[1] != d:
            raise ValueError(f"w must have shape (n_features, {d}), got {w.shape}")
        features = lambda x: np.asarray(random_features(jnp.asarray(w), jnp.asarray(x)))  # noqa: E731
    else:
        features = lambda x: x  # noqa: E731
    problem = engine.Problem(
        forget=jnp.asarray(features(x_forget)),
        y_forget=jnp.asarray(y_forget),
        y_idk=jnp.asarray(y_idk),
        retain=jnp.asarray(features(x_retain)),
        y_retain=jnp.asarray(y_retain),
        eval_forget=jnp.asarray(features(x_eval_forget)),
        eval_retain=jnp.asarray(features(x_eval_retain)),
    )
    n_params = problem.forget.shape[1]

    if theta_ref is None or theta_retr is None:
        if fit_steps is None:
            fit_steps = 30 if fit_solver == "newton" else 20000
        ref, retr = engine.fit_reference_and_retrained(
            problem, solver=fit_solver, steps=fit_steps, learning_rate=fit_learning_rate
        )
        theta_ref, theta_retr = ref.theta, retr.theta
        grad_norms = (np.asarray(ref.grad_norm), np.asarray(retr.grad_norm))
    else:
        theta_ref, theta_retr = (jnp.asarray(np.asarray(t, np.float64)) for t in (theta_ref, theta_retr))
        for name, t in (("theta_ref", theta_ref), ("theta_retr", theta_retr)):
            if t.shape != (n_params,):
                raise ValueError(f"{name} must have shape ({n_params},), got {t.shape}")
        grad_norms = (np.array(np.nan), np.array(np.nan))

    traj = engine.unlearn_grid(
        jax.tree.map(lambda a: a[None], problem), theta_ref[None], theta_retr[None], resolved, list(learning_rates),
        steps=steps, eval_every=eval_every,
    )
    out = {name: np.asarray(getattr(traj, name))[0] for name in engine.METRICS}
    out.update(
        diverged_step=np.asarray(traj.diverged_step)[0],
        steps=np.arange(0, steps + 1, eval_every),
        theta_ref=np.asarray(theta_ref),
        theta_retr=np.asarray(theta_retr),
        ref_grad_norm=grad_norms[0],
        retr_grad_norm=grad_norms[1],
        setting_method=np.array(methods),
        setting_learning_rate=np.asarray(learning_rates, float),
        setting_beta=np.asarray(betas, float),
    )
    return out
