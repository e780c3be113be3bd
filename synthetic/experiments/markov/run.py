"""The ``markov`` experiment: the SimNPO study's Markov-chain setting, both cases, on the engine.

The SimNPO synthetic study (Fan et al. 2024, arXiv:2410.07163), as its public code runs it
(:mod:`.config`), with the question of the paper's sections 2.1 and 3 asked of it too:

1. Data (:mod:`synthetic.data.markov`) of both cases; a reference model per case (B: retain +
   forget-1; A: retain + forget-1 + short forget-2) and one retrained model (retain only),
   trained with the ``transformers`` AdamW (:func:`synthetic.optim.transformers_adamw`) and
   saved and reused by config and code version when a ``model_dir`` is given.
2. Per case, the study's 50-step runs: NPO and SimNPO (``methods``) x ``seeds`` from the
   case's reference as ONE engine call (:func:`synthetic.engine.unlearn`), the same AdamW at
   lr 5e-4, batch 4, beta 1, the forget set = forget-1 + forget-2 training sequences; at every
   step the per-token KL to the **true chains** (the study's metric) and to the retrained model
   on the evaluation sets (``n_eval`` test sequences of retain, forget-1, forget-2; ``None``:
   all of them). Then the collapse curves: all eight methods in case B, scored every
   ``eval_every`` steps on a smaller evaluation set.
3. Long runs for the divergence laws (case B's reference): GA and NPO at several betas, plain
   full-batch gradient descent (Theorem 2's optimizer) on ``n_forget`` forget-1 training
   sequences, metrics at log-spaced steps; ``||theta_t - theta_ref||`` and the forget NLL are
   fitted against ``t`` and ``log t`` (least squares on ``t`` in ``[steps/fit_decades_from, steps]``).

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
from synthetic.experiments.markov.config import case_data_config, reference_parts
from synthetic.models import transformer as tf
from synthetic.models.logistic import take_label
from synthetic.optim import transformers_adamw
from synthetic.pipeline import SGD
from theory.methods import get_method
from theory.objectives import kl_divergence

__all__ = ["METRICS", "GROUPS", "train_lm", "fit_or_load", "eval_sets", "markov_metrics", "run_markov"]

F32 = jnp.float32
GROUPS = ("retain", "forget1", "forget2")
METRICS = (
    "kl_true_retain", "kl_true_forget1", "kl_true_forget2",
    "kl_retr_retain", "kl_retr_forget1", "kl_retr_forget2",
    "param_distance", "forget1_nll", "forget2_nll", "forget_train_nll",
)  # fmt: skip
"""What :func:`markov_metrics` records at each evaluation: per-token KL(P_true || pi_theta) and
KL(pi_retr || pi_theta) on each evaluation set, ``||theta - theta_ref||_2``, the per-token NLL
of each forget test set and of the probe (forget training sequences of the long runs)."""


# --------------------------------------------------------------------------- training


@functools.lru_cache(maxsize=None)
def _adamw(learning_rate: float, weight_decay: float, eps: float) -> optax.GradientTransformation:
    # One object per setting, so the jitted training step compiles once per model shape.
    return transformers_adamw(learning_rate, weight_decay=weight_decay, eps=eps)


@functools.lru_cache(maxsize=None)
def _adamw_injected(weight_decay: float, eps: float) -> optax.GradientTransformation:
    # The unlearning runs' AdamW; the engine injects each setting's learning rate.
    return optax.inject_hyperparams(transformers_adamw)(learning_rate=1.0, weight_decay=weight_decay, eps=eps)


def train_lm(key, model: tf.TransformerConfig, data: markov.Sequences, train: dict,
             progress: Callable[[str], None] = lambda msg: None):
    """Train a transformer from scratch on ``data`` (next-token NLL over the scored tokens).

    ``train``: ``learning_rate``, ``batch_size``, ``epochs``, and optionally ``weight_decay``
    (default 0) and ``eps`` (default 1e-6) of the ``transformers`` AdamW.
    Returns ``(params, losses)`` (see :func:`synthetic.engine.train`).
    """
    if data.tokens.shape[1] > model.context:
        raise ValueError(f"data length {data.tokens.shape[1]} exceeds the model context {model.context}")
    k_init, k_data = jax.random.split(key)
    return engine.train(
        k_data, tf.init(k_init, model), tf.next_token_nll, {"tokens": data.tokens, "mask": np.asarray(data.mask, np.float32)},
        _adamw(float(train["learning_rate"]), float(train.get("weight_decay", 0.0)), float(train.get("eps", 1e-6))),
        batch_size=train["batch_size"], epochs=train["epochs"], progress=progress,
    )  # fmt: skip


def fit_or_load(folder: Optional[Path], name: str, config: dict, model: tf.TransformerConfig, fit: Callable[[], tuple],
                progress: Callable[[str], None] = lambda msg: None):
    """``fit()`` -> ``(params, losses)``, saved under ``folder`` by config and code version; reused
    when saved before by the same code (``folder=None``: always fit, never write). A damaged
    saved model is reported through ``progress`` and refitted."""
    params, losses, fitted = store.load_or_fit(
        folder, name, config, fit, lambda: jax.eval_shape(lambda key: tf.init(key, model), jax.random.key(0)),
        version={"code": store.code_fingerprint([__name__])}, on_problem=progress,
    )  # fmt: skip
    if not fitted:
        progress(f"{name}: reusing saved parameters")
    return params, losses


def _train_models(config, data, model_dir, progress):
    """``({case: reference}, retrained, {name: losses})``: one reference per case, one retrained
    model (retain only; the retain data are the same in both cases)."""
    model = tf.TransformerConfig(**config["model"])
    key = jax.random.key(config["model_seed"])
    # DATA_VERSION names the sampler, so a change to it invalidates saved models.
    base = {"data_version": markov.DATA_VERSION, "data": config["data"], "data_seed": config["data_seed"],
            "model": config["model"], "train": config["train"], "model_seed": config["model_seed"]}
    refs, losses = {}, {}
    for case in config["cases"]:
        parts = reference_parts(case)
        train_set = markov.Sequences.concat([getattr(data[case], f"{p}_train") for p in parts])
        cfg = {**base, "trained_on": "+".join(parts),
               "forget2_length": int(data[case].forget2_train.mask.sum(axis=1).max()) if "forget2" in parts else None}
        refs[case], losses[f"ref_{case}"] = fit_or_load(
            model_dir, f"markov_reference_{case}", cfg, model,
            lambda: train_lm(jax.random.fold_in(key, 0), model, train_set, config["train"],
                             lambda m, case=case: progress(f"reference {case} {m}")),
            progress,
        )  # fmt: skip
    retain = data[config["cases"][0]].retain_train
    retr, losses["retr"] = fit_or_load(
        model_dir, "markov_retrained", {**base, "trained_on": "retain"}, model,
        lambda: train_lm(jax.random.fold_in(key, 1), model, retain, config["train"], lambda m: progress(f"retrained {m}")),
        progress,
    )  # fmt: skip
    return refs, retr, losses


# --------------------------------------------------------------------------- metrics


def eval_sets(retain: markov.Sequences, forget1: markov.Sequences, forget2: markov.Sequences, n, retr_params,
              true_log_probs_fn, probe: markov.Sequences) -> dict:
    """Fixed evaluation sets: the first ``n = (n_retain, n_forget1, n_forget2)`` test sequences
    of each set (``n=None``: all of them; an int: that many of each), pooled.

    Returns ``tokens (N, T)``; ``group (3, N, T-1)`` masks of each group's scored positions
    (retain, forget-1, forget-2); ``retr_logp``, ``true_logp (N, T-1, V)``: the retrained model's
    and the true chains' next-token laws; ``probe_tokens``, ``probe_mask``: forget training
    sequences whose NLL is tracked (``forget_train_nll``).
    """
    sets = (("retain", retain), ("forget1", forget1), ("forget2", forget2))
    counts = [len(s) for _, s in sets] if n is None else ([int(n)] * 3 if np.ndim(n) == 0 else [int(k) for k in n])
    if len(counts) != 3 or min(counts) < 1:
        raise ValueError(f"n_eval must be None, a positive int or three positive ints, got {n!r}")
    for (name, s), k in zip(sets, counts):
        if len(s) < k:
            raise ValueError(f"n_eval={k} exceeds the {len(s)} {name} test sequences")
    pooled = markov.Sequences.concat([s.take(slice(0, k)) for (_, s), k in zip(sets, counts)])
    m = pooled.mask[:, 1:]
    which = np.repeat(np.arange(3), counts)
    group = np.stack([np.where((which == g)[:, None], m, 0.0) for g in range(3)]).astype(np.float32)
    tokens = jnp.asarray(pooled.tokens)
    retr_logp = jnp.concatenate([tf.jit_next_token_log_probs(retr_params, tokens[i:i + 1024])
                                 for i in range(0, tokens.shape[0], 1024)])
    return {
        "tokens": tokens,
        "group": jnp.asarray(group),
        "retr_logp": retr_logp,
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

    def mean(v, w):
        return jnp.sum(v * w) / jnp.maximum(jnp.sum(w), 1.0)

    sq = sum(jnp.sum(jnp.square(a - b)) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ctx["params_ref"])))
    values = {
        "kl_true_retain": mean(kl_true, g[0]), "kl_true_forget1": mean(kl_true, g[1]),
        "kl_true_forget2": mean(kl_true, g[2]),
        "kl_retr_retain": mean(kl_retr, g[0]), "kl_retr_forget1": mean(kl_retr, g[1]),
        "kl_retr_forget2": mean(kl_retr, g[2]),
        "param_distance": jnp.sqrt(sq), "forget1_nll": mean(nll, g[1]), "forget2_nll": mean(nll, g[2]),
        "forget_train_nll": tf.next_token_nll(params, {"tokens": ev["probe_tokens"], "mask": ev["probe_mask"]}),
    }  # fmt: skip
    return {k: jnp.asarray(v, F32) for k, v in values.items()}


_evaluate = jax.jit(lambda params, ctx: markov_metrics(params, None, ctx))


# --------------------------------------------------------------------------- the experiment


def run_markov(config: dict, progress=lambda msg: None, folder: Optional[Path] = None) -> dict[str, np.ndarray]:
    """Run the experiment of ``config`` (:func:`~.config.markov_config`); models are kept in
    ``folder / "models"`` when a folder is given.

    Returns numpy arrays:
      ``methods (K,)`` (the study's, NPO and SimNPO), ``betas (K,)``, ``steps (E,)`` (0..50); per
      case ``c`` (``B``, ``A``): ``c_<metric> (K, S, E)`` for each name in :data:`METRICS`,
      ``c_diverged_step (K, S)``, ``c_reference_kl_true (3,)`` and ``c_retrained_kl_true (3,)``
      (per-token KL of the true chains to each model on the retain, forget-1 and forget-2
      evaluation sets: the targets), ``c_n_eval (3,)``; the collapse runs (case B):
      ``collapse_methods (K2,)``, ``collapse_steps (E3,)``, ``collapse_<metric> (K2, S, E3)``,
      ``collapse_diverged_step (K2, S)``, ``collapse_retrained_kl_true (3,)``; ``long_labels (J,)``, ``long_betas (J,)``
      (NaN for GA), ``long_steps (E2,)``, ``long_<metric> (J, E2)``, ``long_diverged_step (J,)``,
      ``long_fit_<param_distance|forget_nll_seq>_<linear|log|power> (J, 3)`` (intercept, slope,
      R^2; see :func:`synthetic.analysis.fit_laws`), ``long_fit_t_min ()``,
      ``long_forget_length ()``; ``losses_<ref_B|ref_A|retr>``; ``seconds_<phase> ()``.
    """
    model_dir = None if folder is None else Path(folder) / "models"
    t0 = time.perf_counter()
    seconds = {}
    cases = list(config["cases"])
    data = {c: markov.make_markov_data(jax.random.key(config["data_seed"]), case_data_config(config, c)) for c in cases}
    refs, retr, losses = _train_models(config, data, model_dir, progress)
    seconds["train"] = time.perf_counter() - t0

    u, lg, co = config["unlearn"], config["long"], config["collapse"]
    names, S = list(u["methods"]), int(u["seeds"])
    out = {"methods": np.array(names), "betas": np.array([u["beta"]] * len(names))}
    true_names = [f"kl_true_{g}" for g in GROUPS]
    n_probe = min(lg["n_forget"], len(data[cases[0]].forget1_train))
    probe = data[cases[0]].forget1_train.take(slice(0, n_probe))
    optimizer = _adamw_injected(float(u["weight_decay"]), float(u["eps"]))

    udatas = {}  # each case's unlearning data, built once (case B's serves the collapse runs too)

    def grid(case, method_names, eval_every, n_eval, label):
        d, ref = data[case], refs[case]
        mats = markov.chain_matrices(case_data_config(config, case))
        true_fn = lambda tokens, chain: markov.true_next_log_probs(mats, tokens, chain)  # noqa: E731
        ev = eval_sets(d.retain_test, d.forget1_test, d.forget2_test, n_eval, retr, true_fn, probe)
        ctx = {"ev": ev, "params_ref": ref}
        if case not in udatas:
            forget_set = markov.Sequences.concat([d.forget1_train, d.forget2_train])
            udatas[case] = tf.sequence_batch(ref, forget_set.tokens, forget_set.mask, d.retain_train.tokens,
                                             d.retain_train.mask)
        udata = udatas[case]
        n_ev = [int(ev["group"][g].any(axis=1).sum()) for g in range(3)]
        progress(f"{label}: {len(method_names)} methods x {S} seeds x {u['steps']} steps, scoring {n_ev[0]} retain, "
                 f"{n_ev[1]} forget-1 and {n_ev[2]} forget-2 test sequences every {eval_every} step(s)")
        result = engine.unlearn(
            tf.SEQUENCE_INPUTS, [get_method(n, beta=u["beta"]) for n in method_names], optimizer, ref, udata,
            engine.Schedule(tuple(range(0, u["steps"] + 1, eval_every))), markov_metrics, context=ctx,
            hyperparams={"learning_rate": [u["learning_rate"]] * len(method_names)},
            batches=engine.minibatches(forget=u["batch_size"], retain=u["batch_size"]), seeds=S,
            progress=lambda msg: progress(f"{label}: {msg}"),
        )  # fmt: skip
        return result, ctx, n_ev

    for case in cases:
        t1 = time.perf_counter()
        g, ctx, n_ev = grid(case, names, 1, u["n_eval"], f"case {case}")
        base_ref, base_retr = _evaluate(refs[case], ctx), _evaluate(retr, ctx)
        out["steps"] = g["steps"]
        out[f"{case}_diverged_step"] = g["diverged_step"].T
        for metric in METRICS:
            out[f"{case}_{metric}"] = np.swapaxes(g[metric], 0, 1)  # (S, K, E) -> (K, S, E)
        out[f"{case}_reference_kl_true"] = np.array([float(base_ref[k]) for k in true_names])
        out[f"{case}_retrained_kl_true"] = np.array([float(base_retr[k]) for k in true_names])
        out[f"{case}_n_eval"] = np.array(n_ev)
        seconds[f"unlearn_{case}"] = time.perf_counter() - t1

    # ---- the collapse curves: every method of `collapse`, case B, scored every `eval_every` steps
    t1 = time.perf_counter()
    g, ctx, _ = grid(cases[0], list(co["methods"]), int(co["eval_every"]), co["n_eval"], f"collapse, case {cases[0]}")
    out["collapse_methods"] = np.array(list(co["methods"]))
    out["collapse_steps"] = g["steps"]
    out["collapse_diverged_step"] = g["diverged_step"].T
    for metric in METRICS:
        out[f"collapse_{metric}"] = np.swapaxes(g[metric], 0, 1)
    out["collapse_retrained_kl_true"] = np.array([float(_evaluate(retr, ctx)[k]) for k in true_names])
    seconds["collapse"] = time.perf_counter() - t1

    # ---- long full-batch gradient-descent runs (case B's reference): GA and NPO at several betas
    t2 = time.perf_counter()
    case = cases[0]
    d = data[case]
    mats = markov.chain_matrices(case_data_config(config, case))
    small = eval_sets(d.retain_test, d.forget1_test, d.forget2_test, lg["n_eval"], retr,
                      lambda tokens, chain: markov.true_next_log_probs(mats, tokens, chain), probe)
    ctx = {"ev": small, "params_ref": refs[case]}
    long_methods = [get_method("GA")] + [get_method("NPO", beta=b) for b in lg["betas"]]
    labels = ["GA"] + [f"NPO beta={b:g}" for b in lg["betas"]]
    ldata = tf.sequence_batch(refs[case], probe.tokens, probe.mask)
    schedule = engine.Schedule.log_spaced(lg["steps"], (lg["n_records"] - 1) / np.log10(lg["steps"]))
    progress(f"long runs: {', '.join(labels)}; gradient descent, {lg['steps']} steps on {n_probe} forget-1 sequences")
    long = engine.unlearn(
        tf.SEQUENCE_INPUTS, long_methods, SGD, refs[case], ldata, schedule, markov_metrics, context=ctx,
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

    for name, values in losses.items():
        out[f"losses_{name}"] = np.asarray(values)
    seconds["total"] = time.perf_counter() - t0
    for k, v in seconds.items():
        out[f"seconds_{k}"] = np.asarray(v)
    progress("done: " + ", ".join(f"{k} {v:.0f}s" for k, v in seconds.items()))
    return out
