"""The figure-4 fit's gradient step, written four ways: time per step and agreement with today's.

    python benchmarks/bench_fit_layouts.py [--steps 4000] [--repeats 3]

The reference and retrained models of section 4 are fitted by 20000 full-batch gradient steps
of ``X^T (w * (sigma(X theta) - y))`` (``X``: 1200 x 128 float64 features, two models at once).
Each step reads ``X`` twice (the logits, then the gradient), so the fit is bound by how fast the
features stream from cache. This prints, for one seed's problem on one device, the median
microseconds per step of:

* ``two copies`` (what :func:`synthetic.engine.fit_logistic` does): the logits from a contiguous
  copy of ``X^T``, the gradient from ``X``; both products row-major.
* ``one copy``: both products from ``X`` alone (half the bytes held: 1.2 MB, inside a 2 MB L2).
* ``one pass, B rows``: the rows in blocks of ``B`` (a ``lax.scan`` inside the step): each block's
  logits, residuals and gradient contribution while the block is in cache, so ``X`` is read once
  per step.

and the largest difference of the fitted ``theta`` from today's after ``--steps`` steps (the
fit's numbers must not change beyond float64 rounding). On XLA's CPU backend (JAX 0.10) the
blocked loop pays a loop iteration and two small products per block, more than the second read
costs: see the printed times. Nothing here is a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import timed  # noqa: E402

LEARNING_RATE = 0.05


def _two_copies(x, y, w):
    xt = jnp.swapaxes(x, 0, 1) + 0.0
    return lambda th: (w * (jax.nn.sigmoid(th @ xt) - y[None])) @ x


def _one_copy(x, y, w):
    return lambda th: (w.T * (jax.nn.sigmoid(x @ th.T) - y[:, None])).T @ x


def _one_pass(block):
    def make(x, y, w):
        nb = x.shape[0] // block
        xb, yb = x.reshape(nb, block, -1), y.reshape(nb, block)
        wb = jnp.swapaxes(w.reshape(w.shape[0], nb, block), 0, 1)

        def grad(th):
            def add_block(g, rows):
                xi, wi, yi = rows
                return g + (wi * (jax.nn.sigmoid(th @ xi.T) - yi[None])) @ xi, None

            return jax.lax.scan(add_block, jnp.zeros_like(th), (xb, wb, yb))[0]

        return grad

    return make


LAYOUTS = {"two copies (today)": _two_copies, "one copy": _one_copy, "one pass, 100 rows": _one_pass(100),
           "one pass, 200 rows": _one_pass(200), "one pass, 400 rows": _one_pass(400)}


@functools.partial(jax.jit, static_argnames=("layout", "steps"))
def fit(x, y, w, *, layout, steps):
    grad = LAYOUTS[layout](x, y, w)
    step = lambda th, _: (th - LEARNING_RATE * grad(th), None)  # noqa: E731
    return jax.lax.scan(step, jnp.zeros((w.shape[0], x.shape[1]), x.dtype), None, length=steps)[0]


def problem():
    """One seed of figure 4 at alpha 1: its features, labels and the two models' weights."""
    from synthetic.worlds.section4.config import fig4_config
    from synthetic.worlds.section4.data import DataConfig
    from synthetic.models.logistic import RandomFeaturesConfig
    from synthetic.worlds.section4.run import prepare_seed

    config = fig4_config(1.0)
    p = prepare_seed(jax.random.key(0), DataConfig(**config["data"]), RandomFeaturesConfig(**config["features"]))
    x = jnp.concatenate([p.forget, p.retain])
    y = jnp.concatenate([p.y_forget, p.y_retain]).astype(x.dtype)
    n_f, n = p.forget.shape[0], x.shape[0]
    masks = jnp.stack([jnp.ones(n), jnp.concatenate([jnp.zeros(n_f), jnp.ones(n - n_f)])]).astype(x.dtype)
    return x, y, masks / masks.sum(axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    x, y, w = problem()
    print(f"features {x.shape[0]} x {x.shape[1]} float64 ({x.nbytes / 2**20:.2f} MiB), 2 models, {args.steps} steps")
    today = None
    for layout in LAYOUTS:
        run = functools.partial(fit, x, y, w, layout=layout, steps=args.steps)
        seconds = statistics.median(timed(run, args.repeats))
        theta = np.asarray(run())
        today = theta if today is None else today
        print(f"{layout:20s} {seconds / args.steps * 1e6:7.1f} us per step   max |theta - today's| "
              f"{np.abs(theta - today).max():.1e}")


if __name__ == "__main__":
    main()
