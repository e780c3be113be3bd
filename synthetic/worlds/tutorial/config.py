"""Config of the ``tutorial`` experiment: the settings of every step of ``docs/tutorial.md``.

The tutorial's code blocks use exactly these numbers, so that the figures ``python
paper_repro.py --only tutorial`` draws are the figures a learner gets by running the page.
Everything is small: the whole experiment takes seconds.
"""

from __future__ import annotations

from synthetic.worlds.section4.config import fig4_config
from synthetic.worlds.tofu_mini.config import tofu_mini_config

__all__ = ["tutorial_config", "tutorial_fig4_config", "NEWTON_FIT"]

NEWTON_FIT = {"solver": "newton", "steps": 30, "learning_rate": 0.05}
"""The tutorial fits figure 4's reference and retrained models with Newton's method: the same
minimiser as the paper's 20000 gradient-descent steps (the fit's gradient norm is ~1e-15), in
a fraction of the time."""

def tutorial_fig4_config() -> dict:
    """Figure 4 as the tutorial runs it: the paper's data, features, table 1 and 2000 unlearning
    steps, with one seed and a Newton fit (:data:`NEWTON_FIT`)."""
    out = {}
    for name, alpha in (("alpha1", 1.0), ("alpha0", 0.0)):
        config = fig4_config(alpha, quick=True)
        out[name] = {**config, "seeds": 1, "fit": dict(NEWTON_FIT)}
    return out


def tutorial_config(quick: bool = False) -> dict:
    """The experiment's JSON config (``quick`` changes nothing: the tutorial is small already)."""
    models = tofu_mini_config(quick=True, variant="today")  # the earlier miniature's toy: short answers, from scratch
    return {
        # sections 1-2: the objectives and NPO's weight against log pi, pi_ref = 1/2
        "curves": {"betas": [0.1, 0.5, 1.0, 2.0], "log_pi_min": -12.0, "points": 241, "ref_p": 0.5},
        # section 3: logistic regression in 2-D, GA against NPO on a handful of forget points
        "race": {"seed": 0, "per_class": 12, "n_forget": 4, "beta": 1.0, "eta": 1.0, "steps": 1000, "every": 10},
        # section 4: Theorem 2's first-passage times
        "thm2": {"seed": 0, "n_f": 8, "d": 16, "betas": [0.5, 1.0, 2.0], "eta": 1.0, "steps": 100_000,
                 "distances": [1, 2, 4, 8, 16, 32]},
        # section 5: figure 4
        "fig4": tutorial_fig4_config(),
        # section 6: the earlier TOFU in miniature at its quick size (20 authors, a one-layer model)
        "lm": {"corpus": models["corpus"], "model": models["model"], "train": models["train"], "split": 10,
               # [method, beta]: GA, NPO at the paper's beta 0.1 and at 1, NPO+RT at 0.1
               "methods": [["GA", 1.0], ["NPO", 0.1], ["NPO", 1.0], ["NPO+RT", 0.1]], "learning_rate": 1e-3,
               "warmup": 5, "steps": 60, "every": 5, "batch_size": 4, "weight_decay": 0.01, "eval_cap": 20,
               "greedy_cap": 6},
    }
