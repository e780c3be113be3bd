"""Tests of theory/objectives.py against the paper's section 2.

Expected numbers are written as explicit math (``math.log`` of hand-chosen probabilities),
never by calling the formula under test, so a wrong sign, factor or scaling fails.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from theory.objectives import (
    dpo_loss,
    ga_loss,
    idk_loss,
    kl_divergence,
    kto_loss,
    kto_reference_point,
    npo_loss,
    npo_weight,
    rt_loss,
    simnpo_loss,
)

LOG = math.log

pytestmark = pytest.mark.usefixtures("x64")


def a64(*xs):
    return np.array(xs, dtype=np.float64)


def logs(*ps):
    """float64 array of log-probabilities of the given probabilities."""
    return np.array([math.log(p) for p in ps], dtype=np.float64)


# =========================================================================== hand values


def test_ga_rt_idk_hand_values():
    lp = logs(0.25, 0.8, 1.0)
    np.testing.assert_allclose(ga_loss(lp), [LOG(0.25), LOG(0.8), 0.0], rtol=1e-15)
    np.testing.assert_allclose(rt_loss(lp), [LOG(4.0), LOG(1.25), 0.0], rtol=1e-15)
    np.testing.assert_allclose(idk_loss(logs(0.5, 0.1)), [LOG(2.0), LOG(10.0)], rtol=1e-15)


def test_kl_divergence_hand_values():
    p = logs(0.5, 0.5)
    q = logs(0.25, 0.75)
    # KL(p||q) = 0.5 log(0.5/0.25) + 0.5 log(0.5/0.75)
    np.testing.assert_allclose(kl_divergence(p, q), 0.5 * LOG(2.0) + 0.5 * LOG(2.0 / 3.0), rtol=1e-14)
    # Not symmetric: KL(q||p) = 0.25 log(0.5) + 0.75 log(1.5)
    np.testing.assert_allclose(kl_divergence(q, p), 0.25 * LOG(0.5) + 0.75 * LOG(1.5), rtol=1e-14)
    # Batched over leading axes, reduced over the last one only.
    pb = jnp.stack([logs(0.9, 0.1), logs(0.5, 0.5)])
    qb = jnp.stack([logs(0.5, 0.5), logs(0.5, 0.5)])
    out = kl_divergence(pb, qb)
    assert out.shape == (2,)
    np.testing.assert_allclose(out, [0.9 * LOG(1.8) + 0.1 * LOG(0.2), 0.0], atol=1e-15)


def test_dpo_hand_values():
    # pi_w = 0.5, pi_ref_w = 0.25, pi_l = 0.25, pi_ref_l = 0.5: margin = log 2 - log(1/2) = log 4,
    # and sigma(log a) = a / (1 + a).
    lw, rw, ll, rl = logs(0.5), logs(0.25), logs(0.25), logs(0.5)
    # beta = 1: -2 log(4/5)
    np.testing.assert_allclose(dpo_loss(lw, rw, ll, rl, beta=1.0), [-2.0 * LOG(4.0 / 5.0)], rtol=1e-14)
    # beta = 1/2: beta*margin = log 2, -(2/0.5) log(2/3)
    np.testing.assert_allclose(dpo_loss(lw, rw, ll, rl, beta=0.5), [-4.0 * LOG(2.0 / 3.0)], rtol=1e-14)
    # Swapping winner and loser: margin = -log 4, -2 log(1/5)
    np.testing.assert_allclose(dpo_loss(ll, rl, lw, rw, beta=1.0), [2.0 * LOG(5.0)], rtol=1e-14)
    # d L / d logp_l = 2 sigma(-beta margin) = 2 * 1/5 at beta = 1 (loser pushed down).
    g = jax.grad(lambda x: dpo_loss(lw, rw, x, rl, beta=1.0).sum())(ll)
    np.testing.assert_allclose(g, [2.0 / 5.0], rtol=1e-14)
    g_w = jax.grad(lambda x: dpo_loss(x, rw, ll, rl, beta=1.0).sum())(lw)
    np.testing.assert_allclose(g_w, [-2.0 / 5.0], rtol=1e-14)


def test_npo_hand_values():
    lp, rl = logs(0.25, 0.5, 0.5), logs(0.5, 0.5, 0.125)
    # (2/beta) log(1 + (pi/pi_ref)^beta), ratios 1/2, 1, 4
    np.testing.assert_allclose(
        npo_loss(lp, rl, beta=1.0), [2.0 * LOG(1.5), 2.0 * LOG(2.0), 2.0 * LOG(5.0)], rtol=1e-14
    )
    np.testing.assert_allclose(
        npo_loss(lp, rl, beta=2.0), [LOG(1.25), LOG(2.0), LOG(17.0)], rtol=1e-14
    )
    np.testing.assert_allclose(
        npo_loss(lp, rl, beta=0.5),
        [4.0 * LOG(1.0 + math.sqrt(0.5)), 4.0 * LOG(2.0), 4.0 * LOG(3.0)],
        rtol=1e-14,
    )


def test_npo_weight_hand_values():
    lp, rl = logs(0.25, 0.5, 0.5), logs(0.5, 0.5, 0.125)
    # 2 pi^beta / (pi^beta + pi_ref^beta)
    np.testing.assert_allclose(
        npo_weight(lp, rl, beta=1.0),
        [2 * 0.25 / (0.25 + 0.5), 1.0, 2 * 0.5 / (0.5 + 0.125)],
        rtol=1e-14,
    )
    np.testing.assert_allclose(
        npo_weight(lp, rl, beta=2.0),
        [2 * 0.25**2 / (0.25**2 + 0.5**2), 1.0, 2 * 0.5**2 / (0.5**2 + 0.125**2)],
        rtol=1e-14,
    )


def test_kto_reference_point_hand_values():
    np.testing.assert_allclose(kto_reference_point(a64(0.1, 0.3), beta=2.0), 2.0 * 0.2, rtol=1e-14)
    np.testing.assert_allclose(kto_reference_point(a64(0.5, 1.0, 1.5), beta=0.1), 0.1, rtol=1e-14)
    # A rounding-negative mean KL is clamped to 0.
    assert float(kto_reference_point(a64(-1e-3, 0.0), beta=1.0)) == 0.0
    assert jnp.shape(kto_reference_point(a64(0.1, 0.3), beta=2.0)) == ()


def test_kto_hand_values():
    lp, rl = logs(0.25), logs(0.5)
    # r = -log 2; z_ref - beta r = log 2 + log 2 = log 4 -> -2 log(4/5)
    np.testing.assert_allclose(
        kto_loss(lp, rl, beta=1.0, z_ref=LOG(2.0)), [-2.0 * LOG(4.0 / 5.0)], rtol=1e-14
    )
    # beta = 2, z_ref = log 3: z - beta r = log 3 + 2 log 2 = log 12 -> -(1) log(12/13)
    np.testing.assert_allclose(
        kto_loss(lp, rl, beta=2.0, z_ref=LOG(3.0)), [-LOG(12.0 / 13.0)], rtol=1e-14
    )
    # Per-example z_ref of the same shape broadcasts elementwise.
    out = kto_loss(logs(0.25, 0.25), logs(0.5, 0.5), beta=1.0, z_ref=a64(0.0, LOG(2.0)))
    np.testing.assert_allclose(out, [2.0 * LOG(1.5), 2.0 * LOG(1.25)], rtol=1e-14)


def test_simnpo_hand_values():
    lp = logs(0.25)  # two tokens of probability 1/2 each
    # -(beta/|y|) logp - gamma = log 2 at beta=1, |y|=2, gamma=0 -> -2 log(2/3)
    np.testing.assert_allclose(simnpo_loss(lp, 2.0, beta=1.0), [-2.0 * LOG(2.0 / 3.0)], rtol=1e-14)
    # gamma = log 2 cancels it: -2 log(1/2)
    np.testing.assert_allclose(
        simnpo_loss(lp, 2.0, beta=1.0, gamma=LOG(2.0)), [2.0 * LOG(2.0)], rtol=1e-14
    )
    # beta = 2: argument log 4 -> -(1) log(4/5)
    np.testing.assert_allclose(simnpo_loss(lp, 2.0, beta=2.0), [-LOG(0.8)], rtol=1e-14)
    # Per-example lengths: |y| = 1 -> argument log 4 at beta = 1 -> -2 log(4/5)
    np.testing.assert_allclose(
        simnpo_loss(logs(0.25, 0.25), a64(1.0, 2.0), beta=1.0),
        [-2.0 * LOG(0.8), -2.0 * LOG(2.0 / 3.0)],
        rtol=1e-14,
    )
    # d L / d logp = (2/|y|) sigma(-u), u = log 2 -> (2/2) * 1/3
    g = jax.grad(lambda x: simnpo_loss(x, 2.0, beta=1.0).sum())(lp)
    np.testing.assert_allclose(g, [1.0 / 3.0], rtol=1e-14)


# =========================================================================== function table

# Each entry: a function of (x, y, beta) where x, y are per-example arrays (a log-prob and a
# reference log-prob or a second free input), returning an array; covers every objective.
_AXIS3 = jnp.array([[1.0, 0.0, -1.0]])


def _kl_fn(x, y, beta):
    del beta
    # two distributions over 3 classes built from the inputs, shape (n, 3)
    return kl_divergence(
        jax.nn.log_softmax(x[:, None] * _AXIS3.astype(x.dtype) + y[:, None], axis=-1),
        jax.nn.log_softmax(-x[:, None] * _AXIS3.astype(x.dtype), axis=-1),
    )


OBJECTIVES = {
    "ga": lambda x, y, beta: ga_loss(x),
    "rt": lambda x, y, beta: rt_loss(x),
    "idk": lambda x, y, beta: idk_loss(x),
    "kl": _kl_fn,
    "dpo": lambda x, y, beta: dpo_loss(y, jnp.zeros_like(y), x, jnp.zeros_like(x), beta=beta),
    "npo": lambda x, y, beta: npo_loss(x, y, beta=beta),
    "npo_weight": lambda x, y, beta: npo_weight(x, y, beta=beta),
    "kto": lambda x, y, beta: kto_loss(x, y, beta=beta, z_ref=0.5),
    "kto_reference_point": lambda x, y, beta: kto_reference_point(x * x + y * y, beta=beta),
    "simnpo": lambda x, y, beta: simnpo_loss(x + y, 3.0, beta=beta, gamma=0.25),
}

MODERATE_X = a64(-2.3, -0.7, 0.4, 1.1)
MODERATE_Y = a64(-0.5, -1.9, 0.8, 0.3)


BETA_FREE = ("ga", "rt", "idk", "kl")  # these read no beta: one check each is enough


@pytest.mark.parametrize(
    "name, beta",
    [(n, b) for n in OBJECTIVES if n != "kto_reference_point" for b in (0.3, 2.0) if not (n in BETA_FREE and b != 0.3)],
)
def test_check_grads(name, beta):
    # jitted with beta traced: one compiled program per derivative, shared by both betas,
    # instead of one per primitive and shape
    f = _jitted(name)
    check_grads(lambda x, y: f(x, y, beta), (MODERATE_X, MODERATE_Y), order=2, modes=("fwd", "rev"))


@functools.cache
def _jitted(name):
    return jax.jit(OBJECTIVES[name])


def test_kto_reference_point_has_no_gradient():
    kl = a64(0.2, 0.5, 0.1)
    g = jax.grad(lambda k: kto_reference_point(k, beta=1.5))(kl)
    np.testing.assert_array_equal(g, np.zeros(3))
    # ... although its value does depend on the KL.
    assert float(kto_reference_point(2.0 * kl, beta=1.5)) == pytest.approx(2 * 1.5 * 0.8 / 3, rel=1e-14)


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_jit_equals_eager(name):
    f = OBJECTIVES[name]
    for beta in (0.05, 1.0, 7.0):
        eager = f(MODERATE_X, MODERATE_Y, beta)
        # beta traced: the validation must let tracers through.
        jitted = jax.jit(f)(MODERATE_X, MODERATE_Y, beta)
        np.testing.assert_allclose(jitted, eager, rtol=1e-13, atol=1e-15)
        assert jitted.shape == eager.shape


@functools.cache
def _value_and_grads(name):
    f = OBJECTIVES[name]

    def vg(x, y, beta):
        return f(x, y, beta), jax.grad(lambda a, b: jnp.sum(f(a, b, beta)), argnums=(0, 1))(x, y)

    return jax.jit(vg)


EXTREME = [-1e4, -1e3, -50.0, -1.0, 0.0, 1.0, 50.0, 1e3, 1e4]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("name", list(OBJECTIVES))
@pytest.mark.parametrize("beta", [0.01, 1.0, 10.0])
def test_finite_values_and_gradients_at_extreme_log_ratios(name, dtype, beta):
    x = jnp.array(EXTREME, dtype=dtype)
    # The dtype of the eager output (no jit promotion games) ...
    assert OBJECTIVES[name](x, x, beta).dtype == dtype
    # ... and values/gradients through one compiled program per objective (fast).
    for y in (jnp.zeros_like(x), -x, x[::-1]):
        out, (gx, gy) = _value_and_grads(name)(x, y, beta)
        assert out.dtype == dtype, (name, out.dtype)
        assert bool(jnp.all(jnp.isfinite(out))), (name, out)
        assert gx.dtype == dtype and gy.dtype == dtype
        assert bool(jnp.all(jnp.isfinite(gx))), (name, gx)
        assert bool(jnp.all(jnp.isfinite(gy))), (name, gy)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_extreme_values_are_right_not_just_finite(dtype):
    x = jnp.array([-1e4, 1e4], dtype=dtype)
    z = jnp.zeros_like(x)
    # NPO -> 0 for pi << pi_ref and -> 2 r for pi >> pi_ref (softplus asymptotes).
    np.testing.assert_allclose(npo_loss(x, z, beta=1.0), [0.0, 2e4], rtol=1e-6)
    np.testing.assert_allclose(npo_weight(x, z, beta=1.0), [0.0, 2.0], rtol=1e-6)
    g = jax.grad(lambda a: npo_loss(a, z, beta=1.0).sum())(x)
    np.testing.assert_allclose(g, [0.0, 2.0], rtol=1e-6)
    # KTO with z_ref behaves the same way; DPO with winner at reference too.
    np.testing.assert_allclose(kto_loss(x, z, beta=1.0, z_ref=0.0), [0.0, 2e4], rtol=1e-6)
    np.testing.assert_allclose(dpo_loss(z, z, x, z, beta=1.0), [0.0, 2e4], rtol=1e-6)
    # SimNPO: logp = -1e4 over 1 token -> loss ~ 0; logp = +1e4 -> 2e4.
    np.testing.assert_allclose(simnpo_loss(x, 1.0, beta=1.0), [0.0, 2e4], rtol=1e-6)


# =========================================================================== limiting identities


@pytest.mark.parametrize("beta", [1e-1, 1e-2, 1e-3, 1e-4])
def test_npo_tends_to_ga_as_beta_to_zero(beta):
    # Proposition 1: (2/beta) log((1 + e^{beta r})/2) -> r. Expanding log((1+e^u)/2)
    # = u/2 + u^2/8 - u^4/192 + ..., the error is beta r^2/4 - beta^3 r^4/96 + O(beta^5).
    r = a64(-3.0, -1.0, 0.5, 2.0)
    ref = a64(-1.0, -4.0, -2.0, -0.5)
    diff = npo_loss(ref + r, ref, beta=beta) - 2.0 * LOG(2.0) / beta
    err = np.asarray(diff - r)
    expected_err = beta * np.asarray(r) ** 2 / 4
    np.testing.assert_allclose(err, expected_err, atol=beta**3 * 81 / 96 * 1.1 + 1e-10)
    assert np.all(np.abs(err) <= beta * np.asarray(r) ** 2 / 4 * 1.01 + 1e-10)
    # Gradient: W = 2 sigma(beta r) = 1 + tanh(beta r / 2) -> 1 = d L_GA / d logp.
    g = jax.grad(lambda lp: npo_loss(lp, ref, beta=beta).sum())(ref + r)
    g_ga = jax.grad(lambda lp: ga_loss(lp).sum())(ref + r)
    np.testing.assert_allclose(g, 1.0 + np.tanh(beta * np.asarray(r) / 2), rtol=1e-13)
    np.testing.assert_allclose(g, g_ga, atol=beta * 3.0 / 2 * 1.01)


def test_npo_to_ga_error_shrinks_monotonically():
    r = a64(-2.0)
    errs = [abs(float((npo_loss(r, a64(0.0), beta=b) - 2 * LOG(2) / b - r)[0])) for b in (1.0, 0.1, 0.01, 0.001)]
    assert errs == sorted(errs, reverse=True)
    assert errs[-1] < 1.1e-3 and errs[0] > 0.5  # beta = 1: |2 log((1+e^-2)/2) + 2| ~ 0.75


@pytest.mark.parametrize("beta", [0.1, 1.0, 4.0])
def test_kto_with_zero_reference_point_equals_npo(beta):
    lp, rl = a64(-3.0, -0.2, -5.0, -1.0), a64(-1.0, -0.9, -0.1, -6.0)
    np.testing.assert_allclose(kto_loss(lp, rl, beta=beta, z_ref=0.0), npo_loss(lp, rl, beta=beta), rtol=1e-14)
    # And a positive reference point strictly lowers the loss (sigma increasing).
    assert bool(jnp.all(kto_loss(lp, rl, beta=beta, z_ref=0.3) < npo_loss(lp, rl, beta=beta)))


@pytest.mark.parametrize("beta", [0.1, 1.0, 4.0])
def test_dpo_with_winner_at_reference_equals_npo(beta):
    lp, rl = a64(-3.0, -0.2, -5.0, -1.0), a64(-1.0, -0.9, -0.1, -6.0)
    w = a64(-2.0, -7.0, -0.3, -1.5)  # r_w = w - w = 0
    np.testing.assert_allclose(dpo_loss(w, w, lp, rl, beta=beta), npo_loss(lp, rl, beta=beta), rtol=1e-14)


def _simnpo_fan_code(logp, length, beta, gamma_code):
    """Fan et al.'s code form -(2/beta) log sigma(beta (NLL/|y| - gamma_code)), in numpy."""
    z = beta * (-np.asarray(logp) / np.asarray(length) - gamma_code)
    return (2.0 / beta) * np.logaddexp(0.0, -z)  # -log sigma(z) = log(1 + e^{-z})


@pytest.mark.parametrize("beta", [0.2, 1.0, 3.0])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_simnpo_matches_fan_code_form(beta, gamma):
    lp = a64(-12.0, -3.0, -40.0, -0.5)
    length = a64(4.0, 1.0, 20.0, 2.0)
    np.testing.assert_allclose(
        simnpo_loss(lp, length, beta=beta, gamma=gamma),
        _simnpo_fan_code(lp, length, beta, gamma / beta),
        rtol=1e-13,
    )


def test_simnpo_margin_scaling_is_not_the_code_gamma():
    # gamma_paper = gamma_code would be wrong for beta != 1: make sure the test above can fail.
    lp, length = a64(-2.0), a64(4.0)
    ours = simnpo_loss(lp, length, beta=3.0, gamma=0.5)
    # paper form: u = (3/4) * 2 - 0.5 = 1 -> (2/3) log(1 + e^{-1})
    np.testing.assert_allclose(ours, [(2.0 / 3.0) * LOG(1.0 + math.exp(-1.0))], rtol=1e-14)
    wrong = _simnpo_fan_code(lp, length, 3.0, 0.5)  # 3 * (0.5 - 0.5) = 0 -> (2/3) log 2
    np.testing.assert_allclose(wrong, [(2.0 / 3.0) * LOG(2.0)], rtol=1e-14)
    assert abs(float(ours[0]) - float(wrong[0])) > 0.2


def test_kto_reference_point_gets_no_gradient():
    lp, rl = a64(-3.0, -0.2), a64(-1.0, -0.9)
    gz = jax.grad(lambda z: kto_loss(lp, rl, beta=1.0, z_ref=z).sum())(0.7)
    assert float(gz) == 0.0
    # Through kto_reference_point as well.
    kl = a64(0.3, 0.1)
    gkl = jax.grad(lambda k: kto_loss(lp, rl, beta=1.0, z_ref=kto_reference_point(k, beta=1.0)).sum())(kl)
    np.testing.assert_array_equal(gkl, np.zeros(2))
    # The value does depend on z_ref, so a zero gradient is a stop_gradient, not a constant.
    assert float(kto_loss(lp, rl, beta=1.0, z_ref=0.7).sum()) < float(kto_loss(lp, rl, beta=1.0, z_ref=0.0).sum())


# =========================================================================== gradient signs


def test_npo_gradient_is_weight_times_grad_logp():
    lp, rl = a64(-3.0, -0.2, -5.0, -1.0, -1.0), a64(-1.0, -0.9, -0.1, -6.0, -1.0)
    for beta in (0.1, 1.0, 5.0):
        g_lp, g_ref = jax.grad(lambda a, b: npo_loss(a, b, beta=beta).sum(), argnums=(0, 1))(lp, rl)
        w = npo_weight(lp, rl, beta=beta)
        np.testing.assert_allclose(g_lp, w, rtol=1e-14)
        np.testing.assert_allclose(g_ref, -w, rtol=1e-14)
        assert bool(jnp.all((w > 0) & (w < 2)))
        # At pi = pi_ref (last entry) the weight is exactly 1 (NPO looks like GA).
        assert float(w[-1]) == 1.0
    # pi = 1/4, pi_ref = 1/2, beta = 1: W = 2 * (1/4) / (3/4) = 2/3.
    g = jax.grad(lambda a: npo_loss(a, logs(0.5), beta=1.0).sum())(logs(0.25))
    np.testing.assert_allclose(g, [2.0 / 3.0], rtol=1e-14)


def test_ga_rt_idk_gradient_signs():
    lp = a64(-3.0, -0.2)
    np.testing.assert_array_equal(jax.grad(lambda a: ga_loss(a).sum())(lp), [1.0, 1.0])
    np.testing.assert_array_equal(jax.grad(lambda a: rt_loss(a).sum())(lp), [-1.0, -1.0])
    np.testing.assert_array_equal(jax.grad(lambda a: idk_loss(a).sum())(lp), [-1.0, -1.0])


def test_npo_weight_fades_once_unlearned():
    rl = a64(-1.0, -1.0, -1.0)
    w = npo_weight(rl + a64(0.0, -5.0, -30.0), rl, beta=1.0)
    assert float(w[0]) == 1.0
    assert 0 < float(w[2]) < float(w[1]) < 0.02
    np.testing.assert_allclose(w[2], 2 * math.exp(-30) / (1 + math.exp(-30)), rtol=1e-12)


# =========================================================================== properties

_npo = jax.jit(lambda a, b, beta: npo_loss(a, b, beta=beta))
_w = jax.jit(lambda a, b, beta: npo_weight(a, b, beta=beta))
_kl = jax.jit(kl_divergence)
_dpo = jax.jit(lambda a, b, c, d, beta: dpo_loss(a, b, c, d, beta=beta))
_kto = jax.jit(lambda a, b, beta, z: kto_loss(a, b, beta=beta, z_ref=z))
_simnpo = jax.jit(lambda a, n, beta, g: simnpo_loss(a, n, beta=beta, gamma=g))

logp_st = st.floats(-50.0, 0.0, allow_nan=False)
beta_st = st.floats(1e-3, 10.0, allow_nan=False)
PROP = settings(deadline=None, max_examples=50)


@PROP
@given(lp=logp_st, rl=logp_st, beta=beta_st)
def test_prop_npo_nonnegative(lp, rl, beta):
    assert float(_npo(lp, rl, beta)) >= 0.0


@PROP
@given(lp=logp_st, rl=logp_st, beta=beta_st)
def test_prop_npo_weight_in_open_interval(lp, rl, beta):
    w = float(_w(lp, rl, beta))
    assert 0.0 <= w <= 2.0
    u = beta * (lp - rl)
    if abs(u) < 30.0:  # moderate: strictly inside (0, 2) in float64
        assert 0.0 < w < 2.0
        np.testing.assert_allclose(w, 2.0 / (1.0 + math.exp(-u)), rtol=1e-12)


@PROP
@given(a=logp_st, b=logp_st, rl=logp_st, beta=beta_st)
def test_prop_npo_monotone_in_logp(a, b, rl, beta):
    lo, hi = min(a, b), max(a, b)
    assert float(_npo(lo, rl, beta)) <= float(_npo(hi, rl, beta))


K = 5
logits_st = st.lists(st.floats(-20.0, 20.0, allow_nan=False), min_size=K, max_size=K)


@PROP
@given(x=logits_st, y=logits_st)
def test_prop_kl_nonnegative_and_zero_on_identical(x, y):
    p = jax.nn.log_softmax(jnp.array(x, dtype=jnp.float64))
    q = jax.nn.log_softmax(jnp.array(y, dtype=jnp.float64))
    assert float(_kl(p, q)) >= -1e-12
    assert float(_kl(p, p)) == 0.0
    assert float(_kl(q, q)) == 0.0


@PROP
@given(lw=logp_st, rw=logp_st, ll=logp_st, rl=logp_st, beta=beta_st,
       z=st.floats(0.0, 20.0), n=st.floats(1.0, 200.0), g=st.floats(0.0, 5.0))
def test_prop_dpo_kto_simnpo_nonnegative(lw, rw, ll, rl, beta, z, n, g):
    assert float(_dpo(lw, rw, ll, rl, beta)) >= 0.0
    assert float(_kto(ll, rl, beta, z)) >= 0.0
    assert float(_simnpo(ll, n, beta, g)) >= 0.0


# =========================================================================== bad input

BAD_BETAS = [0.0, -1.0, float("nan"), float("inf")]
X2 = a64(-1.0, -2.0)


@pytest.mark.parametrize("beta", BAD_BETAS)
@pytest.mark.parametrize(
    "call",
    [
        lambda b: dpo_loss(X2, X2, X2, X2, beta=b),
        lambda b: npo_loss(X2, X2, beta=b),
        lambda b: npo_weight(X2, X2, beta=b),
        lambda b: kto_loss(X2, X2, beta=b, z_ref=0.0),
        lambda b: kto_reference_point(X2, beta=b),
        lambda b: simnpo_loss(X2, 2.0, beta=b),
    ],
    ids=["dpo", "npo", "npo_weight", "kto", "kto_reference_point", "simnpo"],
)
def test_bad_beta_raises(call, beta):
    with pytest.raises(ValueError, match="beta"):
        call(beta)


@pytest.mark.parametrize("gamma", [-1.0, -1e-9, float("nan")])
def test_bad_gamma_raises(gamma):
    with pytest.raises(ValueError, match="gamma"):
        simnpo_loss(X2, 2.0, beta=1.0, gamma=gamma)


@pytest.mark.parametrize("z_ref", [-1.0, -1e-9, float("nan"), a64(0.1, -0.1)])
def test_bad_z_ref_raises(z_ref):
    with pytest.raises(ValueError, match="z_ref"):
        kto_loss(X2, X2, beta=1.0, z_ref=z_ref)


@pytest.mark.parametrize("length", [0.0, -1.0, a64(3.0, 0.0)])
def test_bad_length_raises(length):
    with pytest.raises(ValueError, match="length"):
        simnpo_loss(X2, length, beta=1.0)


X3 = a64(-1.0, -2.0, -3.0)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: npo_loss(X2, X3, beta=1.0), "ref_logp"),
        (lambda: npo_weight(X3, X2, beta=1.0), "ref_logp"),
        (lambda: kto_loss(X2, X3, beta=1.0, z_ref=0.0), "ref_logp"),
        (lambda: dpo_loss(X2, X2, X2, X3, beta=1.0), "ref_logp_l"),
        (lambda: dpo_loss(X3, X2, X2, X2, beta=1.0), "logp_w"),
        (lambda: kl_divergence(jnp.zeros((2, 3)), jnp.zeros((2, 4))), "ref_logp_dist"),
        # Same size, different rank: must not silently broadcast to (2, 2).
        (lambda: npo_loss(X2, X2[:, None], beta=1.0), "ref_logp"),
    ],
)
def test_mismatched_shapes_raise(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_valid_edge_hyperparameters_are_accepted():
    # gamma = 0 and z_ref = 0 are allowed (>= 0); tiny beta is allowed (> 0).
    assert bool(jnp.all(jnp.isfinite(simnpo_loss(X2, 1.0, beta=1e-8, gamma=0.0))))
    assert bool(jnp.all(jnp.isfinite(kto_loss(X2, X2, beta=1e-8, z_ref=0.0))))


def test_broadcast_arguments_with_wrong_shape_name_the_argument():
    x2 = jnp.zeros(2)
    with pytest.raises(ValueError, match="length"):
        simnpo_loss(x2, jnp.ones(3), beta=1.0)
    with pytest.raises(ValueError, match="z_ref"):
        kto_loss(x2, x2, beta=1.0, z_ref=jnp.ones(3))


def test_kl_with_zero_probability_entries_is_finite():
    p = jax.nn.log_softmax(jnp.array([0.0, -jnp.inf, 1.0]))
    q = jax.nn.log_softmax(jnp.zeros(3))
    e = np.exp([0.0, 1.0]) / (1 + np.e)
    expected = np.sum(e * (np.log(e) - np.log(1 / 3)))
    np.testing.assert_allclose(kl_divergence(p, q), expected, rtol=1e-12)
    g = jax.grad(lambda a: kl_divergence(jax.nn.log_softmax(a), q))(jnp.array([0.0, -jnp.inf, 1.0]))
    assert np.all(np.isfinite(g))
