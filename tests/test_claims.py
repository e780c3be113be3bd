"""How claims are decided: intervals over seeds, the three verdicts, diverged-run accounting,
the claim record and its kinds; on made-up numbers and curves whose answer is known."""

import json

import numpy as np
import pytest

from synthetic.analysis import (
    diverged_runs,
    diverged_text,
    frontier_gap,
    frontier_gap_batched,
    seed_interval,
    seed_mean,
)
from synthetic.worlds.section4 import claims as section4_claims
from synthetic.worlds.section4 import config as section4
from theory.claims import Check, Claim, Interval, combine


# --------------------------------------------------------------------------- the interval


def test_seed_interval_brackets_the_mean_and_narrows_with_more_seeds():
    rng = np.random.default_rng(0)
    few = rng.normal(1.0, 0.5, size=5)
    many = rng.normal(1.0, 0.5, size=80)
    iv_few = seed_interval(np.mean, few)
    iv_many = seed_interval(np.mean, many)
    assert iv_few.estimate == pytest.approx(few.mean()) and iv_few.seeds == 5
    assert iv_few.low < few.mean() < iv_few.high
    assert iv_few.low >= few.min() and iv_few.high <= few.max()  # a resampled mean stays in the range
    # The bootstrap standard error of a mean is std / sqrt(n) (std with ddof=0): the 95% width
    # is about 2 x 1.96 of it.
    for x, iv in ((few, iv_few), (many, iv_many)):
        assert (iv.high - iv.low) / (2 * 1.96 * x.std() / np.sqrt(x.size)) == pytest.approx(1.0, abs=0.12)
    assert iv_many.low < 1.0 < iv_many.high


def test_seed_interval_is_reproducible_and_resamples_runs_together():
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert seed_interval(np.mean, a) == seed_interval(np.mean, a)
    # Paired: b - a is the same 0.1 on every seed, so the difference has no spread at all.
    b = a + 0.1
    iv = seed_interval(lambda x, y: float(y - x), a, b)
    assert iv.low == pytest.approx(0.1) and iv.high == pytest.approx(0.1)
    with pytest.raises(ValueError, match="number of seeds"):
        seed_interval(lambda x, y: 0.0, a, b[:4])
    with pytest.raises(ValueError, match="level"):
        seed_interval(np.mean, a, level=95)


def test_the_batched_statistics_equal_the_plain_ones():
    rng = np.random.default_rng(5)
    runs = rng.normal(1.0, 0.3, size=(6, 3, 40))
    runs[2, 1, 30:] = np.nan  # one diverged run
    plain = seed_interval(lambda m: float(np.nansum(m[1] - m[0])), runs)
    batched = seed_interval(lambda m: np.nansum(m[:, 1] - m[:, 0], axis=-1), runs, batched=True)
    assert batched == plain
    # The vectorised frontier gap is frontier_gap row by row (non-finite points dropped).
    rows = [np.abs(rng.normal(size=(4, 30))) * rng.uniform(0.01, 1, size=(4, 1)) for _ in range(4)]
    rows[0][1, 7] = np.nan
    want = [frontier_gap(*(r[i] for r in rows)) for i in range(4)]
    np.testing.assert_allclose(frontier_gap_batched(*rows), want, rtol=1e-10)


def test_a_diverged_seed_is_never_dropped():
    runs = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, np.nan], [1.0, 2.0, 3.0]])
    assert np.isnan(seed_mean(runs)[2])
    # An undefined estimate and undefined resamples: no interval, so no verdict either way.
    iv = seed_interval(lambda m: m[-1], runs)
    assert np.isnan(iv.estimate) and np.isnan(iv.low)
    assert Check("last", iv, 1.0, "above").verdict == "inconclusive"
    assert diverged_runs([[-1, 130], [245, -1]]) == 2
    assert diverged_text([-1, 130, 245], "GA") == "GA: 2 of 3 runs diverged (steps 130, 245)"
    assert diverged_text([-1, -1], "GA") == ""


# --------------------------------------------------------------------------- the verdicts


@pytest.mark.parametrize(
    "low, high, better, threshold, verdict",
    [
        (0.1, 0.3, "above", 0.0, "pass"),
        (-0.3, -0.1, "above", 0.0, "fail"),
        (-0.1, 0.3, "above", 0.0, "inconclusive"),
        (0.001, 0.004, "below", 0.005, "pass"),
        (0.006, 0.04, "below", 0.005, "fail"),
        (0.001, 0.04, "below", 0.005, "inconclusive"),
        (-0.05, 0.05, "inside", (-0.1, 0.1), "pass"),
        (0.12, 0.2, "inside", (-0.1, 0.1), "fail"),
        (0.05, 0.2, "inside", (-0.1, 0.1), "inconclusive"),
    ],
)
def test_check_verdicts(low, high, better, threshold, verdict):
    check = Check("q", Interval((low + high) / 2, low, high, seeds=5), threshold, better)
    assert check.verdict == verdict
    assert check.to_json()["verdict"] == verdict and check.to_json()["seeds"] == 5
    assert check.text().endswith(f": {verdict})")


def test_combine_and_the_claim_record():
    assert combine("pass", True) == "pass"
    assert combine("pass", "inconclusive") == "inconclusive"
    assert combine("inconclusive", False) == "fail"
    c = Claim.decided(id="x.y", paper_ref="eq. 1", statement="s", measured="m", kind="paper",
                      checks=[Check("gap", Interval(0.1, -0.1, 0.3), 0.0)], also=[True])
    assert c.verdict == "inconclusive" and c.passed is False
    record = json.loads(json.dumps(c.to_json()))
    assert record["kind"] == "paper" and record["verdict"] == "inconclusive" and record["passed"] is False
    assert record["interval"]["gap"]["low"] == -0.1 and record["interval"]["gap"]["threshold"] == 0.0
    assert Claim.from_json(record) == c
    assert Claim("a", "", "", "", True).verdict == "pass"
    with pytest.raises(ValueError, match="kind"):
        Claim("a", "", "", "", True, kind="theorem")
    with pytest.raises(ValueError, match="verdict"):
        Claim("a", "", "", "", "maybe")
    with pytest.raises(ValueError, match="tuple"):
        Check("q", Interval(0, 0, 0), 0.1, "inside")


# --------------------------------------------------------------------------- claims on made-up curves


def _fig4_arrays(fd, rd, steps, diverged=None):
    """Arrays of both alphas from per-seed curves ``(S, 6, E)`` of the six table-1 methods."""
    fd, rd = np.asarray(fd, float), np.asarray(rd, float)
    a = {
        "steps": np.asarray(steps),
        "forget_distance": fd,
        "retain_distance": rd,
        "forget_kl": np.ones_like(fd),
        "diverged_step": np.full(fd.shape[:2], -1) if diverged is None else np.asarray(diverged),
        "setting_method": np.array(section4.FIG4_METHODS),
        "setting_beta": np.ones(6),
        "setting_learning_rate": np.ones(6),
    }
    return {"alpha1": a, "alpha0": dict(a)}  # run_fig4's nesting: one group per alpha


def test_a_tie_between_frontiers_is_inconclusive_and_a_clear_gap_passes():
    steps = np.arange(0, 101, 25)
    rng = np.random.default_rng(3)
    f = np.array([1.0, 0.5, 0.2, 0.1, 0.05])
    S = 6
    fd = np.broadcast_to(f, (S, 6, 5)).copy()
    # Retain distances: NPO+RT clearly best; NPO and GA equal up to seed noise of either sign.
    base = {"GA": 0.10, "GA+RT": 0.08, "IDK+RT": 0.09, "NPO": 0.10, "NPO+RT": 0.02, "DPO+RT": 0.05}
    rd = np.stack([np.stack([np.full(5, base[m]) + rng.normal(0, 0.01, 5) for m in section4.FIG4_METHODS])
                   for _ in range(S)])
    claims = {c.id: c for c in section4_claims.fig4_claims({}, _fig4_arrays(fd, rd, steps))}
    c = claims["fig4.c_pareto"]
    assert c.interval["gap NPO+RT vs GA"]["verdict"] == "pass"
    assert c.interval["gap NPO vs GA"]["verdict"] == "inconclusive"
    assert c.interval["gap NPO vs GA"]["low"] < 0 < c.interval["gap NPO vs GA"]["high"]
    assert c.verdict == "inconclusive" and not c.passed
    # The same noise around a real gap of 0.03 in NPO's favour: every gap passes.
    rd[:, 0] += 0.03
    c = {c.id: c for c in section4_claims.fig4_claims({}, _fig4_arrays(fd, rd, steps))}["fig4.c_pareto"]
    assert c.verdict == "pass", c.measured


def test_a_diverged_seed_is_counted_in_the_claims():
    steps = np.arange(0, 2001, 500)
    growing = [0.02, 0.05, 0.1, 0.2, 0.4]
    flat = [0.02, 0.03, 0.035, 0.036, 0.037]
    fd1 = [[1, 0.5, 0.1, 0.004, 0.003]] * 6
    rd1 = [growing, growing, flat, flat, flat, flat]
    fd = np.array([fd1] * 3, float)
    rd = np.array([rd1] * 3, float)
    diverged = np.full((3, 6), -1)
    fd[1, 0, 3:] = rd[1, 0, 3:] = np.nan  # GA, seed 1: non-finite from step 1500
    diverged[1, 0] = 1500
    claims = {c.id: c for c in section4_claims.fig4_claims({}, _fig4_arrays(fd, rd, steps, diverged))}
    b = claims["fig4.b_ga_collapse"]
    assert "GA: 1 of 3 runs diverged (step 1500)" in b.measured
    # GA's seed mean is undefined after the divergence, so its growth cannot be decided.
    assert b.interval["GA growth"]["verdict"] == "inconclusive" and b.verdict == "inconclusive"
    assert claims["fig4.c_pareto"].values["diverged_runs"]["GA"] == 1
    assert "diverged" not in claims["fig4.b_npo_stable"].measured  # NPO+RT and DPO+RT did not
    assert claims["fig4.b_npo_stable"].verdict == "pass"


# --------------------------------------------------------------------------- the divergence laws, on known curves


def _long(ga, npo, betas=(0.5, 2.0)):
    """Long runs shaped like synthetic.laws.divergence_runs' from curves of t (GA's, then one per beta)."""
    t = np.unique(np.geomspace(1, 10**4, 30).astype(int))
    steps = np.concatenate([[0], t])
    curves = [ga(steps)] + [npo(steps, b) for b in betas]
    return {"steps": steps, "labels": np.array(["GA"] + [f"NPO beta={b:g}" for b in betas]),
            "betas": np.array([np.nan, *betas]), "diverged_step": np.full(1 + len(betas), -1),
            "param_distance": np.array(curves), "forget_nll_seq": 3.0 + 19.0 * np.array(curves)}


def _log_t(steps, b):
    return np.log(np.maximum(steps, 1)) / b


def test_divergence_laws_claim_fits_the_long_runs_it_is_given():
    from synthetic.analysis import divergence_laws_claim, law_fits

    long, t_min = _long(lambda s: 0.1 * s, _log_t), 100.0
    c = divergence_laws_claim(long, t_min, "w.ga_linear_npo_log", "w's reference", "one run each.")
    assert c.id == "w.ga_linear_npo_log" and c.kind == "extension" and c.passed
    assert "[100, 10000]" in c.statement and c.statement.endswith("one run each.")
    # the fits it decided on are law_fits' on t >= t_min, and only those points
    for q in ("param_distance", "forget_nll_seq"):
        fits = law_fits(long, q, t_min)
        assert fits[0]["n"] == int(np.sum(long["steps"] >= t_min))
        for j, label in enumerate(long["labels"]):
            np.testing.assert_allclose(c.values[f"{label}/{q}"]["power"], fits[j]["power"], rtol=1e-12)
    assert c.values["ga_exponents"]["||theta-theta_ref||"] == pytest.approx(1.0, rel=1e-9)
    assert c.values["NPO beta=2/forget_nll_seq"]["log"][1] == pytest.approx(19.0 / 2.0, rel=1e-9)  # slope 19/beta
    assert "GA grows about linearly" in c.note


def test_divergence_laws_claim_fails_when_either_law_is_the_other():
    from synthetic.analysis import divergence_laws_claim

    # GA levelling off like log t: exponent far below 0.9
    c = divergence_laws_claim(_long(lambda s: _log_t(s, 1.0), _log_t), 100.0, "w.x", "ref")
    assert not c.passed and c.values["ga_exponents"]["||theta-theta_ref||"] < 0.5
    assert all(c.values[f"NPO beta={b}/param_distance"]["ok"] for b in ("0.5", "2"))
    # NPO growing linearly: a + b t fits better, the NPO rows fail while GA's pass
    c = divergence_laws_claim(_long(lambda s: 0.1 * s, lambda s, b: 0.01 * s / b), 100.0, "w.x", "ref")
    assert not c.passed and c.values["GA/param_distance"]["ok"]
    assert not c.values["NPO beta=0.5/param_distance"]["ok"] and "-> linear" in c.measured
