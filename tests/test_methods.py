"""Methods as data: the paper's named methods as weights of eq. 17, one loss for all of them.

Expected losses are assembled in numpy from the paper's formulas (``logaddexp`` for the
softplus), independently of theory/objectives.py and theory/components.py.
"""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theory import components
from theory.methods import METHODS, Method, get_method, method_loss, method_names, method_terms, stack_methods

pytestmark = pytest.mark.usefixtures("x64")

COMPONENTS = ("ga", "npo", "dpo", "kto", "simnpo", "idk", "rt", "kl_rt", "kl_fg")

# The paper's section 2: each named method is its objective(s) with weight 1.
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
    return np.array(xs, dtype=np.float64)


INPUTS = {
    "forget_logp": a64(-2.0, -0.5, -4.0),
    "forget_ref_logp": a64(-1.0, -1.5, -3.0),
    "idk_logp": a64(-0.7, -3.0, -1.2),
    "idk_ref_logp": a64(-1.1, -2.0, -1.3),
    "forget_length": a64(2.0, 1.0, 5.0),
    "forget_kl": a64(0.2, 0.05, 0.4),
    "retain_logp": a64(-0.3, -1.0, -0.1, -2.2),
    "retain_kl": a64(0.01, 0.03, 0.0, 0.1),
}

# Every weight non-zero and distinct, so a wrong pairing of weight and term shows.
CUSTOM = Method.of(ga=0.5, npo=1.5, dpo=0.25, kto=2.0, simnpo=0.75, idk=0.3, rt=1.1, kl_rt=0.4, kl_fg=0.6,
                   beta=0.8, gamma=0.2)


def _sp(x):
    return np.logaddexp(0.0, x)  # softplus(x) = log(1 + e^x) = -log sigma(-x)


def expected_terms(inputs: dict, beta: float, gamma: float) -> dict:
    """Each component's batch mean as it enters eq. 17 (K_FG with its minus sign), in numpy."""
    f, fr = inputs["forget_logp"], inputs["forget_ref_logp"]
    r = f - fr
    r_w = inputs["idk_logp"] - inputs["idk_ref_logp"]
    z = beta * max(np.mean(inputs["forget_kl"]), 0.0)
    return {
        "ga": np.mean(f),
        "npo": np.mean((2 / beta) * _sp(beta * r)),
        "simnpo": np.mean((2 / beta) * _sp((beta / inputs["forget_length"]) * f + gamma)),
        "idk": -np.mean(inputs["idk_logp"]),
        "dpo": np.mean((2 / beta) * _sp(-beta * (r_w - r))),
        "kto": np.mean((2 / beta) * _sp(-(z - beta * r))),
        "kl_fg": -np.mean(inputs["forget_kl"]),
        "rt": -np.mean(inputs["retain_logp"]),
        "kl_rt": np.mean(inputs["retain_kl"]),
    }


def expected_loss(m: Method, inputs: dict) -> float:
    t = expected_terms(inputs, float(m.beta), float(m.gamma))
    return sum(float(w) * t[c] for c, w in m.weights.items())


# =========================================================================== registry


def test_registered_names_are_the_fourteen_in_paper_order():
    assert method_names()[:14] == list(EXPECTED_WEIGHTS)
    assert list(METHODS)[:14] == list(EXPECTED_WEIGHTS)


@pytest.mark.parametrize("name", list(EXPECTED_WEIGHTS))
def test_registered_weights_and_hyperparameters(name):
    m = METHODS[name]
    assert m.weights == {c: float(w) for c, w in EXPECTED_WEIGHTS[name].items()}
    reads_beta = any(c in ("npo", "dpo", "kto", "simnpo") for c in m.weights)
    assert m.uses("beta") == reads_beta
    assert ("beta" in m.hyper) == reads_beta and m.beta == 1.0
    assert m.uses("gamma") == ("simnpo" in m.weights)


@pytest.mark.parametrize("name", list(EXPECTED_WEIGHTS))
def test_methods_know_what_they_need(name):
    m = METHODS[name]
    retain = "rt" in m.weights or "kl_rt" in m.weights
    assert m.uses_retain == retain
    assert m.sources == ({"forget", "retain"} if retain else {"forget"})
    assert ("forget_ref_logp" in m.needs) == any(c in ("npo", "dpo", "kto") for c in m.weights)
    assert ("forget_length" in m.needs) == ("simnpo" in m.weights)


def test_the_components_of_eq_17_are_registered_with_their_inputs():
    assert list(components.COMPONENTS)[:9] == ["ga", "npo", "dpo", "kto", "simnpo", "idk", "rt", "kl_rt", "kl_fg"]
    assert components.COMPONENTS["dpo"].needs == ("idk_logp", "idk_ref_logp", "forget_logp", "forget_ref_logp")
    assert components.COMPONENTS["kl_rt"].needs == ("retain_kl",)
    assert components.INPUTS["retain_kl"].source == "retain" and components.INPUTS["idk_logp"].source == "forget"


# =========================================================================== method_loss values


def test_expected_terms_sanity_by_hand():
    # Guard the numpy reference itself: NPO at r = -1, beta = 1; SimNPO with |y| = 1.
    one = {**{k: v[:1] for k, v in INPUTS.items()}, "forget_length": a64(1.0)}
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
    want = (0.5 * t["ga"] + 1.5 * t["npo"] + 0.25 * t["dpo"] + 2.0 * t["kto"] + 0.75 * t["simnpo"]
            + 0.3 * t["idk"] + 1.1 * t["rt"] + 0.4 * t["kl_rt"] + 0.6 * t["kl_fg"])
    np.testing.assert_allclose(method_loss(CUSTOM, INPUTS), want, rtol=1e-13)


def test_method_terms_are_each_components_loss():
    terms = method_terms(CUSTOM, INPUTS)
    want = expected_terms(INPUTS, 0.8, 0.2)
    assert set(terms) == set(COMPONENTS)
    for k in COMPONENTS:
        np.testing.assert_allclose(terms[k], want[k], rtol=1e-13, err_msg=k)


def test_hand_numbers_for_simple_methods():
    np.testing.assert_allclose(method_loss(METHODS["GA+RT"], INPUTS), (-6.5) / 3 + (0.3 + 1.0 + 0.1 + 2.2) / 4, rtol=1e-14)
    np.testing.assert_allclose(method_loss(METHODS["GA+KL"], INPUTS), (-6.5) / 3 + 0.14 / 4, rtol=1e-14)
    np.testing.assert_allclose(method_loss(METHODS["IDK+RT"], INPUTS), (0.7 + 3.0 + 1.2) / 3 + 3.6 / 4, rtol=1e-14)


def test_the_paper_codes_token_and_position_means_by_hand():
    # GA, IDK and the retain loss as token means over the batch; the retain KL over its positions
    x = {"forget_logp": jnp.array([-2.0, -6.0]), "forget_length": jnp.array([1.0, 3.0]),
         "idk_logp": jnp.array([-1.0, -5.0]), "idk_length": jnp.array([2.0, 2.0]),
         "retain_logp": jnp.array([-3.0, -1.0, -2.0]), "retain_length": jnp.array([3.0, 1.0, 2.0]),
         "retain_kl_positions": jnp.array([0.3, 0.6, 0.9]), "retain_positions": jnp.array([5.0, 5.0, 5.0])}
    np.testing.assert_allclose(method_loss(Method.of(ga_tokens=1.0), x), -8.0 / 4, rtol=1e-6)
    np.testing.assert_allclose(method_loss(Method.of(idk_tokens=1.0), x), 6.0 / 4, rtol=1e-6)
    np.testing.assert_allclose(method_loss(Method.of(rt_tokens=1.0), x), 6.0 / 6, rtol=1e-6)
    np.testing.assert_allclose(method_loss(Method.of(kl_rt_positions=1.0), x), 1.8 / 15, rtol=1e-6)
    # a per-sequence mean weighs a short answer's tokens more than a token mean does
    assert float(method_loss(Method.of(ga=1.0), x)) == pytest.approx(-4.0)


def test_forget_kl_enters_with_minus_sign():
    np.testing.assert_allclose(method_loss(Method.of(kl_fg=1.0), INPUTS), -0.65 / 3, rtol=1e-14)
    np.testing.assert_allclose(method_loss(Method.of(ga=1.0, kl_fg=2.0), INPUTS), -6.5 / 3 - 2 * 0.65 / 3, rtol=1e-14)
    np.testing.assert_allclose(method_loss(Method.of(kl_rt=1.0), INPUTS), 0.14 / 4, rtol=1e-14)


def test_simnpo_length_normalises():
    beta = 2.0
    ones = {**INPUTS, "forget_length": np.ones(3)}
    want = np.mean((2 / beta) * np.log1p(np.exp(beta * INPUTS["forget_logp"])))  # gamma = 0, |y| = 1
    np.testing.assert_allclose(method_loss(get_method("SimNPO", beta=beta), ones), want, rtol=1e-14)
    assert abs(float(method_loss(get_method("SimNPO", beta=beta), INPUTS)) - want) > 1e-2


def test_minimal_inputs_suffice_for_forget_only_methods():
    minimal = {k: INPUTS[k] for k in ("forget_logp", "forget_ref_logp", "forget_length")}
    for name in ("GA", "NPO", "SimNPO"):
        m = METHODS[name]
        np.testing.assert_allclose(method_loss(m, minimal), expected_loss(m, INPUTS), rtol=1e-13)


# =========================================================================== errors


@pytest.mark.parametrize(
    "bad, suggestion",
    [("NPO_RT", "NPO+RT"), ("simnpo", "SimNPO"), ("GA+KLL", "GA+KL"), ("npo+kl", "NPO+KL"), ("IDK-RT", "IDK+RT")],
)
def test_get_method_unknown_name_suggests_closest(bad, suggestion):
    with pytest.raises(ValueError, match=re.escape(f"did you mean {suggestion!r}")):
        get_method(bad)


def test_get_method_overrides_and_does_not_mutate_registry():
    m = get_method("NPO+RT", beta=0.5)
    assert m.beta == 0.5 and m.weights == METHODS["NPO+RT"].weights
    assert METHODS["NPO+RT"].beta == 1.0
    assert get_method("NPO") == METHODS["NPO"]
    # a beta given to a method that does not read it is kept but changes nothing
    ga = get_method("GA", beta=3.0)
    assert ga.beta == 3.0 and not ga.uses("beta")
    np.testing.assert_allclose(method_loss(ga, INPUTS), method_loss(METHODS["GA"], INPUTS), rtol=0)


@pytest.mark.parametrize("beta", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_beta_names_it(beta):
    with pytest.raises(ValueError, match="beta"):
        get_method("NPO", beta=beta)


@pytest.mark.parametrize("gamma", [-1.0, float("nan")])
def test_bad_gamma_names_it(gamma):
    with pytest.raises(ValueError, match="gamma"):
        get_method("SimNPO", gamma=gamma)


def test_unknown_terms_and_hyperparameters_are_refused_with_a_hint():
    with pytest.raises(ValueError, match="did you mean 'npo'"):
        Method.of(nop=1.0)
    with pytest.raises(ValueError, match="did you mean 'beta'"):
        get_method("NPO", betta=1.0)
    with pytest.raises(ValueError, match="at least one component"):
        Method.of(beta=2.0)
    with pytest.raises(ValueError, match="ga must be finite"):
        Method.of(ga=float("inf"))


def test_replace_merges_and_validates():
    m = METHODS["NPO"].replace(rt=2.0, beta=3.0)
    assert m.weights == {"npo": 1.0, "rt": 2.0} and m.beta == 3.0
    assert METHODS["NPO+RT"].replace(rt=0.0).weights == {"npo": 1.0}
    with pytest.raises(ValueError, match="beta"):
        METHODS["NPO"].replace(beta=0.0)


def test_a_registered_name_is_accepted_where_a_method_is_expected_and_anything_else_refused():
    np.testing.assert_array_equal(method_loss("NPO", INPUTS), method_loss(get_method("NPO"), INPUTS))
    with pytest.raises(ValueError, match="get_method"):
        method_loss(1.0, INPUTS)
    with pytest.raises(ValueError, match="get_method"):
        stack_methods(["GA", None])


@pytest.mark.parametrize(
    "method, missing",
    [
        (Method.of(dpo=1.0), "idk_ref_logp"),
        (Method.of(dpo=1.0), "idk_logp"),
        (Method.of(idk=1.0), "idk_logp"),
        (Method.of(kto=1.0), "forget_kl"),
        (Method.of(kl_fg=0.5), "forget_kl"),
        (Method.of(simnpo=1.0), "forget_length"),
        (METHODS["NPO+RT"], "retain_logp"),
        (METHODS["GA+KL"], "retain_kl"),
    ],
)
def test_missing_inputs_raise_naming_them(method, missing):
    inputs = {k: v for k, v in INPUTS.items() if k != missing}
    with pytest.raises(ValueError, match=missing):
        method_loss(method, inputs)


def test_missing_inputs_raise_under_jit_and_vmap_too():
    """A traced weight cannot be inspected, so a missing input must fail when the loss is traced
    (never a silent NaN with a zero gradient)."""
    forget_only = {k: INPUTS[k] for k in ("forget_logp", "forget_ref_logp")}
    with pytest.raises(ValueError, match="idk_logp"):
        jax.jit(method_loss)(get_method("DPO"), forget_only)
    stacked = stack_methods([get_method("NPO+RT"), get_method("NPO")])
    with pytest.raises(ValueError, match="retain_logp"):
        jax.vmap(method_loss, in_axes=(0, None))(stacked, forget_only)


def test_inputs_of_components_a_method_lacks_are_not_needed():
    inputs = {k: INPUTS[k] for k in ("forget_logp", "forget_ref_logp")}
    np.testing.assert_allclose(method_loss(METHODS["NPO"], inputs), expected_loss(METHODS["NPO"], INPUTS), rtol=1e-13)


# =========================================================================== transforms


def _zoo():
    betas = [0.1, 0.5, 1.0, 2.0, 7.0]
    ms = [get_method(n, beta=betas[i % 5], gamma=0.1 * (i % 3)) for i, n in enumerate(EXPECTED_WEIGHTS)]
    return ms + [CUSTOM, Method.of(kl_fg=1.0)]


def test_vmap_over_stacked_methods_equals_loop():
    ms = _zoo()
    stacked = stack_methods(ms)
    vm = jax.vmap(method_loss, in_axes=(0, None))(stacked, INPUTS)
    loop = np.array([float(method_loss(m, INPUTS)) for m in ms])
    assert vm.shape == (len(ms),)
    np.testing.assert_allclose(vm, loop, rtol=1e-13)
    np.testing.assert_allclose(loop, [expected_loss(m, INPUTS) for m in ms], rtol=1e-13)
    vmj = jax.jit(jax.vmap(method_loss, in_axes=(0, None)))(stacked, INPUTS)
    np.testing.assert_allclose(vmj, loop, rtol=1e-13)


def test_jit_equals_eager():
    f = jax.jit(method_loss)
    for m in _zoo():
        np.testing.assert_allclose(f(m, INPUTS), method_loss(m, INPUTS), rtol=1e-13)


@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_grad_wrt_forget_logp_is_finite_and_right(scale):
    def loss(m, f):
        return method_loss(m, {**INPUTS, "forget_logp": f})

    f0 = jnp.asarray(INPUTS["forget_logp"] * scale)
    for m in _zoo():
        assert bool(jnp.all(jnp.isfinite(jax.grad(loss, argnums=1)(m, f0)))), m
    n = 3
    # GA: d/df mean(f) = 1/n; NPO: W/n with W = 2 sigma(beta r).
    np.testing.assert_allclose(jax.grad(loss, argnums=1)(METHODS["GA"], f0), np.full(n, 1 / n), rtol=1e-14)
    r = np.asarray(f0) - INPUTS["forget_ref_logp"]
    w = 2.0 * np.exp(-np.logaddexp(0.0, -r))  # 2 sigma(r), overflow-free
    np.testing.assert_allclose(jax.grad(loss, argnums=1)(METHODS["NPO"], f0), w / n, rtol=1e-12, atol=1e-300)


def test_grad_does_not_flow_through_kto_reference_point():
    # forget_kl enters KTO only through z_ref (stop_gradient); K_FG's gradient is -w / n.
    def loss(m, kl):
        return method_loss(m, {**INPUTS, "forget_kl": kl})

    kl = jnp.asarray(INPUTS["forget_kl"])
    np.testing.assert_array_equal(jax.grad(loss, argnums=1)(METHODS["KTO"], kl), np.zeros(3))
    np.testing.assert_allclose(jax.grad(loss, argnums=1)(Method.of(kto=1.0, kl_fg=0.6), kl), np.full(3, -0.2), rtol=1e-14)


def test_methods_are_pytrees_of_their_weights_and_hyperparameters():
    m = get_method("NPO+RT", beta=0.5)
    leaves, treedef = jax.tree.flatten(m)
    assert sorted(leaves) == [0.5, 1.0, 1.0]
    assert jax.tree.unflatten(treedef, leaves) == m
    doubled = jax.tree.map(lambda x: 2 * x, m)
    assert doubled.beta == 1.0 and doubled.weights == {"npo": 2.0, "rt": 2.0}


def test_stack_methods_takes_the_union_with_zeros_and_defaults():
    s = stack_methods([METHODS["GA"], get_method("NPO+RT", beta=0.5), get_method("SimNPO", gamma=0.2)])
    assert isinstance(s, Method)
    assert set(s.weights) == {"ga", "npo", "rt", "simnpo"} and set(s.hyper) == {"beta", "gamma"}
    np.testing.assert_array_equal(s.weights["ga"], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(s.weights["rt"], [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(s.hyper["beta"], [1.0, 0.5, 1.0])
    np.testing.assert_array_equal(s.hyper["gamma"], [0.0, 0.0, 0.2])
    assert s.needs == {"forget_logp", "forget_ref_logp", "forget_length", "retain_logp"} and s.uses_retain


def test_stack_methods_rejects_empty_and_invalid():
    with pytest.raises(ValueError, match="non-empty"):
        stack_methods([])
    with pytest.raises(ValueError, match="beta"):
        stack_methods([METHODS["NPO"], Method(weights={"npo": 1.0}, hyper={"beta": 0.0})])


def test_zero_weight_component_ignores_infinite_values():
    """A forget log-prob of -inf makes GA's term -inf; a stacked NPO row weights GA by 0 and stays finite."""
    inputs = {"forget_logp": a64(-np.inf, -2.0), "forget_ref_logp": a64(-1.5, -1.0)}
    losses = jax.vmap(method_loss, in_axes=(0, None))(stack_methods([get_method("NPO"), get_method("GA")]), inputs)
    np.testing.assert_allclose(losses[0], np.mean([0.0, 2 * np.log1p(np.exp(-1.0))]), rtol=1e-12)
    assert np.isneginf(losses[1])


def test_a_notebook_cell_run_twice_registers_again_with_replace():
    import jax.numpy as jnp
    from theory import Method, get_method, register_component, register_method
    from theory.components import COMPONENTS
    from theory.methods import METHODS

    try:
        for weight in (1.0, 2.0):  # the same cell, run twice, the second time edited
            register_component("twice_ga", lambda x, h: jnp.mean(x["forget_logp"]), needs=("forget_logp",), replace=True)
            register_method("twice-GA", Method.of(twice_ga=weight), replace=True)
        assert get_method("twice-GA").weights == {"twice_ga": 2.0}
        with pytest.raises(ValueError, match="already registered .*replace=True"):
            register_method("twice-GA", Method.of(twice_ga=1.0))
        # the toolkit's own names are never replaced
        with pytest.raises(ValueError, match="'GA' is one of the toolkit's own"):
            register_method("GA", Method.of(twice_ga=1.0), replace=True)
        with pytest.raises(ValueError, match="'npo' is one of the toolkit's own"):
            register_component("npo", lambda x, h: 0.0, needs=("forget_logp",), replace=True)
        with pytest.raises(ValueError, match="replace must be True or False"):
            register_method("other", Method.of(twice_ga=1.0), replace=1)
    finally:
        METHODS.pop("twice-GA", None)
        COMPONENTS.pop("twice_ga", None)


def test_a_hyperparameter_of_one_method_is_one_number():
    import numpy as np

    with pytest.raises(ValueError, match=r"beta must be a single number for one method, got \[1, 2\]"):
        get_method("NPO", beta=[1, 2])
    assert get_method("NPO", beta=np.float32(0.5)).hyper["beta"] == pytest.approx(0.5)  # numpy scalars are numbers


def test_a_component_that_returns_a_vector_is_refused_by_name():
    import jax
    import jax.numpy as jnp

    from theory import Method, register_component
    from theory.components import COMPONENTS

    register_component("per_example", lambda x, h: x["forget_logp"], needs=("forget_logp",), replace=True)
    try:
        loss = lambda lp: method_loss(Method.of(per_example=1.0), {"forget_logp": lp})  # noqa: E731
        with pytest.raises(ValueError, match=r"component 'per_example' must return one number .* shape \(3,\)"):
            jax.grad(loss)(jnp.array([-1.0, -2.0, -3.0]))
    finally:
        COMPONENTS.pop("per_example", None)
