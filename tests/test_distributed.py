"""Distributed runs (jax.distributed over local processes, gloo on the CPU): the same numbers as
one process, only process 0 writes, a dead process stops the others, and the arguments that
start a run are checked.

The runs are real: ``tests/distributed_worker.py`` started by ``python -m synthetic.launch -n 2``
(two processes of one device each) against the same script alone with two devices, so the
global device count, and with it every sharded program, is the same.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from synthetic import distributed, launch

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "distributed_worker.py"
TIMEOUT = 300


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPO_")}  # the suite's compile flags and cache kept
    return {**env, "PYTHONPATH": str(ROOT), **extra}


# --------------------------------------------------------------------------- the arguments


@pytest.mark.parametrize("kwargs, environ, message", [
    ({"coordinator": "h:1"}, {}, r"needs the coordinator, the number of processes and the process id together; "
                                 r"missing --num-processes \(or NPO_NUM_PROCESSES\), --process-id"),
    ({"coordinator": "host", "num_processes": 2, "process_id": 0}, {},
     r"^--coordinator must be host:port with a port from 1 to 65535, e\.g\. .* got 'host'"),
    ({"coordinator": "h:70000", "num_processes": 2, "process_id": 0}, {}, r"^--coordinator must be host:port"),
    ({"coordinator": "h:1", "num_processes": 0, "process_id": 0}, {},
     r"^--num-processes must be a whole number from 1 to 4096, got 0"),
    ({"coordinator": "h:1", "num_processes": 2, "process_id": 2}, {},
     r"^--process-id must be a whole number from 0 to 1, got 2"),
    ({}, {"NPO_COORDINATOR": "h:1", "NPO_NUM_PROCESSES": "two", "NPO_PROCESS_ID": "0"},
     r"^NPO_NUM_PROCESSES must be a whole number from 1 to 4096, got 'two'"),
])
def test_a_bad_cluster_is_refused_naming_the_flag_or_variable(kwargs, environ, message):
    with pytest.raises(ValueError) as info:
        distributed.requested(**kwargs, environ=environ)
    assert re.search(message, str(info.value)), str(info.value)


def test_the_cluster_comes_from_flags_then_the_environment_and_nothing_asks_for_none():
    env = {"NPO_COORDINATOR": "10.0.0.1:1234", "NPO_NUM_PROCESSES": "4", "NPO_PROCESS_ID": "3"}
    assert distributed.requested(environ=env) == distributed.Cluster("10.0.0.1:1234", 4, 3)
    assert distributed.requested(process_id=1, environ=env) == distributed.Cluster("10.0.0.1:1234", 4, 1)
    assert distributed.requested(environ={}) is None                   # a single-process run
    assert distributed.requested(auto=True, environ={}).auto            # JAX finds the cluster (SLURM, MPI)


def test_paper_repro_refuses_a_bad_cluster_before_any_work(capsys):
    import paper_repro

    with pytest.raises(SystemExit) as info:
        paper_repro.parse_args(["--coordinator", "nohost", "--num-processes", "2", "--process-id", "0"])
    assert info.value.code == 2
    assert "error: --coordinator must be host:port" in capsys.readouterr().err


def test_the_launcher_refuses_bad_arguments_and_shares_the_cores():
    with pytest.raises(ValueError, match=r"^n must be a whole number from 1 to 4096, got 0"):
        launch.launch(0, ["x.py"])
    with pytest.raises(ValueError, match=r"^command must name a script"):
        launch.launch(2, [])
    envs = launch._environments(2, 1234, base={"PATH": "/bin"})
    assert [e["NPO_PROCESS_ID"] for e in envs] == ["0", "1"]
    assert {e["NPO_COORDINATOR"] for e in envs} == {"127.0.0.1:1234"}
    assert {e["NPO_DEVICES"] for e in envs} == {str(max(1, launch.cpu_cores() // 2))}
    assert launch._environments(2, 1234, base={"NPO_DEVICES": "3"})[1]["NPO_DEVICES"] == "3"  # the user's choice
    # the command's own flags, -m included, are never taken for the launcher's
    assert launch.split_arguments(["-n", "2", "-m", "pkg.mod", "-n", "5"]) == (["-n", "2"], ["-m", "pkg.mod", "-n", "5"])
    assert launch.split_arguments(["-n2", "--port=9", "paper_repro.py", "--quick"]) == (
        ["-n2", "--port=9"], ["paper_repro.py", "--quick"])


# --------------------------------------------------------------------------- real runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The worker as two joined processes and alone on two devices, started together."""
    base = tmp_path_factory.mktemp("distributed")
    two = subprocess.Popen([sys.executable, "-m", "synthetic.launch", "-n", "2", str(WORKER), "grids", str(base / "two")],
                           cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    one = subprocess.Popen([sys.executable, str(WORKER), "grids", str(base / "one")], cwd=ROOT,
                           env=_env(NPO_DEVICES="2"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    logs = [p.communicate(timeout=TIMEOUT)[0].decode(errors="replace") for p in (two, one)]
    for p, log in zip((two, one), logs):
        assert p.returncode == 0, log[-3000:]
    return base, logs[0]


def test_two_processes_compute_what_one_process_computes(runs):
    base, _ = runs
    two, one = np.load(base / "two" / "grids.npz"), np.load(base / "one" / "grids.npz")
    assert sorted(two.files) == sorted(one.files)
    for name in one.files:
        # bitwise: the float64 section-4 grid, and the float32 transformer grid too (same global
        # device count, so the same programs; the documented tolerance for float32 is 1e-6)
        numbers = one[name].dtype.kind in "fc"
        assert two[name].dtype == one[name].dtype and np.array_equal(two[name], one[name], equal_nan=numbers), name
    assert two["section4/forget_distance"].shape == (3, 6, 3)           # 3 seeds over 2 devices: padded, cut
    assert np.isfinite(two["transformer/forget_logp"]).all()
    assert bool(two["model/fitted"]) and two["model/losses"].tolist() == [0.0, 1.0, 2.0]  # process 0's fit, sent
    claims_two = json.loads((base / "two" / "p0" / "claims.json").read_text())
    claims_one = json.loads((base / "one" / "p0" / "claims.json").read_text())
    assert claims_two == claims_one and "mean final forget log-prob" in claims_two[0]["measured"]


def test_only_process_0_writes(runs):
    base, log = runs
    assert not (base / "two" / "p1").exists()                           # process 1 was given its own --out
    assert {p.name for p in (base / "two" / "p0").iterdir()} >= {"claims.json", "report.md", "cache"}
    assert "in 2 processes (1 here)" in log                            # the devices line says how it ran
    assert not re.search(r"^\[1\] \[ *[0-9.]+s\]", log, re.M)           # process 1 printed no progress lines


def test_a_process_that_dies_stops_the_others():
    # through the launcher: it stops the others as soon as one fails, with that one's status
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "synthetic.launch", "-n", "2", str(WORKER), "die"], cwd=ROOT,
                          env=_env(), capture_output=True, timeout=TIMEOUT)
    assert done.returncode == 3, done.stdout.decode(errors="replace")[-2000:]
    # without it (a cluster's scheduler starts the processes): JAX's own error stops process 0
    envs = launch._environments(2, launch.free_port(), base=_env())
    procs = [subprocess.Popen([sys.executable, str(WORKER), "die"], cwd=ROOT, env=e, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for e in envs]
    codes = [p.wait(timeout=TIMEOUT) for p in procs]
    assert codes[1] == 3 and codes[0] != 0, codes
    assert time.perf_counter() - t0 < 120
