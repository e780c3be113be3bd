"""Each experiment's time and peak memory against the budgets a 2-core laptop can live with.

    python benchmarks/bench_budget.py [--quick] [--only NAME ...] [--warm]

Runs ``paper_repro.py --only NAME`` for every experiment (or those named), each in a fresh
process with an empty output folder, one after the other, and prints per experiment its wall
time, the time ``paper_repro.py`` logged for it and the process's peak resident memory (its
``rusage``: the whole process, imports, claims and figures included), beside the budgets:

* every experiment at most 2 GB of resident memory;
* the experiments outside the TOFU world together at most 8 minutes, ``markov`` at most 4;
* the TOFU world (``tofu_mini_models``, ``tofu_mini``, ``tofu_mini_ablation``) at most 25 minutes.

With ``--warm`` each experiment runs a second time into a second empty output folder that
shares the first one's compiled programs (JAX's persistent compilation cache): the warm column
is what a rerun costs once nothing is cached but the compiled programs. The machine's float32
matmul peak is printed first (as ``bench_roofline.py`` measures it), so that the times can be
scaled to another machine. Nothing here is a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _measure import matmul_gflops  # noqa: E402
from synthetic.compile_cache import environment  # noqa: E402

MEMORY_MB = 2000.0
TOFU = ("tofu_mini_models", "tofu_mini", "tofu_mini_ablation")
BUDGETS_S = {"markov": 240.0, "outside the TOFU world": 480.0, "the TOFU world": 1500.0}


def _float32_peak() -> float:
    """GFLOP/s of a 1024^3 float32 product, the median of 5 (as bench_roofline.py)."""
    import jax.numpy as jnp

    return statistics.median(matmul_gflops(jnp.float32, 5, 1024))


def run_one(name: str, out: Path, quick: bool, env: dict) -> dict:
    """Run one experiment in a fresh process; its wall seconds, logged seconds and peak MB."""
    cmd = [sys.executable, str(ROOT / "paper_repro.py"), "--only", name, "--out", str(out)] + (["--quick"] if quick else [])
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own resource usage, its peak memory included
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    logged = re.search(rf"{re.escape(name)}: done in ([\d.]+)s", log)
    return {"wall": wall, "seconds": float(logged.group(1)) if logged else float("nan"),
            "peak_mb": usage.ru_maxrss / 1024, "ok": proc.returncode == 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the shrunk experiments")
    parser.add_argument("--only", action="append", help="only this experiment (repeatable)")
    parser.add_argument("--warm", action="store_true", help="run each twice, the second with the compiled programs kept")
    args = parser.parse_args()
    from synthetic.registry import experiments

    names = args.only or list(experiments())
    print(f"float32 matmul peak (1024^3 jnp.dot): {_float32_peak():.1f} GFLOP/s")
    print(f"{'experiment':20s} {'cold s':>8s} {'logged s':>9s} {'peak MB':>8s} {'of 2 GB':>8s}"
          + (f" {'warm s':>8s}" if args.warm else ""))
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-budget-") as tmp:
        for name in names:
            env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
            cold = run_one(name, Path(tmp) / name / "cold", args.quick, env)
            row = {"cold": cold}
            if args.warm:  # a fresh results folder, the cold run's compiled programs
                env.update(environment(Path(tmp) / name / "cold" / "cache" / "jax"))
                row["warm"] = run_one(name, Path(tmp) / name / "warm", args.quick, env)
            rows[name] = row
            flag = "" if cold["ok"] else "  (exited with an error)"
            print(f"{name:20s} {cold['wall']:8.1f} {cold['seconds']:9.1f} {cold['peak_mb']:8.0f} "
                  f"{cold['peak_mb'] / MEMORY_MB:8.0%}" + (f" {row['warm']['wall']:8.1f}" if args.warm else "") + flag,
                  flush=True)
    groups = {"markov": [n for n in names if n == "markov"],
              "outside the TOFU world": [n for n in names if n not in TOFU],
              "the TOFU world": [n for n in names if n in TOFU]}
    print()
    for group, members in groups.items():
        if not members:
            continue
        total = sum(rows[n]["cold"]["wall"] for n in members)
        budget = BUDGETS_S[group]
        warm = (f", warm {sum(rows[n]['warm']['wall'] for n in members) / 60:.1f} min" if args.warm else "")
        print(f"{group}: {total / 60:.1f} min cold{warm}, {total / budget:.0%} of its {budget / 60:.0f}-minute budget"
              + (" (the --quick experiments; the budgets are for the full ones)" if args.quick else ""))


if __name__ == "__main__":
    main()
