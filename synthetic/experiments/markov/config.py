"""Config of the ``markov`` experiment: the transformer on the SimNPO study's Markov chains."""

from __future__ import annotations

from synthetic.data.markov import MarkovConfig
from synthetic.models.transformer import TransformerConfig

__all__ = ["MARKOV_METHODS", "markov_config", "data_config"]

MARKOV_METHODS = ("GA", "GA+RT", "GA+KL", "NPO", "NPO+RT", "NPO+KL", "SimNPO", "SimNPO+RT")
"""The methods of the 50-step runs."""


def markov_config(quick: bool = False) -> dict:
    """The experiment's JSON config (``quick``: a 2-layer width-32 model, 10x less data,
    2 seeds, 400 long-run steps; about half a minute)."""
    data = MarkovConfig()
    model = TransformerConfig(vocab_size=data.n_states, context=data.length)
    train = {"learning_rate": 5e-4, "batch_size": 128, "epochs": 5, "weight_decay": 0.01}
    unlearn = {
        "methods": list(MARKOV_METHODS), "seeds": 5, "steps": 50, "learning_rate": 5e-4,
        "batch_size": 4, "beta": 1.0, "weight_decay": 0.01, "n_eval": 32,
    }  # fmt: skip
    long = {
        "betas": [0.5, 1.0, 2.0], "steps": 2000, "learning_rate": 1e-3, "n_forget": 4,
        "n_records": 40, "fit_decades_from": 100,
    }  # fmt: skip
    if quick:
        data = MarkovConfig(n_retain=1000, n_forget1=500, n_forget2=500)
        model = TransformerConfig(vocab_size=data.n_states, context=data.length, layers=2, width=32, heads=2)
        train = {**train, "batch_size": 32, "learning_rate": 2e-3}
        unlearn = {**unlearn, "seeds": 2, "n_eval": 16}
        long = {**long, "steps": 400, "n_records": 25, "fit_decades_from": 40}
    return {
        "data": data.to_json(),
        "model": model.to_json(),
        "train": train,
        "reference_forget2": False,
        "data_seed": 0,
        "model_seed": 0,
        "unlearn": unlearn,
        "long": long,
    }


def data_config(config: dict) -> MarkovConfig:
    """The :class:`~synthetic.data.markov.MarkovConfig` of a :func:`markov_config`."""
    d = dict(config["data"])
    d["blocks"] = tuple(tuple(b) for b in d["blocks"])
    return MarkovConfig(**d)
