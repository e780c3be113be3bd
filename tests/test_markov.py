"""Markov-chain data, LM training and unlearning engine, metrics, and the markov experiment."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from synthetic import lm_engine, markov
from synthetic import transformer as tf
from synthetic.markov import MarkovConfig
from theory.methods import get_method

SMALL = MarkovConfig(n_retain=400, n_forget1=200, n_forget2=200)
MODEL = tf.TransformerConfig(vocab_size=10, context=20, layers=1, width=16, heads=2, mlp_ratio=2)


# --------------------------------------------------------------------------- data


def test_transition_matrix_is_the_stated_law():
    p = markov.transition_matrix((3, 4, 5), 10, 0.8)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[:, [3, 4, 5]], 0.8 / 3)
    np.testing.assert_allclose(p[:, [0, 1, 2, 6, 7, 8, 9]], 0.2 / 7)
    assert markov.chain_matrices(MarkovConfig()).shape == (3, 10, 10)


def test_empirical_transition_frequencies_match_the_law():
    """Pearson chi-square per source state (6 x 19 transitions per state ~ 700 counts): every
    row's p-value > 1e-4 (fixed seed); and every cell within 5 standard errors
    ``sqrt(p (1-p) / n_row)``."""
    mat = markov.transition_matrix((6, 7, 8), 10, 0.8)
    seqs = np.asarray(markov.sample_chain(jax.random.key(0), mat, mat[0], 4000, 20))
    counts = np.zeros((10, 10))
    np.add.at(counts, (seqs[:, :-1].ravel(), seqs[:, 1:].ravel()), 1)
    for i in range(10):
        n = counts[i].sum()
        assert n > 200
        assert stats.chisquare(counts[i], n * mat[i]).pvalue > 1e-4
        se = np.sqrt(mat[i] * (1 - mat[i]) / n)
        assert np.all(np.abs(counts[i] / n - mat[i]) < 5 * se)
    first = np.bincount(seqs[:, 0], minlength=10) / 4000
    assert np.all(np.abs(first - mat[0]) < 5 * np.sqrt(mat[0] * (1 - mat[0]) / 4000))


def test_splits_lengths_and_short_variant():
    data = markov.make_markov_data(jax.random.key(1), SMALL)
    assert (len(data.retain_train), len(data.retain_test)) == (320, 80)
    assert (len(data.forget1_train), len(data.forget2_test)) == (160, 40)
    assert np.all(data.forget1_train.chain == markov.FORGET1)
    assert data.retain_train.tokens.dtype == np.int32 and np.all(data.retain_train.length == 19)
    # retain sequences live mostly on {0,1,2}: expected fraction 0.8
    frac = np.isin(data.retain_train.tokens, [0, 1, 2]).mean()
    assert abs(frac - 0.8) < 0.02
    short = markov.make_markov_data(jax.random.key(1), MarkovConfig(n_retain=50, n_forget1=50, n_forget2=50, forget2_length=5))
    assert short.forget2_train.tokens.shape == (40, 20)
    assert np.all(short.forget2_train.length == 4) and np.all(short.forget2_train.mask[:, 5:] == 0)
    assert np.all(short.forget2_train.tokens[:, 5:] == 0)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"stay": 1.5}, "stay"), ({"forget2_length": 30}, "forget2_length"), ({"n_retain": 0}, "n_retain"),
     ({"blocks": ((0, 1), (2, 3))}, "blocks"), ({"train_fraction": 1.0}, "train_fraction")],
)  # fmt: skip
def test_bad_data_config_names_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        MarkovConfig(**kwargs)


def test_true_law_and_kl_metric():
    cfg = MarkovConfig()
    mats = markov.chain_matrices(cfg)
    data = markov.make_markov_data(jax.random.key(2), MarkovConfig(n_retain=20, n_forget1=20, n_forget2=20))
    seqs = markov.Sequences.concat([data.retain_test, data.forget2_test])
    truth = markov.true_next_log_probs(mats, seqs.tokens, seqs.chain)
    assert truth.shape == (8, 19, 10) and truth.dtype == jnp.float32
    np.testing.assert_allclose(truth[0, 3], np.log(mats[0][seqs.tokens[0, 3]]), rtol=1e-6)
    mask = jnp.asarray(seqs.mask[:, 1:])
    # a model equal to the truth has KL 0; the retain law scored on forget-2 data is far off
    assert abs(float(lm_engine.masked_token_kl(truth, truth, mask))) < 1e-6
    wrong = markov.true_next_log_probs(mats, seqs.tokens, np.zeros(8, np.int32))
    kl = float(lm_engine.masked_token_kl(truth, wrong, mask))
    p, q = mats[2][0], mats[0][0]  # forget-2 rows vs retain rows; half the sequences differ
    assert kl == pytest.approx(0.5 * np.sum(p * np.log(p / q)), rel=1e-5)
    with pytest.raises(ValueError, match="mask_NxT"):
        lm_engine.masked_token_kl(truth, truth, mask[:, :5])


# --------------------------------------------------------------------------- training and unlearning


@pytest.fixture(scope="module")
def tiny():
    data = markov.make_markov_data(jax.random.key(3), SMALL)
    train = lm_engine.TrainConfig(learning_rate=3e-3, batch_size=32, epochs=4)
    ref_set = markov.Sequences.concat([data.retain_train, data.forget1_train])
    ref, ref_losses = lm_engine.fit_lm(jax.random.key(0), MODEL, ref_set, train)
    retr, _ = lm_engine.fit_lm(jax.random.key(1), MODEL, data.retain_train, train)
    return data, ref, retr, ref_losses


def test_training_at_a_tiny_size_learns_the_chains(tiny):
    data, ref, retr, losses = tiny
    assert losses.shape == (4 * (480 // 32),)
    mats = markov.chain_matrices(SMALL)
    ev = lm_engine.make_eval_sets(data.retain_test, data.forget1_test, data.forget2_test, 16, retr,
                                  lambda t, c: markov.true_next_log_probs(mats, t, c), data.forget1_train.take(slice(0, 4)))
    init = tf.init(jax.random.key(0), MODEL)
    names = lm_engine.METRICS
    v_init = np.asarray(lm_engine.evaluate(init, ref, ev))
    v_ref = np.asarray(lm_engine.evaluate(ref, ref, ev))
    v_retr = np.asarray(lm_engine.evaluate(retr, ref, ev))
    i = names.index("kl_true_retain")
    # the untrained model is ~uniform: KL(true || uniform) = log 10 - H(row) ~ 0.53 nats
    assert v_init[i] > 0.4
    assert v_ref[i] < 0.15 and v_retr[i] < 0.15
    assert v_retr[names.index("kl_retr_retain")] == pytest.approx(0.0, abs=1e-6)
    assert v_ref[names.index("param_distance")] == 0.0
    # the reference learned forget-1, the retrained model did not
    j = names.index("kl_true_forget1")
    assert v_ref[j] < v_retr[j] - 0.2


def test_fit_or_load_reuses_saved_parameters(tmp_path, tiny):
    _, ref, _, losses = tiny
    calls = []

    def fit():
        calls.append(1)
        return ref, losses

    a, _ = lm_engine.fit_or_load(tmp_path, "m", {"x": 1}, fit)
    b, lb = lm_engine.fit_or_load(tmp_path, "m", {"x": 1}, fit)
    lm_engine.fit_or_load(tmp_path, "m", {"x": 2}, fit)
    assert len(calls) == 2
    np.testing.assert_array_equal(b["blocks"]["qkv_LxDx3xHxK"], ref["blocks"]["qkv_LxDx3xHxK"])
    np.testing.assert_array_equal(lb, losses)
    assert b["embed_VxD"].dtype == jnp.float32


def test_unlearning_grid_equals_separate_runs_reports_divergence_and_validates(tiny):
    """One vmapped grid (GA+RT, NPO+KL, and GA+RT at an absurd learning rate) equals a
    separate run of its middle entry; the absurd run is reported as diverged, not as NaN curves."""
    data, ref, retr, _ = tiny
    mats = markov.chain_matrices(SMALL)
    probe = data.forget1_train.take(slice(0, 4))
    ev = lm_engine.make_eval_sets(data.retain_test, data.forget1_test, data.forget2_test, 8, retr,
                                  lambda t, c: markov.true_next_log_probs(mats, t, c), probe)
    forget = markov.Sequences.concat([data.forget1_train, data.forget2_train])
    udata = lm_engine.make_unlearn_data(ref, forget, data.retain_train)
    methods = [get_method("GA+RT"), get_method("NPO+KL", beta=0.5), get_method("GA+RT")]
    record = np.array([0, 1, 3, 6])
    grid = lm_engine.unlearn_lm_grid(ref, udata, ev, methods, [3e-3, 3e-3, 1e38], [0, 1, 2], record)
    assert grid["values"].shape == (3, 4, len(lm_engine.METRICS))
    one = lm_engine.unlearn_lm_grid(ref, udata, ev, [methods[1]], [3e-3], [1], record)
    np.testing.assert_allclose(one["values"][0], grid["values"][1], rtol=2e-3, atol=1e-5)
    assert list(grid["diverged_step"][:2]) == [-1, -1] and grid["diverged_step"][2] in (1, 2)
    after = record >= grid["diverged_step"][2]
    assert np.all(np.isnan(grid["values"][2, after])) and np.all(np.isfinite(grid["values"][:2]))
    pd = lm_engine.METRICS.index("param_distance")
    nll = lm_engine.METRICS.index("forget_nll")
    assert grid["values"][0, 0, pd] == 0.0 and np.all(np.diff(grid["values"][0, :, pd]) > 0)
    assert grid["values"][0, -1, nll] > grid["values"][0, 0, nll]  # GA+RT pushes the forget NLL up
    # bad inputs are refused before anything is traced
    with pytest.raises(ValueError, match="optimizer"):
        lm_engine.unlearn_lm_grid(ref, udata, ev, [get_method("GA")], [1e-3], [0], np.array([0, 1]), optimizer="adam")
    with pytest.raises(ValueError, match="learning_rates"):
        lm_engine.unlearn_lm_grid(ref, udata, ev, [get_method("GA")], [-1.0], [0], np.array([0, 1]))
    with pytest.raises(ValueError, match="record_steps"):
        lm_engine.unlearn_lm_grid(ref, udata, ev, [get_method("GA")], [1e-3], [0], np.array([1, 2]))
    with pytest.raises(ValueError, match="n_eval"):
        lm_engine.make_eval_sets(data.retain_test, data.forget1_test, data.forget2_test, 1000, retr, None, probe)
    with pytest.raises(ValueError, match="batch_size"):
        lm_engine.TrainConfig(batch_size=0)


def test_fit_laws_picks_the_right_law():
    from synthetic.markov_experiment import fit_laws

    t = np.unique(np.round(np.logspace(0, 3, 30)))
    lin = fit_laws(t, 2.0 + 0.01 * t, 10)
    log = fit_laws(t, 1.0 + 0.5 * np.log(t), 10)
    assert lin["linear"][2] == pytest.approx(1.0) and lin["linear"][1] == pytest.approx(0.01)
    assert lin["log"][2] < 0.95
    assert log["log"][2] == pytest.approx(1.0) and log["log"][1] == pytest.approx(0.5)
    assert log["linear"][2] < 0.95


# --------------------------------------------------------------------------- the experiment


@pytest.mark.slow
def test_markov_experiment_quick_end_to_end(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from figures import markov as fig
    from synthetic import markov_experiment as mx

    config = mx.markov_config(quick=True)
    arrays = mx.run_markov(config, model_dir=tmp_path)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".json", ".npz", ".npz"]
    claims = mx.markov_claims(config, arrays)
    assert [c.id for c in claims] == ["markov.ga_collapses", "markov.npo_stable", "markov.ga_linear_npo_log", "markov.simnpo_bias"]
    for c in claims:
        assert c.measured and "nan" not in c.statement and isinstance(c.passed, bool)
        c.to_json()
    figs = fig.all_figures(config, arrays)
    assert set(figs) == {"markov_collapse", "markov_divergence", "markov_split"}
    for f in figs.values():
        plt.close(f)
    assert arrays["kl_retr_retain"].shape == (8, 2, 51)
