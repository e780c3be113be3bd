"""The section-4 pipeline on arrays you supply: fit (optionally), unlearn a grid, record.

:func:`unlearning_pipeline` is the public entry point for your own data: give it forget and
retain training sets, evaluation inputs, the uninformed labels, optionally a random-feature
matrix ``W`` (without it the model is plain logistic regression on ``x``) and optionally
the reference and retrained parameters (without them both are fitted, as in the paper).
It runs every requested setting as one jitted, vmapped, sharded call of the engine and
returns plain numpy arrays. Everything runs in float64 (``jax.enable_x64`` around the work).

:func:`unlearn_binary` is the same recipe on stacked seeds, used by the section-4
experiments: the binary model's loss inputs (:data:`~synthetic.models.logistic.BINARY_INPUTS`),
full-batch gradient descent (``optax.sgd``) and the section-4 metrics (:data:`METRICS`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from synthetic import engine
from synthetic.worlds.section4.data import Dataset
from synthetic.engine.fit import SOLVERS
from synthetic.optim import SGD
from synthetic.models.logistic import BINARY_INPUTS, binary_batch, logistic_log_probs, random_features
from theory.methods import METHODS, Method, as_methods, get_method, method_loss
from theory.objectives import kl_divergence
from theory.validate import as_float_vector, as_real_numpy, check_finite, check_int, check_labels, check_positive

__all__ = [
    "METRICS",
    "Problem",
    "problem_from_features",
    "random_features_problem",
    "binary_metrics",
    "unlearn_binary",
    "unlearning_pipeline",
]

METRICS = ("forget_distance", "retain_distance", "forget_kl", "loss", "param_distance")
"""What :func:`unlearn_binary` records: the section-4 distances ``E KL(pi_retr || pi_theta)`` on
the evaluation forget and retain sets, the forget KL ``E_FG KL(pi_ref || pi_theta)`` of
appendix B, the method's training loss and ``||theta - theta_ref||_2``."""

@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Problem:
    """A binary unlearning problem on fixed features (a stacked one has a leading seed axis).

    Attributes:
      forget, y_forget: forget training features ``(n_f, F)`` and labels ``(n_f,)``.
      y_idk: the uninformed label per forget example, ``(n_f,)``.
      retain, y_retain: retain training features and labels.
      eval_forget, eval_retain: evaluation features (labels are not needed: the metrics
        compare whole predictive distributions).
    """

    forget: jax.Array
    y_forget: jax.Array
    y_idk: jax.Array
    retain: jax.Array
    y_retain: jax.Array
    eval_forget: jax.Array
    eval_retain: jax.Array


def problem_from_features(features, data: Dataset) -> Problem:
    """Apply a feature map to every input set of ``data`` (identity for plain logistic)."""
    return Problem(
        forget=features(data.x_forget),
        y_forget=data.y_forget,
        y_idk=data.y_idk,
        retain=features(data.x_retain),
        y_retain=data.y_retain,
        eval_forget=features(data.x_eval_forget),
        eval_retain=features(data.x_eval_retain),
    )


def random_features_problem(data: Dataset, w: jax.Array) -> Problem:
    """The section-4 problem: features ``ReLU(W x)`` of every set of ``data``."""
    return problem_from_features(lambda x: random_features(w, x), data)


def binary_metrics(theta, method: Method, ctx: dict) -> dict:
    """The :data:`METRICS` of ``theta`` (the engine's metrics function for the binary model)."""
    lp_ef = logistic_log_probs(theta, ctx["eval_forget"])
    lp_er = logistic_log_probs(theta, ctx["eval_retain"])
    return {
        "forget_distance": jnp.mean(kl_divergence(ctx["retr_eval_forget"], lp_ef)),
        "retain_distance": jnp.mean(kl_divergence(ctx["retr_eval_retain"], lp_er)),
        "forget_kl": jnp.mean(kl_divergence(ctx["ref_eval_forget"], lp_ef)),
        "loss": method_loss(method, BINARY_INPUTS.compute(theta, ctx["batch"], method.needs)),
        "param_distance": engine.param_distance(theta, ctx["theta_ref"]),
    }


@jax.jit
@jax.vmap
def _prepare(problem: Problem, theta_ref, theta_retr):
    """Per seed: the training batch and the evaluation context (reference values precomputed)."""
    batch = binary_batch(theta_ref, problem.forget, problem.y_forget, problem.retain, problem.y_retain,
                         y_idk=problem.y_idk)
    ctx = {
        "batch": batch,
        "eval_forget": problem.eval_forget,
        "eval_retain": problem.eval_retain,
        "ref_eval_forget": logistic_log_probs(theta_ref, problem.eval_forget),
        "retr_eval_forget": logistic_log_probs(theta_retr, problem.eval_forget),
        "retr_eval_retain": logistic_log_probs(theta_retr, problem.eval_retain),
        "theta_ref": theta_ref,
    }
    return batch, ctx


def unlearn_binary(problems: Problem, thetas_ref, thetas_retr, methods: Sequence[Method], learning_rates, *,
                   schedule: engine.Schedule, devices: Optional[list] = None,
                   progress: Optional[Callable[[str], None]] = None) -> dict[str, np.ndarray]:
    """Unlearn every setting ``(methods[c], learning_rates[c])`` from each seed's reference.

    Everything is checked before any work (the methods, the learning rates, finite parameters).

    Args:
      problems: stacked :class:`Problem`, leading axis = seeds ``S``.
      thetas_ref, thetas_retr: ``(S, F)`` reference and retrained parameters, finite.
      methods: ``C`` concrete methods (each with its beta) or registered names;
        learning_rates: ``C`` step sizes > 0 (a single number for a single method).
      schedule: the record steps (e.g. ``engine.Schedule.every(25, 2000)``).
      devices: devices to shard the runs over (default: all visible; see :func:`synthetic.engine.unlearn`).
      progress: called with the time left while the grid runs (see :func:`synthetic.engine.unlearn`).
    Returns:
      The engine's arrays: each of :data:`METRICS` ``(S, C, E)``, ``diverged_step (S, C)``,
      ``steps (E,)``.
    """
    methods = [m.validate() for m in as_methods(methods)]
    learning_rates = as_float_vector(learning_rates, "learning_rates", len(methods), per="method")
    check_positive(learning_rates, "learning_rates")
    check_finite(thetas_ref, "thetas_ref")
    check_finite(thetas_retr, "thetas_retr")
    batch, ctx = _prepare(problems, thetas_ref, thetas_retr)
    return engine.unlearn(
        BINARY_INPUTS, methods, SGD, thetas_ref, batch, schedule, binary_metrics, context=ctx,
        hyperparams={"learning_rate": learning_rates}, seeds=int(np.shape(thetas_ref)[0]),
        per_seed=("params", "data", "context"), devices=devices, progress=progress,
    )  # fmt: skip


def _as_2d(name: str, x) -> np.ndarray:
    x = as_real_numpy(x, name, "a non-empty 2-D array of numbers (examples, features)")
    if x.ndim != 2 or min(x.shape) < 1:
        raise ValueError(f"{name} must be a non-empty 2-D array (examples, features), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite")
    return x


def _as_labels(name: str, y, n: int) -> np.ndarray:
    check_labels(y, name, 2)
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), one label per example, got {y.shape}")
    return y.astype(np.int32)


def _as_params(name: str, theta, n_params: int) -> np.ndarray:
    theta = as_float_vector(theta, name, n_params, per="feature of the model")
    check_finite(theta, name)
    return theta


def _name_of(method: Method) -> str:
    """The registered name of ``method``, or ``"custom"``."""
    return next((name for name, m in METHODS.items() if m == method), "custom")


def unlearning_pipeline(
    *,
    x_forget,
    y_forget,
    x_retain,
    y_retain,
    x_eval_forget,
    x_eval_retain,
    y_idk,
    methods: Sequence[str | Method],
    learning_rates: Sequence[float] | float,
    betas: Optional[Sequence[float] | float] = None,
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

    Every argument is checked before any work: a ``ValueError`` naming the argument never
    comes after the fit.

    Args:
      x_forget, y_forget: forget training inputs ``(n_f, d)`` and labels in {0, 1}.
      x_retain, y_retain: retain training inputs ``(n_r, d)`` and labels.
      x_eval_forget, x_eval_retain: evaluation inputs for the distances (no labels needed).
      y_idk: the uninformed label per forget example (IDK and DPO's preferred answer).
      methods: one per setting: a registered method name (``theory.method_names()``) or a
        :class:`~theory.methods.Method` (your own); a single one counts as a list of one.
      learning_rates: gradient-descent step size per setting, each a finite number > 0 (a
        single number counts as a list of one).
      betas: beta per setting (default: each method's own; ignored by methods without one).
      w: optional random-feature matrix ``(n_features, d)``; the model is then
        ``sigma(theta^T ReLU(W x))``, else ``sigma(theta^T x)``.
      theta_ref, theta_retr: optional reference and retrained parameters, finite, one entry
        per feature: give both, or neither and both are fitted from zero
        (``fit_solver="newton"``, exact, the default, or ``"gd"``, the paper's 20000 steps at
        learning rate 0.05). One without the other is refused.
      steps, eval_every: unlearning steps and the recording interval (must divide steps).
      fit_solver, fit_steps, fit_learning_rate: the fit's solver (``"newton"`` or ``"gd"``),
        iterations (default 30 for Newton, 20000 for gradient descent) and gradient-descent
        step size (a finite number > 0).
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
    x = _checked_data(x_forget, x_retain, x_eval_forget, x_eval_retain, w)
    y_forget = _as_labels("y_forget", y_forget, len(x["forget"]))
    y_retain = _as_labels("y_retain", y_retain, len(x["retain"]))
    y_idk = _as_labels("y_idk", y_idk, len(x["forget"]))
    names, resolved, learning_rates = _checked_settings(methods, learning_rates, betas)
    schedule = engine.Schedule.every(eval_every, steps)
    n_params = x["forget"].shape[1] if w is None else x["w"].shape[0]
    if (theta_ref is None) != (theta_retr is None):
        given, missing = ("theta_ref", "theta_retr") if theta_retr is None else ("theta_retr", "theta_ref")
        raise ValueError(f"theta_ref and theta_retr must both be given, or neither (then both are fitted): "
                         f"got {given} without {missing}")
    if theta_ref is not None:
        theta_ref, theta_retr = _as_params("theta_ref", theta_ref, n_params), _as_params("theta_retr", theta_retr, n_params)
    if not isinstance(fit_solver, str) or fit_solver not in SOLVERS:
        raise ValueError(f"fit_solver must be one of {SOLVERS}, got {fit_solver!r}")
    fit_steps = (30 if fit_solver == "newton" else 20000) if fit_steps is None else check_int(fit_steps, "fit_steps")
    check_positive(fit_learning_rate, "fit_learning_rate")

    with jax.enable_x64(True):
        features = (lambda a: random_features(jnp.asarray(x["w"]), jnp.asarray(a))) if w is not None else jnp.asarray
        problem = Problem(
            forget=features(x["forget"]), y_forget=jnp.asarray(y_forget), y_idk=jnp.asarray(y_idk),
            retain=features(x["retain"]), y_retain=jnp.asarray(y_retain),
            eval_forget=features(x["eval_forget"]), eval_retain=features(x["eval_retain"]),
        )  # fmt: skip
        if theta_ref is None:
            ref, retr = engine.fit_reference_and_retrained(
                problem.forget, problem.y_forget, problem.retain, problem.y_retain,
                solver=fit_solver, steps=fit_steps, learning_rate=fit_learning_rate,
            )  # fmt: skip
            theta_ref, theta_retr = ref.theta, retr.theta
            if not (np.all(np.isfinite(theta_ref)) and np.all(np.isfinite(theta_retr))):
                raise ValueError("the reference and retrained fits on x_forget and x_retain did not stay finite: "
                                 "their logits overflow float64; scale the inputs (or w) down")
            grad_norms = (np.asarray(ref.grad_norm), np.asarray(retr.grad_norm))
        else:
            theta_ref, theta_retr = jnp.asarray(theta_ref), jnp.asarray(theta_retr)
            grad_norms = (np.array(np.nan), np.array(np.nan))
        run = unlearn_binary(jax.tree.map(lambda a: a[None], problem), theta_ref[None], theta_retr[None], resolved,
                             learning_rates, schedule=schedule)
    out = {name: run[name][0] for name in METRICS}
    out.update(
        diverged_step=run["diverged_step"][0],
        steps=run["steps"],
        theta_ref=np.asarray(theta_ref),
        theta_retr=np.asarray(theta_retr),
        ref_grad_norm=grad_norms[0],
        retr_grad_norm=grad_norms[1],
        setting_method=np.array(names),
        setting_learning_rate=learning_rates,
        setting_beta=np.array([float(m.beta) for m in resolved]),
    )
    return out


def _checked_data(x_forget, x_retain, x_eval_forget, x_eval_retain, w) -> dict[str, np.ndarray]:
    """The input arrays as float64, checked (2-D, finite, the same number of columns; ``w`` too)."""
    x = {"forget": _as_2d("x_forget", x_forget), "retain": _as_2d("x_retain", x_retain),
         "eval_forget": _as_2d("x_eval_forget", x_eval_forget), "eval_retain": _as_2d("x_eval_retain", x_eval_retain)}
    d = x["forget"].shape[1]
    for name in ("retain", "eval_forget", "eval_retain"):
        if x[name].shape[1] != d:
            raise ValueError(f"x_{name} must have {d} columns like x_forget, got {x[name].shape[1]}")
    if w is not None:
        x["w"] = _as_2d("w", w)
        if x["w"].shape[1] != d:
            raise ValueError(f"w must have shape (n_features, {d}), got {x['w'].shape}")
    return x


def _checked_settings(methods, learning_rates, betas) -> tuple[list[str], list[Method], np.ndarray]:
    """``(names, methods with their betas, learning rates)`` of the settings, checked."""
    # a list first: a generator would be used up by the check and then be empty
    methods = [methods] if isinstance(methods, (str, Method)) else list(methods)
    as_methods(methods)  # a ValueError naming methods[k] for an entry neither a Method nor a registered name
    learning_rates = as_float_vector(learning_rates, "learning_rates", len(methods), per="method")
    check_positive(learning_rates, "learning_rates")
    if betas is not None:
        betas = as_float_vector(betas, "betas", len(methods), per="method")
        check_positive(betas, "betas")
    resolved = []
    for k, m in enumerate(methods):
        beta = None if betas is None else float(betas[k])
        if isinstance(m, Method):
            resolved.append(m if beta is None else m.replace(beta=beta))
        else:
            resolved.append(get_method(m) if beta is None else get_method(m, beta=beta))
    names = [m if isinstance(m, str) else _name_of(m) for m in methods]
    return names, resolved, learning_rates
