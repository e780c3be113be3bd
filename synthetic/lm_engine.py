"""Training and unlearning engine for the transformer (DESIGN.md "The engine", float32).

* :func:`fit_lm`: next-token cross-entropy with optax AdamW, minibatches drawn by epoch
  permutations of an explicit key; ONE jitted step, reused by every model of the same shape.
* :func:`fit_or_load`: :func:`fit_lm`, or the parameters saved by an earlier call with the same
  config (``synthetic.store``: ``.npz`` arrays + ``.json`` config, keyed by its hash).
* :func:`unlearn_lm_grid`: a flat batch of unlearning runs (stacked methods x seeds x learning
  rates) as ONE jitted ``vmap`` over runs. Each run starts at the reference parameters and
  takes minibatch steps of its method's loss (``theory.methods.method_loss``); metrics are
  recorded at the steps of a fixed schedule (every step, or log-spaced), all inside
  ``lax.scan`` / ``lax.fori_loop``. A run whose parameters become non-finite is frozen and
  reported by ``diverged_step``; its later metrics are NaN.

Metrics (:data:`METRICS`), on fixed evaluation subsets: per-token
``KL(pi_retr || pi_theta)`` and ``KL(P_true || pi_theta)`` on the retain, forget (forget-1 and
forget-2 pooled by tokens), forget-1 and forget-2 test sets; ``||theta - theta_ref||_2``; the
per-token NLL of the forget test subsets (pooled, forget-1, forget-2) and of the forget
*training* probe.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from synthetic import store
from synthetic.engine import keep_finite
from synthetic.models import take_label
from synthetic import transformer as tf
from synthetic.markov import Sequences
from theory.methods import LossInputs, Method, method_loss, stack_methods
from theory.objectives import kl_divergence
from theory.validate import check_int, check_positive

__all__ = [
    "TrainConfig",
    "fit_lm",
    "fit_or_load",
    "flatten_params",
    "unflatten_params",
    "masked_token_kl",
    "EvalSets",
    "make_eval_sets",
    "UnlearnData",
    "make_unlearn_data",
    "METRICS",
    "GROUPS",
    "evaluate",
    "unlearn_lm_grid",
    "log_spaced_steps",
]

F32 = jnp.float32
GROUPS = ("retain", "forget1", "forget2")
METRICS = (
    "kl_retr_retain", "kl_retr_forget", "kl_retr_forget1", "kl_retr_forget2",
    "kl_true_retain", "kl_true_forget", "kl_true_forget1", "kl_true_forget2",
    "param_distance", "forget_nll", "forget1_nll", "forget2_nll", "forget_train_nll",
)  # fmt: skip
"""What :func:`unlearn_lm_grid` records at each evaluation, in this order."""


# --------------------------------------------------------------------------- training


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """AdamW training from scratch (defaults: the SimNPO study, PAPER.md section 6)."""

    learning_rate: float = 5e-4
    batch_size: int = 128
    epochs: int = 5
    weight_decay: float = 0.01

    def __post_init__(self):
        check_positive(self.learning_rate, "learning_rate")
        for name in ("batch_size", "epochs"):
            check_int(getattr(self, name), name)
        if not (self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")


def _masked_nll(params, tokens_BxT, mask_BxT):
    lp_BxTm1 = tf.token_log_probs(params, tokens_BxT)
    m_BxTm1 = mask_BxT[:, 1:]
    return -jnp.sum(lp_BxTm1 * m_BxTm1) / jnp.maximum(jnp.sum(m_BxTm1), 1.0)


@functools.partial(jax.jit, static_argnames=("opt",), donate_argnums=(0, 1))
def _train_step(params, opt_state, tokens_NxT, mask_NxT, index_B, *, opt):
    loss, grads = jax.value_and_grad(_masked_nll)(params, tokens_NxT[index_B], mask_NxT[index_B])
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


@functools.lru_cache(maxsize=None)
def _adamw(learning_rate: float, weight_decay: float):
    # Cached so the optimizer (a static jit argument) is the same object for equal settings
    # and the train step compiles once per model shape.
    return optax.adamw(learning_rate, weight_decay=weight_decay)


def fit_lm(
    key: jax.Array,
    model: tf.TransformerConfig,
    data: Sequences,
    train: TrainConfig = TrainConfig(),
    progress: Callable[[str], None] = lambda msg: None,
):
    """Train a transformer from scratch on ``data`` (next-token NLL over masked tokens).

    ``epochs`` passes, each over a fresh permutation (the last partial batch is dropped).
    Returns:
      ``(params, losses)`` with ``losses`` the per-step training loss ``(steps,)`` (numpy).
    """
    n = len(data)
    if n < train.batch_size:
        raise ValueError(f"data has {n} sequences, fewer than batch_size={train.batch_size}")
    if data.tokens.shape[1] > model.context:
        raise ValueError(f"data length {data.tokens.shape[1]} exceeds the model context {model.context}")
    k_init, k_data = jax.random.split(key)
    params = tf.init(k_init, model)
    opt = _adamw(float(train.learning_rate), float(train.weight_decay))
    state = opt.init(params)
    tokens, mask = jnp.asarray(data.tokens), jnp.asarray(data.mask, F32)
    per_epoch = n // train.batch_size
    losses = []
    for epoch in range(train.epochs):
        perm = np.asarray(jax.random.permutation(jax.random.fold_in(k_data, epoch), n))
        for b in range(per_epoch):
            index = jnp.asarray(perm[b * train.batch_size : (b + 1) * train.batch_size])
            params, state, loss = _train_step(params, state, tokens, mask, index, opt=opt)
            losses.append(loss)
        progress(f"epoch {epoch + 1}/{train.epochs}: loss {float(losses[-1]):.4f}")
    return params, np.asarray(jnp.stack(losses))


def flatten_params(params) -> dict[str, np.ndarray]:
    """``{"blocks/qkv_LxDx3xHxK": array, ...}`` for saving as ``.npz``."""
    flat = {}
    for name, value in params.items():
        if isinstance(value, dict):
            flat.update({f"{name}/{k}": np.asarray(v) for k, v in value.items()})
        else:
            flat[name] = np.asarray(value)
    return flat


def unflatten_params(flat: dict) -> dict:
    """Inverse of :func:`flatten_params` (float32 device arrays)."""
    params: dict = {}
    for key, value in flat.items():
        if key == "losses":
            continue
        *outer, name = key.split("/")
        target = params.setdefault(outer[0], {}) if outer else params
        target[name] = jnp.asarray(value, F32)
    return params


def fit_or_load(
    folder: Optional[Path],
    name: str,
    config: dict,
    fit: Callable[[], tuple],
    progress: Callable[[str], None] = lambda msg: None,
):
    """``fit()`` -> ``(params, losses)``, saved under ``folder`` by ``config``'s hash; reused
    when a model with the same ``name`` and ``config`` was saved before (``folder=None``:
    always fit, never write)."""
    if folder is not None:
        saved = store.load(folder, name, config)
        if saved is not None:
            progress(f"{name}: reusing saved parameters")
            return unflatten_params(saved), saved["losses"]
    params, losses = fit()
    if folder is not None:
        store.save(folder, name, config, {**flatten_params(params), "losses": losses})
    return params, losses


# --------------------------------------------------------------------------- metrics


def masked_token_kl(p_logp_NxTxV, q_logp_NxTxV, mask_NxT) -> jax.Array:
    """Per-token ``KL(p || q)`` averaged over positions where ``mask_NxT`` is 1 (scalar)."""
    kl_NxT = kl_divergence(p_logp_NxTxV, q_logp_NxTxV)
    if kl_NxT.shape != jnp.shape(mask_NxT):
        raise ValueError(f"mask_NxT must have shape {kl_NxT.shape}, got {jnp.shape(mask_NxT)}")
    return jnp.sum(kl_NxT * mask_NxT) / jnp.maximum(jnp.sum(mask_NxT), 1.0)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class EvalSets:
    """Fixed evaluation subsets, pooled: ``n`` retain, then ``n`` forget-1, then ``n`` forget-2
    test sequences. ``group_G x N x (T-1)`` masks select each group's scored positions;
    ``retr_logp`` and ``true_logp`` ``(N, T-1, V)`` are the retrained model's and the true
    chains' next-token laws. ``probe_tokens``/``probe_mask``: forget training sequences whose
    NLL is tracked (``forget_train_nll``)."""

    tokens: jax.Array
    group_GxNxTm1: jax.Array
    retr_logp: jax.Array
    true_logp: jax.Array
    probe_tokens: jax.Array
    probe_mask: jax.Array


def make_eval_sets(retain: Sequences, forget1: Sequences, forget2: Sequences, n: int, retr_params, true_log_probs_fn, probe: Sequences) -> EvalSets:
    """The first ``n`` test sequences of each set, with the retrained and true laws precomputed."""
    for name, s in (("retain", retain), ("forget1", forget1), ("forget2", forget2)):
        if len(s) < n:
            raise ValueError(f"n_eval={n} exceeds the {len(s)} {name} test sequences")
    pooled = Sequences.concat([retain.take(slice(0, n)), forget1.take(slice(0, n)), forget2.take(slice(0, n))])
    m = pooled.mask[:, 1:]
    group = np.stack([np.where(np.arange(3 * n)[:, None] // n == g, m, 0.0) for g in range(3)]).astype(np.float32)
    tokens = jnp.asarray(pooled.tokens)
    return EvalSets(
        tokens=tokens,
        group_GxNxTm1=jnp.asarray(group),
        retr_logp=jax.jit(tf.next_token_log_probs)(retr_params, tokens),
        true_logp=jnp.asarray(true_log_probs_fn(pooled.tokens, pooled.chain), F32),
        probe_tokens=jnp.asarray(probe.tokens),
        probe_mask=jnp.asarray(probe.mask, F32),
    )


@jax.jit
def evaluate(params, params_ref, ev: EvalSets) -> jax.Array:
    """The :data:`METRICS` of ``params`` on ``ev`` (float32 ``(M,)``; ``param_distance`` to ``params_ref``)."""
    return _evaluate(params, params_ref, ev)


def _evaluate(params, params_ref, ev: EvalSets) -> jax.Array:
    logp_NxTm1xV = tf.next_token_log_probs(params, ev.tokens)
    kl_retr = kl_divergence(ev.retr_logp, logp_NxTm1xV)
    kl_true = kl_divergence(ev.true_logp, logp_NxTm1xV)
    nll = -take_label(logp_NxTm1xV, ev.tokens[:, 1:])
    g = ev.group_GxNxTm1
    forget = g[1] + g[2]

    def mean(v, w):
        return jnp.sum(v * w) / jnp.maximum(jnp.sum(w), 1.0)

    sq = sum(jnp.sum(jnp.square(a - b)) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(params_ref)))
    values = [mean(kl_retr, g[0]), mean(kl_retr, forget), mean(kl_retr, g[1]), mean(kl_retr, g[2])]
    values += [mean(kl_true, g[0]), mean(kl_true, forget), mean(kl_true, g[1]), mean(kl_true, g[2])]
    values += [jnp.sqrt(sq), mean(nll, forget), mean(nll, g[1]), mean(nll, g[2])]
    values += [_masked_nll(params, ev.probe_tokens, ev.probe_mask)]
    return jnp.stack([jnp.asarray(v, F32) for v in values])


# --------------------------------------------------------------------------- unlearning


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class UnlearnData:
    """Training data of an unlearning run, with the reference model's values precomputed.

    ``forget_*``: the forget set (tokens, mask, ``length`` = scored tokens, ``ref_logp`` =
    ``log pi_ref(y)`` per sequence). ``retain_*``: the retain set and ``retain_ref_logp``
    ``(N, T-1, V)``, the reference's next-token laws (for ``K_RT``).
    """

    forget_tokens: jax.Array
    forget_mask: jax.Array
    forget_length: jax.Array
    forget_ref_logp: jax.Array
    retain_tokens: jax.Array
    retain_mask: jax.Array
    retain_ref_logp: jax.Array


def make_unlearn_data(params_ref, forget: Sequences, retain: Sequences, chunk: int = 1024) -> UnlearnData:
    """Precompute the reference's per-sequence log-probs on ``forget`` and laws on ``retain``."""
    seq_lp = jax.jit(tf.sequence_log_probs)
    dist = jax.jit(tf.next_token_log_probs)
    f_tok, f_mask = jnp.asarray(forget.tokens), jnp.asarray(forget.mask, F32)
    r_tok = jnp.asarray(retain.tokens)
    ref_f = jnp.concatenate([seq_lp(params_ref, f_tok[i : i + chunk], f_mask[i : i + chunk]) for i in range(0, len(forget), chunk)])
    ref_r = jnp.concatenate([dist(params_ref, r_tok[i : i + chunk]) for i in range(0, len(retain), chunk)])
    return UnlearnData(
        forget_tokens=f_tok,
        forget_mask=f_mask,
        forget_length=jnp.asarray(forget.length, F32),
        forget_ref_logp=ref_f,
        retain_tokens=r_tok,
        retain_mask=jnp.asarray(retain.mask, F32),
        retain_ref_logp=ref_r,
    )


def _make_optimizer(kind: str, learning_rate, weight_decay: float):
    if kind == "adamw":
        return optax.inject_hyperparams(optax.adamw)(learning_rate=learning_rate, weight_decay=weight_decay)
    return optax.inject_hyperparams(optax.sgd)(learning_rate=learning_rate)


def _unlearn_run(params_ref, data: UnlearnData, ev: EvalSets, method: Method, learning_rate, key, record_E, *, batch_size: int, optimizer: str, weight_decay: float, needs_retain: bool):
    n_f, n_r = data.forget_tokens.shape[0], data.retain_tokens.shape[0]
    full_batch = batch_size >= n_f

    def loss_fn(params, k):
        kf, kr = jax.random.split(k)
        fi = jnp.arange(n_f) if full_batch else jax.random.choice(kf, n_f, (batch_size,), replace=False)
        f_tok, f_mask = data.forget_tokens[fi], data.forget_mask[fi]
        f_lp = tf.sequence_log_probs(params, f_tok, f_mask)
        r_lp = r_kl = None
        if needs_retain:  # static: no retain forward pass for a grid of forget-only methods
            ri = jax.random.choice(kr, n_r, (batch_size,), replace=False)
            r_tok, r_mask = data.retain_tokens[ri], data.retain_mask[ri]
            r_logp = tf.next_token_log_probs(params, r_tok)
            r_lp = jnp.sum(take_label(r_logp, r_tok[:, 1:]) * r_mask[:, 1:], axis=-1)
            # K_RT per sequence: the per-token KL(pi_theta || pi_ref) summed over its tokens.
            r_kl = jnp.sum(kl_divergence(r_logp, data.retain_ref_logp[ri]) * r_mask[:, 1:], axis=-1)
        inputs = LossInputs(
            forget_logp=f_lp,
            forget_ref_logp=data.forget_ref_logp[fi],
            forget_length=data.forget_length[fi],
            retain_logp=r_lp,
            retain_kl=r_kl,
        )
        return method_loss(method, inputs)

    opt = _make_optimizer(optimizer, learning_rate, weight_decay)

    def one_step(t, carry):
        params, state, diverged_step = carry
        grads = jax.grad(loss_fn)(params, jax.random.fold_in(key, t))
        updates, new_state = opt.update(grads, state, params)
        new_params = optax.apply_updates(params, updates)
        (params, state), diverged_step = keep_finite((new_params, new_state), (params, state), diverged_step, t)
        return params, state, diverged_step

    def chunk(carry, bounds):
        start, stop = bounds
        carry = jax.lax.fori_loop(start, stop, one_step, carry)
        values = _evaluate(carry[0], params_ref, ev)
        return carry, jnp.where(carry[2] >= 0, jnp.nan, values)

    carry0 = (params_ref, opt.init(params_ref), jnp.asarray(-1, jnp.int32))
    starts = jnp.concatenate([record_E[:1], record_E[:-1]])
    carry, values_ExM = jax.lax.scan(chunk, carry0, (starts, record_E))
    return values_ExM, carry[2]


@functools.partial(jax.jit, static_argnames=("batch_size", "optimizer", "weight_decay", "needs_retain"))
def _grid(params_ref, data, ev, methods, learning_rates, keys, record_E, *, batch_size, optimizer, weight_decay, needs_retain):
    run = functools.partial(_unlearn_run, batch_size=batch_size, optimizer=optimizer, weight_decay=weight_decay, needs_retain=needs_retain)
    return jax.vmap(run, in_axes=(None, None, None, 0, 0, 0, None))(params_ref, data, ev, methods, learning_rates, keys, record_E)


def log_spaced_steps(steps: int, n: int) -> np.ndarray:
    """``0`` and about ``n`` distinct integer steps log-spaced in ``[1, steps]`` (``steps`` included)."""
    if steps < 1 or n < 1:
        raise ValueError(f"steps and n must be >= 1, got steps={steps!r}, n={n!r}")
    return np.unique(np.concatenate([[0], np.round(np.logspace(0, np.log10(steps), n)).astype(int), [steps]]))


def unlearn_lm_grid(
    params_ref,
    data: UnlearnData,
    ev: EvalSets,
    methods: list[Method],
    learning_rates,
    seeds,
    record_steps,
    *,
    batch_size: int = 4,
    optimizer: str = "adamw",
    weight_decay: float = 0.0,
) -> dict:
    """Run ``len(methods)`` unlearning runs as one jitted ``vmap`` (run ``i`` is
    ``(methods[i], learning_rates[i], seeds[i])``; repeat entries to make a methods x seeds grid).

    Args:
      params_ref: the reference parameters (every run starts there).
      data: :func:`make_unlearn_data`; ev: :func:`make_eval_sets`.
      methods: concrete :class:`~theory.methods.Method` records (with their beta).
      learning_rates, seeds: one per run; a seed fixes the run's minibatch order.
      record_steps: increasing integer steps to record at, starting at 0 (0 = the reference);
        the run lasts ``record_steps[-1]`` steps.
      batch_size: forget (and retain) minibatch size; ``>=`` the forget set size means full batch.
      optimizer: ``"adamw"`` or ``"sgd"`` (plain gradient descent, Theorem 2's setting).
      weight_decay: AdamW's decoupled weight decay.
    Returns:
      ``{"values": (R, E, M) numpy with M = len(METRICS), "diverged_step": (R,) (-1 = never),
      "steps": (E,)}``.
    """
    n = len(methods)
    if optimizer not in ("adamw", "sgd"):
        raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {optimizer!r}")
    check_int(batch_size, "batch_size")
    if batch_size > data.retain_tokens.shape[0]:
        raise ValueError(f"batch_size={batch_size} exceeds the {data.retain_tokens.shape[0]} retain sequences")
    lrs = np.asarray(learning_rates, float)
    seeds = np.asarray(seeds)
    if lrs.shape != (n,) or seeds.shape != (n,):
        raise ValueError(f"learning_rates and seeds must have one entry per method ({n}), got shapes {lrs.shape}, {seeds.shape}")
    check_positive(lrs, "learning_rates")
    record = np.asarray(record_steps)
    if record.ndim != 1 or record[0] != 0 or np.any(np.diff(record) <= 0):
        raise ValueError(f"record_steps must be increasing integers starting at 0, got {record.tolist()[:10]}...")
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))
    stacked = stack_methods(methods)
    needs_retain = bool(np.any(np.asarray(stacked.rt) != 0) or np.any(np.asarray(stacked.kl_rt) != 0))
    values, diverged = _grid(
        params_ref, data, ev, stacked, jnp.asarray(lrs, F32), keys, jnp.asarray(record, jnp.int32),
        batch_size=int(batch_size), optimizer=optimizer, weight_decay=float(weight_decay), needs_retain=needs_retain,
    )  # fmt: skip
    return {"values": np.asarray(values), "diverged_step": np.asarray(diverged), "steps": record}
