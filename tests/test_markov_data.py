"""The chains' laws of the SimNPO study (synthetic.worlds.markov.data): rows inside the block follow
the block law, rows outside it are uniform, the initial state follows the block law."""

import dataclasses

import jax
import numpy as np
import pytest
from scipy import stats

from synthetic.worlds.markov import data as markov
from synthetic.worlds.markov.data import MarkovConfig

IN, OUT = 0.8 / 3, 0.2 / 7
BLOCK = (3, 4, 5)
OTHERS = [0, 1, 2, 6, 7, 8, 9]


def test_transition_matrix_rows_inside_and_outside_the_block():
    p = markov.transition_matrix(BLOCK, 10, 0.8)
    assert p.shape == (10, 10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(p[np.ix_(BLOCK, BLOCK)], IN, rtol=1e-12)
    np.testing.assert_allclose(p[np.ix_(BLOCK, OTHERS)], OUT, rtol=1e-12)
    np.testing.assert_allclose(p[OTHERS], 0.1, rtol=1e-12)
    np.testing.assert_array_equal(p, markov.transition_matrix(BLOCK, 10, 0.8, outside="uniform"))


def test_block_option_reproduces_the_previous_law():
    p = markov.transition_matrix(BLOCK, 10, 0.8, outside="block")
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(p[:, BLOCK], IN, rtol=1e-12)
    np.testing.assert_allclose(p[:, OTHERS], OUT, rtol=1e-12)
    mats = markov.chain_matrices(MarkovConfig(outside="block"))
    assert mats.shape == (3, 10, 10)
    for c, b in enumerate(MarkovConfig().blocks):
        np.testing.assert_array_equal(mats[c], np.tile(markov.initial_law(b, 10, 0.8), (10, 1)))


def test_initial_law_and_chain_matrices_follow_the_config():
    law = markov.initial_law(BLOCK, 10, 0.8)
    assert law.shape == (10,)
    np.testing.assert_allclose(law[list(BLOCK)], IN, rtol=1e-12)
    np.testing.assert_allclose(law[OTHERS], OUT, rtol=1e-12)
    np.testing.assert_allclose(law.sum(), 1.0, rtol=1e-12)
    cfg = MarkovConfig()
    assert cfg.outside == "uniform" and cfg.to_json()["outside"] == "uniform"
    assert MarkovConfig(**cfg.to_json() | {"blocks": cfg.blocks}) == cfg
    mats = markov.chain_matrices(cfg)
    for c, b in enumerate(cfg.blocks):
        np.testing.assert_array_equal(mats[c], markov.transition_matrix(b, 10, 0.8))
    assert markov.DATA_VERSION != "inverse-cdf-1"
    assert "initial_law" in markov.__all__


@pytest.mark.parametrize("bad", ["Uniform", "none", "", None, 1])
def test_bad_outside_is_a_clear_error(bad):
    with pytest.raises(ValueError, match=r"outside.*'uniform'.*'block'"):
        MarkovConfig(outside=bad)
    with pytest.raises(ValueError, match=r"outside.*'uniform'.*'block'"):
        markov.transition_matrix(BLOCK, 10, 0.8, outside=bad)


@pytest.mark.parametrize("outside", ["uniform", "block"])
def test_empirical_transition_frequencies_match_the_matrix(outside):
    """Pearson chi-square per source state (fixed key): every row's p-value > 1e-4, and every
    cell within 5 standard errors ``sqrt(p (1-p) / n_row)``; the first state follows the
    initial law within 5 standard errors."""
    block = (6, 7, 8)
    mat = markov.transition_matrix(block, 10, 0.8, outside)
    init = markov.initial_law(block, 10, 0.8)
    n_seq = 3000
    seqs = np.asarray(markov.sample_chain(jax.random.key(0), mat, init, n_seq, 20))
    counts = np.zeros((10, 10))
    np.add.at(counts, (seqs[:, :-1].ravel(), seqs[:, 1:].ravel()), 1)
    for i in range(10):
        n = counts[i].sum()
        assert n > 200
        assert stats.chisquare(counts[i], n * mat[i]).pvalue > 1e-4
        se = np.sqrt(mat[i] * (1 - mat[i]) / n)
        assert np.all(np.abs(counts[i] / n - mat[i]) < 5 * se)
    first = np.bincount(seqs[:, 0], minlength=10) / n_seq
    assert np.all(np.abs(first - init) < 5 * np.sqrt(init * (1 - init) / n_seq))


def expected_in_block_fraction(length, stay=0.8, k=3, v=10):
    """Mean over ``t = 0..length-1`` of ``P(token_t in block)``: ``p_0 = stay`` and
    ``p_{t+1} = stay p_t + (k / v) (1 - p_t)``."""
    p, total = stay, 0.0
    for _ in range(length):
        total += p
        p = stay * p + (k / v) * (1 - p)
    return total / length


def test_in_block_fraction_of_make_markov_data():
    cfg = MarkovConfig(n_retain=2000, n_forget1=2000, n_forget2=2000)
    assert cfg.length == 20
    data = markov.make_markov_data(jax.random.key(3), cfg)
    want = expected_in_block_fraction(cfg.length)
    assert 0.60 < want < 0.64
    for c, (train, test) in enumerate(
        [(data.retain_train, data.retain_test), (data.forget1_train, data.forget1_test),
         (data.forget2_train, data.forget2_test)]
    ):  # fmt: skip
        seqs = markov.Sequences.concat([train, test])
        assert len(seqs) == 2000 and np.all(seqs.chain == c)
        per_seq = np.isin(seqs.tokens, cfg.blocks[c]).mean(axis=1)
        frac = per_seq.mean()
        se = per_seq.std(ddof=1) / np.sqrt(len(per_seq))
        assert abs(frac - want) < 5 * se, (c, frac, want, se)
        assert 0.35 < 1 - frac < 0.41
    # the previous law ("block": every row the block law) keeps 80% in the block
    old = markov.make_markov_data(jax.random.key(3), dataclasses.replace(cfg, outside="block", n_forget1=10, n_forget2=10))
    assert abs(np.isin(old.retain_train.tokens, cfg.blocks[0]).mean() - 0.8) < 0.02
