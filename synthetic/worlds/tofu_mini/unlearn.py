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

from typing import Mapping, Optional

import numpy as np

from synthetic.models import transformer as tf
from synthetic.worlds.tofu_mini import measures
from synthetic.worlds.tofu_mini.data import Corpus
from synthetic.worlds.tofu_mini.scoring import GREEDY_SETS, EvalSets, answers_after_prompts, wordings_and_values
from theory.methods import Method

__all__ = ["unlearning_data", "normalised", "PAPER_NORMALISATION", "summarize", "greedy_text", "SUMMARY"]

SUMMARY = (
    "forget_quality", "model_utility", "forget_kl", "forget_nll", "param_distance", "forget_truth_ratio",
    "forget_probability", "forget_valid", "forget_right", "forget_knows", "forget_degenerate", "retain_degenerate",
    "retain_probability", "retain_rouge",
)  # fmt: skip
"""What :func:`summarize` returns per run and evaluation."""


def unlearning_data(corpus: Corpus, params_ref, split: int, *, retain_kl: bool = True,
                    forget_kl: bool = True) -> dict:
    """The data of every method for the ``split``% forget split (arrays the engine samples).

    Forget: each forget question with its answer (the loss is on the answer tokens), and one
    uninformed answer per question (:data:`.data.IDK_ANSWERS`); retain: each retain question
    with its answer, and the mask of its real tokens (for the position-mean KL). The reference
    model's log-probabilities of the answers are precomputed
    (:func:`synthetic.models.transformer.sequence_batch`); its next-token laws, which the KL
    terms read (``retain_kl``: the retain KL; ``forget_kl``: KTO's), are computed on each step's
    rows from the reference parameters the data carries (``reference="on_the_fly"``): stored
    for every row they would be the largest arrays of a run by far (0.2 GB for 900 retain
    questions), held on every device. Without either KL the data carries no reference model.
    """
    forget, retain = corpus.split("forget", split), corpus.split("retain", split)
    # each group at its own longest row (the engine samples and runs the groups separately)
    f, r, idk = corpus.encode(forget), corpus.encode(retain), corpus.encode_idk(forget)
    batch = tf.sequence_batch(params_ref, f.tokens, f.answer_mask, r.tokens, r.answer_mask, idk_tokens=idk.tokens,
                              idk_mask=idk.answer_mask, forget_kl=forget_kl,
                              retain_attend=r.tokens != corpus.tokenizer.pad, reference="on_the_fly")
    if not (retain_kl or forget_kl):
        del batch["reference_params"]
    return batch


PAPER_NORMALISATION = {"ga": "ga_tokens", "idk": "idk_tokens", "rt": "rt_tokens", "kl_rt": "kl_rt_positions"}
"""The NPO paper's TOFU code normalises GA, IDK and the retain loss as token means and the retain
KL as a position mean (:mod:`theory.components`); NPO, DPO, KTO and SimNPO keep theirs."""


def normalised(method: Method, normalisation: str) -> Method:
    """``method`` with the ``"paper"``'s normalisations (:data:`PAPER_NORMALISATION`), or as it is
    (``"sum"``: per-sequence sums, the earlier miniature's)."""
    if normalisation == "sum":
        return method
    if normalisation != "paper":
        raise ValueError(f"normalisation must be 'paper' or 'sum', got {normalisation!r}")
    weights = {PAPER_NORMALISATION.get(k, k): v for k, v in method.weights.items()}
    return Method.of(**weights, **method.hyper)


class _Questions:
    """What summarising needs to know of the greedy sets, computed once: per set, its prompts'
    lengths and its questions' correct wordings and valid values (token tuples)."""

    def __init__(self, corpus: Corpus, sets: EvalSets):
        self.end = corpus.tokenizer.end
        self.prompts = {n: corpus.encode(getattr(sets, n)).prompt_length for n in GREEDY_SETS}
        self.known = {n: wordings_and_values(corpus, getattr(sets, n)) for n in GREEDY_SETS}

    def numbers(self, record: Mapping) -> dict[str, dict[str, np.ndarray]]:
        """Per set, TOFU's per-question numbers of one run's record at one evaluation."""
        out = {"forget": measures.probability_numbers(record["forget"])}
        for name in GREEDY_SETS:
            answers = answers_after_prompts(record["greedy"][name], self.prompts[name], self.end)
            wordings, valid, values = self.known[name]
            checks = measures.answer_numbers(answers, wordings, valid, self.end, values=values)
            out[name] = {**out.get(name, {}), **checks}
        for name in measures.UTILITY_SETS:
            out[name].update(measures.probability_numbers(record[name]))
        return out


def _finite(record: Mapping) -> bool:
    import jax

    return all(np.all(np.isfinite(v)) for k, v in jax.tree_util.tree_leaves_with_path(record)
               if not jax.tree_util.keystr(k).startswith("['greedy']"))


def _row(numbers: dict, record: Mapping, retrained_truth_ratio) -> dict[str, float]:
    R, fg = numbers["forget"]["truth_ratio"], numbers["forget_greedy"]
    return {
        "forget_quality": measures.forget_quality(R, retrained_truth_ratio),
        "model_utility": measures.utility(numbers),
        "forget_kl": record["forget_kl"], "forget_nll": record["forget_nll"],
        "param_distance": record["param_distance"],
        "forget_truth_ratio": np.mean(np.minimum(R, 1 / R)),
        "forget_probability": np.mean(numbers["forget"]["p_answer"]),
        "forget_valid": np.mean(fg["valid"]), "forget_right": np.mean(fg["right"]), "forget_knows": np.mean(fg["knows"]),
        "forget_degenerate": np.mean(fg["degenerate"]),
        "retain_degenerate": np.mean(numbers["retain"]["degenerate"]),
        "retain_probability": measures.set_scores(numbers["retain"], "retain")["probability"],
        "retain_rouge": np.mean(numbers["retain"]["rouge"]),
    }  # fmt: skip


def summarize(records: Mapping, corpus: Corpus, sets: EvalSets, retrained_truth_ratio,
              subsets: Optional[Mapping[str, np.ndarray]] = None) -> dict[str, np.ndarray]:
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
      that are valid (:func:`.measures.is_valid_answer`), right (a correct wording), name the right
      value (``forget_knows``) and are degenerate, the share of
      degenerate greedy retain answers, and the retain probability and ROUGE. NaN where the
      run had diverged. With ``subsets`` (name -> indices of forget questions), also
      ``forget_quality_<name>``: forget quality on those questions only (a smaller evaluation).
    """
    import jax

    questions = _Questions(corpus, sets)
    lead = np.shape(records["forget_kl"])
    subsets = dict(subsets or {})
    out = {k: np.full(lead, np.nan) for k in SUMMARY + tuple(f"forget_quality_{n}" for n in subsets)}
    R_retr = np.asarray(retrained_truth_ratio, float)
    for ix in np.ndindex(*lead):
        record = jax.tree.map(lambda v: np.asarray(v[ix]), records)
        if not _finite(record):
            continue
        numbers = questions.numbers(record)
        for k, v in _row(numbers, record, R_retr).items():
            out[k][ix] = float(v)
        for name, idx in subsets.items():
            out[f"forget_quality_{name}"][ix] = measures.forget_quality(numbers["forget"]["truth_ratio"][idx], R_retr[idx])
    return out


def greedy_text(corpus: Corpus, greedy_row, prompt_length: int) -> str:
    """The words of one greedy answer (prompt dropped, up to ``<end>``)."""
    return corpus.tokenizer.decode(answers_after_prompts(np.asarray(greedy_row)[None], [prompt_length],
                                                         corpus.tokenizer.end)[0])
