"""The ``markov`` experiment: the collapse on a small transformer, the SimNPO study's data.

``config``: the data, model, training and unlearning settings. ``run``: training (models
kept in the cache folder), the 50-step grid and the long gradient-descent runs, through the
engine. ``claims``: GA's collapse, NPO's stability, the divergence laws, SimNPO's bias.
"""

from synthetic.experiments.base import Experiment
from synthetic.experiments.markov import claims, config, run

__all__ = ["EXPERIMENT"]

EXPERIMENT = Experiment(
    name="markov",
    description="transformer on SimNPO's Markov chains: GA collapse, NPO's log divergence, NPO vs SimNPO",
    config=config.markov_config,
    run=run.run_markov,
    claims=claims.markov_claims,
    # The parameters are float32 either way; with float64 enabled, optax's scalar bookkeeping
    # (Adam's bias correction: a float raised to an int32 step count) is float64, as it was when
    # the experiment's numbers were first produced. GA's long run diverges and amplifies any
    # rounding difference, so the setting is kept for the numbers to stay reproducible.
    float64=True,
    reference_seconds=505,
)
