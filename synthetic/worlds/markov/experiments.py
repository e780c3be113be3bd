"""The ``markov`` experiment: the SimNPO study's Markov chains (both cases) and the collapse."""

from synthetic.experiment import Experiment
from synthetic.worlds.markov import config

__all__ = ["EXPERIMENTS"]

EXPERIMENTS = (
    Experiment(
        name="markov",
        description="the SimNPO study's Markov chains, both cases: NPO vs SimNPO at matched retain KL, SimNPO's beta x "
                    "the optimizer's eps, GA's collapse",
        config=config.markov_config,
        run=".run:run_markov",
        claims=".claims:markov_claims",
        figures=".figures:all_figures",
        tables=".eps_map:map_table",
        # The parameters and optimizer state are float32 either way; float64 stays enabled, as the
        # experiment always ran, because GA's long run diverges and amplifies any rounding difference
        # of the engine's scalar bookkeeping.
        float64=True,
        reference_seconds=480,
    ),
)
