"""The Gaussian-logistic forget and retain sets of the paper's section 4 (eq. 6).

Inputs ``x ~ N(mu, I_d)``; labels ``P(y=1|x) = sigma((x - mu)^T theta + s)``, with, for the
forget set, ``mu_f = alpha 1_d``, ``theta_f = scale 1_d / sqrt(d)``, ``s = +shift``, and for
the retain set ``mu_r = -mu_f``, ``theta_r = -theta_f``, ``s = -shift``. The shift makes
forget labels mostly 1 and retain labels mostly 0. Evaluation sets are fresh draws from the
same laws, and the uninformed answer ``y~`` of IDK and DPO is a fair coin per forget example.

Everything is a pure function of an explicit key: the same key gives the same arrays.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from theory.validate import check_finite, check_int, check_key

__all__ = ["DataConfig", "Dataset", "make_dataset", "label_probability"]


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Sizes and laws of eq. 6; the defaults are the paper's.

    Attributes:
      d: input dimension.
      n_forget, n_retain: training-set sizes.
      n_eval_forget, n_eval_retain: fresh evaluation-set sizes.
      alpha: mean separation; ``1`` separates the inputs, ``0`` makes them the same law.
      shift: the label shift ``s`` (forget ``+s``, retain ``-s``).
      theta_scale: ``||theta_f|| = ||theta_r||`` (the paper's ``1_d/sqrt(d)`` has norm 1).
    """

    d: int = 16
    n_forget: int = 200
    n_retain: int = 1000
    n_eval_forget: int = 1000
    n_eval_retain: int = 1000
    alpha: float = 1.0
    shift: float = 1.0
    theta_scale: float = 1.0

    def __post_init__(self):
        for name in ("d", "n_forget", "n_retain", "n_eval_forget", "n_eval_retain"):
            check_int(getattr(self, name), name)
        for name in ("alpha", "shift", "theta_scale"):
            value = getattr(self, name)
            if isinstance(value, jax.core.Tracer):
                continue  # traced inside jit (one compiled program serves every alpha)
            # one number: numpy scalars are numbers, True and "1" are not
            if np.ndim(value) != 0:
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            check_finite(value, name)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Dataset:
    """One draw of the synthetic data (arrays; a stacked draw has a leading seed axis).

    Attributes:
      x_forget, y_forget: forget training set, ``(n_f, d)`` and ``(n_f,)`` int labels.
      x_retain, y_retain: retain training set.
      y_idk: the uninformed label ``y~`` per forget example (fair coin), ``(n_f,)``.
      x_eval_forget, y_eval_forget, x_eval_retain, y_eval_retain: fresh evaluation sets.
    """

    x_forget: jax.Array
    y_forget: jax.Array
    x_retain: jax.Array
    y_retain: jax.Array
    y_idk: jax.Array
    x_eval_forget: jax.Array
    y_eval_forget: jax.Array
    x_eval_retain: jax.Array
    y_eval_retain: jax.Array


def label_probability(x: jax.Array, config: DataConfig, *, forget: bool) -> jax.Array:
    """``P(y=1|x)`` of eq. 6 for the forget (``forget=True``) or the retain law."""
    sign = 1.0 if forget else -1.0
    mu = sign * config.alpha  # the mean vector mu = mu 1_d, as a scalar
    theta = sign * config.theta_scale * jnp.ones(config.d, x.dtype) / jnp.sqrt(config.d)
    return jax.nn.sigmoid((x - mu) @ theta + sign * config.shift)


def _draw(key, n: int, config: DataConfig, *, forget: bool, dtype):
    kx, ky = jax.random.split(key)
    sign = 1.0 if forget else -1.0
    x = sign * config.alpha + jax.random.normal(kx, (n, config.d), dtype)
    y = jax.random.bernoulli(ky, label_probability(x, config, forget=forget)).astype(jnp.int32)
    return x, y


def make_dataset(key: jax.Array, config: DataConfig = DataConfig(), dtype=jnp.float64) -> Dataset:
    """Draw the forget, retain and evaluation sets and the uninformed labels of eq. 6.

    Args:
      key: a ``jax.random`` key; the same key gives the same arrays.
      config: sizes and laws.
      dtype: float dtype of the inputs (float64 by default, as the paper's code).
    Returns:
      A :class:`Dataset`. ``jax.vmap(make_dataset, (0, None))`` draws one per seed.
    """
    check_key(key)
    kf, kr, kef, ker, kidk = jax.random.split(key, 5)
    x_f, y_f = _draw(kf, config.n_forget, config, forget=True, dtype=dtype)
    x_r, y_r = _draw(kr, config.n_retain, config, forget=False, dtype=dtype)
    x_ef, y_ef = _draw(kef, config.n_eval_forget, config, forget=True, dtype=dtype)
    x_er, y_er = _draw(ker, config.n_eval_retain, config, forget=False, dtype=dtype)
    y_idk = jax.random.bernoulli(kidk, 0.5, (config.n_forget,)).astype(jnp.int32)
    return Dataset(x_f, y_f, x_r, y_r, y_idk, x_ef, y_ef, x_er, y_er)
