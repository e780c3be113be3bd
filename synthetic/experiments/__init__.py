"""The registry of named experiments, one folder each (config, run, claims).

``paper_repro.py`` runs what :data:`REGISTRY` holds, in its order; ``figures.FIGURES`` draws
them. An experiment is an :class:`~synthetic.experiments.base.Experiment`; to add one, write
its folder and add it here (see ``docs/architecture.md``).
"""

from synthetic.experiments import markov, section4, symbolic, thm2, tofu_collapse, tofu_mini, tutorial
from synthetic.experiments.base import Experiment, code_version, is_cached, run_cached, seeds_of, with_seeds

__all__ = ["REGISTRY", "Experiment", "run_cached", "is_cached", "code_version", "with_seeds", "seeds_of"]

REGISTRY: dict[str, Experiment] = {
    exp.name: exp
    for exp in (symbolic.EXPERIMENT, *section4.EXPERIMENTS, thm2.EXPERIMENT, markov.EXPERIMENT, tofu_mini.EXPERIMENT,
                tofu_collapse.EXPERIMENT, tutorial.EXPERIMENT)
}
"""Every experiment by name, in the order ``paper_repro.py`` runs them."""
