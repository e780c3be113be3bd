"""The cost of a distributed run on one machine: N processes x 1 device against 1 process x N devices.

    python benchmarks/bench_distributed.py [--only fig4,fig3] [-n 2] [--quick] [--repeats 1]

Runs ``python paper_repro.py --only ...`` with ``NPO_DEVICES=N`` and ``python -m synthetic.launch
-n N paper_repro.py --only ...`` (one device per process), each cold into a fresh output folder,
alternating when repeated, and prints the wall times, their ratio (medians), each command's
peak resident memory (``rusage`` of the largest process) and whether the two ``claims.json`` are
the same bytes. The same global device count means the same sharded programs, so the numbers
should be equal; the ratio is what the second process and the gloo transfers cost. The
float32 matmul peak is printed first, to scale the times to another machine. Nothing here is a
test: it prints numbers (``docs/distributed.md`` quotes them).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _measure import matmul_gflops  # noqa: E402


def run(command: list[str], env: dict) -> tuple[float, float, int]:
    """``(wall seconds, peak MB of the largest child so far, exit status)`` of ``command``."""
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, peak, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="fig4,fig3", help="experiments, as paper_repro.py --only takes them")
    parser.add_argument("-n", type=int, default=2, help="processes (and devices of the one-process run)")
    parser.add_argument("--quick", action="store_true", help="paper_repro.py --quick")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    import jax.numpy as jnp

    print(f"float32 matmul peak: {statistics.median(matmul_gflops(jnp.float32, 5, 1024)):.0f} GFLOP/s")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPO_")}
    extra = ["--only", args.only] + (["--quick"] if args.quick else [])
    times = {"one": [], "many": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for kind in ("one", "many"):
                out = Path(tmp) / f"{kind}{r}"
                if kind == "one":
                    cmd = [sys.executable, "paper_repro.py", *extra, "--out", str(out)]
                    seconds, peak, status = run(cmd, {**env, "NPO_DEVICES": str(args.n)})
                else:
                    cmd = [sys.executable, "-m", "synthetic.launch", "-n", str(args.n), "paper_repro.py", *extra,
                           "--out", str(out)]
                    seconds, peak, status = run(cmd, {**env, "NPO_DEVICES": "1"})
                times[kind].append(seconds)
                print(f"{kind:4s} run {r}: {seconds:6.1f} s, exit {status}, largest process so far {peak:.0f} MB")
        same = [(Path(tmp) / f"one{r}" / "claims.json").read_bytes() == (Path(tmp) / f"many{r}" / "claims.json").read_bytes()
                for r in range(args.repeats)]
    one, many = statistics.median(times["one"]), statistics.median(times["many"])
    print(f"\n--only {args.only}{' --quick' if args.quick else ''}: 1 process x {args.n} devices {one:.1f} s, "
          f"{args.n} processes x 1 device {many:.1f} s: ratio {many / one:.2f}x (medians of {args.repeats})")
    print(f"claims.json identical: {all(same)} ({sum(same)} of {len(same)} pairs)")


if __name__ == "__main__":
    main()
