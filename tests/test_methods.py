"""Tests of theory/methods.py: the named methods of PAPER.md section 2 as weights of eq. 17.

Expected losses are assembled in numpy from the paper's formulas (``logaddexp`` for the
softplus), independently of theory/objectives.py.
"""

from __future__ import annotations

import dataclasses
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theory.methods import (
    METHODS,
    LossInputs,
    Method,
    get_method,
    method_loss,
    method_names,
    method_terms,
    stack_methods,
)

WEIGHTS = ("ga", "npo", "dpo", "kto", "simnpo", "idk", "rt", "kl_rt", "kl_fg")

# PAPER.md section 2: each named method is its objective(s) with weight 1, all else 0.
EXPECTED_WEIGHTS = {
    "GA": {"ga": 1},
    "GA+RT": {"ga": 1, "rt": 1},
    "GA+KL": {"ga": 1, "kl_rt": 1},
    "IDK+RT": {"idk": 1, "rt": 1},
    "DPO": {"dpo": 1},
    "DPO+RT": {"dpo": 1, "rt": 1},
    "DPO+KL": {"dpo": 1, "kl_rt": 1},
    "KTO": {"kto": 1},
    "KTO+RT": {"kto": 1, "rt": 1},
    "NPO": {"npo": 1},
    "NPO+RT": {"npo": 1, "rt": 1},
    "NPO+KL": {"npo": 1, "kl_rt": 1},
    "SimNPO": {"simnpo": 1},
    "SimNPO+RT": {"simnpo": 1, "rt": 1},
}


def a64(*xs):
    return jnp.array(xs, dtype=jnp.float64)


INPUTS = LossInputs(
    forget_logp=a64(-2.0, -0.5, -4.0),
    forget_ref_logp=a64(-1.0, -1.5, -3.0),
    idk_logp=a64(-0.7, -3.0, -1.2),
    idk_ref_logp=a64(-1.1, -2.0, -1.3),
    forget_length=a64(2.0, 1.0, 5.0),
    forget_kl=a64(0.2, 0.05, 0.4),
    retain_logp=a64(-0.3, -1.0, -0.1, -2.2),
    retain_kl=a64(0.01, 0.03, 0.0, 0.1),
)

# Every weight non-zero and distinct, so a wrong pairing of weight and term shows.
CUSTOM = Method(
    ga=0.5, npo=1.5, dpo=0.25, kto=2.0, simnpo=0.75, idk=0.3, rt=1.1, kl_rt=0.4, kl_fg=0.6,
    beta=0.8, gamma=0.2,
)


def _sp(x):
    return np.logaddexp(0.0, x)  # softplus(x) = log(1 + e^x) = -log sigma(-x)


def expected_terms(inputs: LossInputs, beta: float, gamma: float) -> dict:
    """The batch means of each component, straight from PAPER.md section 2, in numpy."""
    f, fr = np.asarray(inputs.forget_logp), np.asarray(inputs.forget_ref_logp)
    r = f - fr
    length = 1.0 if inputs.forget_length is None else np.asarray(inputs.forget_length)
    t = {
        "ga": np.mean(f),
        "npo": np.mean((2 / beta) * _sp(beta * r)),
        "simnpo": np.mean((2 / beta) * _sp(-(-(beta / length) * f - gamma))),
    }
    if inputs.idk_logp is not None:
        t["idk"] = -np.mean(np.asarray(inputs.idk_logp))
        r_w = np.asarray(inputs.idk_logp) - np.asarray(inputs.idk_ref_logp)
        t["dpo"] = np.mean((2 / beta) * _sp(-beta * (r_w - r)))
    if inputs.forget_kl is not None:
        z = beta * max(np.mean(np.asarray(inputs.forget_kl)), 0.0)
        t["kto"] = np.mean((2 / beta) * _sp(-(z - beta * r)))
        t["kl_fg"] = np.mean(np.asarray(inputs.forget_kl))
    if inputs.retain_logp is not None:
        t["rt"] = -np.mean(np.asarray(inputs.retain_logp))
    if inputs.retain_kl is not None:
        t["kl_rt"] = np.mean(np.asarray(inputs.retain_kl))
    return t


def expected_loss(m: Method, inputs: LossInputs) -> float:
    t = expected_terms(inputs, m.beta, m.gamma)
    total = 0.0
    for name in WEIGHTS:
        w = getattr(m, name)
        if w != 0:
            total += (-w if name == "kl_fg" else w) * t[name]
    return total


# =========================================================================== registry


def test_registered_names_exactly_the_fourteen_in_paper_order():
    assert method_names() == list(EXPECTED_WEIGHTS)
    assert list(METHODS) == list(EXPECTED_WEIGHTS)
    assert len(METHODS) == 14


@pytest.mark.parametrize("name", list(EXPECTED_WEIGHTS))
def test_registered_weights(name):
    m = METHODS[name]
    want = {w: float(EXPECTED_WEIGHTS[name].get(w, 0)) for w in WEIGHTS}
    assert m.weights() == want
    assert {w: getattr(m, w) for w in WEIGHTS} == want
    assert m.beta == Method().beta > 0
    assert m.gamma == 0.0


# =========================================================================== method_loss values


def test_expected_terms_sanity_by_hand():
    # Guard the numpy reference itself on one hand value: NPO at r = -1, 1, -1, beta = 1.
    one = LossInputs(forget_logp=a64(-2.0), forget_ref_logp=a64(-1.0))
    t = expected_terms(one, 1.0, 0.0)
    assert t["npo"] == pytest.approx(2 * math.log(1 + math.exp(-1.0)), rel=1e-14)
    assert t["simnpo"] == pytest.approx(2 * math.log(1 + math.exp(-2.0)), rel=1e-14)


@pytest.mark.parametrize("name", list(EXPECTED_WEIGHTS))
@pytest.mark.parametrize("beta, gamma", [(1.0, 0.0), (0.7, 0.3), (5.0, 1.0)])
def test_method_loss_equals_hand_assembled_sum(name, beta, gamma):
    m = get_method(name, beta=beta, gamma=gamma)
    np.testing.assert_allclose(method_loss(m, INPUTS), expected_loss(m, INPUTS), rtol=1e-13)


def test_method_loss_custom_all_weights():
    t = expected_terms(INPUTS, 0.8, 0.2)
    want = (
        0.5 * t["ga"] + 1.5 * t["npo"] + 0.25 * t["dpo"] + 2.0 * t["kto"] + 0.75 * t["simnpo"]
        + 0.3 * t["idk"] + 1.1 * t["rt"] + 0.4 * t["kl_rt"] - 0.6 * t["kl_fg"]
    )
    np.testing.assert_allclose(method_loss(CUSTOM, INPUTS), want, rtol=1e-13)


def test_method_terms_are_the_unweighted_means():
    terms = method_terms(CUSTOM, INPUTS)
    want = expected_terms(INPUTS, 0.8, 0.2)
    assert set(terms) == set(WEIGHTS)
    for k in WEIGHTS:
        np.testing.assert_allclose(terms[k], want[k], rtol=1e-13, err_msg=k)
    # kl_fg is reported with a plus sign (it is the KL itself).
    assert float(terms["kl_fg"]) == pytest.approx((0.2 + 0.05 + 0.4) / 3, rel=1e-14)


def test_hand_numbers_for_simple_methods():
    # GA+RT = mean(forget_logp) - mean(retain_logp)
    np.testing.assert_allclose(
        method_loss(METHODS["GA+RT"], INPUTS), (-2.0 - 0.5 - 4.0) / 3 + (0.3 + 1.0 + 0.1 + 2.2) / 4, rtol=1e-14
    )
    # GA+KL = mean(forget_logp) + mean(retain_kl)
    np.testing.assert_allclose(
        method_loss(METHODS["GA+KL"], INPUTS), (-6.5) / 3 + (0.01 + 0.03 + 0.0 + 0.1) / 4, rtol=1e-14
    )
    # IDK+RT = -mean(idk_logp) - mean(retain_logp)
    np.testing.assert_allclose(
        method_loss(METHODS["IDK+RT"], INPUTS), (0.7 + 3.0 + 1.2) / 3 + 3.6 / 4, rtol=1e-14
    )


def test_forget_kl_enters_with_minus_sign():
    np.testing.assert_allclose(method_loss(Method(kl_fg=1.0), INPUTS), -(0.2 + 0.05 + 0.4) / 3, rtol=1e-14)
    np.testing.assert_allclose(
        method_loss(Method(ga=1.0, kl_fg=2.0), INPUTS), -6.5 / 3 - 2 * 0.65 / 3, rtol=1e-14
    )
    # while the retain KL enters with a plus sign
    np.testing.assert_allclose(method_loss(Method(kl_rt=1.0), INPUTS), 0.14 / 4, rtol=1e-14)


def test_simnpo_without_lengths_means_one_token():
    inp = dataclasses.replace(INPUTS, forget_length=None)
    beta = 2.0
    f = np.array([-2.0, -0.5, -4.0])
    want = np.mean((2 / beta) * np.log1p(np.exp(beta * f)))  # gamma = 0, |y| = 1
    np.testing.assert_allclose(method_loss(get_method("SimNPO", beta=beta), inp), want, rtol=1e-14)
    # and lengths do matter when given
    assert abs(float(method_loss(get_method("SimNPO", beta=beta), INPUTS)) - want) > 1e-2


def test_minimal_inputs_suffice_for_forget_only_methods():
    inp = LossInputs(forget_logp=INPUTS.forget_logp, forget_ref_logp=INPUTS.forget_ref_logp)
    for name in ("GA", "NPO", "SimNPO"):
        m = METHODS[name]
        np.testing.assert_allclose(method_loss(m, inp), expected_loss(m, inp), rtol=1e-13)


# =========================================================================== errors


@pytest.mark.parametrize(
    "bad, suggestion",
    [("NPO_RT", "NPO+RT"), ("simnpo", "SimNPO"), ("GA+KLL", "GA+KL"), ("npo+kl", "NPO+KL"), ("IDK-RT", "IDK+RT")],
)
def test_get_method_unknown_name_suggests_closest(bad, suggestion):
    with pytest.raises(ValueError, match=re.escape(f"did you mean {suggestion!r}")):
        get_method(bad)


def test_get_method_overrides_and_does_not_mutate_registry():
    m = get_method("NPO+RT", beta=0.5, gamma=0.1)
    assert (m.beta, m.gamma) == (0.5, 0.1)
    assert m.weights() == METHODS["NPO+RT"].weights()
    assert METHODS["NPO+RT"].beta == Method().beta and METHODS["NPO+RT"].gamma == 0.0
    assert get_method("NPO") == METHODS["NPO"]


@pytest.mark.parametrize("beta", [0.0, -1.0, float("nan")])
def test_get_method_bad_beta(beta):
    with pytest.raises(ValueError, match="beta"):
        get_method("NPO", beta=beta)


@pytest.mark.parametrize("gamma", [-1.0, float("nan")])
def test_get_method_bad_gamma(gamma):
    with pytest.raises(ValueError, match="gamma"):
        get_method("SimNPO", gamma=gamma)


def test_replace_validates():
    with pytest.raises(ValueError, match="betta"):
        Method().replace(betta=1.0)
    with pytest.raises(ValueError, match="beta"):
        Method().replace(beta=0.0)
    with pytest.raises(ValueError, match="ga"):
        Method().replace(ga=float("inf"))
    m = Method().replace(npo=2.0, beta=3.0)
    assert (m.npo, m.beta) == (2.0, 3.0)


def test_method_loss_validates_a_directly_built_method():
    with pytest.raises(ValueError, match="beta"):
        method_loss(Method(npo=1.0, beta=-1.0), INPUTS)
    with pytest.raises(ValueError, match="gamma"):
        method_loss(Method(simnpo=1.0, gamma=-0.5), INPUTS)


@pytest.mark.parametrize(
    "method, none_field",
    [
        (Method(dpo=1.0), "idk_ref_logp"),
        (Method(dpo=1.0), "idk_logp"),
        (Method(idk=1.0), "idk_logp"),
        (Method(kto=1.0), "forget_kl"),
        (Method(kl_fg=0.5), "forget_kl"),
        (Method(rt=1.0), "retain_logp"),
        (Method(kl_rt=1.0), "retain_kl"),
        (METHODS["NPO+RT"], "retain_logp"),
        (METHODS["GA+KL"], "retain_kl"),
    ],
)
def test_missing_inputs_raise_naming_the_field(method, none_field):
    inp = dataclasses.replace(INPUTS, **{none_field: None})
    with pytest.raises(ValueError, match=none_field):
        method_loss(method, inp)


def test_missing_inputs_for_unweighted_components_are_fine():
    # NPO does not need the retain or IDK inputs.
    inp = dataclasses.replace(INPUTS, retain_logp=None, retain_kl=None, idk_logp=None, idk_ref_logp=None)
    np.testing.assert_allclose(method_loss(METHODS["NPO"], inp), expected_loss(METHODS["NPO"], inp), rtol=1e-13)


# =========================================================================== transforms


def _zoo():
    betas = [0.1, 0.5, 1.0, 2.0, 7.0]
    ms = [get_method(n, beta=betas[i % 5], gamma=0.1 * (i % 3)) for i, n in enumerate(METHODS)]
    return ms + [CUSTOM, Method(kl_fg=1.0)]


def test_vmap_over_stacked_methods_equals_loop():
    ms = _zoo()
    stacked = stack_methods(ms)
    vm = jax.vmap(method_loss, in_axes=(0, None))(stacked, INPUTS)
    loop = np.array([float(method_loss(m, INPUTS)) for m in ms])
    assert vm.shape == (len(ms),)
    np.testing.assert_allclose(vm, loop, rtol=1e-13)
    np.testing.assert_allclose(loop, [expected_loss(m, INPUTS) for m in ms], rtol=1e-13)
    # and compiled
    vmj = jax.jit(jax.vmap(method_loss, in_axes=(0, None)))(stacked, INPUTS)
    np.testing.assert_allclose(vmj, loop, rtol=1e-13)


def test_jit_equals_eager():
    f = jax.jit(method_loss)
    for m in _zoo():
        np.testing.assert_allclose(f(m, INPUTS), method_loss(m, INPUTS), rtol=1e-13)


@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_grad_wrt_forget_logp_is_finite_and_right(scale):
    def loss(m, f):
        return method_loss(m, dataclasses.replace(INPUTS, forget_logp=f))

    f0 = INPUTS.forget_logp * scale
    for m in _zoo():
        g = jax.grad(loss, argnums=1)(m, f0)
        assert bool(jnp.all(jnp.isfinite(g))), m
    n = 3
    # GA: d/df mean(f) = 1/n; NPO: W/n with W = 2 sigma(beta r).
    np.testing.assert_allclose(jax.grad(loss, argnums=1)(METHODS["GA"], f0), np.full(n, 1 / n), rtol=1e-14)
    r = np.asarray(f0 - INPUTS.forget_ref_logp)
    w = 2.0 * np.exp(-np.logaddexp(0.0, -r))  # 2 sigma(r), overflow-free
    np.testing.assert_allclose(jax.grad(loss, argnums=1)(METHODS["NPO"], f0), w / n, rtol=1e-12, atol=1e-300)


def test_grad_does_not_flow_through_kto_reference_point():
    # forget_kl only enters KTO through z_ref (stop_gradient): d KTO / d forget_kl = 0,
    # while K_FG's gradient is -kl_fg / n.
    def loss(m, kl):
        return method_loss(m, dataclasses.replace(INPUTS, forget_kl=kl))

    np.testing.assert_array_equal(jax.grad(loss, argnums=1)(METHODS["KTO"], INPUTS.forget_kl), np.zeros(3))
    np.testing.assert_allclose(
        jax.grad(loss, argnums=1)(Method(kto=1.0, kl_fg=0.6), INPUTS.forget_kl), np.full(3, -0.2), rtol=1e-14
    )


def test_methods_are_pytrees_with_eleven_leaves():
    m = Method(*[float(i) for i in range(1, 12)])
    leaves, treedef = jax.tree.flatten(m)
    assert len(leaves) == 11
    assert sorted(leaves) == [float(i) for i in range(1, 12)]
    assert jax.tree.unflatten(treedef, leaves) == m
    assert len(jax.tree.leaves(METHODS["NPO+RT"])) == 11
    doubled = jax.tree.map(lambda x: 2 * x, m)
    assert doubled.beta == 2 * m.beta and doubled.kl_fg == 2 * m.kl_fg


def test_stack_methods_shapes_and_values():
    ms = [METHODS["GA"], get_method("NPO+RT", beta=0.5), get_method("SimNPO", gamma=0.2)]
    s = stack_methods(ms)
    assert isinstance(s, Method)
    leaves = jax.tree.leaves(s)
    assert len(leaves) == 11 and all(leaf.shape == (3,) for leaf in leaves)
    np.testing.assert_array_equal(s.ga, [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(s.npo, [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(s.rt, [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(s.beta, [Method().beta, 0.5, Method().beta])
    np.testing.assert_array_equal(s.gamma, [0.0, 0.0, 0.2])


def test_stack_methods_rejects_empty_and_invalid():
    with pytest.raises(ValueError):
        stack_methods([])
    with pytest.raises(ValueError, match="beta"):
        stack_methods([METHODS["NPO"], Method(npo=1.0, beta=0.0)])


def test_missing_input_poisons_traced_loss_instead_of_vanishing():
    """Under jit/vmap the weights are traced: a weighted term without inputs must show as NaN."""
    inp = LossInputs(jnp.array([-1.0, -2.0]), jnp.array([-1.5, -1.0]))
    assert np.isnan(jax.jit(method_loss)(get_method("DPO"), inp))
    losses = jax.vmap(method_loss, in_axes=(0, None))(stack_methods([get_method("DPO+RT"), get_method("NPO")]), inp)
    assert np.isnan(losses[0])
    np.testing.assert_allclose(losses[1], np.mean(2 * np.log1p(np.exp([0.5, -1.0]))), rtol=1e-12)


def test_zero_weight_component_ignores_infinite_values():
    """A forget log-prob of -inf makes GA's term -inf; NPO, which weights GA by 0, stays finite."""
    inp = LossInputs(jnp.array([-jnp.inf, -2.0]), jnp.array([-1.5, -1.0]))
    expected = np.mean([0.0, 2 * np.log1p(np.exp(-1.0))])
    np.testing.assert_allclose(method_loss(get_method("NPO"), inp), expected, rtol=1e-12)
    assert np.isneginf(method_loss(get_method("GA"), inp))
