"""Wall time of the section-4 experiments through the one command, cold cache, compile included.

    python benchmarks/bench_section4.py [--repeats 3] [--fig4-only] [--official CLONE [--official-python PY]]

Runs, each in a fresh process with an empty output folder:
  * ``paper_repro.py --only fig4``  (both alphas, reference/retrained fits included; goal <= 30 s)
  * ``paper_repro.py --quick --only symbolic,fig4,fig9,fig3,gridsearch``
                                    (section 4 and the theory checks in quick mode; goal <= 20 s)
  * ``paper_repro.py --quick``      (every experiment in quick mode, for reference)
and prints the median, min and max over the repeats, and the per-stage times that the
experiment itself records (fit vs unlearning). Numbers depend on what else the machine runs.

With ``--official CLONE`` (a clone of the paper's code, github.com/licong-lin/negative-preference-optimization,
run by ``--official-python``, an interpreter with its requirements: torch, scikit-learn, scipy,
matplotlib, seaborn, pandas, tqdm), the paper's own figure-4 scripts run side by side, in the same
session: ``synthetic/finetune.py`` (the reference and retrained fits, 20000 steps) and then
``synthetic/unlearn.py`` (the six methods, 2000 steps), for one seed at alpha 1 and one at
alpha 0, copied to a temporary folder with their seed list and alpha set (nothing else is
changed). Figure 4 is 5 seeds x 2 alphas of that work; the bench prints the time per seed and
alpha of both codes and their ratio.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
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


OFFICIAL_SCRIPTS = ("finetune.py", "unlearn.py", "mymodel.py", "dist.py")


def _set_line(source: str, name: str, value: str, script: str) -> str:
    """``source`` with its top-level ``name = ...`` line set to ``name = value``."""
    pattern = re.compile(rf"^{name} = .*$", re.MULTILINE)
    if len(pattern.findall(source)) != 1:
        raise SystemExit(f"--official: {script} has no single top-level '{name} = ...' line; is it the paper's code?")
    return pattern.sub(f"{name} = {value}", source)


def official_seconds(clone: Path, python: str, alpha: int) -> float:
    """Wall seconds of the paper's code for one seed at ``alpha``: its fits, then its unlearning."""
    src = clone / "synthetic"
    missing = [f for f in OFFICIAL_SCRIPTS if not (src / f).is_file()]
    if missing:
        raise SystemExit(f"--official: {src} lacks {', '.join(missing)}; pass a clone of the paper's code")
    with tempfile.TemporaryDirectory(prefix="npo-official-") as tmp:
        for f in OFFICIAL_SCRIPTS:
            shutil.copy(src / f, tmp)
        for script in ("finetune.py", "unlearn.py"):
            path = Path(tmp) / script
            text = _set_line(path.read_text(), "seed_list", "[1000]", script)
            path.write_text(_set_line(text, "alpha", str(alpha), script))
        env = {**os.environ, "MPLBACKEND": "Agg"}
        t0 = time.perf_counter()
        for script in ("finetune.py", "unlearn.py"):
            proc = subprocess.run([python, script], cwd=tmp, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"--official: {script} failed:\n{proc.stderr[-3000:]}")
        return time.perf_counter() - t0


def side_by_side(clone: Path, python: str, toolkit_fig4: list[float]) -> None:
    """Print the paper's code and the toolkit per seed and alpha of figure 4, and the ratio."""
    official = {alpha: official_seconds(clone, python, alpha) for alpha in (1, 0)}
    per_official = statistics.mean(official.values())
    per_toolkit = statistics.median(toolkit_fig4) / 10  # figure 4: 5 seeds x 2 alphas
    print(f"the paper's code, one seed: alpha 1 {official[1]:.1f} s, alpha 0 {official[0]:.1f} s "
          f"(figure 4, 5 seeds x 2 alphas: about {10 * per_official:.0f} s)")
    print(f"toolkit --only fig4, per seed and alpha: {per_toolkit:.2f} s (its median {statistics.median(toolkit_fig4):.1f} s / 10)")
    print(f"toolkit speed-up over the paper's code: {per_official / per_toolkit:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fig4-only", action="store_true", help="time fig4 alone (not the quick runs)")
    parser.add_argument("--official", type=Path, help="a clone of the paper's code: time its figure-4 scripts beside fig4")
    parser.add_argument("--official-python", default=sys.executable, help="the interpreter that has its requirements")
    args = parser.parse_args()
    cases = {
        "fig4 (full, both alphas)": ["--only", "fig4"],
        "quick (symbolic + section 4)": ["--quick", "--only", "symbolic,fig4,fig9,fig3,gridsearch"],
        "quick (all experiments)": ["--quick"],
    }
    if args.fig4_only:
        cases = dict(list(cases.items())[:1])
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
            fig4_times = times
            for label, key in (("fit", "fitted"), ("unlearn", "unlearned")):
                per_run = [sum(float(s) for k, s in run if k == key) for run in stages]
                print(f"    {label:8s} median {statistics.median(per_run):6.1f} s (both alphas, compile included)")
            if args.official is not None:
                side_by_side(args.official, args.official_python, fig4_times)


if __name__ == "__main__":
    main()
