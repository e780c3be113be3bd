"""What a model says about sets of questions: the records TOFU's measures read, computed in JAX.

Every model TOFU in miniature measures (the full model, the retrained ones, every unlearning
run inside the engine) is read the same way:

* per answer row, the log of its length-normalised probability (:func:`row_log_p`), combined per
  question into ``log_p_answer``, ``log_p_paraphrase``, ``log_p_perturbed (Q, K)`` and
  ``log_truth_ratio`` (the geometric mean of the perturbed answers' ``p~`` over the paraphrase's,
  as TOFU's code does; :func:`set_logs`), in float32;
* the greedy answers (decoded with a key/value cache, :func:`synthetic.models.transformer.greedy_complete`).

:func:`tofu_metrics` does both inside the engine's runs, on the fixed evaluation sets of
:func:`eval_sets` (:func:`eval_context`), and adds the forget KL, the forget NLL and
``||theta - theta_ref||``; :func:`question_numbers` does it for one model and any set of
questions, in chunks, then turns the records into TOFU's per-question numbers with
:func:`.measures.probability_numbers` and :func:`.measures.answer_numbers`, the same functions
the unlearning study's summaries use.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from synthetic import engine
from synthetic.models import transformer as tf
from synthetic.worlds.tofu_mini import measures
from synthetic.worlds.tofu_mini.data import QA, Corpus, Encoded
from theory.objectives import kl_divergence

__all__ = [
    "EvalSets",
    "eval_sets",
    "spread",
    "spread_indices",
    "CHUNK",
    "row_log_p",
    "set_logs",
    "eval_context",
    "tofu_metrics",
    "model_records",
    "question_numbers",
    "greedy_answers",
    "wordings_and_values",
    "answers_after_prompts",
    "GREEDY_SETS",
    "MERGE",
]

GREEDY_SETS = ("forget_greedy",) + measures.UTILITY_SETS
"""The sets whose greedy answers an evaluation decodes, in the order of their rows."""


def spread_indices(n: int, cap: Optional[int]) -> np.ndarray:
    """At most ``cap`` of the indices ``0..n-1``, evenly spaced, first and last included (all of
    them if ``cap`` is None or at least ``n``)."""
    if cap is None or n <= cap:
        return np.arange(n)
    return np.linspace(0, n - 1, int(cap)).round().astype(int)


def spread(pairs: Sequence[QA], cap: Optional[int]) -> list[QA]:
    """At most ``cap`` of ``pairs``, evenly spaced (so every author of a large split is seen)."""
    pairs = list(pairs)
    return [pairs[i] for i in spread_indices(len(pairs), cap)]


@dataclasses.dataclass(frozen=True)
class EvalSets:
    """The questions an evaluation reads: ``forget`` (truth ratios, KL, NLL), ``forget_greedy``
    (the greedy answers of the valid and right shares), and the three utility sets."""

    forget: tuple
    forget_greedy: tuple
    retain: tuple
    real_authors: tuple
    world_facts: tuple


def eval_sets(corpus: Corpus, split: int, *, cap: Optional[int] = 60, greedy_cap: Optional[int] = 30,
              retain_split: int = 90) -> EvalSets:
    """The evaluation sets of the ``split``% split: at most ``cap`` forget questions and at
    most ``greedy_cap`` for greedy answers (each evenly spaced over the split), at most ``cap`` retain
    questions of the authors retained at every split up to ``retain_split``% (so utility is
    measured on the same questions at every split), and every real-author and world fact."""
    return EvalSets(
        forget=tuple(spread(corpus.split("forget", split), cap)),
        forget_greedy=tuple(spread(corpus.split("forget", split), greedy_cap)),
        retain=tuple(spread(corpus.split("retain", retain_split), cap)),
        real_authors=tuple(corpus.split("real_authors")),
        world_facts=tuple(corpus.split("world_facts")),
    )


GREEDY_SLACK = 8
"""Greedy answers may run this many tokens past the set's longest true answer (within the model's
context) before they count as never ending (degenerate): the decode of a set costs its own
length, not the context's."""

CHUNK = 16
"""Rows per forward pass inside an evaluation (``lax.map`` over chunks): the memory of an
evaluation grows with the chunk, not with the set, whatever the number of runs evaluated at once."""


def row_log_p(params, tokens, mask):
    """Per row: the log of the length-normalised probability of its answer (the tokens of
    ``mask``, ``<end>`` included), ``sum log p / |a|``, in the parameters' dtype; also the
    next-token log-probabilities and the masked per-token log-probabilities (for the KL and NLL)."""
    logp = tf.next_token_log_probs(params, tokens)
    lp = jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1)[..., 0]
    m = mask[:, 1:]
    return jnp.sum(lp * m, axis=-1) / jnp.maximum(jnp.sum(m, axis=-1), 1.0), logp, lp, m


def _chunked(f, xs):
    """``jax.lax.map(f, xs)`` in :data:`CHUNK` rows per call, the rows padded (with copies of the
    last) to a multiple of the chunk: one traced instance of ``f``, none for a remainder."""
    n = jax.tree.leaves(xs)[0].shape[0]
    pad = -n % CHUNK
    xs = jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)]) if pad else a, xs)
    return jax.tree.map(lambda a: a[:n], jax.lax.map(f, xs, batch_size=CHUNK))


def _chunked_log_p(params, tokens, mask):
    """:func:`row_log_p`'s first output for every row, :data:`CHUNK` rows per forward pass."""
    return _chunked(lambda tm: row_log_p(params, tm[0][None], tm[1][None])[0][0], (tokens, mask))


MERGE = 1.25
"""Sets whose rows' lengths are within this factor of each other are scored (and greedy sets
decoded) as one batch, padded to the longest: fewer, larger programs, the same numbers (a row's
causal log-probabilities do not depend on positions after it)."""


def _length_groups(lengths: dict) -> list[list]:
    """The names of ``lengths`` (name -> positions) in groups of similar length (:data:`MERGE`)."""
    groups = []
    for n in sorted(lengths, key=lengths.get):
        if groups and lengths[n] <= MERGE * lengths[groups[-1][0]]:
            groups[-1].append(n)
        else:
            groups.append([n])
    return groups


def _by_length(run, sets: dict) -> dict:
    """``run(tokens, *others)`` once per group of similar-length sets (``{name: (tokens (R, T),
    *others)}``, each other array with a leading row axis): the group's 2-D arrays padded to its
    longest ``T`` and every array's rows concatenated; the result's rows cut back per set (and its
    positions, for a result of the tokens' shape)."""
    out = {}
    for group in _length_groups({n: a[0].shape[1] for n, a in sets.items()}):
        T = max(sets[n][0].shape[1] for n in group)
        pad = [tuple(jnp.pad(a, ((0, 0), (0, T - a.shape[1]))) if a.ndim == 2 else a for a in sets[n]) for n in group]
        done = run(*(jnp.concatenate(arrays) for arrays in zip(*pad)))
        start = 0
        for n in group:
            rows, cols = sets[n][0].shape
            out[n] = done[start:start + rows] if done.ndim == 1 else done[start:start + rows, :cols]
            start += rows
    return out


def set_logs(answer, paraphrase, perturbed) -> dict:
    """One set's per-question logs from its rows' :func:`row_log_p`: ``log_p_answer (Q,)``,
    ``log_p_paraphrase (Q,)``, ``log_p_perturbed (Q, K)`` and ``log_truth_ratio (Q,)``, the log of
    the geometric mean of the perturbed ``p~`` over the paraphrase's (TOFU's code; a corpus whose
    paraphrase is the answer itself, as TOFU's real-authors and world-facts sets, makes the answer
    the base). Logs, because a collapsed model's probabilities underflow float32."""
    perturbed = perturbed.reshape(answer.shape[0], -1)
    return {"log_p_answer": answer, "log_p_paraphrase": paraphrase, "log_p_perturbed": perturbed,
            "log_truth_ratio": jnp.mean(perturbed, axis=-1) - paraphrase}


def _set_rows(corpus: Corpus, pairs) -> dict:
    """Every scored row of a set, answers ``(Q, T)``, paraphrases ``(Q, T)`` and perturbed answers
    ``(Q * K, T)`` (tokens and answer masks), padded to the set's own longest row."""
    parts = [corpus.encode(pairs), corpus.encode(pairs, "paraphrase"), corpus.encode_perturbed(pairs)]
    T = max(e.tokens.shape[1] for e in parts)
    pad = [corpus.encode(pairs, length=T), corpus.encode(pairs, "paraphrase", length=T),
           corpus.encode_perturbed(pairs, length=T)]
    return {part: {"tokens": jnp.asarray(e.tokens), "mask": jnp.asarray(e.answer_mask)}
            for part, e in zip(("answer", "paraphrase", "perturbed"), pad)}


def _greedy_rows(corpus: Corpus, pairs, context: int) -> Encoded:
    """The prompts of ``pairs`` (with their answers, which greedy decoding overwrites), padded to
    the set's longest question and answer plus :data:`GREEDY_SLACK`, at most ``context``."""
    longest = corpus.encode(pairs).tokens.shape[1]
    return corpus.encode(pairs, length=min(context, longest + GREEDY_SLACK))


def eval_context(corpus: Corpus, sets: EvalSets, params_ref) -> dict:
    """The arrays :func:`tofu_metrics` reads (the engine's ``context``): per set, every scored
    answer as rows of that set's own length (short answers are not padded to the longest);
    per greedy set its prompts; the reference's next-token laws on the forget answers and the
    reference parameters."""
    K = len(sets.forget[0].perturbed)
    out = {"rows": {}, "greedy": {}}
    for name in ("forget",) + measures.UTILITY_SETS:
        pairs = getattr(sets, name)
        if any(len(q.perturbed) != K for q in pairs):
            raise ValueError(f"every question of the {name} set must have {K} perturbed answers")
        out["rows"][name] = _set_rows(corpus, pairs)
    for name in GREEDY_SETS:
        enc = _greedy_rows(corpus, getattr(sets, name), tf.config_of(params_ref).context)
        out["greedy"][name] = {"tokens": jnp.asarray(enc.tokens), "prompt": jnp.asarray(enc.prompt_length)}
    out.update(forget_ref_logp=tf.jit_next_token_log_probs(params_ref, out["rows"]["forget"]["answer"]["tokens"]),
               params_ref=params_ref)
    return out


def _forget_answers(params, ctx):
    """Per forget answer, :func:`row_log_p`, and the forget KL ``E_FG KL(pi_ref || pi_theta)``
    (summed over each answer's tokens) and NLL per token, in one pass of :data:`CHUNK` answers
    at a time."""
    rows = ctx["rows"]["forget"]["answer"]

    def one(args):
        tokens, mask, ref = args
        lnp, logp, lp, m = row_log_p(params, tokens[None], mask[None])
        return lnp[0], jnp.sum(kl_divergence(ref[None], logp) * m), jnp.sum(lp * m), jnp.sum(m)

    lnp, kl, lp, n = _chunked(one, (rows["tokens"], rows["mask"], ctx["forget_ref_logp"]))
    return lnp, jnp.mean(kl), -jnp.sum(lp) / jnp.sum(n)


def tofu_metrics(params, method, ctx) -> dict:
    """The engine's metrics function: :func:`set_logs` of every evaluation set (``{set: logs}``),
    the forget KL ``E_FG KL(pi_ref || pi_theta)`` (summed over answer tokens), the forget NLL
    (per token), ``param_distance``, all float32; and ``greedy`` (``{set: (G, T)}`` token ids,
    int16, or int32 for a vocabulary above 32767): the prompts and greedy answers of
    :data:`GREEDY_SETS`."""
    out = {}
    answers, out["forget_kl"], out["forget_nll"] = _forget_answers(params, ctx)
    scored = {}
    for name, rows in ctx["rows"].items():
        parts = ("paraphrase", "perturbed") if name == "forget" else ("answer", "paraphrase", "perturbed")
        scored[name] = tuple(jnp.concatenate([rows[p][k] for p in parts]) for k in ("tokens", "mask"))
    # every set's rows, sets of similar length in one pass
    for name, lnp in _by_length(functools.partial(_chunked_log_p, params), scored).items():
        q = ctx["rows"][name]["answer"]["tokens"].shape[0]
        if name == "forget":
            lnp = jnp.concatenate([answers, lnp])
        out[name] = set_logs(lnp[:q], lnp[q:2 * q], lnp[2 * q:])
    out["param_distance"] = engine.param_distance(params, ctx["params_ref"])
    out = jax.tree.map(lambda v: v.astype(jnp.float32), out)
    # token ids in int16 when the vocabulary allows (the records hold every run's answers)
    dtype = jnp.int16 if tf.config_of(params).vocab_size <= np.iinfo(np.int16).max else jnp.int32
    out["greedy"] = {name: t.astype(dtype) for name, t in _greedy_decodes(params, ctx["greedy"]).items()}
    return out


def _greedy_decodes(params, greedy: dict) -> dict:
    """:func:`~synthetic.models.transformer.greedy_complete` of every greedy set (``{name: {tokens,
    prompt}}``), sets of similar length (:data:`MERGE`) merged into one decode (padded to the
    longest, then cut back: the same tokens as decoding each set alone)."""
    return _by_length(functools.partial(tf.greedy_complete, params),
                      {n: (g["tokens"], g["prompt"]) for n, g in greedy.items()})


@jax.jit
def _one(params, ctx):
    return tofu_metrics(params, None, ctx)


def model_records(params, corpus: Corpus, sets: EvalSets, params_ref) -> dict:
    """:func:`tofu_metrics` of one model (the reference, the retrained model) as numpy arrays."""
    return jax.tree.map(np.asarray, _one(params, eval_context(corpus, sets, params_ref)))


# --------------------------------------------------------------------------- one model, any set


def _bucket(n: int, chunk: int) -> int:
    """Rows a chunk of ``n`` is padded to: a power of two (at least 16, at most ``chunk``), so a
    handful of shapes compile whatever the set sizes."""
    return min(chunk, max(16, 1 << (int(n) - 1).bit_length()))


def _pad(a, rows: int):
    a = np.asarray(a)
    return np.concatenate([a, np.zeros((rows - a.shape[0],) + a.shape[1:], a.dtype)]) if rows > a.shape[0] else a


@jax.jit
def _chunk_logs(params, answer, paraphrase, perturbed):
    """:func:`set_logs` of a chunk of questions, each part a ``(tokens, mask)`` pair."""
    return set_logs(*(row_log_p(params, t, m)[0] for t, m in (answer, paraphrase, perturbed)))


def _question_logs(params, corpus: Corpus, pairs: Sequence[QA], chunk: int = 128) -> dict[str, np.ndarray]:
    """:func:`set_logs` of ``pairs`` for one model, ``chunk`` questions at a time (padded to a
    power of two, so few shapes compile)."""
    T = tf.config_of(params).context
    K = len(pairs[0].perturbed)
    if any(len(q.perturbed) != K for q in pairs):
        raise ValueError("every question of pairs must have the same number of perturbed answers")
    parts = []
    for i in range(0, len(pairs), chunk):
        sub = list(pairs[i:i + chunk])
        rows = _bucket(len(sub), chunk)
        encoded = (corpus.encode(sub, length=T), corpus.encode(sub, "paraphrase", length=T),
                   corpus.encode_perturbed(sub, length=T))
        args = [(jnp.asarray(_pad(e.tokens, r)), jnp.asarray(_pad(e.answer_mask, r)))
                for e, r in zip(encoded, (rows, rows, rows * K))]
        parts.append({k: np.asarray(v)[:len(sub)] for k, v in _chunk_logs(params, *args).items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


_greedy = jax.jit(tf.greedy_complete)


def greedy_answers(params, data: Encoded, end: int, chunk: int = 512) -> list[tuple]:
    """The greedy answer to each question (after ``<a>``), up to and including the first
    ``end`` token, or to the end of the context when the model never writes it."""
    out = []
    n = data.tokens.shape[0]
    for i in range(0, n, chunk):
        k = min(chunk, n - i)
        rows = _bucket(k, chunk)
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


def question_numbers(params, corpus: Corpus, pairs: Sequence[QA]) -> dict[str, np.ndarray]:
    """TOFU's per-question numbers of ``pairs`` for one model: ``p_answer``, ``p_paraphrase``,
    ``p_perturbed (Q, K)``, ``truth_ratio`` (:func:`.measures.probability_numbers`) and, from its
    greedy answers, ``rouge``, ``right``, ``valid``, ``degenerate``, ``knows`` (:func:`.measures.answer_numbers`)."""
    if not pairs:
        raise ValueError("pairs must hold at least one question")
    tok = corpus.tokenizer
    greedy = greedy_answers(params, _greedy_rows(corpus, pairs, tf.config_of(params).context), tok.end)
    wordings, valid, values = wordings_and_values(corpus, pairs)
    return {**measures.probability_numbers(_question_logs(params, corpus, pairs)),
            **measures.answer_numbers(greedy, wordings, valid, tok.end, values=values)}


def wordings_and_values(corpus: Corpus, pairs: Sequence[QA]) -> tuple[list, list, list]:
    """Per question, the token tuples of its correct wordings, of the valid values of its relation,
    and of its own value."""
    tok = corpus.tokenizer
    return ([[tuple(tok.encode(w)) for w in q.wordings] for q in pairs],
            [[tuple(tok.encode(v)) for v in q.valid_values] for q in pairs],
            [tuple(tok.encode(q.value)) for q in pairs])
