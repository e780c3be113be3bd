"""Unlearning TOFU in miniature: every method's data, and TOFU's measures read off the engine's runs.

* :func:`unlearning_data`: the data every unlearning method reads, for one forget split: the
  forget questions with their answers, one uninformed answer per forget question (IDK, DPO),
  the retain questions, and the reference model's values (:func:`synthetic.models.transformer.sequence_batch`).
* The engine's metrics function is :func:`.scoring.tofu_metrics`, on the fixed evaluation sets of
  :func:`.scoring.eval_sets` (capped: TOFU evaluates at most 300 of its 4000 questions per set,
  so that an evaluation costs about as much as a few optimizer steps).
* :func:`summarize`: from those records, after the runs, forget quality (the KS p-value against
  the retrained model's truth ratios), model utility (TOFU's harmonic mean of nine numbers), and
  the shares of valid, right and degenerate answers, with the measures of :mod:`.measures`.

The unlearning optimizer is :func:`synthetic.optim.warmup_decay_adamw`, its peak learning rate
injected per setting.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from synthetic.models import transformer as tf
from synthetic.worlds.tofu_mini import measures
from synthetic.worlds.tofu_mini.data import Corpus
from synthetic.worlds.tofu_mini.scoring import GREEDY_SETS, EvalSets, answers_after_prompts, wordings_and_values

__all__ = ["unlearning_data", "summarize", "greedy_text", "SUMMARY"]

SUMMARY = (
    "forget_quality", "model_utility", "forget_kl", "forget_nll", "param_distance", "forget_truth_ratio",
    "forget_probability", "forget_valid", "forget_right", "forget_degenerate", "retain_degenerate",
    "retain_probability", "retain_rouge",
)  # fmt: skip
"""What :func:`summarize` returns per run and evaluation."""


def unlearning_data(corpus: Corpus, params_ref, split: int) -> dict:
    """The data of every method for the ``split``% forget split (arrays the engine samples).

    Forget: each forget question with its answer (the loss is on the answer tokens), and one
    uninformed answer per question (:data:`.data.IDK_ANSWERS`); retain: each retain question
    with its answer. The reference model's log-probabilities and next-token laws are
    precomputed (:func:`synthetic.models.transformer.sequence_batch`).
    """
    T = tf.config_of(params_ref).context
    forget, retain = corpus.split("forget", split), corpus.split("retain", split)
    f, r, idk = corpus.encode(forget, length=T), corpus.encode(retain, length=T), corpus.encode_idk(forget, length=T)
    return tf.sequence_batch(params_ref, f.tokens, f.answer_mask, r.tokens, r.answer_mask, idk_tokens=idk.tokens,
                             idk_mask=idk.answer_mask, forget_kl=True)


class _Questions:
    """What summarising needs to know of the greedy sets, computed once: per set, its rows of the
    greedy batch and its questions' correct wordings and valid values (token tuples)."""

    def __init__(self, corpus: Corpus, sets: EvalSets):
        self.end = corpus.tokenizer.end
        self.rows, self.known, start = {}, {}, 0
        for name in GREEDY_SETS:
            pairs = getattr(sets, name)
            self.rows[name] = slice(start, start + len(pairs))
            self.known[name] = wordings_and_values(corpus, pairs)
            start += len(pairs)
        self.prompts = np.concatenate([corpus.encode(getattr(sets, n)).prompt_length for n in GREEDY_SETS])

    def numbers(self, record: Mapping) -> dict[str, dict[str, np.ndarray]]:
        """Per set, TOFU's per-question numbers of one run's record at one evaluation."""
        answers = answers_after_prompts(record["greedy"], self.prompts, self.end)
        out = {"forget": measures.probability_numbers(record["forget"])}
        for name in GREEDY_SETS:
            checks = measures.answer_numbers(answers[self.rows[name]], *self.known[name], self.end)
            out[name] = {**out.get(name, {}), **checks}
        for name in measures.UTILITY_SETS:
            out[name].update(measures.probability_numbers(record[name]))
        return out


def _finite(record: Mapping) -> bool:
    import jax

    return all(np.all(np.isfinite(v)) for k, v in jax.tree_util.tree_leaves_with_path(record)
               if jax.tree_util.keystr(k) != "['greedy']")


def _row(numbers: dict, record: Mapping, retrained_truth_ratio) -> dict[str, float]:
    R, fg = numbers["forget"]["truth_ratio"], numbers["forget_greedy"]
    return {
        "forget_quality": measures.forget_quality(R, retrained_truth_ratio),
        "model_utility": measures.utility(numbers),
        "forget_kl": record["forget_kl"], "forget_nll": record["forget_nll"],
        "param_distance": record["param_distance"],
        "forget_truth_ratio": np.mean(np.minimum(R, 1 / R)),
        "forget_probability": np.mean(numbers["forget"]["p_answer"]),
        "forget_valid": np.mean(fg["valid"]), "forget_right": np.mean(fg["right"]),
        "forget_degenerate": np.mean(fg["degenerate"]),
        "retain_degenerate": np.mean(numbers["retain"]["degenerate"]),
        "retain_probability": measures.set_scores(numbers["retain"], "retain")["probability"],
        "retain_rouge": np.mean(numbers["retain"]["rouge"]),
    }  # fmt: skip


def summarize(records: Mapping, corpus: Corpus, sets: EvalSets, retrained_truth_ratio) -> dict[str, np.ndarray]:
    """TOFU's aggregates of :func:`.scoring.tofu_metrics` records, for every run and evaluation.

    Args:
      records: the engine's output (each record with leading axes ``(..., E)``, e.g. seeds x
        settings x evaluations) or one evaluation (no leading axes).
      corpus, sets: what the records were measured on (:func:`.scoring.eval_sets`).
      retrained_truth_ratio: the retrained model's truth ratios on ``sets.forget``.
    Returns:
      float64 arrays of the records' leading shape for each name of :data:`SUMMARY`:
      ``forget_quality`` (KS p-value), ``model_utility`` (harmonic mean of nine numbers),
      ``forget_kl``, ``forget_nll``, ``param_distance``, ``forget_truth_ratio`` (TOFU's forget
      score, ``mean min(R, 1/R)``), ``forget_probability``, the shares of greedy forget answers
      that are valid (:func:`.measures.is_valid_answer`), right and degenerate, the share of
      degenerate greedy retain answers, and the retain probability and ROUGE. NaN where the
      run had diverged.
    """
    import jax

    questions = _Questions(corpus, sets)
    lead = np.shape(records["forget_kl"])
    out = {k: np.full(lead, np.nan) for k in SUMMARY}
    R_retr = np.asarray(retrained_truth_ratio, float)
    for ix in np.ndindex(*lead):
        record = jax.tree.map(lambda v: np.asarray(v[ix]), records)
        if not _finite(record):
            continue
        for k, v in _row(questions.numbers(record), record, R_retr).items():
            out[k][ix] = float(v)
    return out


def greedy_text(corpus: Corpus, greedy_row, prompt_length: int) -> str:
    """The words of one greedy answer (prompt dropped, up to ``<end>``)."""
    return corpus.tokenizer.decode(answers_after_prompts(np.asarray(greedy_row)[None], [prompt_length],
                                                         corpus.tokenizer.end)[0])
