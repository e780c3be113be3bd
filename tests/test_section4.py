"""Section-4 experiments end to end at a tiny size, and the claim rules on made-up curves."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synthetic import engine
from synthetic.analysis import (
    finite_seed_mean,
    frontier_curve,
    frontier_gap,
    pareto_frontier,
    seed_mean,
)
from synthetic.models.logistic import RandomFeaturesConfig, logistic_log_probs
from synthetic.worlds.section4 import claims as section4_claims
from synthetic.worlds.section4 import config as section4
from synthetic.worlds.section4 import run as section4_run
from synthetic.worlds.section4.data import DataConfig
from theory.objectives import kl_divergence


def _tiny(config: dict) -> dict:
    config["data"].update(dict(n_forget=20, n_retain=40, n_eval_forget=30, n_eval_retain=30))
    config["features"]["n_features"] = 16
    config.update(seeds=2, steps=100, eval_every=25)
    config["fit"] = {"solver": "newton", "steps": 20, "learning_rate": 0.05}
    return config


def test_fig4_pipeline_and_claims_at_tiny_size(x64):
    config = {"alpha1": _tiny(section4.fig4_config(1.0, quick=True)), "alpha0": _tiny(section4.fig4_config(0.0, quick=True))}
    arrays = section4_run.run_fig4(config)
    assert sorted(arrays) == ["alpha0", "alpha1"]  # one nested group per alpha
    a1 = arrays["alpha1"]
    assert a1["forget_distance"].shape == (2, 6, 5)
    assert list(a1["setting_method"]) == list(section4.FIG4_METHODS)
    np.testing.assert_allclose(a1["setting_learning_rate"], [5e-4, 5e-4, 5e-4, 5e-3, 5e-3, 5e-3])
    np.testing.assert_allclose(arrays["alpha0"]["setting_beta"][3:], [10, 10, 5])
    # Every run starts at the reference: same distances for all settings at step 0.
    np.testing.assert_allclose(a1["forget_distance"][:, :, 0], a1["forget_distance"][:, :1, 0].repeat(6, 1))
    assert np.all(a1["param_distance"][:, :, 0] == 0)
    # Step 0 is the reference model: its distance to the retrained model, recomputed here
    # (jitted: one program instead of one per primitive and shape).
    c1 = config["alpha1"]

    @functools.partial(jax.jit, static_argnums=(1, 2))
    def step0_distance(key, data_config, features_config):
        problem = section4_run.prepare_seed(key, data_config, features_config)
        ref, retr = engine.fit_reference_and_retrained(problem.forget, problem.y_forget, problem.retain,
                                                       problem.y_retain, solver="newton", steps=20)
        lp = logistic_log_probs
        return jnp.mean(kl_divergence(lp(retr.theta, problem.eval_forget), lp(ref.theta, problem.eval_forget)))

    want = step0_distance(jax.random.key(1), DataConfig(**c1["data"]), RandomFeaturesConfig(**c1["features"]))
    np.testing.assert_allclose(a1["forget_distance"][1, :, 0], float(want), rtol=1e-10)
    # GA moves away at every record, faster than NPO at the same step size would.
    assert np.all(np.diff(a1["param_distance"][:, 0], axis=-1) > 0)
    claims = section4_claims.fig4_claims(config, arrays) + section4_claims.fig9_claims(config, arrays)
    # The claims decide on these very arrays: claim (b)'s growth is the seed-mean ratio.
    rd = seed_mean(a1["retain_distance"][:, 0])
    half = int(np.searchsorted(a1["steps"], a1["steps"][-1] // 2))
    assert claims[1].values["growth_second_half"]["GA"] == pytest.approx(rd[-1] / rd[half], rel=1e-12)
    ids = [c.id for c in claims]
    assert ids == [
        "fig4.a_forget_below_0005",
        "fig4.b_ga_collapse",
        "fig4.b_npo_stable",
        "fig4.c_pareto",
        "fig4.d_alpha0_same_law",
        "fig4.d_alpha0",
        "fig9.e_moderate_kl",
    ]
    assert [c.kind for c in claims] == ["paper"] * 4 + ["consistency"] + ["paper"] * 2
    # Every seed-mean decision carries its interval over the 2 seeds, around its estimate.
    for c in claims:
        assert c.interval and c.verdict in ("pass", "fail", "inconclusive"), c.id
        for q in c.interval.values():
            assert q["seeds"] == 2 and q["low"] <= q["estimate"] <= q["high"], (c.id, q)


def test_table1_is_the_papers():
    cfg = section4.fig4_config(0.0)
    by = {s["method"]: (s["learning_rate"], s["beta"]) for s in cfg["settings"]}
    assert by["GA"][0] == 1e-4 and by["NPO+RT"] == (5e-2, 10.0) and by["DPO+RT"] == (5e-2, 5.0)
    assert cfg["fit"] == {"solver": "gd", "steps": 20000, "learning_rate": 0.05}
    assert (cfg["seeds"], cfg["steps"], cfg["eval_every"]) == (5, 2000, 25)
    assert DataConfig(**cfg["data"]).alpha == 0.0
    with pytest.raises(ValueError, match="alpha"):
        section4.fig4_config(0.5)


def test_pareto_frontier_by_hand():
    f = np.array([3.0, 2.0, 2.5, 1.0, 1.5])
    r = np.array([0.1, 0.2, 0.05, 0.9, 0.3])
    pf, pr = pareto_frontier(f, r)
    np.testing.assert_array_equal(pf, [1.0, 1.5, 2.0, 2.5])
    np.testing.assert_array_equal(pr, [0.9, 0.3, 0.2, 0.05])
    np.testing.assert_array_equal(frontier_curve(f, r, [0.5, 1.2, 2.7, 10], cap=7.0), [7.0, 0.9, 0.05, 0.05])


def test_frontier_gap_sign_and_common_range():
    f = np.geomspace(1, 0.01, 50)
    better, worse = 0.1 + 0 * f, 0.2 + 0 * f
    assert frontier_gap(f, better, f, worse) == pytest.approx(0.1)
    assert frontier_gap(f, worse, f, better) == pytest.approx(-0.1)
    # Only the range both reach counts: B going further does not change the verdict.
    assert frontier_gap(f[:25], better[:25], f, worse) == pytest.approx(0.1)


def _fake(curves_fd, curves_rd, methods, steps):
    fd = np.asarray(curves_fd, float)[None]
    rd = np.asarray(curves_rd, float)[None]
    return {
        "steps": np.asarray(steps),
        "forget_distance": fd,
        "retain_distance": rd,
        "forget_kl": np.ones_like(fd),
        "setting_method": np.array(methods),
        "setting_beta": np.ones(len(methods)),
        "setting_learning_rate": np.ones(len(methods)),
    }


def test_growth_rule_separates_collapse_from_levelling_off():
    steps = np.arange(0, 2001, 500)
    growing = [0.02, 0.05, 0.1, 0.2, 0.4]  # x4 over the second half
    flat = [0.02, 0.03, 0.035, 0.036, 0.037]
    fd = [[1, 0.5, 0.1, 0.05, 0.05]] * 6
    rd = [growing, growing, flat, growing, flat, flat]
    a = _fake(fd, rd, section4.FIG4_METHODS, steps)
    arrays = {"alpha1": a, "alpha0": a}
    claims = {c.id: c for c in section4_claims.fig4_claims({}, arrays)}
    assert claims["fig4.b_ga_collapse"].passed and claims["fig4.b_npo_stable"].passed
    rd_bad = [flat, growing, flat, growing, growing, flat]  # GA levels off, NPO+RT collapses
    a = _fake(fd, rd_bad, section4.FIG4_METHODS, steps)
    arrays = {"alpha1": a, "alpha0": a}
    claims = {c.id: c for c in section4_claims.fig4_claims({}, arrays)}
    assert not claims["fig4.b_ga_collapse"].passed and not claims["fig4.b_npo_stable"].passed
    assert not claims["fig4.a_forget_below_0005"].passed  # 0.05 never gets below 0.005


def test_fig3_rule_needs_strict_monotonicity():
    steps = np.arange(0, 101, 25)
    ga = [1, 0.5, 0.2, 0.1, 0.05]
    make = lambda k: [v * (1 + k) for v in ga]  # noqa: E731
    fd = [ga, make(0.01), make(0.1), make(0.2), make(0.5), make(1.0)]
    methods = ["GA"] + ["NPO"] * 5
    a = _fake(fd, fd, methods, steps)
    a["setting_beta"] = np.array([1.0, 0.01, 0.1, 0.2, 0.5, 1.0])
    assert section4_claims.fig3_claims({}, a)[0].passed
    a["setting_beta"] = np.array([1.0, 0.1, 0.01, 0.2, 0.5, 1.0])  # 0.01 now farther than 0.1
    assert not section4_claims.fig3_claims({}, a)[0].passed


def test_grid_scores_prefer_lower_frontiers_and_mark_infeasible():
    steps = np.arange(0, 101, 25)
    fd = [[1, 0.5, 0.1, 0.04, 0.03], [1, 0.5, 0.1, 0.04, 0.03], [1, 0.8, 0.6, 0.5, 0.4]]
    rd = [[0.02, 0.03, 0.04, 0.05, 0.06], [0.02, 0.02, 0.02, 0.03, 0.03], [0.02] * 5]
    a = _fake(fd, rd, ["NPO", "NPO", "NPO"], steps)
    scores = section4_claims.setting_scores(a)
    assert scores[1] < scores[0] and np.isinf(scores[2])
    assert section4_claims.best_settings(a) == {"NPO": 1}


def test_seed_mean_never_drops_a_diverged_run():
    runs = np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 5.0]])
    np.testing.assert_allclose(seed_mean(runs), [2.0, 3.0, np.nan])
    np.testing.assert_allclose(finite_seed_mean(runs), [2.0, 3.0, 5.0])  # for drawing only


def test_the_pipeline_takes_a_generator_and_refuses_overflow_and_endless_runs_by_name():
    from synthetic.engine import Schedule
    from synthetic.worlds.section4.pipeline import unlearning_pipeline

    rng = np.random.default_rng(0)
    kw = dict(x_forget=rng.normal(size=(20, 4)), y_forget=rng.integers(0, 2, 20), x_retain=rng.normal(size=(50, 4)),
              y_retain=rng.integers(0, 2, 50), x_eval_forget=rng.normal(size=(30, 4)),
              x_eval_retain=rng.normal(size=(30, 4)), y_idk=rng.integers(0, 2, 20), learning_rates=[1e-3, 1e-3])
    out = unlearning_pipeline(**kw, methods=(m for m in ["GA", "NPO"]), steps=100, eval_every=50)
    assert list(out["setting_method"]) == ["GA", "NPO"] and out["forget_distance"].shape == (2, 3)
    # 2**32 steps wrapped around the engine's int32 counter to no step at all
    with pytest.raises(ValueError, match="steps must be at most 2147483647"):
        unlearning_pipeline(**kw, methods=["GA", "NPO"], steps=2**32, eval_every=2**31)
    with pytest.raises(ValueError, match="steps must be at most 2147483647"):
        Schedule((0, 2**31))
    # inputs whose logits overflow: named as the user's inputs, not an internal argument
    with pytest.raises(ValueError, match="fits on x_forget and x_retain did not stay finite"):
        unlearning_pipeline(**{**kw, "x_forget": kw["x_forget"] * 1e300}, methods=["GA", "NPO"], steps=100,
                            eval_every=50)


def test_numbers_are_numbers_strings_and_booleans_are_not():
    from synthetic.worlds.section4.data import DataConfig
    from synthetic.worlds.section4.pipeline import unlearning_pipeline

    assert DataConfig(alpha=np.float32(0.5)).alpha == pytest.approx(0.5)   # a numpy scalar is a number
    for bad in (True, "1", 1 + 0j, [1.0], float("nan")):
        with pytest.raises(ValueError, match="alpha must be"):
            DataConfig(alpha=bad)
    rng = np.random.default_rng(0)
    kw = dict(y_forget=rng.integers(0, 2, 3), x_retain=rng.normal(size=(5, 2)), y_retain=rng.integers(0, 2, 5),
              x_eval_forget=rng.normal(size=(4, 2)), x_eval_retain=rng.normal(size=(4, 2)), y_idk=rng.integers(0, 2, 3),
              methods=["GA"], learning_rates=1e-3, steps=10, eval_every=5)
    for bad in (np.full((3, 2), "1.5"), np.ones((3, 2), bool), np.ones((3, 2), complex)):
        with pytest.raises(ValueError, match="x_forget must be a non-empty 2-D array of numbers"):
            unlearning_pipeline(x_forget=bad, **kw)
