"""The Gaussian-logistic data of eq. 6: determinism, shapes and the laws themselves."""

import dataclasses

import jax
import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("x64")

from synthetic.worlds.section4.data import DataConfig, make_dataset

BIG = DataConfig(n_forget=20000, n_retain=20000, n_eval_forget=10, n_eval_retain=10)


def _expected_label_one(shift: float) -> float:
    """E[sigma(Z + shift)], Z ~ N(0, 1): (x - mu)^T theta ~ N(0, ||theta||^2 = 1) under eq. 6."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    return float(np.sum(weights / (1 + np.exp(-(nodes + shift)))) / np.sqrt(2 * np.pi))


def test_same_key_same_arrays_other_key_other_arrays():
    a = make_dataset(jax.random.key(3))
    b = make_dataset(jax.random.key(3))
    c = make_dataset(jax.random.key(4))
    for field in dataclasses.fields(a):
        np.testing.assert_array_equal(getattr(a, field.name), getattr(b, field.name))
    assert not np.array_equal(a.x_forget, c.x_forget)


def test_shapes_follow_the_config():
    cfg = DataConfig(d=7, n_forget=11, n_retain=13, n_eval_forget=5, n_eval_retain=6)
    data = make_dataset(jax.random.key(0), cfg)
    assert data.x_forget.shape == (11, 7) and data.y_forget.shape == (11,) and data.y_idk.shape == (11,)
    assert data.x_retain.shape == (13, 7) and data.x_eval_forget.shape == (5, 7)
    assert data.x_eval_retain.shape == (6, 7) and data.x_forget.dtype == np.float64


def test_paper_defaults():
    cfg = DataConfig()
    assert (cfg.d, cfg.n_forget, cfg.n_retain, cfg.n_eval_forget, cfg.n_eval_retain) == (16, 200, 1000, 1000, 1000)
    assert (cfg.alpha, cfg.shift, cfg.theta_scale) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize("alpha", [1.0, 0.0])
def test_input_means_and_covariance(alpha):
    data = make_dataset(jax.random.key(1), dataclasses.replace(BIG, alpha=alpha))
    xf, xr = np.asarray(data.x_forget), np.asarray(data.x_retain)
    tol = 5 / np.sqrt(len(xf))  # 5 standard errors of a unit-variance mean
    np.testing.assert_allclose(xf.mean(0), alpha, atol=tol)
    np.testing.assert_allclose(xr.mean(0), -alpha, atol=tol)
    np.testing.assert_allclose(np.cov(xf.T), np.eye(16), atol=0.05)


def test_label_frequencies_match_the_law():
    data = make_dataset(jax.random.key(2), BIG)
    p1 = _expected_label_one(1.0)  # ~0.70: forget labels are mostly 1
    se = np.sqrt(p1 * (1 - p1) / BIG.n_forget)
    assert abs(np.mean(np.asarray(data.y_forget)) - p1) < 5 * se
    assert abs(np.mean(np.asarray(data.y_retain)) - (1 - p1)) < 5 * se  # retain labels mostly 0
    assert abs(np.mean(np.asarray(data.y_idk)) - 0.5) < 5 * 0.5 / np.sqrt(BIG.n_forget)  # a fair coin


def test_labels_depend_on_x_as_eq6_says():
    """Forget examples with (x - mu_f)^T theta_f > 0 are labelled 1 more often than the rest."""
    data = make_dataset(jax.random.key(5), BIG)
    score = (np.asarray(data.x_forget) - 1.0).sum(1) / 4.0
    y = np.asarray(data.y_forget)
    assert y[score > 1].mean() > 0.85 > 0.5 > y[score < -1].mean()


@pytest.mark.parametrize(
    "field, value", [("d", 0), ("n_forget", -1), ("n_retain", 2.5), ("alpha", float("nan")), ("shift", float("inf"))]
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        DataConfig(**{field: value})
