"""The machine's limits, and where each stage of the experiments stands against them.

    python benchmarks/bench_roofline.py [--repeats 5] [--only fig4 --only thm2 ...]

Measures in one process: the float64 and float32 matmul peak (a square ``jnp.dot``), the
read bandwidth from memory (a sum over 256 MB) and from cache (repeated sums over 2.5 MB,
the size of one seed's working set), the cost of one step of a one-operation ``fori_loop``
(the loop floor), and then, timed after compilation, with the experiments' sizes:

* **fig4 fit**: reference + retrained model of 5 seeds, 20000 full-batch GD steps each. FLOPs
  counted analytically: per seed and step, two products ``(2 x F) @ (F x n)`` and
  ``(2 x n) @ (n x F)`` (``n = 1200`` training rows, ``F = 128`` features), 2 FLOPs per
  multiply-add; bytes: the features read twice per step (``X`` and its transposed copy).
* **fig4 / fig3 / gridsearch unlearn**: each grid's settings x 5 seeds at alpha = 1 (figure 3
  at 2000 of its 10000 steps, the grid search at 500 of its 2000: the per-step work is the
  same). FLOPs per run and step: the forward and backward product over the 1200 training rows
  (``2 x 2 n F``); per record, the forward product over the 2000 evaluation rows for the
  model and the reference and retrained models' laws (``3 x 2 x 2000 F``).
* **thm2**: the three forget sets x 5 methods of Theorem 2's experiment, parameter space and the
  b-recursion in lockstep, 10^5 of its 10^6 steps. Its data is a few kilobytes: neither the
  peak nor a bandwidth binds, the loop does (latency-bound); it prints the time per step beside
  the loop floor.
* **transformer training / unlearning** (float32): the markov experiment's AdamW step at batch
  128, and its unlearning grid (8 methods x 3 seeds, batch 4 + 4, metrics on 100 sequences
  every step) for 10 steps. FLOPs: 3 x forward per trained token, forward =
  :func:`synthetic.models.transformer.matmul_flops_per_token`; the limit is the float32 peak.

Each logistic stage prints its achieved GFLOP/s and the bytes it touches per second, and the
roofline limit at its arithmetic intensity, ``min(float64 peak, FLOPs per byte x cache
bandwidth x devices)`` (one seed's data stays in its core's cache while it runs), with the
share of that limit it reaches. Medians over repeats (the machine may be shared; spreads are printed).
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
import numpy as np  # noqa: E402

from synthetic.devices import use_cpu_cores  # noqa: E402

use_cpu_cores()  # before JAX starts: one device per core, as paper_repro.py runs the experiments

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


STAGES = ("fig4", "fig3", "gridsearch", "thm2", "train", "unlearn", "tofu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", action="append", choices=STAGES, help="measure only these stages (repeatable)")
    args = parser.parse_args()
    only = set(args.only or STAGES)
    print(f"devices: {jax.devices()}")
    with jax.enable_x64(True):
        f64 = matmul_gflops(jnp.float64, args.repeats, 1024)
        f32 = matmul_gflops(jnp.float32, args.repeats, 1024)
        rd = bandwidth(args.repeats)
        rc = cache_bandwidth(args.repeats)
        floor = loop_floor(args.repeats)
        print(f"float64 matmul peak (1024^3 jnp.dot), GFLOP/s: {describe(f64)}")
        print(f"float32 matmul peak (1024^3 jnp.dot), GFLOP/s: {describe(f32)}")
        print(f"read bandwidth, GB/s: memory (256 MB) {describe(rd)}; cache (2.5 MB, one seed's features) {describe(rc)}")
        print(f"loop floor, microseconds per step of a one-operation fori_loop: {describe(floor)}")
        # One seed's working set (features 1.2 MB, their transposed copy or the evaluation
        # rows) stays in cache while that seed runs: the cache bandwidth is the memory limit,
        # one core's for each device (the runs are sharded one device per core). The matmul
        # peak is already that of every core (XLA threads a large product over them).
        peak, bw = statistics.median(f64), statistics.median(rc) * jax.device_count()
        half = max(2, args.repeats // 2)
        if only & {"fig4", "fig3", "gridsearch"}:
            logistic_stages(only, half, peak, bw)
        if "thm2" in only:
            thm2_stage(half, peak, statistics.median(floor))
        # The markov experiment runs with float64 enabled (float32 parameters); so do these.
        if only & {"train", "unlearn"}:
            transformer_stages(only, half, statistics.median(f32))
    if "tofu" in only:
        tofu_stage(max(2, args.repeats // 2), statistics.median(f32))


def tofu_stage(repeats: int, peak32: float) -> None:
    """TOFU in miniature's training step (the default corpus and model of ``tofu_mini_models``):
    tokens per second and GFLOP/s against the float32 peak of this run."""
    from bench_transformer import train_step_seconds
    from synthetic.worlds.tofu_mini import lm as tofu_lm
    from synthetic.worlds.tofu_mini.config import tofu_mini_config
    from synthetic.models import transformer as tf

    cfg = tofu_mini_config()
    model = tofu_lm.model_config(tofu_lm.world_corpus(cfg), **cfg["model"])
    per_token = tf.matmul_flops_per_token(model, model.context)
    fwd = per_token["dense"] + per_token["attention"]
    batch = cfg["train"]["batch_size"]
    seconds = train_step_seconds(model, batch, model.context, 20, repeats)
    tokens = batch * model.context
    print(f"tofu_mini training: {tokens / np.median(seconds):.0f} tokens/s "
          f"(batch {batch} x {model.context} tokens, width {model.width}, {model.layers} layers)")
    report32(f"tofu_mini training (AdamW steps, batch {batch} x {model.context} tokens)", list(seconds),
             3 * fwd * tokens, peak32)


def logistic_stages(only: set, repeats: int, peak: float, bw: float) -> None:
    """Figure 4's fit and unlearning, figure 3's and the grid search's unlearning, at alpha = 1."""
    from synthetic import engine
    from synthetic.worlds.section4.data import DataConfig
    from synthetic.worlds.section4 import run as s4
    from synthetic.worlds.section4.config import fig3_config, fig4_config, gridsearch_config
    from synthetic.models.logistic import RandomFeaturesConfig
    from synthetic.worlds.section4.pipeline import unlearn_binary
    from theory.methods import get_method

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
    if "fig4" in only:
        flops = S * steps * 2 * (2 * 2 * n * n_feat)
        nbytes = S * steps * 2 * n * n_feat * 8
        report("fig4 fit (alpha 1, 5 seeds x 2 models x 20000 steps)", timed(fit_stage, repeats), flops, nbytes,
               peak, bw)
    problems, ref, retr = fit_stage()
    n_eval = data.n_eval_forget + data.n_eval_retain
    # figure 3 and the grid search at fewer steps than the experiments (their per-step work is
    # the same): 2000 of figure 3's 10000, 500 of the grid search's 2000.
    grids = {"fig4": (fig4_config(1.0), None), "fig3": (fig3_config(), 2000), "gridsearch": (gridsearch_config(), 500)}
    for name, (cfg, u_steps) in grids.items():
        if name not in only:
            continue
        u_steps = u_steps or cfg["steps"]
        methods = [get_method(s["method"], beta=s["beta"]) for s in cfg["settings"]]
        lrs = [s["learning_rate"] for s in cfg["settings"]]
        schedule = engine.Schedule.every(cfg["eval_every"], u_steps)

        def unlearn_stage():
            return unlearn_binary(problems, ref.theta, retr.theta, methods, lrs, schedule=schedule)["loss"]

        runs, records = S * len(methods), len(schedule.steps)
        # per run and step: the forward and backward product over the n training rows; per
        # record, the forward product over the evaluation rows for the model and the
        # reference and retrained models' laws
        flops = runs * (u_steps * 2 * 2 * n * n_feat + records * 3 * 2 * n_eval * n_feat)
        nbytes = S * (u_steps * 2 * n * n_feat + records * n_eval * n_feat) * 8  # settings share a seed's features
        report(f"{name} unlearn (alpha 1, {len(methods)} settings x {S} seeds x {u_steps} steps, "
               f"metrics every {cfg['eval_every']})", timed(unlearn_stage, repeats), flops, nbytes, peak, bw)


def thm2_stage(repeats: int, peak: float, floor_us: float) -> None:
    """Theorem 2's three forget sets x 5 methods, parameter space and the b-recursion in
    lockstep, at 10^5 of the experiment's 10^6 steps (the per-step work is the same)."""
    from synthetic.worlds.thm2.data import make_forget_set
    from synthetic.worlds.thm2 import run as t2
    from synthetic.worlds.thm2.config import SETTINGS, thm2_config

    config = thm2_config()
    key = jax.random.split(jax.random.key(config["seed"]))[0]
    sets = [make_forget_set(key, **t2._forget_set_kwargs(config, s)) for s in SETTINGS]
    methods = t2.thm2_methods(config["betas"])
    steps = 10**5

    def stage():
        return t2.gd_divergence(sets, methods, eta=config["eta"], steps=steps,
                                records_per_decade=config["records_per_decade"])[0]["b"]

    times = timed(stage, repeats)
    n_f, d, runs = config["forget_set"]["n_f"], config["forget_set"]["d"], len(sets) * len(methods)
    # per run and step: X theta and X^T r (2 x 2 n_f d), the recursion's Gamma w (2 n_f^2)
    flops = runs * steps * (2 * 2 * n_f * d + 2 * n_f * n_f)
    t = statistics.median(times)
    us = t / steps * 1e6
    print(json.dumps({"stage": f"thm2 ({len(sets)} sets x {len(methods)} methods x {steps} steps)", "seconds": round(t, 3),
                      "range": [round(min(times), 3), round(max(times), 3)], "gflops": round(flops / t / 1e9, 3),
                      "share_of_peak": round(flops / t / 1e9 / peak, 3), "us_per_step": round(us, 2),
                      "loop_floor_us": round(floor_us, 2), "binding": "latency"}))
    print(f"  {flops / t / 1e9:6.2f} GFLOP/s ({flops / t / 1e9 / peak:.1%} of the float64 peak): latency-bound, "
          f"{us:.1f} us per step of all {runs} runs, against {floor_us:.1f} us for a one-operation loop step; "
          f"the data (n_f x d = {n_f} x {d}) sits in the core's first-level cache")


def transformer_stages(only: set, repeats: int, peak32: float) -> None:
    """The markov experiment's transformer (the SimNPO study's model): an AdamW training step at
    batch 128, and one case's beta x eps map (NPO and SimNPO at 4 betas under 2 eps x 5 seeds,
    metrics and the optimizer's records every step, one run at a time per device, as the
    experiment runs it) for 10 steps, from random weights (the time does not depend on them)."""
    from bench_transformer import train_step_seconds
    from synthetic import engine
    from synthetic.worlds.markov.adam_stats import adam_tracker
    from synthetic.worlds.markov.config import map_settings, markov_config
    from synthetic.worlds.markov.lm import adamw_injected, markov_metrics
    from synthetic.models import transformer as tf
    from theory.methods import get_method

    cfg = markov_config()
    model = tf.TransformerConfig(**cfg["model"])
    T = model.context
    per_token = tf.matmul_flops_per_token(model, T)
    fwd = per_token["dense"] + per_token["attention"]  # FLOPs of one token's forward pass
    rng = np.random.default_rng(0)

    def tokens(n):
        return jnp.asarray(rng.integers(0, model.vocab_size, (n, T)), jnp.int32)

    if "train" in only:
        batch = cfg["train"]["batch_size"]
        seconds = train_step_seconds(model, batch, T, 10, repeats)
        report32(f"transformer training (AdamW steps, batch {batch} x {T} tokens)", list(seconds), 3 * fwd * batch * T,
                 peak32)
    if "unlearn" in only:
        u, counts = cfg["unlearn"], cfg["unlearn"]["n_eval"]
        n = int(sum(counts))
        params = tf.init(jax.random.key(0), model)
        settings = map_settings(cfg)
        methods = [get_method(m, beta=b) for m, b, _ in settings]
        forget, retain = tokens(64), tokens(64)
        mask64 = np.ones((64, T), np.float32)
        udata = tf.sequence_batch(params, forget, mask64, retain, mask64)
        pooled = tokens(n)
        which = np.repeat(np.arange(3), counts)
        group = np.stack([np.where((which == g)[:, None], 1.0, 0.0) * np.ones((1, T - 1))
                          for g in range(3)]).astype(np.float32)
        logp = tf.jit_next_token_log_probs(params, pooled)
        ctx = {"ev": {"tokens": pooled, "group": jnp.asarray(group), "retr_logp": logp, "true_logp": logp,
                      "probe_tokens": tokens(4), "probe_mask": jnp.ones((4, T), jnp.float32)}, "params_ref": params}
        steps = 10

        def unlearn_stage():
            return engine.unlearn(
                tf.SEQUENCE_INPUTS, methods, adamw_injected(float(u["weight_decay"]), float(u["eps"])), params, udata,
                engine.Schedule(tuple(range(steps + 1))), markov_metrics, context=ctx,
                hyperparams={"learning_rate": [u["learning_rate"]] * len(methods), "eps": [e for *_, e in settings]},
                batches=engine.minibatches(forget=u["batch_size"], retain=u["batch_size"]), seeds=u["seeds"],
                track=adam_tracker(), runs_at_once=1,
            )["forget1_nll"]  # fmt: skip

        runs = len(methods) * u["seeds"]
        # per run and step: forward + backward (3 x forward) over the batch's forget and retain
        # sequences; per record: a forward pass over the n evaluation and 4 probe sequences
        flops = runs * (steps * 3 * fwd * 2 * u["batch_size"] * T + (steps + 1) * fwd * (n + 4) * T)
        report32(f"transformer unlearning ({len(methods)} settings x {u['seeds']} seeds x {steps} steps, "
                 f"batch {u['batch_size']}+{u['batch_size']}, metrics every step)", timed(unlearn_stage, repeats),
                 flops, peak32)


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


def report32(name: str, times: list[float], flops: float, peak32: float) -> None:
    """A float32 matmul-bound stage: achieved GFLOP/s against the float32 matmul peak."""
    t = statistics.median(times)
    gflops = flops / t / 1e9
    print(json.dumps({"stage": name, "seconds": round(t, 3), "range": [round(min(times), 3), round(max(times), 3)],
                      "gflops": round(gflops, 2), "limit_gflops": round(peak32, 2), "binding": "compute",
                      "share_of_limit": round(gflops / peak32, 2)}))
    print(f"  {gflops:6.1f} GFLOP/s: compute-bound, limit {peak32:.1f} GFLOP/s (float32 matmul), achieved "
          f"{gflops / peak32:.0%} of it")


def loop_floor(repeats: int, steps: int = 20000) -> list[float]:
    """Microseconds per iteration of a ``fori_loop`` whose body is one small element-wise
    operation: the least a loop step costs, whatever it computes."""
    x = jnp.ones((15, 32), jnp.float64)
    run = jax.jit(lambda v: jax.lax.fori_loop(0, steps, lambda i, c: c * 0.999 + 1e-3, v))
    return [t / steps * 1e6 for t in timed(lambda: run(x), repeats)]


if __name__ == "__main__":
    main()
