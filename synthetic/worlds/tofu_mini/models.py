"""The ``tofu_mini_models`` experiment: train TOFU in miniature's models and measure them.

1. The corpus and the toolkit's transformer sized for it; the pretrained model (real authors and
   world facts), the full model (finetuned on every fictitious author) and one retrained model per
   split (the retain authors), plus a second retrained model from another seed for the 10% split
   (:func:`.lm.train_models`; saved under ``folder / "models"`` keyed by config and code, and
   reused). The earlier variant trains each model from scratch instead.
2. TOFU's per-question numbers (:func:`.scoring.question_numbers`): the forget set of every split
   for the full model and that split's retrained model; for the 10% split also the retain (at
   most ``RETAIN_SCORED`` questions), real-authors and world-facts sets of the full model and both
   retrained models, and of the pretrained model; and how much NPO's brake holds on each split
   (:func:`brake`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import jax.numpy as jnp
import numpy as np

from synthetic.models import transformer as tf
from synthetic.worlds.tofu_mini.lm import MAIN_SPLIT, train_models
from synthetic.worlds.tofu_mini.measures import UTILITY_SETS
from synthetic.worlds.tofu_mini.scoring import question_numbers, spread

__all__ = ["run_models", "brake", "RETAIN_SCORED", "TRAIN_SCORED"]

RETAIN_SCORED = 100
"""Retain questions scored per model (evenly spaced over the retain authors; TOFU scores 300)."""

TRAIN_SCORED = 200
"""Training questions whose greedy answers show that the full model learned its facts (evenly spaced)."""


def brake(full, retrained, corpus, pairs) -> dict[str, np.ndarray]:
    """How strongly NPO's weight brakes on ``pairs``: per question, the summed log-likelihood the
    full model has above the retrained one on the answer (``gap``, nats: what unlearning must
    remove to reach the retrained model), and NPO's weight at the retrained model's level,
    ``W = 2 / (1 + exp(beta gap))`` at the paper's beta 0.1 (``weight``; 1 at the start)."""
    enc = corpus.encode(pairs, length=tf.config_of(full).context)
    tokens, mask = jnp.asarray(enc.tokens), jnp.asarray(enc.answer_mask)
    gap = np.asarray(tf.sequence_log_probs(full, tokens, mask) - tf.sequence_log_probs(retrained, tokens, mask), float)
    return {"gap": gap, "weight": 2.0 / (1.0 + np.exp(0.1 * gap))}


def run_models(config: dict, progress=lambda msg: None, folder: Optional[Path] = None) -> dict:
    """Train and measure (``config``: :func:`~.config.tofu_mini_config`).

    Returns nested numpy arrays: ``full``, ``retrained/<p>`` (seed 0 of split ``p``),
    ``other_seeds/<s>`` (the 10% split's retrained model of seed ``s``) and ``pretrained``, each a
    mapping of sets (``forget/<p>``, ``retain``, ``real_authors``, ``world_facts``, as measured) to
    TOFU's per-question numbers (:func:`.scoring.question_numbers`); ``brake/<p>`` (:func:`brake`
    on each split's forget set); ``full_train_knows ()`` (the share of :data:`TRAIN_SCORED` training
    questions whose right value the full model's greedy answer names), ``full_train_questions ()``;
    ``splits``, ``n_params``, ``tokens_per_second``, ``losses`` (per model, as the models),
    ``seconds``.
    """
    corpus, params, info = train_models(config, progress, folder)
    t0 = time.perf_counter()
    progress("measuring: the forget set of every split, and the utility sets of the 10% split")
    main = str(MAIN_SPLIT)
    knows = question_numbers(params["full"], corpus, spread(corpus.split("full"), TRAIN_SCORED))["knows"]
    utility_sets = {"retain": spread(corpus.split("retain", MAIN_SPLIT), RETAIN_SCORED),
                    "real_authors": corpus.split("real_authors"), "world_facts": corpus.split("world_facts")}
    forget = {str(p): corpus.split("forget", p) for p in config["splits"]}
    # the splits nest (a smaller split is the end of a larger one): the full model is measured
    # once, on the largest, and each split reads its own questions off it
    largest = max(forget, key=lambda p: len(forget[p]))
    full_forget = question_numbers(params["full"], corpus, forget[largest])

    def utility(model) -> dict:
        return {s: question_numbers(model, corpus, utility_sets[s]) for s in UTILITY_SETS}

    out = {
        "full": {"forget": {p: {k: v[len(forget[largest]) - len(pairs):] for k, v in full_forget.items()}
                            for p, pairs in forget.items()},
                 **utility(params["full"])},
        "retrained": {p: {"forget": {p: question_numbers(model, corpus, forget[p])}}
                      for p, model in params["retrained"].items()},
        "brake": {p: brake(params["full"], params["retrained"][p], corpus, forget[p]) for p in forget},
    }
    out["retrained"][main].update(utility(params["retrained"][main]))
    if "pretrained" in params:
        out["pretrained"] = {"forget": {main: question_numbers(params["pretrained"], corpus, forget[main])},
                             **utility(params["pretrained"])}
    if params.get("other_seeds"):
        out["other_seeds"] = {s: {"forget": {main: question_numbers(model, corpus, forget[main])}, **utility(model)}
                              for s, model in params["other_seeds"].items()}
    seconds = {"train": float(info["seconds_train"]), "measure": time.perf_counter() - t0}
    progress(f"done: training {seconds['train']:.0f}s ({float(info['tokens_per_second']):.0f} tokens/s), "
             f"measuring {seconds['measure']:.0f}s")
    return {**out, "full_train_knows": np.asarray(knows.mean()), "full_train_questions": np.asarray(len(knows)),
            "splits": np.array(config["splits"]), "n_params": info["n_params"],
            "tokens_per_second": info["tokens_per_second"], "losses": info["losses"],
            "seconds": {k: np.asarray(v) for k, v in seconds.items()}}
