"""The language models of TOFU in miniature: their size, their training, and the trained set.

* :func:`model_config`: the toolkit's transformer (a config of the same code) sized for a
  :class:`~.data.Corpus`.
* :func:`train_qa_model`: AdamW with linear warm-up and linear decay
  (:func:`synthetic.optim.warmup_decay_adamw`), the loss on the answer tokens only, minibatches
  through :func:`synthetic.engine.train` (one jitted step).
* :func:`train_models`: the full model and the retrained models of a config, kept in a folder
  keyed by their config and by this module's code: editing how models are measured or
  unlearned (``scoring``, ``unlearn``, the experiments) never retrains them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

import jax
import numpy as np

from synthetic import engine, store
from synthetic.models import transformer as tf
from synthetic.optim import warmup_decay_adamw
from synthetic.worlds.tofu_mini.data import CORPUS_VERSION, SPLITS, Corpus, Encoded, TofuConfig, make_corpus
from theory.validate import check_int

__all__ = ["MAIN_SPLIT", "model_config", "train_qa_model", "equal_steps", "train_models"]

MAIN_SPLIT = 10
"""The split of the second retrained model (another seed), and of the claims: TOFU's 10%."""


def model_config(corpus: Corpus, *, layers: int = 2, width: int = 128, heads: int = 4, mlp_ratio: int = 4,
                 context: Optional[int] = None) -> tf.TransformerConfig:
    """The transformer for ``corpus``: its vocabulary, a context holding the longest question,
    answer and ``<end>`` of any kind of answer, uninformed answers included (``context``
    overrides)."""
    longest = max(
        corpus.encode(corpus.qa).tokens.shape[1], corpus.encode(corpus.qa, "paraphrase").tokens.shape[1],
        corpus.encode_perturbed(corpus.qa).tokens.shape[1], corpus.encode_idk(corpus.qa).tokens.shape[1],
    )
    return tf.TransformerConfig(vocab_size=corpus.tokenizer.size, context=context or longest, layers=layers,
                                width=width, heads=heads, mlp_ratio=mlp_ratio)


def train_qa_model(key: jax.Array, model: tf.TransformerConfig, data: Encoded, train: dict,
                   progress: Callable[[str], None] = lambda msg: None):
    """Train a transformer from scratch on question-answer pairs, the loss on answer tokens.

    Args:
      key: splits into the initialisation and the batch order.
      model: the :class:`~synthetic.models.transformer.TransformerConfig`.
      data: :class:`~.data.Encoded` pairs (``answer_mask`` is the loss mask).
      train: ``learning_rate``, ``batch_size``, ``epochs``, ``warmup`` (a fraction of all steps),
        ``weight_decay``: AdamW with linear warm-up to the learning rate, then linear decay to 0.
    Returns:
      ``(params, losses)``.
    """
    check_int(train["epochs"], "epochs")
    n = data.tokens.shape[0]
    steps = (n // int(train["batch_size"])) * int(train["epochs"])
    warmup = int(round(float(train["warmup"]) * steps))
    opt = warmup_decay_adamw(warmup, steps, weight_decay=float(train["weight_decay"]),
                             learning_rate=float(train["learning_rate"]))
    k_init, k_data = jax.random.split(key)
    return engine.train(
        k_data, tf.init(k_init, model), tf.next_token_nll, {"tokens": data.tokens, "mask": data.answer_mask}, opt,
        batch_size=int(train["batch_size"]), epochs=int(train["epochs"]), progress=progress,
    )  # fmt: skip


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

    Returns ``(corpus, params, info)``: ``params`` holds ``full``, ``retrained`` (split ->
    parameters, seed 0) and ``other_seeds`` (seed -> the 10% split's retrained model); ``info``
    holds ``losses`` (the same tree of loss curves), ``tokens_per_second`` (of the models trained
    now; NaN if all were loaded), ``n_params``, ``seconds_train``.
    """
    t0 = time.perf_counter()
    if MAIN_SPLIT not in config["splits"] or not set(config["splits"]) <= set(SPLITS):
        raise ValueError(f"splits must be a subset of {SPLITS} containing {MAIN_SPLIT}, got {config['splits']}")
    corpus = make_corpus(TofuConfig(**config["corpus"]))
    model = model_config(corpus, **config["model"])
    model_dir = None if folder is None else Path(folder) / "models"
    base = {"corpus_version": CORPUS_VERSION, "corpus": config["corpus"], "model": model.to_json(),
            "train": config["train"]}
    seeds = list(config["retrain_seeds"])
    # (where in the tree, the file name, the forget split left out, the seed)
    jobs = [(("full",), "full", None, seeds[0])]
    jobs += [(("retrained", str(p)), f"retr{p}", p, seeds[0]) for p in config["splits"]]
    jobs += [(("other_seeds", str(s)), f"retr{MAIN_SPLIT}_seed{s}", MAIN_SPLIT, s) for s in seeds[1:]]
    params, losses, tokens, seconds_train = {"retrained": {}, "other_seeds": {}}, {"retrained": {}, "other_seeds": {}}, 0, 0.0
    full_rows = len(corpus.training_set()) * 2  # two wordings per question
    for where, name, split, seed in jobs:
        data = corpus.encode_training(corpus.training_set(split), length=model.context)
        train = equal_steps(config["train"], data.tokens.shape[0], full_rows)
        t1 = time.perf_counter()
        model_params, model_losses, trained = store.load_or_fit(
            model_dir, f"tofu_{name}", {**base, "train": train, "split": split, "seed": seed},
            lambda data=data, seed=seed, name=name, train=train: train_qa_model(
                jax.random.key(seed), model, data, train, lambda m: progress(f"{name}: {m}")),
            lambda: jax.eval_shape(lambda key: tf.init(key, model), jax.random.key(0)),
            version={"code": store.code_fingerprint([__name__])}, on_problem=progress,
        )  # fmt: skip
        _put(params, where, model_params)
        _put(losses, where, np.asarray(model_losses))
        if trained:
            tokens += data.tokens.size * int(train["epochs"])
            seconds_train += time.perf_counter() - t1
    if not seeds[1:]:
        del params["other_seeds"], losses["other_seeds"]
    info = {"losses": losses,
            "tokens_per_second": np.asarray(tokens / seconds_train if seconds_train else np.nan),
            "n_params": np.asarray(sum(int(np.prod(a.shape)) for a in jax.tree.leaves(params["full"]))),
            "seconds_train": np.asarray(time.perf_counter() - t0)}
    return corpus, params, info


def _put(tree: dict, where: tuple, value) -> None:
    for key in where[:-1]:
        tree = tree[key]
    tree[where[-1]] = value
