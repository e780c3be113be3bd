"""The evaluation measures of TOFU (Maini et al. 2024), as its public evaluation code computes them.

Pure numpy/scipy, no JAX: the inputs are numbers a model produced (summed log-probabilities,
greedy answers as token ids), the outputs float64. TOFU asks questions about fictitious authors;
a model is fine-tuned on all of them, then made to unlearn a *forget set* (1%, 5% or 10% of the
authors) while keeping the *retain set* (the other authors) and general knowledge (the
*real-authors* and *world-facts* sets).

Answer probability (:func:`normalized_probability`)
    A long answer has a small probability only because it is long, so TOFU normalises by the
    length: ``p~ = P(a|q) ** (1/|a|) = exp(logp_sum / |a|)``, the geometric mean of the
    per-token probabilities (TOFU's code: ``exp(-avg_gt_loss)``, the summed token loss divided
    by the number of answer tokens).

Probability (:func:`probability_score`)
    On the forget and retain sets, the mean ``p~`` of the correct answer. On real authors and
    world facts, the mean share ``p~(true) / (p~(true) + sum_k p~(wrong_k))`` the correct
    answer takes among the offered answers. Higher is better everywhere but on the forget set,
    where an unlearned model should have *lost* the answers (lower, towards what the retrained
    model gives).

ROUGE-L recall (:func:`rouge_l_recall`)
    How much of the reference answer the greedy answer reproduces, in order:
    ``LCS(generated, reference) / len(reference)``, with LCS the longest common subsequence.
    In [0, 1]; higher means the model still says the answer (good on retain / real authors /
    world facts, a sign of failed unlearning on the forget set). TOFU computes it on words
    (``rouge_score`` with stemming); here on token ids.

Truth ratio (:func:`truth_ratio`, :func:`truth_ratio_score`)
    Per question, ``R = p~(wrong) / p~(paraphrased correct)``: the wrong (perturbed, same
    template) answers against a paraphrase of the correct one, so that the exact training
    wording does not count. The K wrong answers are combined by the *geometric* mean of their
    ``p~`` (TOFU's code averages their per-token losses). ``R < 1``: the model prefers the
    truth; ``R`` near 1: it cannot tell truth from falsehood. TOFU's code computes ``1/R``
    (``exp(perturbed_loss - paraphrased_loss)``) and reports
    on the forget set ``mean(min(R, 1/R))``, in (0, 1], 1 when the model is indifferent (the
    state of a model that never learned the forget authors; a model that still knows them
    scores low); on the other sets ``mean(max(0, 1 - R))``, in [0, 1), higher when the model
    prefers the correct answers (higher is better).

Forget quality (:func:`forget_quality`)
    The p-value of a two-sample Kolmogorov-Smirnov test between the per-question truth ratios of
    the unlearned model and of a *retrained* model on the forget set. The retrained model was
    fine-tuned on the retain set only, so it never saw the forget data: it is the gold standard
    of unlearning, the model one would have had if the forget data had never been used. An
    unlearned model should be statistically indistinguishable from it on the forget set - not
    merely bad at the forget questions (a model that answers them all *wrongly* with
    confidence is as distinguishable as one that still knows them). Higher is better; above
    0.05 is read as meaningful forgetting.

Model utility (:func:`model_utility`)
    The harmonic mean of nine numbers: probability, ROUGE-L recall and truth-ratio score on the
    retain, real-authors and world-facts sets (:data:`UTILITY_KEYS`). A harmonic mean is dragged
    towards 0 by any one small number, so a collapse on any set shows. Higher is better.

Two further shares, of this toolkit and not TOFU's code, read greedy answers as token ids:

Valid-answer share (:func:`valid_answer_share`, :func:`is_valid_answer`)
    The share of answers that are not degenerate and name a valid value of the asked relation:
    one of its values appears as a contiguous run of the answer's tokens (before the first end
    token), right or wrong ("the author was born in ardenia" names the value "ardenia").
    Higher means the model still answers in the right form after unlearning.

Degenerate share (:func:`degenerate_share`, :func:`is_degenerate`)
    The share of answers that are degenerate: no end token, an empty answer, or a token
    repeated ``min_repeat`` or more times in a row (the babbling of a collapsed model). Lower is
    better.

Every experiment reads a model through the same three steps: the model's logs of normalised
probabilities and its greedy answers (computed in JAX by :mod:`.scoring`), then the numbers
per question (:func:`probability_numbers`, :func:`answer_numbers`), then the aggregates per set
(:func:`set_scores`) and :func:`utility`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

from theory.validate import as_real_numpy

__all__ = [
    "SPLITS",
    "UTILITY_SETS",
    "UTILITY_KEYS",
    "LOG_FLOOR",
    "probability_numbers",
    "answer_numbers",
    "set_scores",
    "utility",
    "names_a_value",
    "without_end",
    "is_valid_answer",
    "normalized_probability",
    "rouge_l_recall",
    "rouge_l_recall_many",
    "truth_ratio",
    "truth_ratio_from_logs",
    "truth_ratio_score",
    "forget_quality",
    "probability_score",
    "model_utility",
    "valid_answer_share",
    "is_degenerate",
    "degenerate_share",
]

SPLITS = ("forget", "retain", "real_authors", "world_facts")
"""The four TOFU evaluation sets."""

UTILITY_SETS = ("retain", "real_authors", "world_facts")
"""The sets model utility reads (TOFU's three)."""

_UTILITY_MEASURES = ("probability", "rouge", "truth_ratio")

UTILITY_KEYS = tuple(f"{split}/{measure}" for split in UTILITY_SETS for measure in _UTILITY_MEASURES)
"""The nine numbers of model utility: ``"<split>/<measure>"`` for the retain, real-authors and
world-facts sets and the probability, ROUGE-L recall and truth-ratio score."""


# --- input checks --------------------------------------------------------------------------------


def _float_array(x, name: str, ndim: int | None = None, allow_empty: bool = False) -> np.ndarray:
    """``x`` as a float64 array, checked for the number of dimensions, emptiness and NaN."""
    a = as_real_numpy(x, name)
    if ndim is not None and a.ndim != ndim:
        want = {0: "a scalar", 1: "a 1-D array", 2: "a 2-D array"}[ndim]
        raise ValueError(f"{name} must be {want}, got shape {a.shape}")
    if a.size == 0 and not allow_empty:
        raise ValueError(f"{name} must not be empty, got shape {a.shape}")
    if np.isnan(a).any():
        raise ValueError(f"{name} must not contain NaN")
    return a


def _probabilities(x, name: str, ndim: int) -> np.ndarray:
    """A non-empty array of probabilities in (0, 1]."""
    a = _float_array(x, name, ndim)
    if not ((a > 0) & (a <= 1)).all():
        raise ValueError(f"{name} must hold probabilities in (0, 1], got values in [{a.min()}, {a.max()}]")
    return a


def _log_probabilities(x, name: str, ndim: int) -> np.ndarray:
    """A non-empty array of finite log-probabilities (<= 0)."""
    a = _float_array(x, name, ndim)
    if not (np.isfinite(a) & (a <= 0)).all():
        raise ValueError(f"{name} must hold finite log-probabilities (<= 0), got values in [{a.min()}, {a.max()}]")
    return a


def _positive_ratios(x, name: str) -> np.ndarray:
    """A non-empty 1-D array of finite positive truth ratios."""
    a = _float_array(x, name, ndim=1)
    if not (np.isfinite(a) & (a > 0)).all():
        raise ValueError(f"{name} must hold finite positive truth ratios, got values in [{a.min()}, {a.max()}]")
    return a


def _check_split(split, allowed: Sequence[str]) -> str:
    if not isinstance(split, str) or split not in allowed:
        raise ValueError(f"split must be one of {', '.join(repr(s) for s in allowed)}; got {split!r}")
    return split


def _tokens(x, name: str) -> tuple[int, ...]:
    """A token sequence (list, tuple or 1-D array of integers) as a tuple of Python ints."""
    if isinstance(x, (str, bytes)):
        raise ValueError(f"{name} must be a sequence of integer token ids, got a {type(x).__name__}")
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a sequence of integer token ids: {err}") from None
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of integer token ids, got shape {a.shape}")
    if a.size == 0:
        return ()
    if a.dtype == bool or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold integer token ids, got dtype {a.dtype}")
    return tuple(int(t) for t in a)


def _token_id(x, name: str) -> int:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise ValueError(f"{name} must be an integer token id, got {x!r}")
    return int(x)


def _answer_list(answers, name: str) -> list:
    if isinstance(answers, (str, bytes)) or not isinstance(answers, Iterable):
        raise ValueError(f"{name} must be a sequence of token sequences, got {type(answers).__name__}")
    answers = list(answers)
    if not answers:
        raise ValueError(f"{name} must not be empty")
    return answers


def _until_end(tokens: tuple[int, ...], end_token: int) -> tuple[tuple[int, ...], bool]:
    """The tokens before the first end token, and whether there was one."""
    if end_token in tokens:
        return tokens[: tokens.index(end_token)], True
    return tokens, False


# --- answer probability --------------------------------------------------------------------------


def normalized_probability(logp_sum, length):
    """Length-normalised answer probability ``p~ = P(a|q)^(1/|a|) = exp(logp_sum / length)``.

    Args:
        logp_sum: summed log-probability ``log P(a|q)`` of each answer (sum over its tokens):
            a scalar or an array of finite values <= 0.
        length: the answer lengths in tokens, integers >= 1, of the same shape as ``logp_sum``
            (or broadcastable to it, e.g. one length for all).

    Returns:
        ``exp(logp_sum / length)``, float64, of the broadcast shape (a float64 scalar for
        scalar inputs): the geometric mean of the per-token probabilities, in (0, 1].

    Raises:
        ValueError: empty inputs, NaN, positive or infinite ``logp_sum``, a ``length`` that is
            not an integer >= 1, or shapes that do not broadcast.
    """
    logp = _log_probabilities(logp_sum, "logp_sum", ndim=None)
    n = _float_array(length, "length")
    if not (np.isfinite(n) & (n >= 1) & (n == np.round(n))).all():
        raise ValueError(f"length must hold integer answer lengths >= 1 (tokens), got values in [{n.min()}, {n.max()}]")
    try:
        logp, n = np.broadcast_arrays(logp, n)
    except ValueError:
        raise ValueError(f"logp_sum (shape {logp.shape}) and length (shape {n.shape}) must have the same "
                         "(or broadcastable) shapes") from None
    return np.exp(logp / n)[()]


# --- ROUGE-L recall ------------------------------------------------------------------------------


def _lcs_length(a: Sequence[int], b: Sequence[int]) -> int:
    """Longest-common-subsequence length by the classic dynamic programme, one row at a time.

    ``row[j]`` is the LCS length of the prefix of ``a`` read so far and ``b[:j]``.
    """
    if len(b) > len(a):
        a, b = b, a  # the shorter one along the row
    row = [0] * (len(b) + 1)
    for x in a:
        diag = 0  # LCS(a[:i-1], b[:j-1]) before row[j-1] is overwritten
        for j, y in enumerate(b, start=1):
            up = row[j]
            row[j] = diag + 1 if x == y else max(up, row[j - 1])
            diag = up
    return row[-1]


def rouge_l_recall(generated, reference) -> np.float64:
    """ROUGE-L recall ``LCS(generated, reference) / len(reference)`` on token sequences.

    Args:
        generated: the model's (greedy) answer, a sequence of integer token ids; may be empty
            (recall 0).
        reference: the reference answer, a non-empty sequence of integer token ids.

    Returns:
        The recall in [0, 1], float64: the share of the reference tokens that the generated
        answer reproduces in order.

    Raises:
        ValueError: an argument that is not a 1-D sequence of integers, or an empty
            ``reference`` (the recall is undefined; ``rouge_score`` would report 0).
    """
    gen = _tokens(generated, "generated")
    ref = _tokens(reference, "reference")
    if not ref:
        raise ValueError("reference must be a non-empty token sequence (ROUGE-L recall divides by its length)")
    if not gen:
        return np.float64(0.0)
    return np.float64(_lcs_length(gen, ref) / len(ref))


def rouge_l_recall_many(generated_list, reference_list) -> np.ndarray:
    """ROUGE-L recall of each generated answer against its reference (:func:`rouge_l_recall`).

    Args:
        generated_list: a non-empty sequence of generated token sequences.
        reference_list: the reference token sequences, one per generated answer, each non-empty.

    Returns:
        float64 array of shape ``(len(generated_list),)`` with the recalls.

    Raises:
        ValueError: empty or unequal-length lists, or a bad entry (named by its index).
    """
    gens = _answer_list(generated_list, "generated_list")
    refs = _answer_list(reference_list, "reference_list")
    if len(gens) != len(refs):
        raise ValueError(f"generated_list and reference_list must have the same length, got {len(gens)} and {len(refs)}")
    out = np.empty(len(gens), dtype=np.float64)
    for i, (g, r) in enumerate(zip(gens, refs)):
        gen = _tokens(g, f"generated_list[{i}]")
        ref = _tokens(r, f"reference_list[{i}]")
        if not ref:
            raise ValueError(f"reference_list[{i}] must be a non-empty token sequence")
        out[i] = _lcs_length(gen, ref) / len(ref) if gen else 0.0
    return out


# --- truth ratio ---------------------------------------------------------------------------------


def truth_ratio_from_logs(logp_norm_perturbed, logp_norm_paraphrased) -> np.ndarray:
    """Truth ratio ``R`` per question from log normalised probabilities ``log p~``.

    ``log R = mean_k log p~(perturbed_k) - log p~(paraphrased)``: the mean of the logs is the
    log of the geometric mean of the wrong answers' ``p~``. (TOFU's losses are ``-log p~``.)

    Args:
        logp_norm_perturbed: shape ``(Q, K)``, ``log p~`` of the K perturbed (wrong) answers of
            each of Q questions; finite, <= 0.
        logp_norm_paraphrased: shape ``(Q,)``, ``log p~`` of the paraphrased correct answer of
            each question; finite, <= 0.

    Returns:
        float64 array of shape ``(Q,)``, the truth ratios ``R > 0`` (below 1: the model prefers
        the correct answer).

    Raises:
        ValueError: wrong number of dimensions, empty inputs, mismatched Q, or values that are
            not finite log-probabilities.
    """
    pert = _log_probabilities(logp_norm_perturbed, "logp_norm_perturbed", ndim=2)
    para = _log_probabilities(logp_norm_paraphrased, "logp_norm_paraphrased", ndim=1)
    if pert.shape[0] != para.shape[0]:
        raise ValueError(f"logp_norm_perturbed (shape {pert.shape}) must have one row per entry of "
                         f"logp_norm_paraphrased (shape {para.shape})")
    return np.exp(pert.mean(axis=1) - para)


def truth_ratio(p_perturbed, p_paraphrased) -> np.ndarray:
    """Truth ratio ``R = p~(wrong) / p~(paraphrased correct)`` per question.

    The wrong answers of a question are combined by the geometric mean of their normalised
    probabilities; computed in log space (:func:`truth_ratio_from_logs`).

    Args:
        p_perturbed: shape ``(Q, K)``, normalised probabilities ``p~`` in (0, 1] of the K
            perturbed (wrong) answers of each of Q questions.
        p_paraphrased: shape ``(Q,)``, normalised probability ``p~`` in (0, 1] of the
            paraphrased correct answer of each question.

    Returns:
        float64 array of shape ``(Q,)``, the truth ratios ``R > 0``.

    Raises:
        ValueError: wrong number of dimensions, empty inputs, mismatched Q, or probabilities
            outside (0, 1].
    """
    pert = _probabilities(p_perturbed, "p_perturbed", ndim=2)
    para = _probabilities(p_paraphrased, "p_paraphrased", ndim=1)
    if pert.shape[0] != para.shape[0]:
        raise ValueError(f"p_perturbed (shape {pert.shape}) must have one row per entry of p_paraphrased "
                         f"(shape {para.shape})")
    return truth_ratio_from_logs(np.log(pert), np.log(para))


def truth_ratio_score(R, split: str) -> np.float64:
    """The reported truth-ratio number of a set.

    On ``"forget"``: ``mean(min(R, 1/R))``, in (0, 1], 1 when the model cannot tell the correct
    from the wrong answers (as a model that never saw the forget set). On ``"retain"``,
    ``"real_authors"`` and ``"world_facts"``: ``mean(max(0, 1 - R))``, in [0, 1), higher when
    the model prefers the correct answers.

    Args:
        R: non-empty 1-D array of per-question truth ratios (finite, > 0), e.g. from
            :func:`truth_ratio`.
        split: ``"forget"``, ``"retain"``, ``"real_authors"`` or ``"world_facts"``.

    Returns:
        The score, float64.

    Raises:
        ValueError: an unknown ``split``, or ``R`` empty, not 1-D, or not finite and positive.
    """
    split = _check_split(split, SPLITS)
    r = _positive_ratios(R, "R")
    if split == "forget":
        return np.float64(np.mean(np.minimum(r, 1.0 / r)))
    return np.float64(np.mean(np.maximum(0.0, 1.0 - r)))


# --- forget quality ------------------------------------------------------------------------------


def forget_quality(R_model, R_retrained) -> np.float64:
    """Forget quality: the two-sample Kolmogorov-Smirnov p-value between truth ratios.

    ``scipy.stats.ks_2samp`` (two-sided, default method: exact for small samples) between the
    per-question truth ratios of a model and of the retrained model (trained without the forget
    set) on the forget set. Higher is better: a high p-value means the two distributions cannot
    be told apart, as they should be after perfect unlearning; above 0.05 is read as meaningful
    forgetting.

    The p-value is the same for ``R`` and ``1/R`` (TOFU's code uses ``1/R``): the KS statistic
    depends only on the order of the pooled values, which a monotone transform applied to both
    samples keeps (reverses, for ``1/R``, which leaves the two-sided statistic unchanged). The
    retrained model against itself scores 1, so the fair baseline is a second retrained model
    from another seed.

    Args:
        R_model: non-empty 1-D array of the model's truth ratios on the forget questions
            (finite, > 0).
        R_retrained: non-empty 1-D array of the retrained model's truth ratios (finite, > 0);
            its length may differ from ``R_model``'s.

    Returns:
        The p-value in [0, 1], float64.

    Raises:
        ValueError: an empty, non-1-D or non-positive input.
    """
    a = _positive_ratios(R_model, "R_model")
    b = _positive_ratios(R_retrained, "R_retrained")
    return np.float64(stats.ks_2samp(a, b).pvalue)


# --- probability ---------------------------------------------------------------------------------


def probability_score(p_true, p_perturbed=None, split: str | None = None) -> np.float64:
    """The "probability" number of a set.

    On ``"forget"`` and ``"retain"``: ``mean(p_true)``, the mean normalised probability of the
    correct answer. On ``"real_authors"`` and ``"world_facts"``: the mean over questions of
    ``p~(true) / (p~(true) + sum_k p~(perturbed_k))``, the share of the correct answer among the
    offered ones.

    Args:
        p_true: shape ``(Q,)``, normalised probabilities ``p~`` in (0, 1] of the correct answers.
        p_perturbed: shape ``(Q, K)``, normalised probabilities in (0, 1] of the K wrong answers
            of each question; required on ``"real_authors"`` and ``"world_facts"``, checked but
            not used on ``"forget"`` and ``"retain"``.
        split: ``"forget"``, ``"retain"``, ``"real_authors"`` or ``"world_facts"`` (required).

    Returns:
        The score in (0, 1], float64.

    Raises:
        ValueError: an unknown or missing ``split``, a missing ``p_perturbed`` where it is
            needed, wrong shapes, empty inputs or probabilities outside (0, 1].
    """
    split = _check_split(split, SPLITS)
    true = _probabilities(p_true, "p_true", ndim=1)
    if p_perturbed is None:
        if split in ("real_authors", "world_facts"):
            raise ValueError(f"p_perturbed (shape (Q, K)) is required on split {split!r}")
        return np.float64(np.mean(true))
    pert = _probabilities(p_perturbed, "p_perturbed", ndim=2)
    if pert.shape[0] != true.shape[0]:
        raise ValueError(f"p_perturbed (shape {pert.shape}) must have one row per entry of p_true "
                         f"(shape {true.shape})")
    if split in ("forget", "retain"):
        return np.float64(np.mean(true))
    return np.float64(np.mean(true / (true + pert.sum(axis=1))))


# --- model utility -------------------------------------------------------------------------------


def model_utility(values) -> np.float64:
    """Model utility: the harmonic mean of the nine retain / real-authors / world-facts numbers.

    Args:
        values: either a mapping with exactly the keys of :data:`UTILITY_KEYS`
            (``"retain/probability"``, ``"retain/rouge"``, ``"retain/truth_ratio"``, and the
            same for ``"real_authors/"`` and ``"world_facts/"``), or a sequence of 9 numbers.
            Each number in [0, 1].

    Returns:
        ``9 / sum(1 / v)``, float64; 0 if any number is 0.

    Raises:
        ValueError: missing or extra keys, not 9 numbers, or numbers outside [0, 1] or NaN.
    """
    if isinstance(values, Mapping):
        keys = set(values)
        missing = [k for k in UTILITY_KEYS if k not in keys]
        extra = sorted(str(k) for k in keys - set(UTILITY_KEYS))
        if missing or extra:
            raise ValueError(f"values must have exactly the keys {list(UTILITY_KEYS)}; "
                             f"missing {missing}, extra {extra}")
        nums = [values[k] for k in UTILITY_KEYS]
    elif isinstance(values, (str, bytes)):
        raise ValueError("values must be a mapping with the keys UTILITY_KEYS or a sequence of 9 numbers")
    else:
        nums = values
    v = _float_array(nums, "values", ndim=1, allow_empty=True)
    if v.shape != (len(UTILITY_KEYS),):
        raise ValueError(f"values must hold {len(UTILITY_KEYS)} numbers, got shape {v.shape}")
    if not ((v >= 0) & (v <= 1)).all():
        raise ValueError(f"values must lie in [0, 1], got values in [{v.min()}, {v.max()}]")
    if (v == 0).any():
        return np.float64(0.0)
    return np.float64(v.size / np.sum(1.0 / v))


# --- shares of greedy answers --------------------------------------------------------------------


def without_end(answer: tuple, end: int) -> tuple:
    """``answer`` without its final ``end`` token (the words compared with the truth)."""
    return answer[:-1] if answer and answer[-1] == end else answer


def names_a_value(answer: tuple, values) -> bool:
    """Whether ``answer`` holds one of ``values`` (token tuples) as a contiguous run."""
    return any(any(tuple(answer[i:i + len(v)]) == tuple(v) for i in range(len(answer) - len(v) + 1)) for v in values)


def is_valid_answer(answer, valid_values, end_token: int, min_repeat: int = 3) -> bool:
    """Whether a greedy answer is valid: not degenerate (:func:`is_degenerate`), and one of
    ``valid_values`` (token sequences) appears as a contiguous run of its tokens before the first
    end token. Right or wrong: a valid answer has the form of an answer to the question."""
    end = _token_id(end_token, "end_token")
    head, _ = _until_end(_tokens(answer, "answer"), end)
    return not _degenerate(_tokens(answer, "answer"), end, _check_min_repeat(min_repeat)) and names_a_value(
        head, [_tokens(v, "valid_values entry") for v in valid_values])


def valid_answer_share(answers, valid_values, *, end_token: int) -> np.float64:
    """Share of greedy answers that are valid (:func:`is_valid_answer`): not degenerate, and
    naming one of the valid values of the asked relation.

    Args:
        answers: non-empty sequence of generated token sequences (integer token ids).
        valid_values: one entry per answer, each a non-empty collection of token sequences
            (e.g. a set of tuples of ints), the values the relation allows.
        end_token: the end-of-answer token id (keyword only).

    Returns:
        The share in [0, 1], float64.

    Raises:
        ValueError: empty inputs, unequal lengths, a non-integer ``end_token``, or a bad
            answer or valid-value entry (named by its index).
    """
    end = _token_id(end_token, "end_token")
    answers = _answer_list(answers, "answers")
    valid_values = _answer_list(valid_values, "valid_values")
    if len(answers) != len(valid_values):
        raise ValueError(f"answers and valid_values must have the same length (one entry per answer), "
                         f"got {len(answers)} and {len(valid_values)}")
    hits = 0
    for i, (answer, allowed) in enumerate(zip(answers, valid_values)):
        if isinstance(allowed, (str, bytes)) or not isinstance(allowed, Iterable):
            raise ValueError(f"valid_values[{i}] must be a collection of token sequences, got {type(allowed).__name__}")
        allowed_set = {_tokens(v, f"valid_values[{i}] entry") for v in allowed}
        if not allowed_set:
            raise ValueError(f"valid_values[{i}] must not be empty")
        tokens = _tokens(answer, f"answers[{i}]")
        hits += not _degenerate(tokens, end, 3) and names_a_value(_until_end(tokens, end)[0], allowed_set)
    return np.float64(hits / len(answers))


def _check_min_repeat(min_repeat) -> int:
    if isinstance(min_repeat, (bool, np.bool_)) or not isinstance(min_repeat, (int, np.integer)) or min_repeat < 2:
        raise ValueError(f"min_repeat must be an integer >= 2, got {min_repeat!r}")
    return int(min_repeat)


def _degenerate(tokens: tuple[int, ...], end: int, min_repeat: int) -> bool:
    head, ended = _until_end(tokens, end)
    if not ended or not head:
        return True
    run = 1
    for prev, cur in zip(head, head[1:]):
        run = run + 1 if cur == prev else 1
        if run >= min_repeat:
            return True
    return False


def is_degenerate(answer, end_token: int, min_repeat: int = 3) -> bool:
    """Whether a greedy answer is degenerate.

    Degenerate: the generated sequence has no end token at all, or the answer before the first
    end token is empty, or it holds the same token ``min_repeat`` or more times in a row.

    Args:
        answer: the generated token sequence (integer token ids), end token included.
        end_token: the end-of-answer token id.
        min_repeat: the run length of one token that counts as degenerate, an integer >= 2.

    Returns:
        True if the answer is degenerate.

    Raises:
        ValueError: ``answer`` not a 1-D integer sequence, a non-integer ``end_token``, or
            ``min_repeat`` below 2.
    """
    end = _token_id(end_token, "end_token")
    k = _check_min_repeat(min_repeat)
    return _degenerate(_tokens(answer, "answer"), end, k)


def degenerate_share(answers, end_token: int, min_repeat: int = 3) -> np.float64:
    """Share of greedy answers that are degenerate (:func:`is_degenerate`).

    Args:
        answers: non-empty sequence of generated token sequences (integer token ids).
        end_token: the end-of-answer token id.
        min_repeat: the run length of one token that counts as degenerate, an integer >= 2.

    Returns:
        The share in [0, 1], float64 (lower is better).

    Raises:
        ValueError: empty ``answers``, a bad answer (named by its index), a non-integer
            ``end_token``, or ``min_repeat`` below 2.
    """
    end = _token_id(end_token, "end_token")
    k = _check_min_repeat(min_repeat)
    answers = _answer_list(answers, "answers")
    bad = sum(_degenerate(_tokens(a, f"answers[{i}]"), end, k) for i, a in enumerate(answers))
    return np.float64(bad / len(answers))


# --- from a model's records to the measures: one definition for every experiment ---------------

LOG_FLOOR = -700.0
"""Logs of probabilities and truth ratios are clipped to ``[-700, 700]`` before ``exp`` (in
float64), so a collapsed model's numbers stay positive and finite, as TOFU's aggregates need."""


def probability_numbers(logs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per question of one set: ``p_answer``, ``p_paraphrase``, ``p_perturbed (Q, K)`` and
    ``truth_ratio`` (float64), from the model's ``log_p_answer``, ``log_p_paraphrase``,
    ``log_p_perturbed`` (logs of length-normalised probabilities) and ``log_truth_ratio``
    (:mod:`.scoring` computes them). Logs are clipped to :data:`LOG_FLOOR` first."""
    out = {}
    for name in ("p_answer", "p_paraphrase", "p_perturbed"):
        if f"log_{name}" in logs:
            out[name] = np.exp(np.clip(np.asarray(logs[f"log_{name}"], np.float64), LOG_FLOOR, 0.0))
    out["truth_ratio"] = np.exp(np.clip(np.asarray(logs["log_truth_ratio"], np.float64), LOG_FLOOR, -LOG_FLOOR))
    return out


def answer_numbers(answers, wordings, valid_values, end_token: int, values=None) -> dict[str, np.ndarray]:
    """Per greedy answer (token tuples; what follows the first end token is ignored): ``rouge``
    (ROUGE-L recall of the words before the end token against the closest correct wording; 0 for
    an empty answer), ``right`` (those words are one of the correct wordings), ``valid``
    (:func:`is_valid_answer`) and ``degenerate`` (:func:`is_degenerate`); with ``values`` (the
    question's own value, a token tuple, per answer) also ``knows``: the answer names it (right in
    substance, whatever the wording: the measure of long answers). ``wordings`` and
    ``valid_values`` hold one collection of token tuples per answer."""
    end = _token_id(end_token, "end_token")
    keys = ("rouge", "right", "valid", "degenerate") + (("knows",) if values is not None else ())
    out = {k: np.zeros(len(answers), dtype=np.float64 if k == "rouge" else bool) for k in keys}
    for i, (g, words, valid) in enumerate(zip(answers, wordings, valid_values)):
        g = tuple(g)
        words = [tuple(w) for w in words]
        text = _until_end(g, end)[0]
        out["degenerate"][i] = _degenerate(g, end, 3)
        out["rouge"][i] = max(_rouge_cached(text, w) for w in words) if text else 0.0
        out["right"][i] = text in set(words)
        out["valid"][i] = not out["degenerate"][i] and names_a_value(text, valid)
        if values is not None:
            out["knows"][i] = names_a_value(text, [values[i]])
    return out


@functools.lru_cache(maxsize=1 << 20)
def _rouge_cached(generated: tuple, reference: tuple) -> float:
    return float(_lcs_length(generated, reference) / len(reference))


def set_scores(numbers: Mapping[str, np.ndarray], split: str) -> dict[str, float]:
    """TOFU's three numbers of one set from its per-question ``numbers``: ``probability``
    (:func:`probability_score`; the perturbed answers enter on real authors and world facts),
    ``rouge`` (mean ROUGE-L recall) and ``truth_ratio`` (:func:`truth_ratio_score`)."""
    split = _check_split(split, SPLITS)
    p_pert = numbers["p_perturbed"] if split in ("real_authors", "world_facts") else None
    return {
        "probability": float(probability_score(numbers["p_answer"], p_pert, split=split)),
        "rouge": float(np.mean(numbers["rouge"])),
        "truth_ratio": float(truth_ratio_score(numbers["truth_ratio"], split)),
    }


def utility(numbers_by_set: Mapping[str, Mapping[str, np.ndarray]]) -> np.float64:
    """Model utility (:func:`model_utility`) from the per-question numbers of the three
    :data:`UTILITY_SETS` (each with ``p_answer``, ``p_perturbed``, ``rouge``, ``truth_ratio``)."""
    values = {f"{s}/{k}": v for s in UTILITY_SETS for k, v in set_scores(numbers_by_set[s], s).items()}
    return model_utility(values)
