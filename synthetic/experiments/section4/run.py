"""The synthetic experiments of PAPER.md section 4 (figures 3, 4 and 9) and the grid search.

A section-4 experiment is a grid: for each seed, draw the data of eq. 6 and a random-feature
map, fit the reference and the retrained model, then run every *setting* (a method with its
learning rate and beta) from the reference in one jitted, vmapped, sharded call
(:func:`synthetic.engine.unlearn_grid`). :func:`run_grid_experiment` does this for a JSON
config and returns plain arrays (see its docstring for the keys), which the figures and the
claim checks read.

Public entry point for your own arrays: :func:`synthetic.pipeline.unlearning_pipeline`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from synthetic import engine
from synthetic.data import DataConfig, make_dataset
from synthetic.models import RandomFeaturesConfig, random_features_init
from theory.methods import get_method

__all__ = [
    "TABLE1",
    "FIG4_METHODS",
    "FIG3_BETAS",
    "fig4_config",
    "fig3_config",
    "gridsearch_config",
    "run_grid_experiment",
    "run_fig4",
]

FIG4_METHODS = ("GA", "GA+RT", "IDK+RT", "NPO", "NPO+RT", "DPO+RT")

TABLE1 = {
    # method: {alpha: (learning rate, beta)}; beta is unused by GA-family methods.
    "GA": {1.0: (5e-4, 1.0), 0.0: (1e-4, 1.0)},
    "GA+RT": {1.0: (5e-4, 1.0), 0.0: (1e-4, 1.0)},
    "IDK+RT": {1.0: (5e-4, 1.0), 0.0: (1e-4, 1.0)},
    "NPO": {1.0: (5e-3, 1.0), 0.0: (5e-2, 10.0)},
    "NPO+RT": {1.0: (5e-3, 1.0), 0.0: (5e-2, 10.0)},
    "DPO+RT": {1.0: (5e-3, 0.1), 0.0: (5e-2, 5.0)},
}
"""PAPER.md table 1: learning rate and beta per method and alpha."""

FIG3_BETAS = (0.01, 0.1, 0.2, 0.5, 1.0)

PAPER_FIT = {"solver": "gd", "steps": 20000, "learning_rate": 0.05}
"""The paper's recipe for the reference and retrained models (section 4)."""


def _setting(method: str, lr: float, beta: float) -> dict:
    return {"method": method, "learning_rate": float(lr), "beta": float(beta)}


def _base_config(*, alpha: float, seeds: int, steps: int, eval_every: int, fit: dict) -> dict:
    return {
        "data": dataclasses.asdict(DataConfig(alpha=float(alpha))),
        "features": dataclasses.asdict(RandomFeaturesConfig()),
        "seeds": seeds,
        "first_seed": 0,
        "steps": steps,
        "eval_every": eval_every,
        "fit": dict(fit),
    }


def fig4_config(alpha: float, quick: bool = False) -> dict:
    """Figure 4: the six methods of table 1 at ``alpha``; 5 seeds, 2000 steps, every 25.

    ``quick`` keeps everything but the number of seeds (2): the reference and retrained
    models are always fitted with the paper's recipe, because the exact minimiser (Newton)
    puts the experiment in a different regime (see ``engine.fit``).
    """
    if alpha not in (0.0, 1.0):
        raise ValueError(f"alpha must be 0 or 1 (the paper's table 1), got {alpha!r}")
    config = _base_config(
        alpha=alpha,
        seeds=2 if quick else 5,
        steps=2000,
        eval_every=25,
        fit=PAPER_FIT,
    )
    config["settings"] = [_setting(m, *TABLE1[m][alpha]) for m in FIG4_METHODS]
    return config


def fig3_config(quick: bool = False) -> dict:
    """Figure 3: GA and NPO with beta in {0.01, ..., 1} at lr 5e-4; 10000 steps, every 5."""
    config = _base_config(
        alpha=1.0,
        seeds=2 if quick else 5,
        steps=2000 if quick else 10000,
        eval_every=25 if quick else 5,
        fit=PAPER_FIT,
    )
    config["settings"] = [_setting("GA", 5e-4, 1.0)] + [_setting("NPO", 5e-4, b) for b in FIG3_BETAS]
    return config


GRID_LRS = (1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2)
GRID_BETAS = (0.1, 0.5, 1.0, 5.0, 10.0)


def gridsearch_config(quick: bool = False, alpha: float = 1.0) -> dict:
    """The learning-rate x beta search of section 4: every table-1 method over ``GRID_LRS``
    (x ``GRID_BETAS`` for methods that have a beta), 5 seeds, 2000 steps, every 25."""
    config = _base_config(
        alpha=alpha,
        seeds=2 if quick else 5,
        steps=1000 if quick else 2000,
        eval_every=25,
        fit=PAPER_FIT,
    )
    lrs = (5e-4, 5e-3) if quick else GRID_LRS  # quick keeps table 1's values
    betas = (0.1, 1.0) if quick else GRID_BETAS
    settings = []
    for m in FIG4_METHODS:
        uses_beta = any(getattr(get_method(m), c) for c in ("npo", "dpo", "kto", "simnpo"))
        for lr in lrs:
            for beta in betas if uses_beta else (1.0,):
                settings.append(_setting(m, lr, beta))
    config["settings"] = settings
    return config


def prepare_seed(key, data_config: DataConfig, features_config: RandomFeaturesConfig) -> engine.Problem:
    """Draw one seed's data and random-feature map and return its :class:`~synthetic.engine.Problem`."""
    k_data, k_features = jax.random.split(key)
    data = make_dataset(k_data, data_config)
    w = random_features_init(k_features, features_config)["W"]
    return engine.random_features_problem(data, w)


@functools.partial(jax.jit, static_argnames=("shapes", "features_config", "solver", "steps"))
def _prepare_and_fit(keys, laws, learning_rate, *, shapes: DataConfig, features_config, solver, steps):
    # The laws (alpha, shift, theta scale) are traced, so both alphas share one program.
    data_config = dataclasses.replace(shapes, alpha=laws[0], shift=laws[1], theta_scale=laws[2])
    problems = jax.vmap(lambda k: prepare_seed(k, data_config, features_config))(keys)
    ref, retr = jax.vmap(
        lambda p: engine.fit_reference_and_retrained(p, solver=solver, steps=steps, learning_rate=learning_rate)
    )(problems)
    return problems, ref, retr


@functools.lru_cache(maxsize=4)
def _prepared_and_fitted(data_config: DataConfig, features_config: RandomFeaturesConfig, seeds: tuple, fit_json: str):
    """Data, reference and retrained models per seed; memoised, since figures 3 and 4 and the
    grid search at alpha = 1 start from the very same models."""
    fit = json.loads(fit_json)
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
    laws = jnp.asarray([data_config.alpha, data_config.shift, data_config.theta_scale], jnp.float64)
    shapes = dataclasses.replace(data_config, alpha=0.0, shift=0.0, theta_scale=0.0)
    out = _prepare_and_fit(
        keys, laws, fit["learning_rate"], shapes=shapes, features_config=features_config,
        solver=fit["solver"], steps=fit["steps"],
    )  # fmt: skip
    return jax.block_until_ready(out)


def run_grid_experiment(config: dict, progress=lambda msg: None) -> dict[str, np.ndarray]:
    """Run a section-4 grid described by a JSON config (see :func:`fig4_config`).

    Returns arrays (``S`` seeds, ``C`` settings, ``E = steps/eval_every + 1`` evaluations):
      ``steps (E,)``; ``forget_distance, retain_distance, forget_kl, loss, param_distance
      (S, C, E)``; ``diverged_step (S, C)`` (-1 if never); ``setting_method (C,)`` (str),
      ``setting_learning_rate (C,)``, ``setting_beta (C,)``; ``alpha``; ``ref_grad_norm,
      retr_grad_norm (S,)`` (convergence of the fitted models); ``seconds_fit``,
      ``seconds_unlearn`` (wall time, compile included).
    """
    data_config = DataConfig(**config["data"])
    features_config = RandomFeaturesConfig(**config["features"])
    settings = config["settings"]
    methods = [get_method(s["method"], beta=s["beta"]) for s in settings]
    lrs = [s["learning_rate"] for s in settings]
    seeds = tuple(range(config["first_seed"], config["first_seed"] + config["seeds"]))
    fit = config["fit"]

    t0 = time.perf_counter()
    progress(f"alpha={data_config.alpha:g}: data and {fit['solver']} fit of reference + retrained, {len(seeds)} seeds")
    problems, ref, retr = _prepared_and_fitted(data_config, features_config, seeds, json.dumps(fit, sort_keys=True))
    t1 = time.perf_counter()
    progress(
        f"alpha={data_config.alpha:g}: fitted in {t1 - t0:.1f}s (max grad norm ref {float(jnp.max(ref.grad_norm)):.1e}, "
        f"retrained {float(jnp.max(retr.grad_norm)):.1e}); unlearning {len(settings)} settings x {len(seeds)} seeds"
    )
    traj = engine.unlearn_grid(
        problems, ref.theta, retr.theta, methods, lrs, steps=config["steps"], eval_every=config["eval_every"]
    )
    traj = jax.block_until_ready(traj)
    t2 = time.perf_counter()
    progress(f"alpha={data_config.alpha:g}: unlearned in {t2 - t1:.1f}s")
    arrays = {name: np.asarray(getattr(traj, name)) for name in engine.METRICS}
    arrays.update(
        steps=np.arange(0, config["steps"] + 1, config["eval_every"]),
        diverged_step=np.asarray(traj.diverged_step),
        setting_method=np.array([s["method"] for s in settings]),
        setting_learning_rate=np.array(lrs, dtype=float),
        setting_beta=np.array([s["beta"] for s in settings], dtype=float),
        ref_grad_norm=np.asarray(ref.grad_norm),
        retr_grad_norm=np.asarray(retr.grad_norm),
        alpha=np.array(data_config.alpha),
        seconds_fit=np.array(t1 - t0),
        seconds_unlearn=np.array(t2 - t1),
    )
    return arrays


def run_fig4(config: dict, progress=lambda msg: None) -> dict[str, np.ndarray]:
    """Figure 4 for both alphas: ``config = {"alpha1": fig4_config(1), "alpha0": fig4_config(0)}``.

    Returns the arrays of :func:`run_grid_experiment` for each alpha, keys prefixed with
    ``alpha1_`` and ``alpha0_`` (select one with :func:`synthetic.analysis.split_prefix`).
    """
    out = {}
    for key in ("alpha1", "alpha0"):
        for name, value in run_grid_experiment(config[key], progress).items():
            out[f"{key}_{name}"] = value
    return out
