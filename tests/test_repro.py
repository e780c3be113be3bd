"""The one command: report and claims files, exit status, --only validation."""

import dataclasses
import json

import numpy as np
import pytest

import paper_repro
from synthetic.experiments import Experiment
from theory.claims import Claim


def _ok_experiment(name="ok", passed=True):
    return Experiment(
        name=name,
        description="a test experiment",
        config=lambda quick: {"quick": quick},
        run=lambda config, progress, folder: {"x": np.arange(3.0)},
        claims=lambda config, arrays: [
            Claim(f"{name}.sum", "eq. 0", "the sum is 3", f"sum = {arrays['x'].sum():g}", passed)
        ],
    )


def _broken_experiment():
    def run(config, progress, folder):
        raise RuntimeError("boom")

    return Experiment("broken", "raises", config=lambda q: {}, run=run, claims=lambda c, a: [])


def test_report_and_claims_written(tmp_path, monkeypatch):
    monkeypatch.setattr(paper_repro, "EXPERIMENTS", {"ok": _ok_experiment(), "bad": _ok_experiment("bad", False)})
    status = paper_repro.main(["--out", str(tmp_path)])
    assert status == 0, "an honestly failing claim must not change the exit status"
    claims = json.loads((tmp_path / "claims.json").read_text())
    assert [c["id"] for c in claims] == ["ok.sum", "bad.sum"]
    assert set(claims[0]) >= {"id", "paper_ref", "statement", "measured", "passed"}
    assert claims[0]["measured"] == "sum = 3" and claims[0]["passed"] is True
    assert claims[1]["passed"] is False
    report = (tmp_path / "report.md").read_text()
    assert "| `ok.sum` | eq. 0 |" in report and "**FAIL**" in report
    assert "1 of 2 claims pass" in report


def test_error_exits_nonzero_and_keeps_cached_results(tmp_path, monkeypatch):
    monkeypatch.setattr(paper_repro, "EXPERIMENTS", {"ok": _ok_experiment()})
    assert paper_repro.main(["--out", str(tmp_path)]) == 0
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    monkeypatch.setattr(paper_repro, "EXPERIMENTS", {"ok": _ok_experiment(), "broken": _broken_experiment()})
    assert paper_repro.main(["--out", str(tmp_path)]) == 1
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == cached
    claims = json.loads((tmp_path / "claims.json").read_text())
    assert [c["id"] for c in claims] == ["ok.sum", "broken.error"]
    assert "boom" in claims[1]["measured"]


def test_second_run_uses_cache(tmp_path, monkeypatch):
    calls = []
    exp = _ok_experiment()
    counted = Experiment(
        exp.name, exp.description, exp.config, lambda c, p, f: calls.append(1) or exp.run(c, p, f), exp.claims
    )
    monkeypatch.setattr(paper_repro, "EXPERIMENTS", {"ok": counted})
    paper_repro.main(["--out", str(tmp_path)])
    paper_repro.main(["--out", str(tmp_path)])
    assert len(calls) == 1
    assert "(cached," in (tmp_path / "report.md").read_text()


def test_unknown_experiment_suggests_closest(capsys):
    with pytest.raises(SystemExit) as exc:
        paper_repro.parse_args(["--only", "symbolc"])
    assert exc.value.code == 2
    assert "did you mean 'symbolic'" in capsys.readouterr().err


def test_only_accepts_comma_lists_and_quick_has_its_own_folder():
    args = paper_repro.parse_args(["--only", "symbolic", "--quick"])
    assert args.names == ["symbolic"] and args.out.as_posix() == "results/quick"
    assert paper_repro.parse_args([]).names == list(paper_repro.EXPERIMENTS)


def test_time_left_scales_the_reference_times_by_this_machines_pace(tmp_path):
    def timed(name, seconds):
        return dataclasses.replace(_ok_experiment(name), reference_seconds=seconds)

    a, b, c = timed("a", 10.0), timed("b", 100.0), _ok_experiment("c")  # c has no reference time
    left = paper_repro.TimeLeft([a, b, c], quick=False, out=tmp_path)
    assert left.line() == "about 1.8 min left (a, b; at the reference times)"  # 110 s
    left.done("a", 20.0, cached=False)  # this machine takes twice as long
    assert left.pace == 2.0
    assert left.line() == "about 3.3 min left (b; at 2x the reference times so far)"
    left.done("b", 1.0, cached=True)  # a cached result says nothing about the pace
    assert left.pace == 2.0 and left.line() is None
    assert paper_repro.TimeLeft([a, b], quick=True, out=tmp_path).line() is None


def test_time_left_skips_experiments_already_cached(tmp_path, monkeypatch):
    exp = dataclasses.replace(_ok_experiment(), reference_seconds=50.0)
    assert paper_repro.TimeLeft([exp], quick=False, out=tmp_path).line() is not None
    monkeypatch.setattr(paper_repro, "EXPERIMENTS", {"ok": exp})
    paper_repro.main(["--out", str(tmp_path)])  # quick=False: the cache now holds the full config
    assert paper_repro.TimeLeft([exp], quick=False, out=tmp_path).line() is None
