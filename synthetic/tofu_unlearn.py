"""Unlearning TOFU in miniature: every method's data, TOFU's measures inside the engine's runs,
and the aggregates read off them.

The pieces the ``tofu_mini`` experiment puts together, usable on their own:

* :func:`unlearning_data`: the data every unlearning method reads, for one forget split: the
  forget questions with their answers, one uninformed answer per forget question (IDK, DPO),
  the retain questions, and the reference model's values (:func:`synthetic.models.transformer.sequence_batch`).
* :func:`eval_context` and :func:`tofu_metrics`: fixed evaluation sets and the engine's
  metrics function, which records at each evaluation, per run, the per-question numbers
  TOFU's aggregates read (truth ratios, answer probabilities), the greedy answers (decoded
  with a key/value cache, :func:`synthetic.models.transformer.greedy_complete`), the forget
  KL ``E_FG KL(pi_ref || pi_theta)``, the forget NLL and ``||theta - theta_ref||_2``.
* :func:`summarize`: from those records, with numpy and scipy after the runs, forget quality
  (the KS p-value against the retrained model's truth ratios), model utility (TOFU's
  harmonic mean of nine numbers), and the shares of valid, right and degenerate answers.
* :func:`unlearn_optimizer`: the paper's recipe as an optax optimizer: AdamW with linear
  warm-up and linear decay over a fixed number of steps, the peak learning rate injected
  per setting.

Evaluation sets are capped (``cap`` questions per set, TOFU evaluates at most 300 of its
4000) so that an evaluation costs about as much as a few optimizer steps.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from synthetic import tofu_eval
from synthetic.tofu_lm import answers_after_prompts, names_a_value, without_end
from synthetic.data.tofu import QA, Corpus
from synthetic.models import transformer as tf
from theory.objectives import kl_divergence

__all__ = [
    "EvalSets",
    "unlearning_data",
    "eval_sets",
    "eval_context",
    "tofu_metrics",
    "summarize",
    "unlearn_optimizer",
    "model_records",
    "greedy_text",
    "RowIndex",
    "UTILITY_SETS",
    "SUMMARY",
]

UTILITY_SETS = ("retain", "real_authors", "world_facts")
"""The sets model utility reads (TOFU's three)."""

SUMMARY = (
    "forget_quality", "model_utility", "forget_kl", "forget_nll", "param_distance", "forget_truth_ratio",
    "forget_probability", "forget_valid", "forget_right", "forget_degenerate", "retain_degenerate",
    "retain_probability", "retain_rouge",
)  # fmt: skip
"""What :func:`summarize` returns per run and evaluation."""


def _spread(pairs: Sequence[QA], cap: Optional[int]) -> list[QA]:
    """At most ``cap`` of ``pairs``, evenly spaced (so every author of a large split is seen)."""
    pairs = list(pairs)
    if cap is None or len(pairs) <= cap:
        return pairs
    return [pairs[i] for i in np.linspace(0, len(pairs) - 1, int(cap)).round().astype(int)]


def unlearning_data(corpus: Corpus, params_ref, split: int) -> dict:
    """The data of every method for the ``split``% forget split (arrays the engine samples).

    Forget: each forget question with its answer (the loss is on the answer tokens), and one
    uninformed answer per question (:data:`synthetic.data.tofu.IDK_ANSWERS`); retain: each
    retain question with its answer. The reference model's log-probabilities and next-token
    laws are precomputed (:func:`synthetic.models.transformer.sequence_batch`).
    """
    T = tf._config_of(params_ref).context
    forget, retain = corpus.split("forget", split), corpus.split("retain", split)
    f, r, idk = corpus.encode(forget, length=T), corpus.encode(retain, length=T), corpus.encode_idk(forget, length=T)
    return tf.sequence_batch(params_ref, f.tokens, f.answer_mask, r.tokens, r.answer_mask, idk_tokens=idk.tokens,
                             idk_mask=idk.answer_mask, forget_kl=True)


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class RowIndex:
    """Where each scored part of each set sits in the evaluation batch: ``(name, (start,
    rows))`` pairs. A static pytree node (no leaves), so row counts stay Python ints under
    ``jit`` and ``vmap``."""

    parts: tuple

    def __getitem__(self, name: str) -> tuple[int, int]:
        return dict(self.parts)[name]


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
        forget=tuple(_spread(corpus.split("forget", split), cap)),
        forget_greedy=tuple(_spread(corpus.split("forget", split), greedy_cap)),
        retain=tuple(_spread(corpus.split("retain", retain_split), cap)),
        real_authors=tuple(corpus.split("real_authors")),
        world_facts=tuple(corpus.split("world_facts")),
    )


def eval_context(corpus: Corpus, sets: EvalSets, params_ref) -> dict:
    """The arrays :func:`tofu_metrics` reads (the engine's ``context``): every scored answer of
    every set as one batch of rows, with per-row group indices, the greedy prompts, the
    reference's next-token laws on the forget answers and the reference parameters."""
    T = tf._config_of(params_ref).context
    rows, masks, index = [], [], {}

    def add(name, enc):
        index[name] = (sum(len(r) for r in rows), enc.tokens.shape[0])
        rows.append(enc.tokens)
        masks.append(enc.answer_mask)

    K = len(sets.forget[0].perturbed)
    for name in ("forget",) + UTILITY_SETS:
        pairs = getattr(sets, name)
        if any(len(q.perturbed) != K for q in pairs):
            raise ValueError(f"every question of the {name} set must have {K} perturbed answers")
        add(f"{name}/answer", corpus.encode(pairs, length=T))
        add(f"{name}/paraphrase", corpus.encode(pairs, "paraphrase", length=T))
        add(f"{name}/perturbed", corpus.encode_perturbed(pairs, length=T))
    greedy = [corpus.encode(getattr(sets, n), length=T) for n in ("forget_greedy",) + UTILITY_SETS]
    f = corpus.encode(sets.forget, length=T)
    return {
        "tokens": jnp.asarray(np.concatenate(rows)),
        "mask": jnp.asarray(np.concatenate(masks)),
        "greedy_tokens": jnp.asarray(np.concatenate([g.tokens for g in greedy])),
        "greedy_prompt": jnp.asarray(np.concatenate([g.prompt_length for g in greedy])),
        "forget_ref_logp": tf.jit_next_token_log_probs(params_ref, jnp.asarray(f.tokens)),
        "params_ref": params_ref,
        "index": RowIndex(tuple(index.items())),
    }


def tofu_metrics(params, method, ctx) -> dict:
    """The engine's metrics function: per-question numbers of every evaluation set (see the
    module docstring), in float32; ``greedy`` is int16 (int32 for a vocabulary above 32767)
    ``(G, T)``: prompts and answers."""
    logp = tf.next_token_log_probs(params, ctx["tokens"])
    target = ctx["tokens"][:, 1:]
    lp = jnp.take_along_axis(logp, target[..., None], axis=-1)[..., 0]
    m = ctx["mask"][:, 1:]
    # log of the length-normalised probability of each row's answer
    lnp = jnp.sum(lp * m, axis=-1) / jnp.maximum(jnp.sum(m, axis=-1), 1.0)
    index = ctx["index"]

    def rows(name):
        start, n = index[name]
        return lnp[start:start + n]

    out = {}
    for name in ("forget",) + UTILITY_SETS:
        ans, para, pert = rows(f"{name}/answer"), rows(f"{name}/paraphrase"), rows(f"{name}/perturbed")
        pert = pert.reshape(ans.shape[0], -1)
        # logs: a collapsed model's probabilities underflow float32
        out[f"{name}_log_p_answer"] = ans
        out[f"{name}_log_p_perturbed"] = pert
        # log R: the geometric mean of the perturbed p~ over the paraphrase's p~ (TOFU's code)
        out[f"{name}_log_truth_ratio"] = jnp.mean(pert, axis=-1) - para
    start, n = index["forget/answer"]
    f_logp, f_mask, f_lp = logp[start:start + n], m[start:start + n], lp[start:start + n]
    kl = jnp.sum(kl_divergence(ctx["forget_ref_logp"], f_logp) * f_mask, axis=-1)
    out["forget_kl"] = jnp.mean(kl)
    out["forget_nll"] = -jnp.sum(f_lp * f_mask) / jnp.sum(f_mask)
    sq = sum(jnp.sum(jnp.square(a - b)) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ctx["params_ref"])))
    out["param_distance"] = jnp.sqrt(sq)
    out = {k: v.astype(jnp.float32) for k, v in out.items()}
    # token ids in int16 when the vocabulary allows (the records hold every run's answers)
    small = tf._config_of(params).vocab_size <= np.iinfo(np.int16).max
    out["greedy"] = tf.greedy_complete(params, ctx["greedy_tokens"], ctx["greedy_prompt"]).astype(
        jnp.int16 if small else jnp.int32)
    return out


def unlearn_optimizer(warmup: int, total: int, weight_decay: float) -> optax.GradientTransformation:
    """AdamW (optax) with the paper's schedule: the learning rate rises linearly from 0 over
    ``warmup`` steps, then falls linearly to 0 at step ``total``. The peak learning rate is an
    injected hyperparameter (``hyperparams={"learning_rate": [...]}`` of the engine)."""
    return _unlearn_optimizer(int(warmup), int(total), float(weight_decay))


@functools.lru_cache(maxsize=None)
def _unlearn_optimizer(warmup, total, weight_decay):
    # One object per setting, so the engine's program compiles once per shape.
    warmup = max(warmup, 1)
    shape = optax.join_schedules(
        [optax.linear_schedule(0.0, 1.0, warmup), optax.linear_schedule(1.0, 0.0, max(total - warmup, 1))], [warmup])

    def make(learning_rate):
        return optax.adamw(lambda count: learning_rate * shape(count), weight_decay=weight_decay)

    return optax.inject_hyperparams(make)(learning_rate=1.0)


# --------------------------------------------------------------------------- aggregates


@functools.lru_cache(maxsize=1 << 20)
def _rouge(generated: tuple, reference: tuple) -> float:
    return float(tofu_eval.rouge_l_recall(generated, reference)) if generated else 0.0


@dataclasses.dataclass(frozen=True)
class _Keys:
    """What summarising needs to know of the sets, precomputed once."""

    words: dict  # set -> per question: tuple of correct wordings' token tuples
    values: list  # forget_greedy -> per question: valid values' token tuples
    right: list  # forget_greedy -> per question: set of correct wordings
    slices: dict  # greedy rows of each set
    prompts: np.ndarray
    end: int


def _keys(corpus: Corpus, sets: EvalSets) -> _Keys:
    tok = corpus.tokenizer
    names = ("forget_greedy",) + UTILITY_SETS
    words = {n: [tuple(tuple(tok.encode(w)) for w in q.wordings) for q in getattr(sets, n)] for n in names}
    slices, start = {}, 0
    for n in names:
        slices[n] = slice(start, start + len(getattr(sets, n)))
        start += len(getattr(sets, n))
    prompts = np.concatenate([corpus.encode(getattr(sets, n)).prompt_length for n in names])
    values = [[tuple(tok.encode(v)) for v in q.valid_values] for q in sets.forget_greedy]
    return _Keys(words, values, [set(w) for w in words["forget_greedy"]], slices, prompts, tok.end)


LOG_FLOOR = -700.0
"""Logs of probabilities and truth ratios are clipped to ``[-700, 700]`` before ``exp`` (in
float64), so a collapsed model's numbers stay positive and finite, as TOFU's aggregates need."""


def _exponentiated(records: Mapping[str, np.ndarray]) -> dict:
    """``<set>_p_answer``, ``<set>_p_perturbed``, ``<set>_truth_ratio`` from their logs (float64)."""
    out = dict(records)
    for k, v in records.items():
        if k.endswith(("_log_p_answer", "_log_p_perturbed", "_log_truth_ratio")):
            hi = 0.0 if "_log_p_" in k else -LOG_FLOOR
            out[k.replace("_log_", "_")] = np.exp(np.clip(np.asarray(v, np.float64), LOG_FLOOR, hi))
    return out


def summarize(records: Mapping[str, np.ndarray], corpus: Corpus, sets: EvalSets, retrained_truth_ratio) -> dict:
    """TOFU's aggregates of :func:`tofu_metrics` records, for every run and evaluation.

    Args:
      records: the engine's output (each metric with leading axes ``(..., E)``, e.g. seeds x
        settings x evaluations) or one evaluation (no leading axes).
      corpus, sets: what the records were measured on (:func:`eval_sets`).
      retrained_truth_ratio: the retrained model's truth ratios on ``sets.forget``.
    Returns:
      float64 arrays of the records' leading shape for each name of :data:`SUMMARY`:
      ``forget_quality`` (KS p-value), ``model_utility`` (harmonic mean of nine numbers),
      ``forget_kl``, ``forget_nll``, ``param_distance``, ``forget_truth_ratio`` (TOFU's forget
      score, ``mean min(R, 1/R)``), ``forget_probability``, the shares of greedy forget answers
      that name a valid value (and are not degenerate), are right, are degenerate, the share of
      degenerate greedy retain answers, and the retain probability and ROUGE. NaN where the
      run had diverged.
    """
    keys = _keys(corpus, sets)
    records = _exponentiated(records)
    lead = np.shape(records["forget_kl"])
    out = {k: np.full(lead, np.nan) for k in SUMMARY}
    R_retr = np.asarray(retrained_truth_ratio, float)
    for ix in np.ndindex(*lead):
        r = {k: np.asarray(v[ix]) for k, v in records.items()}
        if not np.isfinite(r["forget_kl"]) or not all(np.all(np.isfinite(v)) for k, v in r.items() if k != "greedy"):
            continue
        answers = answers_after_prompts(r["greedy"], keys.prompts, keys.end)
        values = {}
        for s in UTILITY_SETS:
            gen = answers[keys.slices[s]]
            values[f"{s}/probability"] = tofu_eval.probability_score(
                r[f"{s}_p_answer"], r[f"{s}_p_perturbed"] if s != "retain" else None, split=s)
            values[f"{s}/rouge"] = float(np.mean([max(_rouge(without_end(g, keys.end), w)
                                                      for w in ws) for g, ws in zip(gen, keys.words[s])]))
            values[f"{s}/truth_ratio"] = tofu_eval.truth_ratio_score(r[f"{s}_truth_ratio"], s)
        R = r["forget_truth_ratio"].astype(float)
        fg = answers[keys.slices["forget_greedy"]]
        degenerate = np.array([tofu_eval.is_degenerate(list(g), keys.end) for g in fg])
        stripped = [without_end(g, keys.end) for g in fg]
        row = {
            "forget_quality": tofu_eval.forget_quality(R, R_retr),
            "model_utility": tofu_eval.model_utility(values),
            "forget_kl": r["forget_kl"], "forget_nll": r["forget_nll"], "param_distance": r["param_distance"],
            "forget_truth_ratio": np.mean(np.minimum(R, 1 / R)), "forget_probability": np.mean(r["forget_p_answer"]),
            "forget_valid": np.mean([names_a_value(g, v) and not d for g, v, d in zip(stripped, keys.values, degenerate)]),
            "forget_right": np.mean([g in w for g, w in zip(stripped, keys.right)]),
            "forget_degenerate": np.mean(degenerate),
            "retain_degenerate": np.mean([tofu_eval.is_degenerate(list(g), keys.end) for g in answers[keys.slices["retain"]]]),
            "retain_probability": values["retain/probability"], "retain_rouge": values["retain/rouge"],
        }  # fmt: skip
        for k, v in row.items():
            out[k][ix] = float(v)
    return out


def model_records(params, corpus: Corpus, sets: EvalSets, params_ref) -> dict:
    """:func:`tofu_metrics` of one model (the reference, the retrained model), as numpy, with
    the probabilities and truth ratios exponentiated (``<set>_truth_ratio``, ...)."""
    ctx = eval_context(corpus, sets, params_ref)
    return _exponentiated({k: np.asarray(v) for k, v in _one(params, ctx).items()})


@jax.jit
def _one(params, ctx):
    return tofu_metrics(params, None, ctx)


def greedy_text(corpus: Corpus, greedy_row, prompt_length: int) -> str:
    """The words of one greedy answer (prompt dropped, up to ``<end>``)."""
    return corpus.tokenizer.decode(answers_after_prompts(np.asarray(greedy_row)[None], [prompt_length],
                                            corpus.tokenizer.end)[0])

