"""The optimizers of synthetic.optim: the transformers AdamW as an optax GradientTransformation,
full-batch gradient descent with an injected step, and AdamW with warm-up and linear decay."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from synthetic.optim import SGD, transformers_adamw, warmup_decay_adamw

LR = 1e-2
PARAMS = {"w": np.array([0.5, -1.0, 2.0], np.float32), "b": np.float32(0.3)}
GRADS = [
    {"w": np.array([0.1, -0.2, 0.05], np.float32), "b": np.float32(1.0)},
    {"w": np.array([-0.3, 0.1, 0.02], np.float32), "b": np.float32(-0.5)},
]


def reference(params, grads_seq, lr, wd, b1=0.9, b2=0.999, eps=1e-6):
    """The stated formulas in float64 numpy, leaf by leaf (``lr`` a number or a function of t)."""
    out = {}
    for k, p in params.items():
        p = np.asarray(p, np.float64)
        m = np.zeros_like(p)
        v = np.zeros_like(p)
        for t, grads in enumerate(grads_seq, start=1):
            lr_t = lr(t) if callable(lr) else lr
            g = np.asarray(grads[k], np.float64)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g**2
            p = p - lr_t * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
            p = p - lr_t * wd * p
        out[k] = p
    return out


def run(opt, params, grads_seq, jit=False):
    state = opt.init(params)
    update = jax.jit(opt.update) if jit else opt.update
    for g in grads_seq:
        u, state = update(g, state, params)
        params = optax.apply_updates(params, u)
    return params


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_two_steps_match_the_formulas(wd):
    got = run(transformers_adamw(LR, weight_decay=wd), PARAMS, GRADS)
    want = reference(PARAMS, GRADS, LR, wd)
    for k in PARAMS:
        assert np.asarray(got[k]).dtype == np.float32
        np.testing.assert_allclose(np.asarray(got[k], np.float64), want[k], rtol=1e-6)
    # the change itself (not only p) is right to ~1e-6 relative
    for k in PARAMS:
        delta = np.asarray(got[k], np.float64) - np.asarray(PARAMS[k], np.float64)
        np.testing.assert_allclose(delta, want[k] - np.asarray(PARAMS[k], np.float64), rtol=2e-5)


def test_without_params_only_when_weight_decay_is_zero():
    opt = transformers_adamw(LR)
    u, _ = opt.update(GRADS[0], opt.init(PARAMS))  # no params needed at wd = 0
    np.testing.assert_allclose(np.asarray(u["b"]), -LR * np.sqrt(1e-3) / 0.1 * 0.1 / (np.sqrt(1e-3) + 1e-6), rtol=1e-6)
    opt = transformers_adamw(LR, weight_decay=0.1)
    with pytest.raises(ValueError, match="params"):
        opt.update(GRADS[0], opt.init(PARAMS))


def test_eps_placement_differs_from_optax_adamw():
    """Step 1: transformers gives lr sqrt(1-b2) g (1-b1)/((1-b1)(sqrt(1-b2)|g| + eps)), optax
    lr g / (|g| + eps); with |g| = 1e-7 << eps / sqrt(1 - b2) the transformers step is smaller."""
    params = {"w": jnp.zeros(3, jnp.float32)}
    grads = {"w": jnp.full(3, 1e-7, jnp.float32)}
    ours, _ = transformers_adamw(LR).update(grads, transformers_adamw(LR).init(params), params)
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes int and float
        theirs, _ = optax.adamw(LR, eps=1e-6, weight_decay=0.0).update(grads, optax.adamw(LR).init(params), params)
    ours, theirs = np.asarray(ours["w"], np.float64), np.asarray(theirs["w"], np.float64)
    g, s = 1e-7, np.sqrt(1e-3)
    np.testing.assert_allclose(ours, -LR * s * g / (s * g + 1e-6), rtol=1e-5)
    np.testing.assert_allclose(theirs, -LR * g / (g + 1e-6), rtol=1e-5)
    assert np.all(np.abs(ours) < 0.1 * np.abs(theirs))
    # with large gradients eps hardly matters and both are ~ -lr sign(g)
    big = {"w": jnp.full(3, 1.0, jnp.float32)}
    ours_big, _ = transformers_adamw(LR).update(big, transformers_adamw(LR).init(params), params)
    np.testing.assert_allclose(np.asarray(ours_big["w"]), -LR, rtol=1e-4)


def test_jit_and_inject_hyperparams_equal_the_plain_one():
    plain = run(transformers_adamw(LR, weight_decay=0.1), PARAMS, GRADS)
    jitted = run(transformers_adamw(LR, weight_decay=0.1), PARAMS, GRADS, jit=True)
    injected_opt = optax.inject_hyperparams(transformers_adamw)(learning_rate=LR, weight_decay=0.1)
    injected = run(injected_opt, PARAMS, GRADS, jit=True)
    for k in PARAMS:
        np.testing.assert_allclose(np.asarray(jitted[k]), np.asarray(plain[k]), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(injected[k]), np.asarray(plain[k]), rtol=1e-6)
    # the injected learning rate can be changed in the state (a traced array, no retrace needed)
    state = injected_opt.init(PARAMS)
    assert isinstance(state.hyperparams["learning_rate"], jax.Array)
    state.hyperparams["learning_rate"] = jnp.asarray(2 * LR, jnp.float32)
    u2, _ = jax.jit(injected_opt.update)(GRADS[0], state, PARAMS)
    u1, _ = transformers_adamw(2 * LR, weight_decay=0.1).update(GRADS[0], transformers_adamw(2 * LR).init(PARAMS), PARAMS)
    for k in PARAMS:
        np.testing.assert_allclose(np.asarray(u2[k]), np.asarray(u1[k]), rtol=1e-6)


def test_float32_params_stay_float32_under_x64():
    with jax.enable_x64(True):
        params = {"w": jnp.asarray(PARAMS["w"]), "b": jnp.asarray(PARAMS["b"])}
        grads = [{k: jnp.asarray(v) for k, v in g.items()} for g in GRADS]
        for opt in (transformers_adamw(LR, weight_decay=0.1),
                    optax.inject_hyperparams(transformers_adamw)(learning_rate=LR, weight_decay=0.1)):
            state = opt.init(params)
            u, state = jax.jit(opt.update)(grads[0], state, params)
            assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(u))
            new = run(opt, params, grads, jit=True)
            assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(new))
            inner = getattr(state, "inner_state", state)
            assert all(x.dtype == jnp.float32 for x in jax.tree.leaves((inner.mu, inner.nu)))
            want = reference(PARAMS, GRADS, LR, 0.1)
            for k in PARAMS:
                np.testing.assert_allclose(np.asarray(new[k], np.float64), want[k], rtol=1e-6)


def test_bfloat16_params_keep_their_dtype_and_follow_the_formulas():
    params = {"w": jnp.asarray(PARAMS["w"], jnp.bfloat16)}
    grads = [{"w": jnp.asarray(g["w"], jnp.bfloat16)} for g in GRADS]
    new = run(transformers_adamw(LR, weight_decay=0.1), params, grads, jit=True)
    assert new["w"].dtype == jnp.bfloat16
    want = reference({"w": np.asarray(params["w"], np.float64)}, [{"w": np.asarray(g["w"], np.float64)} for g in grads], LR, 0.1)
    np.testing.assert_allclose(np.asarray(new["w"], np.float64), want["w"], rtol=2e-2)



def test_a_schedule_is_called_with_the_steps_taken():
    """A schedule gets the number of steps already taken (0 on step 1), as in optax."""
    seen = []

    def sched(count):
        seen.append(int(count))
        return LR * (count + 1).astype(jnp.float32)

    got = run(transformers_adamw(sched, weight_decay=0.1), PARAMS, GRADS)
    assert seen == [0, 1]
    want = reference(PARAMS, GRADS, lambda t: LR * t, 0.1)
    for k in PARAMS:
        np.testing.assert_allclose(np.asarray(got[k], np.float64), want[k], rtol=1e-6)


# --------------------------------------------------------------------------- SGD, warm-up and decay


def test_sgd_steps_by_the_injected_learning_rate():
    state = SGD.init(PARAMS)
    state.hyperparams["learning_rate"] = jnp.asarray(0.25)  # what the engine sets per setting
    u, _ = SGD.update(GRADS[0], state, PARAMS)
    np.testing.assert_allclose(u["w"], -0.25 * GRADS[0]["w"], rtol=1e-6)
    assert float(u["b"]) == pytest.approx(-0.25)


def _warmup_decay(k, peak, warmup, total):
    """The learning rate of update ``k`` (0-based) by the stated rule: 0 -> peak over ``warmup``
    steps, then peak -> 0 at step ``total``."""
    return peak * k / warmup if k < warmup else peak * max(0.0, 1 - (k - warmup) / (total - warmup))


def _unit_and_scheduled(opt, steps):
    """Each update of ``opt`` and of optax.adamw at learning rate 1 from the same params and
    gradients (the params are not moved, so Adam's moments are the same in both)."""
    unit = optax.adamw(1.0, weight_decay=0.1)
    s_opt, s_unit = opt.init(PARAMS), unit.init(PARAMS)
    pairs = []
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes int and float
        for k in range(steps):
            g = GRADS[k % 2]
            u, s_opt = opt.update(g, s_opt, PARAMS)
            v, s_unit = unit.update(g, s_unit, PARAMS)
            pairs.append((u, v))
    return pairs


def test_warmup_decay_adamw_follows_the_schedule():
    peak, warmup, total = 1e-2, 4, 10
    pairs = _unit_and_scheduled(warmup_decay_adamw(warmup, total, weight_decay=0.1, learning_rate=peak), 12)
    for k, (u, v) in enumerate(pairs):
        lr = _warmup_decay(k, peak, warmup, total)
        np.testing.assert_allclose(u["w"], lr * np.asarray(v["w"]), rtol=2e-5, atol=1e-12, err_msg=f"update {k}")
    # the schedule's landmarks: nothing at the first update, the peak after the warm-up, 0 from `total` on
    assert np.all(np.asarray(pairs[0][0]["w"]) == 0)
    np.testing.assert_allclose(pairs[4][0]["w"], peak * np.asarray(pairs[4][1]["w"]), rtol=2e-5)
    assert np.all(np.asarray(pairs[10][0]["w"]) == 0) and np.all(np.asarray(pairs[11][0]["w"]) == 0)


def test_warmup_decay_adamw_with_an_injected_peak_and_memoised():
    opt = warmup_decay_adamw(4, 10, weight_decay=0.1)
    assert opt is warmup_decay_adamw(4, 10, weight_decay=0.1)  # one object: one compiled program per setting
    assert opt is not warmup_decay_adamw(4, 10, weight_decay=0.0)
    fixed = warmup_decay_adamw(4, 10, weight_decay=0.1, learning_rate=2e-2)
    s_opt, s_fixed = opt.init(PARAMS), fixed.init(PARAMS)
    s_opt.hyperparams["learning_rate"] = jnp.asarray(2e-2)  # the engine's injected peak
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes int and float
        for k in range(6):
            u, s_opt = opt.update(GRADS[k % 2], s_opt, PARAMS)
            v, s_fixed = fixed.update(GRADS[k % 2], s_fixed, PARAMS)
            np.testing.assert_allclose(u["w"], v["w"], rtol=1e-6, err_msg=f"update {k}")
    # a warm-up of 0 steps is one step: the first update is still 0, the second at the peak
    pairs = _unit_and_scheduled(warmup_decay_adamw(0, 10, weight_decay=0.1, learning_rate=1e-2), 2)
    assert np.all(np.asarray(pairs[0][0]["w"]) == 0)
    np.testing.assert_allclose(pairs[1][0]["w"], 1e-2 * np.asarray(pairs[1][1]["w"]), rtol=2e-5)
