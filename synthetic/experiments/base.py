"""What a named experiment is, and how one is run with caching (DESIGN.md "Experiments").

An :class:`Experiment` is four plain functions: a config (JSON-able dict, small when
``quick``), ``run(config, progress) -> arrays`` (the expensive part, cached on disk by a
hash of the config), ``claims(config, arrays) -> [Claim]`` and
``figures(config, arrays) -> {name: Figure}``. Experiments never write files or print;
:func:`run_cached` and ``paper_repro.py`` do.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from synthetic import store

Arrays = dict[str, np.ndarray]
Progress = Callable[[str], None]


def _no_figures(config, arrays):
    return {}


def _silent(msg: str) -> None:
    pass


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A named experiment of the paper.

    Attributes:
      name: the name used by ``paper_repro.py --only``.
      description: one line for ``--list`` and the report.
      config: ``quick -> config``; the config must be JSON-able and determine the result.
      run: ``(config, progress) -> {name: array}``.
      claims: ``(config, arrays) -> [Claim]``.
      figures: ``(config, arrays) -> {figure_name: matplotlib Figure}``.
      cache: whether ``run``'s arrays are saved and reused (off for cheap experiments).
      cache_name: the name results are cached under (default ``name``); two experiments
        that read the same runs (figures 4 and 9) share it, so the runs happen once.
      uses_folder: ``run`` also takes ``folder=`` (the cache folder, or ``None``), for
        experiments that keep intermediate artefacts such as trained models.
    """

    name: str
    description: str
    config: Callable[[bool], dict]
    run: Callable[[dict, Progress], Arrays]
    claims: Callable[[dict, Arrays], list]
    figures: Callable[[dict, Arrays], dict] = _no_figures
    cache: bool = True
    cache_name: Optional[str] = None
    uses_folder: bool = False


def run_cached(
    exp: Experiment, config: dict, folder: Optional[Path], progress: Progress = _silent
) -> tuple[Arrays, bool]:
    """``exp.run(config)``, or its saved arrays from ``folder`` when the config matches.

    Returns:
      ``(arrays, from_cache)``.
    """
    name = exp.cache_name or exp.name
    if exp.cache and folder is not None:
        arrays = store.load(folder, name, config)
        if arrays is not None:
            return arrays, True
    arrays = exp.run(config, progress, folder=folder) if exp.uses_folder else exp.run(config, progress)
    if exp.cache and folder is not None:
        store.save(folder, name, config, arrays)
    return arrays, False
