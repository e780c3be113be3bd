"""JAX's persistent compilation cache: a second run loads its compiled programs instead of compiling.

Most of a short run, and of the test suite, is XLA compiling the experiments' programs; JAX can
keep them on disk (its persistent compilation cache, which works on CPU as on GPU) and a later
process with the same program, JAX version and devices loads them. As with the device split
(:mod:`synthetic.devices`), importing the toolkit never switches it on: the entry point does,
before its first computation. ``paper_repro.py`` keeps the programs under its output folder's
cache (``<out>/cache/jax``), the tests under ``.pytest_cache/jax`` in the project::

    from synthetic.compile_cache import use_compilation_cache
    use_compilation_cache("results/cache/jax")

The cache only ever saves time: a missing or empty folder means compiling as usual, and a damaged
entry is reported by JAX as a warning and compiled again (its result is the same). Delete the
folder to clear it. A cache location the user set already (``JAX_COMPILATION_CACHE_DIR`` or
``jax.config.update("jax_compilation_cache_dir", ...)``) is left as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

from synthetic.store import write_problem

__all__ = ["use_compilation_cache", "environment", "MIN_COMPILE_SECONDS"]

MIN_COMPILE_SECONDS = 0.0
"""Programs that compiled faster than this are not saved. JAX's default is 1 s; the toolkit's
programs mostly compile in well under a second, and together they are most of a short run's
time: measured on two test files, a warm rerun took 36 s with programs over 0.1 s saved and
33 s with every program saved (47 s and 42 s cold)."""


def _settings(folder: Union[str, Path], min_compile_seconds: float) -> dict:
    """JAX's configuration of a cache in ``folder``: its location, and every program saved
    that compiled in at least ``min_compile_seconds``, whatever its size."""
    return {"jax_compilation_cache_dir": str(folder),
            "jax_persistent_cache_min_compile_time_secs": float(min_compile_seconds),
            "jax_persistent_cache_min_entry_size_bytes": 0}


def environment(folder: Union[str, Path], min_compile_seconds: float = MIN_COMPILE_SECONDS) -> dict[str, str]:
    """The same cache as environment variables, for processes that JAX has not started in yet (a
    test suite's workers, a benchmark's subprocesses): JAX reads them when it is imported."""
    return {name.upper(): str(value) for name, value in _settings(folder, min_compile_seconds).items()}


def use_compilation_cache(folder: Union[str, Path], min_compile_seconds: float = MIN_COMPILE_SECONDS) -> bool:
    """Keep compiled programs in ``folder`` (created if missing) from now on.

    Returns ``True`` if the cache is on there, ``False`` if nothing changed: the user chose a
    cache location already, or ``folder`` cannot be created or written (compiling then works
    as without a cache; the caller may say so).
    """
    import jax  # here, not at import: environment() is for processes that import JAX later

    if jax.config.jax_compilation_cache_dir or write_problem(Path(folder)) is not None:
        return False
    for name, value in _settings(folder, min_compile_seconds).items():
        jax.config.update(name, value)
    return True
