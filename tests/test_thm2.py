"""The thm2 experiment end to end in quick mode: arrays, claims, figures, caching."""

import json

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import jax  # noqa: E402

from synthetic import store  # noqa: E402
from synthetic.experiment import code_version, run_cached  # noqa: E402
from synthetic.registry import experiments  # noqa: E402
from synthetic.worlds.thm2 import claims as thm2_claims  # noqa: E402
from synthetic.worlds.thm2 import config as thm2  # noqa: E402
from synthetic.worlds.thm2 import figures as thm2_figures  # noqa: E402
from synthetic.worlds.thm2 import run as thm2_run  # noqa: E402

EXPERIMENT = experiments()["thm2"]

THEOREM2_IDS = [
    "thm2.ga_linear",
    "thm2.npo_log",
    "thm2.npo_slope_matches",
    "thm2.exp_slowdown_measured",
    "thm2.b_coordinates_agree",
]


@pytest.fixture(scope="module")
def quick():
    config = thm2.thm2_config(quick=True)
    config["toy"]["steps"] = 2 * 10**4  # the toy's shape is what is tested here, not its length
    with jax.enable_x64(True):
        return config, thm2_run.run_thm2(config)


def test_config_is_json_and_quick_is_shorter():
    full, small = thm2.thm2_config(False), thm2.thm2_config(True)
    assert json.loads(json.dumps(full)) == full
    assert full["steps"] == 10**6 and small["steps"] == 10**4
    assert full["betas"] == [0.1, 0.5, 1.0, 2.0] and full["eta"] <= 1.0  # Theorem 2 takes eta <= 1 for NPO
    assert EXPERIMENT.name == "thm2" and EXPERIMENT.config(True) == small
    # The registry's references name this world's functions.
    assert EXPERIMENT.world == "thm2"
    assert EXPERIMENT.function("run") is thm2_run.run_thm2
    assert EXPERIMENT.function("claims") is thm2_claims.thm2_claims
    assert EXPERIMENT.function("figures") is thm2_figures.thm2_figures


def test_quick_run_produces_the_claims(quick):
    config, arrays = quick
    assert sorted(arrays) == sorted([*thm2.SETTINGS, "toy"])  # one nested group per forget set, and the toy
    for setting in thm2.SETTINGS:
        a = arrays[setting]
        assert a["b"].shape == (5, a["steps"].size, 32)
        assert bool(a["assumptions_hold"]) == (setting == "orthogonal")
    claims = thm2_claims.thm2_claims(config, arrays)
    ids = [c.id for c in claims]
    assert ids[:5] == THEOREM2_IDS and len(set(ids)) == len(ids)
    by_id = {c.id: c for c in claims}
    # Decided on numbers that hold already at 10^4 steps.
    assert by_id["thm2.b_coordinates_agree"].passed
    assert by_id["thm2.ga_linear"].passed
    assert by_id["thm2.ga_linear"].values["rel_error"] < 0.01
    # The quick run is honest that the asymptotic NPO tests are meant for 10^6 steps.
    assert "--quick" in by_id["thm2.npo_slope_matches"].statement
    for c in claims:
        json.dumps(c.to_json())
        assert c.measured and c.statement and c.paper_ref
    # One deterministic run each: kinds, and no seed interval.
    assert [c.kind for c in claims] == ["paper"] * 4 + ["consistency", "extension", "paper"]
    assert all(not c.interval for c in claims)
    # GA's half of the toy is decided on a number that could fail: -log pi grows by ~10x per
    # decade (11.5 at this shortened 2e4 steps, still in the transient; 10.000 at the config's 1e5).
    toy = by_id["thm2.softmax_toy"].values
    assert 9 <= toy["GA"]["decade_ratio"] <= 12.5


def test_slowdown_is_decided_at_every_distance():
    # measured/predicted over increasing D: approaching 1 passes, drifting away fails, and a
    # step of rounding is allowed.
    assert thm2_claims._approaches_one([2.0, 1.5, 1.1, 1.01], [9, 16, 100, 1000])
    assert not thm2_claims._approaches_one([2.0, 1.5, 1.7, 1.01], [9, 16, 100, 1000])
    assert not thm2_claims._approaches_one([1.0, 0.8, 0.5], [10, 100, 1000])  # NPO slower than predicted
    assert thm2_claims._approaches_one([1.0, 1.0005], [500, 1000])  # half a step of 1000: rounding
    assert not thm2_claims._approaches_one([1.0, 1.002], [500, 1000])  # two steps: a real drift


def test_figures_render(quick):
    config, arrays = quick
    figs = EXPERIMENT.function("figures")(config, arrays)
    assert set(figs) == {"thm2_distance", "thm2_time_to_distance", "thm2_outside", "thm2_softmax_toy"}
    for fig in figs.values():
        fig.canvas.draw()  # catches mathtext and layout errors
        assert len(fig.axes) >= 1


def test_arrays_round_trip_through_the_cache(quick, tmp_path):
    config, arrays = quick
    store.save(tmp_path, "thm2", config, arrays, version=code_version(EXPERIMENT))
    exp = EXPERIMENT
    loaded, cached = run_cached(exp, config, tmp_path)
    assert cached
    assert set(loaded) == set(arrays) and set(loaded["toy"]) == set(arrays["toy"])  # the nesting comes back
    flat_loaded, flat = store.flatten_results(loaded), store.flatten_results(arrays)
    assert set(flat_loaded) == set(flat)
    for k in flat:
        np.testing.assert_array_equal(flat_loaded[k], flat[k])
    claims = exp.function("claims")
    assert [c.passed for c in claims(config, loaded)] == [c.passed for c in claims(config, arrays)]
