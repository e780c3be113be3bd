"""Wall time of the section-4 experiments through the one command, cold cache, compile included.

    python benchmarks/bench_section4.py [--repeats 3]

Runs, each in a fresh process with an empty output folder:
  * ``paper_repro.py --only fig4``  (both alphas, reference/retrained fits included; goal <= 30 s)
  * ``paper_repro.py --quick --only symbolic,fig4,fig9,fig3,gridsearch``
                                    (section 4 and the theory checks in quick mode; goal <= 20 s)
  * ``paper_repro.py --quick``      (every experiment in quick mode, for reference)
and prints the median, min and max over the repeats, and the per-stage times that the
experiment itself records (fit vs unlearning). Numbers depend on what else the machine runs.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(args: list[str]) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "paper_repro.py", *args, "--out", out], cwd=ROOT, capture_output=True, text=True
        )
        elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"paper_repro.py {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return elapsed, proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cases = {
        "fig4 (full, both alphas)": ["--only", "fig4"],
        "quick (symbolic + section 4)": ["--quick", "--only", "symbolic,fig4,fig9,fig3,gridsearch"],
        "quick (all experiments)": ["--quick"],
    }
    for name, cli in cases.items():
        times, stages = [], []
        for _ in range(args.repeats):
            t, log = timed(cli)
            times.append(t)
            stages.append(re.findall(r"(fitted|unlearned) in ([\d.]+)s", log))
        print(
            f"{name:28s} median {statistics.median(times):6.1f} s  "
            f"(min {min(times):.1f}, max {max(times):.1f}, n={len(times)})"
        )
        if cli == ["--only", "fig4"]:
            for label, key in (("fit", "fitted"), ("unlearn", "unlearned")):
                per_run = [sum(float(s) for k, s in run if k == key) for run in stages]
                print(f"    {label:8s} median {statistics.median(per_run):6.1f} s (both alphas, compile included)")


if __name__ == "__main__":
    main()
