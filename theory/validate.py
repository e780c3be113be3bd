"""Argument checks shared by the toolkit: each raises ``ValueError`` naming the argument.

Traced values (inside ``jit``/``vmap``) cannot be inspected; the value checks let them
through, and the public entry points validate before tracing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["check_positive", "check_nonnegative", "check_broadcastable", "check_same_shape", "check_int"]



def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_positive(value, name: str) -> None:
    """Raise ``ValueError`` unless every entry of a concrete ``value`` is finite and > 0.

    Traced values (inside ``jit``/``vmap``) cannot be inspected and are let through; the
    public entry points validate before tracing.
    """
    if _is_concrete(value):
        v = np.asarray(value, dtype=float)
        if not np.all(np.isfinite(v) & (v > 0)):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def check_nonnegative(value, name: str) -> None:
    """Raise ``ValueError`` unless every entry of a concrete ``value`` is finite and >= 0."""
    if _is_concrete(value):
        v = np.asarray(value, dtype=float)
        if not np.all(np.isfinite(v) & (v >= 0)):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def check_broadcastable(name: str, value, shape) -> None:
    """Raise ``ValueError`` naming ``name`` if ``value`` does not broadcast to ``shape``."""
    try:
        out = jnp.broadcast_shapes(jnp.shape(value), tuple(shape))
    except ValueError:
        out = None
    if out != tuple(shape):
        raise ValueError(f"{name} must broadcast to shape {tuple(shape)}, got shape {jnp.shape(value)}")


def check_same_shape(**arrays) -> None:
    """Raise ``ValueError`` naming the arguments if the arrays do not share one shape."""
    shapes = {name: jnp.shape(a) for name, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{n}={s}" for n, s in shapes.items())
        raise ValueError(f"arguments must have the same shape, got {listed}")


def check_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an ``int``; ``ValueError`` unless it is an integer (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
