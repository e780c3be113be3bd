"""Wall time of Theorem 2's gradient descent: 10^6 steps, GA + NPO at 4 betas, one engine call.

    python benchmarks/bench_thm2.py [--steps 1000000] [--repeats 3]

The call is :func:`synthetic.worlds.thm2.run.gd_divergence` on the ``thm2`` experiment's
orthogonal forget set (``n_f = 32``, ``d = 64``, ``eta = 1``): five runs in one jitted,
vmapped loop of the engine, parameter space and appendix A.2's b-recursion advanced
together. Prints

  * the first call in this process, compile included (the number a user waits for),
  * the later calls, which reuse the compiled program (median, min, max over the repeats),
    and the time per step they imply.

Numbers depend on what else the machine runs; medians damp that.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402

from synthetic.devices import use_cpu_cores  # noqa: E402

use_cpu_cores()  # before JAX starts: one device per core, as paper_repro.py runs the experiments

from synthetic.worlds.thm2.data import make_forget_set  # noqa: E402
from synthetic.worlds.thm2.run import gd_divergence, thm2_methods  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10**6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    fs = make_forget_set(jax.random.key(0), n_f=32, d=64)
    methods = thm2_methods([0.1, 0.5, 1.0, 2.0])
    t0 = time.perf_counter()
    gd_divergence(fs, methods, eta=1.0, steps=args.steps)
    first_call = time.perf_counter() - t0
    run_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        gd_divergence(fs, methods, eta=1.0, steps=args.steps)
        run_times.append(time.perf_counter() - t0)

    med = statistics.median(run_times)
    print(f"Theorem 2 GD: {args.steps:.0e} steps x {len(methods)} runs (GA + NPO at 4 betas), "
          f"n_f = {fs.n_f}, d = {fs.d}, both implementations, one engine call")
    print(f"  first call, compile included: {first_call:6.2f} s")
    print(f"  later calls (compiled)      median {med:6.2f} s  (min {min(run_times):.2f}, max {max(run_times):.2f}, "
          f"{med / args.steps * 1e6:.2f} us/step, n={args.repeats})")


if __name__ == "__main__":
    main()
