"""Parameter pytrees: how far one model's parameters are from another's."""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["param_distance"]


def param_distance(params, ref) -> jax.Array:
    """``||params - ref||_2`` over every leaf of two pytrees of the same structure (the distance
    Theorem 2 bounds, for any model)."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(a - b)) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref))))
