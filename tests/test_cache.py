"""The experiments' cache cannot lie: keyed by config and code, damaged entries recomputed."""

from pathlib import Path

import numpy as np
import pytest

from synthetic import store
from synthetic.experiment import Experiment, code_version, run_cached

ROOT = Path(__file__).resolve().parents[1]


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
    monkeypatch.setattr(store, "code_fingerprint", lambda modules, **kw: "0123456789abcdef")
    arrays, hit = run_cached(exp, {"v": 2.0}, tmp_path)
    assert not hit and len(calls) == 2


def test_the_code_version_covers_the_run_module_and_its_imports():
    from synthetic.registry import experiments

    registry = experiments()
    module = registry["fig4"].function("run").__module__
    assert module == "synthetic.worlds.section4.run"
    files = {p.relative_to(ROOT).as_posix() for p in store.fingerprint_files([module])}
    assert {"synthetic/worlds/section4/run.py", "synthetic/engine/loop.py", "theory/objectives.py"} <= files
    # drawing and deciding do not change the arrays (theory/claims.py, the Claim record that
    # theory/__init__ exports, holds no threshold)
    assert not any(f.startswith("figures/") for f in files), files
    assert not {f"synthetic/worlds/section4/{m}.py" for m in ("claims", "figures", "experiments")} & files
    assert not {"synthetic/analysis.py", "synthetic/report.py", "synthetic/registry.py"} & files
    assert code_version(registry["fig4"]) == code_version(registry["fig9"])  # shared runs, shared key
    assert code_version(registry["fig4"]) != code_version(registry["thm2"])  # another world's code


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
    assert not hit and len(calls) == 2
    # one line names the damaged file; the other says the run is computing (and why)
    damaged = [r for r in reports if "damaged" in r]
    assert len(damaged) == 1 and npz.name in damaged[0]
    assert len(reports) == 2 and [r for r in reports if r not in damaged][0].startswith("computing (")
    np.testing.assert_array_equal(arrays["y"], [2.0, 2.0, 2.0])
    # replaced: the next run reuses it silently
    again, hit = run_cached(exp, {"v": 2.0}, tmp_path, progress=reports.append)
    assert hit and len(reports) == 2
