"""Figures: functions of an experiment's config and result arrays to matplotlib figures.

This package never trains and never samples data; it reads result arrays only.
:data:`FIGURES` maps each experiment of ``synthetic.experiments.REGISTRY`` that has figures
to a function ``(config, arrays) -> {figure name: Figure}`` (an entry may instead be a
``matplotlib.animation.Animation``, saved as a GIF); ``paper_repro.py`` saves them.
"""

from __future__ import annotations

from typing import Callable

from matplotlib.figure import Figure

from figures import markov, section4, thm2, tofu_collapse, tutorial
from synthetic.experiments.section4.claims import best_settings, setting_scores

__all__ = ["FIGURES"]


def _gridsearch(config, arrays):
    return {"gridsearch": section4.gridsearch(arrays, best_settings(arrays), scores=setting_scores(arrays),
                                              score_label="area under Pareto curve")}


FIGURES: dict[str, Callable[[dict, dict], dict[str, Figure]]] = {
    "fig4": lambda config, arrays: {"fig4": section4.fig4(arrays)},
    "fig9": lambda config, arrays: {"fig9": section4.fig9(arrays)},
    "fig3": lambda config, arrays: {"fig3": section4.fig3(arrays)},
    "gridsearch": _gridsearch,
    "thm2": thm2.thm2_figures,
    "markov": markov.all_figures,
    "tofu_mini": tofu_collapse.all_figures,
    "tutorial": tutorial.all_figures,
}
"""Experiment name -> ``(config, arrays) -> {figure name: Figure}``."""
