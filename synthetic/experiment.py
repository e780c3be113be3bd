"""What a named experiment is, and how one is run with a cache that cannot lie.

An :class:`Experiment` is a record of plain functions: a config (a JSON-able dict, small when
``quick``), ``run(config, progress, folder) -> results`` (the expensive part, cached on disk),
``claims(config, results) -> [Claim]``, and optionally ``figures`` and ``tables``. Results are a
nested mapping of arrays (``{"alpha1": {"forget_distance": ...}}``), saved as one ``.npz``.
Experiments never write files or print; :func:`run_cached` and ``paper_repro.py`` do.

A world names its functions as ``"module:function"`` strings, relative to the world's package
when they start with ``.`` (``run=".run:run_fig4"``): the registry then reads every world's
experiments without importing their code, and the cache key names the run's module without
importing it (:func:`code_version`).

**The cache key** of a result is its config plus the code it was computed with: a fingerprint
of the ``run`` function's module and of every project module it imports, transitively
(:func:`synthetic.store.code_fingerprint`), the JAX version and whether float64 was on. A run
module imports its world's data, models and measures and the shared layers it uses; it does
not import claims, figures or the report, so editing a threshold or a figure recomputes no
arrays, and editing one world's code recomputes only that world's experiments. Claims, figures
and tables are computed from the (cached) results on every run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Union

import jax

from synthetic import distributed, store

__all__ = ["Experiment", "resolve", "run_cached", "is_cached", "code_version", "with_seeds", "seeds_of"]

Results = dict
"""A nested mapping of names to numpy arrays (or to further such mappings)."""

Progress = Callable[[str], None]
Ref = Union[Callable, str]


def _silent(msg: str) -> None:
    pass


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A named experiment of the paper.

    Each function may be given as a callable or as ``"module:function"`` (a leading ``.``: a
    module of ``package``), imported only when it is needed.

    Attributes:
      name: the name used by ``paper_repro.py --only``.
      description: one line for ``--list`` and the report.
      config: ``quick -> config``; the config must be JSON-able and determine the result.
      run: ``(config, progress, folder) -> results``; ``folder`` is the cache folder (or
        ``None``) for experiments that keep artefacts such as trained models.
      claims: ``(config, results) -> [Claim]``.
      figures: ``(config, results) -> {name: Figure or Animation}``, or ``None``.
      tables: ``(config, results) -> {title: markdown}``: extra sections of the report (e.g.
        sample model outputs), or ``None``.
      cache: whether ``run``'s results are saved and reused (off for cheap experiments).
      cache_name: the name results are cached under (default ``name``); two experiments
        that read the same runs (figures 4 and 9) share it, so the runs happen once.
      float64: run with ``jax.enable_x64(True)`` (the paper's precision for the logistic
        and random-feature experiments); a scoped setting, restored afterwards.
      reference_seconds: how long a full (not quick), uncached run took on the machine the
        README's times come from; ``paper_repro.py`` scales it by this machine's pace to
        estimate the time left.
      package: the package relative references are resolved in (the registry sets the world's).
    """

    name: str
    description: str
    config: Callable[[bool], dict]
    run: Ref
    claims: Ref
    figures: Optional[Ref] = None
    tables: Optional[Ref] = None
    cache: bool = True
    cache_name: Optional[str] = None
    float64: bool = False
    reference_seconds: Optional[float] = None
    package: Optional[str] = None

    @property
    def world(self) -> str:
        """The world the experiment belongs to (the last part of its package), or ``""``."""
        return (self.package or "").rsplit(".", 1)[-1]

    def function(self, field: str) -> Optional[Callable]:
        """The callable behind ``field`` (``"run"``, ``"claims"``, ``"figures"``, ``"tables"``),
        importing its module if it is named by a string; ``None`` if the field is empty."""
        return resolve(getattr(self, field), self.package)


def _split_ref(ref: str, package: Optional[str]) -> tuple[str, str]:
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"a function reference must read 'module:function', got {ref!r}")
    if module.startswith("."):
        if not package:
            raise ValueError(f"relative reference {ref!r} needs the experiment's package")
        module = importlib.util.resolve_name(module, package)
    return module, attr


def resolve(ref: Optional[Ref], package: Optional[str] = None) -> Optional[Callable]:
    """The function ``ref`` names: ``ref`` itself if callable, else ``"module:function"``
    imported (a leading ``.`` is relative to ``package``)."""
    if ref is None or callable(ref):
        return ref
    module, attr = _split_ref(ref, package)
    fn = getattr(importlib.import_module(module), attr, None)
    if not callable(fn):
        raise ValueError(f"{module} has no function {attr!r}")
    return fn


def with_seeds(config: Any, seeds: int) -> Any:
    """A copy of ``config`` with every ``"seeds"`` entry, at any depth, set to ``seeds``.

    The number of seeds of an experiment is the ``seeds`` field of its config (figure 4 has
    one per alpha); an experiment without one is deterministic and left as it is.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive int, got {seeds!r}")
    if isinstance(config, dict):
        return {k: seeds if k == "seeds" else with_seeds(v, seeds) for k, v in config.items()}
    if isinstance(config, list):
        return [with_seeds(v, seeds) for v in config]
    return config


def seeds_of(config) -> list[int]:
    """Every ``"seeds"`` entry of ``config`` (empty for a deterministic experiment)."""
    if isinstance(config, dict):
        return [v for k, v in config.items() if k == "seeds"] + [
            s for k, v in config.items() if k != "seeds" for s in seeds_of(v)]
    if isinstance(config, list):
        return [s for v in config for s in seeds_of(v)]
    return []


def _run_module(exp: Experiment) -> str:
    if isinstance(exp.run, str):
        return _split_ref(exp.run, exp.package)[0]
    return exp.run.__module__


def _fingerprinted(exp: Experiment) -> tuple[list[str], list[str]]:
    """``(modules, files)`` whose code the cache key covers: the run's module, or the file of a
    run function defined outside the project (your own script)."""
    module = _run_module(exp)
    if store.is_project_module(module):
        return [module], []
    path = inspect.getsourcefile(sys.modules[module]) if module in sys.modules else None
    if path is None:
        raise ValueError(f"cannot fingerprint the code of experiment {exp.name!r}: no source file for "
                         f"module {module!r}; define its run function in a file")
    return [], [path]


def code_version(exp: Experiment) -> dict:
    """The code part of ``exp``'s cache key: a fingerprint of its ``run`` module and the project
    modules it imports, the JAX version, and whether float64 is on outside the experiment's own
    scope (``JAX_ENABLE_X64``: it changes float32 runs' bookkeeping).

    An experiment whose ``run`` lives outside the package (your own script) is fingerprinted
    by that script's source and the toolkit modules it imports.
    """
    modules, files = _fingerprinted(exp)
    return {"code": store.code_fingerprint(modules, files=files), **store.numeric_mode()}


def is_cached(exp: Experiment, config: dict, folder: Optional[Path]) -> bool:
    """Whether :func:`run_cached` would find ``exp``'s results for ``config`` in ``folder`` (a
    damaged entry counts as cached here; :func:`run_cached` finds out and recomputes)."""
    if not exp.cache or folder is None:
        return False
    return store.exists(folder, exp.cache_name or exp.name, config, version=code_version(exp))


def run_cached(exp: Experiment, config: dict, folder: Optional[Path], progress: Progress = _silent,
               on_unsaved: Callable[[str], None] = _silent) -> tuple[Results, bool]:
    """``exp.run(config)``, or its saved results from ``folder`` when config and code match.

    A damaged cache entry is reported through ``progress``, recomputed and replaced. Results
    that cannot be saved (a full disk, a folder turned read-only) are still returned: the
    failure is reported through ``progress`` and ``on_unsaved`` (one line), never raised.
    Returns:
      ``(results, from_cache)``.
    """
    name = exp.cache_name or exp.name
    use_cache = exp.cache and folder is not None
    version = code_version(exp) if use_cache else None
    sources = None
    if use_cache:  # process 0 reads the cache; in a distributed run it sends what it found to the others
        results = distributed.from_writer(lambda: store.load(folder, name, config, version=version,
                                                             on_problem=progress))
        if results is not None:
            return results, True
        modules, files = _fingerprinted(exp)
        sources = store.code_sources(modules, files=files)
        progress(f"computing ({store.explain_miss(folder, name, config, version, sources)})")
    run = exp.function("run")
    with jax.enable_x64(True) if exp.float64 else contextlib.nullcontext():
        results = run(config, progress, folder)
    if use_cache and distributed.is_writer():  # only process 0 writes
        try:
            store.save(folder, name, config, results, version=version, sources=sources)
        except OSError as err:  # a full disk: keep the computed results, say they are not cached
            why = store.one_line(err)
            progress(f"could not cache the results ({why}); this run uses them, the next one recomputes them")
            on_unsaved(f"results not cached: {why}")
    return results, False
