"""The ``tofu_mini_models`` experiment: train TOFU in miniature's models and measure them.

1. The corpus (:func:`synthetic.data.tofu.make_corpus`) and the toolkit's transformer sized for
   it (:func:`synthetic.tofu_lm.model_config`).
2. The full model (every author, the real authors and the world facts) and one retrained model
   per forget split (the retain authors and the two other sets), plus a second retrained model
   from another seed for the 10% split; AdamW with warm-up and decay on the answer tokens
   (:func:`synthetic.tofu_lm.train_qa_model`). Models are saved under ``folder / "models"``
   keyed by config and code, and reused.
3. TOFU's per-question numbers (:func:`synthetic.tofu_lm.evaluate_set`): the forget set of every
   split for the full model and that split's retrained model; for the 10% split also the retain,
   real-authors and world-facts sets of the full model and both retrained models.
"""

from __future__ import annotations

import hashlib
import inspect
import time
from pathlib import Path
from typing import Optional

import jax
import numpy as np

from synthetic import store, tofu_lm
from synthetic.data.tofu import CORPUS_VERSION, SPLITS, make_corpus
from synthetic.experiments.tofu_mini.config import MAIN_SPLIT, corpus_config
from synthetic.models import transformer as tf

__all__ = ["run_tofu_mini", "train_models", "equal_steps", "PER_QUESTION", "SETS"]

PER_QUESTION = ("p_answer", "p_paraphrase", "truth_ratio", "rouge", "exact", "valid", "degenerate")
"""The per-question numbers stored for each model and set (plus ``p_perturbed``)."""

SETS = ("retain", "real_authors", "world_facts")
"""The sets model utility reads (evaluated at the 10% split)."""


def _model_version() -> dict:
    """The code a saved model depends on: the corpus, the model and its training
    (:mod:`synthetic.tofu_lm`, :mod:`synthetic.data.tofu` and what they import) and the source
    of :func:`train_models` (which data each model sees). Narrower than the experiment's whole
    code, so that editing an unlearning experiment does not retrain these models."""
    source = inspect.getsource(train_models).encode()
    return {"code": store.code_fingerprint(["synthetic.tofu_lm", "synthetic.data.tofu"]),
            "train_models": hashlib.sha256(source).hexdigest()[:16]}


def equal_steps(train: dict, rows: int, full_rows: int) -> dict:
    """``train`` with as many epochs as give a model trained on ``rows`` sequences at least the
    optimizer steps of the full model (``full_rows`` sequences, ``train["epochs"]`` epochs).

    A fixed number of epochs would train a retrained model on a small retain set (the 90%
    split keeps a tenth of the authors) for a fraction of the full model's steps, and leave it
    undertrained on the sets model utility reads; TOFU's retrained models start from a
    pretrained model, ours from scratch, so each gets the same optimization budget instead."""
    epochs = int(train["epochs"])
    return {**train, "epochs": max(epochs, -(-epochs * full_rows // max(rows, 1)))}


def train_models(config: dict, progress=lambda msg: None, folder: Optional[Path] = None):
    """The corpus and the models of ``config`` (:func:`~.config.tofu_mini_config`): the full
    model, one retrained model per split (seed 0) and the other seeds' retrained models of the
    10% split, each loaded from ``folder / "models"`` when saved there by the same config and
    code, otherwise trained (and saved).

    Every model gets at least the full model's number of optimizer steps (:func:`equal_steps`).

    Returns ``(corpus, params, info)``: ``params`` maps ``full``, ``retr<p>``,
    ``retr10_seed<s>`` to parameters; ``info`` holds ``losses_<model>``,
    ``tokens_per_second`` (of the models trained now; NaN if all were loaded), ``n_params``,
    ``seconds_train``.
    """
    t0 = time.perf_counter()
    if MAIN_SPLIT not in config["splits"] or not set(config["splits"]) <= set(SPLITS):
        raise ValueError(f"splits must be a subset of {SPLITS} containing {MAIN_SPLIT}, got {config['splits']}")
    corpus = make_corpus(corpus_config(config))
    model = tofu_lm.model_config(corpus, **config["model"])
    model_dir = None if folder is None else Path(folder) / "models"
    base = {"corpus_version": CORPUS_VERSION, "corpus": config["corpus"], "model": model.to_json(),
            "train": config["train"]}
    info: dict[str, np.ndarray] = {}
    seeds = list(config["retrain_seeds"])
    jobs = [("full", None, seeds[0])] + [(f"retr{p}", p, seeds[0]) for p in config["splits"]]
    jobs += [(f"retr{MAIN_SPLIT}_seed{s}", MAIN_SPLIT, s) for s in seeds[1:]]
    params, tokens, seconds_train = {}, 0, 0.0
    full_rows = len(corpus.training_set()) * 2  # two wordings per question
    for name, split, seed in jobs:
        data = corpus.encode_training(corpus.training_set(split), length=model.context)
        train = equal_steps(config["train"], data.tokens.shape[0], full_rows)
        t1 = time.perf_counter()
        params[name], losses, trained = store.load_or_fit(
            model_dir, f"tofu_{name}", {**base, "train": train, "split": split, "seed": seed},
            lambda data=data, seed=seed, name=name, train=train: tofu_lm.train_qa_model(
                jax.random.key(seed), model, data, train, lambda m: progress(f"{name}: {m}")),
            lambda: jax.eval_shape(lambda key: tf.init(key, model), jax.random.key(0)),
            version=_model_version(), on_problem=progress,
        )  # fmt: skip
        info[f"losses_{name}"] = np.asarray(losses)
        if trained:
            tokens += data.tokens.size * int(train["epochs"])
            seconds_train += time.perf_counter() - t1
    info["tokens_per_second"] = np.asarray(tokens / seconds_train if seconds_train else np.nan)
    info["n_params"] = np.asarray(sum(int(np.prod(a.shape)) for a in jax.tree.leaves(params["full"])))
    info["seconds_train"] = np.asarray(time.perf_counter() - t0)
    return corpus, params, info


def run_tofu_mini(config: dict, progress=lambda msg: None, folder: Optional[Path] = None) -> dict[str, np.ndarray]:
    """Train and measure (``config``: :func:`~.config.tofu_mini_config`).

    Returns numpy arrays: ``<model>_<set>_<number>`` per-question numbers, ``<model>`` one of
    ``full``, ``retr<p>`` (seed 0 of split ``p``), ``retr<p>_seed<s>`` (another seed), ``<set>``
    one of ``forget<p>``, ``retain``, ``real_authors``, ``world_facts``; ``full_train_exact ()``
    (the full model's exact-match rate on its training questions); ``splits``, ``n_params``,
    ``tokens_per_second``, ``losses_<model>``, ``seconds_<phase>``.
    """
    corpus, params, info = train_models(config, progress, folder)
    out: dict[str, np.ndarray] = {"splits": np.array(config["splits"]), **info}
    seeds = list(config["retrain_seeds"])

    t2 = time.perf_counter()
    progress("measuring: the forget set of every split, and the utility sets of the 10% split")
    full_train = tofu_lm.evaluate_set(params["full"], corpus, corpus.split("full"))
    out["full_train_exact"] = np.asarray(full_train["exact"].mean())
    out["full_train_questions"] = np.asarray(len(full_train["exact"]))

    def measure(model_name, set_name, pairs):
        ev = tofu_lm.evaluate_set(params[model_name], corpus, pairs)
        for k in PER_QUESTION + ("p_perturbed",):
            out[f"{model_name}_{set_name}_{k}"] = np.asarray(ev[k])

    for p in config["splits"]:
        forget = corpus.split("forget", p)
        measure("full", f"forget{p}", forget)
        measure(f"retr{p}", f"forget{p}", forget)
    others = [f"retr{MAIN_SPLIT}_seed{s}" for s in seeds[1:]]
    for name in others:
        measure(name, f"forget{MAIN_SPLIT}", corpus.split("forget", MAIN_SPLIT))
    for name in ["full", f"retr{MAIN_SPLIT}"] + others:
        measure(name, "retain", corpus.split("retain", MAIN_SPLIT))
        measure(name, "real_authors", corpus.split("real_authors"))
        measure(name, "world_facts", corpus.split("world_facts"))
    out["seconds_measure"] = np.asarray(time.perf_counter() - t2)
    progress(f"done: training {float(out['seconds_train']):.0f}s ({float(out['tokens_per_second']):.0f} tokens/s), "
             f"measuring {float(out['seconds_measure']):.0f}s")
    return out
