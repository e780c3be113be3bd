"""Training throughput of the transformer beside this machine's float32 matmul peak.

    python benchmarks/bench_transformer.py            # default model (4 layers, width 128), batch 128
    python benchmarks/bench_transformer.py --quick    # fewer repeats

Prints, for the jitted AdamW training step of :func:`synthetic.engine.train` at a few batch sizes:
tokens per second and achieved GFLOP/s, where FLOPs are counted analytically as
``3 x forward`` with forward = ``2 x (matmul weights) + 4 L T D`` per token (attention scores and
values; embeddings are lookups, element-wise work is not counted). The peak is the median
GFLOP/s of a large float32 ``jnp.dot`` (2 n^3 FLOPs) timed in the same process. All timings are
medians over repeats (the machine may be shared, so spreads are printed as well).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from synthetic.devices import use_cpu_cores  # noqa: E402

use_cpu_cores()  # before JAX starts: one device per core, as paper_repro.py runs the experiments

from _measure import matmul_gflops, timed  # noqa: E402
from synthetic.engine import fit  # noqa: E402
from synthetic.worlds.markov.lm import _adamw  # noqa: E402
from synthetic.models import transformer as tf  # noqa: E402


def matmul_peak(n: int = 2048, repeats: int = 7) -> tuple[float, float]:
    """Median and max GFLOP/s of an ``n x n`` float32 matmul."""
    gflops = matmul_gflops(jnp.float32, repeats, n)
    return float(np.median(gflops)), float(np.max(gflops))


def train_step_seconds(config: tf.TransformerConfig, batch: int, seq_len: int, steps: int, repeats: int) -> np.ndarray:
    """Seconds per step of ``repeats`` runs of ``steps`` consecutive jitted AdamW steps (the
    markov experiment's optimizer) on random tokens, after one step to compile."""
    n = batch * 8
    tokens = jax.random.randint(jax.random.key(2), (n, seq_len), 0, config.vocab_size).astype(jnp.int32)
    mask = jnp.ones((n, seq_len), jnp.float32)
    params = tf.init(jax.random.key(3), config)
    opt = _adamw(5e-4, 0.0, 1e-6)  # the markov experiment's transformers AdamW
    state = opt.init(params)
    data = {"tokens": tokens[:batch], "mask": mask[:batch]}
    step = fit._train_step
    params, state, loss = step(params, state, data, loss_fn=tf.next_token_nll, optimizer=opt)  # compile
    jax.block_until_ready(loss)
    holder = [params, state]

    def run():
        p, s = holder
        for _ in range(steps):
            p, s, l = step(p, s, data, loss_fn=tf.next_token_nll, optimizer=opt)
        holder[:] = [p, s]
        return l

    return np.asarray(timed(run, repeats, warmup=False)) / steps


def train_throughput(config: tf.TransformerConfig, batch: int, seq_len: int, steps: int, repeats: int) -> dict:
    """Median tokens/s and GFLOP/s of ``steps`` consecutive jitted AdamW steps."""
    times = train_step_seconds(config, batch, seq_len, steps, repeats)
    params = jax.eval_shape(lambda: tf.init(jax.random.key(3), config))
    flops = tf.matmul_flops_per_token(config, seq_len)
    per_token = 3 * (flops["dense"] + flops["attention"])
    tok_s = batch * seq_len / times
    return {
        "tokens_per_s": float(np.median(tok_s)),
        "tokens_per_s_range": (float(tok_s.min()), float(tok_s.max())),
        "gflops": float(np.median(tok_s) * per_token / 1e9),
        "ms_per_step": float(np.median(times) * 1e3),
        "params": tf.param_count(params),
        "flops_per_token": per_token,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else 5
    # The markov experiment trains with float64 enabled (float32 parameters); so does this.
    with jax.enable_x64(True):
        return _main(args, repeats)


def _main(args, repeats) -> int:
    config = tf.TransformerConfig()
    print(f"devices: {jax.devices()}; model {config}")
    peak_med, peak_max = matmul_peak(repeats=repeats + 2)
    print(f"float32 matmul peak (2048^3 jnp.dot): median {peak_med:.1f} GFLOP/s, best {peak_max:.1f}")
    for batch, steps in ((128, 5 if args.quick else 10), (4, 50 if args.quick else 100)):
        r = train_throughput(config, batch, 20, steps, repeats)
        print(
            f"train step batch {batch:3d} x 20 tokens: {r['ms_per_step']:.2f} ms/step, "
            f"{r['tokens_per_s']:.0f} tokens/s (range {r['tokens_per_s_range'][0]:.0f}-{r['tokens_per_s_range'][1]:.0f}), "
            f"{r['gflops']:.1f} GFLOP/s = {r['gflops'] / peak_med:.2f} of the matmul peak "
            f"({r['params']} params, {r['flops_per_token'] / 1e6:.2f} MFLOP per training token)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
