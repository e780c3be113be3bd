"""The ``thm2`` experiment: Theorem 2 in numbers, GA's linear vs NPO's logarithmic divergence.

``config``: forget sets, steps and the claims' tolerances. ``run``: gradient descent on the
logistic model in parameter space (the engine) and as appendix A.2's b-recursion, the
predictions of :mod:`theory.theorem2`, and the section-2.1 softmax toy. ``claims``: the
measured laws against the predicted ones.
"""

from synthetic.experiments.base import Experiment
from synthetic.experiments.thm2 import claims, config, run

__all__ = ["EXPERIMENT"]

EXPERIMENT = Experiment(
    name="thm2",
    description="Theorem 2 in numbers: GA's linear vs NPO's logarithmic divergence, logistic model",
    config=config.thm2_config,
    run=run.run_thm2,
    claims=claims.thm2_claims,
    float64=True,
    reference_seconds=28,
)
