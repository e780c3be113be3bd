"""The language models of TOFU in miniature: training on the fictitious facts, and TOFU's
measures of a trained model.

* :func:`model_config`: the toolkit's transformer (a config of the same code) sized for a
  :class:`~synthetic.data.tofu.Corpus`.
* :func:`train_qa_model`: AdamW with linear warm-up and linear decay (optax), the loss on the
  answer tokens only, minibatches through :func:`synthetic.engine.train` (one jitted step).
* :func:`answer_log_probs`, :func:`exact_match`, :func:`greedy_answers`: what a model says
  about a set of questions (one forward pass each, jitted; greedy decoding with fixed shapes).
* :func:`evaluate_set`: the per-question numbers TOFU's measures read, for one set; and
  :func:`measures` the set's aggregates (:mod:`synthetic.tofu_eval`).
"""

from __future__ import annotations

import functools
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from synthetic import engine, tofu_eval
from synthetic.data.tofu import QA, Corpus, Encoded
from synthetic.models import transformer as tf
from theory.validate import check_int

__all__ = [
    "model_config",
    "train_qa_model",
    "answer_log_probs",
    "exact_match",
    "greedy_answers",
    "answers_after_prompts",
    "without_end",
    "names_a_value",
    "evaluate_set",
    "measures",
]


def model_config(corpus: Corpus, *, layers: int = 2, width: int = 128, heads: int = 4, mlp_ratio: int = 4,
                 context: Optional[int] = None) -> tf.TransformerConfig:
    """The transformer for ``corpus``: its vocabulary, a context holding the longest question,
    answer and ``<end>`` of any kind of answer, uninformed answers included (``context``
    overrides)."""
    longest = max(
        corpus.encode(corpus.qa).tokens.shape[1], corpus.encode(corpus.qa, "paraphrase").tokens.shape[1],
        corpus.encode_perturbed(corpus.qa).tokens.shape[1], corpus.encode_idk(corpus.qa).tokens.shape[1],
    )
    return tf.TransformerConfig(vocab_size=corpus.tokenizer.size, context=context or longest, layers=layers,
                                width=width, heads=heads, mlp_ratio=mlp_ratio)


@functools.lru_cache(maxsize=None)
def _optimizer(learning_rate: float, warmup: int, total: int, weight_decay: float) -> optax.GradientTransformation:
    # One object per setting, so the jitted training step compiles once per model shape.
    schedule = optax.join_schedules(
        [optax.linear_schedule(0.0, learning_rate, max(warmup, 1)),
         optax.linear_schedule(learning_rate, 0.0, max(total - warmup, 1))], [max(warmup, 1)])
    return optax.adamw(schedule, weight_decay=weight_decay)


def train_qa_model(key: jax.Array, model: tf.TransformerConfig, data: Encoded, train: dict,
                   progress: Callable[[str], None] = lambda msg: None):
    """Train a transformer from scratch on question-answer pairs, the loss on answer tokens.

    Args:
      key: splits into the initialisation and the batch order.
      model: the :class:`~synthetic.models.transformer.TransformerConfig`.
      data: :class:`~synthetic.data.tofu.Encoded` pairs (``answer_mask`` is the loss mask).
      train: ``learning_rate``, ``batch_size``, ``epochs``, ``warmup`` (a fraction of all steps),
        ``weight_decay``: AdamW with linear warm-up to the learning rate, then linear decay to 0.
    Returns:
      ``(params, losses)``.
    """
    check_int(train["epochs"], "epochs")
    n = data.tokens.shape[0]
    steps = (n // int(train["batch_size"])) * int(train["epochs"])
    warmup = int(round(float(train["warmup"]) * steps))
    opt = _optimizer(float(train["learning_rate"]), warmup, steps, float(train["weight_decay"]))
    k_init, k_data = jax.random.split(key)
    return engine.train(
        k_data, tf.init(k_init, model), tf.next_token_nll, {"tokens": data.tokens, "mask": data.answer_mask}, opt,
        batch_size=int(train["batch_size"]), epochs=int(train["epochs"]), progress=progress,
    )  # fmt: skip


@jax.jit
def _answer_stats(params, tokens, mask):
    logp = tf.next_token_log_probs(params, tokens)  # (N, T-1, V)
    target = tokens[:, 1:]
    lp = jnp.take_along_axis(logp, target[..., None], axis=-1)[..., 0]
    m = mask[:, 1:]
    hit = (jnp.argmax(logp, axis=-1) == target) | (m == 0)
    return jnp.sum(lp * m, axis=-1), jnp.sum(m, axis=-1), jnp.all(hit, axis=-1)


def _bucket(n: int, chunk: int) -> int:
    """Rows a chunk of ``n`` is padded to: a power of two (at least 16, at most ``chunk``), so a
    handful of shapes compile whatever the set sizes."""
    return min(chunk, max(16, 1 << (int(n) - 1).bit_length()))


def _pad(a, rows: int):
    a = np.asarray(a)
    return np.concatenate([a, np.zeros((rows - a.shape[0],) + a.shape[1:], a.dtype)]) if rows > a.shape[0] else a


def _chunks(fn, params, *arrays, chunk: int = 512):
    n = arrays[0].shape[0]
    parts = []
    for i in range(0, n, chunk):
        k = min(chunk, n - i)
        res = fn(params, *(jnp.asarray(_pad(a[i:i + k], _bucket(k, chunk))) for a in arrays))
        parts.append([np.asarray(r)[:k] for r in res])
    return [np.concatenate([p[j] for p in parts]) for j in range(len(parts[0]))]


def answer_log_probs(params, data: Encoded) -> tuple[np.ndarray, np.ndarray]:
    """``(logp_sum, length)``: each answer's summed log-probability over its answer tokens and
    ``<end>`` (the tokens of ``answer_mask``), and their number."""
    lp, n, _ = _chunks(_answer_stats, params, data.tokens, data.answer_mask)
    return lp.astype(np.float64), n.astype(np.float64)


def exact_match(params, data: Encoded) -> np.ndarray:
    """Per pair: whether greedy decoding reproduces this answer and ``<end>`` exactly (read off
    one forward pass: the argmax at every answer position, given the true prefix, is the true
    token, which is exactly when greedy decoding writes the answer)."""
    return _chunks(_answer_stats, params, data.tokens, data.answer_mask)[2].astype(bool)


_greedy = jax.jit(tf.greedy_complete)


def greedy_answers(params, data: Encoded, end: int) -> list[tuple]:
    """The greedy answer to each question (after ``<a>``), up to and including the first
    ``end`` token, or to the end of the context when the model never writes it."""
    out = []
    n = data.tokens.shape[0]
    for i in range(0, n, 512):
        k = min(512, n - i)
        rows = _bucket(k, 512)
        prompt = data.prompt_length[i:i + k]
        toks = np.asarray(_greedy(params, jnp.asarray(_pad(data.tokens[i:i + k], rows)),
                                  jnp.asarray(_pad(prompt, rows) + (np.arange(rows) >= k) * int(prompt.max()))))[:k]
        out += answers_after_prompts(toks, prompt, end)
    return out


def answers_after_prompts(tokens, prompt_lengths, end: int) -> list[tuple]:
    """Each row of ``tokens`` after its prompt (``prompt_lengths``), up to and including the
    first ``end`` token, or to the end of the row when there is none: the answers."""
    out = []
    for row, p in zip(np.asarray(tokens).tolist(), np.asarray(prompt_lengths).tolist()):
        ans = row[int(p):]
        out.append(tuple(ans[: ans.index(end) + 1] if end in ans else ans))
    return out


def without_end(answer: tuple, end: int) -> tuple:
    """``answer`` without its final ``end`` token (the words compared with the truth)."""
    return answer[:-1] if answer and answer[-1] == end else answer


def names_a_value(answer: tuple, values) -> bool:
    """Whether ``answer`` holds one of ``values`` (token tuples) as a contiguous run."""
    return any(any(tuple(answer[i:i + len(v)]) == tuple(v) for i in range(len(answer) - len(v) + 1)) for v in values)


def evaluate_set(params, corpus: Corpus, pairs: Sequence[QA]) -> dict[str, np.ndarray]:
    """Per-question numbers of ``pairs``: ``p_answer`` (the answer's length-normalised
    probability), ``p_paraphrase``, ``p_perturbed (Q, K)``, ``truth_ratio`` (R),
    ``rouge`` (ROUGE-L recall of the greedy answer against the answer), ``exact``,
    ``exact`` (the greedy answer is one of the correct wordings), ``valid`` (it is not
    degenerate and names a valid value of the asked relation, right or wrong, as a contiguous
    run of its tokens) and ``degenerate`` (:func:`synthetic.tofu_eval.is_degenerate`). ROUGE-L
    is against the closest correct wording."""
    if not pairs:
        raise ValueError("pairs must hold at least one question")
    T = tf._config_of(params).context
    tok = corpus.tokenizer
    enc = corpus.encode(pairs, length=T)
    para = corpus.encode(pairs, "paraphrase", length=T)
    pert = corpus.encode_perturbed(pairs, length=T)
    K = len(pairs[0].perturbed)
    if any(len(q.perturbed) != K for q in pairs):
        raise ValueError("every question of pairs must have the same number of perturbed answers")
    p_ans = tofu_eval.normalized_probability(*answer_log_probs(params, enc))
    p_para = tofu_eval.normalized_probability(*answer_log_probs(params, para))
    p_pert = tofu_eval.normalized_probability(*answer_log_probs(params, pert)).reshape(len(pairs), K)
    greedy = greedy_answers(params, enc, tok.end)
    generated = [without_end(g, tok.end) for g in greedy]
    correct = [[tuple(tok.encode(w)) for w in q.wordings] for q in pairs]
    rouge = np.array([max(tofu_eval.rouge_l_recall(g, w) for w in ws) if g else 0.0 for g, ws in zip(generated, correct)])
    degenerate = np.array([tofu_eval.is_degenerate(list(g), tok.end) for g in greedy])

    return {
        "p_answer": p_ans,
        "p_paraphrase": p_para,
        "p_perturbed": p_pert,
        "truth_ratio": tofu_eval.truth_ratio(p_pert, p_para),
        "rouge": rouge,
        "exact": np.array([g in set(ws) for g, ws in zip(generated, correct)]),
        "valid": np.array([names_a_value(g, [tok.encode(v) for v in q.valid_values])
                           for g, q in zip(generated, pairs)]) & ~degenerate,
        "degenerate": degenerate,
    }


def measures(per_question: dict, split: str) -> dict[str, float]:
    """A set's aggregates: ``probability``, ``rouge``, ``truth_ratio`` (TOFU's score for
    ``split``), ``exact_match``, ``valid_share``, ``degenerate_share``."""
    p_pert = per_question["p_perturbed"] if split in ("real_authors", "world_facts") else None
    return {
        "probability": float(tofu_eval.probability_score(per_question["p_answer"], p_pert, split=split)),
        "rouge": float(np.mean(per_question["rouge"])),
        "truth_ratio": float(tofu_eval.truth_ratio_score(per_question["truth_ratio"], split)),
        "exact_match": float(np.mean(per_question["exact"])),
        "valid_share": float(np.mean(per_question["valid"])),
        "degenerate_share": float(np.mean(per_question["degenerate"])),
    }
