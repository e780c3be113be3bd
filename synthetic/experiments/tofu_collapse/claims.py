"""The claims of the ``tofu_mini`` experiment (section 5 of the paper, on TOFU in miniature).

Each claim is decided on the arrays of :func:`~.run.run_tofu_collapse` with a 95% percentile
bootstrap interval over the seeds (paired: the methods of one seed share its minibatch order),
against thresholds fixed before the full run (round numbers, named below). Forget quality is
compared in log10 (it spans twenty orders of magnitude), floored at :data:`FQ_FLOOR`.
"""

from __future__ import annotations

import numpy as np

from synthetic.analysis import diverged_text, divergence_laws_claim, seed_interval, seed_mean
from synthetic.experiments.tofu_mini.config import FQ_THRESHOLD, GUESS_MAX, MAIN_SPLIT
from theory.claims import Check, Claim

__all__ = ["tofu_collapse_claims", "answers_table", "peak_index", "splits_of", "FQ_FLOOR", "COLLAPSE_FACTOR", "STABLE_SHARE",
           "DEGENERATE_MIN", "FALL_FACTOR", "VALID_AFTER_MIN", "NPO_METHODS"]

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


def splits_of(arrays) -> list[int]:
    """The forget splits (%) the arrays hold (those with an ``s<p>_methods`` key), ascending."""
    return sorted(int(k[1:-len("_methods")]) for k in arrays if k.startswith("s") and k.endswith("_methods")
                  and k[1:-len("_methods")].isdigit())


def _run(arrays, split: int, method: str, name: str):
    """``(S, E)`` records of ``method`` at ``split`` (None if it did not run there)."""
    names = [str(m) for m in arrays[f"s{split}_methods"]]
    return np.asarray(arrays[f"s{split}_{name}"])[:, names.index(method)] if method in names else None


def _present(arrays, split: int, methods) -> list[str]:
    """Those of ``methods`` that ran at ``split``."""
    names = {str(m) for m in arrays[f"s{split}_methods"]}
    return [m for m in methods if m in names]


def _div(arrays, split, methods):
    """``"; GA: 1 of 3 runs diverged (step 12)"`` for each of ``methods`` with a diverged run."""
    names = [str(m) for m in arrays[f"s{split}_methods"]]
    steps = np.asarray(arrays[f"s{split}_diverged_step"])
    texts = [diverged_text(steps[:, names.index(m)], m) for m in methods if m in names]
    return "".join(f"; {t}" for t in texts if t)


def _collapse(arrays, main: int) -> Claim:
    full_u = float(arrays[f"s{main}_full_model_utility"])
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
    full_u = float(arrays[f"s{main}_full_model_utility"])
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
    steps = np.asarray(arrays[f"s{main}_steps"])
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
        names = [str(m) for m in arrays[f"s{p}_methods"]]
        fq = np.asarray(arrays[f"s{p}_forget_quality"])  # (S, C, E)
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
    w = [float(x) for x in arrays["weights"]]
    fq = _log_fq(np.asarray(arrays["weights_forget_quality"])[:, :, -1])  # (S, W) final
    u = np.asarray(arrays["weights_model_utility"])[:, :, -1]
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
    methods = [m for m in ("GA", "NPO", "NPO+RT") if f"samples_forget_{m}" in arrays]
    if not methods:
        return {}
    lines = ["| set | question | truth | " + " | ".join(methods) + " |", "|---|---|---|" + "---|" * len(methods)]
    for part in ("forget", "retain"):
        for i, q in enumerate(arrays[f"samples_{part}_question"]):
            cells = [part, str(q), str(arrays[f"samples_{part}_truth"][i])]
            cells += [str(arrays[f"samples_{part}_{m}"][i]) or "(nothing)" for m in methods]
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
        arrays, "tofu_mini.ga_linear_npo_log", f"the full model, the {lg['split']}% forget split",
        "One run per method (deterministic; no seed interval)."))
    return claims
