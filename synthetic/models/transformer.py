"""A small decoder-only transformer in plain JAX, and its loss inputs for the engine.

Token and learned position embeddings, ``layers`` blocks (causal self-attention, then an MLP,
each in a residual branch) and an untied output projection. One code, two architectures, set
by :class:`TransformerConfig` (a config switch, not a copy):

* the default, GPT-2 style: pre-LayerNorm blocks, multi-head attention with an output
  projection, a GELU MLP of 4x the width, a final LayerNorm, GPT-2's initialisation;
* :meth:`TransformerConfig.study`, the model of the SimNPO synthetic study's code (Fan et al.
  2024, arXiv:2410.07163): post-LayerNorm blocks (LayerNorm after each residual add), one
  attention head over the full width and no attention output projection, a width -> width
  ReLU MLP, no final LayerNorm, no query/key/value biases (the MLP and the output projection
  have them), PyTorch's default initialisation except the learned positions, N(0, 0.02) as
  GPT-2's.

The parameters carry their config (a static pytree node under the key ``"config"``, no
leaves), so every function reads the architecture from ``params`` and optimizers, ``vmap``
and saving see only the arrays.

* :func:`init` ``(key, config) -> params``: a plain dict of float32 arrays whose names carry
  their shapes (nanodo style: ``embed_VxD``; block weights are stacked over the layer axis
  ``L`` and the blocks run under ``lax.scan``, so compile time does not grow with depth).
* :func:`next_token_log_probs` ``(params, tokens_BxT) -> (B, T-1, V)``: the model's
  log-distribution of token ``t+1`` given tokens ``<= t`` (for KL metrics).
* :func:`token_log_probs` ``(params, tokens_BxT) -> (B, T-1)``: the log-probability of each
  actual next token.
* :func:`residual_stream` ``(params, tokens_BxT, layer) -> (B, T, D)``: the hidden
  activations after ``layer`` blocks (for methods that act on representations).
* :func:`generate`: jitted sampling (``temperature > 0``) or greedy decoding
  (``temperature = 0``) with fixed shapes and a ``lax.fori_loop``; :func:`greedy_complete`:
  greedy answers to prompts of different lengths with a key/value cache (traceable, for
  metrics inside the engine).
* :data:`SEQUENCE_INPUTS` and :func:`sequence_batch`: the inputs of every unlearning method
  (per-sequence log-probabilities, KLs to the reference) for the engine.

Parameters are float32, whatever JAX's float64 setting.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from synthetic.engine.inputs import Provider, Providers
from theory.objectives import kl_divergence
from theory.validate import check_int, check_key, check_labels

__all__ = [
    "SEQUENCE_INPUTS",
    "sequence_batch",
    "residual_stream",
    "TransformerConfig",
    "init",
    "config_of",
    "param_count",
    "matmul_flops_per_token",
    "forward",
    "next_token_log_probs",
    "token_log_probs",
    "sequence_log_probs",
    "greedy_complete",
    "next_token_nll",
    "generate",
]

DTYPE = jnp.float32


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """Shape and architecture of the transformer (hashable, so it can be a static jit argument).

    Attributes:
      vocab_size: ``V``, number of token values.
      context: ``T``, the longest sequence the model reads (size of the position table).
      layers: ``L``, number of blocks.
      width: ``D``, the residual width; divisible by ``heads``.
      heads: ``H``, attention heads (head size ``D / H``).
      mlp_ratio: the MLP's hidden width is ``mlp_ratio * D``.
      norm: ``"pre"`` (LayerNorm at the input of each branch) or ``"post"`` (after each
        residual add).
      attn_out: whether the attention has an output projection (without one, the heads'
        outputs are concatenated straight into the residual stream).
      final_norm: whether a LayerNorm precedes the output projection.
      activation: the MLP's, ``"gelu"`` or ``"relu"``.
      qkv_bias: biases on the query/key/value maps.
      out_bias: a bias on the output projection (the MLP always has biases).
      init: ``"gpt2"`` (N(0, 0.02) weights, residual outputs scaled by 1/sqrt(2L), zero
        biases) or ``"torch"`` (PyTorch's defaults: linear weights and biases
        U(-1/sqrt(fan_in), 1/sqrt(fan_in)), embeddings N(0, 1)).
      pos_std: if given, the learned positions start N(0, ``pos_std``) whatever ``init``
        (the SimNPO study's code draws them as GPT-2 does, N(0, 0.02), in an otherwise
        PyTorch-initialised model).
    """

    vocab_size: int = 10
    context: int = 20
    layers: int = 4
    width: int = 128
    heads: int = 4
    mlp_ratio: int = 4
    norm: str = "pre"
    attn_out: bool = True
    final_norm: bool = True
    activation: str = "gelu"
    qkv_bias: bool = False
    out_bias: bool = False
    init: str = "gpt2"
    pos_std: Optional[float] = None

    def __post_init__(self):
        for name in ("vocab_size", "context", "layers", "width", "heads", "mlp_ratio"):
            check_int(getattr(self, name), name, 2 if name in ("vocab_size", "context") else 1)
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be divisible by heads ({self.heads})")
        for name, allowed in (("norm", ("pre", "post")), ("activation", ("gelu", "relu")), ("init", ("gpt2", "torch"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("attn_out", "final_norm", "qkv_bias", "out_bias"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.pos_std is not None and not (isinstance(self.pos_std, (int, float)) and not isinstance(self.pos_std, bool)
                                             and math.isfinite(self.pos_std) and self.pos_std > 0):
            raise ValueError(f"pos_std must be None or a positive finite number, got {self.pos_std!r}")

    @classmethod
    def study(cls, vocab_size: int = 10, context: int = 20, **overrides) -> "TransformerConfig":
        """The SimNPO study's model as its code builds it: 4 post-LN layers of width 128, one
        head, no attention output projection and no query/key/value biases, a 128 -> 128 ReLU
        MLP, no final LayerNorm, an output projection with a bias; PyTorch's initialisation,
        except the learned positions, N(0, 0.02)."""
        fields = dict(vocab_size=vocab_size, context=context, layers=4, width=128, heads=1, mlp_ratio=1, norm="post",
                      attn_out=False, final_norm=False, activation="relu", qkv_bias=False, out_bias=True,
                      init="torch", pos_std=0.02)
        return cls(**{**fields, **overrides})

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


jax.tree_util.register_static(TransformerConfig)  # params["config"]: in the treedef, never a leaf


def _shapes(config: TransformerConfig) -> dict:
    """Every weight's shape, by its name in the parameter tree (``blocks/...`` stacked over L)."""
    V, T, L, D, H = config.vocab_size, config.context, config.layers, config.width, config.heads
    K, F = D // H, config.mlp_ratio * D
    shapes = {"embed_VxD": (V, D), "pos_TxD": (T, D), "blocks/qkv_LxDx3xHxK": (L, D, 3, H, K)}
    if config.qkv_bias:
        shapes["blocks/qkv_bias_Lx3xHxK"] = (L, 3, H, K)
    if config.attn_out:
        shapes["blocks/attn_out_LxHxKxD"] = (L, H, K, D)
    shapes.update({"blocks/mlp_in_LxDxF": (L, D, F), "blocks/mlp_in_bias_LxF": (L, F),
                   "blocks/mlp_out_LxFxD": (L, F, D), "blocks/mlp_out_bias_LxD": (L, D), "out_DxV": (D, V)})
    if config.out_bias:
        shapes["out_bias_V"] = (V,)
    return shapes


def _fan_in(name: str, config: TransformerConfig) -> int:
    D, F = config.width, config.mlp_ratio * config.width
    return {"blocks/attn_out_LxHxKxD": D, "blocks/mlp_out_LxFxD": F, "blocks/mlp_out_bias_LxD": F}.get(name, D)


def init(key: jax.Array, config: TransformerConfig) -> dict:
    """Random float32 parameters, by ``config.init``: ``"gpt2"``, N(0, 0.02) weights with
    residual outputs scaled by 1/sqrt(2L), zero biases; ``"torch"``, PyTorch's defaults (linear
    weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)), embeddings N(0, 1)); the positions
    N(0, ``config.pos_std``) when it is set. LayerNorm scales start at one and biases at zero."""
    check_key(key)
    if not isinstance(config, TransformerConfig):
        raise ValueError(f"config must be a TransformerConfig, got {type(config).__name__}")
    L, D = config.layers, config.width
    shapes = _shapes(config)
    # One compiled program draws every weight, flat: the same numbers as normal(key, shape) (the
    # counters are the flat indices), and far quicker to compile than one sampler per shape.
    # The scaling stays outside, so the rounding is that of the eager draws. (The GPT-2 keys are
    # those the model had before the architecture switches, so its numbers are unchanged.)
    gpt2_order = ("embed_VxD", "pos_TxD", "blocks/qkv_LxDx3xHxK", "blocks/attn_out_LxHxKxD", "blocks/mlp_in_LxDxF",
                  "blocks/mlp_out_LxFxD", "out_DxV")
    k = jax.random.split(key, 6)
    gpt2_keys = dict(zip(gpt2_order, [k[0], k[1], k[2], k[3], k[4], k[5], jax.random.fold_in(key, 7)]))
    names = list(shapes)
    keys = [gpt2_keys.get(n, jax.random.fold_in(key, 100 + i)) for i, n in enumerate(names)]
    sizes = tuple(math.prod(shapes[n]) for n in names)
    draws = _draw_normals(jnp.stack(keys), sizes, "normal")
    if config.init == "torch":  # linear maps uniform, embeddings normal
        uniform = _draw_normals(jnp.stack(keys), sizes, "uniform")
        draws = [d if n in ("embed_VxD", "pos_TxD") else u for n, d, u in zip(names, draws, uniform)]
    w = {n: d.reshape(shapes[n]) for n, d in zip(names, draws)}
    if config.init == "torch":
        p = {n: (w[n] if n in ("embed_VxD", "pos_TxD") else w[n] / math.sqrt(_fan_in(n, config))) for n in names}
    else:
        std, out_std = 0.02, 0.02 / math.sqrt(2 * L)
        residual = ("blocks/attn_out_LxHxKxD", "blocks/mlp_out_LxFxD")
        p = {n: (jnp.zeros(shapes[n], DTYPE) if "bias" in n else (out_std if n in residual else std) * w[n])
             for n in names}
    if config.pos_std is not None:
        p["pos_TxD"] = config.pos_std * w["pos_TxD"]
    norms = ("ln1", "ln2")
    for ln in norms:
        p[f"blocks/{ln}_scale_LxD"] = jnp.ones((L, D), DTYPE)
        p[f"blocks/{ln}_bias_LxD"] = jnp.zeros((L, D), DTYPE)
    params = {"config": config, "blocks": {}}
    for n, v in p.items():
        if n.startswith("blocks/"):
            params["blocks"][n[len("blocks/"):]] = v
        else:
            params[n] = v
    if config.final_norm:
        params["ln_f_scale_D"] = jnp.ones((D,), DTYPE)
        params["ln_f_bias_D"] = jnp.zeros((D,), DTYPE)
    return params


@functools.partial(jax.jit, static_argnums=(1, 2))
def _draw_normals(keys, sizes, law="normal"):
    """Standard normal draws, or uniform on [-1, 1) for ``law="uniform"``, one per key and size."""
    if law == "uniform":
        return [jax.random.uniform(key, (n,), DTYPE, -1.0, 1.0) for key, n in zip(keys, sizes)]
    return [jax.random.normal(key, (n,), DTYPE) for key, n in zip(keys, sizes)]


def param_count(params) -> int:
    """Number of scalar parameters."""
    return int(sum(np.prod(a.shape) for a in jax.tree.leaves(params)))


def matmul_flops_per_token(config: TransformerConfig, seq_len: int) -> dict:
    """Analytic multiply-add FLOPs (2 per MAC) of one token's forward pass.

    Returns ``{"dense": ..., "attention": ...}``: ``dense`` is ``2 * (matmul weights)``
    (QKV, attention output, MLP, output projection; embeddings are lookups), ``attention``
    the score and value products, ``2 * 2 * L * T * D`` averaged over positions of a causal
    sequence (counted as full ``T x T``, as XLA computes them). Training is about 3x forward.
    """
    D, L, V = config.width, config.layers, config.vocab_size
    F = config.mlp_ratio * D
    dense = 2 * (L * (3 * D * D + (D * D if config.attn_out else 0) + 2 * D * F) + D * V)
    attention = 2 * 2 * L * seq_len * D
    return {"dense": dense, "attention": attention}


def _lead(v, x):
    """``v`` of shape ``(D,)`` with leading unit axes to match ``x``'s rank (explicit
    broadcasting: the test suite runs with ``jax_numpy_rank_promotion='raise'``)."""
    return jnp.reshape(v, (1,) * (x.ndim - v.ndim) + v.shape)


def _layer_norm(x, scale, bias, eps=1e-5):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps) * _lead(scale, x) + _lead(bias, x)


def _qkv(config: TransformerConfig, x, p):
    """The attention inputs of a block: ``(q, k, v)``, each ``x.shape[:-1] + (H, K)``."""
    h = _layer_norm(x, p["ln1_scale_LxD"], p["ln1_bias_LxD"]) if config.norm == "pre" else x
    qkv = jnp.einsum("...d,dshk->...shk", h, p["qkv_LxDx3xHxK"])
    if config.qkv_bias:
        qkv = qkv + _lead(p["qkv_bias_Lx3xHxK"], qkv)
    return qkv[..., 0, :, :], qkv[..., 1, :, :], qkv[..., 2, :, :]


def _after_attention(config: TransformerConfig, x, o, p):
    """The rest of a block once attention has given ``o`` (``x.shape[:-1] + (H, K)``): the
    attention residual, the MLP residual, and the layer norms where the config puts them."""
    pre = config.norm == "pre"
    if config.attn_out:
        x = x + jnp.einsum("...hk,hkd->...d", o, p["attn_out_LxHxKxD"])
    else:
        x = x + o.reshape(x.shape)
    if not pre:
        x = _layer_norm(x, p["ln1_scale_LxD"], p["ln1_bias_LxD"])
    h = _layer_norm(x, p["ln2_scale_LxD"], p["ln2_bias_LxD"]) if pre else x
    h = h @ p["mlp_in_LxDxF"]
    h = h + _lead(p["mlp_in_bias_LxF"], h)
    h = jax.nn.gelu(h) if config.activation == "gelu" else jax.nn.relu(h)
    x = x + h @ p["mlp_out_LxFxD"] + _lead(p["mlp_out_bias_LxD"], x)
    if not pre:
        x = _layer_norm(x, p["ln2_scale_LxD"], p["ln2_bias_LxD"])
    return x


def _block(config: TransformerConfig, x_BxTxD, p):
    T = x_BxTxD.shape[1]
    q_BxTxHxK, k_BxTxHxK, v_BxTxHxK = _qkv(config, x_BxTxD, p)
    att_BxHxTxT = jnp.einsum("bqhk,bshk->bhqs", q_BxTxHxK, k_BxTxHxK) / jnp.sqrt(
        jnp.asarray(config.head_dim, DTYPE)
    )
    causal_TxT = jnp.tril(jnp.ones((T, T), dtype=bool))
    att_BxHxTxT = jnp.where(causal_TxT[None, None], att_BxHxTxT, jnp.asarray(-1e30, DTYPE))
    att_BxHxTxT = jax.nn.softmax(att_BxHxTxT, axis=-1)
    o_BxTxHxK = jnp.einsum("bhqs,bshk->bqhk", att_BxHxTxT, v_BxTxHxK)
    return _after_attention(config, x_BxTxD, o_BxTxHxK, p)


def _as_tokens(tokens, name: str = "tokens_BxT"):
    """``tokens`` as a JAX array (a nested list or numpy array of ids is converted; a string or
    anything without numbers is refused naming ``name``)."""
    if isinstance(tokens, jax.Array):  # traced values too
        return tokens
    if not isinstance(tokens, (str, bytes)):
        try:
            return jnp.asarray(tokens)
        except (TypeError, ValueError):
            pass
    raise ValueError(f"{name} must be an integer array of token ids of shape (batch, time), got a {type(tokens).__name__}")


def _check_tokens(tokens, config: TransformerConfig, name: str = "tokens_BxT") -> None:
    """Shape and dtype always; the ids' range ``[0, vocab_size)`` when ``tokens`` is concrete (an
    id out of range would be clamped by the embedding lookup: token 100 of a vocabulary of 10
    reads token 9's embedding). Traced tokens, inside ``jit``/``vmap``, cannot be inspected:
    the public wrappers check them before tracing."""
    shape = jnp.shape(tokens)
    if len(shape) != 2 or shape[1] < 1:
        raise ValueError(f"{name} must have shape (batch, time), got shape {shape}")
    if shape[1] > config.context:
        raise ValueError(f"{name} has {shape[1]} positions, more than the context {config.context}")
    if not jnp.issubdtype(jnp.asarray(tokens).dtype, jnp.integer):
        raise ValueError(f"{name} must hold integer token ids, got dtype {jnp.asarray(tokens).dtype}")
    _check_ids(tokens, config, name)


def _check_ids(tokens, config: TransformerConfig, name: str) -> None:
    check_labels(tokens, name, config.vocab_size, what=f"token ids of the vocabulary of {config.vocab_size}")


def _check_mask(mask, name: str, shape) -> None:
    """A concrete mask must be 0s and 1s (a 2 would weigh a token twice), shaped like its tokens."""
    m = np.asarray(mask)
    if m.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a 0/1 array, got dtype {m.dtype}")
    if shape is not None and m.shape != tuple(shape):
        raise ValueError(f"{name} must have the shape of its tokens {tuple(shape)}, got {m.shape}")
    if m.size and not np.isin(m, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0 and 1, got values {sorted(set(np.unique(m).tolist()) - {0, 1})[:5]}")


def config_of(params) -> TransformerConfig:
    """The config the parameters carry (:func:`init` stores it); for a bare dict of the
    default architecture's arrays, recovered from their shapes."""
    if "config" in params:
        return params["config"]
    V, D = params["embed_VxD"].shape
    T = params["pos_TxD"].shape[0]
    L, _, _, H, _ = params["blocks"]["qkv_LxDx3xHxK"].shape
    F = params["blocks"]["mlp_in_LxDxF"].shape[-1]
    return TransformerConfig(vocab_size=V, context=T, layers=L, width=D, heads=H, mlp_ratio=F // D)


def _embed(params, tokens_BxT):
    config = config_of(params)
    tokens_BxT = _as_tokens(tokens_BxT)
    _check_tokens(tokens_BxT, config)
    T = tokens_BxT.shape[1]
    return config, params["embed_VxD"][tokens_BxT] + params["pos_TxD"][None, :T]


def _run_blocks(config, x_BxTxD, blocks):
    def layer(x, p):
        return _block(config, x, p), None

    x_BxTxD, _ = jax.lax.scan(layer, x_BxTxD, blocks)
    return x_BxTxD


def forward(params: dict, tokens_BxT: jax.Array) -> jax.Array:
    """Logits ``(B, T, V)``: position ``t`` predicts token ``t+1`` from tokens ``<= t``."""
    config, x_BxTxD = _embed(params, tokens_BxT)
    x_BxTxD = _run_blocks(config, x_BxTxD, params["blocks"])
    if config.final_norm:
        x_BxTxD = _layer_norm(x_BxTxD, params["ln_f_scale_D"], params["ln_f_bias_D"])
    logits_BxTxV = x_BxTxD @ params["out_DxV"]
    if config.out_bias:
        logits_BxTxV = logits_BxTxV + _lead(params["out_bias_V"], logits_BxTxV)
    return logits_BxTxV


def residual_stream(params: dict, tokens_BxT: jax.Array, layer: int) -> jax.Array:
    """The residual stream ``(B, T, D)`` after the first ``layer`` blocks (0: the embeddings)."""
    config, x_BxTxD = _embed(params, tokens_BxT)
    check_int(layer, "layer", 0)
    if layer > config.layers:
        raise ValueError(f"layer must be <= the model's {config.layers} layers, got {layer}")
    if layer == 0:
        return x_BxTxD
    return _run_blocks(config, x_BxTxD, jax.tree.map(lambda a: a[:layer], params["blocks"]))


def next_token_log_probs(params: dict, tokens_BxT: jax.Array) -> jax.Array:
    """``log pi(. | tokens_{<=t})`` for ``t = 0..T-2``: shape ``(B, T-1, V)``."""
    return jax.nn.log_softmax(forward(params, tokens_BxT)[:, :-1], axis=-1)


def token_log_probs(params: dict, tokens_BxT: jax.Array) -> jax.Array:
    """``log pi(token_{t+1} | tokens_{<=t})`` for ``t = 0..T-2``: shape ``(B, T-1)``.

    The first token is context only (there is no beginning-of-sequence token).
    """
    tokens_BxT = _as_tokens(tokens_BxT)
    logp_BxTm1xV = next_token_log_probs(params, tokens_BxT)
    return jnp.take_along_axis(logp_BxTm1xV, tokens_BxT[:, 1:, None], axis=-1)[..., 0]


def sequence_log_probs(params: dict, tokens_BxT: jax.Array, mask_BxT: jax.Array) -> jax.Array:
    """``log pi(y)`` summed over the scored tokens: ``(B,)``.

    ``mask_BxT`` (0/1) marks real tokens; the transition into token ``t+1`` counts when
    ``mask[:, t+1]`` is 1 (so a padded tail contributes nothing).
    """
    tokens_BxT, mask_BxT = _as_tokens(tokens_BxT), _as_tokens(mask_BxT, "mask_BxT")
    if jnp.shape(mask_BxT) != jnp.shape(tokens_BxT):
        raise ValueError(f"mask_BxT must have the shape of tokens_BxT {jnp.shape(tokens_BxT)}, got {jnp.shape(mask_BxT)}")
    lp_BxTm1 = token_log_probs(params, tokens_BxT)
    return jnp.sum(lp_BxTm1 * mask_BxT[:, 1:].astype(lp_BxTm1.dtype), axis=-1)


def next_token_nll(params: dict, batch) -> jax.Array:
    """The training loss: mean next-token NLL over the scored tokens of ``batch``.

    ``batch`` has ``tokens (B, T)`` and ``mask (B, T)``; the transition into token ``t+1``
    counts when ``mask[:, t+1]`` is 1.
    """
    lp_BxTm1 = token_log_probs(params, batch["tokens"])
    m_BxTm1 = batch["mask"][:, 1:]
    return -jnp.sum(lp_BxTm1 * m_BxTm1) / jnp.maximum(jnp.sum(m_BxTm1), 1.0)


@functools.partial(jax.jit, static_argnames=("length",))
def _generate(params, key, prompt_BxP, temperature, length):
    B, P = prompt_BxP.shape
    tokens_BxN = jnp.zeros((B, length), jnp.int32).at[:, :P].set(prompt_BxP.astype(jnp.int32))

    def body(t, carry):
        tokens, key = carry
        key, sub = jax.random.split(key)
        # The causal mask makes logits at t-1 independent of the (still zero) tokens >= t.
        logits_BxV = forward(params, tokens)[:, t - 1]
        sampled = jax.random.categorical(sub, logits_BxV / jnp.maximum(temperature, 1e-6), axis=-1)
        greedy = jnp.argmax(logits_BxV, axis=-1)
        nxt = jnp.where(temperature > 0, sampled, greedy).astype(jnp.int32)
        return tokens.at[:, t].set(nxt), key

    tokens, _ = jax.lax.fori_loop(P, length, body, (tokens_BxN, key))
    return tokens


def generate(params: dict, key: jax.Array, prompt_BxP, *, length: int, temperature: float = 1.0) -> jax.Array:
    """Continue ``prompt_BxP`` to ``length`` tokens: sampling, or greedy when ``temperature = 0``.

    Args:
      params: from :func:`init`.
      key: PRNG key for sampling (unused when greedy).
      prompt_BxP: integer tokens, ``P >= 1``.
      length: total length ``N`` of the output, ``P <= N <= context``.
      temperature: ``>= 0``; 0 means greedy (argmax).
    Returns:
      int32 tokens ``(B, N)`` beginning with the prompt.
    """
    check_key(key)
    config = config_of(params)
    prompt = _as_tokens(prompt_BxP, "prompt_BxP")
    _check_tokens(prompt, config, "prompt_BxP")
    check_int(length, "length", prompt.shape[1])
    if length > config.context:
        raise ValueError(f"length must be <= context {config.context}, got {length}")
    if not (np.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
    return _generate(params, key, prompt, jnp.asarray(temperature, DTYPE), length)


def _block_one(config: TransformerConfig, x_BxD, p, cache, t):
    """:func:`_block` at one position ``t`` for every row, reading and extending the layer's
    key/value cache ``(k_BxTxHxK, v_BxTxHxK)`` (positions ``< t`` filled)."""
    q_BxHxK, k_BxHxK, v_BxHxK = _qkv(config, x_BxD, p)
    k_BxTxHxK = jax.lax.dynamic_update_index_in_dim(cache[0], k_BxHxK, t, axis=1)
    v_BxTxHxK = jax.lax.dynamic_update_index_in_dim(cache[1], v_BxHxK, t, axis=1)
    att_BxHxT = jnp.einsum("bhk,bshk->bhs", q_BxHxK, k_BxTxHxK) / jnp.sqrt(jnp.asarray(config.head_dim, DTYPE))
    seen_T = jnp.arange(k_BxTxHxK.shape[1]) <= t
    att_BxHxT = jax.nn.softmax(jnp.where(seen_T[None, None], att_BxHxT, jnp.asarray(-1e30, DTYPE)), axis=-1)
    o_BxHxK = jnp.einsum("bhs,bshk->bhk", att_BxHxT, v_BxTxHxK)
    return _after_attention(config, x_BxD, o_BxHxK, p), (k_BxTxHxK, v_BxTxHxK)


def greedy_complete(params: dict, tokens_BxT: jax.Array, prompt_length_B: jax.Array) -> jax.Array:
    """Greedy decoding of every row after its own prompt, with a key/value cache.

    Row ``b`` keeps ``tokens_BxT[b, :prompt_length_B[b]]`` and fills every later position
    with the argmax of the model's next-token logits (the tokens there in the input are
    ignored). One position of every row per step, each step reading the cached keys and
    values of the earlier positions, so the whole decode costs about one forward pass of
    ``B x T`` tokens (a decode without a cache runs a full forward pass per new token).
    Traceable: use it inside ``jit`` and ``vmap``. Returns int32 ``(B, T)``.
    """
    config = config_of(params)
    tokens_BxT = _as_tokens(tokens_BxT)
    if jnp.ndim(tokens_BxT) != 2:
        raise ValueError(f"tokens_BxT must have shape (batch, time), got shape {jnp.shape(tokens_BxT)}")
    B, T = tokens_BxT.shape
    if T > config.context:
        raise ValueError(f"tokens_BxT has {T} positions, more than the context {config.context}")
    _check_ids(tokens_BxT, config, "tokens_BxT")  # concrete tokens only (traced ones pass)
    if not isinstance(prompt_length_B, jax.core.Tracer):
        lengths = np.asarray(prompt_length_B)
        if lengths.shape != (B,) or not np.issubdtype(lengths.dtype, np.integer):
            raise ValueError(f"prompt_length_B must be {B} integers (one per row), got {lengths.dtype} of shape "
                             f"{lengths.shape}")
        if lengths.size and (lengths.min() < 1 or lengths.max() > T):
            raise ValueError(f"prompt_length_B must be from 1 to {T} (a prompt has at least one token), got "
                             f"{lengths.min()} to {lengths.max()}")
    prompt_length_B = jnp.asarray(prompt_length_B)
    H, K = config.heads, config.head_dim
    blocks = params["blocks"]
    empty = jnp.zeros((config.layers, B, T, H, K), DTYPE)
    tokens = jnp.where(jnp.arange(T)[None, :] < prompt_length_B[:, None], tokens_BxT, 0).astype(jnp.int32)

    def layer(x_BxD, args):
        p, k, v, t = args
        x_BxD, (k, v) = _block_one(config, x_BxD, p, (k, v), t)
        return x_BxD, (k, v)

    def step(t, carry):
        toks, k_cache, v_cache = carry
        x_BxD = params["embed_VxD"][toks[:, t]] + params["pos_TxD"][t][None]
        x_BxD, (k_cache, v_cache) = jax.lax.scan(
            lambda x, a: layer(x, (*a, t)), x_BxD, (blocks, k_cache, v_cache))
        if config.final_norm:
            x_BxD = _layer_norm(x_BxD, params["ln_f_scale_D"], params["ln_f_bias_D"])
        logits_BxV = x_BxD @ params["out_DxV"]
        if config.out_bias:
            logits_BxV = logits_BxV + _lead(params["out_bias_V"], logits_BxV)
        nxt = jnp.argmax(logits_BxV, axis=-1).astype(jnp.int32)
        toks = toks.at[:, t + 1].set(jnp.where(t + 1 >= prompt_length_B, nxt, toks[:, t + 1]))
        return toks, k_cache, v_cache

    tokens, _, _ = jax.lax.fori_loop(0, T - 1, step, (tokens, empty, empty))
    return tokens


# --------------------------------------------------------------------------- loss inputs


def _sequence_logp(logp_BxTm1xV, tokens_BxT, mask_BxT):
    lp_BxTm1 = jnp.take_along_axis(logp_BxTm1xV, tokens_BxT[:, 1:, None], axis=-1)[..., 0]
    return jnp.sum(lp_BxTm1 * mask_BxT[:, 1:].astype(lp_BxTm1.dtype), axis=-1)


def _sequence_kl(logp_BxTm1xV, ref_BxTm1xV, mask_BxT):
    """Per-sequence KL(pi_theta || pi_ref), the per-token KLs summed over the scored tokens."""
    return jnp.sum(kl_divergence(logp_BxTm1xV, ref_BxTm1xV) * mask_BxT[:, 1:], axis=-1)


def _positions_kl(logp_BxTm1xV, ref_BxTm1xV, attend_BxT):
    """Per-sequence KL(pi_ref || pi_theta) summed over every attended position (question and answer)."""
    return jnp.sum(kl_divergence(ref_BxTm1xV, logp_BxTm1xV) * attend_BxT[:, 1:], axis=-1)


def _reference_laws(batch, group, tokens, name):
    """The reference model's next-token log-probabilities on the batch's ``group`` rows: the
    precomputed ``<group>_ref_dist``, or computed now from ``reference_params`` (no gradient)."""
    if f"{group}_ref_dist" in batch:
        return batch[f"{group}_ref_dist"]
    if "reference_params" in batch:
        return next_token_log_probs(jax.lax.stop_gradient(batch["reference_params"]), tokens)
    raise ValueError(f"input {name} needs {group + '_ref_dist'!r} or 'reference_params' in the batch (see "
                     f"sequence_batch); it has {sorted(batch)}")


def _need_key(batch, key, name):
    if key not in batch:
        raise ValueError(f"input {name} needs {key!r} in the batch (see sequence_batch); it has {sorted(batch)}")
    return batch[key]


def _seq_forget(params, batch, need):
    tokens, mask = batch["forget_tokens"], batch["forget_mask"]
    logp = next_token_log_probs(params, tokens)
    out = {}
    if "forget_logp" in need:
        out["forget_logp"] = _sequence_logp(logp, tokens, mask)
    if "forget_ref_logp" in need:
        out["forget_ref_logp"] = _need_key(batch, "forget_ref_logp", "forget_ref_logp")
    if "forget_length" in need:
        out["forget_length"] = batch["forget_length"]
    if "forget_kl" in need:
        out["forget_kl"] = _sequence_kl(logp, _reference_laws(batch, "forget", tokens, "forget_kl"), mask)
    return out


def _seq_idk(params, batch, need):
    tokens = _need_key(batch, "forget_idk_tokens", "idk_logp")
    mask = batch["forget_idk_mask"]
    out = {}
    if "idk_logp" in need:
        out["idk_logp"] = _sequence_logp(next_token_log_probs(params, tokens), tokens, mask)
    if "idk_ref_logp" in need:
        out["idk_ref_logp"] = _need_key(batch, "forget_idk_ref_logp", "idk_ref_logp")
    if "idk_length" in need:
        out["idk_length"] = jnp.sum(mask[:, 1:], axis=-1)
    return out


def _seq_retain(params, batch, need):
    tokens, mask = _need_key(batch, "retain_tokens", "retain inputs"), batch["retain_mask"]
    logp = next_token_log_probs(params, tokens)
    out = {}
    if "retain_logp" in need:
        out["retain_logp"] = _sequence_logp(logp, tokens, mask)
    if "retain_kl" in need:
        out["retain_kl"] = _sequence_kl(logp, _reference_laws(batch, "retain", tokens, "retain_kl"), mask)
    if "retain_length" in need:
        out["retain_length"] = jnp.sum(mask[:, 1:], axis=-1)
    if "retain_kl_positions" in need or "retain_positions" in need:
        attend = _need_key(batch, "retain_attend", "retain_kl_positions")
        out["retain_positions"] = jnp.sum(attend[:, 1:], axis=-1)
        if "retain_kl_positions" in need:
            out["retain_kl_positions"] = _positions_kl(
                logp, _reference_laws(batch, "retain", tokens, "retain_kl_positions"), attend)
    return out


SEQUENCE_INPUTS = Providers((
    Provider(("forget_logp", "forget_ref_logp", "forget_length", "forget_kl"), _seq_forget),
    Provider(("idk_logp", "idk_ref_logp", "idk_length"), _seq_idk),
    Provider(("retain_logp", "retain_kl", "retain_length", "retain_kl_positions", "retain_positions"), _seq_retain),
))
"""Loss inputs of the transformer on a :func:`sequence_batch`: per-sequence log-probabilities
``log pi(y) = sum_t log pi(y_{t+1} | y_{<=t})`` over the scored tokens, the answer length, and
per-sequence KLs to the reference (the per-token KL summed over the scored tokens), and for the
token- and position-mean components the answers' lengths and the KL over every attended position
(``retain_attend`` in the batch). One forward pass per part of the batch (forget, uninformed
answers, retain), each only if a method needs it."""


_jit_sequence_log_probs = jax.jit(sequence_log_probs)
_jit_next_token_log_probs = jax.jit(next_token_log_probs)


def jit_next_token_log_probs(params: dict, tokens_BxT: jax.Array) -> jax.Array:
    """:func:`next_token_log_probs`, jitted once for every caller (concrete token ids are
    range-checked before the compiled call)."""
    tokens_BxT = _as_tokens(tokens_BxT)
    _check_tokens(tokens_BxT, config_of(params))
    return _jit_next_token_log_probs(params, tokens_BxT)


def sequence_batch(params_ref, forget_tokens, forget_mask, retain_tokens=None, retain_mask=None, *,
                   idk_tokens=None, idk_mask=None, forget_kl: bool = False, retain_attend=None,
                   chunk: int = 128, reference: str = "precomputed") -> dict:
    """The data :data:`SEQUENCE_INPUTS` reads, with the reference model's values precomputed.

    Args:
      params_ref: the reference model.
      forget_tokens, forget_mask: ``(N_f, T)`` int tokens and 0/1 mask of real tokens.
      retain_tokens, retain_mask: ``(N_r, T)``, optional (forget-only methods).
      idk_tokens, idk_mask: one uninformed answer per forget sequence, ``(N_f, T)``, optional
        (IDK and DPO).
      forget_kl: also store the reference's next-token laws on the forget set (KTO, K_FG).
      retain_attend: ``(N_r, T)`` 0/1 mask of every real token of the retain sequences (question
        and answer), for the position-mean KL (``retain_kl_positions``); optional.
      chunk: sequences per forward pass of the precomputation.
      reference: ``"precomputed"``: the reference's next-token laws stored per row
        (``forget_ref_dist``, ``retain_ref_dist``: rows x positions x vocabulary floats, the largest
        arrays by far); ``"on_the_fly"``: the reference parameters stored once
        (``reference_params``) and its laws computed on each step's rows, one more forward pass
        of the batch for the KL terms, and memory that does not grow with the data.
    Returns:
      A dict of arrays whose names start with their group (``forget_*``, ``retain_*``), so
      :func:`synthetic.engine.minibatches` samples each group's rows together:
      ``forget_tokens, forget_mask, forget_length, forget_ref_logp`` (and ``forget_ref_dist``,
      ``forget_idk_tokens, forget_idk_mask, forget_idk_ref_logp``), ``retain_tokens,
      retain_mask, retain_ref_dist`` (and ``retain_attend``).
    """
    def chunked(fn, *arrays):
        n = arrays[0].shape[0]
        return jnp.concatenate([fn(params_ref, *(a[i:i + chunk] for a in arrays)) for i in range(0, n, chunk)])

    config = config_of(params_ref)
    for name, tokens in (("forget_tokens", forget_tokens), ("retain_tokens", retain_tokens), ("idk_tokens", idk_tokens)):
        if tokens is not None:
            _check_tokens(_as_tokens(tokens, name), config, name)
    for name, mask, tokens in (("forget_mask", forget_mask, forget_tokens), ("retain_mask", retain_mask, retain_tokens),
                               ("idk_mask", idk_mask, idk_tokens), ("retain_attend", retain_attend, retain_tokens)):
        if mask is not None and not isinstance(mask, jax.core.Tracer):
            _check_mask(mask, name, np.shape(tokens) if tokens is not None else None)
    seq_lp, dist = _jit_sequence_log_probs, _jit_next_token_log_probs
    f_tok, f_mask = jnp.asarray(forget_tokens), jnp.asarray(forget_mask, DTYPE)
    batch = {
        "forget_tokens": f_tok,
        "forget_mask": f_mask,
        "forget_length": jnp.sum(f_mask[:, 1:], axis=1),
        "forget_ref_logp": chunked(seq_lp, f_tok, f_mask),
    }
    if reference not in ("precomputed", "on_the_fly"):
        raise ValueError(f"reference must be 'precomputed' or 'on_the_fly', got {reference!r}")
    laws = reference == "precomputed"
    if not laws and (forget_kl or retain_tokens is not None):
        batch["reference_params"] = params_ref
    if forget_kl and laws:
        batch["forget_ref_dist"] = chunked(dist, f_tok)
    if idk_tokens is not None:
        i_tok, i_mask = jnp.asarray(idk_tokens), jnp.asarray(idk_mask, DTYPE)
        batch.update(forget_idk_tokens=i_tok, forget_idk_mask=i_mask, forget_idk_ref_logp=chunked(seq_lp, i_tok, i_mask))
    if retain_tokens is not None:
        r_tok = jnp.asarray(retain_tokens)
        batch.update(retain_tokens=r_tok, retain_mask=jnp.asarray(retain_mask, DTYPE))
        if laws:
            batch["retain_ref_dist"] = chunked(dist, r_tok)
        if retain_attend is not None:
            batch["retain_attend"] = jnp.asarray(retain_attend, DTYPE)
    return batch
