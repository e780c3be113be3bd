"""The plain-JAX transformer: shapes, dtypes, causality through gradients, a copy task, generation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from synthetic.models import transformer as tf

TINY = tf.TransformerConfig(vocab_size=7, context=8, layers=2, width=16, heads=2, mlp_ratio=2)
# Jitted once here: evaluated op by op, every primitive would compile on its own.
next_token_log_probs = jax.jit(tf.next_token_log_probs)
token_log_probs = jax.jit(tf.token_log_probs)
sequence_log_probs = jax.jit(tf.sequence_log_probs)
forward = jax.jit(tf.forward)


@pytest.fixture(scope="module")
def params():
    return tf.init(jax.random.key(0), TINY)


def test_shapes_dtypes_and_normalisation(params):
    tokens = jax.random.randint(jax.random.key(1), (3, 8), 0, 7)
    dist = next_token_log_probs(params, tokens)
    lp = token_log_probs(params, tokens)
    assert dist.shape == (3, 7, 7) and lp.shape == (3, 7)
    assert dist.dtype == jnp.float32 and lp.dtype == jnp.float32
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(params))
    np.testing.assert_allclose(jax.scipy.special.logsumexp(dist, axis=-1), 0.0, atol=1e-5)
    # token_log_probs picks the actual next token out of the distribution
    np.testing.assert_allclose(lp[1, 2], dist[1, 2, tokens[1, 3]], rtol=1e-6)
    mask = jnp.ones((3, 8), jnp.float32).at[:, 5:].set(0.0)
    np.testing.assert_allclose(sequence_log_probs(params, tokens, mask), lp[:, :4].sum(-1), rtol=1e-5)
    # param_count agrees with the formula 12 L D^2-style count for this config
    D, L, V, T, F = 16, 2, 7, 8, 32
    expected = V * D + T * D + L * (4 * D + 3 * D * D + D * D + 2 * D * F + F + D) + 2 * D + D * V
    assert tf.param_count(params) == expected


def test_causality_through_gradients(params):
    """Logits at position t have zero gradient w.r.t. the position embedding of any s > t,
    and a non-zero one for s <= t (nanodo's test_causality, through the position table)."""
    tokens = jax.random.randint(jax.random.key(2), (2, 8), 0, 7)

    def logits_per_position(pos_TxD):
        return jnp.sum(tf.forward({**params, "pos_TxD": pos_TxD}, tokens), axis=(0, 2))  # (T,)

    jac_TxTxD = jax.jit(jax.jacrev(logits_per_position))(params["pos_TxD"])
    norms_TxT = np.linalg.norm(np.asarray(jac_TxTxD), axis=2)  # [t, s]: d logits_t / d pos_s
    assert np.all(np.triu(norms_TxT, k=1) == 0.0), norms_TxT
    assert np.all(norms_TxT[np.tril_indices(8)] > 0.0), norms_TxT


def test_changing_future_tokens_leaves_past_log_probs(params):
    a = jnp.array([[1, 2, 3, 4, 5, 6, 0, 1]])
    b = a.at[0, 5:].set(jnp.array([0, 0, 0]))
    np.testing.assert_array_equal(next_token_log_probs(params, a)[:, :5], next_token_log_probs(params, b)[:, :5])
    assert not np.allclose(next_token_log_probs(params, a)[:, 5:], next_token_log_probs(params, b)[:, 5:])


def test_bad_inputs_raise_value_errors(params):
    with pytest.raises(ValueError, match="width"):
        tf.TransformerConfig(width=10, heads=3)
    with pytest.raises(ValueError, match="layers"):
        tf.TransformerConfig(layers=0)
    with pytest.raises(ValueError, match="tokens_BxT"):
        tf.token_log_probs(params, jnp.zeros((2, 8), jnp.float32))
    with pytest.raises(ValueError, match="context"):
        tf.token_log_probs(params, jnp.zeros((2, 9), jnp.int32))
    with pytest.raises(ValueError, match="tokens_BxT"):
        tf.token_log_probs(params, jnp.zeros((8,), jnp.int32))
    with pytest.raises(ValueError, match="length"):
        tf.generate(params, jax.random.key(0), jnp.zeros((1, 3), jnp.int32), length=9)
    with pytest.raises(ValueError, match="temperature"):
        tf.generate(params, jax.random.key(0), jnp.zeros((1, 3), jnp.int32), length=5, temperature=-1.0)
    with pytest.raises(ValueError, match="config"):
        tf.init(jax.random.key(0), {"layers": 2})


def test_greedy_generation_is_argmax_and_keeps_prompt(params):
    prompt = jnp.array([[1, 2, 3], [4, 5, 6]], jnp.int32)
    out = tf.generate(params, jax.random.key(0), prompt, length=8, temperature=0.0)
    assert out.shape == (2, 8) and out.dtype == jnp.int32
    np.testing.assert_array_equal(out[:, :3], prompt)
    # each greedy token is the argmax given the tokens before it (causal: one forward suffices)
    np.testing.assert_array_equal(out[:, 3:], jnp.argmax(forward(params, out)[:, 2:-1], axis=-1))
    sampled = tf.generate(params, jax.random.key(1), prompt, length=8, temperature=1.0)
    assert sampled.shape == (2, 8) and np.all((np.asarray(sampled) >= 0) & (np.asarray(sampled) < 7))


def test_tiny_model_learns_a_copy_task():
    """Sequences ``x x`` (a random 4-token half repeated): after training, greedy generation
    from the first half reproduces it (needs attention to look back 4 positions; one block does)."""
    config = tf.TransformerConfig(vocab_size=6, context=8, layers=1, width=32, heads=2, mlp_ratio=2)
    params = tf.init(jax.random.key(3), config)
    opt = optax.adam(3e-3)

    def loss(p, x):
        return -jnp.mean(tf.token_log_probs(p, x)[:, 3:])  # only the copied half is learnable

    @jax.jit
    def step(p, s, key):
        half = jax.random.randint(key, (64, 4), 0, 6)
        x = jnp.concatenate([half, half], axis=1)
        g = jax.grad(loss)(p, x)
        with jax.numpy_dtype_promotion("standard"):  # optax's Adam mixes int32 counts and floats
            u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    state = opt.init(params)
    for i in range(60):  # greedy copies exceed 95% from about step 20 (and reach 100% at 30)
        params, state = step(params, state, jax.random.key(100 + i))
    half = jax.random.randint(jax.random.key(9), (200, 4), 0, 6)
    out = tf.generate(params, jax.random.key(0), half, length=8, temperature=0.0)
    accuracy = float(np.mean(np.asarray(out[:, 4:]) == np.asarray(half)))
    assert accuracy > 0.95, accuracy  # chance is 1/6


# --------------------------------------------------------------------------- the study's architecture

STUDY_TINY = tf.TransformerConfig.study(vocab_size=7, context=8, layers=2, width=16)


def test_the_study_architecture_is_a_config_of_the_same_code():
    c = STUDY_TINY
    assert (c.heads, c.mlp_ratio, c.norm, c.attn_out, c.final_norm, c.activation, c.qkv_bias, c.out_bias, c.init,
            c.pos_std) == (1, 1, "post", False, False, "relu", False, True, "torch", 0.02)
    full = tf.TransformerConfig.study()
    assert (full.layers, full.width) == (4, 128)
    p = tf.init(jax.random.key(0), c)
    assert p["config"] == c and "attn_out_LxHxKxD" not in p["blocks"] and "ln_f_scale_D" not in p
    assert "qkv_bias_Lx3xHxK" not in p["blocks"] and p["out_bias_V"].shape == (7,)
    D, L, V, T = 16, 2, 7, 8
    # embeddings, then per layer qkv (no bias), MLP D -> D -> D (+ biases), two LayerNorms; the head (+ bias)
    assert tf.param_count(p) == V * D + T * D + L * (3 * D * D + 2 * (D * D + D) + 4 * D) + D * V + V
    # PyTorch's initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), so std 1/sqrt(3 fan_in); token
    # embeddings N(0, 1); the positions N(0, 0.02), as the study's code draws them
    big = tf.init(jax.random.key(1), tf.TransformerConfig.study())
    w = np.asarray(big["blocks"]["mlp_in_LxDxF"])
    assert np.abs(w).max() <= 1 / np.sqrt(128) and np.std(w) == pytest.approx(1 / np.sqrt(3 * 128), rel=0.02)
    assert np.std(np.asarray(big["embed_VxD"])) == pytest.approx(1.0, rel=0.1)
    assert np.std(np.asarray(big["pos_TxD"])) == pytest.approx(0.02, rel=0.1)
    # the switches still give the biases and N(0, 1) positions of a plain PyTorch model
    plain = tf.init(jax.random.key(1), tf.TransformerConfig.study(qkv_bias=True, pos_std=None))
    assert plain["blocks"]["qkv_bias_Lx3xHxK"].shape == (4, 3, 1, 128)
    assert np.std(np.asarray(plain["pos_TxD"])) == pytest.approx(1.0, rel=0.1)
    for bad in (0.0, -1.0, float("nan"), True, "0.02"):
        with pytest.raises(ValueError, match="pos_std"):
            tf.TransformerConfig.study(pos_std=bad)
    with pytest.raises(ValueError, match="norm"):
        tf.TransformerConfig(norm="sandwich")
    with pytest.raises(ValueError, match="activation"):
        tf.TransformerConfig.study(activation="tanh")


def test_post_norm_blocks_end_in_a_layer_norm_and_stay_causal():
    p = tf.init(jax.random.key(2), STUDY_TINY)
    tokens = jax.random.randint(jax.random.key(3), (3, 8), 0, 7)
    h = np.asarray(tf.residual_stream(p, tokens, 1))  # after a post-LN block: unit LayerNorm output
    np.testing.assert_allclose(h.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(h.std(-1), 1.0, rtol=1e-3)
    a = jnp.array([[1, 2, 3, 4, 5, 6, 0, 1]])
    b = a.at[0, 5:].set(jnp.array([0, 0, 0]))
    np.testing.assert_allclose(next_token_log_probs(p, a)[:, :5], next_token_log_probs(p, b)[:, :5], rtol=1e-6)
    # the forward pass is the hand-written post-LN block (one head, no output projection, ReLU), in numpy
    blk = {k: np.asarray(v[0], np.float64) for k, v in p["blocks"].items()}
    x = np.asarray(p["embed_VxD"], np.float64)[np.asarray(a)] + np.asarray(p["pos_TxD"], np.float64)[None, :8]
    qkv = np.einsum("btd,dshk->btshk", x, blk["qkv_LxDx3xHxK"])  # no q/k/v biases, as the study
    q, k, v = qkv[:, :, 0, 0], qkv[:, :, 1, 0], qkv[:, :, 2, 0]
    s = np.where(np.tril(np.ones((8, 8), bool)), q @ k.swapaxes(1, 2) / 4.0, -np.inf)
    att = np.exp(s - s.max(-1, keepdims=True))
    att /= att.sum(-1, keepdims=True)

    def ln(y, scale, bias):
        return (y - y.mean(-1, keepdims=True)) / np.sqrt(y.var(-1, keepdims=True) + 1e-5) * scale + bias

    x = ln(x + att @ v, blk["ln1_scale_LxD"], blk["ln1_bias_LxD"])
    x = ln(x + np.maximum(x @ blk["mlp_in_LxDxF"] + blk["mlp_in_bias_LxF"], 0) @ blk["mlp_out_LxFxD"]
           + blk["mlp_out_bias_LxD"], blk["ln2_scale_LxD"], blk["ln2_bias_LxD"])
    np.testing.assert_allclose(tf.residual_stream(p, a, 1), x, rtol=2e-4, atol=2e-5)


def test_the_config_rides_along_through_optimizers_vmap_and_saving():
    from synthetic import store

    p = tf.init(jax.random.key(4), STUDY_TINY)
    opt = optax.sgd(1e-3)
    # grad, vmap and forward jitted (the config passes through jit too): one compiled program
    # each instead of one per primitive
    grads = jax.jit(jax.grad(lambda q: jnp.sum(tf.forward(q, jnp.zeros((1, 8), jnp.int32)))))(p)
    updates, _ = opt.update(grads, opt.init(p), p)
    q = optax.apply_updates(p, updates)
    assert q["config"] == STUDY_TINY and len(jax.tree.leaves(q)) == len(jax.tree.leaves(p))
    stacked = jax.tree.map(lambda *a: jnp.stack(a), p, q)
    out = jax.jit(jax.vmap(lambda r: tf.forward(r, jnp.zeros((1, 8), jnp.int32))))(stacked)
    assert out.shape == (2, 1, 8, 7)
    flat = store.flatten_tree(p)
    assert "config" not in " ".join(flat)
    back = store.unflatten_tree(flat, jax.eval_shape(lambda k: tf.init(k, STUDY_TINY), jax.random.key(0)))
    np.testing.assert_array_equal(forward(back, jnp.ones((1, 8), jnp.int32)), forward(p, jnp.ones((1, 8), jnp.int32)))


def test_greedy_complete_refuses_prompt_lengths_out_of_range():
    config = tf.TransformerConfig(vocab_size=10, context=8, layers=1, width=16, heads=2)
    params = tf.init(jax.random.key(0), config)
    tokens = jnp.zeros((2, 8), jnp.int32)
    for bad, message in ((jnp.array([-1, 3]), "from 1 to 8 .*got -1 to 3"), (jnp.array([1, 9]), "got 1 to 9"),
                         (jnp.array([1.0, 2.0]), "2 integers .* float32"), (jnp.array([1]), r"shape \(1,\)")):
        with pytest.raises(ValueError, match=f"prompt_length_B must be .*{message}"):
            tf.greedy_complete(params, tokens, bad)
    assert jax.jit(tf.greedy_complete)(params, tokens, jnp.array([1, 3])).shape == (2, 8)   # traced: not checked


def test_a_mask_is_zeros_and_ones_shaped_like_its_tokens():
    config = tf.TransformerConfig(vocab_size=10, context=8, layers=1, width=16, heads=2)
    params = tf.init(jax.random.key(0), config)
    tokens, mask = np.zeros((3, 8), np.int32), np.ones((3, 8))
    for bad, message in ((mask * 2, r"forget_mask must hold only 0 and 1, got values \[2.0\]"),
                         (mask[:, :4], r"forget_mask must have the shape of its tokens \(3, 8\), got \(3, 4\)"),
                         (np.full((3, 8), "1"), "forget_mask must be a 0/1 array")):
        with pytest.raises(ValueError, match=message):
            tf.sequence_batch(params, tokens, bad)
    with pytest.raises(ValueError, match="retain_mask must hold only 0 and 1"):
        tf.sequence_batch(params, tokens, mask, tokens, mask + 1)
    assert float(tf.sequence_batch(params, tokens, mask.astype(bool))["forget_length"][0]) == 7.0
