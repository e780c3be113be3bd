"""The engine: the one loop on a toy model (closed-form trajectories), its checks, the sampler,
the schedule, the tracker; the fits; the section-4 recipe by hand, grid == loop, sharding."""

import functools
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from synthetic import engine
from synthetic.engine import Provider, Providers, Schedule, Tracker
from synthetic.models.logistic import BINARY_INPUTS, RandomFeaturesConfig, binary_batch, logistic_log_probs, take_label
from synthetic.optim import SGD
from synthetic.worlds.section4.data import DataConfig, make_dataset
from synthetic.worlds.section4.pipeline import METRICS, unlearn_binary
from synthetic.worlds.section4.run import prepare_seed
from theory import get_method, kl_divergence

ROOT = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- a toy model
# forget_logp = x @ theta: GA's loss mean(x @ theta) has the constant gradient mean(x), so
# gradient descent moves theta by -lr * mean(x) per step, exactly.


def _linear_forget(theta, batch, need):
    out = {"forget_logp": batch["forget_x"] @ theta}
    if "forget_ref_logp" in need:
        out["forget_ref_logp"] = batch["forget_ref_logp"]
    return out


LINEAR = Providers((Provider(("forget_logp", "forget_ref_logp"), _linear_forget),))
X = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]], np.float32)
DATA = {"forget_x": X, "forget_ref_logp": np.zeros(3, np.float32)}
THETA0 = np.zeros(2, np.float32)


def _theta_metrics(theta, method, ctx):
    return {"theta": theta, "norm": jnp.linalg.norm(theta)}


def test_toy_ga_trajectories_are_exact_for_every_setting():
    out = engine.unlearn(LINEAR, [get_method("GA")] * 3, SGD, THETA0, DATA, Schedule((0, 1, 4, 10)),
                         _theta_metrics, hyperparams={"learning_rate": [0.1, 0.2, 0.5]}, seeds=2)
    assert out["theta"].shape == (2, 3, 4, 2) and out["norm"].shape == (2, 3, 4)
    np.testing.assert_array_equal(out["steps"], [0, 1, 4, 10])
    g = X.mean(axis=0)
    for c, lr in enumerate((0.1, 0.2, 0.5)):
        want = -lr * np.array([0, 1, 4, 10])[:, None] * g
        np.testing.assert_allclose(out["theta"][:, c], np.broadcast_to(want, (2, 4, 2)), rtol=1e-5, atol=1e-6)
    assert np.all(out["diverged_step"] == -1) and out["diverged_step"].dtype == np.int32


def test_the_optimizer_is_the_one_passed():
    adam = optax.inject_hyperparams(optax.adam)(learning_rate=1.0)
    out = engine.unlearn(LINEAR, [get_method("GA")], adam, THETA0, DATA, Schedule.every(1, 5), _theta_metrics,
                         hyperparams={"learning_rate": [0.1]})
    # Adam's first steps move every coordinate by lr * sign(g), whatever |g|.
    np.testing.assert_allclose(out["theta"][0, 0, 1], -0.1 * np.sign(X.mean(axis=0)), rtol=1e-4)
    plain = engine.unlearn(LINEAR, [get_method("GA")], optax.sgd(0.1), THETA0, DATA, Schedule.every(1, 5), _theta_metrics)
    np.testing.assert_allclose(plain["theta"][0, 0, 1], -0.1 * X.mean(axis=0), rtol=1e-6)


def test_divergence_is_recorded_and_later_records_are_nan():
    # lr 1e38: theta_t = -1e38 t mean(x), mean(x) = (1.5, 0.5); float32 ends at 3.4e38, so step 3
    # is the first non-finite one. The run stays at its step-2 point; records after are NaN.
    # Only theta is recorded: its norm overflows at step 2 already, which counts as divergence
    # too (tests/test_validation.py); here the parameters themselves overflow.
    out = engine.unlearn(LINEAR, [get_method("GA"), get_method("GA")], SGD, THETA0, DATA, Schedule.every(2, 6),
                         lambda theta, method, ctx: {"theta": theta}, hyperparams={"learning_rate": [1e38, 0.1]})
    assert out["diverged_step"].tolist() == [[3, -1]]
    np.testing.assert_allclose(out["theta"][0, 0, 1], -2e38 * X.mean(axis=0), rtol=1e-6)
    assert np.all(np.isnan(out["theta"][0, 0, 2:])) and np.all(np.isfinite(out["theta"][0, 1]))


def _count_init(params, method, ctx):
    return {"sum_steps": jnp.zeros((), jnp.int32), "last": jnp.zeros((), jnp.int32)}


def _count_update(state, params, step, method, ctx):
    return {"sum_steps": state["sum_steps"] + step, "last": step}


def test_a_tracker_runs_at_every_step_and_records_on_the_schedule():
    tracker = Tracker(_count_init, _count_update, record=lambda s: {"last_step": s["last"]})
    out = engine.unlearn(LINEAR, [get_method("GA")], SGD, THETA0, DATA, Schedule((0, 3, 7)), _theta_metrics,
                         hyperparams={"learning_rate": [0.1]}, track=tracker)
    assert int(out["sum_steps"][0, 0]) == 7 * 8 // 2
    np.testing.assert_array_equal(out["last_step"][0, 0], [0, 3, 7])


def _step_init(params, method, ctx):
    return {"grad": jnp.zeros(2, jnp.float32), "update": jnp.zeros(2, jnp.float32), "count": jnp.zeros((), jnp.int32)}


def _step_update(state, params, step, method, ctx, seen):
    return {"grad": seen["grads"], "update": seen["updates"], "count": seen["opt_state"].inner_state[0].count}


def test_a_tracker_that_sees_the_step_gets_its_gradient_update_and_optimizer_state():
    # GA's gradient on the toy model is mean(x) at every step; Adam's first update is
    # -lr * sign(g) (to its eps); the optimizer's step count is the step's number.
    tracker = Tracker(_step_init, _step_update, record=lambda s: s, final=lambda s: {}, sees_step=True)
    adam = optax.inject_hyperparams(optax.adam)(learning_rate=1.0)
    out = engine.unlearn(LINEAR, [get_method("GA")] * 2, adam, THETA0, DATA, Schedule((0, 1, 3)), _theta_metrics,
                         hyperparams={"learning_rate": [0.1, 0.01]}, track=tracker)
    np.testing.assert_allclose(out["grad"][0, :, 1:], np.broadcast_to(X.mean(axis=0), (2, 2, 2)), rtol=1e-6)
    np.testing.assert_allclose(out["update"][0, 0, 1], -0.1 * np.sign(X.mean(axis=0)), rtol=1e-4)
    np.testing.assert_allclose(out["update"][0, 1, 1], -0.01 * np.sign(X.mean(axis=0)), rtol=1e-4)
    # the update seen is the step taken (with a constant gradient Adam takes equal steps:
    # theta_3 - theta_1 is twice the third one)
    np.testing.assert_allclose(out["theta"][0, :, 2] - out["theta"][0, :, 1], 2 * out["update"][0, :, 2], rtol=1e-5)
    np.testing.assert_array_equal(out["count"][0, 0], [0, 1, 3])
    assert np.all(out["update"][0, :, 0] == 0)  # nothing seen before the first step


def test_per_seed_params_and_shared_data():
    starts = np.array([[0.0, 0.0], [1.0, -1.0]], np.float32)
    out = engine.unlearn(LINEAR, [get_method("GA")], SGD, starts, DATA, Schedule((0, 2)), _theta_metrics,
                         hyperparams={"learning_rate": [0.5]}, seeds=2, per_seed=("params",))
    np.testing.assert_allclose(out["theta"][:, 0, 1], starts - 2 * 0.5 * X.mean(axis=0), rtol=1e-6)


@pytest.mark.parametrize("at_once", [1, 2])
def test_runs_in_turn_give_the_outputs_of_runs_at_once(at_once):
    # 3 seeds x 3 settings (one diverging), minibatches, a tracker and per-seed starts: the same
    # records whether every run is vmapped or each device maps over its runs `at_once` at a time
    tracker = Tracker(_count_init, _count_update, record=lambda s: {"last_step": s["last"]})
    starts = np.array([[0.0, 0.0], [1.0, -1.0], [2.0, 0.5]], np.float32)
    args = (LINEAR, [get_method("GA"), get_method("NPO", beta=0.5), get_method("GA")], SGD, starts, DATA,
            Schedule((0, 1, 3, 6)), _theta_metrics)
    kw = dict(hyperparams={"learning_rate": [0.1, 0.3, 1e38]}, seeds=[0, 4, 7], per_seed=("params",), track=tracker,
              batches=engine.minibatches(forget=2))
    together, in_turn = engine.unlearn(*args, **kw), engine.unlearn(*args, **kw, runs_at_once=at_once)
    assert sorted(together) == sorted(in_turn)
    for name in together:
        np.testing.assert_allclose(in_turn[name], together[name], rtol=1e-6, err_msg=name)
    assert np.all(in_turn["diverged_step"][:, 2] > 0) and np.all(in_turn["diverged_step"][:, :2] == -1)
    with pytest.raises(ValueError, match="runs_at_once must be an integer >= 1"):
        engine.unlearn(*args, **kw, runs_at_once=0)


def test_a_method_needing_an_input_the_model_lacks_is_refused_before_running():
    with pytest.raises(ValueError, match=r"retain_logp.*does not provide"):
        engine.unlearn(LINEAR, [get_method("NPO+RT")], SGD, THETA0, DATA, Schedule((0, 1)), _theta_metrics,
                       hyperparams={"learning_rate": [0.1]})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"hyperparams": {"learning_rate": [0.1, 0.2]}}, "one value per method"),
        ({"hyperparams": {"learning_rate": [0.0]}}, "learning rates must be > 0"),
        ({"hyperparams": {"momentum": [0.9]}}, "injected hyperparameters"),
        ({"seeds": 0}, "seeds"),
        ({"seeds": 3, "per_seed": ("params",)}, "leading axis of 3 seeds"),
        ({"per_seed": ("dataa",)}, "per_seed"),
        ({"optimizer": "sgd"}, "optax.GradientTransformation"),
        ({"schedule": (1, 2)}, "starting at 0"),
        ({"methods": [1.0]}, "get_method"),
        ({"metrics": None}, "metrics"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    args = dict(providers=LINEAR, methods=[get_method("GA")], optimizer=SGD, params=THETA0, data=DATA,
                schedule=Schedule((0, 1)), metrics=_theta_metrics, hyperparams={"learning_rate": [0.1]})
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        engine.unlearn(**args)


def test_reserved_output_names_are_refused():
    with pytest.raises(ValueError, match="reserved"):
        engine.unlearn(LINEAR, [get_method("GA")], SGD, THETA0, DATA, Schedule((0, 1)),
                       lambda th, m, c: {"steps": jnp.sum(th)}, hyperparams={"learning_rate": [0.1]})


# --------------------------------------------------------------------------- sampler and schedule


def test_minibatches_draw_rows_of_each_group_together():
    data = {"forget_a": jnp.arange(10), "forget_b": jnp.arange(10) * 10, "retain_a": jnp.arange(7), "other": jnp.ones(3)}
    sample = engine.minibatches(forget=4, retain=7)
    batch = sample(jax.random.key(0), data)
    assert batch["forget_a"].shape == (4,) and len(set(np.asarray(batch["forget_a"]).tolist())) == 4
    np.testing.assert_array_equal(batch["forget_b"], 10 * batch["forget_a"])
    np.testing.assert_array_equal(batch["retain_a"], np.arange(7))  # size >= rows: all, in order
    np.testing.assert_array_equal(batch["other"], np.ones(3))  # no size: passed whole
    again = sample(jax.random.key(0), data)
    np.testing.assert_array_equal(again["forget_a"], batch["forget_a"])
    other = sample(jax.random.key(1), data)
    assert not np.array_equal(other["forget_a"], batch["forget_a"])
    assert engine.minibatches(forget=4, retain=7) == sample  # equal samplers reuse the compiled program
    with pytest.raises(ValueError, match="group 'idk'"):
        engine.minibatches(idk=2)(jax.random.key(0), data)
    with pytest.raises(ValueError, match="batch size"):
        engine.minibatches(forget=0)


def test_schedules():
    assert Schedule.every(25, 100).steps == (0, 25, 50, 75, 100)
    with pytest.raises(ValueError, match="eval_every"):
        Schedule.every(3, 10)
    with pytest.raises(ValueError, match="increasing"):
        Schedule((0, 5, 5))
    steps = engine.log_spaced_steps(10**4, 4)
    want = np.unique(np.round(10.0 ** (np.arange(17) / 4)).astype(int))
    np.testing.assert_array_equal(steps, np.concatenate([[0], want]))
    assert {1, 10, 100, 1000, 10**4} <= set(steps.tolist())
    assert engine.log_spaced_steps(50, 2).tolist() == [0, 1, 3, 10, 32, 50]  # the last step is always kept
    assert Schedule.log_spaced(100, 2).total == 100


# --------------------------------------------------------------------------- fits

SMALL = DataConfig(d=4, n_forget=30, n_retain=60, n_eval_forget=40, n_eval_retain=40)
SCHEDULE = Schedule((0, 1, 30, 60))  # one schedule, so the single-run tests share a compiled program
SETTINGS = [("GA", 1e-2, 1.0), ("NPO+RT", 5e-2, 0.5), ("DPO+RT", 5e-2, 2.0), ("IDK+RT", 1e-2, 1.0), ("GA+KL", 1e-2, 1.0)]


@functools.partial(jax.jit, static_argnums=0)  # one program, not one per primitive and shape
def _problems(seeds=2):
    keys = jax.vmap(jax.random.key)(jnp.arange(seeds))
    return jax.vmap(lambda k: prepare_seed(k, SMALL, RandomFeaturesConfig(d=4, n_features=8)))(keys)


@pytest.fixture(scope="module")
def fitted():
    with jax.enable_x64(True):
        problems = _problems()
        ref, retr = jax.vmap(lambda p: engine.fit_reference_and_retrained(
            p.forget, p.y_forget, p.retain, p.y_retain, solver="newton", steps=30))(problems)
    return problems, ref, retr


@pytest.mark.usefixtures("x64")
def test_newton_reaches_the_minimiser_gd_approaches(fitted):
    _, ref, retr = fitted
    assert np.all(ref.grad_norm < 1e-10) and np.all(retr.grad_norm < 1e-10)
    data = jax.jit(make_dataset, static_argnums=1)(jax.random.key(0), SMALL)
    x, y = np.concatenate([data.x_forget, data.x_retain]), np.concatenate([data.y_forget, data.y_retain])
    newton = engine.fit_logistic(x, y, jnp.ones(len(y)), solver="newton", steps=30)
    gd_short = engine.fit_logistic(x, y, jnp.ones(len(y)), solver="gd", steps=200, learning_rate=0.05)
    gd_long = engine.fit_logistic(x, y, jnp.ones(len(y)), solver="gd", steps=20000, learning_rate=0.05)
    err_short = np.linalg.norm(gd_short.theta - newton.theta)
    err_long = np.linalg.norm(gd_long.theta - newton.theta)
    assert newton.grad_norm < 1e-12
    assert err_long < 1e-6 < 0.1 < err_short
    assert gd_long.grad_norm < 1e-6 < gd_short.grad_norm
    np.testing.assert_allclose(gd_long.loss, newton.loss, rtol=1e-10)


@pytest.mark.usefixtures("x64")
def test_fit_masks_select_examples(fitted):
    """The retrained fit (mask on retain) equals a fit on the retain rows alone."""
    problems, _, retr = fitted
    p0 = jax.tree.map(lambda a: a[0], problems)
    alone = engine.fit_logistic(p0.retain, p0.y_retain, jnp.ones(len(p0.y_retain)), solver="newton", steps=30)
    # Compared through the model's logits: a ReLU feature that is zero on every example leaves
    # X^T X singular, so theta itself is determined only up to rounding in that direction.
    np.testing.assert_allclose(p0.retain @ alone.theta, p0.retain @ retr.theta[0], rtol=1e-10, atol=1e-10)


def test_fit_rejects_a_bad_solver_and_steps():
    with pytest.raises(ValueError, match="solver"):
        engine.fit_logistic(jnp.ones((3, 2)), jnp.array([0, 1, 0]), jnp.ones(3), solver="lbfgs")
    with pytest.raises(ValueError, match="steps"):
        engine.fit_logistic(jnp.ones((3, 2)), jnp.array([0, 1, 0]), jnp.ones(3), steps=0)


# --------------------------------------------------------------------------- the section-4 recipe


@pytest.mark.usefixtures("x64")
def test_one_ga_step_by_hand(fitted):
    problems, ref, retr = fitted
    one = jax.tree.map(lambda a: a[:1], problems)
    lr = 0.1
    out = unlearn_binary(one, ref.theta[:1], retr.theta[:1], [get_method("GA")], [lr], schedule=SCHEDULE)

    @jax.jit  # the step by hand as one program, not one per primitive
    def by_hand(p0, theta0, theta_retr):
        grad = jax.grad(lambda t: jnp.mean(take_label(logistic_log_probs(t, p0.forget), p0.y_forget)))(theta0)
        theta1 = theta0 - lr * grad
        lp = logistic_log_probs
        kl = [jnp.mean(kl_divergence(lp(theta_retr, p0.eval_forget), lp(t, p0.eval_forget))) for t in (theta0, theta1)]
        return grad, jnp.stack(kl)

    grad, expected = by_hand(jax.tree.map(lambda a: a[0], problems), ref.theta[0], retr.theta[0])
    np.testing.assert_allclose(out["param_distance"][0, 0, :2], [0.0, lr * np.linalg.norm(grad)], rtol=1e-12)
    np.testing.assert_allclose(out["forget_distance"][0, 0, :2], expected, rtol=1e-12)
    np.testing.assert_allclose(out["forget_kl"][0, 0, 0], 0.0, atol=1e-15)  # KL(ref || ref) at step 0
    assert int(out["diverged_step"][0, 0]) == -1


@pytest.mark.usefixtures("x64")
def test_grid_equals_python_loop(fitted):
    problems, ref, retr = fitted
    methods = [get_method(m, beta=b) for m, _, b in SETTINGS]
    lrs = [lr for _, lr, _ in SETTINGS]
    schedule = SCHEDULE
    grid = unlearn_binary(problems, ref.theta, retr.theta, methods, lrs, schedule=schedule)
    assert grid["forget_distance"].shape == (2, len(SETTINGS), 4)
    for s in range(2):
        p = jax.tree.map(lambda a: a[s:s + 1], problems)
        for c, (m, lr) in enumerate(zip(methods, lrs)):
            one = unlearn_binary(p, ref.theta[s:s + 1], retr.theta[s:s + 1], [m], [lr], schedule=schedule)
            for name in METRICS:
                np.testing.assert_allclose(grid[name][s, c], one[name][0, 0], rtol=1e-10, atol=1e-14)


@pytest.mark.usefixtures("x64")
def test_divergence_of_the_binary_model_is_reported_not_hidden(fitted):
    problems, ref, retr = fitted
    one = jax.tree.map(lambda a: a[:1], problems)
    # At lr 1e308 the parameters overflow float64 within a few steps.
    out = unlearn_binary(one, ref.theta[:1], retr.theta[:1], [get_method("GA")], [1e308], schedule=SCHEDULE)
    step = int(out["diverged_step"][0, 0])
    assert 1 <= step <= 30
    evals = np.asarray(SCHEDULE.steps)
    assert np.all(np.isnan(out["retain_distance"][0, 0][evals >= step]))
    assert np.all(np.isfinite(out["retain_distance"][0, 0][evals < step]))


def test_unlearn_binary_checks_learning_rates(fitted):
    problems, ref, retr = fitted
    with pytest.raises(ValueError, match="learning_rates"):
        unlearn_binary(problems, ref.theta, retr.theta, [get_method("GA")] * 2, [0.1], schedule=Schedule((0, 1)))
    with pytest.raises(ValueError, match="learning_rates"):
        unlearn_binary(problems, ref.theta, retr.theta, [get_method("GA")], [float("nan")], schedule=Schedule((0, 1)))


SHARDED = textwrap.dedent(
    """
    import json, sys
    import jax
    sys.path.insert(0, {root!r})
    from synthetic.devices import use_cpu_cores
    assert use_cpu_cores({n}) == {n}  # an explicit call: importing the toolkit splits nothing
    assert len(jax.devices()) == {n}, jax.devices()
    from tests.test_engine import _sharded_fits, _sharding_grid
    print(json.dumps({{"theta": _sharding_grid()["theta"].tolist(), "by_seed": _sharding_grid(5)["theta"].tolist(),
                      "fits": _sharded_fits().tolist()}}))
    """
)


def _sharded_fits():
    """Reference and retrained fits of three seeds through ``sharded_map`` (float64):
    ``theta (3 seeds, 2 models, features)``."""
    with jax.enable_x64(True):
        problems = _problems(3)
        ref, retr = jax.jit(lambda p: engine.sharded_map(
            lambda q: engine.fit_reference_and_retrained(q.forget, q.y_forget, q.retain, q.y_retain, steps=300), p))(problems)
        return np.stack([np.asarray(ref.theta), np.asarray(retr.theta)], axis=1)


def _sharding_grid(seeds=2):
    """5 settings x ``seeds``, each seed from its own start ``THETA0 + s``."""
    methods = [get_method("GA"), get_method("NPO", beta=0.5), get_method("NPO", beta=2.0), get_method("GA"),
               get_method("NPO", beta=1.0)]
    return engine.unlearn(LINEAR, methods, SGD, np.stack([THETA0 + s for s in range(seeds)]), DATA, Schedule.every(5, 20),
                          _theta_metrics, hyperparams={"learning_rate": [0.1, 0.2, 0.3, 0.4, 0.5]}, seeds=seeds,
                          per_seed=("params",))


def _run_with_devices(n: int) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("NPO_DEVICES", None)  # the count is the explicit use_cpu_cores(n), not the suite's NPO_DEVICES=1
    proc = subprocess.run(
        [sys.executable, "-c", SHARDED.format(root=str(ROOT), n=n)], capture_output=True, text=True, env=env, cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_grid_sharded_over_four_devices_matches_one_device():
    """5 settings x 2 seeds on 4 fake CPU devices (padded to 8 settings, 2 per device), in a
    process of its own, == the same grid on this process's one device; likewise 5 seeds
    (sharded by seed) and the fits."""
    assert len(jax.devices()) == 1
    theta = _sharding_grid()["theta"]  # (seeds, settings, records, 2)
    four = _run_with_devices(4)
    np.testing.assert_allclose(four["theta"], theta, rtol=1e-6)
    # 5 seeds on 4 devices: the seeds are sharded instead (padded to 8, 2 per device)
    by_seed = _sharding_grid(5)["theta"]
    np.testing.assert_allclose(four["by_seed"], by_seed, rtol=1e-6)
    np.testing.assert_allclose(by_seed[:2], theta, rtol=1e-6)
    assert by_seed.shape == (5, 5, 5, 2) and np.all(np.abs(np.diff(by_seed[:, :, 0], axis=0)) > 0.5)
    # the fits, one seed at a time per device (3 seeds padded to 4): the same numbers as here,
    # and as fitting the seeds together with vmap
    fits = _sharded_fits()
    np.testing.assert_allclose(four["fits"], fits, rtol=1e-12, atol=1e-15)
    with jax.enable_x64(True):
        ref, retr = jax.vmap(lambda q: engine.fit_reference_and_retrained(q.forget, q.y_forget, q.retain, q.y_retain,
                                                                          steps=300))(_problems(3))
    np.testing.assert_allclose(fits, np.stack([ref.theta, retr.theta], axis=1), rtol=1e-12, atol=1e-15)
    assert fits.shape == (3, 2, 8) and np.all(np.abs(fits[:, 0] - fits[:, 1]).max(axis=1) > 1e-3)
    assert theta.shape == (2, 5, 5, 2)
    # GA's gradient is constant, NPO's shrinks: GA's run is exact, NPO's moves less.
    np.testing.assert_allclose(theta[1, 0, -1], THETA0 + 1 - 0.1 * 20 * X.mean(axis=0), rtol=1e-5, atol=1e-5)
    assert np.linalg.norm(theta[0, 1, -1]) < 0.2 * 20 * np.linalg.norm(X.mean(axis=0))


def test_progress_reports_the_time_left_and_changes_nothing(monkeypatch):
    """With ``progress``, the running grid reports ``step t of n, about N s left`` at its records
    (here with no minimum interval between lines); its numbers are those of a silent run."""
    from synthetic.engine import loop

    monkeypatch.setattr(loop, "TIME_LEFT_EVERY", 0.0)
    lines = []
    kwargs = dict(hyperparams={"learning_rate": [0.1, 0.2]})
    methods = [get_method("GA"), get_method("NPO", beta=1.0)]
    loud = engine.unlearn(LINEAR, methods, SGD, THETA0, DATA, Schedule.every(5, 20), _theta_metrics, progress=lines.append,
                          **kwargs)
    quiet = engine.unlearn(LINEAR, methods, SGD, THETA0, DATA, Schedule.every(5, 20), _theta_metrics, **kwargs)
    np.testing.assert_array_equal(loud["theta"], quiet["theta"])
    # records at 0 (the pace starts there), 5, 10, 15, 20 (the end: no line)
    assert [line.split(",")[0] for line in lines] == ["step 5 of 20", "step 10 of 20", "step 15 of 20"]
    assert all(re.fullmatch(r"step \d+ of 20, about \d+ s left", line) for line in lines)


# --------------------------------------------------------------------------- shared layers on the engine


def test_param_distance_over_a_pytree():
    a = {"w": jnp.array([[1.0, 2.0], [3.0, 4.0]]), "b": (jnp.array([0.5]), jnp.array([-1.0, 0.0]))}
    b = {"w": jnp.zeros((2, 2)), "b": (jnp.array([0.5]), jnp.array([1.0, 2.0]))}
    # by hand: 1 + 4 + 9 + 16 from w, 0 from b[0], 4 + 4 from b[1]
    assert float(engine.param_distance(a, b)) == pytest.approx(np.sqrt(38.0), rel=1e-6)
    assert float(jax.jit(engine.param_distance)(a, a)) == 0.0
    assert float(engine.param_distance(a, b)) == float(engine.param_distance(b, a))


def test_divergence_runs_of_ga_and_npo_on_the_toy_model():
    """The long runs of synthetic.laws on the toy model: GA's parameters move by exactly
    -lr * mean(x) per step (Theorem 2's linear law, exact here); NPO's move less."""
    from synthetic.laws import divergence_runs, run_labels

    assert run_labels([0.5, 2.0]) == ["GA", "NPO beta=0.5", "NPO beta=2"]
    out = divergence_runs(LINEAR, THETA0, DATA, _theta_metrics, context=None, betas=[0.5, 2.0], steps=100,
                          learning_rate=0.1, n_records=5)
    assert set(out) == {"labels", "betas", "steps", "diverged_step", "theta", "norm"}  # no engine bookkeeping
    assert list(out["labels"]) == ["GA", "NPO beta=0.5", "NPO beta=2"]
    np.testing.assert_array_equal(out["betas"], [np.nan, 0.5, 2.0])
    # 5 records over 2 decades: 0, 1, 3, 10, 32, 100 (log-spaced, 2 per decade)
    np.testing.assert_array_equal(out["steps"], engine.log_spaced_steps(100, 2.0))
    assert out["steps"][0] == 0 and out["steps"][-1] == 100
    np.testing.assert_array_equal(out["diverged_step"], [-1, -1, -1])
    assert out["theta"].shape == (3, out["steps"].size, 2) and out["norm"].shape == (3, out["steps"].size)
    ga = -0.1 * out["steps"][:, None] * X.mean(axis=0)
    np.testing.assert_allclose(out["theta"][0], ga, rtol=1e-5, atol=1e-6)
    # NPO's weight shrinks as the forget log-probability falls: it moves less than GA, beta = 2 least
    assert out["norm"][0, -1] > out["norm"][1, -1] > out["norm"][2, -1] > 0


def test_train_keeps_the_last_partial_batch_when_asked():
    # loss = mean of the batch's rows of x, so the loss of a step is the mean of the rows drawn:
    # with 10 rows and batches of 4, an epoch is 2 full batches, plus one of the 2 rows left
    data = {"x": np.arange(10, dtype=np.float32)}

    def loss(p, batch):
        return p * 0.0 + jnp.mean(batch["x"])

    kept = engine.train(jax.random.key(0), jnp.zeros(()), loss, data, optax.sgd(0.1), batch_size=4, epochs=2,
                        drop_last=False)[1]
    dropped = engine.train(jax.random.key(0), jnp.zeros(()), loss, data, optax.sgd(0.1), batch_size=4, epochs=2)[1]
    assert kept.shape == (6,) and dropped.shape == (4,)
    # the same permutations: each epoch's three batches see every row once
    np.testing.assert_allclose((4 * kept[0] + 4 * kept[1] + 2 * kept[2]) / 10, 4.5, rtol=1e-6)
    np.testing.assert_array_equal(kept[[0, 1, 3, 4]], dropped)
    with pytest.raises(ValueError, match="drop_last"):
        engine.train(jax.random.key(0), jnp.zeros(()), loss, data, optax.sgd(0.1), batch_size=4, epochs=1, drop_last=1)


@pytest.mark.usefixtures("x64")
def test_a_nan_setting_leaves_the_others_of_its_grid_alone(fitted):
    """A component whose loss is NaN diverges its own run; GA beside it in the same grid (where
    that component has weight 0) runs exactly as GA alone: settings of a grid are independent."""
    from theory import Method, register_component
    from theory.components import COMPONENTS

    problems, ref, retr = fitted
    one = jax.tree.map(lambda a: a[:1], problems)
    register_component("nan_for_test", lambda x, h: jnp.mean(jnp.sqrt(x["forget_logp"] - 1.0)),
                       needs=("forget_logp",), replace=True)  # log pi <= 0: sqrt of a negative, NaN
    try:
        grid = unlearn_binary(one, ref.theta[:1], retr.theta[:1], [get_method("GA"), Method.of(nan_for_test=1.0)],
                              [5e-4, 5e-4], schedule=SCHEDULE)
        alone = unlearn_binary(one, ref.theta[:1], retr.theta[:1], [get_method("GA")], [5e-4], schedule=SCHEDULE)
    finally:
        COMPONENTS.pop("nan_for_test", None)
    assert int(grid["diverged_step"][0, 1]) >= 0 and int(grid["diverged_step"][0, 0]) == -1
    for name in METRICS:  # as test_grid_equals_python_loop: a grid and a lone run round alike but for an ulp
        np.testing.assert_allclose(grid[name][0, 0], alone[name][0, 0], rtol=1e-12, atol=1e-15)


@pytest.mark.usefixtures("x64")
def test_a_metric_named_like_an_engine_output_is_refused_before_the_grid_runs(fitted, monkeypatch):
    from synthetic.engine import loop

    problems, ref, retr = fitted
    one = jax.tree.map(lambda a: a[:1], problems)
    def after_the_run(*args):
        raise AssertionError("the grid ran before the metric's name was refused")

    monkeypatch.setattr(loop, "_outputs", after_the_run)  # where the name was refused before: after the run
    batch = binary_batch(ref.theta[0], one.forget[0], one.y_forget[0])
    with pytest.raises(ValueError, match=r"metrics returns \['steps'\], names reserved for the engine's own outputs"):
        engine.unlearn(BINARY_INPUTS, [get_method("GA")], SGD, ref.theta[0], batch, Schedule.every(10, 10**6),
                       lambda p, m, c: {"steps": jnp.sum(p)}, hyperparams={"learning_rate": [1.0]})
