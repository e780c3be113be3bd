"""Strict JAX settings for the whole suite (STYLE.md, "Tests")."""

import jax

# The theory and synthetic experiments run in float64 (PAPER.md section 4; DESIGN.md).
jax.config.update("jax_enable_x64", True)
# Silent rank promotion hides shape bugs (e.g. (n,) + (n, 1) -> (n, n)).
jax.config.update("jax_numpy_rank_promotion", "raise")
