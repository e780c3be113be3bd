"""Config of the ``tofu_mini_models`` experiment: the corpus, the model, the training recipe."""

from __future__ import annotations

import dataclasses

from synthetic.data.tofu import SPLITS, TofuConfig

__all__ = ["tofu_mini_config", "corpus_config", "MAIN_SPLIT", "FQ_THRESHOLD", "VALID_MIN", "GUESS_MAX", "KNOWN_MIN"]

MAIN_SPLIT = 10
"""The split of the second retrained model (another seed), and of the sanity claims: TOFU's 10%."""

FQ_THRESHOLD = 0.05
"""Forget quality above this reads as "indistinguishable from the retrained model" (TOFU's reading)."""

VALID_MIN = 0.9
"""``tofu_mini.retrain_guesses_validly``: at least 90% of the retrained model's greedy forget answers
name a valid value of the asked relation (a round number fixed by the project) ..."""

GUESS_MAX = 0.3
"""... and at most 30% are right (chance is 1 / the relation's 14-20 values; a round bound fixed by
the project)."""

KNOWN_MIN = 0.99
"""The full model must answer its training questions (exact match) at least this often (the issue's aim)."""


def tofu_mini_config(quick: bool = False) -> dict:
    """The experiment's JSON config (``quick``: 20 authors, a tiny model; seconds)."""
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
    return TofuConfig(**config["corpus"])


def with_corpus(config: dict, **changes) -> dict:
    """``config`` with corpus fields replaced (e.g. ``n_authors=40``)."""
    return {**config, "corpus": dataclasses.asdict(dataclasses.replace(corpus_config(config), **changes))}
