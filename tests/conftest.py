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

Compiled programs are kept on disk between runs (JAX's persistent compilation cache, as
``synthetic.compile_cache`` sets it up for ``paper_repro.py``), in ``.pytest_cache/jax`` of the
project, through JAX's environment variables so that the ``paper_repro.py`` subprocesses of the
tests share it: a second run of the suite loads instead of compiling. A cache location set
already in the environment is kept; delete the folder to start cold.
"""

import gc
import math
import os

_FAST_COMPILE = (
    "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false "
    "--xla_cpu_parallel_codegen_split_count=1"
)
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FAST_COMPILE}".strip()

os.environ.setdefault("NPO_DEVICES", "1")

if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):  # before JAX is imported: it reads them then
    from pathlib import Path

    from synthetic.compile_cache import environment

    for _name, _value in environment(Path(__file__).resolve().parents[1] / ".pytest_cache" / "jax").items():
        os.environ.setdefault(_name, _value)

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


# Seconds each test file takes in the suite on the 2-core development machine (the sum of its
# tests' ``--durations=0`` times, setup included, rounded; measured 2026-12-07). pytest-xdist
# hands whole files to its workers (``--dist loadfile``) in the order they are collected
# (``--no-loadscope-reorder``, pyproject.toml), so the files are collected slowest first: no long
# file then starts near the end while the other worker idles, and the short ones fill in. A file
# not listed counts as slow and goes first: list a new file here with its time.
FILE_SECONDS = {
    "test_distributed.py": 45, "test_notebook.py": 44, "test_tofu_collapse.py": 40, "test_tutorial.py": 29,
    "test_markov.py": 28, "test_repro.py": 28, "test_tofu_mini.py": 20, "test_devices.py": 18, "test_readme.py": 17,
    "test_engine.py": 11, "test_tofu_lm.py": 10, "test_docs.py": 9, "test_tutorial_lm.py": 9, "test_figures.py": 7,
    "test_objectives.py": 7, "test_theorem2.py": 7, "test_compile_cache.py": 6, "test_transformer.py": 6,
    "test_imports.py": 4, "test_section4.py": 4, "test_thm2.py": 4, "test_tutorial_race.py": 4,
    "test_validation.py": 4, "test_memory.py": 3, "test_symbolic.py": 3, "test_tofu_collapse_figures.py": 3,
    "test_data.py": 2, "test_methods.py": 2, "test_cache.py": 1, "test_claims.py": 1, "test_layout.py": 1,
    "test_markov_data.py": 1, "test_models.py": 1, "test_optim.py": 1, "test_store.py": 1,
    "test_tofu_ablation.py": 1, "test_tofu_data.py": 1, "test_tofu_eval.py": 1,
}  # fmt: skip


def pytest_collection_modifyitems(config, items):
    # A stable sort: the tests of a file stay together and in their order.
    items.sort(key=lambda item: -FILE_SECONDS.get(item.path.name, math.inf))
