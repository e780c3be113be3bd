"""The ``thm2`` experiment: Theorem 2 in numbers, GA's linear vs NPO's logarithmic divergence."""

from synthetic.experiment import Experiment
from synthetic.worlds.thm2 import config

__all__ = ["EXPERIMENTS"]

EXPERIMENTS = (
    Experiment(
        name="thm2",
        description="Theorem 2 in numbers: GA's linear vs NPO's logarithmic divergence, logistic model",
        config=config.thm2_config,
        run=".run:run_thm2",
        claims=".claims:thm2_claims",
        figures=".figures:thm2_figures",
        float64=True,
        reference_seconds=28,
    ),
)
