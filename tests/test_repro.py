"""The one command: report and claims files, exit status, --only validation."""

import dataclasses
import json
import re
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import paper_repro
from synthetic.experiment import Experiment
from theory.claims import Claim

ROOT = Path(__file__).resolve().parents[1]


def _ok_experiment(name="ok", passed=True, kind="paper"):
    return Experiment(
        name=name,
        description="a test experiment",
        config=lambda quick: {"quick": quick},
        run=lambda config, progress, folder: {"x": np.arange(3.0)},
        claims=lambda config, arrays: [
            Claim(f"{name}.sum", "eq. 0", "the sum is 3", f"sum = {arrays['x'].sum():g}", passed, kind=kind)
        ],
    )


def _seeded_experiment():
    """Three claims of three kinds, one inconclusive with a note; seeds in its config."""
    def claims(config, arrays):
        return [
            Claim("s.paper", "sec. 1", "a paper claim", "gap 0.1 [-0.1, 0.3]", "inconclusive", kind="paper",
                  note="the seeds cannot tell"),
            Claim("s.ext", "-", "beyond the paper", "x = 1", True, kind="extension"),
            Claim("s.same", "-", "two ways agree", "err 1e-12", True, kind="consistency"),
        ]

    return Experiment("s", "seeded", config=lambda quick: {"seeds": 2 if quick else 5, "inner": {"seeds": 3}},
                      run=lambda config, progress, folder: {"n": np.array(config["seeds"])}, claims=claims)


def _configs(*exps):
    return {e.name: (e, e.config(False)) for e in exps}


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
    assert set(claims[0]) >= {"id", "kind", "paper_ref", "statement", "measured", "verdict", "passed", "interval",
                              "note"}
    assert claims[0]["measured"] == "sum = 3" and claims[0]["passed"] is True and claims[0]["verdict"] == "pass"
    assert claims[1]["passed"] is False and claims[1]["verdict"] == "fail"
    report = (tmp_path / "report.md").read_text()
    assert "| `ok.sum` | eq. 0 |" in report and "**FAIL**" in report
    assert "**Paper claims reproduced: 1 of 2 (1 fail).**" in report
    # each experiment's time and peak resident memory (a Python process with JAX: over 50 MB)
    peaks = re.findall(r"- \*\*(ok|bad)\*\* \(ran, [\d.]+ s, peak memory (\d+) MB\)", report)
    assert [name for name, _ in peaks] == ["ok", "bad"] and all(50 < int(mb) < 10**6 for _, mb in peaks)


def test_report_counts_each_kind_apart_and_states_the_seeds(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(paper_repro, "EXPERIMENTS", {"ok": _ok_experiment(), "s": _seeded_experiment()})
    assert paper_repro.main(["--out", str(tmp_path), "--seeds", "7"]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "**Paper claims reproduced: 1 of 2 (1 inconclusive).**" in report
    assert "- Extensions: 1 of 1 pass" in report and "- Consistency checks: 1 of 1 pass" in report
    assert "Seeds: 7 (s); deterministic, no seeds: ok." in report
    # One table per kind, the paper's first; the note under the tables.
    assert report.index("## Paper claims") < report.index("## Extensions") < report.index("## Consistency")
    assert "| *inconclusive* |" in report and "- `s.paper`: the seeds cannot tell" in report
    assert "Paper claims reproduced: 1 of 2 (1 inconclusive)" in capsys.readouterr().out
    # --seeds reached the experiment's config, at every depth.
    assert paper_repro.experiment_config(_seeded_experiment(), False, 7) == {"seeds": 7, "inner": {"seeds": 7}}
    assert paper_repro.experiment_config(_seeded_experiment(), True) == {"seeds": 2, "inner": {"seeds": 3}}


def test_experiment_tables_become_report_sections(tmp_path, monkeypatch):
    exp = dataclasses.replace(_ok_experiment(), tables=lambda config, arrays: {"Samples": f"| x |\n|---|\n| {arrays['x'][1]:g} |"})
    monkeypatch.setattr(paper_repro, "EXPERIMENTS", {"ok": exp})
    assert paper_repro.main(["--out", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "## Samples (ok)\n\n| x |\n|---|\n| 1 |" in report
    assert report.index("## Samples (ok)") < report.index("## Experiments")


def test_seeds_must_allow_an_interval(capsys):
    with pytest.raises(SystemExit):
        paper_repro.parse_args(["--seeds", "1"])
    assert "--seeds: allowed 2 to 1000 (at least 2 for an interval over seeds)" in capsys.readouterr().err


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


def _drawing_experiment(name="fresh"):
    """A computed experiment with one figure."""
    def figures(config, arrays):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.plot(arrays["x"])
        return {f"{name}_line": fig}

    exp = _ok_experiment(name)
    return Experiment(exp.name, exp.description, exp.config, exp.run, exp.claims, figures=figures)


@pytest.mark.parametrize("full", ["cache", "everywhere"])
def test_a_disk_that_fills_during_the_run_loses_no_computed_result(tmp_path, monkeypatch, capsys, full):
    """The up-front check passes, then every write under ``full`` fails with ENOSPC: the computed
    results still give their claims, the console and the report say what was not saved, the
    exit status is 1, earlier files stay, and no temporary file is left."""
    import errno

    import matplotlib.pyplot as plt

    from synthetic import store

    monkeypatch.setattr(paper_repro, "EXPERIMENTS", {"ok": _ok_experiment()})
    assert paper_repro.main(["--out", str(tmp_path)]) == 0
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "jax" not in p.parts}
    capsys.readouterr()

    checked, real_write_temp, real_check = [], store._write_temp, paper_repro.output_problem

    def check_then_fill(out):
        problem = real_check(out)
        checked.append(True)  # from here on the disk is full
        return problem

    def full_disk(path, data):
        if checked and (full == "everywhere" or "cache" in Path(path).parts):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_temp(path, data)

    monkeypatch.setattr(paper_repro, "output_problem", check_then_fill)
    monkeypatch.setattr(store, "_write_temp", full_disk)
    monkeypatch.setattr(paper_repro, "EXPERIMENTS", {"ok": _ok_experiment(), "fresh": _drawing_experiment()})
    figures_open = len(plt.get_fignums())
    assert paper_repro.main(["--out", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "PASS         paper       fresh.sum" in out            # the computed result gave its claim
    assert "not saved: fresh: results not cached: OSError: [Errno 28] No space left on device" in err
    assert len(plt.get_fignums()) == figures_open                  # the figure was closed, written or not
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "jax" not in p.parts}
    assert not [p for p in after if p.name.startswith(".") and ".tmp" in p.name]
    if full == "everywhere":
        assert "could not write claims.json and report.md (OSError: [Errno 28] No space left on device)" in err
        assert "not saved: fresh: figure fresh_line not written" in err
        assert after == before                                     # the previous run's files, untouched
    else:
        claims = json.loads((tmp_path / "claims.json").read_text())
        assert [c["id"] for c in claims] == ["ok.sum", "fresh.sum"]
        report = (tmp_path / "report.md").read_text()
        assert "**Not saved in: fresh**" in report and "not saved: results not cached: OSError" in report
        assert (tmp_path / "figures" / "fresh_line.png").is_file()
        assert {p: b for p, b in after.items() if "cache" in p.parts} == {p: b for p, b in before.items() if "cache" in p.parts}


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


def test_list_prints_each_experiment_its_world_and_description(capsys):
    from synthetic.registry import WORLD_ORDER, experiments

    assert paper_repro.EXPERIMENTS == experiments()  # the command runs the registry's experiments
    assert paper_repro.main(["--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(None, 2) for line in lines] == [[e.name, e.world, e.description] for e in experiments().values()]
    worlds = [line.split()[1] for line in lines]
    assert worlds == sorted(worlds, key=WORLD_ORDER.index)  # in run order: the worlds' order
    assert lines[0].split()[:2] == ["symbolic", "symbolic"] and "fig4 " in "\n".join(lines)


def test_report_counts_and_headline():
    from synthetic.report import KIND_TITLES, headline, verdict_counts

    claims = [Claim(i, "-", "s", "m", v, kind="paper") for i, v in (("a", True), ("b", False), ("c", "inconclusive"))]
    claims.append(Claim("d", "-", "s", "m", True, kind="identity"))
    assert verdict_counts(claims) == "2 of 4 pass (1 fail, 1 inconclusive)"
    assert verdict_counts(claims[:1]) == "1 of 1 pass"
    assert headline(claims) == ["Paper claims reproduced: 1 of 3 (1 fail, 1 inconclusive)", "Identities: 1 of 1 pass"]
    assert set(KIND_TITLES) == {"paper", "extension", "consistency", "identity"}


def test_time_left_scales_the_reference_times_by_this_machines_pace(tmp_path):
    def timed(name, seconds):
        return dataclasses.replace(_ok_experiment(name), reference_seconds=seconds)

    a, b, c = timed("a", 10.0), timed("b", 100.0), _ok_experiment("c")  # c has no reference time
    left = paper_repro.TimeLeft(_configs(a, b, c), quick=False, out=tmp_path)
    assert left.line() == "about 1.8 min left (a, b; at the reference times)"  # 110 s
    left.done("a", 20.0, cached=False)  # this machine takes twice as long
    assert left.pace == 2.0
    assert left.line() == "about 3.3 min left (b; at 2x the reference times so far)"
    left.done("b", 1.0, cached=True)  # a cached result says nothing about the pace
    assert left.pace == 2.0 and left.line() is None
    assert paper_repro.TimeLeft(_configs(a, b), quick=True, out=tmp_path).line() is None


def test_time_left_skips_experiments_already_cached(tmp_path, monkeypatch):
    exp = dataclasses.replace(_ok_experiment(), reference_seconds=50.0)
    assert paper_repro.TimeLeft(_configs(exp), quick=False, out=tmp_path).line() is not None
    monkeypatch.setattr(paper_repro, "EXPERIMENTS", {"ok": exp})
    paper_repro.main(["--out", str(tmp_path)])  # quick=False: the cache now holds the full config
    assert paper_repro.TimeLeft(_configs(exp), quick=False, out=tmp_path).line() is None


def _must_not_run():
    def run(config, progress, folder):
        raise AssertionError("the experiment ran although the output place is unusable")

    return Experiment("never", "must not run", config=lambda q: {}, run=run, claims=lambda c, a: [])


@pytest.mark.parametrize("make_out, message", [
    (lambda tmp: tmp / "a_file", "exists and is not a folder"),
    (lambda tmp: tmp / "a_file" / "results", "cannot write to"),
])
def test_unusable_output_place_is_refused_before_any_work(tmp_path, monkeypatch, capsys, make_out, message):
    (tmp_path / "a_file").write_text("not a folder")
    monkeypatch.setattr(paper_repro, "EXPERIMENTS", {"never": _must_not_run()})
    assert paper_repro.main(["--out", str(make_out(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and message in err and len(err.strip().splitlines()) == 1


def test_only_refuses_an_empty_name_and_runs_each_experiment_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(paper_repro, "EXPERIMENTS", {"ok": _ok_experiment(), "s": _seeded_experiment()})
    for bad in ([""], ["ok,"], ["ok", " "]):
        with pytest.raises(SystemExit):
            paper_repro.parse_args([a for b in bad for a in ("--only", b)])
        assert "--only: empty experiment name" in capsys.readouterr().err
    assert paper_repro.parse_args(["--only", "s,ok", "--only", "ok,s"]).names == ["s", "ok"]
    assert paper_repro.main(["--only", "ok,ok", "--only", "ok", "--out", str(tmp_path)]) == 0
    assert [c["id"] for c in json.loads((tmp_path / "claims.json").read_text())] == ["ok.sum"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_files_get_the_users_umask(tmp_path, monkeypatch, umask):
    monkeypatch.setattr(paper_repro, "EXPERIMENTS", {"ok": _ok_experiment()})
    old = os.umask(umask)
    try:
        assert paper_repro.main(["--out", str(tmp_path)]) == 0
    finally:
        os.umask(old)
    files = [tmp_path / "report.md", tmp_path / "claims.json", *(tmp_path / "cache").iterdir()]
    assert {stat.S_IMODE(p.stat().st_mode) for p in files if p.is_file()} == {0o666 & ~umask}


def test_ctrl_c_stops_at_once_with_130_and_leaves_the_output_folder_as_it_was(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "claims.json").write_text("[] earlier results\n")
    with subprocess.Popen([sys.executable, str(ROOT / "paper_repro.py"), "--quick", "--only", "thm2", "--out",
                           str(out)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        for line in proc.stderr:  # wait until the experiment is computing
            if "thm2: running" in line:
                break
        time.sleep(1.0)
        start = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == 130
        assert time.perf_counter() - start < 5
    assert "interrupted (Ctrl-C)" in rest and "Traceback" not in rest
    assert (out / "claims.json").read_text() == "[] earlier results\n"
    assert not list(out.rglob("*.tmp"))


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "1000000000"], "--seeds: allowed 2 to 1000"),
    (["--out", ""], "--out: an empty name"),
    (["--out", "  "], "--out: an empty name"),
])
def test_absurd_arguments_are_refused_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        paper_repro.parse_args(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_an_unusable_out_folder_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    from synthetic import store

    assert "File name too long" in paper_repro.output_problem(tmp_path / ("a" * 300))
    # a full disk: the probe writes real bytes and syncs them, so the check can fail there
    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "fsync", no_space)
    problem = paper_repro.output_problem(tmp_path / "full")
    assert problem == f"cannot write to {tmp_path / 'full'}: No space left on device"
    assert not any(p.name.startswith(".write-check.") for p in (tmp_path / "full").iterdir())  # no probe left


@pytest.mark.parametrize("value, ok", [("1", True), ("16", True), ("0", False), ("-1", False), ("abc", False),
                                        ("1.5", False), ("1000", False)])
def test_npo_devices_out_of_range_is_refused_with_the_range(value, ok, monkeypatch):
    from synthetic import devices

    monkeypatch.setattr(devices, "cpu_cores", lambda: 2)
    monkeypatch.setenv(devices.ENV, value)
    if ok:
        assert devices.requested_devices() == int(value)
    else:
        with pytest.raises(ValueError, match=r"NPO_DEVICES must be a whole number from 1 to 16"):
            devices.requested_devices()


def test_a_closed_pipe_and_an_ascii_console_end_quietly(tmp_path):
    script = Path(paper_repro.__file__)
    env = {**os.environ, "NPO_DEVICES": "1"}
    # the reader goes away at once (as `| head -0` does): no traceback, status 1
    proc = subprocess.Popen([sys.executable, str(script), "--quick", "--only", "symbolic", "--out", str(tmp_path / "a")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1 and "Traceback" not in err
    # a console that cannot print the output folder's name: escapes, and the run succeeds
    out = tmp_path / "é"
    done = subprocess.run([sys.executable, str(script), "--quick", "--only", "symbolic", "--out", str(out)],
                          capture_output=True, env={**env, "PYTHONIOENCODING": "ascii"}, timeout=120)
    assert done.returncode == 0 and b"\\xe9" in done.stdout and (out / "report.md").is_file()


def test_a_folder_where_claims_json_goes_is_refused_before_any_work(tmp_path):
    (tmp_path / "claims.json").mkdir()
    assert paper_repro.output_problem(tmp_path) == f"{tmp_path / 'claims.json'} is a folder; the run writes its results there as a file"
