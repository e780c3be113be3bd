"""The experiments' cache cannot lie: keyed by config and code, damaged entries recomputed."""

import numpy as np
import pytest

from synthetic import store
from synthetic.experiments import Experiment, code_version, run_cached


def _experiment(calls):
    def run(config, progress, folder):
        calls.append(config)
        return {"y": np.full(3, config["v"])}

    return Experiment("e", "test", config=lambda q: {"v": 2.0}, run=run, claims=lambda c, a: [])


def test_run_cached_runs_once_per_config(tmp_path):
    calls = []
    exp = _experiment(calls)
    a1, hit1 = run_cached(exp, {"v": 2.0}, tmp_path)
    a2, hit2 = run_cached(exp, {"v": 2.0}, tmp_path)
    a3, hit3 = run_cached(exp, {"v": 3.0}, tmp_path)
    assert (hit1, hit2, hit3) == (False, True, False)
    assert len(calls) == 2
    np.testing.assert_array_equal(a2["y"], [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(a3["y"], [3.0, 3.0, 3.0])


def test_a_code_change_is_a_miss(tmp_path, monkeypatch):
    calls = []
    exp = _experiment(calls)
    run_cached(exp, {"v": 2.0}, tmp_path)
    assert run_cached(exp, {"v": 2.0}, tmp_path)[1]
    # the same config, computed by other code: the old arrays are not reused
    monkeypatch.setattr(store, "code_fingerprint", lambda modules: "0123456789abcdef")
    arrays, hit = run_cached(exp, {"v": 2.0}, tmp_path)
    assert not hit and len(calls) == 2


def test_the_code_version_covers_the_run_module_and_its_imports():
    from synthetic.experiments import REGISTRY

    files = {p.as_posix().split("/work/")[-1] for p in store.fingerprint_files([REGISTRY["fig4"].run.__module__])}
    names = {f.split("/", 1)[-1] if f.startswith("main/") else f for f in files}
    assert any(n.endswith("synthetic/engine/loop.py") for n in names)
    assert any(n.endswith("theory/objectives.py") for n in names)
    assert not any("figures/" in n for n in names)  # drawing does not change the arrays
    assert code_version(REGISTRY["fig4"]) == code_version(REGISTRY["fig9"])  # shared runs, shared key


@pytest.mark.parametrize("damage", ["truncate", "flip", "swap", "directory"])
def test_a_damaged_entry_is_reported_recomputed_and_replaced(tmp_path, damage):
    calls, reports = [], []
    exp = _experiment(calls)
    run_cached(exp, {"v": 2.0}, tmp_path)
    (npz,) = tmp_path.glob("e-*.npz")
    data = npz.read_bytes()
    if damage == "truncate":
        npz.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        npz.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    elif damage == "swap":  # a valid file with other values: only the checksum can tell
        other = tmp_path / "other"
        store.save(other, "e", {"v": 9.0}, {"y": np.full(3, 9.0)})
        npz.write_bytes(next(other.glob("*.npz")).read_bytes())
    else:
        npz.unlink()
        npz.mkdir()
    arrays, hit = run_cached(exp, {"v": 2.0}, tmp_path, progress=reports.append)
    assert not hit and len(calls) == 2 and len(reports) == 1 and npz.name in reports[0]
    np.testing.assert_array_equal(arrays["y"], [2.0, 2.0, 2.0])
    # replaced: the next run reuses it silently
    again, hit = run_cached(exp, {"v": 2.0}, tmp_path, progress=reports.append)
    assert hit and len(reports) == 1
