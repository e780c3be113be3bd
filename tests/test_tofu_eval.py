"""TOFU's evaluation measures (synthetic/worlds/tofu_mini/measures.py) against numbers worked out by hand."""

import math

import numpy as np
import pytest

from synthetic.worlds.tofu_mini import measures as te

# --- normalised probability ----------------------------------------------------------------------


def test_normalized_probability_by_hand():
    # two tokens with probabilities 0.5 and 0.25: P(a|q) = 0.125, p~ = 0.125 ** (1/2) = sqrt(0.125)
    got = te.normalized_probability(math.log(0.5 * 0.25), 2)
    assert got == pytest.approx(math.sqrt(0.125), rel=1e-15)
    assert got.dtype == np.float64
    # elementwise: [log 0.125 over 3 tokens, log 0.5 over 1 token] -> [0.125 ** (1/3) = 0.5, 0.5]
    got = te.normalized_probability(np.log([0.125, 0.5]), np.array([3, 1]))
    np.testing.assert_allclose(got, [0.5, 0.5], rtol=1e-15)
    # log P = 0 (probability 1) -> 1
    assert te.normalized_probability(0.0, 5) == 1.0


@pytest.mark.parametrize("logp, length, name", [
    (-1.0, 0, "length"),                    # no tokens
    (-1.0, -2, "length"),                   # negative length
    (-1.0, 1.5, "length"),                  # not a whole number of tokens
    (0.3, 1, "logp_sum"),                   # a log-probability above 0
    (np.array([-1.0, -2.0]), np.array([1, 2, 3]), "length"),  # shapes that do not broadcast
    (np.array([]), 1, "logp_sum"),          # empty
])
def test_normalized_probability_rejects(logp, length, name):
    with pytest.raises(ValueError, match=name):
        te.normalized_probability(logp, length)


# --- ROUGE-L recall ------------------------------------------------------------------------------


def test_rouge_l_recall_by_hand():
    # LCS([1,2,3,4], [1,3,5,4]) = 3 ([1,3,4]); recall = 3 / len(reference) = 3/4
    assert te.rouge_l_recall([1, 2, 3, 4], [1, 3, 5, 4]) == 0.75
    assert te.rouge_l_recall([7, 8, 9], [7, 8, 9]) == 1.0      # identical: 3/3
    assert te.rouge_l_recall([1, 2], [3, 4, 5]) == 0.0         # disjoint: 0/3
    assert te.rouge_l_recall([], [3, 4, 5]) == 0.0             # empty generated: 0
    # a longer generated answer: LCS([9,1,9,2,9,3], [1,2,3]) = 3 -> 3/3 = 1
    assert te.rouge_l_recall(np.array([9, 1, 9, 2, 9, 3]), (1, 2, 3)) == 1.0
    # order matters: LCS([3,2,1], [1,2,3]) = 1 -> 1/3
    assert te.rouge_l_recall([3, 2, 1], [1, 2, 3]) == pytest.approx(1 / 3, rel=1e-15)
    # recall only: generated shorter than the reference, LCS([1,3], [1,2,3,4]) = 2 -> 2/4
    got = te.rouge_l_recall_many([[1, 2, 3, 4], [1, 3], []], [[1, 3, 5, 4], [1, 2, 3, 4], [1]])
    np.testing.assert_array_equal(got, [0.75, 0.5, 0.0])
    assert got.dtype == np.float64


def _lcs_table(a, b):
    """The full (len(a)+1) x (len(b)+1) LCS table, the textbook definition."""
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            t[i][j] = t[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(t[i - 1][j], t[i][j - 1])
    return t[-1][-1]


def test_rouge_l_recall_matches_full_table():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = rng.integers(0, 4, size=rng.integers(0, 12)).tolist()
        b = rng.integers(0, 4, size=rng.integers(1, 12)).tolist()
        assert te.rouge_l_recall(a, b) == _lcs_table(a, b) / len(b)


@pytest.mark.parametrize("gen, ref, name", [
    ([1, 2], [], "reference"),              # empty reference: recall undefined
    ([[1, 2]], [1, 2], "generated"),         # 2-D, not a sequence
    ([1.5, 2.0], [1, 2], "generated"),       # not integer token ids
])
def test_rouge_l_recall_rejects(gen, ref, name):
    with pytest.raises(ValueError, match=name):
        te.rouge_l_recall(gen, ref)


def test_rouge_l_recall_many_rejects():
    with pytest.raises(ValueError, match="generated_list and reference_list"):
        te.rouge_l_recall_many([[1], [2]], [[1]])
    with pytest.raises(ValueError, match=r"reference_list\[1\]"):
        te.rouge_l_recall_many([[1], [2]], [[1], []])


# --- truth ratio ---------------------------------------------------------------------------------


def test_truth_ratio_by_hand():
    # perturbed p~ 0.1 and 0.4: geometric mean sqrt(0.1 * 0.4) = sqrt(0.04) = 0.2;
    # paraphrased p~ 0.5: R = 0.2 / 0.5 = 0.4.
    # second question: perturbed 0.5, 0.5 -> 0.5; paraphrased 0.25 -> R = 0.5 / 0.25 = 2
    R = te.truth_ratio([[0.1, 0.4], [0.5, 0.5]], [0.5, 0.25])
    np.testing.assert_allclose(R, [0.4, 2.0], rtol=1e-14)
    assert R.dtype == np.float64
    # the same from logs
    R_log = te.truth_ratio_from_logs(np.log([[0.1, 0.4], [0.5, 0.5]]), np.log([0.5, 0.25]))
    np.testing.assert_allclose(R_log, [0.4, 2.0], rtol=1e-14)
    # stable where the probabilities themselves underflow: log p~ = -800 for every answer -> R = 1
    assert te.truth_ratio_from_logs([[-800.0, -800.0]], [-800.0])[0] == 1.0


def test_truth_ratio_score_by_hand():
    R = np.array([0.4, 2.0])
    # forget: mean(min(R, 1/R)) = mean(min(0.4, 2.5), min(2, 0.5)) = mean(0.4, 0.5) = 0.45
    assert te.truth_ratio_score(R, "forget") == pytest.approx(0.45, rel=1e-15)
    # retain and the others: mean(max(0, 1 - R)) = mean(0.6, max(0, -1)) = mean(0.6, 0) = 0.3
    for split in ("retain", "real_authors", "world_facts"):
        assert te.truth_ratio_score(R, split) == pytest.approx(0.3, rel=1e-15)


def test_truth_ratio_rejects():
    with pytest.raises(ValueError, match="p_perturbed"):              # Q = 2 rows, but 3 paraphrases
        te.truth_ratio([[0.1, 0.4], [0.5, 0.5]], [0.5, 0.25, 0.1])
    with pytest.raises(ValueError, match="p_perturbed"):              # 1-D, not (Q, K)
        te.truth_ratio([0.1, 0.4], [0.5, 0.25])
    with pytest.raises(ValueError, match=r"p_paraphrased.*\(0, 1\]"):  # probability 0
        te.truth_ratio([[0.1, 0.4]], [0.0])
    with pytest.raises(ValueError, match=r"p_perturbed.*\(0, 1\]"):    # probability above 1
        te.truth_ratio([[0.1, 1.4]], [0.5])
    with pytest.raises(ValueError, match="logp_norm_paraphrased"):    # a positive log-probability
        te.truth_ratio_from_logs([[-1.0]], [0.5])
    with pytest.raises(ValueError, match="split.*'forget'.*'world_facts'"):
        te.truth_ratio_score([0.4], "test")
    with pytest.raises(ValueError, match="R"):
        te.truth_ratio_score([], "forget")
    with pytest.raises(ValueError, match="R"):
        te.truth_ratio_score([0.4, -1.0], "retain")


# --- forget quality ------------------------------------------------------------------------------


def test_forget_quality_by_hand():
    # n = m = 3, completely separated: the empirical CDFs differ by 1 at x = 3, so D = 1.
    # Under the null every one of the C(6, 3) = 20 ways to split the 6 pooled ranks is equally
    # likely; D = 1 only for the two fully separated splits (all of the first sample below, or
    # all above), so the exact two-sided p-value is 2/20 = 0.1.
    # (scipy's exact computation gives 0.09999999999999999, hence the tolerance.)
    assert te.forget_quality([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == pytest.approx(0.1, rel=1e-12)
    # identical samples: D = 0, p = 1 (the retrained model against itself)
    assert te.forget_quality([0.5, 1.0, 2.0], [0.5, 1.0, 2.0]) == 1.0


def test_forget_quality_same_for_inverse_ratios():
    rng = np.random.default_rng(1)
    a = np.exp(rng.normal(0.0, 1.0, size=15))
    b = np.exp(rng.normal(0.7, 1.0, size=12))
    p = te.forget_quality(a, b)
    assert 0.0 < p < 1.0
    assert te.forget_quality(1.0 / a, 1.0 / b) == pytest.approx(p, rel=1e-12)


def test_forget_quality_rejects():
    with pytest.raises(ValueError, match="R_retrained"):
        te.forget_quality([0.5, 1.0], [])
    with pytest.raises(ValueError, match="R_model"):
        te.forget_quality([[0.5, 1.0]], [0.5])
    with pytest.raises(ValueError, match="R_model"):
        te.forget_quality([0.0, 1.0], [0.5])


# --- probability ---------------------------------------------------------------------------------


def test_probability_score_by_hand():
    # real authors: p~(true) 0.6, perturbed 0.2 and 0.2 -> 0.6 / (0.6 + 0.2 + 0.2) = 0.6 / 1.0 = 0.6
    assert te.probability_score([0.6], [[0.2, 0.2]], split="real_authors") == pytest.approx(0.6, rel=1e-15)
    # two questions on world facts: 0.6 and 0.5 / (0.5 + 0.25 + 0.25) = 0.5 -> mean 0.55
    got = te.probability_score([0.6, 0.5], [[0.2, 0.2], [0.25, 0.25]], split="world_facts")
    assert got == pytest.approx(0.55, rel=1e-15)
    # forget and retain: mean p~(true) = (0.6 + 0.2) / 2 = 0.4; perturbed answers not used
    assert te.probability_score([0.6, 0.2], split="forget") == pytest.approx(0.4, rel=1e-15)
    assert te.probability_score([0.6, 0.2], [[0.9], [0.9]], "retain") == pytest.approx(0.4, rel=1e-15)


def test_probability_score_rejects():
    with pytest.raises(ValueError, match="p_perturbed.*required"):
        te.probability_score([0.6], split="real_authors")
    with pytest.raises(ValueError, match="split"):
        te.probability_score([0.6])
    with pytest.raises(ValueError, match="split"):
        te.probability_score([0.6], split="validation")
    with pytest.raises(ValueError, match="p_perturbed"):   # 2 rows for 1 question
        te.probability_score([0.6], [[0.2], [0.2]], split="world_facts")
    with pytest.raises(ValueError, match="p_true"):
        te.probability_score([1.2], split="forget")


# --- model utility -------------------------------------------------------------------------------


def test_model_utility_by_hand():
    # harmonic mean of eight 1s and one 0.5: 9 / (8 * 1/1 + 1/0.5) = 9 / (8 + 2) = 0.9
    assert te.model_utility([1.0] * 8 + [0.5]) == pytest.approx(0.9, rel=1e-15)
    values = dict.fromkeys(te.UTILITY_KEYS, 1.0)
    values["world_facts/truth_ratio"] = 0.5
    assert te.model_utility(values) == pytest.approx(0.9, rel=1e-15)
    # any zero -> 0, without a division warning (warnings are errors in this suite)
    values["retain/rouge"] = 0.0
    assert te.model_utility(values) == 0.0
    assert len(te.UTILITY_KEYS) == 9 and "real_authors/probability" in te.UTILITY_KEYS


def test_model_utility_rejects():
    with pytest.raises(ValueError, match="values"):        # negative
        te.model_utility([1.0] * 8 + [-0.1])
    with pytest.raises(ValueError, match="values.*9"):     # 8 numbers
        te.model_utility([1.0] * 8)
    values = dict.fromkeys(te.UTILITY_KEYS, 1.0)
    del values["retain/rouge"]
    with pytest.raises(ValueError, match="missing.*retain/rouge"):
        te.model_utility(values)
    values["forget/rouge"] = 1.0
    with pytest.raises(ValueError, match="extra.*forget/rouge"):
        te.model_utility(values)


# --- valid-answer and degenerate shares ----------------------------------------------------------

END = 0


def test_valid_answer_share_by_hand():
    answers = [
        [5, 6, END, 9, 9],   # cut at the end token -> (5, 6): names a valid value
        [7, END],            # (7,): names none of {(5, 6), (8,)}
        [8],                 # no end token: degenerate, so not valid though it names (8,)
        [END, 5, 6],         # empty answer (): degenerate, and the value is after the end token
    ]
    valid = [{(5, 6), (8,)}] * 4
    # 1 valid of 4 -> 0.25
    assert te.valid_answer_share(answers, valid, end_token=END) == 0.25


BORN, IN, ARDENIA, NEW, VALE = 10, 11, 12, 13, 14


def test_an_answer_naming_a_value_in_more_words_is_valid():
    values = {(ARDENIA,), (NEW, VALE)}  # a one-token and a two-token value of the relation
    valid = [
        [BORN, IN, ARDENIA, END],             # "born in ardenia": names ardenia
        [BORN, IN, NEW, VALE, END],           # a two-token value as a contiguous run
        [ARDENIA, END],                       # the value alone
    ]
    invalid = [
        [BORN, IN, ARDENIA],                  # no end token: degenerate
        [BORN, ARDENIA, ARDENIA, ARDENIA, END],  # a token 3x in a row: degenerate
        [BORN, NEW, IN, VALE, END],           # both tokens of "new vale", but not in a run
        [BORN, IN, END, ARDENIA],             # the value after the end token
        [BORN, IN, NEW, END],                 # part of a value only
    ]
    for answer in valid:
        assert te.is_valid_answer(answer, values, END), answer
    for answer in invalid:
        assert not te.is_valid_answer(answer, values, END), answer
    answers = valid + invalid
    # 3 valid of 8 -> 0.375
    assert te.valid_answer_share(answers, [values] * len(answers), end_token=END) == 0.375
    # the per-answer numbers every experiment reads say the same, on answers as the decoder cuts
    # them (up to and including the first end token, which answer_numbers expects)
    cut = [tuple(a[: a.index(END) + 1]) if END in a else tuple(a) for a in answers]
    got = te.answer_numbers(cut, [[(BORN, IN, ARDENIA)]] * len(answers), [values] * len(answers), END)
    np.testing.assert_array_equal(got["valid"], [True] * 3 + [False] * 5)
    assert te.names_a_value((BORN, IN, NEW, VALE), values) and not te.names_a_value((BORN, NEW, IN, VALE), values)


def test_degenerate_by_hand():
    assert not te.is_degenerate([5, 6, END], END)
    assert te.is_degenerate([5, 6, 7], END)                 # no end token
    assert te.is_degenerate([END, 5], END)                  # empty answer
    assert te.is_degenerate([4, 7, 7, 7, END], END)         # 7 three times in a row
    assert not te.is_degenerate([7, 7, 4, 7, END], END)     # 7 three times, but not in a row
    assert not te.is_degenerate([5, END, 9, 9, 9], END)     # the repeat is after the end token
    assert te.is_degenerate([7, 7, END], END, min_repeat=2)
    answers = [[5, 6, END], [5, 6, 7], [END], [4, 7, 7, 7, END], [8, END, 8]]
    # degenerate: no end token, empty, repeated -> 3 of 5 = 0.6
    assert te.degenerate_share(answers, END) == pytest.approx(0.6, rel=1e-15)


def test_shares_reject():
    with pytest.raises(ValueError, match="answers and valid_values"):
        te.valid_answer_share([[5, END]], [{(5,)}, {(5,)}], end_token=END)
    with pytest.raises(ValueError, match="answers"):
        te.valid_answer_share([], [], end_token=END)
    with pytest.raises(ValueError, match="end_token"):
        te.valid_answer_share([[5, END]], [{(5,)}], end_token=0.5)
    with pytest.raises(ValueError, match="answers"):
        te.degenerate_share([], END)
    with pytest.raises(ValueError, match="min_repeat"):
        te.degenerate_share([[5, END]], END, min_repeat=1)
    with pytest.raises(ValueError, match=r"answers\[1\]"):
        te.degenerate_share([[5, END], [1.5, 2.5]], END)


# --- one definition: from a model's records to the measures -------------------------------------


def test_probability_numbers_exponentiate_the_clipped_logs():
    logs = {"log_p_answer": np.array([np.log(0.5), -800.0, 1e-7], np.float32),   # 1e-7: float32 rounding above 0
            "log_p_paraphrase": np.array([np.log(0.25)] * 3, np.float32),
            "log_p_perturbed": np.log(np.array([[0.1, 0.4]] * 3, np.float32)),
            "log_truth_ratio": np.array([np.log(0.4), 800.0, -800.0], np.float32)}
    got = te.probability_numbers(logs)
    assert all(v.dtype == np.float64 for v in got.values())
    # exp of each log, clipped to [-700, 0] (probabilities) and [-700, 700] (truth ratios)
    np.testing.assert_allclose(got["p_answer"], [0.5, np.exp(-700.0), 1.0], rtol=1e-7)
    np.testing.assert_allclose(got["p_paraphrase"], [0.25] * 3, rtol=1e-7)
    np.testing.assert_allclose(got["p_perturbed"], [[0.1, 0.4]] * 3, rtol=1e-6)
    np.testing.assert_allclose(got["truth_ratio"], [0.4, np.exp(700.0), np.exp(-700.0)], rtol=1e-6)
    assert te.LOG_FLOOR == -700.0 and np.all(np.isfinite(got["truth_ratio"])) and np.all(got["p_answer"] > 0)
    # the truth ratio alone (the engine's forget records at a retrained model's evaluation)
    assert set(te.probability_numbers({"log_truth_ratio": [0.0]})) == {"truth_ratio"}


def test_answer_numbers_by_hand():
    wordings = [[(5, 6, 7), (8, 7)]] * 4             # two correct wordings of one answer
    values = [{(7,)}] * 4
    answers = [(5, 6, 7, END), (8, 7, END), (5, 9, END), (5, 5, 5, END)]
    got = te.answer_numbers(answers, wordings, values, END)
    # rouge against the closest wording: 3/3; 2/2; LCS((5,9), (5,6,7)) = 1 -> 1/3 (vs 0/2); (5,5,5) -> 1/3
    np.testing.assert_allclose(got["rouge"], [1.0, 1.0, 1 / 3, 1 / 3], rtol=1e-15)
    np.testing.assert_array_equal(got["right"], [True, True, False, False])   # one of the wordings, exactly
    np.testing.assert_array_equal(got["valid"], [True, True, False, False])   # names 7, not degenerate
    np.testing.assert_array_equal(got["degenerate"], [False, False, False, True])
    # an empty answer: ROUGE 0, degenerate
    empty = te.answer_numbers([(END,)], wordings[:1], values[:1], END)
    assert empty["rouge"][0] == 0.0 and empty["degenerate"][0] and not empty["valid"][0]


def _numbers_by_set():
    """Per-question numbers of the three utility sets, small enough to score by hand."""
    return {
        "retain": {"p_answer": np.array([0.5, 0.3]), "p_perturbed": np.array([[0.1], [0.2]]),
                   "rouge": np.array([1.0, 0.5]), "truth_ratio": np.array([0.5, 2.0])},
        "real_authors": {"p_answer": np.array([0.6]), "p_perturbed": np.array([[0.2, 0.2]]),
                         "rouge": np.array([0.8]), "truth_ratio": np.array([0.5])},
        "world_facts": {"p_answer": np.array([0.5, 0.5]), "p_perturbed": np.array([[0.25, 0.25], [0.5, 0.5]]),
                        "rouge": np.array([1.0, 0.0]), "truth_ratio": np.array([0.2, 0.6])},
    }


def test_set_scores_by_hand():
    n = _numbers_by_set()
    # retain: mean p~ (0.5 + 0.3) / 2 = 0.4 (perturbed unused); mean ROUGE 0.75; mean(max(0, 1 - R)) = (0.5 + 0) / 2
    assert te.set_scores(n["retain"], "retain") == pytest.approx(
        {"probability": 0.4, "rouge": 0.75, "truth_ratio": 0.25}, rel=1e-15)
    # world facts: mean(0.5 / (0.5 + 0.5), 0.5 / (0.5 + 1.0)) = (1/2 + 1/3) / 2 = 5/12; ROUGE 0.5; (0.8 + 0.4) / 2
    assert te.set_scores(n["world_facts"], "world_facts") == pytest.approx(
        {"probability": 5 / 12, "rouge": 0.5, "truth_ratio": 0.6}, rel=1e-15)
    # forget: mean(min(R, 1/R))
    assert te.set_scores(n["retain"], "forget")["truth_ratio"] == pytest.approx(0.5, rel=1e-15)


def test_utility_is_model_utility_of_the_set_scores():
    n = _numbers_by_set()
    nine = {f"{s}/{k}": v for s in te.UTILITY_SETS for k, v in te.set_scores(n[s], s).items()}
    assert set(nine) == set(te.UTILITY_KEYS)
    assert te.utility(n) == te.model_utility(nine)
    # and the harmonic mean of the nine numbers worked out above
    by_hand = [0.4, 0.75, 0.25, 0.6, 0.8, 0.5, 5 / 12, 0.5, 0.6]
    assert te.utility(n) == pytest.approx(9 / sum(1 / v for v in by_hand), rel=1e-14)
    # the forget set, if present, does not enter
    assert te.utility({**n, "forget": n["retain"]}) == te.utility(n)


def test_public_names():
    for name in te.__all__:
        assert hasattr(te, name)
