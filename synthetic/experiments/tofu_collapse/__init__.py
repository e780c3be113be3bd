"""The collapse on TOFU in miniature: every unlearning method, every forget size, and what to choose.

``config``: the recipe (the paper's, scaled: AdamW, warm-up, linear decay, fixed epochs), the
methods and splits, the guidance grid and the long runs. ``run``: the unlearning runs on the
engine and TOFU's measures. ``claims``: the paper's section-5 claims and the divergence laws.
"""

from synthetic.experiments.base import Experiment
from synthetic.experiments.tofu_collapse import claims, config, run

__all__ = ["EXPERIMENT"]

EXPERIMENT = Experiment(
    name="tofu_mini",
    description="TOFU in miniature: every method unlearns the full model; forget quality, utility, guidance maps",
    config=config.tofu_collapse_config,
    run=run.run_tofu_collapse,
    claims=claims.tofu_collapse_claims,
    tables=claims.answers_table,
    reference_seconds=537,
)
