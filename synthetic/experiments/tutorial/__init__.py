"""The ``tutorial`` experiment: every figure and the animation of ``docs/tutorial.md``.

``config``: the settings of each step of the tutorial. ``run``: the numbers (the objectives,
the 2-D race of GA and NPO, Theorem 2's first-passage times, figure 4, a small transformer's
collapse). ``claims``: two consistency checks of the race and of Theorem 2's table against
their closed forms. The figures and the GIF are drawn by :mod:`figures.tutorial`.
"""

from synthetic.experiments.base import Experiment
from synthetic.experiments.tutorial import claims, config, run

__all__ = ["EXPERIMENT"]

EXPERIMENT = Experiment(
    name="tutorial",
    description="the tutorial's figures and animation (docs/tutorial.md): GA's runaway against NPO's, in small",
    config=config.tutorial_config,
    run=run.run_tutorial,
    claims=claims.tutorial_claims,
    tables=claims.answers_table,
    reference_seconds=20,
)
