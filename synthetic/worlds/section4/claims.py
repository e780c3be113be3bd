"""The claims of the paper's section 4.2 and appendix B.1, decided on recorded arrays.

Each function takes the arrays of :func:`~.run.run_grid_experiment` (or of ``run_fig4``) and
returns :class:`~theory.claims.Claim` records whose ``statement`` says exactly how the claim
is decided and where each threshold comes from (the thresholds are defined here, each with its basis).

Every decision is taken on seed-mean curves (as the paper plots them) and carries a 95%
percentile-bootstrap interval over seeds (:func:`~synthetic.analysis.seed_interval`; seeds are
resampled together, so comparisons between methods are paired): a check passes when its whole
interval clears the threshold, fails when the whole interval misses it, and is inconclusive
otherwise. A seed-mean curve is undefined from the first step any seed diverged; every claim
says how many runs diverged.
"""

from __future__ import annotations

import numpy as np

from synthetic.analysis import (
    diverged_text,
    frontier_area,
    frontier_gap_batched,
    seed_interval,
    seed_mean,
)
from theory.claims import Check, Claim
from theory.methods import get_method

__all__ = [
    "fig4_claims",
    "fig9_claims",
    "fig3_claims",
    "gridsearch_claims",
    "best_settings",
    "setting_scores",
]

FORGET_THRESHOLD = 0.005
"""Claim (a) of section 4.2: the forget distance goes below this (the paper's number) ..."""

FORGET_WITHIN = 1200
"""... within this many steps (the paper's number; also claim (e)'s "GA after ~1200 steps")."""


def growth_threshold(t_half: float, t_end: float) -> float:
    """Claim (b): the factor by which a retain distance must grow from step ``t_half`` to
    ``t_end`` to "keep growing" (and stay under to "level off").

    Fixed a priori from the two laws the claim contrasts: a distance linear in t grows by
    ``t_end / t_half`` (2 over the second half of a run), one linear in ln t by
    ``ln t_end / ln t_half`` (1.10 for steps 1000 -> 2000). The threshold is their geometric
    midpoint (1.48 there), equally far from both in log scale.
    """
    if not 1 < t_half < t_end:
        raise ValueError(f"need 1 < t_half < t_end, got t_half={t_half}, t_end={t_end}")
    return float(np.sqrt((t_end / t_half) * (np.log(t_end) / np.log(t_half))))


SAME_LAW_MARGIN = 0.10
"""Claim (d), first half (a consistency check): at alpha = 0 the forget and retain distances
are one expectation over the same input law, estimated on two independent evaluation sets, so
their mean relative difference must lie within +-10%. A round equivalence margin chosen by the
project (the paper gives none); the measured difference is typically 1-2%."""

KL_MARGIN = 2.0
"""Claim (e): "moderate" forget KL means at least a factor 2 above IDK+RT's and at least a
factor 2 below GA's and GA+RT's after step 1200 (a round factor fixed by the project; the
paper states no number)."""

GRID_TARGET = 0.05
"""Grid search: a setting is feasible if its seed-mean forget distance gets below this. Ten
times claim (a)'s 0.005; the project chose it with the runs in view (the paper does not state
its selection rule), loose enough that every method but IDK+RT has feasible settings."""


_BOOTSTRAP = "95% percentile-bootstrap intervals over seeds"


def _runs(a: dict, metric: str) -> dict[str, np.ndarray]:
    """Per-seed curves ``(S, E)`` of ``metric`` per method name (one setting per method)."""
    return {str(m): np.asarray(a[metric][:, c], float) for c, m in enumerate(a["setting_method"])}


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _min(x):
    """The smallest finite entry along the last axis, NaN if none (a seed mean undefined
    everywhere): a float for a vector, an array for leading axes (bootstrap resamples)."""
    x = np.asarray(x, float)
    low = np.min(np.where(np.isfinite(x), x, np.inf), axis=-1)
    low = np.where(np.isinf(low), np.nan, low)
    return float(low) if low.ndim == 0 else low


def _diverged(a: dict, methods=None) -> tuple[str, dict]:
    """``("; GA: 1 of 5 runs diverged (step 130)", {"GA": 1, ...})`` over ``methods`` (default all)."""
    names = [str(m) for m in a["setting_method"]]
    counts, texts = {}, []
    for c, m in enumerate(names):
        if methods is not None and m not in methods:
            continue
        d = np.asarray(a["diverged_step"])[:, c] if "diverged_step" in a else np.full(a["forget_distance"].shape[0], -1)
        counts[m] = int(np.sum(d >= 0))
        if t := diverged_text(d, m):
            texts.append(t)
    return ("; " + "; ".join(texts) + " (seed means end at the first divergence)" if texts else ""), counts


def _texts(checks) -> str:
    return "; ".join(c.text() for c in checks)


def setting_scores(a: dict, target: float = GRID_TARGET) -> np.ndarray:
    """Grid-search score per setting (lower is better; ``inf`` if infeasible).

    A setting is feasible if its seed-mean forget distance goes below ``target``. Its score
    is then the area under its Pareto curve: the mean, over 200 log-spaced forget levels
    ``f`` from ``target`` to the starting forget distance (the reference model's, common to
    all settings), of ``R(f) = min{retain distance : forget distance <= f}`` along its
    seed-mean trajectory. Every level is reached by a feasible setting, so no penalty value
    is needed.
    """
    fd = seed_mean(a["forget_distance"])
    rd = seed_mean(a["retain_distance"])
    f_hi = float(np.nanmax(fd[:, 0]))
    scores = np.full(fd.shape[0], np.inf)
    for c in range(fd.shape[0]):
        if _min(fd[c]) < target < f_hi:
            scores[c] = frontier_area(fd[c], rd[c], f_lo=target, f_hi=f_hi, cap=np.nan)
    return scores


def best_settings(a: dict, target: float = GRID_TARGET) -> dict[str, int]:
    """For each method, the index of its best setting by :func:`setting_scores`.

    A method with no feasible setting gets the one with the smallest forget distance.
    """
    scores = setting_scores(a, target)
    min_fd = np.array([_min(row) for row in seed_mean(a["forget_distance"])])
    methods = np.array([str(m) for m in a["setting_method"]])
    best: dict[str, int] = {}
    for m in dict.fromkeys(methods):
        idx = np.flatnonzero(methods == m)
        key = scores[idx] if np.isfinite(scores[idx]).any() else np.where(np.isfinite(min_fd[idx]), min_fd[idx], np.inf)
        best[m] = int(idx[np.argmin(key)])
    return best


def _gap_check(label: str, fd_a, rd_a, fd_b, rd_b) -> Check:
    """Frontier gap of A over B (> 0: A better), bootstrapped over seeds."""
    return Check(label, seed_interval(frontier_gap_batched, fd_a, rd_a, fd_b, rd_b, batched=True), 0.0, "above")


_FRONTIER_RULE = (
    "Frontier A beats B when, averaged over 200 log-spaced forget levels in the range both reach, the "
    "smallest retain distance A attains at that forget level is lower than B's (gap = mean R_B - R_A > 0). "
    "The frontier is the lower envelope of the seed-mean trajectory, as the paper draws it: the best point "
    "one could stop at, so a method's collapse after that point does not count against it here (claim (b) "
    "tests the collapse). A gap whose interval contains 0 is a tie: inconclusive."
)


def gridsearch_claims(config: dict, arrays: dict) -> list[Claim]:
    """The grid search of section 4: the best setting per method, and NPO+RT's tuned frontier."""
    best = best_settings(arrays)
    fd, rd = arrays["forget_distance"], arrays["retain_distance"]
    lr, beta = arrays["setting_learning_rate"], arrays["setting_beta"]
    npo = best["NPO+RT"]
    checks = [
        _gap_check(f"gap NPO+RT vs {m}", fd[:, npo], rd[:, npo], fd[:, c], rd[:, c])
        for m, c in best.items() if m != "NPO+RT"
    ]
    table = "; ".join(
        f"{m}: lr {lr[c]:g}" + (f", beta {beta[c]:g}" if get_method(m).uses("beta") else "")
        for m, c in best.items()
    )
    sub = {"setting_method": np.array([m for m in best]), "forget_distance": fd[:, list(best.values())],
           **({"diverged_step": arrays["diverged_step"][:, list(best.values())]} if "diverged_step" in arrays else {})}
    div, counts = _diverged(sub)
    return [
        Claim.decided(
            id="gridsearch.npo_rt_best",
            kind="paper",
            paper_ref="section 4.1-4.2 (grid search, figure 4(c))",
            statement=f"alpha = {config['data']['alpha']:g}: with each method at its best grid setting (the "
            f"smallest area under its seed-mean Pareto curve over forget levels from {GRID_TARGET} to the start, "
            f"among settings whose seed-mean forget distance gets below {GRID_TARGET}), NPO+RT's Pareto frontier "
            f"beats every other method's: the gap's interval lies above 0 ({_BOOTSTRAP}; the best settings are "
            f"chosen once on all seeds and held fixed). {_FRONTIER_RULE} Threshold basis: {GRID_TARGET} is ten "
            "times claim (a)'s 0.005, chosen by the project with the runs in view (the paper does not state its "
            "selection rule).",
            measured=f"best settings: {table}. " + _texts(checks) + div,
            checks=checks,
            values={"best_setting": best, "diverged_runs": counts},
        )
    ]


def fig4_claims(config: dict, arrays: dict) -> list[Claim]:
    """Claims (a)-(d) of section 4.2 on the figure-4 runs (both alphas)."""
    a1, a0 = arrays["alpha1"], arrays["alpha0"]
    return [_claim_a(a1), *_claims_b(a1), _claim_c(a1), _claim_d_same_law(a0), _claim_d(a0)]


def _claim_a(a1: dict) -> Claim:
    """(a) forget distance below FORGET_THRESHOLD within FORGET_WITHIN steps, all but IDK+RT."""
    steps = a1["steps"]
    n_seeds = a1["forget_distance"].shape[0]
    div1, counts1 = _diverged(a1)
    fd = _runs(a1, "forget_distance")
    early = steps <= FORGET_WITHIN
    checks = [
        Check(f"{m} min forget distance", seed_interval(lambda f: _min(f[..., early]), fd[m], batched=True),
              FORGET_THRESHOLD, "below")
        for m in fd if m != "IDK+RT"
    ]
    per_seed = {m: np.array([_min(f[early]) for f in fd[m]]) for m in fd}
    seeds_below = {m: int(np.sum(v < FORGET_THRESHOLD)) for m, v in per_seed.items()}
    return Claim.decided(
        id="fig4.a_forget_below_0005",
        kind="paper",
        paper_ref="section 4.2 (a), figure 4(a)",
        statement=f"alpha = 1: every method but IDK+RT brings the seed-mean forget distance below "
        f"{FORGET_THRESHOLD} at some recorded step <= {FORGET_WITHIN} (both numbers the paper's; IDK+RT is "
        f"expected not to and is only reported). Decided on the smallest seed-mean forget distance over those "
        f"steps, with {_BOOTSTRAP}. Known: on the paper's official code the same rule also fails on the 5-seed "
        "mean (one seed's retrained model predicts P(y=1) = 0.117 on forget inputs and every method "
        "overshoots it; 3 of 5 seeds reach 0.005), so a failure here is the paper's setup, not the toolkit's.",
        measured=_texts(checks) + f"; IDK+RT min {_fmt(_min(seed_mean(fd['IDK+RT'])[early]))}; seeds of "
        f"{n_seeds} whose own curve gets below {FORGET_THRESHOLD}: "
        + ", ".join(f"{m} {k}" for m, k in seeds_below.items()) + div1,
        checks=checks,
        values={"seeds_below": seeds_below, "per_seed_min": per_seed, "diverged_runs": counts1},
    )


def _claims_b(a1: dict) -> list[Claim]:
    """(b) GA and GA+RT keep growing; NPO+RT and DPO+RT level off."""
    steps = a1["steps"]
    rd = _runs(a1, "retain_distance")
    half = int(np.searchsorted(steps, steps[-1] // 2))
    t_half, t_end = float(steps[half]), float(steps[-1])
    g = growth_threshold(t_half, t_end)
    basis = (f"The threshold {g:.3g} is fixed a priori from the two laws: the geometric midpoint between what "
             f"growth linear in t gives over steps {t_half:g} -> {t_end:g} (x{t_end / t_half:.3g}) and what growth "
             f"linear in ln t gives (x{np.log(t_end) / np.log(t_half):.3g}).")
    growth = {m: seed_interval(lambda r: r[:, -1] / r[:, half], rd[m], batched=True) for m in rd}
    ga, npo = ("GA", "GA+RT"), ("NPO+RT", "DPO+RT")
    ga_checks = [Check(f"{m} growth", growth[m], g, "above") for m in ga]
    npo_checks = [Check(f"{m} growth", growth[m], g, "below") for m in npo]
    return [
        Claim.decided(
            id="fig4.b_ga_collapse",
            kind="paper",
            paper_ref="section 4.2 (b), figure 4(b)",
            statement=f"alpha = 1: the retain distance of GA and GA+RT keeps growing: over the second half of the "
            f"run (step {int(t_half)} -> {int(t_end)}) the seed-mean retain distance grows by a factor above {g:.3g} "
            f"({_BOOTSTRAP}). {basis}",
            measured=_texts(ga_checks) + _diverged(a1, ga)[0],
            checks=ga_checks,
            values={"growth_second_half": {m: growth[m].estimate for m in ga}, "threshold": g},
        ),
        Claim.decided(
            id="fig4.b_npo_stable",
            kind="paper",
            paper_ref="section 4.2 (b), figure 4(b)",
            statement=f"alpha = 1: the retain distances of NPO+RT and DPO+RT level off: over the second half of the "
            f"run the seed-mean retain distance grows by a factor below {g:.3g} ({_BOOTSTRAP}). {basis}",
            measured=_texts(npo_checks) + _diverged(a1, npo)[0],
            checks=npo_checks,
            values={"growth_second_half": {m: growth[m].estimate for m in npo}, "threshold": g},
        ),
    ]


def _claim_c(a1: dict) -> Claim:
    """(c) Pareto frontier: NPO+RT best; NPO beats GA among forget-only methods."""
    div1, counts1 = _diverged(a1)
    fd, rd = _runs(a1, "forget_distance"), _runs(a1, "retain_distance")
    checks = [_gap_check(f"gap NPO+RT vs {m}", fd["NPO+RT"], rd["NPO+RT"], fd[m], rd[m]) for m in fd if m != "NPO+RT"]
    checks.append(_gap_check("gap NPO vs GA", fd["NPO"], rd["NPO"], fd["GA"], rd["GA"]))
    return Claim.decided(
        id="fig4.c_pareto",
        kind="paper",
        paper_ref="section 4.2 (c), figure 4(c)",
        statement="alpha = 1: NPO+RT has the best forget-retain Pareto frontier, and NPO's beats GA's: every "
        f"gap's interval lies above 0 ({_BOOTSTRAP}). " + _FRONTIER_RULE,
        measured=_texts(checks) + div1,
        checks=checks,
        values={"gap": {c.quantity: c.interval.estimate for c in checks}, "diverged_runs": counts1},
    )


def _claim_d_same_law(a0: dict) -> Claim:
    """(d), first half: at alpha = 0 both distances estimate one expectation (a consistency check)."""
    div0, counts0 = _diverged(a0)
    fd0, rd0 = _runs(a0, "forget_distance"), _runs(a0, "retain_distance")

    def rel_diff(f, r):  # batched: (resamples, steps)
        return np.nanmean((f - r) / ((f + r) / 2), axis=-1)

    checks = [
        Check(f"{m} relative difference", seed_interval(rel_diff, fd0[m], rd0[m], batched=True),
              (-SAME_LAW_MARGIN, SAME_LAW_MARGIN), "inside")
        for m in fd0
    ]
    return Claim.decided(
        id="fig4.d_alpha0_same_law",
        kind="consistency",
        paper_ref="section 4.2 (d), figure 4(d)",
        statement="alpha = 0: forget and retain inputs follow the same law N(0, I), so the forget and retain "
        "distances are one expectation measured on two independent 1000-sample evaluation sets; they must "
        "agree up to that sampling noise. Decided per method on the mean over recorded steps of the seed-mean "
        "relative difference (fd - rd) / ((fd + rd) / 2): its interval must lie inside "
        f"+-{SAME_LAW_MARGIN:.0%} ({_BOOTSTRAP}), a round equivalence margin chosen by the project (the paper "
        "gives none). This checks the data and the metrics, not a finding of the paper.",
        measured=_texts(checks) + div0,
        checks=checks,
        values={"relative_difference": {c.quantity: c.interval.estimate for c in checks}, "diverged_runs": counts0},
    )


def _claim_d(a0: dict) -> Claim:
    """(d), second half: NPO+RT reaches the smallest forget distance at alpha = 0."""
    div0, counts0 = _diverged(a0)
    fd0 = _runs(a0, "forget_distance")
    i_npo = [str(m) for m in a0["setting_method"]].index("NPO+RT")

    def margin(f):  # batched: (resamples, settings, steps)
        mins = _min(f)
        return np.min(np.delete(mins, i_npo, axis=-1), axis=-1) - mins[:, i_npo]

    check = Check("smallest other forget distance minus NPO+RT's",
                  seed_interval(margin, a0["forget_distance"], batched=True), 0.0, "above")
    mins0 = {m: _min(seed_mean(c)) for m, c in fd0.items()}
    return Claim.decided(
        id="fig4.d_alpha0",
        kind="paper",
        paper_ref="section 4.2 (d), figure 4(d)",
        statement="alpha = 0: NPO+RT reaches the smallest forget distance of all methods. Decided on the "
        "smallest seed-mean forget distance each method reaches: the margin of the next-best method over "
        f"NPO+RT must have its interval above 0 ({_BOOTSTRAP}).",
        measured=check.text() + "; min forget distance " + ", ".join(f"{m} {_fmt(v)}" for m, v in mins0.items())
        + div0,
        checks=[check],
        values={"min_forget_distance": mins0, "diverged_runs": counts0},
    )


def fig9_claims(config: dict, arrays: dict) -> list[Claim]:
    """Claim (e) of appendix B.1: Pareto-good models keep a moderate forget KL."""
    a1 = arrays["alpha1"]
    steps = a1["steps"]
    names = [str(m) for m in a1["setting_method"]]
    fd, rd, kl = (np.asarray(a1[k], float) for k in ("forget_distance", "retain_distance", "forget_kl"))
    # The Pareto-best point of a trajectory: the smallest forget + retain distance.
    mfd, mrd, mkl = seed_mean(fd), seed_mean(rd), seed_mean(kl)
    score = {m: _min(mfd[c] + mrd[c]) for c, m in enumerate(names)}
    kl_best = {m: float(mkl[c][np.nanargmin(mfd[c] + mrd[c])]) for c, m in enumerate(names)}
    top = min(score, key=score.get)
    t, idk = names.index(top), names.index("IDK+RT")
    late = steps >= min(FORGET_WITHIN, steps[-1])  # a shorter (test) run: its last step

    def kl_at_best(f, r, k, c):
        s = f[c] + r[c]
        return float(k[c][np.nanargmin(s)]) if np.isfinite(s).any() else np.nan

    checks = [Check(f"{top} / IDK+RT forget KL at best point",
                    seed_interval(lambda f, r, k: kl_at_best(f, r, k, t) / kl_at_best(f, r, k, idk), fd, rd, kl),
                    KL_MARGIN, "above")]
    for ga in ("GA", "GA+RT"):
        g = names.index(ga)
        checks.append(Check(f"{ga} late forget KL / {top}'s",
                            seed_interval(lambda f, r, k: _min(k[g][late]) / kl_at_best(f, r, k, t), fd, rd, kl),
                            KL_MARGIN, "above"))
    div, counts = _diverged(a1)
    return [
        Claim.decided(
            id="fig9.e_moderate_kl",
            kind="paper",
            paper_ref="appendix B.1 (e), figure 9",
            statement="alpha = 1: the Pareto-best model keeps a moderate forget KL E_FG[KL(pi_ref || pi_theta)], "
            "neither as small as IDK+RT's nor as large as the GA family's after step "
            f"{FORGET_WITHIN}. The best method is the one whose seed-mean trajectory reaches the smallest forget + "
            "retain distance (chosen on all seeds, then fixed); at that point its forget KL must be at least "
            f"x{KL_MARGIN:g} IDK+RT's at IDK+RT's best point and at most 1/{KL_MARGIN:g} of the smallest forget KL "
            f"that GA and GA+RT each have from step {FORGET_WITHIN} on ({_BOOTSTRAP} of the ratios; the factor "
            f"{KL_MARGIN:g} is a round margin chosen by the project, the paper states no number). The best method "
            "must not be IDK+RT.",
            measured=f"best method {top} (fd+rd {_fmt(score[top])}, forget KL {_fmt(kl_best[top])}); " + _texts(checks)
            + div,
            checks=checks,
            also=[top != "IDK+RT"],
            values={"best_method": top, "forget_kl_at_best": kl_best, "best_score": score, "diverged_runs": counts},
        )
    ]


def fig3_claims(config: dict, arrays: dict) -> list[Claim]:
    """Figure 3 / Proposition 1: NPO's curves approach GA's as beta -> 0."""
    methods = [str(m) for m in arrays["setting_method"]]
    betas = arrays["setting_beta"]
    ga = methods.index("GA")
    npo = sorted((c for c, m in enumerate(methods) if m == "NPO"), key=lambda c: betas[c])
    fd, rd = np.asarray(arrays["forget_distance"], float), np.asarray(arrays["retain_distance"], float)

    def gap(f, r, c):
        """The gap of setting ``c`` on seed means ``(..., C, E)`` (a leading resample axis allowed)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.nanmean(np.abs(np.log(f[..., c, :]) - np.log(f[..., ga, :]))
                              + np.abs(np.log(r[..., c, :]) - np.log(r[..., ga, :])), axis=-1)

    mf, mr = seed_mean(fd), seed_mean(rd)
    gaps = {float(betas[c]): float(gap(mf, mr, c)) for c in npo}
    checks = [
        Check(f"gap(beta {betas[hi]:g}) - gap(beta {betas[lo]:g})",
              seed_interval(lambda f, r, lo=lo, hi=hi: gap(f, r, hi) - gap(f, r, lo), fd, rd, batched=True),
              0.0, "above")
        for lo, hi in zip(npo, npo[1:])
    ]
    div, counts = _diverged(arrays)
    return [
        Claim.decided(
            id="fig3.beta_to_zero",
            kind="paper",
            paper_ref="Proposition 1, figure 3",
            statement="NPO's curves approach GA's as beta -> 0 (lr 5e-4, alpha = 1): the gap, the mean over recorded "
            "steps of |log fd_NPO - log fd_GA| + |log rd_NPO - log rd_GA| (seed means), shrinks strictly as beta "
            "decreases over {1, 0.5, 0.2, 0.1, 0.01}: each difference between neighbouring betas has its interval "
            f"above 0 ({_BOOTSTRAP}).",
            measured="gap by beta " + ", ".join(f"{b:g}: {_fmt(g)}" for b, g in sorted(gaps.items())) + "; "
            + _texts(checks) + div,
            checks=checks,
            values={"gap_by_beta": gaps, "diverged_runs": counts},
        )
    ]
