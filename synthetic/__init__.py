"""Synthetic experiments of PAPER.md section 4 (and the Theorem-2 and transformer studies).

Importing this package turns on JAX's float64 support: the paper's reference code for the
logistic and random-feature experiments is float64, and the theory checks compare two
implementations to 1e-8. Arrays that should stay float32 (the transformer) say so.
"""

import jax

jax.config.update("jax_enable_x64", True)
