"""What a named experiment is, and how one is run with a cache that cannot lie.

An :class:`Experiment` is plain functions: a config (JSON-able dict, small when ``quick``),
``run(config, progress, folder) -> arrays`` (the expensive part, cached on disk),
``claims(config, arrays) -> [Claim]``. Experiments never write files or print; figures are
registered separately (``figures/``), and :func:`run_cached` and ``paper_repro.py`` do the
writing.

The cache key of a result is its config plus a fingerprint of the code that computed it
(the source of the experiment's ``run`` module and of every project module it imports,
:func:`synthetic.store.code_fingerprint`): after a change to that code, a rerun recomputes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import sys
from pathlib import Path
from typing import Callable, Optional

import jax
import numpy as np

from synthetic import store

__all__ = ["Experiment", "run_cached", "is_cached", "code_version", "with_seeds", "seeds_of"]

Arrays = dict[str, np.ndarray]
Progress = Callable[[str], None]


def _silent(msg: str) -> None:
    pass


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A named experiment of the paper.

    Attributes:
      name: the name used by ``paper_repro.py --only``.
      description: one line for ``--list`` and the report.
      config: ``quick -> config``; the config must be JSON-able and determine the result.
      run: ``(config, progress, folder) -> {name: array}``; ``folder`` is the cache folder
        (or ``None``) for experiments that keep artefacts such as trained models.
      claims: ``(config, arrays) -> [Claim]``.
      cache: whether ``run``'s arrays are saved and reused (off for cheap experiments).
      cache_name: the name results are cached under (default ``name``); two experiments
        that read the same runs (figures 4 and 9) share it, so the runs happen once.
      float64: run with ``jax.enable_x64(True)`` (the paper's precision for the logistic
        and random-feature experiments); a scoped setting, restored afterwards.
      tables: ``(config, arrays) -> {title: markdown}``: extra sections of the report (e.g.
        sample model outputs), or ``None``.
      reference_seconds: how long a full (not quick), uncached run took on the machine the
        README's times come from; ``paper_repro.py`` scales it by this machine's pace to
        estimate the time left.
    """

    name: str
    description: str
    config: Callable[[bool], dict]
    run: Callable[[dict, Progress, Optional[Path]], Arrays]
    claims: Callable[[dict, Arrays], list]
    cache: bool = True
    cache_name: Optional[str] = None
    float64: bool = False
    tables: Optional[Callable[[dict, Arrays], dict]] = None
    reference_seconds: Optional[float] = None


def with_seeds(config: dict, seeds: int) -> dict:
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


def code_version(exp: Experiment) -> dict:
    """The code part of ``exp``'s cache key: a fingerprint of its ``run`` module and imports.

    An experiment whose ``run`` lives outside the package (your own script) is fingerprinted
    by that script's source and the toolkit modules it imports.
    """
    module = exp.run.__module__
    try:
        return {"code": store.code_fingerprint([module])}
    except ValueError:
        path = inspect.getsourcefile(sys.modules[module]) if module in sys.modules else None
        if path is None:
            raise ValueError(f"cannot fingerprint the code of experiment {exp.name!r}: no source file for "
                             f"module {module!r}; define its run function in a file") from None
        return {"code": store.code_fingerprint([], files=[path])}


def is_cached(exp: Experiment, config: dict, folder: Optional[Path]) -> bool:
    """Whether :func:`run_cached` would find ``exp``'s arrays for ``config`` in ``folder`` (a
    damaged entry counts as cached here; :func:`run_cached` finds out and recomputes)."""
    if not exp.cache or folder is None:
        return False
    return store.exists(folder, exp.cache_name or exp.name, config, version=code_version(exp))


def run_cached(
    exp: Experiment, config: dict, folder: Optional[Path], progress: Progress = _silent
) -> tuple[Arrays, bool]:
    """``exp.run(config)``, or its saved arrays from ``folder`` when config and code match.

    A damaged cache entry is reported through ``progress``, recomputed and replaced.
    Returns:
      ``(arrays, from_cache)``.
    """
    name = exp.cache_name or exp.name
    use_cache = exp.cache and folder is not None
    version = code_version(exp) if use_cache else None
    if use_cache:
        arrays = store.load(folder, name, config, version=version, on_problem=progress)
        if arrays is not None:
            return arrays, True
    with jax.enable_x64(True) if exp.float64 else contextlib.nullcontext():
        arrays = exp.run(config, progress, folder)
    if use_cache:
        store.save(folder, name, config, arrays, version=version)
    return arrays, False
