"""Result caching: keyed by config hash, atomic, no pickles."""

import json

import numpy as np
import pytest

from synthetic import store
from synthetic.experiment import Experiment, run_cached


def test_hash_ignores_key_order_but_not_values():
    assert store.config_hash({"a": 1, "b": [1, 2]}) == store.config_hash({"b": [1, 2], "a": 1})
    assert store.config_hash({"a": 1}) != store.config_hash({"a": 2})
    assert store.config_hash({"a": 1}) != store.config_hash({"a": 1.5})


def test_save_then_load_round_trips(tmp_path):
    arrays = {"x": np.arange(6.0).reshape(2, 3), "n": np.array([1, 2], dtype=np.int32)}
    store.save(tmp_path, "exp", {"seed": 0}, arrays)
    got = store.load(tmp_path, "exp", {"seed": 0})
    assert set(got) == {"x", "n"}
    np.testing.assert_array_equal(got["x"], arrays["x"])
    assert got["n"].dtype == np.int32
    assert store.load(tmp_path, "exp", {"seed": 1}) is None
    assert store.load(tmp_path, "other", {"seed": 0}) is None
    meta = json.loads(next(tmp_path.glob("exp-*.json")).read_text())
    assert meta == {"name": "exp", "config": {"seed": 0}}
    assert not list(tmp_path.glob("*.tmp")), "temporary files must not be left behind"


def test_npz_without_json_is_not_a_hit(tmp_path):
    """A crash between writing the arrays and the config must not produce a false hit."""
    store.save(tmp_path, "exp", {"seed": 0}, {"x": np.ones(2)})
    next(tmp_path.glob("exp-*.json")).unlink()
    assert store.load(tmp_path, "exp", {"seed": 0}) is None


def test_failed_write_keeps_previous_file(tmp_path):
    target = tmp_path / "r.txt"
    store.atomic_write_text(target, "old")

    with pytest.raises(Exception):
        store.atomic_write_bytes(target, object())  # not bytes: the write fails midway
    assert target.read_text() == "old"
    assert not list(tmp_path.glob("*.tmp"))


def test_config_must_be_jsonable(tmp_path):
    with pytest.raises(TypeError, match="JSON"):
        store.config_hash({"f": object()})


def test_run_cached_runs_once(tmp_path):
    calls = []

    def run(config, progress):
        calls.append(config)
        return {"y": np.full(3, config["v"])}

    exp = Experiment("e", "test", config=lambda q: {"v": 2.0}, run=run, claims=lambda c, a: [])
    a1, hit1 = run_cached(exp, {"v": 2.0}, tmp_path)
    a2, hit2 = run_cached(exp, {"v": 2.0}, tmp_path)
    a3, hit3 = run_cached(exp, {"v": 3.0}, tmp_path)
    assert (hit1, hit2, hit3) == (False, True, False)
    assert len(calls) == 2
    np.testing.assert_array_equal(a2["y"], [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(a3["y"], [3.0, 3.0, 3.0])
