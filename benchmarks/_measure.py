"""Timing helpers shared by the benchmark scripts (``import _measure`` from a script in this folder)."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp


def timed(fn, repeats: int, *, warmup: bool = True) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` (its results awaited), after one untimed
    call to compile and warm up unless ``warmup=False``."""
    if warmup:
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return times


def matmul_gflops(dtype, repeats: int, n: int) -> list[float]:
    """GFLOP/s (``2 n^3`` FLOPs per call) of each timed ``n x n`` ``jnp.dot`` in ``dtype``."""
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), dtype)
    f = jax.jit(jnp.dot)
    return [2 * n**3 / t / 1e9 for t in timed(lambda: f(a, b), repeats)]
