"""The Markov study's language models: training them, and the study's measures of a model.

* :func:`train_lm`: the study's training (next-token NLL, the ``transformers`` AdamW,
  :func:`synthetic.optim.transformers_adamw`); :func:`fit_or_load` keeps trained models in a
  folder, keyed by their config and by this module's code (so editing the experiment's runs,
  claims or figures never retrains them).
* :func:`eval_sets` and :func:`markov_metrics`: fixed evaluation sets and the engine's metrics
  function: per-token KL to the true chains and to the retrained model on each set, the
  parameter distance, and the forget NLLs.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from synthetic import engine, store
from synthetic.models import transformer as tf
from synthetic.models.logistic import take_label
from synthetic.optim import transformers_adamw
from synthetic.worlds.markov import data as markov
from theory.objectives import kl_divergence
from theory.validate import check_key

__all__ = ["METRICS", "GROUPS", "train_lm", "fit_or_load", "eval_sets", "markov_metrics", "adamw_injected",
           "evaluate"]

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


@functools.lru_cache(maxsize=None)
def _adamw(learning_rate: float, weight_decay: float, eps: float) -> optax.GradientTransformation:
    # One object per setting, so the jitted training step compiles once per model shape.
    return transformers_adamw(learning_rate, weight_decay=weight_decay, eps=eps)


@functools.lru_cache(maxsize=None)
def adamw_injected(weight_decay: float, eps: float) -> optax.GradientTransformation:
    # The unlearning runs' AdamW; the engine injects each setting's learning rate.
    return optax.inject_hyperparams(transformers_adamw)(learning_rate=1.0, weight_decay=weight_decay, eps=eps)


def train_lm(key, model: tf.TransformerConfig, data: markov.Sequences, train: dict,
             progress: Callable[[str], None] = lambda msg: None):
    """Train a transformer from scratch on ``data`` (next-token NLL over the scored tokens).

    ``train``: ``learning_rate``, ``batch_size``, ``epochs``, and optionally ``weight_decay``
    (default 0) and ``eps`` (default 1e-6) of the ``transformers`` AdamW and ``drop_last``
    (default ``False``: an epoch's last partial batch is kept, as the study's PyTorch
    ``DataLoader`` keeps it).
    Returns ``(params, losses)`` (see :func:`synthetic.engine.train`).
    """
    check_key(key)
    if data.tokens.shape[1] > model.context:
        raise ValueError(f"data length {data.tokens.shape[1]} exceeds the model context {model.context}")
    k_init, k_data = jax.random.split(key)
    return engine.train(
        k_data, tf.init(k_init, model), tf.next_token_nll, {"tokens": data.tokens, "mask": np.asarray(data.mask, np.float32)},
        _adamw(float(train["learning_rate"]), float(train.get("weight_decay", 0.0)), float(train.get("eps", 1e-6))),
        batch_size=train["batch_size"], epochs=train["epochs"], drop_last=bool(train.get("drop_last", False)),
        progress=progress,
    )  # fmt: skip


def fit_or_load(folder: Optional[Path], name: str, config: dict, model: tf.TransformerConfig, fit: Callable[[], tuple],
                progress: Callable[[str], None] = lambda msg: None):
    """``fit()`` -> ``(params, losses)``, saved under ``folder`` by config and code version; reused
    when saved before by the same code (``folder=None``: always fit, never write). A damaged
    saved model is reported through ``progress`` and refitted."""
    params, losses, fitted = store.load_or_fit(
        folder, name, config, fit, lambda: jax.eval_shape(lambda key: tf.init(key, model), jax.random.key(0)),
        version={"code": store.code_fingerprint([__name__]), **store.numeric_mode()}, on_problem=progress,
    )  # fmt: skip
    if not fitted:
        progress(f"{name}: reusing saved parameters")
    return params, losses


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

    values = {
        "kl_true_retain": mean(kl_true, g[0]), "kl_true_forget1": mean(kl_true, g[1]),
        "kl_true_forget2": mean(kl_true, g[2]),
        "kl_retr_retain": mean(kl_retr, g[0]), "kl_retr_forget1": mean(kl_retr, g[1]),
        "kl_retr_forget2": mean(kl_retr, g[2]),
        "param_distance": engine.param_distance(params, ctx["params_ref"]), "forget1_nll": mean(nll, g[1]), "forget2_nll": mean(nll, g[2]),
        "forget_train_nll": tf.next_token_nll(params, {"tokens": ev["probe_tokens"], "mask": ev["probe_mask"]}),
    }  # fmt: skip
    return {k: jnp.asarray(v, F32) for k, v in values.items()}


evaluate = jax.jit(lambda params, ctx: markov_metrics(params, None, ctx))
""":func:`markov_metrics` of one model (the reference, the retrained model), jitted."""
