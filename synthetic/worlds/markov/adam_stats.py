"""What the ``transformers`` AdamW did at each step of an unlearning run, recorded beside the metrics.

The SimNPO study's optimizer divides each step by ``sqrt(v) + eps`` with ``v`` Adam's second
moment *before* bias correction and ``eps = 1e-6``. A method whose gradients are smaller than
``eps`` takes steps far below Adam's usual ``lr`` per coordinate; :func:`adam_tracker` measures
that per step and run (:data:`ADAM_STATS`), for the beta x eps map of the Markov study
(:mod:`.eps_map`). Kept apart from :mod:`.lm` so that editing it never retrains the models.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from synthetic import engine

__all__ = ["ADAM_STATS", "adam_tracker"]

F32 = jnp.float32

ADAM_STATS = ("grad_norm", "update_norm", "sqrt_nu_rms", "eps_dominated", "eps_share")
"""What :func:`adam_tracker` records after each step (0 at step 0), over every parameter
coordinate that has had a gradient (``nu > 0``; the position of the unused last token never
has one):

* ``grad_norm``: ``||g_t||_2``, the loss gradient of the step (all parameters);
* ``update_norm``: ``||theta_t - theta_{t-1}||_2``, the step actually taken;
* ``sqrt_nu_rms``: ``sqrt(mean(nu_t))``, the root-mean-square of ``sqrt(nu_t)``, Adam's
  second-moment scale before bias correction (the ``transformers`` AdamW adds ``eps`` to it);
* ``eps_dominated``: the fraction of coordinates where ``sqrt(nu_t) < eps`` (there the step
  is ``lr sqrt(1 - b2^t) m_hat / eps``: an SGD step scaled by 1/eps, not an Adam step);
* ``eps_share``: the mean over coordinates of ``eps / (sqrt(nu_t) + eps)``, the part of the
  denominator that is ``eps`` (0: full Adam steps; 1: eps-dominated).
"""


def _global_norm(tree):
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(F32))) for x in jax.tree.leaves(tree)))


def _adam_stats(state, params, step, method, ctx, seen) -> dict:
    opt_state = seen["opt_state"]
    nu = [x.astype(F32) for x in jax.tree.leaves(opt_state.inner_state.nu)]
    eps = jnp.asarray(opt_state.hyperparams["eps"], F32)
    n = jnp.maximum(sum(jnp.sum(x > 0) for x in nu), 1).astype(F32)
    root = [jnp.sqrt(x) for x in nu]
    return {
        "grad_norm": _global_norm(seen["grads"]),
        "update_norm": _global_norm(seen["updates"]),
        "sqrt_nu_rms": jnp.sqrt(sum(jnp.sum(x) for x in nu) / n),
        "eps_dominated": sum(jnp.sum((r < eps) & (x > 0)) for r, x in zip(root, nu)).astype(F32) / n,
        "eps_share": sum(jnp.sum(jnp.where(x > 0, eps / (r + eps), 0.0)) for r, x in zip(root, nu)) / n,
    }


def adam_tracker() -> engine.Tracker:
    """An :class:`~synthetic.engine.Tracker` recording :data:`ADAM_STATS` of each step, for
    the ``transformers`` AdamW built with ``optax.inject_hyperparams`` (:func:`adamw_injected`:
    ``eps`` is read from the injected hyperparameters)."""
    return _ADAM_TRACKER


_ADAM_TRACKER = engine.Tracker(
    init=lambda params, method, ctx: {k: jnp.zeros((), F32) for k in ADAM_STATS},
    update=_adam_stats, record=lambda state: state, final=lambda state: {}, sees_step=True,
)  # one object: the grids that use it compile once
