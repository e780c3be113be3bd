"""The small models of PAPER.md sections 2.1, 3 and 4, as pure functions.

Each model is ``init(key, config) -> params`` and ``log_probs(params, x) -> (..., classes)``.

* Binary logistic ``pi_theta(y=1|x) = sigma(<x, theta>)`` (Theorem 2). Written as a
  2-class softmax whose first logit is pinned at 0, as the paper's reference code does, so
  the log-probabilities are ``[log sigma(-z), log sigma(z)]`` with ``z = <x, theta>``.
* Random features ``pi_theta(y=1|x) = sigma(theta^T ReLU(W x))`` with fixed
  ``W ~ N(0, 1/d)`` of shape ``(n_features, d)`` (section 4): the logistic model on the
  features ``phi(x) = ReLU(W x)``. Since ``W`` is fixed, the engine computes the features
  once and trains the logistic model on them.
* K-class linear softmax ``pi_theta(.|x) = softmax(theta x)``, ``theta`` of shape ``(K, d)``
  (section 2.1).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from theory.validate import check_int

__all__ = [
    "logistic_log_probs",
    "RandomFeaturesConfig",
    "random_features_init",
    "random_features",
    "random_features_log_probs",
    "SoftmaxConfig",
    "softmax_init",
    "softmax_log_probs",
    "take_label",
]


def logistic_log_probs(theta: jax.Array, x: jax.Array) -> jax.Array:
    """``[log pi(y=0|x), log pi(y=1|x)]`` of the binary logistic model.

    Args:
      theta: parameters, ``(d,)``.
      x: inputs, ``(..., d)``.
    Returns:
      ``(..., 2)`` log-probabilities, stable for logits of any size.
    """
    z = x @ theta
    return jnp.stack([jax.nn.log_sigmoid(-z), jax.nn.log_sigmoid(z)], axis=-1)


def take_label(log_probs: jax.Array, y: jax.Array) -> jax.Array:
    """``log pi(y|x)`` picked from ``(..., K)`` log-probabilities by integer labels ``(...)``."""
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

    ``theta`` starts at 0, the paper's initialisation for the reference model.
    """
    w = jax.random.normal(key, (config.n_features, config.d), dtype) / jnp.sqrt(config.d)
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
    return scale * jax.random.normal(key, (config.n_classes, config.d), dtype) / jnp.sqrt(config.d)


def softmax_log_probs(theta: jax.Array, x: jax.Array) -> jax.Array:
    """``log softmax(theta x)``: ``(..., d) -> (..., n_classes)``."""
    return jax.nn.log_softmax(x @ theta.T, axis=-1)
