"""The batched engine: fit solvers, one run by hand, grid == loop, sharded grid, divergence."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synthetic import engine
from synthetic.data import DataConfig, make_dataset
from synthetic.models import logistic_log_probs, random_features_init, take_label
from synthetic.section4 import prepare_seed
from theory import get_method, kl_divergence

ROOT = Path(__file__).resolve().parents[1]
SMALL = DataConfig(d=4, n_forget=30, n_retain=60, n_eval_forget=40, n_eval_retain=40)
SETTINGS = [("GA", 1e-2, 1.0), ("NPO+RT", 5e-2, 0.5), ("DPO+RT", 5e-2, 2.0), ("IDK+RT", 1e-2, 1.0), ("GA+KL", 1e-2, 1.0)]


def _problems(seeds=2):
    from synthetic.models import RandomFeaturesConfig

    keys = jax.vmap(jax.random.key)(jnp.arange(seeds))
    return jax.vmap(lambda k: prepare_seed(k, SMALL, RandomFeaturesConfig(d=4, n_features=8)))(keys)


@pytest.fixture(scope="module")
def fitted():
    problems = _problems()
    ref, retr = jax.vmap(lambda p: engine.fit_reference_and_retrained(p, solver="newton", steps=30))(problems)
    return problems, ref, retr


def test_newton_reaches_the_minimiser_gd_approaches(fitted):
    _, ref, retr = fitted
    assert np.all(ref.grad_norm < 1e-10) and np.all(retr.grad_norm < 1e-10)
    # Plain logistic regression on the raw inputs (well conditioned), as in the paper's recipe.
    data = make_dataset(jax.random.key(0), SMALL)
    x, y = jnp.concatenate([data.x_forget, data.x_retain]), jnp.concatenate([data.y_forget, data.y_retain])
    newton = engine.fit(x, y, jnp.ones(len(y)), solver="newton", steps=30)
    gd_short = engine.fit(x, y, jnp.ones(len(y)), solver="gd", steps=200, learning_rate=0.05)
    gd_long = engine.fit(x, y, jnp.ones(len(y)), solver="gd", steps=20000, learning_rate=0.05)
    err_short = np.linalg.norm(gd_short.theta - newton.theta)
    err_long = np.linalg.norm(gd_long.theta - newton.theta)
    assert newton.grad_norm < 1e-12
    assert err_long < 1e-6 < 0.1 < err_short
    assert gd_long.grad_norm < 1e-6 < gd_short.grad_norm
    np.testing.assert_allclose(gd_long.loss, newton.loss, rtol=1e-10)


def test_fit_masks_select_examples(fitted):
    """The retrained fit (mask on retain) equals a fit on the retain rows alone."""
    problems, _, retr = fitted
    p0 = jax.tree.map(lambda a: a[0], problems)
    alone = engine.fit(p0.retain, p0.y_retain, jnp.ones(len(p0.y_retain)), solver="newton", steps=30)
    np.testing.assert_allclose(alone.theta, retr.theta[0], atol=1e-9)


def test_one_ga_step_by_hand(fitted):
    problems, ref, retr = fitted
    p0 = jax.tree.map(lambda a: a[0], problems)
    lr = 0.1
    traj = engine.unlearn(p0, ref.theta[0], retr.theta[0], get_method("GA"), lr, steps=1, eval_every=1)
    grad = jax.grad(lambda t: jnp.mean(take_label(logistic_log_probs(t, p0.forget), p0.y_forget)))(ref.theta[0])
    np.testing.assert_allclose(traj.param_distance, [0.0, lr * np.linalg.norm(grad)], rtol=1e-12)
    theta1 = ref.theta[0] - lr * grad
    lp = lambda t, x: logistic_log_probs(t, x)  # noqa: E731
    expected_fd = [
        jnp.mean(kl_divergence(lp(retr.theta[0], p0.eval_forget), lp(t, p0.eval_forget))) for t in (ref.theta[0], theta1)
    ]
    np.testing.assert_allclose(traj.forget_distance, expected_fd, rtol=1e-12)
    np.testing.assert_allclose(traj.forget_kl[0], 0.0, atol=1e-15)  # KL(ref || ref) at step 0
    assert int(traj.diverged_step) == -1


def test_grid_equals_python_loop(fitted):
    problems, ref, retr = fitted
    methods = [get_method(m, beta=b) for m, _, b in SETTINGS]
    lrs = [lr for _, lr, _ in SETTINGS]
    grid = engine.unlearn_grid(problems, ref.theta, retr.theta, methods, lrs, steps=60, eval_every=20)
    assert grid.forget_distance.shape == (2, len(SETTINGS), 4)
    for s in range(2):
        p = jax.tree.map(lambda a: a[s], problems)
        for c, (m, lr) in enumerate(zip(methods, lrs)):
            one = engine.unlearn(p, ref.theta[s], retr.theta[s], m, lr, steps=60, eval_every=20)
            for name in engine.METRICS:
                np.testing.assert_allclose(getattr(grid, name)[s, c], getattr(one, name), rtol=1e-10, atol=1e-14)


def test_divergence_is_reported_not_hidden(fitted):
    problems, ref, retr = fitted
    p0 = jax.tree.map(lambda a: a[0], problems)
    traj = engine.unlearn(p0, ref.theta[0], retr.theta[0], get_method("GA"), 1e306, steps=40, eval_every=10)
    step = int(traj.diverged_step)
    assert 1 <= step <= 40
    evals = np.arange(0, 41, 10)
    assert np.all(np.isnan(traj.retain_distance[evals >= step]))
    assert np.all(np.isfinite(traj.retain_distance[evals < step]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=10, eval_every=3), "eval_every"),
        (dict(steps=0, eval_every=1), "steps"),
        (dict(steps=10, eval_every=5, lr=0.0), "learning_rate"),
        (dict(steps=10, eval_every=5, lr=float("nan")), "learning_rate"),
    ],
)
def test_bad_schedule_and_learning_rate(fitted, kwargs, match):
    problems, ref, retr = fitted
    p0 = jax.tree.map(lambda a: a[0], problems)
    lr = kwargs.pop("lr", 0.1)
    with pytest.raises(ValueError, match=match):
        engine.unlearn(p0, ref.theta[0], retr.theta[0], get_method("GA"), lr, **kwargs)


def test_grid_needs_one_learning_rate_per_method(fitted):
    problems, ref, retr = fitted
    with pytest.raises(ValueError, match="learning_rates"):
        engine.unlearn_grid(problems, ref.theta, retr.theta, [get_method("GA")] * 2, [0.1], steps=2, eval_every=1)


def test_bad_solver(fitted):
    with pytest.raises(ValueError, match="solver"):
        engine.fit(jnp.ones((3, 2)), jnp.array([0, 1, 0]), jnp.ones(3), solver="lbfgs")


SHARDED = textwrap.dedent(
    """
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    sys.path.insert(0, {root!r})
    import synthetic
    from tests.test_engine import _problems, SETTINGS
    from synthetic import engine
    from theory import get_method
    assert len(jax.devices()) == {n}, jax.devices()
    problems = _problems()
    ref, retr = jax.vmap(lambda p: engine.fit_reference_and_retrained(p, solver="newton", steps=30))(problems)
    methods = [get_method(m, beta=b) for m, _, b in SETTINGS]
    traj = engine.unlearn_grid(problems, ref.theta, retr.theta, methods, [lr for _, lr, _ in SETTINGS],
                               steps=60, eval_every=20)
    spec = str(traj.forget_distance.sharding.spec) if {n} > 1 else ""
    print(json.dumps({{"fd": np.asarray(traj.forget_distance).tolist(),
                      "rd": np.asarray(traj.retain_distance).tolist(), "devices": {n}}}))
    """
)


def _run_with_devices(n: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}", JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", SHARDED.format(root=str(ROOT), n=n)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_grid_sharded_over_four_devices_matches_one_device():
    """5 settings on 4 fake CPU devices (padded to 8, sharded 2 per device) == 1 device."""
    one, four = _run_with_devices(1), _run_with_devices(4)
    np.testing.assert_allclose(four["fd"], one["fd"], rtol=1e-10)
    np.testing.assert_allclose(four["rd"], one["rd"], rtol=1e-10)
