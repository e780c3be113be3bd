"""The small models of the paper's sections 2.1, 3 and 4, as pure functions, and their loss inputs.

Each model is ``init(key, config) -> params`` and ``log_probs(params, x) -> (..., classes)``.

* Binary logistic ``pi_theta(y=1|x) = sigma(<x, theta>)`` (Theorem 2). Written as a
  2-class softmax whose first logit is pinned at 0, as the paper's reference code does, so
  the log-probabilities are ``[log sigma(-z), log sigma(z)]`` with ``z = <x, theta>``.
* Random features ``pi_theta(y=1|x) = sigma(theta^T ReLU(W x))`` with fixed
  ``W ~ N(0, 1/d)`` of shape ``(n_features, d)`` (section 4): the logistic model on the
  features ``phi(x) = ReLU(W x)``. Since ``W`` is fixed, the features are computed once and
  the logistic model is trained on them.
* K-class linear softmax ``pi_theta(.|x) = softmax(theta x)``, ``theta`` of shape ``(K, d)``
  (section 2.1).

For the engine, :data:`BINARY_INPUTS` turns ``(theta, batch)`` into the inputs of every
method of the paper (see :func:`binary_batch` for the batch) and :data:`SOFTMAX_INPUTS` does
the same for the softmax model.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from synthetic.engine.inputs import Provider, Providers
from theory.objectives import kl_divergence
from theory.validate import check_int, check_key, check_labels

__all__ = [
    "logistic_log_probs",
    "take_label",
    "RandomFeaturesConfig",
    "random_features_init",
    "random_features",
    "random_features_log_probs",
    "SoftmaxConfig",
    "softmax_init",
    "softmax_log_probs",
    "binary_batch",
    "BINARY_INPUTS",
    "SOFTMAX_INPUTS",
]


def _two_class(z):
    return jnp.stack([jax.nn.log_sigmoid(-z), jax.nn.log_sigmoid(z)], axis=-1)


def logistic_log_probs(theta: jax.Array, x: jax.Array) -> jax.Array:
    """``[log pi(y=0|x), log pi(y=1|x)]`` of the binary logistic model.

    Args:
      theta: parameters, ``(d,)``.
      x: inputs, ``(..., d)``.
    Returns:
      ``(..., 2)`` log-probabilities, stable for logits of any size.
    """
    return _two_class(x @ theta)


def take_label(log_probs: jax.Array, y: jax.Array) -> jax.Array:
    """``log pi(y|x)`` picked from ``(..., K)`` log-probabilities by integer labels ``(...)``.

    Concrete labels must lie in ``{0, ..., K-1}`` (``ValueError`` otherwise: JAX's indexing would
    wrap ``-1`` to class ``K-1`` and clamp or fill the others); traced ones cannot be checked.
    """
    check_labels(y, "y", jnp.shape(log_probs)[-1])
    return jnp.take_along_axis(log_probs, y[..., None], axis=-1)[..., 0]


@dataclasses.dataclass(frozen=True)
class RandomFeaturesConfig:
    """``d`` inputs mapped to ``n_features`` fixed ReLU features (the paper: 16 -> 128)."""

    d: int = 16
    n_features: int = 128

    def __post_init__(self):
        for name in ("d", "n_features"):
            check_int(getattr(self, name), name)


def random_features_init(key: jax.Array, config: RandomFeaturesConfig = RandomFeaturesConfig(), dtype=jnp.float64) -> dict:
    """``{"W": (n_features, d) ~ N(0, 1/d) fixed, "theta": zeros (n_features,)}``.

    ``theta`` starts at 0, the paper's initialisation for the reference model. Call inside
    ``jax.enable_x64(True)`` for float64 (the paper's precision).
    """
    check_key(key)
    w = jax.random.normal(key, (config.n_features, config.d), dtype) / jnp.sqrt(jnp.asarray(config.d, dtype))
    return {"W": w, "theta": jnp.zeros(config.n_features, dtype)}


def random_features(w: jax.Array, x: jax.Array) -> jax.Array:
    """``phi(x) = ReLU(W x)``: ``(..., d) -> (..., n_features)``."""
    return jax.nn.relu(x @ w.T)


def random_features_log_probs(params: dict, x: jax.Array) -> jax.Array:
    """Log-probabilities ``(..., 2)`` of ``sigma(theta^T ReLU(W x))``."""
    return logistic_log_probs(params["theta"], random_features(params["W"], x))


@dataclasses.dataclass(frozen=True)
class SoftmaxConfig:
    """A ``n_classes``-way linear softmax on ``d`` inputs."""

    d: int = 16
    n_classes: int = 4

    def __post_init__(self):
        for name in ("d", "n_classes"):
            check_int(getattr(self, name), name)


def softmax_init(key: jax.Array, config: SoftmaxConfig = SoftmaxConfig(), scale: float = 0.0, dtype=jnp.float64) -> jax.Array:
    """``theta`` of shape ``(n_classes, d)``: zeros, or ``N(0, scale^2/d)`` entries."""
    check_key(key)
    return scale * jax.random.normal(key, (config.n_classes, config.d), dtype) / jnp.sqrt(jnp.asarray(config.d, dtype))


def softmax_log_probs(theta: jax.Array, x: jax.Array) -> jax.Array:
    """``log softmax(theta x)``: ``(..., d) -> (..., n_classes)``."""
    return jax.nn.log_softmax(x @ theta.T, axis=-1)


# --------------------------------------------------------------------------- loss inputs


@jax.custom_vjp
def _row_logits(theta_F, x_NxF, xt_FxN):
    """``x @ theta`` computed as ``theta @ x^T`` with a contiguous ``x^T``.

    The same product, but with ``theta`` batched by ``vmap`` both this product and its
    transpose in the backward pass (``g @ x``) are row-major matrix products; on CPU the
    figure-4 grid runs about 15% faster than with the layout ``jax.grad`` of ``x @ theta``
    produces.
    """
    return theta_F @ xt_FxN


def _row_logits_fwd(theta_F, x_NxF, xt_FxN):
    return theta_F @ xt_FxN, x_NxF


def _row_logits_bwd(x_NxF, g_N):
    return g_N @ x_NxF, None, None


_row_logits.defvjp(_row_logits_fwd, _row_logits_bwd)


def _binary_logits(theta, batch, group):
    x = batch[f"{group}_x"]
    xt = batch.get(f"{group}_xt")
    return x @ theta if xt is None else _row_logits(theta, x, xt)


def _need_key(batch, key, name):
    if key not in batch:
        raise ValueError(f"input {name} needs {key!r} in the batch (see binary_batch); it has {sorted(batch)}")
    return batch[key]


def _binary_forget(theta, batch, need):
    z = _binary_logits(theta, batch, "forget")
    # log pi(y|x) = log sigma(s z) with s = 2y - 1: the label's entry of [log sigma(-z), log sigma(z)]
    # without a gather, whose gradient (a scatter) would double the cost of a step on CPU.
    out = {}
    for name in need:
        if name == "forget_logp":
            out[name] = jax.nn.log_sigmoid(batch["forget_s"] * z)
        elif name == "forget_ref_logp":
            out[name] = batch["forget_ref_logp"]
        elif name == "forget_length":
            out[name] = jnp.ones(z.shape, z.dtype)  # a label is one token
        elif name == "forget_kl":
            out[name] = kl_divergence(_two_class(z), _need_key(batch, "forget_ref", name))
        elif name == "idk_logp":
            out[name] = jax.nn.log_sigmoid(_need_key(batch, "forget_idk_s", name) * z)
        elif name == "idk_ref_logp":
            out[name] = _need_key(batch, "forget_idk_ref_logp", name)
    return out


def _binary_retain(theta, batch, need):
    z = _binary_logits(theta, batch, "retain")
    out = {}
    if "retain_logp" in need:
        out["retain_logp"] = jax.nn.log_sigmoid(batch["retain_s"] * z)
    if "retain_kl" in need:
        out["retain_kl"] = kl_divergence(_two_class(z), batch["retain_ref"])
    return out


BINARY_INPUTS = Providers((
    Provider(("forget_logp", "forget_ref_logp", "forget_length", "forget_kl", "idk_logp", "idk_ref_logp"), _binary_forget),
    Provider(("retain_logp", "retain_kl"), _binary_retain),
))
"""Loss inputs of the binary logistic model ``theta`` on features, from a :func:`binary_batch`.
The forget provider runs the model once on the forget features, the retain provider once on
the retain features (only if a method needs retain inputs)."""


def binary_batch(theta_ref, forget_x, forget_y, retain_x=None, retain_y=None, *, y_idk=None, transposed=True) -> dict:
    """The batch :data:`BINARY_INPUTS` reads, with the reference model's values precomputed.

    Args:
      theta_ref: the reference parameters ``(F,)`` (``pi_ref`` of NPO, DPO, KTO and the KLs).
      forget_x, forget_y: forget features ``(n_f, F)`` and integer labels ``(n_f,)`` in {0, 1}.
      retain_x, retain_y: retain features and labels (optional: forget-only methods).
      y_idk: the uninformed label per forget example (IDK and DPO), optional.
      transposed: also store contiguous transposes ``*_xt`` for the faster row-major product
        (full batch only: a minibatch sampler would index them by the wrong axis).
    Returns:
      A dict of arrays whose names start with their group: ``forget_x``, ``forget_s`` (the
      label as a sign ``2y - 1``), ``forget_ref`` (``(n_f, 2)`` reference log-probabilities),
      ``forget_ref_logp``; with ``y_idk``: ``forget_idk_s``, ``forget_idk_ref_logp``; with
      retain data: ``retain_x, retain_s, retain_ref``; and the transposes.
    Raises:
      ValueError: for concrete labels outside {0, 1} (traced ones cannot be checked).
    """
    for name, y in (("forget_y", forget_y), ("retain_y", retain_y), ("y_idk", y_idk)):
        if y is not None:
            check_labels(y, name, 2)

    def signs(y):
        return 2.0 * jnp.asarray(y).astype(forget_x.dtype) - 1.0

    ref = logistic_log_probs(theta_ref, forget_x)
    batch = {"forget_x": forget_x, "forget_s": signs(forget_y), "forget_ref": ref,
             "forget_ref_logp": take_label(ref, forget_y)}
    if y_idk is not None:
        batch.update(forget_idk_s=signs(y_idk), forget_idk_ref_logp=take_label(ref, y_idk))
    if retain_x is not None:
        batch.update(retain_x=retain_x, retain_s=signs(retain_y), retain_ref=logistic_log_probs(theta_ref, retain_x))
    if transposed:
        for group in ("forget", "retain"):
            if f"{group}_x" in batch:
                batch[f"{group}_xt"] = jnp.swapaxes(batch[f"{group}_x"], 0, 1) + 0.0
    return batch


def _softmax_forget(theta, batch, need):
    lp = softmax_log_probs(theta, batch["forget_x"])
    out = {"forget_logp": take_label(lp, batch["forget_y"])}
    if "forget_ref_logp" in need:
        out["forget_ref_logp"] = take_label(batch["forget_ref"], batch["forget_y"])
    if "forget_kl" in need:
        out["forget_kl"] = kl_divergence(lp, batch["forget_ref"])
    return out


SOFTMAX_INPUTS = Providers((Provider(("forget_logp", "forget_ref_logp", "forget_kl"), _softmax_forget),))
"""Loss inputs of the K-class linear softmax ``theta (K, d)`` on a batch ``forget_x (n, d)``,
``forget_y (n,)``, ``forget_ref (n, K)`` (the reference's log-probabilities)."""
