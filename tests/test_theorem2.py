"""Theorem 2 simulated: the two implementations, the forget-set generator, the closed forms
of theory/theorem2.py against the runs, the growth-law helpers and the section-2.1 toy."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synthetic.analysis import decade_growth_ratio, log_slope
from synthetic.models.logistic import logistic_log_probs, take_label
from synthetic.worlds.thm2 import run as dv
from synthetic.worlds.thm2.claims import fit_lemma4_constants, sandwich_constants
from synthetic.worlds.thm2.data import check_assumptions, make_forget_set
from theory import theorem2 as t2
from theory.claims import max_rel_error
from theory.methods import Method, get_method


def _set(n_f=6, d=10, correlation=0.0, seed=0, **kw):
    return make_forget_set(jax.random.key(seed), n_f=n_f, d=d, correlation=correlation, **kw)


@pytest.fixture(scope="module")
def small_runs():
    """GA and NPO(0.5, 2) on three small sets: orthogonal, correlated, n_f > d; 3000 steps, the
    three as the seeds of one engine call."""
    methods = dv.thm2_methods([0.5, 2.0])
    sets = {"orth": _set(), "corr": _set(correlation=0.8), "over": _set(n_f=6, d=4)}
    runs = dv.gd_divergence(list(sets.values()), methods, eta=1.0, steps=3000)
    return {k: (fs, run) for (k, fs), run in zip(sets.items(), runs)}


# --------------------------------------------------------------------------- two implementations


@pytest.mark.parametrize("name", ["orth", "corr", "over"])
def test_parameter_space_and_b_recursion_agree(small_runs, name):
    fs, r = small_runs[name]
    nb = np.linalg.norm(r["b"], axis=-1)
    assert np.max(nb[:, -1]) > 10, "the runs must have moved for the comparison to mean something"
    assert max_rel_error(r["b_theta"], r["b"]) <= 1e-8
    # ||theta - theta_init||_{X^T X}, computed through X^T X, is ||b||_2.
    assert max_rel_error(r["xtx_norm"], nb) <= 1e-8
    assert np.all(r["diverged_step"] == -1)


def test_both_implementations_match_a_numpy_loop(small_runs):
    """A third implementation: plain numpy GD on theta with the hand-derived gradient, on the
    correlated set (where the coordinates of b are coupled)."""
    fs, r = small_runs["corr"]
    methods = dv.thm2_methods([0.5, 2.0])
    x, s, th0 = fs.x, fs.signs, fs.theta_init
    ref = -np.logaddexp(0.0, -s * (x @ th0))
    eta, steps = 1.0, int(r["steps"][-1])
    for k, m in enumerate(methods):
        theta = th0.copy()
        for _ in range(steps):
            margin = s * (x @ theta)
            logp = -np.logaddexp(0.0, -margin)
            w = m.weight("ga") + m.weight("npo") * 2.0 * np.exp(-np.logaddexp(0.0, -m.beta * (logp - ref)))  # 2 sigma(beta r)
            one_minus_pi = np.exp(-np.logaddexp(0.0, margin))  # sigma(-margin), without overflow
            theta = theta - eta * (x.T @ (w * s * one_minus_pi)) / fs.n_f
        np.testing.assert_allclose(r["b"][k, -1], x @ (theta - th0), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(r["b_theta"][k, -1], x @ (theta - th0), rtol=1e-10, atol=1e-12)


def test_log_probs_follow_the_models_label_convention(small_runs):
    fs, r = small_runs["orth"]
    with jax.enable_x64(True):
        expected = take_label(logistic_log_probs(jnp.asarray(fs.theta_init), jnp.asarray(fs.x)), jnp.asarray(fs.y))
    np.testing.assert_allclose(r["logp"][:, 0], np.broadcast_to(np.asarray(expected), r["logp"][:, 0].shape), rtol=1e-12)
    # GD on either loss makes every forget example less likely (orthogonal rows).
    assert np.all(r["logp"][:, -1] < r["logp"][:, 0])


def test_sets_run_together_equal_a_set_run_alone(small_runs):
    """The n_f > d set ran padded to d = 10 beside the others; alone it runs at its own d = 4."""
    fs, together = small_runs["over"]
    alone = dv.gd_divergence(fs, dv.thm2_methods([0.5, 2.0]), eta=1.0, steps=3000)
    for key in ("b", "b_theta", "xtx_norm", "theta_shift", "logp", "loss"):
        np.testing.assert_allclose(together[key], alone[key], rtol=1e-11, atol=1e-12, err_msg=key)
    np.testing.assert_array_equal(together["hit_step"], alone["hit_step"])
    np.testing.assert_array_equal(together["distances"], alone["distances"])


def test_vmapped_runs_equal_separate_runs():
    fs = _set(n_f=4, d=6, seed=5)
    methods = dv.thm2_methods([0.3, 1.5])
    together = dv.gd_divergence(fs, methods, eta=1.0, steps=500)
    for k, m in enumerate(methods):
        alone = dv.gd_divergence(fs, [m], eta=1.0, steps=500)
        np.testing.assert_allclose(together["b"][k], alone["b"][0], rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(together["hit_step"][k], alone["hit_step"][0])


def test_first_passage_and_sandwich_extremes_are_per_step():
    fs = _set(n_f=4, d=6, seed=2)
    r = dv.gd_divergence(fs, dv.thm2_methods([1.0]), eta=1.0, steps=300, records_per_decade=1000,
                         distances=[0.05, 0.2, 1.0, 3.0, 50.0])
    assert np.array_equal(r["steps"], np.arange(301)), "records at every step for this check"
    nb = np.linalg.norm(r["b"], axis=-1)
    for k in range(2):
        for j, dist in enumerate(r["distances"]):
            above = np.flatnonzero(nb[k] >= dist)
            assert r["hit_step"][k, j] == (above[0] if above.size else -1)
        t = r["steps"][1:]
        lin = nb[k, 1:] * math.sqrt(fs.n_f) / t
        np.testing.assert_allclose(r["linear_extremes"][k], [lin.min(), lin.max()], rtol=1e-12)
    u = r["beta"][1] * nb[1, 1:] / math.sqrt(fs.n_f)
    c = np.expm1(u) * fs.n_f / r["steps"][1:]
    sw = sandwich_constants(r, 1)
    np.testing.assert_allclose([sw["C2"], sw["C3"]], [c.min(), c.max()], rtol=1e-10)
    assert sw["C1"] == 1.0


# --------------------------------------------------------------------------- generator


def test_orthogonal_set_meets_every_assumption():
    fs = _set(n_f=16, d=32, b_x=0.5, B_x=1.5, B_theta=2.0)
    rep = fs.report
    assert rep.holds and rep.failed() == []
    assert rep.coherence < 1e-12
    assert 0.5 <= rep.norm_min <= rep.norm_max <= 1.5
    assert rep.theta_norm == pytest.approx(2.0)
    np.testing.assert_allclose(fs.x @ fs.x.T, np.diag(np.sum(fs.x**2, 1)), atol=1e-12)
    assert set(np.unique(fs.y)) <= {0, 1}
    # The same key gives the same set; another key another one.
    np.testing.assert_array_equal(fs.x, _set(n_f=16, d=32, b_x=0.5, B_x=1.5, B_theta=2.0).x)
    assert not np.allclose(fs.x, _set(n_f=16, d=32, b_x=0.5, B_x=1.5, B_theta=2.0, seed=1).x)


def test_correlated_set_has_the_requested_gram_and_fails_coherence():
    rho = 0.9
    fs = _set(n_f=16, d=32, correlation=rho)
    r = np.sqrt(np.sum(fs.x**2, 1))
    np.testing.assert_allclose(fs.x @ fs.x.T, np.outer(r, r) * (rho + (1 - rho) * np.eye(16)), atol=1e-12)
    off = np.outer(r, r)[~np.eye(16, dtype=bool)]
    assert fs.report.coherence == pytest.approx(rho * off.max())
    assert fs.report.coherence > 10 * fs.report.coherence_bound
    assert fs.report.failed() == ["coherence <= C0/n_f"]


def test_more_examples_than_dimensions_is_reported():
    fs = _set(n_f=12, d=5)
    assert not fs.report.high_dim and not fs.report.invertible
    assert fs.report.failed()[:2] == ["n_f <= d", "X X^T invertible"]
    assert "FAILS" in fs.report.summary()


# --------------------------------------------------------------------------- rates


@pytest.fixture(scope="module")
def long_runs():
    """GA and NPO (beta = 1) on an orthogonal set of 8 rows in d = 16, 10^5 steps: one call."""
    fs = _set(n_f=8, d=16, seed=1)
    return fs, dv.gd_divergence(fs, [get_method("GA"), get_method("NPO", beta=1.0)], eta=1.0, steps=10**5)


def test_ga_rate_converges_to_the_orthogonal_limit(long_runs):
    fs, r = long_runs
    steps = int(r["steps"][-1])
    rate = np.linalg.norm(r["b"][0, -1]) / steps
    assert rate == pytest.approx(t2.ga_rate(fs.x, eta=1.0), rel=1e-3)
    # Lemma 3's sign: b_i < 0 for y_i = 1, > 0 for y_i = 0.
    np.testing.assert_array_equal(np.sign(r["b"][0, -1]), -fs.signs)
    assert decade_growth_ratio(r["steps"], np.linalg.norm(r["b"][0], axis=-1), end=steps) == pytest.approx(10, rel=0.02)


def test_npo_tracks_sqrt_nf_over_beta_log_t_and_lemma4(long_runs):
    fs, r = long_runs
    steps, beta = int(r["steps"][-1]), 1.0
    nb = np.linalg.norm(r["b"][1], axis=-1)
    slope = log_slope(r["steps"], nb, start=steps / 10, stop=steps)
    assert slope == pytest.approx(math.sqrt(8) / beta, rel=0.05)
    assert decade_growth_ratio(r["steps"], nb, end=steps) == pytest.approx(1.0, abs=0.1)
    np.testing.assert_array_equal(np.sign(r["b"][1, -1]), -fs.signs)
    # Each coordinate approaches Lemma 4's closed form at the derived asymptotic C_i ...
    c = t2.npo_asymptotic_constants(fs.x, fs.y, fs.theta_init, beta)
    closed = t2.lemma4_distance(steps, beta=beta, C=c, eta0=1.0 / fs.n_f)
    assert np.max(beta * np.abs(np.abs(r["b"][1, -1]) - closed)) < 0.05
    # ... and a constant fitted on the last decade lands near it.
    c_fit, err = fit_lemma4_constants(r["steps"], r["b"][1], beta=beta, eta0=1.0 / fs.n_f, start=steps / 10)
    np.testing.assert_allclose(c_fit, c, rtol=0.05)
    assert err.max() < 0.05


def test_closed_forms_are_the_symbolic_ones():
    fs = _set(n_f=8, d=16)
    eta0, beta = 1.0 / 8, 0.7
    t = np.array([0.0, 1.0, 10.0, 1e4])
    np.testing.assert_allclose(t2.lemma4_distance(t, beta=beta, C=2.5, eta0=eta0), np.log(beta * 2.5 * eta0 * t + 1) / beta)
    dist = np.array([1.0, 4.0, 16.0])
    per = dist / math.sqrt(8)
    c_ga = math.sqrt(np.mean(np.sum(fs.x**2, 1) ** 2))
    ga, npo = get_method("GA"), get_method("NPO", beta=beta)
    np.testing.assert_allclose(
        t2.predicted_time_to_distance(fs.x, fs.y, fs.theta_init, dist, eta=1.0, method=ga), per / (c_ga * eta0), rtol=1e-12
    )
    c_npo = np.exp(np.mean(np.log(t2.npo_asymptotic_constants(fs.x, fs.y, fs.theta_init, beta))))
    np.testing.assert_allclose(
        t2.predicted_time_to_distance(fs.x, fs.y, fs.theta_init, dist, eta=1.0, method=npo),
        np.expm1(beta * per) / (beta * c_npo * eta0), rtol=1e-12,
    )
    # GA's linear asymptote has ||b||/t = ga_rate; Lemma-4 C_i are 2 ||x_i||^2 (1 + e^{m0})^beta.
    assert t2.predicted_distance(fs.x, fs.y, fs.theta_init, [1e3], eta=1.0, method=ga)[0] == pytest.approx(
        1e3 * t2.ga_rate(fs.x, eta=1.0))
    m0 = fs.signs * (fs.x @ fs.theta_init)
    np.testing.assert_allclose(t2.npo_asymptotic_constants(fs.x, fs.y, fs.theta_init, beta),
                               2 * np.sum(fs.x**2, 1) * (1 + np.exp(m0)) ** beta)
    # Theorem 2 covers GA or NPO alone.
    with pytest.raises(ValueError, match="GA or NPO alone"):
        t2.predicted_distance(fs.x, fs.y, fs.theta_init, [1.0], eta=1.0, method=get_method("NPO+RT"))


def test_fit_recovers_a_known_constant():
    t = np.unique(np.round(np.logspace(0, 5, 60)))
    c_true = np.array([0.5, 3.0, 40.0])
    b = -t2.lemma4_distance(t[:, None], beta=2.0, C=c_true[None, :], eta0=0.1)
    c_fit, err = fit_lemma4_constants(t, b, beta=2.0, eta0=0.1, start=10)
    np.testing.assert_allclose(c_fit, c_true, rtol=1e-6)
    assert err.max() < 1e-6


def test_decade_ratio_and_slope_on_known_curves():
    t = np.unique(np.round(np.logspace(0, 6, 121)))
    assert decade_growth_ratio(t, 3.0 * t, end=1e6) == pytest.approx(10.0)
    assert decade_growth_ratio(t, 2.0 + 5.0 * np.log(t), end=1e6) == pytest.approx(1.0)
    assert log_slope(t, 2.0 + 5.0 * np.log(t), start=1e5, stop=1e6) == pytest.approx(5.0)


# --------------------------------------------------------------------------- section 2.1 toy


def test_softmax_toy_ga_flat_npo_decays():
    methods = [get_method("GA"), get_method("NPO", beta=1.0)]
    r = dv.softmax_toy(jax.random.key(0), methods, n_classes=3, d=6, n_f=4, steps=20000)
    k = 3
    # pi_ref(y|x) = e^m / (e^m + K - 1) with unit rows and margin m = 2.
    np.testing.assert_allclose(np.exp(r["ref_logp"]), math.exp(2) / (math.exp(2) + k - 1), rtol=1e-12)
    # GA's per-example gradient is (e_y - p) x^T: its norm is ||e_y - p|| ||x|| exactly.
    np.testing.assert_allclose(r["grad_norm"][0], r["ga_grad_norm"][0], rtol=1e-10)
    every = (np.exp(r["logp"]) <= 0.01).all(-1)
    assert every[:, -1].all()
    first = np.argmax(every, axis=1)
    u = r["unlearned_grad_norm"]
    assert np.min(u[0, first[0]:]) >= 0.99
    assert math.sqrt(k / (k - 1)) - 1e-6 <= u[0, -1] <= math.sqrt(2) + 1e-12
    assert u[1, -1] < 0.1 * u[1, first[1]]
    # Before anything is unlearned the mean over unlearned examples is undefined.
    assert np.isnan(u[:, 0]).all()


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n_f": 0}, "n_f"),
        ({"n_f": -3}, "n_f"),
        ({"d": 0}, "d"),
        ({"b_x": 1.0, "B_x": 0.5}, "B_x"),
        ({"b_x": 0.0}, "b_x"),
        ({"B_theta": -1.0}, "B_theta"),
        ({"correlation": 1.0}, "correlation"),
        ({"p_one": 1.5}, "p_one"),
    ],
)
def test_generator_rejects_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_forget_set(jax.random.key(0), **kwargs)


def test_simulation_rejects_bad_input():
    fs = _set(n_f=3, d=4)
    with pytest.raises(ValueError, match="eta"):
        dv.gd_divergence(fs, [get_method("GA")], eta=0.0, steps=10)
    with pytest.raises(ValueError, match="eta"):
        dv.gd_divergence(fs, [get_method("GA")], eta=-1.0, steps=10)
    with pytest.raises(ValueError, match="beta"):
        dv.gd_divergence(fs, [Method(weights={"npo": 1.0}, hyper={"beta": 0.0})], eta=1.0, steps=10)
    with pytest.raises(ValueError, match="beta"):
        dv.gd_divergence(fs, [Method(weights={"npo": 1.0}, hyper={"beta": -2.0})], eta=1.0, steps=10)
    with pytest.raises(ValueError, match="steps"):
        dv.gd_divergence(fs, [get_method("GA")], eta=1.0, steps=0)
    with pytest.raises(ValueError, match="GA or NPO alone"):
        dv.gd_divergence(fs, [get_method("NPO+RT")], eta=1.0, steps=10)
    with pytest.raises(ValueError, match="methods"):
        dv.gd_divergence(fs, [], eta=1.0, steps=10)
    with pytest.raises(ValueError, match="distances"):
        dv.gd_divergence(fs, [get_method("GA")], eta=1.0, steps=10, distances=[-1.0])
    with pytest.raises(ValueError, match="beta"):
        t2.npo_slope(8, 0.0)
    with pytest.raises(ValueError, match="beta"):
        t2.npo_asymptotic_constants(fs.x, fs.y, fs.theta_init, -1.0)
    with pytest.raises(ValueError, match="n_f"):
        dv.softmax_toy(jax.random.key(0), [get_method("GA")], n_f=0)
    with pytest.raises(ValueError, match="eta"):
        dv.softmax_toy(jax.random.key(0), [get_method("GA")], eta=0.0)
    with pytest.raises(ValueError, match="B_x"):
        check_assumptions(fs.x, fs.theta_init, b_x=1.0, B_x=0.1, B_theta=1.0)
