"""Tests of theory/symbolic.py: every derivation holds, and the checks can fail when they should."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

from theory import objectives as obj
from theory import symbolic
from theory.claims import Claim, max_rel_error

EXPECTED_IDS = [
    "npo.two_forms",
    "prop1.loss_limit",
    "prop1.grad_limit",
    "npo.grad_weight",
    "npo.bounded_below",
    "npo.is_dpo_without_positive",
    "kto.zero_ref_is_npo",
    "logistic.grad",
    "lemma4.ode",
    "thm2.exp_slowdown",
]

# Checks that compare one exact identity computed two ways in float64: their observed error
# is rounding (~1e-15), far inside the stated 1e-10.
EXACT_IDENTITY_IDS = {
    "npo.two_forms",
    "npo.grad_weight",
    "npo.is_dpo_without_positive",
    "kto.zero_ref_is_npo",
    "logistic.grad",
}


@pytest.fixture(scope="module")
def one_command(tmp_path_factory):
    """``paper_repro.py --only symbolic`` (its ``main``, float64 off as in a user's process), once."""
    import contextlib
    import io

    import paper_repro

    out, printed = tmp_path_factory.mktemp("symbolic"), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        status = paper_repro.main(["--only", "symbolic", "--out", str(out)])
    return status, printed.getvalue(), out


@pytest.fixture(scope="module")
def claims(one_command):
    """The ten claims, as the one command wrote them to claims.json."""
    status, _, out = one_command
    assert status == 0
    return [Claim.from_json(c) for c in json.loads((out / "claims.json").read_text())]


def test_the_one_command_writes_the_report(one_command):
    status, printed, out = one_command
    assert "Identities: 10 of 10 pass" in printed
    assert (out / "report.md").read_text().count("| pass |") == 10


# --------------------------------------------------------------------------- the checks pass


def test_run_all_returns_the_ten_ids_in_order(claims):
    assert [c.id for c in claims] == EXPECTED_IDS
    assert [check.claim_id for check in symbolic.CHECKS] == EXPECTED_IDS
    assert all(isinstance(c, Claim) for c in claims)


def test_every_check_passes(claims):
    failed = {c.id: c.measured for c in claims if not c.passed}
    assert not failed


def test_every_claim_is_decided_symbolically_and_numerically(claims):
    for c in claims:
        assert c.values["symbolic_ok"] is True and c.values["numeric_ok"] is True, c.id
        assert len(c.values["symbolic"]) >= 1 and len(c.values["numeric"]) >= 1, c.id
        assert c.measured.startswith("symbolic: ") and " | numeric: " in c.measured, c.id


def test_numeric_errors_are_within_their_stated_tolerances(claims):
    for c in claims:
        for name, entry in c.values["numeric"].items():
            if "error" in entry:
                assert 0.0 <= entry["error"] <= entry["tol"], (c.id, name, entry)
            assert entry["holds"] is True, (c.id, name)


def test_exact_identities_agree_to_rounding(claims):
    for c in claims:
        if c.id in EXACT_IDENTITY_IDS:
            errors = [e["error"] for e in c.values["numeric"].values() if "error" in e]
            assert errors and max(errors) < 1e-13, (c.id, errors)


def test_prop1_error_is_the_predicted_order_beta_r2(claims):
    (c,) = [c for c in claims if c.id == "prop1.loss_limit"]
    limit = c.values["numeric"]["npo - 2log2/beta -> ga - ref"]
    series = c.values["numeric"]["npo - 2log2/beta vs series at beta=0.0001"]
    # With |r| <= 5 the gap to GA is ~beta max r^2/4, not rounding, and linear in beta ...
    for beta in (1e-2, 1e-3, 1e-4):
        assert 0.9 * beta * 25 / 4 < limit[f"gap_at_beta_{beta:g}"] <= beta * 25 / 4 + 1e-9
    assert limit["gap_at_beta_0.001"] / limit["gap_at_beta_0.0001"] == pytest.approx(10, rel=1e-3)
    # ... and the two-term series removes it down to rounding.
    assert series["error"] < 1e-10


def test_thm2_reports_exponential_ratios(claims):
    (c,) = [c for c in claims if c.id == "thm2.exp_slowdown"]
    ratios = c.values["numeric"]["ratio grows"]
    assert ratios["ratio_at_beta_D_6"] == pytest.approx((math.exp(6) - 1) / 6, rel=1e-12)
    assert ratios["ratio_at_beta_D_6"] > 10 * ratios["ratio_at_beta_D_3"]


def test_grad_weight_states_the_sign(claims):
    (c,) = [c for c in claims if c.id == "npo.grad_weight"]
    assert "grad L_NPO = +W grad log pi" in c.note  # an explanation, kept out of the numbers


def test_every_symbolic_claim_is_an_identity(claims):
    assert {c.kind for c in claims} == {"identity"} and all(not c.interval for c in claims)


def test_claims_are_json_serialisable(claims):
    text = json.dumps([c.to_json() for c in claims])
    assert json.loads(text)[0]["id"] == "npo.two_forms"


def test_checks_use_float64_even_when_x64_is_off():
    # The 1e-10 tolerances need float64; the checks enable it in a scope of their own.
    with jax.enable_x64(False):
        claim = symbolic.check_npo_two_forms()
    assert claim.passed, claim.measured


# --------------------------------------------------------------------------- the checks can fail


def test_symbolic_equal_accepts_eq3_and_rejects_a_wrong_factor():
    r, beta = symbolic.R, symbolic.BETA
    assert symbolic.symbolic_equal(symbolic.npo_logsigmoid_form(r), symbolic.npo_softplus_form(r))
    wrong = (1 / beta) * sp.log(1 + sp.exp(beta * r))  # the 1/beta of the paper's eq. 2
    assert not symbolic.symbolic_equal(symbolic.npo_logsigmoid_form(r), wrong)


def test_symbolic_equal_rejects_the_printed_minus_sign_of_eq_4_5():
    r, beta = symbolic.R, symbolic.BETA
    grad = sp.diff(symbolic.npo_softplus_form(r), r)
    assert symbolic.symbolic_equal(grad, 2 * symbolic.sym_sigmoid(beta * r))
    assert not symbolic.symbolic_equal(grad, -2 * symbolic.sym_sigmoid(beta * r))


def test_symbolic_residual_is_the_simplified_difference():
    r = symbolic.R
    assert symbolic.symbolic_residual(r + sp.log(sp.exp(r)) + 1, 2 * r) == 1


def test_max_rel_error_is_relative_above_the_floor_and_absolute_below():
    assert max_rel_error([200.0], [100.0]) == pytest.approx(1.0)
    assert max_rel_error([1e-3], [0.0]) == pytest.approx(1e-3)
    assert max_rel_error([1.0 + 1e-8], [1.0]) > symbolic.IDENTITY_TOL
    assert math.isnan(max_rel_error([np.nan, 1.0], [1.0, 1.0]))
    with pytest.raises(ValueError, match="shapes differ"):
        max_rel_error(np.zeros(3), np.zeros((3, 1)))


def test_a_wrong_npo_loss_fails_the_numeric_side(monkeypatch):
    def npo_loss_with_1_over_beta(logp, ref_logp, *, beta):
        return (1.0 / beta) * jax.nn.softplus(beta * (logp - ref_logp))

    monkeypatch.setattr(obj, "npo_loss", npo_loss_with_1_over_beta)
    claim = symbolic.check_npo_two_forms()
    assert not claim.passed
    assert claim.values["symbolic_ok"] is True and claim.values["numeric_ok"] is False


def test_a_weight_with_the_printed_minus_sign_fails(monkeypatch):
    def minus_weight(logp, ref_logp, *, beta):
        return -2.0 * jax.nn.sigmoid(beta * (logp - ref_logp))

    monkeypatch.setattr(obj, "npo_weight", minus_weight)
    claim = symbolic.check_npo_grad_weight()
    assert not claim.passed and claim.values["numeric_ok"] is False


def test_a_kto_that_ignores_z_ref_fails(monkeypatch):
    def kto_without_ref(logp, ref_logp, *, beta, z_ref):
        return -(2.0 / beta) * jax.nn.log_sigmoid(-beta * (logp - ref_logp))

    monkeypatch.setattr(obj, "kto_loss", kto_without_ref)
    claim = symbolic.check_kto_zero_ref_is_npo()
    assert not claim.passed
    assert claim.values["numeric"]["kto_loss(z_ref=0) vs npo_loss"]["holds"] is True
    assert claim.values["numeric"]["kto_loss vs lambdified eq. 18"]["holds"] is False


def test_run_all_turns_an_exception_into_a_failed_claim(monkeypatch):
    def broken(*args, **kwargs):
        raise FloatingPointError("boom")

    monkeypatch.setattr(obj, "npo_loss", broken)
    (claim,) = symbolic.run_all([symbolic.check_npo_two_forms])
    assert claim.id == "npo.two_forms" and claim.paper_ref == "eq. 3"
    assert claim.passed is False
    assert "FloatingPointError: boom" in claim.measured


def test_run_all_names_an_undecorated_failing_check():
    def check_something():
        return 1 / 0

    (claim,) = symbolic.run_all([check_something])
    assert claim.id == "check_something" and not claim.passed
    assert "ZeroDivisionError" in claim.measured


# --------------------------------------------------------------------------- the ODE integrator


def test_first_passage_follows_lemma4_closed_form():
    beta, c, eta0 = 1.0, 1.0, 0.1
    path = symbolic.first_passage(symbolic.lemma4_rate(beta, c, eta0), 4.0)
    closed = -np.log(beta * c * eta0 * path.t + 1) / beta
    assert np.max(np.abs(path.b - closed)) < 1e-10
    assert path.t[0] == 0.0 and path.b[0] == 0.0 and np.all(np.diff(path.t) > 0)
    # a loose tolerance is visibly less accurate: the comparison can fail
    loose = symbolic.first_passage(symbolic.lemma4_rate(beta, c, eta0), 4.0, rtol=1e-3)
    assert np.max(np.abs(loose.b - (-np.log(beta * c * eta0 * loose.t + 1) / beta))) > 1e-8


def test_first_passage_time_of_a_constant_rate_is_exact():
    path = symbolic.first_passage(lambda b: -2.0, 3.0)
    assert path.hit_time == pytest.approx(1.5, rel=1e-13)
    assert np.all(np.abs(path.b) <= 3.0 + 1e-12)


def test_first_passage_gives_up_after_t_max():
    with pytest.raises(RuntimeError, match="did not reach"):
        symbolic.first_passage(lambda b: -1.0, 1.0, t_max=0.5)


def test_lemma4_first_passage_matches_theorem_2_time():
    beta, c, eta0, d = 2.0, 0.5, 0.2, 2.0
    path = symbolic.first_passage(symbolic.lemma4_rate(beta, c, eta0), d)
    expected = (math.exp(beta * d) - 1) / (beta * c * eta0)
    assert path.hit_time == pytest.approx(expected, rel=1e-9)
    # NPO needs far longer than GA's D / (C eta0) = 20 units of time.
    assert path.hit_time > 10 * d / (c * eta0)


def test_logistic_log_prob_matches_the_bernoulli_likelihood():
    theta = jnp.array([0.3, -1.2, 0.5])
    x = jnp.array([1.0, 0.4, -2.0])
    p1 = 1 / (1 + math.exp(-float(jnp.dot(x, theta))))
    log_prob = symbolic._logistic_log_prob
    assert float(log_prob(theta, x, jnp.array(1.0))) == pytest.approx(math.log(p1))
    assert float(log_prob(theta, x, jnp.array(0.0))) == pytest.approx(math.log(1 - p1))
