"""The registry of named experiments, discovered from the worlds under :mod:`synthetic.worlds`.

Each world is a package ``synthetic/worlds/<world>/`` whose ``experiments.py`` declares
``EXPERIMENTS``, a tuple of :class:`~synthetic.experiment.Experiment` records naming their
functions as strings (``run=".run:run_fig4"``). :func:`experiments` imports those declarations
only, never a world's run, claims or figures, and returns every experiment by name:
``paper_repro.py`` runs them in that order. A new world needs no edit here: drop its folder in
``synthetic/worlds/`` (see ``docs/extending.md``).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import pkgutil

from synthetic.experiment import Experiment

__all__ = ["WORLD_ORDER", "experiments", "worlds"]

WORLD_ORDER = ("symbolic", "section4", "thm2", "markov", "tofu_mini", "tutorial")
"""The order the toolkit's worlds run in: the paper's order (theory, section 4, Theorem 2, the
language models), the tutorial last. Worlds not listed follow, by name."""

PACKAGE = "synthetic.worlds"


def worlds() -> list[str]:
    """The world packages under :mod:`synthetic.worlds` that declare experiments, in run order."""
    package = importlib.import_module(PACKAGE)
    found = [m.name for m in pkgutil.iter_modules(package.__path__) if m.ispkg and not m.name.startswith("_")]
    declared = [w for w in found if importlib.util.find_spec(f"{PACKAGE}.{w}.experiments") is not None]
    return sorted(declared, key=lambda w: (WORLD_ORDER.index(w) if w in WORLD_ORDER else len(WORLD_ORDER), w))


@functools.lru_cache(maxsize=1)
def experiments() -> dict[str, Experiment]:
    """Every experiment of every world by name, in run order (each world's in its declared order).

    Raises:
      ValueError: two experiments share a name, or a world's ``EXPERIMENTS`` is not a tuple of
        :class:`~synthetic.experiment.Experiment`.
    """
    out: dict[str, Experiment] = {}
    for world in worlds():
        package = f"{PACKAGE}.{world}"
        declared = getattr(importlib.import_module(f"{package}.experiments"), "EXPERIMENTS", None)
        if not isinstance(declared, tuple) or not all(isinstance(e, Experiment) for e in declared):
            raise ValueError(f"{package}.experiments.EXPERIMENTS must be a tuple of Experiment records")
        for exp in declared:
            if exp.name in out:
                raise ValueError(f"experiment {exp.name!r} is declared by worlds {out[exp.name].world!r} and {world!r}")
            out[exp.name] = exp if exp.package else dataclasses.replace(exp, package=package)
    return out
