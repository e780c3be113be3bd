"""The language models of TOFU in miniature: their size, their training, and the trained set.

TOFU finetunes a *pretrained* model on its fictitious authors; this module does the same in
miniature, or (the earlier miniature, and the ablation of pretraining) trains one model from
scratch on everything:

* :func:`world_corpus`: the corpus of a config: the profile corpus (:mod:`.profiles`, TOFU's
  construction) or the earlier one (:mod:`.data`).
* :func:`model_config`: the toolkit's transformer (a config of the same code) sized for a corpus.
* :func:`train_qa_model`: AdamW with linear warm-up and linear decay
  (:func:`synthetic.optim.warmup_decay_adamw`), the loss on the answer tokens only, minibatches
  through :func:`synthetic.engine.train` (one jitted step), from a fresh or a given model.
* :func:`pretrain`: the pretrained model (real authors and world facts, every wording).
* :func:`train_models`: the full model and the retrained models of a config: finetuned from the
  pretrained model on the fictitious authors (one wording per question by default, plus a replay
  of the pretraining pairs), or trained from scratch. Every model is kept in a folder keyed by its
  config and by this module's code: editing how models are measured or unlearned (``scoring``,
  ``unlearn``, the experiments) never retrains them, and the pretrained model is trained once
  for all the models and variants that share its config.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from synthetic import engine, store
from synthetic.models import transformer as tf
from synthetic.optim import warmup_decay_adamw
from synthetic.worlds.tofu_mini.data import CORPUS_VERSION, MAIN_SPLIT, SPLITS, Corpus, Encoded, make_corpus
from synthetic.worlds.tofu_mini.profiles import PROFILE_VERSION, ProfileConfig, corpus_config, make_profile_corpus
from theory.validate import check_int, check_key

__all__ = ["MAIN_SPLIT", "world_corpus", "model_config", "train_qa_model", "equal_steps", "pretrain", "training_data",
           "train_models"]



def world_corpus(config: dict) -> Corpus:
    """The corpus of a models config: ``corpus_kind`` ``"profiles"`` (:func:`.profiles.make_profile_corpus`,
    TOFU's construction) or ``"today"`` (:func:`.data.make_corpus`, the earlier miniature)."""
    corpus = corpus_config(config)
    return make_profile_corpus(corpus) if isinstance(corpus, ProfileConfig) else make_corpus(corpus)


def model_config(corpus: Corpus, *, layers: int = 2, width: int = 128, heads: int = 4, mlp_ratio: int = 4,
                 context: Optional[int] = None) -> tf.TransformerConfig:
    """The transformer for ``corpus``: its vocabulary, a context holding the longest question,
    answer and ``<end>`` of any kind of answer, uninformed answers included (``context``
    overrides)."""
    longest = max(
        corpus.encode(corpus.qa).tokens.shape[1], corpus.encode(corpus.qa, "paraphrase").tokens.shape[1],
        corpus.encode_perturbed(corpus.qa).tokens.shape[1], corpus.encode_idk(corpus.qa).tokens.shape[1],
        corpus.encode_training(corpus.pretraining).tokens.shape[1] if corpus.pretraining else 0,
    )
    return tf.TransformerConfig(vocab_size=corpus.tokenizer.size, context=context or longest, layers=layers,
                                width=width, heads=heads, mlp_ratio=mlp_ratio)


def train_qa_model(key: jax.Array, model: tf.TransformerConfig, data: Encoded, train: dict,
                   progress: Callable[[str], None] = lambda msg: None, init=None):
    """Train a transformer on question-answer pairs, the loss on answer tokens: from scratch, or
    from ``init`` (a model's parameters, not modified: finetuning).

    Args:
      key: splits into the initialisation and the batch order.
      model: the :class:`~synthetic.models.transformer.TransformerConfig`.
      data: :class:`~.data.Encoded` pairs (``answer_mask`` is the loss mask).
      train: ``learning_rate``, ``batch_size``, ``epochs``, ``warmup`` (a fraction of all steps),
        ``weight_decay``: AdamW with linear warm-up to the learning rate, then linear decay to 0.
    Returns:
      ``(params, losses)``.
    """
    check_key(key)
    check_int(train["epochs"], "epochs")
    n = data.tokens.shape[0]
    steps = (n // int(train["batch_size"])) * int(train["epochs"])
    warmup = int(round(float(train["warmup"]) * steps))
    opt = warmup_decay_adamw(warmup, steps, weight_decay=float(train["weight_decay"]),
                             learning_rate=float(train["learning_rate"]))
    k_init, k_data = jax.random.split(key)
    params = tf.init(k_init, model) if init is None else jax.tree.map(jnp.copy, init)  # the trainer donates it
    return engine.train(
        k_data, params, tf.next_token_nll, {"tokens": data.tokens, "mask": data.answer_mask}, opt,
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


def _fit(model_dir, name: str, key_config: dict, fit, model, progress):
    """:func:`synthetic.store.load_or_fit` keyed by this module's code: ``(params, losses, trained)``."""
    return store.load_or_fit(
        model_dir, name, key_config, fit, lambda: jax.eval_shape(lambda key: tf.init(key, model), jax.random.key(0)),
        version={"code": store.code_fingerprint([__name__]), **store.numeric_mode()}, on_problem=progress,
    )  # fmt: skip


def _corpus_version(config: dict) -> str:
    return PROFILE_VERSION if config.get("corpus_kind", "today") == "profiles" else CORPUS_VERSION


def pretrain(corpus: Corpus, model: tf.TransformerConfig, config: dict, model_dir: Optional[Path],
             progress=lambda msg: None):
    """The pretrained model of a two-stage config: trained from scratch on the corpus's pretraining
    pairs (every wording) with ``config["pretrain"]``; kept in ``model_dir`` under its own key (the
    corpus, the model and the pretraining recipe), so every variant that shares them shares it.
    Returns ``(params, losses, trained)``."""
    data = corpus.encode_training(corpus.pretraining, length=model.context)
    key = {"corpus_version": _corpus_version(config), "corpus": config["corpus"], "model": model.to_json(),
           "pretrain": config["pretrain"]}
    return _fit(model_dir, "tofu_pretrained", key, lambda: train_qa_model(
        jax.random.key(0), model, data, config["pretrain"], lambda m: progress(f"pretraining: {m}")), model, progress)


def training_data(corpus: Corpus, config: dict, split: Optional[int], length: int) -> Encoded:
    """What a model of ``config`` trains on: the fictitious authors (all of them, ``split=None``,
    or the retain authors of a split) with the first ``train["wordings"]`` wordings of each answer
    (default: all), plus, after pretraining, a replay of ``train["replay"]`` of the pretraining
    pairs (a fixed subset), or, without pretraining, the real authors and world facts as well."""
    train = config["train"]
    authors = corpus.split("full") if split is None else corpus.split("retain", split)
    wordings = train.get("wordings")
    if config.get("pretrain") is None:  # one stage: everything at once, as the earlier miniature
        rest = corpus.split("real_authors") + corpus.split("world_facts") if not corpus.pretraining else []
        return _concat(corpus.encode_training(authors, length, wordings), corpus.encode_training(rest, length)
                       if rest else None, corpus.encode_training(list(corpus.pretraining), length)
                       if corpus.pretraining else None)
    replay = float(train.get("replay", 0.0))
    pairs = list(corpus.pretraining)
    keep = np.random.default_rng(0).permutation(len(pairs))[: int(round(replay * len(pairs)))]
    extra = corpus.encode_training([pairs[i] for i in sorted(keep)], length) if len(keep) else None
    return _concat(corpus.encode_training(authors, length, wordings), extra)


def _concat(*parts) -> Encoded:
    parts = [p for p in parts if p is not None]
    return Encoded(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("tokens", "answer_mask", "prompt_length")))


def train_models(config: dict, progress=lambda msg: None, folder: Optional[Path] = None):
    """The corpus and the models of ``config`` (:func:`~.config.tofu_mini_config`): the full
    model, one retrained model per split (seed 0) and the other seeds' retrained models of the
    10% split, each loaded from ``folder / "models"`` when saved there by the same config and
    code, otherwise trained (and saved).

    With ``config["pretrain"]`` every model is finetuned from the pretrained model
    (:func:`pretrain`) for ``train["epochs"]`` epochs of its own data; without, each is trained
    from scratch and gets at least the full model's number of optimizer steps (:func:`equal_steps`).

    Returns ``(corpus, params, info)``: ``params`` holds ``full``, ``retrained`` (split ->
    parameters, seed 0), ``other_seeds`` (seed -> the 10% split's retrained model) and, after
    pretraining, ``pretrained``; ``info`` holds ``losses`` (the same tree of loss curves),
    ``tokens_per_second`` (of the models trained now; NaN if all were loaded), ``n_params``,
    ``seconds_train``.
    """
    t0 = time.perf_counter()
    if MAIN_SPLIT not in config["splits"] or not set(config["splits"]) <= set(SPLITS):
        raise ValueError(f"splits must be a subset of {SPLITS} containing {MAIN_SPLIT}, got {config['splits']}")
    corpus = world_corpus(config)
    model = model_config(corpus, **config["model"])
    model_dir = None if folder is None else Path(folder) / "models"
    params, losses, tokens, seconds_train = {"retrained": {}, "other_seeds": {}}, {"retrained": {}, "other_seeds": {}}, 0, 0.0
    init = None
    if config.get("pretrain") is not None:
        t1 = time.perf_counter()
        init, pre_losses, trained = pretrain(corpus, model, config, model_dir, progress)
        params["pretrained"], losses["pretrained"] = init, np.asarray(pre_losses)
        if trained:
            tokens += corpus.encode_training(corpus.pretraining).tokens.size * int(config["pretrain"]["epochs"])
            seconds_train += time.perf_counter() - t1
    base = {"corpus_version": _corpus_version(config), "corpus": config["corpus"], "model": model.to_json(),
            "pretrain": config.get("pretrain"), "train": config["train"]}
    seeds = list(config["retrain_seeds"])
    # (where in the tree, the file name, the forget split left out, the seed)
    jobs = [(("full",), "full", None, seeds[0])]
    jobs += [(("retrained", str(p)), f"retr{p}", p, seeds[0]) for p in config["splits"]]
    jobs += [(("other_seeds", str(s)), f"retr{MAIN_SPLIT}_seed{s}", MAIN_SPLIT, s) for s in seeds[1:]]
    full_rows = training_data(corpus, config, None, model.context).tokens.shape[0]
    for where, name, split, seed in jobs:
        data = training_data(corpus, config, split, model.context)
        train = config["train"] if init is not None else equal_steps(config["train"], data.tokens.shape[0], full_rows)
        t1 = time.perf_counter()
        model_params, model_losses, trained = _fit(
            model_dir, f"tofu_{name}", {**base, "train": train, "split": split, "seed": seed},
            lambda data=data, seed=seed, name=name, train=train: train_qa_model(
                jax.random.key(seed), model, data, train, lambda m: progress(f"{name}: {m}"), init=init),
            model, progress)
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
