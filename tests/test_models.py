"""The small models: logistic, random features, linear softmax."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("x64")

from synthetic.models.logistic import (
    RandomFeaturesConfig,
    SoftmaxConfig,
    logistic_log_probs,
    random_features,
    random_features_init,
    random_features_log_probs,
    softmax_init,
    softmax_log_probs,
    take_label,
)


def test_logistic_log_probs_by_hand():
    theta = jnp.array([1.0, -2.0])
    x = jnp.array([[0.5, 0.25], [3.0, 0.0]])  # logits 0 and 3
    lp = logistic_log_probs(theta, x)
    np.testing.assert_allclose(np.exp(lp), [[0.5, 0.5], [1 / (1 + np.e**3), 1 / (1 + np.e**-3)]], rtol=1e-12)
    np.testing.assert_allclose(take_label(lp, jnp.array([1, 0])), [np.log(0.5), -np.log1p(np.e**3)], rtol=1e-12)


def test_logistic_is_stable_for_huge_logits():
    lp = logistic_log_probs(jnp.array([1.0]), jnp.array([[1e4], [-1e4]]))
    assert np.all(np.isfinite(lp))
    np.testing.assert_allclose(lp[:, 0], [-1e4, 0.0])


def test_random_features_law_and_shapes():
    params = random_features_init(jax.random.key(0), RandomFeaturesConfig(d=64, n_features=512))
    assert params["W"].shape == (512, 64) and params["theta"].shape == (512,)
    assert not np.any(params["theta"])  # the paper starts from theta = 0
    np.testing.assert_allclose(np.var(params["W"]), 1 / 64, rtol=0.05)
    x = jnp.ones((3, 64))
    np.testing.assert_allclose(random_features(params["W"], x), np.maximum(x @ params["W"].T, 0))
    lp = random_features_log_probs({**params, "theta": jnp.ones(512)}, x)
    assert lp.shape == (3, 2)
    np.testing.assert_allclose(jax.nn.logsumexp(lp, axis=-1), 0.0, atol=1e-12)


def test_softmax_normalised_and_initialised():
    cfg = SoftmaxConfig(d=5, n_classes=3)
    assert not np.any(softmax_init(jax.random.key(0), cfg))
    theta = softmax_init(jax.random.key(0), cfg, scale=1.0)
    assert theta.shape == (3, 5)
    lp = softmax_log_probs(theta, jnp.ones((4, 5)))
    np.testing.assert_allclose(jax.nn.logsumexp(lp, axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(lp, jax.nn.log_softmax(jnp.ones((4, 5)) @ theta.T))


@pytest.mark.parametrize("cls, field", [(RandomFeaturesConfig, "n_features"), (SoftmaxConfig, "n_classes")])
def test_bad_model_config(cls, field):
    with pytest.raises(ValueError, match=field):
        cls(**{field: 0})
