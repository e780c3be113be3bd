"""The claims of TOFU in miniature: the models' sanity (``tofu_mini_models``) and the paper's
section 5 on them (``tofu_mini``).

The models' claims check that the benchmark is built as TOFU is (the full model knows its facts
and keeps what pretraining taught it, forget quality reads knowledge, two retrained models are
a baseline, the retrained model guesses validly, NPO's brake is as strong as on TOFU). The
study's claims restate the paper's sentences on TOFU (section 5, figures 5 to 8); each is decided
on the results of :func:`.study.run_study` with a 95% percentile bootstrap interval over the
seeds (paired: the methods of one seed share its batch order), against thresholds fixed before
the first full run of this construction (round numbers, named below with their basis). Forget
quality is compared in log10 (it spans twenty orders of magnitude), floored at
:data:`FQ_FLOOR`. SimNPO, later than the paper, has an ``extension`` claim only.

:func:`npo_stable_reading` and :func:`figure5_reading` read two claims off one split's results;
the ablation (:mod:`.ablation`) reads them off every variant it runs.
"""

from __future__ import annotations

import numpy as np

from synthetic.analysis import diverged_text, divergence_laws_claim, seed_interval, seed_mean
from synthetic.worlds.tofu_mini import measures
from synthetic.worlds.tofu_mini.config import ABLATION_METHODS, FACTORS, MAIN_SPLIT
from theory.claims import Check, Claim

__all__ = ["tofu_mini_claims", "tofu_collapse_claims", "answers_table", "peak_index", "splits_of", "FQ_THRESHOLD",
           "VALID_MIN", "GUESS_MAX", "KNOWN_MIN", "KEPT_SHARE", "BRAKE_BAND", "FQ_FLOOR", "COLLAPSE_FACTOR",
           "STABLE_SHARE", "DEGENERATE_MIN", "FALL_FACTOR", "VALID_AFTER_MIN", "UTILITY_SHARE", "COLLAPSED_SHARE",
           "NPO_METHODS", "npo_stable_reading", "figure5_reading", "best_fq_with_utility", "ablation_readings",
           "ablation_verdicts", "ablation_claims", "ablation_table"]

FQ_THRESHOLD = 0.05
"""Forget quality above this reads as "indistinguishable from the retrained model" (TOFU's reading)."""

VALID_MIN = 0.9
"""``tofu_mini.retrain_guesses_validly``: at least 90% of the retrained model's greedy forget answers
are valid (:func:`.measures.is_valid_answer`; a round number fixed by the project) ..."""

GUESS_MAX = 0.3
"""... and at most 30% name the right value (chance is 1 / the relation's values; a round bound
fixed by the project)."""

KNOWN_MIN = 0.9
"""The full model's greedy answers must name the right value of at least this share of its
training questions (TOFU's finetuned models answer nearly all; a round number)."""

KEPT_SHARE = 0.9
"""``tofu_mini.pretraining_kept``: finetuning keeps at least 90% of the pretrained model's
right answers on the real-authors and world-facts sets (a round number)."""

BRAKE_BAND = (4.8, 19.2)
"""``tofu_mini.brake_like_tofu``: the median ``beta x gap`` of the 10% forget answers within a
factor 2 of TOFU's (beta 0.1 x about 96 nats, section 6 of the paper's related facts)."""


def _knows(numbers) -> float:
    return float(np.mean(numbers["knows"]))


# --------------------------------------------------------------------------- the models


def tofu_mini_claims(config: dict, results: dict) -> list[Claim]:
    """``tofu_mini.full_learns_the_facts``, ``pretraining_kept`` (with a pretrained model),
    ``full_knows_forget``, ``retrain_is_baseline``, ``retrain_guesses_validly``, ``brake_like_tofu``."""
    main = str(MAIN_SPLIT)
    full, retr = results["full"], results["retrained"]
    fq_full = {int(p): float(measures.forget_quality(full["forget"][p]["truth_ratio"],
                                                     retr[p]["forget"][p]["truth_ratio"])) for p in sorted(retr, key=int)}
    claims = [_full_learns(results)]
    if "pretrained" in results:
        claims.append(_pretraining_kept(results))
    claims.append(_full_knows_forget(fq_full))
    others = results.get("other_seeds", {})
    if others:
        seed = sorted(others, key=int)[0]
        claims.append(_retrain_is_baseline(others[seed], retr[main], seed))
    claims.append(_retrain_guesses_validly(retr[main]["forget"][main], full["forget"][main]))
    claims.append(_brake(results))
    return claims


def _full_learns(results) -> Claim:
    knows = float(results["full_train_knows"])
    return Claim(
        id="tofu_mini.full_learns_the_facts", kind="consistency", paper_ref="section 5 (TOFU's finetuned models)",
        statement=f"The full model learned its facts: its greedy answers name the right value of at least "
        f"{KNOWN_MIN:.0%} of its training questions (a benchmark of forgetting needs facts learned; a round number).",
        measured=f"right value named in {knows:.3f} of {int(results['full_train_questions'])} training questions; "
        f"model utility {measures.utility(results['full']):.3g}; training {float(results['tokens_per_second']):.0f} "
        "tokens/s",
        verdict=knows >= KNOWN_MIN, values={"knows": knows},
    )  # fmt: skip


def _pretraining_kept(results) -> Claim:
    pre, full = results["pretrained"], results["full"]
    shares = {s: (_knows(pre[s]), _knows(full[s])) for s in ("real_authors", "world_facts")}
    ok = all(f >= KEPT_SHARE * p for p, f in shares.values())
    return Claim(
        id="tofu_mini.pretraining_kept", kind="consistency", paper_ref="section 5 (TOFU: a pretrained model)",
        statement="The full model keeps what pretraining taught it, as TOFU's finetuned models do: on the real-authors "
        f"and world-facts sets its greedy answers name the right value at least {KEPT_SHARE:g} x as often as the "
        "pretrained model's (the sets model utility reads beside the retain set).",
        measured="right values, pretrained -> full: " + ", ".join(f"{s} {p:.3f} -> {f:.3f}" for s, (p, f) in shares.items())
        + f"; utility of the pretrained model {measures.utility(pre):.3g}",
        verdict=ok, values={s: {"pretrained": p, "full": f} for s, (p, f) in shares.items()},
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
    valid, knows = float(np.mean(retr_forget["valid"])), _knows(retr_forget)
    return Claim(
        id="tofu_mini.retrain_guesses_validly", kind="consistency", paper_ref="section 5 (NPO's fluent, wrong answers)",
        statement=f"The retrained model ({MAIN_SPLIT}% split) answers questions about authors it never saw with "
        f"valid values of the asked relation, usually wrong: at least {VALID_MIN:.0%} of its greedy forget answers "
        f"are valid and at most {GUESS_MAX:.0%} name the right value (round numbers fixed by the project).",
        measured=f"valid {valid:.3f}, right value {knows:.3f} (the full model: {_knows(full_forget):.3f}); "
        f"degenerate {float(np.mean(retr_forget['degenerate'])):.3f}",
        verdict=valid >= VALID_MIN and knows <= GUESS_MAX, values={"valid": valid, "knows": knows},
    )  # fmt: skip


def _brake(results) -> Claim:
    brake = results["brake"]
    med = {int(p): (float(np.median(0.1 * brake[p]["gap"])), float(np.median(brake[p]["weight"])))
           for p in sorted(brake, key=int)}
    main = med[MAIN_SPLIT][0]
    return Claim(
        id="tofu_mini.brake_like_tofu", kind="consistency", paper_ref="section 5 (NPO on TOFU), eq. 3",
        statement="NPO's brake is as strong as on TOFU: NPO's weight falls as beta x (the log-likelihood the forget "
        "answers lose); at the retrained model's level the median beta x gap (beta 0.1; gap: the full model's summed "
        f"log-likelihood of a forget answer above the retrained model's) at the {MAIN_SPLIT}% split lies in "
        f"[{BRAKE_BAND[0]:g}, {BRAKE_BAND[1]:g}] (TOFU's ~43-token answers give about 9.6; a factor 2 either way).",
        measured="median beta x gap (NPO's weight there): " + ", ".join(f"{p}%: {g:.2f} ({w:.2g})" for p, (g, w) in med.items()),
        verdict=BRAKE_BAND[0] <= main <= BRAKE_BAND[1], values={"beta_gap": {p: g for p, (g, _) in med.items()}},
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

COLLAPSED_SHARE = 0.5
"""``tofu_mini.npo_collapses_later``: a run has collapsed at its first evaluation with utility
below half the full model's (the same line as :data:`STABLE_SHARE`)."""

UTILITY_SHARE = 0.8
"""``tofu_mini.npo_rt_forgets_with_utility`` (figure 5): forget quality is read at evaluations
whose utility is at least 80% of the full model's (figure 5 plots NPO+RT's points near the full
model's utility; a round number fixed before the run)."""

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


def _first_collapse(u_SxE, full_u: float, steps) -> np.ndarray:
    """Per seed, the step of the first evaluation with utility below :data:`COLLAPSED_SHARE` x the
    full model's (a diverged run's NaN counts as collapsed); one evaluation interval past the end
    if it never collapses."""
    low = ~(np.nan_to_num(np.asarray(u_SxE, float), nan=-1.0) >= COLLAPSED_SHARE * full_u)
    steps = np.asarray(steps, float)
    past = steps[-1] + (steps[-1] - steps[-2] if len(steps) > 1 else 1.0)
    return np.where(low.any(axis=-1), steps[np.argmax(low, axis=-1)], past)


def npo_stable_reading(split: dict, methods=NPO_METHODS) -> dict[str, np.ndarray]:
    """Per NPO-based method that ran, each seed's lowest utility over the run / the full model's
    (``tofu_mini.npo_stable`` passes when every interval lies above :data:`STABLE_SHARE`)."""
    full_u = float(split["full"]["model_utility"])
    names = [str(m) for m in split["methods"]]
    return {m: np.min(np.asarray(split["model_utility"])[:, names.index(m)], axis=-1) / full_u
            for m in methods if m in names}


def best_fq_with_utility(split: dict, method: str) -> np.ndarray:
    """Per seed, the highest forget quality of ``method`` at an evaluation whose utility is at
    least :data:`UTILITY_SHARE` x the full model's (:data:`FQ_FLOOR` if there is none)."""
    names = [str(m) for m in split["methods"]]
    c = names.index(method)
    fq, u = np.asarray(split["forget_quality"], float)[:, c], np.asarray(split["model_utility"], float)[:, c]
    ok = np.nan_to_num(u, nan=-1.0) >= UTILITY_SHARE * float(split["full"]["model_utility"])
    return np.max(np.where(ok, np.nan_to_num(fq, nan=FQ_FLOOR), FQ_FLOOR), axis=-1)


def figure5_reading(split: dict, method: str = "NPO+RT") -> np.ndarray:
    """Figure 5's reading of ``method``: per seed, log10 of :func:`best_fq_with_utility`
    (``tofu_mini.npo_rt_forgets_with_utility`` passes when its interval lies above log10 0.05)."""
    return _log_fq(best_fq_with_utility(split, method))


def _stable(arrays, main: int) -> Claim:
    split = _split(arrays, main)
    full_u = float(split["full"]["model_utility"])
    lows = npo_stable_reading(split)
    checks = [Check(f"{m} lowest utility / full model's", seed_interval(lambda x: x, low), STABLE_SHARE, "above")
              for m, low in lows.items()]
    parts = [f"{m}: lowest {seed_mean(low) * full_u:.3g}, final {seed_mean(_run(arrays, main, m, 'model_utility')[:, -1]):.3g}"
             for m, low in lows.items()]
    ga = _run(arrays, main, "GA", "model_utility")
    return Claim.decided(
        id="tofu_mini.npo_stable", kind="paper", paper_ref="section 5, figures 5 and 6",
        statement=f"NPO-based methods ({', '.join(NPO_METHODS)}) do not collapse: at the {main}% split each one's model "
        f"utility stays at least {STABLE_SHARE:g} x the full model's at every evaluation of the recipe. {_BOOT}.",
        measured=f"full model {full_u:.3g}; " + "; ".join(parts) + f" (GA final {seed_mean(ga[:, -1]):.3g}); "
        + "; ".join(c.text() for c in checks) + _div(arrays, main, NPO_METHODS),
        checks=checks, values={"full_utility": full_u, "lowest_share": {m: seed_mean(v) for m, v in lows.items()}},
        note="Which property of the setting decides this verdict: the ablation (experiment tofu_mini_ablation).",
    )  # fmt: skip


def _later(arrays, main: int) -> Claim:
    split = _split(arrays, main)
    full_u, steps = float(split["full"]["model_utility"]), np.asarray(split["steps"])
    ga = _first_collapse(_run(arrays, main, "GA", "model_utility"), full_u, steps)
    checks, parts = [], [f"GA: step {np.median(ga):.0f}"]
    for m in _present(arrays, main, NPO_METHODS):
        at = _first_collapse(_run(arrays, main, m, "model_utility"), full_u, steps)
        checks.append(Check(f"{m} - GA collapse step", seed_interval(lambda a, b: a - b, at, ga), 0.0, "above"))
        parts.append(f"{m}: step {np.median(at):.0f}")
    return Claim.decided(
        id="tofu_mini.npo_collapses_later", kind="paper", paper_ref="section 5, figure 6 (and Theorem 2)",
        statement=f"NPO-based methods collapse later than GA, if at all: at the {main}% split the first evaluation "
        f"with utility below {COLLAPSED_SHARE:g} x the full model's comes later for each of {', '.join(NPO_METHODS)} "
        f"than for GA on the same seed (paired; a run that never falls counts as one evaluation past the end, step "
        f"{float(_first_collapse(np.ones((1, len(steps))) * full_u, full_u, steps)[0]):.0f}). {_BOOT}.",
        measured="median first step below the line: " + ", ".join(parts) + "; " + "; ".join(c.text() for c in checks),
        checks=checks,
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


def _plateau(arrays, main: int) -> Claim:
    checks, parts = [], []
    for m in _present(arrays, main, NPO_METHODS):
        fq = _run(arrays, main, m, "forget_quality")
        fall = _log_fq(_at(fq, peak_index(fq))) - _log_fq(fq[:, -1])
        checks.append(Check(f"{m} log10(peak FQ / final FQ)", seed_interval(lambda x: x, fall), np.log10(FALL_FACTOR),
                            "below"))
        parts.append(f"{m}: peak {seed_mean(_at(fq, peak_index(fq))):.2g}, final {seed_mean(fq[:, -1]):.2g}")
    return Claim.decided(
        id="tofu_mini.npo_fq_plateau", kind="paper", paper_ref="section 5, figure 6",
        statement=f"NPO-based methods reach and hold their forget quality, unlike GA: at the {main}% split each of "
        f"{', '.join(NPO_METHODS)} ends within {FALL_FACTOR:g}x of its peak forget quality (GA falls by more). "
        f"{_BOOT} (on log10).",
        measured="; ".join(parts) + "; " + "; ".join(c.text() for c in checks) + _div(arrays, main, NPO_METHODS),
        checks=checks,
    )  # fmt: skip


def _figure5(arrays, main: int) -> Claim:
    split = _split(arrays, main)
    full_u = float(split["full"]["model_utility"])
    names = [str(m) for m in split["methods"]]
    best = {m: figure5_reading(split, m) for m in names}
    check = Check("NPO+RT log10 best FQ at utility >= the line", seed_interval(lambda x: x, best["NPO+RT"]),
                  np.log10(FQ_THRESHOLD), "above")
    above = [m for m in names if seed_mean(best[m]) > np.log10(FQ_THRESHOLD)]
    return Claim.decided(
        id="tofu_mini.npo_rt_forgets_with_utility", kind="paper", paper_ref="section 5, figure 5",
        statement=f"NPO+RT forgets while keeping utility (figure 5): at the {main}% split it reaches forget quality "
        f"above {FQ_THRESHOLD} at an evaluation where its model utility is at least {UTILITY_SHARE:g} x the full "
        f"model's. {_BOOT} (on log10 of each seed's best such forget quality).",
        measured=f"full model utility {full_u:.3g}; best FQ at utility >= {UTILITY_SHARE * full_u:.3g} (geometric seed "
        "mean): " + ", ".join(f"{m} {10 ** seed_mean(best[m]):.2g}" for m in names)
        + f"; above {FQ_THRESHOLD}: {above or 'none'}; " + check.text(),
        checks=[check], values={m: float(10 ** seed_mean(v)) for m, v in best.items()},
        note="Which property of the setting decides this verdict: the ablation (experiment tofu_mini_ablation).",
    )  # fmt: skip


def _large(arrays, main: int) -> Claim:
    checks, parts, values = [], [], {}
    large = [p for p in splits_of(arrays) if p > main]
    if not large:
        return Claim(id="tofu_mini.npo_rt_large_splits", kind="paper", paper_ref="section 5, figure 8", statement="-",
                     measured="no split above the main one ran", verdict="inconclusive")
    for p in large:
        split = _split(arrays, p)
        names = [str(m) for m in split["methods"]]
        fq = np.asarray(split["forget_quality"], float)
        peak = {m: _log_fq(_at(fq[:, c], peak_index(fq[:, c]))) for c, m in enumerate(names)}
        npo = [m for m in names if m.startswith("NPO+RT")]
        tuned = max(npo, key=lambda m: seed_mean(peak[m]))  # the paper tunes the retain weight here
        checks.append(Check(f"{p}%: {tuned} log10 peak FQ", seed_interval(lambda x: x, peak[tuned]),
                            np.log10(FQ_THRESHOLD), "above"))
        if "GA+RT" in names:
            checks.append(Check(f"{p}%: GA+RT log10 peak FQ", seed_interval(lambda x: x, peak["GA+RT"]),
                                np.log10(FQ_THRESHOLD), "below"))
        parts.append(f"{p}%: " + ", ".join(f"{m} {10 ** seed_mean(peak[m]):.2g}" for m in names) + f" (tuned: {tuned})")
        values[str(p)] = {m: float(10 ** seed_mean(peak[m])) for m in names}
    return Claim.decided(
        id="tofu_mini.npo_rt_large_splits", kind="paper", paper_ref="section 5, figure 8",
        statement=f"When forgetting {', '.join(f'{p}%' for p in large)}, NPO+RT with its retain weight tuned (the best "
        f"of the weights run, by peak forget quality, as the paper tunes it there) reaches forget quality above "
        f"{FQ_THRESHOLD} and GA+RT does not; both scored on the {main}% questions as the paper scores them. {_BOOT} "
        "(on log10 of each run's peak).",
        measured="peak FQ (geometric seed mean): " + "; ".join(parts) + "; " + "; ".join(c.text() for c in checks),
        checks=checks, values=values,
        note="The tuned weight is chosen by looking at the outcome, as the paper does; the others are reported beside it.",
    )  # fmt: skip


def _answers(arrays, main: int) -> Claim:
    valid, knows = (_run(arrays, main, "NPO+RT", f"forget_{k}")[:, -1] for k in ("valid", "knows"))
    checks = [Check("NPO+RT valid forget answers", seed_interval(lambda x: x, valid), VALID_AFTER_MIN, "above"),
              Check("NPO+RT right values in forget answers", seed_interval(lambda x: x, knows), GUESS_MAX, "below")]
    others = []
    for m in ("GA", "NPO", "NPO+KL"):
        if _run(arrays, main, m, "forget_valid") is not None:
            v, d = (seed_mean(_run(arrays, main, m, f"forget_{k}")[:, -1]) for k in ("valid", "degenerate"))
            others.append(f"{m}: valid {v:.2f}, degenerate {d:.2f}")
    return Claim.decided(
        id="tofu_mini.npo_answers_valid_but_wrong", kind="paper", paper_ref="section 5, figure 7 (NPO+RT's outputs)",
        statement=f"After NPO+RT ({main}% split, end of the recipe) the model answers forget questions fluently but "
        f"wrongly (figure 7): at least {VALID_AFTER_MIN:.0%} of its greedy answers are valid (a value of the asked "
        f"relation, not degenerate) and at most {GUESS_MAX:.0%} name the right value (the bound the retrained model "
        f"meets). {_BOOT}.",
        measured=f"NPO+RT: valid {seed_mean(valid):.2f}, right value {seed_mean(knows):.2f}; " + "; ".join(others)
        + "; " + "; ".join(c.text() for c in checks),
        checks=checks, note="Sample answers are in the report's table 'Answers after unlearning'.",
    )  # fmt: skip


def _simnpo(arrays, main: int) -> Claim:
    split = _split(arrays, main)
    if "SimNPO+RT" not in [str(m) for m in split["methods"]]:
        return Claim(id="tofu_mini.simnpo_rt_forgets_with_utility", kind="extension", paper_ref="section 6 (SimNPO)",
                     statement="-", measured="SimNPO+RT did not run", verdict="inconclusive")
    best = figure5_reading(split, "SimNPO+RT")
    check = Check("SimNPO+RT log10 best FQ at utility >= the line", seed_interval(lambda x: x, best),
                  np.log10(FQ_THRESHOLD), "above")
    return Claim.decided(
        id="tofu_mini.simnpo_rt_forgets_with_utility", kind="extension", paper_ref="section 6 (SimNPO, later work)",
        statement=f"SimNPO+RT, read as figure 5 reads NPO+RT: at the {main}% split it reaches forget quality above "
        f"{FQ_THRESHOLD} at an evaluation with utility at least {UTILITY_SHARE:g} x the full model's. {_BOOT}.",
        measured=f"SimNPO+RT best FQ {10 ** seed_mean(best):.2g} (NPO+RT {10 ** seed_mean(figure5_reading(split)):.2g}); "
        + check.text(),
        checks=[check],
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
    """The claims of the paper's section 5 on TOFU in miniature, SimNPO's extension, and the divergence laws."""
    main = MAIN_SPLIT if MAIN_SPLIT in splits_of(arrays) else splits_of(arrays)[0]
    claims = [_collapse(arrays, main), _stable(arrays, main), _later(arrays, main), _peaks(arrays, main),
              _plateau(arrays, main), _figure5(arrays, main), _answers(arrays, main), _large(arrays, main),
              _retain_weight(arrays), _simnpo(arrays, main)]
    lg = config["long"]
    claims.append(divergence_laws_claim(
        arrays["long"], lg["steps"] / lg["fit_decades_from"], "tofu_mini.ga_linear_npo_log",
        f"the full model, the {lg['split']}% forget split", "One run per method (deterministic; no seed interval)."))
    return claims


# --------------------------------------------------------------------------- the ablation


def ablation_readings(split: dict) -> dict[str, np.ndarray]:
    """The two verdicts' numbers of one variant, per seed: ``<method> lowest share`` (lowest
    utility / the full model's) for NPO and NPO+RT, ``NPO+RT best FQ`` (:func:`.claims.best_fq_with_utility`)."""
    out = {f"{m} lowest share": v for m, v in npo_stable_reading(split, ABLATION_METHODS).items()}
    out["NPO+RT best FQ"] = best_fq_with_utility(split, "NPO+RT")
    return out


def ablation_verdicts(r: dict) -> tuple[bool, bool]:
    """``(npo_stable holds, figure 5 holds)`` on seed means (the ablation's two seeds are too few
    for the claims' intervals; it reads directions)."""
    stable = all(float(np.mean(r[f"{m} lowest share"])) >= STABLE_SHARE for m in ABLATION_METHODS)
    fig5 = _geo(r["NPO+RT best FQ"]) > FQ_THRESHOLD
    return stable, fig5


def ablation_claims(config: dict, results: dict) -> list:
    """Two checks of the ablation, their rules fixed before its first run:

    * ``tofu_mini.ablation_attributes`` (extension): for each of the two verdicts on which the
      faithful setting and the earlier miniature disagree, at least one single switched property
      flips it as the earlier miniature does (pass: every difference is attributed; fail: a
      difference only the properties together make; inconclusive: the two ends agree);
    * ``tofu_mini.ablation_small_eval_laxer`` (consistency): on the same runs, NPO+RT's best
      forget quality scored on :data:`EVAL_SMALL` questions is above its score on every forget
      question (seed mean of the log10 difference > 0): the KS test is laxer at a smaller size.
    """
    v = results["variants"]
    verdicts = {name: ablation_verdicts(ablation_readings(v[name])) for name in config["factors"]}
    out = []
    if "tofu" in verdicts and "today" in verdicts:
        single = [n for n in config["factors"] if n not in ("tofu", "today")]
        parts, decided = [], []
        for k, what in enumerate(("npo_stable", "figure 5")):
            a, b = verdicts["tofu"][k], verdicts["today"][k]
            if a == b:
                parts.append(f"{what}: {'holds' if a else 'fails'} at both ends")
                continue
            flips = [n for n in single if verdicts[n][k] == b]
            parts.append(f"{what}: {'holds' if a else 'fails'} (faithful) vs {'holds' if b else 'fails'} (earlier); "
                         f"flipped alone by: {', '.join(flips) or 'none'}")
            decided.append(bool(flips))
        out.append(Claim(
            id="tofu_mini.ablation_attributes", kind="extension", paper_ref="section 5 (the TOFU study)",
            statement="Where the faithful miniature and the earlier one disagree on npo_stable or figure 5's reading "
            f"({MAIN_SPLIT}% split, seed means), a single property of the setting, switched alone, flips the verdict "
            "the same way (inconclusive when the two ends agree).",
            measured="; ".join(parts), verdict=all(decided) if decided else "inconclusive",
            values={n: {"npo_stable": s, "figure5": f} for n, (s, f) in verdicts.items()},
        ))  # fmt: skip
    n_scored = int(v["tofu"].get("n_scored", 0)) if "tofu" in v else 0
    if "tofu" in v and f"forget_quality_{config['eval_small']}" in v["tofu"]:
        small = best_fq_with_utility({**v["tofu"], "forget_quality": v["tofu"][f"forget_quality_{config['eval_small']}"]},
                                     "NPO+RT")
        full = best_fq_with_utility(v["tofu"], "NPO+RT")
        diff = _log_fq(small) - _log_fq(full)
        out.append(Claim(
            id="tofu_mini.ablation_small_eval_laxer", kind="consistency", paper_ref="section 5 (forget quality)",
            statement=f"Forget quality's KS test is laxer on {config['eval_small']} forget questions than on all of "
            "them: on the same NPO+RT runs the best forget quality at the smaller size is higher (seed mean of the "
            "log10 difference > 0).",
            measured=f"best FQ on {config['eval_small']}: {_geo(small):.2g}, on all: {_geo(full):.2g} (geometric "
            f"means over {len(diff)} seeds); log10 difference {np.mean(diff):+.2f}; {n_scored} forget questions "
            "scored in all",
            verdict=bool(np.mean(diff) > 0) if n_scored > config["eval_small"] else "inconclusive",
            values={"log10_difference": float(np.mean(diff)), "n_scored": n_scored},
        ))  # fmt: skip
    return out


def _geo(x) -> float:
    """The geometric mean of forget qualities (floored as :func:`_log_fq` floors them)."""
    return float(10 ** np.mean(_log_fq(x)))


def ablation_table(config: dict, results: dict) -> dict[str, str]:
    """The report's table: per variant, NPO's brake, the two readings and their verdicts."""
    rows = ["| variant | beta x gap | NPO lowest utility share | NPO+RT lowest utility share | NPO+RT best FQ "
            f"(utility >= {UTILITY_SHARE:g} x full) | npo_stable | figure 5 |", "|---|---|---|---|---|---|---|"]
    labels = dict(FACTORS)
    for name in config["factors"]:
        v = results["variants"][name]
        r = ablation_readings(v)
        stable, fig5 = ablation_verdicts(r)
        geo = _geo(r["NPO+RT best FQ"])
        rows.append(f"| {labels[name]} | {float(v['beta_gap']):.1f} | {np.mean(r['NPO lowest share']):.2f} | "
                    f"{np.mean(r['NPO+RT lowest share']):.2f} | {geo:.2g} | {'holds' if stable else 'fails'} | "
                    f"{'holds' if fig5 else 'fails'} |")
    intro = (f"Each row switches one property of the faithful setting (first row) to the earlier miniature's choice "
             f"(last row: all at once); NPO and NPO+RT on the {MAIN_SPLIT}% split, {config['seeds']} seeds (seed "
             f"means; the forget quality a geometric mean). npo_stable needs both lowest shares >= {STABLE_SHARE:g}; "
             f"figure 5 needs NPO+RT's best forget quality above {FQ_THRESHOLD}.")
    return {"What decides the verdicts (ablation)": intro + "\n\n" + "\n".join(rows)}
