"""The experiments of section 4: figures 4, 9 and 3 and the grid search (the registry reads these)."""

from synthetic.experiment import Experiment
from synthetic.worlds.section4 import config

__all__ = ["EXPERIMENTS"]


def _fig4_config(quick: bool) -> dict:
    return {"alpha1": config.fig4_config(1.0, quick), "alpha0": config.fig4_config(0.0, quick)}


EXPERIMENTS = (
    Experiment(
        name="fig4",
        description="figure 4: six methods of table 1, alpha = 1 and 0, 5 seeds x 2000 GD steps",
        config=_fig4_config,
        run=".run:run_fig4",
        claims=".claims:fig4_claims",
        figures=".figures:fig4_figures",
        float64=True,
        reference_seconds=25,
    ),
    Experiment(
        name="fig9",
        description="figure 9: forget KL along the figure-4 runs (appendix B.1)",
        config=_fig4_config,
        run=".run:run_fig4",
        claims=".claims:fig9_claims",
        figures=".figures:fig9_figures",
        cache_name="fig4",
        float64=True,
        reference_seconds=1,  # after fig4, whose runs it reads
    ),
    Experiment(
        name="fig3",
        description="figure 3: NPO with beta in {0.01, ..., 1} approaches GA (Proposition 1)",
        config=config.fig3_config,
        run=".run:run_grid_experiment",
        claims=".claims:fig3_claims",
        figures=".figures:fig3_figures",
        float64=True,
        reference_seconds=8,
    ),
    Experiment(
        name="gridsearch",
        description="learning-rate x beta grid search of section 4, best setting per method",
        config=config.gridsearch_config,
        run=".run:run_grid_experiment",
        claims=".claims:gridsearch_claims",
        figures=".figures:gridsearch_figures",
        float64=True,
        reference_seconds=27,
    ),
)
