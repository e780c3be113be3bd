"""The optimizers of every recipe the toolkit follows, as optax ``GradientTransformation``s.

* :data:`SGD`: full-batch gradient descent (the paper's section-4 and Theorem-2 optimizer), its
  learning rate injected per setting by the engine.
* :func:`warmup_decay_adamw`: optax's AdamW with a linear warm-up and a linear decay to 0 (the
  NPO paper's TOFU recipe, and TOFU in miniature's training), the peak learning rate fixed or
  injected per setting.
* :func:`transformers_adamw`: the AdamW of Hugging Face ``transformers`` (``transformers.AdamW``,
  the optimizer of the SimNPO study's code), which differs from :func:`optax.adamw` in where
  ``eps`` goes and in its defaults.

Each constructor that the engine or a jitted training step receives returns the same object for
the same arguments (memoised), so a program compiles once per setting.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

__all__ = ["SGD", "warmup_decay_adamw", "transformers_adamw", "TransformersAdamWState"]

SGD = optax.inject_hyperparams(optax.sgd)(learning_rate=1.0)
"""Full-batch gradient descent; each setting's learning rate is injected by the engine
(``hyperparams={"learning_rate": [...]}`` of :func:`synthetic.engine.unlearn`)."""


def _warmup_decay(peak, warmup: int, total: int):
    """The learning rate rises linearly from 0 to ``peak`` over ``warmup`` steps (at least 1), then
    falls linearly to 0 at step ``total``."""
    warmup = max(int(warmup), 1)
    return optax.join_schedules(
        [optax.linear_schedule(0.0, peak, warmup), optax.linear_schedule(peak, 0.0, max(int(total) - warmup, 1))],
        [warmup])


@functools.lru_cache(maxsize=None)
def warmup_decay_adamw(warmup: int, total: int, *, weight_decay: float,
                       learning_rate: Optional[float] = None) -> optax.GradientTransformation:
    """:func:`optax.adamw` with a linear warm-up over ``warmup`` steps and a linear decay to 0 at
    step ``total``.

    With ``learning_rate`` the peak is that number (a training recipe); without it the peak is
    an injected hyperparameter, ``learning_rate``, that the engine sets per setting (the schedule
    is then ``peak x shape(step)`` with the shape peaking at 1).
    """
    if learning_rate is not None:
        return optax.adamw(_warmup_decay(float(learning_rate), warmup, total), weight_decay=float(weight_decay))
    shape = _warmup_decay(1.0, warmup, total)

    def make(learning_rate):
        return optax.adamw(lambda count: learning_rate * shape(count), weight_decay=float(weight_decay))

    return optax.inject_hyperparams(make)(learning_rate=1.0)


class TransformersAdamWState(NamedTuple):
    """``count``: int32 number of steps taken; ``mu``, ``nu``: first and second moments (same
    structure and dtypes as the parameters)."""

    count: jax.Array
    mu: optax.Updates
    nu: optax.Updates


def _is_zero(x) -> bool:
    """``True`` only for a literal (Python number) zero; a traced value is never known to be 0."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == 0


def _wide(dtype):
    """``dtype`` if at least 32-bit, else float32 (the arithmetic dtype of a leaf's step)."""
    return dtype if jnp.finfo(dtype).bits >= 32 else jnp.dtype(jnp.float32)


def transformers_adamw(learning_rate, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-6,
                       weight_decay: float = 0.0) -> optax.GradientTransformation:
    """The AdamW of ``transformers`` (with ``correct_bias=True``), step ``t = 1, 2, ...``::

        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
        p <- p - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
        p <- p - lr wd p                       (on the updated p; nothing when wd = 0)

    The update returned is the change of ``p`` (``optax.apply_updates(p, u)`` is the new ``p``).
    ``eps`` is added to the *un-bias-corrected* ``sqrt(v)``, so early steps with small
    gradients are smaller than :func:`optax.adamw`'s (which adds ``eps`` to
    ``sqrt(v / (1 - b2^t))``), and the defaults are the library's: ``eps = 1e-6``,
    ``weight_decay = 0``. ``learning_rate`` is a number or an optax schedule (called with the
    number of steps already taken, as optax does). Works under :func:`jax.jit` and with
    :func:`optax.inject_hyperparams` (every hyperparameter may be a traced array). Moments and
    updates keep the parameters' dtypes. ``update`` needs ``params`` unless ``weight_decay`` is
    a literal 0.
    """

    def init(params):
        return TransformersAdamWState(
            jnp.zeros([], jnp.int32), jax.tree.map(jnp.zeros_like, params), jax.tree.map(jnp.zeros_like, params)
        )

    def update(grads, state, params=None):
        decay = not _is_zero(weight_decay)
        if decay and params is None:
            raise ValueError("transformers_adamw: update needs params when weight_decay is not a literal 0")
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        count = optax.safe_int32_increment(state.count)
        # Moments stay in the state's dtype (a float64 gradient or hyperparameter never promotes them).
        mu = jax.tree.map(lambda m, g: (b1 * m + (1 - b1) * g).astype(m.dtype), state.mu, grads)
        nu = jax.tree.map(lambda v, g: (b2 * v + (1 - b2) * jnp.square(g)).astype(v.dtype), state.nu, grads)

        def cast(x, dt):
            return jnp.asarray(x).astype(dt)

        def adam(m, v):
            # In at least float32 (a bfloat16 step count or bias correction would be coarse);
            # 1 - b^t = -expm1(t log1p(-(1 - b))) is accurate even when b^t is near 1.
            dt = _wide(m.dtype)
            t = count.astype(dt)
            bc1 = -jnp.expm1(t * jnp.log1p(-cast(1 - b1, dt)))
            bc2 = -jnp.expm1(t * jnp.log1p(-cast(1 - b2, dt)))
            step = cast(lr, dt) * jnp.sqrt(bc2) / bc1
            return (-step * m.astype(dt) / (jnp.sqrt(v.astype(dt)) + cast(eps, dt))).astype(m.dtype)

        def decayed(u, p):  # p_new = (p + u) (1 - lr wd), so the total change is u - lr wd (p + u)
            dt = _wide(u.dtype)
            new_p = p.astype(dt) + u.astype(dt)
            return (u.astype(dt) - cast(lr, dt) * cast(weight_decay, dt) * new_p).astype(u.dtype)

        updates = jax.tree.map(adam, mu, nu)
        if decay:
            updates = jax.tree.map(decayed, updates, params)
        return updates, TransformersAdamWState(count, mu, nu)

    return optax.GradientTransformation(init, update)
