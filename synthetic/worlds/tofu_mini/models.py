"""The ``tofu_mini_models`` experiment: train TOFU in miniature's models and measure them.

1. The corpus (:func:`.data.make_corpus`) and the toolkit's transformer sized for it; the full
   model (every author, the real authors and the world facts) and one retrained model per split
   (the retain authors and the two other sets), plus a second retrained model from another seed
   for the 10% split (:func:`.lm.train_models`; saved under ``folder / "models"`` keyed by config
   and code, and reused).
2. TOFU's per-question numbers (:func:`.scoring.question_numbers`): the forget set of every split
   for the full model and that split's retrained model; for the 10% split also the retain,
   real-authors and world-facts sets of the full model and both retrained models.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np

from synthetic.worlds.tofu_mini.lm import MAIN_SPLIT, train_models
from synthetic.worlds.tofu_mini.measures import UTILITY_SETS
from synthetic.worlds.tofu_mini.scoring import question_numbers

__all__ = ["run_models"]


def run_models(config: dict, progress=lambda msg: None, folder: Optional[Path] = None) -> dict:
    """Train and measure (``config``: :func:`~.config.tofu_mini_config`).

    Returns nested numpy arrays: ``full``, ``retrained/<p>`` (seed 0 of split ``p``) and
    ``other_seeds/<s>`` (the 10% split's retrained model of seed ``s``), each a mapping of sets
    (``forget/<p>``, ``retain``, ``real_authors``, ``world_facts``, as measured) to TOFU's
    per-question numbers (:func:`.scoring.question_numbers`); ``full_train_exact ()`` (the full
    model's exact-match rate on its training questions), ``full_train_questions ()``; ``splits``,
    ``n_params``, ``tokens_per_second``, ``losses`` (per model, as the models), ``seconds``.
    """
    corpus, params, info = train_models(config, progress, folder)
    t0 = time.perf_counter()
    progress("measuring: the forget set of every split, and the utility sets of the 10% split")
    # the greedy answer is one of the correct wordings, on every training question
    hits = question_numbers(params["full"], corpus, corpus.split("full"))["right"]
    main = str(MAIN_SPLIT)

    def measure(model, pairs):
        return question_numbers(model, corpus, pairs)

    utility_sets = {"retain": corpus.split("retain", MAIN_SPLIT), "real_authors": corpus.split("real_authors"),
                    "world_facts": corpus.split("world_facts")}
    forget = {str(p): corpus.split("forget", p) for p in config["splits"]}
    out = {
        "full": {"forget": {p: measure(params["full"], pairs) for p, pairs in forget.items()},
                 **{s: measure(params["full"], utility_sets[s]) for s in UTILITY_SETS}},
        "retrained": {p: {"forget": {p: measure(model, forget[p])}} for p, model in params["retrained"].items()},
    }
    out["retrained"][main].update({s: measure(params["retrained"][main], utility_sets[s]) for s in UTILITY_SETS})
    if params.get("other_seeds"):
        out["other_seeds"] = {s: {"forget": {main: measure(model, forget[main])},
                                  **{u: measure(model, utility_sets[u]) for u in UTILITY_SETS}}
                              for s, model in params["other_seeds"].items()}
    seconds = {"train": float(info["seconds_train"]), "measure": time.perf_counter() - t0}
    progress(f"done: training {seconds['train']:.0f}s ({float(info['tokens_per_second']):.0f} tokens/s), "
             f"measuring {seconds['measure']:.0f}s")
    return {**out, "full_train_exact": np.asarray(hits.mean()), "full_train_questions": np.asarray(len(hits)),
            "splits": np.array(config["splits"]), "n_params": info["n_params"],
            "tokens_per_second": info["tokens_per_second"], "losses": info["losses"],
            "seconds": {k: np.asarray(v) for k, v in seconds.items()}}

