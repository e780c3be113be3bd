"""The claims of TOFU in miniature: the models' sanity (``tofu_mini_models``) and the paper's
section 5 on them (``tofu_mini``).

The models' claims check that the benchmark measures what TOFU's design promises (the full model
knows its facts, forget quality reads knowledge, two retrained models are a baseline, the
retrained model guesses validly). The study's claims are decided on the results of
:func:`.study.run_study` with a 95% percentile bootstrap interval over the seeds (paired: the
methods of one seed share its minibatch order), against thresholds fixed before the full run
(round numbers, named below). Forget quality is compared in log10 (it spans twenty orders of
magnitude), floored at :data:`FQ_FLOOR`.
"""

from __future__ import annotations

import numpy as np

from synthetic.analysis import diverged_text, divergence_laws_claim, seed_interval, seed_mean
from synthetic.worlds.tofu_mini import measures
from synthetic.worlds.tofu_mini.lm import MAIN_SPLIT
from theory.claims import Check, Claim

__all__ = ["tofu_mini_claims", "tofu_collapse_claims", "answers_table", "peak_index", "splits_of", "FQ_THRESHOLD",
           "VALID_MIN", "GUESS_MAX", "KNOWN_MIN", "FQ_FLOOR", "COLLAPSE_FACTOR", "STABLE_SHARE", "DEGENERATE_MIN",
           "FALL_FACTOR", "VALID_AFTER_MIN", "NPO_METHODS"]

FQ_THRESHOLD = 0.05
"""Forget quality above this reads as "indistinguishable from the retrained model" (TOFU's reading)."""

VALID_MIN = 0.9
"""``tofu_mini.retrain_guesses_validly``: at least 90% of the retrained model's greedy forget answers
are valid (:func:`.measures.is_valid_answer`; a round number fixed by the project) ..."""

GUESS_MAX = 0.3
"""... and at most 30% are right (chance is 1 / the relation's 14-20 values; a round bound fixed by
the project)."""

KNOWN_MIN = 0.99
"""The full model must answer its training questions (exact match) at least this often."""


# --------------------------------------------------------------------------- the models


def tofu_mini_claims(config: dict, results: dict) -> list[Claim]:
    """``tofu_mini.full_learns_the_facts``, ``full_knows_forget``, ``retrain_is_baseline``,
    ``retrain_guesses_validly``."""
    main = str(MAIN_SPLIT)
    full, retr = results["full"], results["retrained"]
    fq_full = {int(p): float(measures.forget_quality(full["forget"][p]["truth_ratio"],
                                                     retr[p]["forget"][p]["truth_ratio"])) for p in sorted(retr, key=int)}
    claims = [_full_learns(results), _full_knows_forget(fq_full)]
    others = results.get("other_seeds", {})
    if others:
        seed = sorted(others, key=int)[0]
        claims.append(_retrain_is_baseline(others[seed], retr[main], seed))
    claims.append(_retrain_guesses_validly(retr[main]["forget"][main], full["forget"][main]))
    return claims


def _full_learns(results) -> Claim:
    exact = float(results["full_train_exact"])
    return Claim(
        id="tofu_mini.full_learns_the_facts", kind="consistency", paper_ref="section 5 (TOFU's fine-tuned models)",
        statement=f"The full model answers its training questions: greedy exact match on every author's question at "
        f"least {KNOWN_MIN:.0%} (the aim TOFU's fine-tuned models meet; a benchmark of forgetting needs facts learned).",
        measured=f"exact match {exact:.4f} on {int(results['full_train_questions'])} questions; model utility "
        f"{measures.utility(results['full']):.3g}; training {float(results['tokens_per_second']):.0f} tokens/s",
        verdict=exact >= KNOWN_MIN, values={"exact_match": exact},
    )  # fmt: skip


def _full_knows_forget(fq_full: dict) -> Claim:
    return Claim(
        id="tofu_mini.full_knows_forget", kind="paper", paper_ref="section 5 (forget quality), TOFU",
        statement="Forget quality measures knowledge: the full model, which trained on the forget authors, is far "
        f"from the retrained model that never saw them: its forget quality (KS p-value of the forget set's truth "
        f"ratios against the retrained model's) is below {FQ_THRESHOLD} / 100 at the {MAIN_SPLIT}% split (TOFU "
        f"reads > {FQ_THRESHOLD} as forgotten; 'far below' taken as two orders of magnitude). Reported at every split.",
        measured="forget quality of the full model: " + ", ".join(f"{p}%: {v:.2g}" for p, v in sorted(fq_full.items())),
        verdict=fq_full[MAIN_SPLIT] < FQ_THRESHOLD / 100, values={"forget_quality_full": fq_full},
        note="At the 1% split the forget set has only a handful of questions, too few for a KS test to reject.",
    )  # fmt: skip


def _retrain_is_baseline(other: dict, retr: dict, seed: str) -> Claim:
    main = str(MAIN_SPLIT)
    fq_base = float(measures.forget_quality(other["forget"][main]["truth_ratio"], retr["forget"][main]["truth_ratio"]))
    return Claim(
        id="tofu_mini.retrain_is_baseline", kind="consistency", paper_ref="section 5 (forget quality), TOFU",
        statement=f"Two retrained models from different seeds ({MAIN_SPLIT}% split) are indistinguishable on the "
        f"forget set: forget quality above {FQ_THRESHOLD} (the fair baseline: a retrained model against itself "
        "scores 1 by construction).",
        measured=f"forget quality, retrained seed {seed} vs seed 0: {fq_base:.3g}; utility "
        f"{measures.utility(other):.3g} vs {measures.utility(retr):.3g}",
        verdict=fq_base > FQ_THRESHOLD, values={"forget_quality": fq_base},
    )  # fmt: skip


def _retrain_guesses_validly(retr_forget: dict, full_forget: dict) -> Claim:
    valid, right = float(np.mean(retr_forget["valid"])), float(np.mean(retr_forget["right"]))
    return Claim(
        id="tofu_mini.retrain_guesses_validly", kind="consistency", paper_ref="section 5 (NPO's fluent, wrong answers)",
        statement=f"The retrained model ({MAIN_SPLIT}% split) answers questions about authors it never saw with "
        f"valid values of the asked relation, usually wrong: at least {VALID_MIN:.0%} of its greedy forget answers "
        f"name a valid value and at most {GUESS_MAX:.0%} are right (round numbers fixed by the project; chance is "
        "about 1 in 16).",
        measured=f"valid {valid:.3f}, right {right:.3f} (the full model: right {float(np.mean(full_forget['right'])):.3f}); "
        f"degenerate {float(np.mean(retr_forget['degenerate'])):.3f}",
        verdict=valid >= VALID_MIN and right <= GUESS_MAX, values={"valid": valid, "right": right},
    )  # fmt: skip


# --------------------------------------------------------------------------- the study


FQ_FLOOR = 1e-30
"""Forget quality is floored here before taking log10 (a KS p-value can underflow to 0)."""

COLLAPSE_FACTOR = 0.1
"""``tofu_mini.ga_collapses``: GA's final model utility at most a tenth of the full model's
("falls towards zero" read as an order of magnitude; a round number fixed by the project) ..."""

DEGENERATE_MIN = 0.5
"""... and at least half of its greedy answers to retain questions degenerate (a round number)."""

STABLE_SHARE = 0.5
"""``tofu_mini.npo_stable``: an NPO-based method's utility stays at least half the full
model's at every evaluation (a round number fixed by the project)."""

FALL_FACTOR = 10.0
"""``tofu_mini.ga_fq_peaks_then_falls``: GA's final forget quality at least 10x below its peak
(an order of magnitude, a round number fixed by the project)."""

VALID_AFTER_MIN = 0.5
"""``tofu_mini.npo_answers_valid_but_wrong``: at least half of the greedy forget answers name
a valid value of the asked relation (and at most ``GUESS_MAX`` are right)."""

NPO_METHODS = ("NPO", "NPO+RT", "NPO+KL")
"""The NPO-based methods of the paper's claims."""

_BOOT = "95% percentile-bootstrap intervals over seeds"


def _log_fq(fq):
    return np.log10(np.maximum(np.asarray(fq, float), FQ_FLOOR))


def peak_index(fq_SxE) -> np.ndarray:
    """Per seed, the first evaluation of peak forget quality ``(S,)`` (the paper's figure 5 reads
    each run at its peak; a diverged run's NaN records never count as a peak)."""
    return np.argmax(np.nan_to_num(np.asarray(fq_SxE, float), nan=-1.0), axis=-1)


def _at(x_SxE, index_S):
    return np.take_along_axis(np.asarray(x_SxE, float), np.asarray(index_S)[:, None], axis=-1)[:, 0]


def splits_of(results) -> list[int]:
    """The forget splits (%) the study's results hold, ascending."""
    return sorted(int(p) for p in results["splits"])


def _split(results, split: int) -> dict:
    return results["splits"][str(split)]


def _run(arrays, split: int, method: str, name: str):
    """``(S, E)`` records of ``method`` at ``split`` (None if it did not run there)."""
    s = _split(arrays, split)
    names = [str(m) for m in s["methods"]]
    return np.asarray(s[name])[:, names.index(method)] if method in names else None


def _present(arrays, split: int, methods) -> list[str]:
    """Those of ``methods`` that ran at ``split``."""
    names = {str(m) for m in _split(arrays, split)["methods"]}
    return [m for m in methods if m in names]


def _div(arrays, split, methods):
    """``"; GA: 1 of 3 runs diverged (step 12)"`` for each of ``methods`` with a diverged run."""
    names = [str(m) for m in _split(arrays, split)["methods"]]
    steps = np.asarray(_split(arrays, split)["diverged_step"])
    texts = [diverged_text(steps[:, names.index(m)], m) for m in methods if m in names]
    return "".join(f"; {t}" for t in texts if t)


def _collapse(arrays, main: int) -> Claim:
    full_u = float(_split(arrays, main)["full"]["model_utility"])
    u, deg = _run(arrays, main, "GA", "model_utility")[:, -1], _run(arrays, main, "GA", "retain_degenerate")[:, -1]
    checks = [
        Check("GA final utility / full model's", seed_interval(lambda m: m / full_u, u), COLLAPSE_FACTOR, "below"),
        Check("GA degenerate retain answers", seed_interval(lambda m: m, deg), DEGENERATE_MIN, "above"),
    ]
    others = []
    for p in splits_of(arrays):
        if _run(arrays, p, "GA", "model_utility") is not None:
            others.append(f"{p}%: {seed_mean(_run(arrays, p, 'GA', 'model_utility')[:, -1]):.3g}")
    return Claim.decided(
        id="tofu_mini.ga_collapses", kind="paper", paper_ref="section 5, figures 5 and 6",
        statement=f"Gradient ascent collapses: at the {main}% split its model utility at the end of the recipe is "
        f"at most {COLLAPSE_FACTOR:g} x the full model's, and at least {DEGENERATE_MIN:.0%} of its greedy answers to "
        f"retain questions are degenerate. {_BOOT}.",
        measured=f"GA utility {seed_mean(u):.3g} (full model {full_u:.3g}; every split: {', '.join(others)}); "
        f"degenerate retain answers {seed_mean(deg):.2f}; " + "; ".join(c.text() for c in checks) + _div(arrays, main, ["GA"]),
        checks=checks, values={"ga_utility": u, "full_utility": full_u, "ga_degenerate": deg},
    )  # fmt: skip


def _stable(arrays, main: int) -> Claim:
    full_u = float(_split(arrays, main)["full"]["model_utility"])
    checks, parts = [], []
    for m in _present(arrays, main, NPO_METHODS):
        u = _run(arrays, main, m, "model_utility")
        low = np.min(u, axis=-1)  # the lowest utility of each seed's run (NaN if it diverged)
        checks.append(Check(f"{m} lowest utility / full model's", seed_interval(lambda x: x / full_u, low),
                            STABLE_SHARE, "above"))
        parts.append(f"{m}: lowest {seed_mean(low):.3g}, final {seed_mean(u[:, -1]):.3g}")
    ga = _run(arrays, main, "GA", "model_utility")
    return Claim.decided(
        id="tofu_mini.npo_stable", kind="paper", paper_ref="section 5, figures 5 and 6",
        statement=f"NPO-based methods ({', '.join(NPO_METHODS)}) do not collapse: at the {main}% split each one's model "
        f"utility stays at least {STABLE_SHARE:g} x the full model's at every evaluation of the recipe. {_BOOT}.",
        measured=f"full model {full_u:.3g}; " + "; ".join(parts) + f" (GA final {seed_mean(ga[:, -1]):.3g}); "
        + "; ".join(c.text() for c in checks) + _div(arrays, main, NPO_METHODS),
        checks=checks, values={"full_utility": full_u},
    )  # fmt: skip


def _peaks(arrays, main: int) -> Claim:
    fq = _run(arrays, main, "GA", "forget_quality")
    steps = np.asarray(_split(arrays, main)["steps"])
    peak = peak_index(fq)
    fall = _log_fq(_at(fq, peak)) - _log_fq(fq[:, -1])
    interior = (peak > 0) & (peak < fq.shape[-1] - 1)
    checks = [Check("GA log10(peak FQ / final FQ)", seed_interval(lambda m: m, fall), np.log10(FALL_FACTOR), "above")]
    others = []
    for m in ("GA+RT", "GA+KL"):
        f = _run(arrays, main, m, "forget_quality")
        if f is not None:
            pk = peak_index(f)
            others.append(f"{m}: peak {seed_mean(_at(f, pk)):.2g} at step {np.median(steps[pk]):.0f}, final "
                          f"{seed_mean(f[:, -1]):.2g}")
    return Claim.decided(
        id="tofu_mini.ga_fq_peaks_then_falls", kind="paper", paper_ref="section 5, figure 6",
        statement=f"Gradient ascent's forget quality peaks, then falls: at the {main}% split every seed's peak is at "
        f"an evaluation inside the run (not the first or the last), and the final forget quality is at least "
        f"{FALL_FACTOR:g}x below the peak. {_BOOT} (on log10).",
        measured=f"GA peak FQ {seed_mean(_at(fq, peak)):.2g} at steps {steps[peak].tolist()} of {steps[-1]}, final "
        f"{seed_mean(fq[:, -1]):.2g} (seed means); {'; '.join(others)}; " + "; ".join(c.text() for c in checks)
        + _div(arrays, main, ["GA"]),
        checks=checks, also=[bool(interior.all())],
        values={"peak_step": steps[peak], "log10_fall": fall},
    )  # fmt: skip


def _best(arrays, main: int) -> Claim:
    checks, parts, best_ok = [], [], []
    values = {}
    for p in [p for p in splits_of(arrays) if p >= main]:
        names = [str(m) for m in _split(arrays, p)["methods"]]
        fq = np.asarray(_split(arrays, p)["forget_quality"])  # (S, C, E)
        peak_log = np.stack([_log_fq(_at(fq[:, c], peak_index(fq[:, c]))) for c in range(len(names))], axis=1)
        means = seed_mean(peak_log)
        order = np.argsort(-means)
        i = names.index("NPO+RT")
        checks.append(Check(f"{p}%: NPO+RT log10 peak FQ", seed_interval(lambda m: m, peak_log[:, i]),
                            np.log10(FQ_THRESHOLD), "above"))
        best_ok.append(int(order[0]) == i)
        above = [names[c] for c in range(len(names)) if means[c] > np.log10(FQ_THRESHOLD)]
        parts.append(f"{p}%: NPO+RT {10 ** means[i]:.2g}, best {names[order[0]]} {10 ** means[order[0]]:.2g}, "
                     f"next {names[order[1]]} {10 ** means[order[1]]:.2g}; above {FQ_THRESHOLD}: {above or 'none'}")
        values[f"{p}"] = dict(zip(names, (10 ** means).tolist()))
    return Claim.decided(
        id="tofu_mini.npo_rt_best_fq", kind="paper", paper_ref="section 5, figures 5 and 8",
        statement=f"NPO+RT is the best method by forget quality when forgetting {main}% and more: at every such split "
        f"its peak forget quality (geometric seed mean of each run's peak, as figure 5 reads runs) is the highest of "
        f"all methods run there and above {FQ_THRESHOLD} (TOFU's 'forgotten'). {_BOOT} (on log10).",
        measured="; ".join(parts) + "; " + "; ".join(c.text() for c in checks),
        checks=checks, also=best_ok, values=values,
    )  # fmt: skip


def _answers(arrays, main: int) -> Claim:
    parts, checks = [], []
    for m in _present(arrays, main, NPO_METHODS):
        valid, right = _run(arrays, main, m, "forget_valid")[:, -1], _run(arrays, main, m, "forget_right")[:, -1]
        checks.append(Check(f"{m} valid forget answers", seed_interval(lambda x: x, valid), VALID_AFTER_MIN, "above"))
        checks.append(Check(f"{m} right forget answers", seed_interval(lambda x: x, right), GUESS_MAX, "below"))
        parts.append(f"{m}: valid {seed_mean(valid):.2f}, right {seed_mean(right):.2f}")
    ga = {k: seed_mean(_run(arrays, main, "GA", f"forget_{k}")[:, -1]) for k in ("valid", "degenerate")}
    parts.append(f"GA: valid {ga['valid']:.2f}, degenerate {ga['degenerate']:.2f}")
    return Claim.decided(
        id="tofu_mini.npo_answers_valid_but_wrong", kind="paper", paper_ref="section 5 (NPO's outputs)",
        statement=f"After NPO-based unlearning ({', '.join(NPO_METHODS)}; {main}% split, end of the recipe) the model "
        f"answers forget questions fluently but wrongly: at least {VALID_AFTER_MIN:.0%} of its greedy answers name a "
        f"valid value of the asked relation (not degenerate) and at most {GUESS_MAX:.0%} are right (the bound the "
        f"retrained model meets). {_BOOT}.",
        measured="; ".join(parts) + "; " + "; ".join(c.text() for c in checks),
        checks=checks, values={"ga": ga},
        note="Sample answers are in the report's table 'Answers after unlearning'.",
    )  # fmt: skip


def _retain_weight(arrays) -> Claim:
    g = arrays["guidance"]
    w = [float(x) for x in g["weights"]]
    fq = _log_fq(np.asarray(g["by_weight"]["forget_quality"])[:, :, -1])  # (S, W) final
    u = np.asarray(g["by_weight"]["model_utility"])[:, :, -1]
    means = seed_mean(fq)
    if 0.0 not in w or 2.0 not in w:
        return Claim(id="tofu_mini.retain_weight", kind="paper", paper_ref="section 5.2", statement="-",
                     measured=f"weights {w} lack 0 or 2", verdict="inconclusive")
    i0, i2 = w.index(0.0), w.index(2.0)
    checks = [Check("log10 FQ(w=2) - log10 FQ(w=0)", seed_interval(lambda a, b: a - b, fq[:, i2], fq[:, i0]), 0.0)]
    also = [means[i2] >= means[w.index(1.0)]] if 1.0 in w else []
    return Claim.decided(
        id="tofu_mini.retain_weight", kind="paper", paper_ref="section 5.2 (retain weight ablation)",
        statement="Forget quality improves with NPO+RT's retain weight up to about 2: at the end of the recipe (10% "
        "split) the forget quality with weight 2 is above that with weight 0 (NPO alone; paired bootstrap interval of "
        f"the log10 difference above 0) and, seed-mean, at least that with weight 1. {_BOOT}.",
        measured="final FQ / utility by retain weight: " + ", ".join(
            f"{x:g}: {10 ** m:.2g} / {seed_mean(uu):.2f}" for x, m, uu in zip(w, means, u.T)) + "; "
        + "; ".join(c.text() for c in checks),
        checks=checks, also=also, values={"weights": w, "log10_fq": means, "utility": seed_mean(u)},
    )  # fmt: skip


def answers_table(config: dict, arrays: dict) -> dict[str, str]:
    """The report's table of greedy answers after unlearning (seed 0, last step, the 10%
    split): the truth beside GA's, NPO's and NPO+RT's answers."""
    samples = arrays.get("samples", {})
    methods = [m for m in ("GA", "NPO", "NPO+RT") if m in samples.get("forget", {})]
    if not methods:
        return {}
    lines = ["| set | question | truth | " + " | ".join(methods) + " |", "|---|---|---|" + "---|" * len(methods)]
    for part in ("forget", "retain"):
        for i, q in enumerate(samples[part]["question"]):
            cells = [part, str(q), str(samples[part]["truth"][i])]
            cells += [str(samples[part][m][i]) or "(nothing)" for m in methods]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    split = config["guidance"]["split"]
    intro = (f"Greedy answers at the end of the recipe ({split}% split, seed 0): forget questions (the model should "
             "no longer know these) and retain questions (it should).")
    return {"Answers after unlearning": intro + "\n\n" + "\n".join(lines)}


def tofu_collapse_claims(config: dict, arrays: dict) -> list[Claim]:
    """The claims of the paper's section 5 on TOFU in miniature, and the divergence laws."""
    main = MAIN_SPLIT if MAIN_SPLIT in splits_of(arrays) else splits_of(arrays)[0]
    claims = [_collapse(arrays, main), _stable(arrays, main), _peaks(arrays, main), _best(arrays, main),
              _answers(arrays, main), _retain_weight(arrays)]
    lg = config["long"]
    claims.append(divergence_laws_claim(
        arrays["long"], lg["steps"] / lg["fit_decades_from"], "tofu_mini.ga_linear_npo_log",
        f"the full model, the {lg['split']}% forget split", "One run per method (deterministic; no seed interval)."))
    return claims
