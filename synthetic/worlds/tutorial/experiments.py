"""The ``tutorial`` experiment: every figure and the animation of ``docs/tutorial.md``."""

from synthetic.experiment import Experiment
from synthetic.worlds.tutorial import config

__all__ = ["EXPERIMENTS"]

EXPERIMENTS = (
    Experiment(
        name="tutorial",
        description="the tutorial's figures and animation (docs/tutorial.md): GA's runaway against NPO's, in small",
        config=config.tutorial_config,
        run=".run:run_tutorial",
        claims=".claims:tutorial_claims",
        figures=".figures:all_figures",
        tables=".claims:answers_table",
        reference_seconds=34,
    ),
)
