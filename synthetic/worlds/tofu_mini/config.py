"""Configs of TOFU in miniature's experiments: the corpus, the models and their training
(``tofu_mini_models``), and the unlearning study on them (``tofu_mini``).

The study's models are those of ``tofu_mini_models`` (:func:`tofu_mini_config`, the ``models``
entry; shared through the model cache). The unlearning recipe is the paper's, scaled to this
model: optax AdamW with linear warm-up over the first epoch and linear decay to 0, a fixed
number of epochs over the forget set, minibatches of ``batch_size`` forget questions (and as
many retain questions for the methods that use them), beta 0.1 (the paper's TOFU setting;
SimNPO its own 2.5), retain weight 1.

The peak learning rate, 1e-3 (a fifth of the models' training rate), was chosen with the data
in view, from a scan of 5e-3, 1e-3 and 3e-4 on the 10% split: at 5e-3 every method, NPO+RT
included, collapses within an epoch, and at 3e-4 no method's forget quality leaves 1e-6 in 5
epochs. The guidance map spans this range, so a reader sees what the choice does. The claims'
thresholds live in :mod:`.claims`.
"""

from __future__ import annotations

import dataclasses

from synthetic.worlds.tofu_mini.data import SPLITS, TofuConfig

__all__ = ["tofu_mini_config", "corpus_config", "with_corpus", "tofu_collapse_config", "METHODS", "RETAIN_METHODS",
           "method_beta"]


def tofu_mini_config(quick: bool = False) -> dict:
    """The models' JSON config (``quick``: 20 authors, a tiny model; seconds)."""
    corpus = TofuConfig()
    model = {"layers": 2, "width": 64, "heads": 4, "mlp_ratio": 4}
    train = {"learning_rate": 5e-3, "batch_size": 64, "epochs": 30, "warmup": 0.05, "weight_decay": 0.01}
    if quick:
        corpus = TofuConfig(n_authors=20, relations=3, n_real_authors=6, n_countries=4)
        model = {"layers": 1, "width": 32, "heads": 2, "mlp_ratio": 2}
        train = {**train, "learning_rate": 1e-2, "batch_size": 16, "epochs": 40}
    return {"corpus": corpus.to_json(), "model": model, "train": train, "splits": list(SPLITS),
            "retrain_seeds": [0, 1]}


def corpus_config(config: dict) -> TofuConfig:
    """The :class:`~.data.TofuConfig` of a models config."""
    return TofuConfig(**config["corpus"])


def with_corpus(config: dict, **changes) -> dict:
    """``config`` with corpus fields replaced (e.g. ``n_authors=40``)."""
    return {**config, "corpus": dataclasses.asdict(dataclasses.replace(corpus_config(config), **changes))}


METHODS = ("GA", "GA+RT", "GA+KL", "IDK+RT", "DPO", "DPO+RT", "KTO", "KTO+RT", "NPO", "NPO+RT", "NPO+KL",
           "SimNPO", "SimNPO+RT")
"""Every named method of the study, in the order of the figures' legends."""

RETAIN_METHODS = tuple(m for m in METHODS if "+" in m)
"""The methods that read retain data: the only ones run at 20%, 50% and 90% (the paper's figure 8)."""


def method_beta(config: dict, name: str) -> float:
    """The beta of method ``name`` in ``config`` (``betas`` overrides ``beta`` per method)."""
    u = config["unlearn"]
    return float(u.get("betas", {}).get(name, u["beta"]))


def tofu_collapse_config(quick: bool = False) -> dict:
    """The experiment's JSON config (``quick``: the models' quick size, 2 seeds, small grids)."""
    unlearn = {
        "learning_rate": 1e-3, "epochs": 5, "warmup_epochs": 1, "batch_size": 4, "weight_decay": 0.01,
        "beta": 0.1, "betas": {"SimNPO": 2.5, "SimNPO+RT": 2.5}, "seeds": 3, "records_per_epoch": 1,
        "main_records_per_epoch": 2, "eval_cap": 40, "greedy_cap": 20,
    }  # fmt: skip
    config = {
        "models": tofu_mini_config(quick),
        "unlearn": unlearn,
        "methods": list(METHODS),
        "splits": [1, 5, 10],
        "retain_methods": list(RETAIN_METHODS),
        "large_splits": [20, 50, 90],
        "guidance": {
            "split": 10, "method": "NPO+RT", "betas": [0.03, 0.1, 0.3, 1.0], "learning_rates": [3e-4, 1e-3, 3e-3],
            "retain_weights": [0.0, 0.5, 1.0, 2.0, 5.0], "records_per_epoch": 1,
        },
        "long": {"split": 1, "betas": [0.1, 1.0], "steps": 2000, "learning_rate": 0.01, "n_records": 30,
                 "fit_decades_from": 100},
        "samples": 4,
    }  # fmt: skip
    if quick:
        config["unlearn"] = {**unlearn, "seeds": 2, "learning_rate": 3e-3}
        config["splits"], config["large_splits"] = [10], [50]
        config["guidance"] = {**config["guidance"], "betas": [0.1, 1.0], "learning_rates": [1e-3, 3e-3],
                              "retain_weights": [0.0, 1.0, 2.0]}
        config["long"] = {**config["long"], "split": 10, "steps": 300, "n_records": 15, "fit_decades_from": 30}
    return config
