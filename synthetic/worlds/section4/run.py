"""The synthetic experiments of the paper's section 4 (figures 3, 4 and 9) and the grid search.

A section-4 experiment is a grid: for each seed, draw the data of eq. 6 and a random-feature
map, fit the reference and the retrained model, then run every *setting* (a method with its
learning rate and beta) from the reference in one jitted, vmapped, sharded call of the engine
(:func:`synthetic.worlds.section4.pipeline.unlearn_binary`). :func:`run_grid_experiment` does this for a JSON
config and returns plain arrays (see its docstring for the keys), which the figures and the
claims read. Run it inside ``jax.enable_x64(True)``: the paper's reference code is float64.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from synthetic import distributed, engine
from synthetic.worlds.section4.data import DataConfig, make_dataset
from synthetic.models.logistic import RandomFeaturesConfig, random_features_init
from synthetic.worlds.section4.pipeline import METRICS, Problem, random_features_problem, unlearn_binary
from theory.methods import get_method
from theory.validate import check_key

__all__ = ["prepare_seed", "run_grid_experiment", "run_fig4"]


def prepare_seed(key, data_config: DataConfig, features_config: RandomFeaturesConfig) -> Problem:
    """Draw one seed's data and random-feature map and return its :class:`~synthetic.worlds.section4.pipeline.Problem`."""
    check_key(key)
    k_data, k_features = jax.random.split(key)
    data = make_dataset(k_data, data_config)
    w = random_features_init(k_features, features_config)["W"]
    return random_features_problem(data, w)


@functools.partial(jax.jit, static_argnames=("shapes", "features_config", "solver", "steps"))
def _prepare_and_fit(keys, laws, learning_rate, *, shapes: DataConfig, features_config, solver, steps):
    # The laws (alpha, shift, theta scale) are traced, so both alphas share one program.
    data_config = dataclasses.replace(shapes, alpha=laws[0], shift=laws[1], theta_scale=laws[2])
    problems = jax.vmap(lambda k: prepare_seed(k, data_config, features_config))(keys)
    # Gradient descent: one seed at a time per device (its inputs stay in cache), the devices
    # in parallel. Newton's method (a few dozen steps) runs on one device: its batched solves
    # inside shard_map deadlock XLA's CPU runtime when the CPU is split into several devices
    # (JAX 0.10; the paper's 1200 x 128 features hang, smaller problems do not).
    mapper = engine.sharded_map if solver == "gd" else jax.lax.map
    ref, retr = mapper(
        lambda p: engine.fit_reference_and_retrained(p.forget, p.y_forget, p.retain, p.y_retain, solver=solver,
                                                     steps=steps, learning_rate=learning_rate),
        problems,
    )  # fmt: skip
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
    if distributed.is_distributed():  # the fits were sharded over processes: every process gets them all
        return distributed.to_host(out)
    return jax.block_until_ready(out)


def run_grid_experiment(config: dict, progress=lambda msg: None, folder=None) -> dict[str, np.ndarray]:
    """Run a section-4 grid described by a JSON config (see :func:`~.config.fig4_config`).

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
    run = unlearn_binary(problems, ref.theta, retr.theta, methods, lrs,
                         schedule=engine.Schedule.every(config["eval_every"], config["steps"]),
                         progress=lambda msg: progress(f"alpha={data_config.alpha:g}: unlearning {msg}"))
    t2 = time.perf_counter()
    progress(f"alpha={data_config.alpha:g}: unlearned in {t2 - t1:.1f}s")
    arrays = {name: run[name] for name in METRICS}
    arrays.update(
        steps=run["steps"],
        diverged_step=run["diverged_step"],
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


def run_fig4(config: dict, progress=lambda msg: None, folder=None) -> dict[str, dict[str, np.ndarray]]:
    """Figure 4 for both alphas: ``config = {"alpha1": fig4_config(1), "alpha0": fig4_config(0)}``.

    Returns ``{"alpha1": arrays, "alpha0": arrays}``, each the arrays of :func:`run_grid_experiment`.
    """
    return {key: run_grid_experiment(config[key], progress) for key in ("alpha1", "alpha0")}
