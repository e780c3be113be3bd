"""The ``markov`` experiment: the SimNPO study's Markov-chain setting (both cases), and the collapse.

``config``: the study's data, model, optimizer and unlearning settings. ``run``: training (models
kept in the cache folder), the study's runs of both cases, the collapse runs and the long
gradient-descent runs, through the engine. ``claims``: GA's collapse, NPO's stability, the
divergence laws, the six claims of the study at matched retain KL.
"""

from synthetic.experiments.base import Experiment
from synthetic.experiments.markov import claims, config, run

__all__ = ["EXPERIMENT"]

EXPERIMENT = Experiment(
    name="markov",
    description="the SimNPO study's Markov chains, both cases: NPO vs SimNPO at matched retain KL, GA's collapse",
    config=config.markov_config,
    run=run.run_markov,
    claims=claims.markov_claims,
    # The parameters and optimizer state are float32 either way; float64 stays enabled, as the
    # experiment always ran, because GA's long run diverges and amplifies any rounding difference
    # of the engine's scalar bookkeeping.
    float64=True,
    reference_seconds=250,
)
