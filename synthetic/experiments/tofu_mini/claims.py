"""The sanity claims of ``tofu_mini_models``: the benchmark measures what TOFU's design promises."""

from __future__ import annotations

import numpy as np

from synthetic import tofu_eval
from synthetic.experiments.tofu_mini.config import FQ_THRESHOLD, GUESS_MAX, KNOWN_MIN, MAIN_SPLIT, VALID_MIN
from theory.claims import Claim

__all__ = ["tofu_mini_claims", "utility"]


def utility(arrays: dict, model: str) -> float:
    """Model utility of ``model`` (TOFU's harmonic mean of nine numbers, the 10% split's sets)."""
    values = {}
    for s in ("retain", "real_authors", "world_facts"):
        q = {k: arrays[f"{model}_{s}_{k}"] for k in ("p_answer", "p_perturbed", "truth_ratio", "rouge")}
        values[f"{s}/probability"] = tofu_eval.probability_score(
            q["p_answer"], q["p_perturbed"] if s != "retain" else None, split=s)
        values[f"{s}/rouge"] = float(np.mean(q["rouge"]))
        values[f"{s}/truth_ratio"] = tofu_eval.truth_ratio_score(q["truth_ratio"], s)
    return float(tofu_eval.model_utility(values))


def tofu_mini_claims(config: dict, arrays: dict) -> list[Claim]:
    """``tofu_mini.full_knows_forget``, ``retrain_is_baseline``, ``retrain_guesses_validly``,
    and the full model's accuracy on its training facts."""
    splits = [int(p) for p in arrays["splits"]]
    main = f"forget{MAIN_SPLIT}"
    fq_full = {p: float(tofu_eval.forget_quality(arrays[f"full_forget{p}_truth_ratio"],
                                                 arrays[f"retr{p}_forget{p}_truth_ratio"])) for p in splits}
    seconds = [k[: k.index(f"_{main}_")] for k in arrays
               if k.startswith(f"retr{MAIN_SPLIT}_seed") and k.endswith(f"_{main}_truth_ratio")]
    other = seconds[0] if seconds else None
    claims = []
    exact = float(arrays["full_train_exact"])
    claims.append(Claim(
        id="tofu_mini.full_learns_the_facts", kind="consistency", paper_ref="section 5 (TOFU's fine-tuned models)",
        statement=f"The full model answers its training questions: greedy exact match on every author's question at "
        f"least {KNOWN_MIN:.0%} (the aim TOFU's fine-tuned models meet; a benchmark of forgetting needs facts learned).",
        measured=f"exact match {exact:.4f} on {int(arrays['full_train_questions'])} questions; model utility "
        f"{utility(arrays, 'full'):.3g}; training {float(arrays['tokens_per_second']):.0f} tokens/s",
        verdict=exact >= KNOWN_MIN, values={"exact_match": exact},
    ))  # fmt: skip
    claims.append(Claim(
        id="tofu_mini.full_knows_forget", kind="paper", paper_ref="section 5 (forget quality), TOFU",
        statement="Forget quality measures knowledge: the full model, which trained on the forget authors, is far "
        f"from the retrained model that never saw them: its forget quality (KS p-value of the forget set's truth "
        f"ratios against the retrained model's) is below {FQ_THRESHOLD} / 100 at the {MAIN_SPLIT}% split (TOFU "
        f"reads > {FQ_THRESHOLD} as forgotten; 'far below' taken as two orders of magnitude). Reported at every split.",
        measured="forget quality of the full model: " + ", ".join(f"{p}%: {v:.2g}" for p, v in fq_full.items()),
        verdict=fq_full[MAIN_SPLIT] < FQ_THRESHOLD / 100, values={"forget_quality_full": fq_full},
        note="At the 1% split the forget set has only a handful of questions, too few for a KS test to reject.",
    ))  # fmt: skip
    if other is not None:
        fq_base = float(tofu_eval.forget_quality(arrays[f"{other}_{main}_truth_ratio"],
                                                 arrays[f"retr{MAIN_SPLIT}_{main}_truth_ratio"]))
        claims.append(Claim(
            id="tofu_mini.retrain_is_baseline", kind="consistency", paper_ref="section 5 (forget quality), TOFU",
            statement=f"Two retrained models from different seeds ({MAIN_SPLIT}% split) are indistinguishable on the "
            f"forget set: forget quality above {FQ_THRESHOLD} (the fair baseline: a retrained model against itself "
            "scores 1 by construction).",
            measured=f"forget quality, retrained seed {other.split('seed')[-1]} vs seed 0: {fq_base:.3g}; utility "
            f"{utility(arrays, other):.3g} vs {utility(arrays, f'retr{MAIN_SPLIT}'):.3g}",
            verdict=fq_base > FQ_THRESHOLD, values={"forget_quality": fq_base},
        ))  # fmt: skip
    valid = float(np.mean(arrays[f"retr{MAIN_SPLIT}_{main}_valid"]))
    right = float(np.mean(arrays[f"retr{MAIN_SPLIT}_{main}_exact"]))
    full_right = float(np.mean(arrays[f"full_{main}_exact"]))
    claims.append(Claim(
        id="tofu_mini.retrain_guesses_validly", kind="consistency", paper_ref="section 5 (NPO's fluent, wrong answers)",
        statement=f"The retrained model ({MAIN_SPLIT}% split) answers questions about authors it never saw with "
        f"valid values of the asked relation, usually wrong: at least {VALID_MIN:.0%} of its greedy forget answers "
        f"name a valid value and at most {GUESS_MAX:.0%} are right (round numbers fixed by the project; chance is "
        "about 1 in 16).",
        measured=f"valid {valid:.3f}, right {right:.3f} (the full model: right {full_right:.3f}); degenerate "
        f"{float(np.mean(arrays[f'retr{MAIN_SPLIT}_{main}_degenerate'])):.3f}",
        verdict=valid >= VALID_MIN and right <= GUESS_MAX, values={"valid": valid, "right": right},
    ))  # fmt: skip
    return claims
