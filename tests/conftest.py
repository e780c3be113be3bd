"""Strict JAX settings for the whole suite, and a scoped float64 fixture.

The suite runs as a user's process does: float64 off unless a test asks for it (the
``x64`` fixture, a scoped ``jax.enable_x64``), so it also checks that the toolkit's entry
points request float64 themselves where they need it. Silent rank promotion and implicit
dtype promotion (float32 + float64, int + float arrays) raise, so mixed precision shows.

The tests compile many small programs (about 1400) and run each briefly, so compile time
dominates. Two XLA CPU flags cut it: backend optimisation level 0, and the older loop emitters
instead of the fusion emitters (``--xla_cpu_use_fusion_emitters=false``); measured on the
development machine, the suite's total XLA compile time fell from 116 s (defaults) to 92 s
(level 0) to 43 s (both). A third, ``--xla_cpu_parallel_codegen_split_count=1``, compiles each
program's machine code in one piece on the worker's own thread instead of splitting it over
the cores, which pytest-xdist already keeps busy with one worker each: the suite's CPU time
fell by about 9% (170 s to 155 s on the 2-core development machine). The arithmetic is the
same IEEE arithmetic, rounded in places in another order; ``paper_repro.py`` and the
benchmarks compile with XLA's defaults.

Each worker process keeps JAX's single CPU device (``NPO_DEVICES=1``; pytest-xdist already
runs one worker per core): the multi-device paths run in subprocesses of their own
(``tests/test_devices.py``, the sharding test of ``tests/test_engine.py``).
"""

import gc
import os

_FAST_COMPILE = (
    "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false "
    "--xla_cpu_parallel_codegen_split_count=1"
)
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FAST_COMPILE}".strip()

os.environ.setdefault("NPO_DEVICES", "1")

import pytest  # noqa: E402


@pytest.fixture
def x64():
    """Run the test with float64 enabled (``jax.enable_x64``), restored afterwards."""
    import jax

    with jax.enable_x64(True):
        yield


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    # JAX in every process that runs tests (imported after XLA_FLAGS: the flags are read when
    # the backend starts); pytest-xdist's controller runs none, and starts its workers sooner
    # without importing it (about a second).
    if not config.pluginmanager.hasplugin("dsession"):
        import jax

        jax.config.update("jax_numpy_rank_promotion", "raise")
        jax.config.update("jax_numpy_dtype_promotion", "strict")
    # At exit pytest sweeps for unraisable exceptions with five full gc.collect() passes, each
    # slow over the heap a JAX process builds (about 0.7 s here). One full pass, then freeze
    # the survivors, makes the other four cheap; exceptions raised in a finalizer still show.
    # Cleanups run last registered first: trylast registers this one after pytest's sweep, so
    # that it runs before it.
    config.add_cleanup(_collect_once_then_freeze)


def _collect_once_then_freeze():
    gc.collect()
    gc.freeze()
