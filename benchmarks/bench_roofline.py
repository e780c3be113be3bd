"""The machine's limits, and where figure 4's stages stand against them.

    python benchmarks/bench_roofline.py [--repeats 5]

Measures in one process: the float64 and float32 matmul peak (a square ``jnp.dot``), the
read bandwidth from memory (a sum over 256 MB) and from cache (repeated sums over 2.5 MB,
the size of one seed's working set), and then,
timed after compilation, figure 4's two stages at alpha = 1 with the paper's sizes:

* **fit**: reference + retrained model of 5 seeds, 20000 full-batch GD steps each. FLOPs
  counted analytically: per seed and step, two products ``(2 x F) @ (F x n)`` and
  ``(2 x n) @ (n x F)`` (``n = 1200`` training rows, ``F = 128`` features), 2 FLOPs per
  multiply-add; bytes: the features read twice per step (``X`` and its transposed copy).
* **unlearn**: the 6 methods of figure 4 x 5 seeds, 2000 GD steps, metrics every 25 steps.
  FLOPs per run and step: the forward and backward product over the 1200 training rows
  (``2 x 2 n F``); per record, the forward product over the 2000 evaluation rows for the
  model and the reference and retrained models' laws (``3 x 2 x 2000 F``).

Each stage prints its achieved GFLOP/s and the bytes it touches per second, and the roofline
limit at its arithmetic intensity, ``min(float64 peak, FLOPs per byte x cache bandwidth)`` (one seed's
data stays in cache while it runs), with the share of that limit it reaches. Medians over repeats (the machine may be shared;
spreads are printed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from _measure import matmul_gflops, timed  # noqa: E402


def bandwidth(repeats: int, megabytes: int = 256) -> list[float]:
    """Read bandwidth: a sum over an array far larger than the caches."""
    x = jnp.ones(megabytes * 2**20 // 8, jnp.float64)
    read = jax.jit(jnp.sum)
    return [x.size * 8 / t / 1e9 for t in timed(lambda: read(x), repeats)]


def cache_bandwidth(repeats: int, megabytes: float = 2.5, passes: int = 200) -> list[float]:
    """Read bandwidth over a working set the size of one seed's features (it stays in cache):
    ``passes`` sums of the same array in one program, each scaled by the previous result so
    that none can be hoisted out of the loop."""
    x = jnp.ones(int(megabytes * 2**20) // 8, jnp.float64)

    @jax.jit
    def read(v):
        return jax.lax.fori_loop(0, passes, lambda i, c: jnp.sum(v * c) * 1e-9 + 1.0, jnp.float64(1.0))

    return [passes * x.size * 8 / t / 1e9 for t in timed(lambda: read(x), repeats)]


def describe(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f} (range {min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from synthetic.experiments.section4 import run as s4
    from synthetic.experiments.section4.config import fig4_config
    from synthetic.data.gaussian import DataConfig
    from synthetic.models.logistic import RandomFeaturesConfig
    from synthetic.pipeline import unlearn_binary
    from synthetic import engine
    from theory.methods import get_method

    print(f"devices: {jax.devices()}")
    with jax.enable_x64(True):
        f64 = matmul_gflops(jnp.float64, args.repeats, 1024)
        f32 = matmul_gflops(jnp.float32, args.repeats, 1024)
        rd = bandwidth(args.repeats)
        rc = cache_bandwidth(args.repeats)
        print(f"float64 matmul peak (1024^3 jnp.dot), GFLOP/s: {describe(f64)}")
        print(f"float32 matmul peak (1024^3 jnp.dot), GFLOP/s: {describe(f32)}")
        print(f"read bandwidth, GB/s: memory (256 MB) {describe(rd)}; cache (2.5 MB, one seed's features) {describe(rc)}")
        # One seed's working set (features 1.2 MB, their transposed copy or the evaluation
        # rows) stays in cache while that seed runs: the cache bandwidth is the memory limit.
        peak, bw = statistics.median(f64), statistics.median(rc)

        config = fig4_config(1.0)
        data = DataConfig(**config["data"])
        features = RandomFeaturesConfig(**config["features"])
        seeds = tuple(range(config["first_seed"], config["first_seed"] + config["seeds"]))
        fit = config["fit"]
        keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
        laws = jnp.asarray([data.alpha, data.shift, data.theta_scale], jnp.float64)
        shapes = DataConfig(**{**config["data"], "alpha": 0.0, "shift": 0.0, "theta_scale": 0.0})

        def fit_stage():
            return s4._prepare_and_fit(keys, laws, fit["learning_rate"], shapes=shapes, features_config=features,
                                       solver=fit["solver"], steps=fit["steps"])

        n, n_feat, S, steps = data.n_forget + data.n_retain, features.n_features, len(seeds), fit["steps"]
        flops = S * steps * 2 * (2 * 2 * n * n_feat)
        nbytes = S * steps * 2 * n * n_feat * 8
        report("fig4 fit (alpha 1, 5 seeds x 2 models x 20000 steps)", timed(fit_stage, max(2, args.repeats // 2)),
               flops, nbytes, peak, bw)

        problems, ref, retr = fit_stage()
        methods = [get_method(s["method"], beta=s["beta"]) for s in config["settings"]]
        lrs = [s["learning_rate"] for s in config["settings"]]
        schedule = engine.Schedule.every(config["eval_every"], config["steps"])

        def unlearn_stage():
            return unlearn_binary(problems, ref.theta, retr.theta, methods, lrs, schedule=schedule)["loss"]

        runs, u_steps, records = S * len(methods), config["steps"], len(schedule.steps)
        n_eval = data.n_eval_forget + data.n_eval_retain
        flops = runs * (u_steps * 2 * 2 * n * n_feat + records * 3 * 2 * n_eval * n_feat)
        nbytes = S * (u_steps * 2 * n * n_feat + records * n_eval * n_feat) * 8  # settings share a seed's features
        report(f"fig4 unlearn (alpha 1, {len(methods)} methods x 5 seeds x {u_steps} steps)",
               timed(unlearn_stage, max(2, args.repeats // 2)), flops, nbytes, peak, bw)


def report(name: str, times: list[float], flops: float, nbytes: float, peak: float, bw: float) -> None:
    """The roofline: at ``flops / nbytes`` FLOPs per byte the stage cannot run faster than
    ``min(peak, intensity x bandwidth)``; print the achieved share of that limit."""
    t = statistics.median(times)
    gflops, gbs = flops / t / 1e9, nbytes / t / 1e9
    intensity = flops / nbytes
    limit = min(peak, intensity * bw)
    binding = "compute" if peak <= intensity * bw else "memory"
    print(json.dumps({"stage": name, "seconds": round(t, 3), "range": [round(min(times), 3), round(max(times), 3)],
                      "gflops": round(gflops, 2), "gbytes_per_s": round(gbs, 2), "flops_per_byte": round(intensity, 2),
                      "limit_gflops": round(limit, 2), "binding": binding, "share_of_limit": round(gflops / limit, 2)}))
    print(f"  {gflops:6.1f} GFLOP/s, {gbs:5.1f} GB/s touched, {intensity:.2f} FLOP/byte: {binding}-bound, "
          f"limit {limit:.1f} GFLOP/s, achieved {gflops / limit:.0%} of it")


if __name__ == "__main__":
    main()
