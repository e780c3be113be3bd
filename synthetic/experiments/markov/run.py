"""The ``markov`` experiment: GA vs NPO vs SimNPO on a transformer, mixture-of-Markov-chains data.

The SimNPO synthetic study (Fan et al. 2024, arXiv:2410.07163) on the transformer of
:mod:`synthetic.models.transformer`, with the question of the paper's sections 2.1 and 3
(does GA collapse, and does NPO diverge only logarithmically, Theorem 2) asked of it:

1. Data (:mod:`synthetic.data.markov`); a reference model trained on retain + forget-1 (the
   SimNPO script; ``reference_forget2=True`` adds forget-2) and a retrained model on retain
   only, AdamW (:func:`synthetic.engine.train`), saved and reused by config and code version
   when a ``model_dir`` is given.
2. The study's 50-step runs: every method of ``methods`` x ``seeds`` from the reference as ONE
   engine call (:func:`synthetic.engine.unlearn`), AdamW lr 5e-4, batch 4, beta 1, forget set
   = forget-1 + forget-2 training sequences; metrics at every step on fixed evaluation subsets
   of ``n_eval`` test sequences per set.
3. Long runs for the divergence laws: GA and NPO at several betas, plain full-batch gradient
   descent (Theorem 2's optimizer) on ``n_forget`` forget-1 training sequences, metrics at
   log-spaced steps; ``||theta_t - theta_ref||`` and the forget NLL are fitted against ``t`` and
   ``log t`` (least squares on ``t`` in ``[steps/fit_decades_from, steps]``).

:func:`run_markov` returns plain arrays (keys in its docstring). Nothing here prints or
writes files, except the model cache under ``model_dir``.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from synthetic import engine, store
from synthetic.analysis import fit_laws
from synthetic.data import markov
from synthetic.experiments.markov.config import data_config
from synthetic.models import transformer as tf
from synthetic.models.logistic import take_label
from synthetic.pipeline import SGD
from theory.methods import get_method
from theory.objectives import kl_divergence

__all__ = ["METRICS", "GROUPS", "train_lm", "fit_or_load", "eval_sets", "markov_metrics", "run_markov"]

F32 = jnp.float32
GROUPS = ("retain", "forget1", "forget2")
METRICS = (
    "kl_retr_retain", "kl_retr_forget", "kl_retr_forget1", "kl_retr_forget2",
    "kl_true_retain", "kl_true_forget", "kl_true_forget1", "kl_true_forget2",
    "param_distance", "forget_nll", "forget1_nll", "forget2_nll", "forget_train_nll",
)  # fmt: skip
"""What :func:`markov_metrics` records at each evaluation."""


# --------------------------------------------------------------------------- training


@functools.lru_cache(maxsize=None)
def _adamw(learning_rate: float, weight_decay: float) -> optax.GradientTransformation:
    # One object per setting, so the jitted training step compiles once per model shape.
    return optax.adamw(learning_rate, weight_decay=weight_decay)


@functools.lru_cache(maxsize=None)
def _adamw_injected(weight_decay: float) -> optax.GradientTransformation:
    # The unlearning runs' AdamW; the engine injects each setting's learning rate.
    return optax.inject_hyperparams(optax.adamw)(learning_rate=1.0, weight_decay=weight_decay)


def train_lm(key, model: tf.TransformerConfig, data: markov.Sequences, train: dict,
             progress: Callable[[str], None] = lambda msg: None):
    """Train a transformer from scratch on ``data`` (next-token NLL over the scored tokens).

    ``train``: ``learning_rate``, ``batch_size``, ``epochs``, ``weight_decay`` (AdamW).
    Returns ``(params, losses)`` (see :func:`synthetic.engine.train`).
    """
    if data.tokens.shape[1] > model.context:
        raise ValueError(f"data length {data.tokens.shape[1]} exceeds the model context {model.context}")
    k_init, k_data = jax.random.split(key)
    return engine.train(
        k_data, tf.init(k_init, model), tf.next_token_nll, {"tokens": data.tokens, "mask": np.asarray(data.mask, np.float32)},
        _adamw(float(train["learning_rate"]), float(train["weight_decay"])),
        batch_size=train["batch_size"], epochs=train["epochs"], progress=progress,
    )  # fmt: skip


def fit_or_load(folder: Optional[Path], name: str, config: dict, model: tf.TransformerConfig, fit: Callable[[], tuple],
                progress: Callable[[str], None] = lambda msg: None):
    """``fit()`` -> ``(params, losses)``, saved under ``folder`` by config and code version; reused
    when saved before by the same code (``folder=None``: always fit, never write). A damaged
    saved model is reported through ``progress`` and refitted."""
    version = {"code": store.code_fingerprint([__name__])}
    if folder is not None:
        saved = store.load(folder, name, config, version=version, on_problem=progress)
        if saved is not None:
            progress(f"{name}: reusing saved parameters")
            like = jax.eval_shape(lambda key: tf.init(key, model), jax.random.key(0))
            return store.unflatten_tree({k: v for k, v in saved.items() if k != "losses"}, like), saved["losses"]
    params, losses = fit()
    if folder is not None:
        store.save(folder, name, config, {**store.flatten_tree(params), "losses": losses}, version=version)
    return params, losses


def _train_models(config, data, model_dir, progress):
    model = tf.TransformerConfig(**config["model"])
    key = jax.random.key(config["model_seed"])
    ref_parts = [data.retain_train, data.forget1_train] + ([data.forget2_train] if config["reference_forget2"] else [])
    ref_set = markov.Sequences.concat(ref_parts)
    # DATA_VERSION names the sampler, so a change to it invalidates saved models.
    base = {"data_version": markov.DATA_VERSION, "data": config["data"], "data_seed": config["data_seed"],
            "model": config["model"], "train": config["train"], "model_seed": config["model_seed"]}
    ref_cfg = {**base, "trained_on": "retain+forget1" + ("+forget2" if config["reference_forget2"] else "")}
    retr_cfg = {**base, "trained_on": "retain"}
    ref, ref_losses = fit_or_load(
        model_dir, "markov_reference", ref_cfg, model,
        lambda: train_lm(jax.random.fold_in(key, 0), model, ref_set, config["train"], lambda m: progress(f"reference {m}")),
        progress,
    )  # fmt: skip
    retr, retr_losses = fit_or_load(
        model_dir, "markov_retrained", retr_cfg, model,
        lambda: train_lm(jax.random.fold_in(key, 1), model, data.retain_train, config["train"], lambda m: progress(f"retrained {m}")),
        progress,
    )  # fmt: skip
    return ref, retr, ref_losses, retr_losses


# --------------------------------------------------------------------------- metrics


def eval_sets(retain: markov.Sequences, forget1: markov.Sequences, forget2: markov.Sequences, n: int, retr_params,
              true_log_probs_fn, probe: markov.Sequences) -> dict:
    """Fixed evaluation subsets: the first ``n`` test sequences of each set, pooled.

    Returns ``tokens (3n, T)``; ``group (3, 3n, T-1)`` masks of each group's scored positions
    (retain, forget-1, forget-2); ``retr_logp``, ``true_logp (3n, T-1, V)``: the retrained model's
    and the true chains' next-token laws; ``probe_tokens``, ``probe_mask``: forget training
    sequences whose NLL is tracked (``forget_train_nll``).
    """
    for name, s in (("retain", retain), ("forget1", forget1), ("forget2", forget2)):
        if len(s) < n:
            raise ValueError(f"n_eval={n} exceeds the {len(s)} {name} test sequences")
    pooled = markov.Sequences.concat([retain.take(slice(0, n)), forget1.take(slice(0, n)), forget2.take(slice(0, n))])
    m = pooled.mask[:, 1:]
    group = np.stack([np.where(np.arange(3 * n)[:, None] // n == g, m, 0.0) for g in range(3)]).astype(np.float32)
    tokens = jnp.asarray(pooled.tokens)
    return {
        "tokens": tokens,
        "group": jnp.asarray(group),
        "retr_logp": tf.jit_next_token_log_probs(retr_params, tokens),
        "true_logp": jnp.asarray(true_log_probs_fn(pooled.tokens, pooled.chain), F32),
        "probe_tokens": jnp.asarray(probe.tokens),
        "probe_mask": jnp.asarray(probe.mask, F32),
    }


def markov_metrics(params, method, ctx) -> dict:
    """The :data:`METRICS` of ``params`` on ``ctx["ev"]`` (:func:`eval_sets`); ``param_distance``
    is to ``ctx["params_ref"]``. The engine's metrics function of this experiment."""
    ev = ctx["ev"]
    logp_NxTm1xV = tf.next_token_log_probs(params, ev["tokens"])
    kl_retr = kl_divergence(ev["retr_logp"], logp_NxTm1xV)
    kl_true = kl_divergence(ev["true_logp"], logp_NxTm1xV)
    nll = -take_label(logp_NxTm1xV, ev["tokens"][:, 1:])
    g = ev["group"]
    forget = g[1] + g[2]

    def mean(v, w):
        return jnp.sum(v * w) / jnp.maximum(jnp.sum(w), 1.0)

    sq = sum(jnp.sum(jnp.square(a - b)) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ctx["params_ref"])))
    values = {
        "kl_retr_retain": mean(kl_retr, g[0]), "kl_retr_forget": mean(kl_retr, forget),
        "kl_retr_forget1": mean(kl_retr, g[1]), "kl_retr_forget2": mean(kl_retr, g[2]),
        "kl_true_retain": mean(kl_true, g[0]), "kl_true_forget": mean(kl_true, forget),
        "kl_true_forget1": mean(kl_true, g[1]), "kl_true_forget2": mean(kl_true, g[2]),
        "param_distance": jnp.sqrt(sq), "forget_nll": mean(nll, forget),
        "forget1_nll": mean(nll, g[1]), "forget2_nll": mean(nll, g[2]),
        "forget_train_nll": tf.next_token_nll(params, {"tokens": ev["probe_tokens"], "mask": ev["probe_mask"]}),
    }  # fmt: skip
    return {k: jnp.asarray(v, F32) for k, v in values.items()}


_evaluate = jax.jit(lambda params, ctx: markov_metrics(params, None, ctx))


# --------------------------------------------------------------------------- the experiment


def run_markov(config: dict, progress=lambda msg: None, folder: Optional[Path] = None) -> dict[str, np.ndarray]:
    """Run the experiment of ``config`` (:func:`~.config.markov_config`); models are kept in
    ``folder / "models"`` when a folder is given.

    Returns numpy arrays:
      ``methods (K,)``, ``betas (K,)``, ``steps (E,)`` (0..50); for each name in
      :data:`METRICS` an array ``(K, S, E)`` (method, seed, evaluation);
      ``diverged_step (K, S)``; ``long_labels (J,)``, ``long_betas (J,)`` (NaN for GA),
      ``long_steps (E2,)``, ``long_<metric> (J, E2)``, ``long_diverged_step (J,)``,
      ``long_fit_<param_distance|forget_nll_seq>_<linear|log|power> (J, 3)`` (intercept, slope,
      R^2; see :func:`synthetic.analysis.fit_laws`), ``long_fit_t_min ()``,
      ``long_forget_length ()``; ``ref_losses``, ``retr_losses``; ``reference_kl_true (4,)`` and
      ``retrained_kl_true (4,)`` (per-token KL of the true chains to each model on retain,
      forget, forget-1, forget-2); ``seconds_<phase> ()``.
    """
    model_dir = None if folder is None else Path(folder) / "models"
    t0 = time.perf_counter()
    seconds = {}
    mcfg = data_config(config)
    data = markov.make_markov_data(jax.random.key(config["data_seed"]), mcfg)
    mats = markov.chain_matrices(mcfg)
    ref, retr, ref_losses, retr_losses = _train_models(config, data, model_dir, progress)
    seconds["train"] = time.perf_counter() - t0

    u, lg = config["unlearn"], config["long"]
    true_fn = lambda tokens, chain: markov.true_next_log_probs(mats, tokens, chain)  # noqa: E731
    n_probe = min(lg["n_forget"], len(data.forget1_train))
    probe = data.forget1_train.take(slice(0, n_probe))
    ctx = {"ev": eval_sets(data.retain_test, data.forget1_test, data.forget2_test, u["n_eval"], retr, true_fn, probe),
           "params_ref": ref}
    base_ref = _evaluate(ref, ctx)
    base_retr = _evaluate(retr, ctx)
    true_names = [f"kl_true_{g}" for g in ("retain", "forget", "forget1", "forget2")]

    # ---- the study's 50-step runs: seeds x methods as one engine call
    t1 = time.perf_counter()
    forget_set = markov.Sequences.concat([data.forget1_train, data.forget2_train])
    udata = tf.sequence_batch(ref, forget_set.tokens, forget_set.mask, data.retain_train.tokens, data.retain_train.mask)
    names, S = list(u["methods"]), int(u["seeds"])
    methods = [get_method(n, beta=u["beta"]) for n in names]
    progress(f"unlearning: {len(names)} methods x {S} seeds x {u['steps']} steps, evaluating {u['n_eval']} test sequences per set every step")
    grid = engine.unlearn(
        tf.SEQUENCE_INPUTS, methods, _adamw_injected(float(u["weight_decay"])), ref, udata,
        engine.Schedule(tuple(range(u["steps"] + 1))), markov_metrics, context=ctx,
        hyperparams={"learning_rate": [u["learning_rate"]] * len(names)},
        batches=engine.minibatches(forget=u["batch_size"], retain=u["batch_size"]), seeds=S,
        progress=lambda msg: progress(f"unlearning: {msg}"),
    )  # fmt: skip
    seconds["unlearn"] = time.perf_counter() - t1
    out = {
        "methods": np.array(names),
        "betas": np.array([u["beta"]] * len(names)),
        "steps": grid["steps"],
        "diverged_step": grid["diverged_step"].T,
    }
    for metric in METRICS:
        out[metric] = np.swapaxes(grid[metric], 0, 1)  # (S, K, E) -> (K, S, E)

    # ---- long full-batch gradient-descent runs: GA and NPO at several betas
    t2 = time.perf_counter()
    long_methods = [get_method("GA")] + [get_method("NPO", beta=b) for b in lg["betas"]]
    labels = ["GA"] + [f"NPO beta={b:g}" for b in lg["betas"]]
    ldata = tf.sequence_batch(ref, probe.tokens, probe.mask)
    schedule = engine.Schedule.log_spaced(lg["steps"], (lg["n_records"] - 1) / np.log10(lg["steps"]))
    progress(f"long runs: {', '.join(labels)}; gradient descent, {lg['steps']} steps on {n_probe} forget-1 sequences")
    long = engine.unlearn(
        tf.SEQUENCE_INPUTS, long_methods, SGD, ref, ldata, schedule, markov_metrics, context=ctx,
        hyperparams={"learning_rate": [lg["learning_rate"]] * len(long_methods)}, seeds=1,
        progress=lambda msg: progress(f"long runs: {msg}"),
    )  # fmt: skip
    seconds["long"] = time.perf_counter() - t2
    out["long_labels"] = np.array(labels)
    out["long_betas"] = np.array([np.nan] + list(lg["betas"]), float)
    out["long_steps"] = long["steps"]
    out["long_diverged_step"] = long["diverged_step"][0]
    for metric in METRICS:
        out[f"long_{metric}"] = long[metric][0]
    seq_len = float(np.mean(probe.length))
    t_min = lg["steps"] / lg["fit_decades_from"]
    curves = {"param_distance": out["long_param_distance"], "forget_nll_seq": out["long_forget_train_nll"] * seq_len}
    for name, ys in curves.items():
        fits = [fit_laws(long["steps"], y, t_min) for y in ys]
        for law in ("linear", "log", "power"):
            out[f"long_fit_{name}_{law}"] = np.array([f[law] for f in fits])
    out["long_fit_t_min"] = np.asarray(t_min)
    out["long_forget_length"] = np.asarray(seq_len)

    out["ref_losses"] = np.asarray(ref_losses)
    out["retr_losses"] = np.asarray(retr_losses)
    out["reference_kl_true"] = np.array([float(base_ref[k]) for k in true_names])
    out["retrained_kl_true"] = np.array([float(base_retr[k]) for k in true_names])
    seconds["total"] = time.perf_counter() - t0
    for k, v in seconds.items():
        out[f"seconds_{k}"] = np.asarray(v)
    progress(f"done: train {seconds['train']:.0f}s, unlearn {seconds['unlearn']:.0f}s, long {seconds['long']:.0f}s")
    return out
