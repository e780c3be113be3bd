"""TOFU in miniature's three experiments: its models (``tofu_mini_models``), the unlearning
study on them (``tofu_mini``), and the ablation that finds which property of the setting decides
NPO's verdicts (``tofu_mini_ablation``)."""

from synthetic.experiment import Experiment
from synthetic.worlds.tofu_mini import config

__all__ = ["EXPERIMENTS"]

EXPERIMENTS = (
    Experiment(
        name="tofu_mini_models",
        description="TOFU in miniature: a pretrained model finetuned on fictitious authors, retrained models, TOFU's measures",
        config=config.tofu_mini_config,
        run=".models:run_models",
        claims=".claims:tofu_mini_claims",
        reference_seconds=377,
    ),
    Experiment(
        name="tofu_mini",
        description="TOFU in miniature: every method unlearns the full model; forget quality, utility, guidance maps",
        config=config.tofu_collapse_config,
        run=".study:run_study",
        claims=".claims:tofu_collapse_claims",
        figures=".figures:all_figures",
        tables=".claims:answers_table",
        reference_seconds=828,
    ),
    Experiment(
        name="tofu_mini_ablation",
        description="TOFU in miniature: which property of the setting decides NPO's verdicts, one switched at a time",
        config=config.ablation_config,
        run=".ablation:run_ablation",
        claims=".claims:ablation_claims",
        figures=".figures:ablation_figures",
        tables=".claims:ablation_table",
        reference_seconds=598,
    ),
)
