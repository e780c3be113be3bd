"""TOFU in miniature: the fictitious-facts corpus, its models and TOFU's measures, on a CPU.

``config``: corpus, model and training sizes, the claims' thresholds. ``run``: training the full
and retrained models (kept in the cache folder) and measuring them. ``claims``: the sanity
claims (forget quality reads knowledge; two retrained models are a baseline; the retrained
model guesses validly).
"""

from synthetic.experiments.base import Experiment
from synthetic.experiments.tofu_mini import claims, config, run

__all__ = ["EXPERIMENT"]

EXPERIMENT = Experiment(
    name="tofu_mini_models",
    description="TOFU in miniature: fictitious authors, the full and retrained models, TOFU's measures",
    config=config.tofu_mini_config,
    run=run.run_tofu_mini,
    claims=claims.tofu_mini_claims,
    reference_seconds=186,
)
