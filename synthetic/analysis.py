"""Numpy analysis of recorded trajectories: seed means, Pareto frontiers, growth laws.

No JAX and no training here, so that ``figures/`` and the claim checks can share it.
"""

from __future__ import annotations

import numpy as np

from theory.claims import Claim, Interval

__all__ = [
    "seed_mean",
    "divergence_laws_claim",
    "law_fits",
    "R2_MIN",
    "EXPONENT_MIN",
    "finite_seed_mean",
    "seed_interval",
    "BOOTSTRAP_RESAMPLES",
    "diverged_runs",
    "diverged_text",
    "pareto_frontier",
    "frontier_curve",
    "frontier_area",
    "frontier_gap",
    "frontier_gap_batched",
    "first_step_below",
    "log_slope",
    "decade_growth_ratio",
    "fit_laws",
]


def seed_mean(values: np.ndarray) -> np.ndarray:
    """Mean over the leading seed axis; NaN wherever any seed is not finite.

    A run that diverged (its records are NaN or inf from the divergence on) is never dropped
    from the mean: the mean is undefined from the first step any seed diverged, and the
    curve ends there. Count such runs with :func:`diverged_runs`.
    """
    values = np.asarray(values, float)
    with np.errstate(invalid="ignore", over="ignore"):
        mean = values.mean(axis=0)
    return np.where(np.isfinite(values).all(axis=0), mean, np.nan)


def finite_seed_mean(values: np.ndarray) -> np.ndarray:
    """Mean over the leading seed axis of the seeds still finite at each entry (NaN where none is).

    For drawing only: a figure can follow the surviving runs after one diverged (and says how
    many did). Claims decide on :func:`seed_mean`, which never drops a run.
    """
    values = np.asarray(values, float)
    finite = np.isfinite(values)
    counts = finite.sum(axis=0)
    total = np.where(finite, values, 0.0).sum(axis=0)
    return np.where(counts > 0, total / np.maximum(counts, 1), np.nan)


BOOTSTRAP_RESAMPLES = 2000
"""Resamples of :func:`seed_interval` (two resampling seeds move its ends by a few percent
of the interval's width at this count; see ``tests/test_analysis.py``)."""


def seed_interval(statistic, *runs, level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0,
                  batched: bool = False):
    """A percentile-bootstrap interval over seeds of ``statistic(*seed_means)``.

    Args:
      statistic: maps the seed-mean arrays of ``runs`` (one per run, in order) to a number,
        e.g. the gap between two methods' Pareto frontiers.
      *runs: arrays whose leading axis is the seed, all with the same number of seeds. The
        seeds are resampled *together* (one resample of seed indices for all runs), because
        runs of one seed share its data and models: comparisons are paired.
      level: the confidence level.
      resamples: bootstrap resamples; ``seed``: of the resampling (fixed, so a report is
        reproducible).
      batched: ``statistic`` takes seed means with a leading resample axis ``(B, ...)`` and
        returns ``(B,)`` values (one call for all resamples: much faster for a statistic
        written with numpy along the last axes, e.g. :func:`frontier_gap_batched`).

    Returns:
      A :class:`~theory.claims.Interval`: the estimate ``statistic`` on all seeds and the
      ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the resampled statistics. A
      resample whose statistic is NaN (e.g. every seed drawn had diverged) makes the interval's
      ends NaN, which no check passes or fails; +-inf (e.g. a target never reached) is an
      ordinary, extreme value.

    With few seeds the percentile bootstrap is narrow: for a plain mean of normal noise its
    coverage at a nominal 95% is about 83% with 5 seeds and 91% with 10 (simulated); more
    seeds (``paper_repro.py --seeds``) make verdicts firmer.
    """
    runs = [np.asarray(r, float) for r in runs]
    if not runs:
        raise ValueError("seed_interval needs at least one array of runs")
    n = runs[0].shape[0]
    if any(r.shape[0] != n for r in runs):
        raise ValueError(f"runs must share the number of seeds (leading axis), got {[r.shape[0] for r in runs]}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if batched:
        estimate = float(np.asarray(statistic(*(seed_mean(r)[None] for r in runs)))[0])
    else:
        estimate = float(statistic(*(seed_mean(r) for r in runs)))
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    stats_ = np.empty(resamples)
    chunk = max(1, int(2**25 // max(sum(r[0].size for r in runs), 1)))  # ~256 MB of float64 at most
    for lo in range(0, resamples, chunk):
        means = [_resampled_means(r, idx[lo:lo + chunk]) for r in runs]
        if batched:
            stats_[lo:lo + len(means[0])] = np.asarray(statistic(*means), float)
        else:
            for j in range(means[0].shape[0]):
                stats_[lo + j] = float(statistic(*(m[j] for m in means)))
    qs = [(1 - level) / 2, (1 + level) / 2]
    if np.isnan(stats_).any():
        low = high = np.nan
    elif np.isinf(stats_).any():  # e.g. "never reached": order statistics, no interpolation with inf
        low, high = np.quantile(stats_, qs, method="inverted_cdf")
    else:
        low, high = np.quantile(stats_, qs)
    return Interval(estimate, float(low), float(high), level=level, seeds=n, method="bootstrap")


def _resampled_means(runs: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """:func:`seed_mean` of ``runs[i]`` for each row ``i`` of ``idx`` at once, ``(B, ...)``: a
    matrix product of the resampling counts with the runs (no copy of the runs per resample)."""
    n = runs.shape[0]
    counts = (idx[:, :, None] == np.arange(n)).sum(axis=1).astype(float)  # (B, n)
    flat = runs.reshape(n, -1)
    finite = np.isfinite(flat)
    mean = counts @ np.where(finite, flat, 0.0) / idx.shape[1]
    mean[(counts > 0).astype(float) @ (~finite).astype(float) > 0] = np.nan  # a drawn seed is not finite
    return mean.reshape((idx.shape[0],) + runs.shape[1:])


def diverged_runs(diverged_step) -> int:
    """How many runs diverged (``diverged_step >= 0``; the engine's -1 means never)."""
    return int(np.sum(np.asarray(diverged_step) >= 0))


def diverged_text(diverged_step, label: str) -> str:
    """``""`` when no run diverged, else e.g. ``"GA: 2 of 5 runs diverged (steps 130, 245)"``."""
    d = np.asarray(diverged_step).ravel()
    hit = d[d >= 0]
    if hit.size == 0:
        return ""
    return f"{label}: {hit.size} of {d.size} runs diverged (step{'s' if hit.size > 1 else ''} " \
           f"{', '.join(str(int(x)) for x in sorted(hit))})"


def pareto_frontier(forget: np.ndarray, retain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lower-left Pareto frontier of points ``(forget, retain)`` (both to be minimised).

    Returns:
      ``(forget, retain)`` of the non-dominated points, sorted by increasing forget distance
      (so retain distance decreases along it).
    """
    f = np.asarray(forget, float).ravel()
    r = np.asarray(retain, float).ravel()
    ok = np.isfinite(f) & np.isfinite(r)
    f, r = f[ok], r[ok]
    order = np.lexsort((r, f))
    f, r = f[order], r[order]
    keep = r < np.minimum.accumulate(np.concatenate([[np.inf], r[:-1]]))
    return f[keep], r[keep]


def frontier_curve(forget, retain, levels: np.ndarray, cap: float) -> np.ndarray:
    """``R(f) = min{retain : forget <= f}`` along a trajectory, at each forget level ``f``.

    Levels no point reaches get ``cap``.
    """
    pf, pr = pareto_frontier(forget, retain)
    idx = np.searchsorted(pf, np.asarray(levels, float), side="right") - 1
    return np.where(idx >= 0, pr[np.clip(idx, 0, None)] if len(pr) else cap, cap)


def frontier_area(forget, retain, *, f_lo: float, f_hi: float, cap: float, n: int = 200) -> float:
    """Mean of :func:`frontier_curve` over ``n`` log-spaced forget levels in ``[f_lo, f_hi]``.

    The average best retain distance at equal forgetting; lower is a better frontier. Levels
    a method never reaches count as ``cap``.
    """
    if not (0 < f_lo < f_hi):
        raise ValueError(f"need 0 < f_lo < f_hi, got f_lo={f_lo}, f_hi={f_hi}")
    levels = np.geomspace(f_lo, f_hi, n)
    return float(np.mean(frontier_curve(forget, retain, levels, cap)))


def frontier_gap(forget_a, retain_a, forget_b, retain_b, *, n: int = 200) -> float:
    """How far frontier A lies below frontier B where both are defined (> 0: A is better).

    Both frontiers are evaluated at ``n`` log-spaced forget levels spanning their common
    range, from the larger of the two smallest forget distances reached to the larger of the
    two starting ones; the result is the mean of ``R_B(f) - R_A(f)``. Comparing only where
    both exist avoids rewarding or punishing a method for levels the other never reaches.
    """
    fa, fb = np.asarray(forget_a, float), np.asarray(forget_b, float)
    lo = max(np.nanmin(fa), np.nanmin(fb))
    hi = max(np.nanmax(fa), np.nanmax(fb))
    if not lo < hi:
        return 0.0
    levels = np.geomspace(lo, hi, n)
    cap = np.nan  # unreachable by construction: every level is >= both minima
    ra = frontier_curve(forget_a, retain_a, levels, cap)
    rb = frontier_curve(forget_b, retain_b, levels, cap)
    return float(np.mean(rb - ra))


def frontier_gap_batched(forget_a, retain_a, forget_b, retain_b, *, n: int = 200) -> np.ndarray:
    """:func:`frontier_gap` of each row of ``(B, E)`` trajectories at once: ``(B,)``.

    The same rule, vectorised over the leading axis (for bootstrap resamples): each row's
    frontiers are compared at ``n`` log-spaced levels of that row's common range; a row whose
    range is empty gives 0.
    """
    fa, ra, fb, rb = (np.atleast_2d(np.asarray(x, float)) for x in (forget_a, retain_a, forget_b, retain_b))
    with np.errstate(invalid="ignore"):
        lo = np.maximum(np.nanmin(fa, axis=1), np.nanmin(fb, axis=1))
        hi = np.maximum(np.nanmax(fa, axis=1), np.nanmax(fb, axis=1))
    ok = lo < hi
    safe_lo, safe_hi = np.where(ok, lo, 1.0), np.where(ok, hi, 2.0)
    levels = np.exp(np.linspace(np.log(safe_lo), np.log(safe_hi), n, axis=1))  # (B, n)

    def curve(f, r):
        bad = ~(np.isfinite(f) & np.isfinite(r))
        f, r = np.where(bad, np.inf, f), np.where(bad, np.inf, r)
        order = np.argsort(f, axis=1, kind="stable")
        f_s = np.take_along_axis(f, order, axis=1)
        best = np.minimum.accumulate(np.take_along_axis(r, order, axis=1), axis=1)  # min r over f <= f_s[i]
        idx = np.sum(f_s[:, None, :] <= levels[:, :, None], axis=2) - 1  # (B, n)
        return np.take_along_axis(best, np.clip(idx, 0, None), axis=1)

    gap = np.mean(curve(fb, rb) - curve(fa, ra), axis=1)
    return np.where(ok, gap, 0.0)


def first_step_below(values: np.ndarray, steps: np.ndarray, threshold: float):
    """The first recorded step at which ``values < threshold``, or ``None``."""
    hits = np.flatnonzero(np.asarray(values) < threshold)
    return int(np.asarray(steps)[hits[0]]) if hits.size else None


def _interp_log(steps, values, t):
    steps = np.asarray(steps, np.float64)
    keep = steps > 0
    return np.interp(np.log(t), np.log(steps[keep]), np.asarray(values, np.float64)[keep])


def log_slope(steps, values, *, start: float, stop: float) -> float:
    """Least-squares slope of ``values`` against ``ln t`` over the records with ``start <= t <= stop``."""
    steps = np.asarray(steps, np.float64)
    sel = (steps >= start) & (steps <= stop) & (steps > 0)
    if sel.sum() < 2:
        raise ValueError(f"need two records in [{start:g}, {stop:g}], got {int(sel.sum())}")
    from scipy import stats  # here, not at import: scipy.stats takes a second to load

    return float(stats.linregress(np.log(steps[sel]), np.asarray(values, np.float64)[sel]).slope)


def decade_growth_ratio(steps, values, *, end: float) -> float:
    """``(v(T) - v(T/10)) / (v(T/10) - v(T/100))`` at ``T = end`` (log-interpolated records).

    About 1 for growth linear in ``ln t`` and 10 for growth linear in ``t``.
    """
    v = [_interp_log(steps, values, end / 10**k) for k in range(3)]
    return float((v[0] - v[1]) / (v[1] - v[2]))


def fit_laws(t, y, t_min: float) -> dict:
    """Least-squares fits ``y = a + b t`` and ``y = a + b log t`` on ``t >= t_min`` (t > 0).

    Returns:
      ``{"linear": (a, b, R^2), "log": (a, b, R^2), "power": (log c, p, R^2), "n": points}``
      with ``R^2 = 1 - SS_res/SS_tot`` (``scipy.stats.linregress``); ``power`` fits
      ``log y = log c + p log t`` (on ``y > 0``), so ``p`` is the growth exponent (1 = linear,
      near 0 = logarithmic, > 1 = faster than linear). NaN fits when fewer than 3 finite points.
    """
    from scipy import stats

    t, y = np.asarray(t, float), np.asarray(y, float)
    keep = (t >= t_min) & (t > 0) & np.isfinite(y)
    out = {"n": int(keep.sum())}
    with np.errstate(divide="ignore", invalid="ignore"):
        log_t, log_y = np.log(np.maximum(t, 1e-300)), np.log(np.where(y > 0, y, np.nan))
    for name, x, yy in (("linear", t, y), ("log", log_t, y), ("power", log_t, log_y)):
        ok = keep & np.isfinite(yy)
        if ok.sum() < 3:
            out[name] = (np.nan, np.nan, np.nan)
            continue
        xs, ys = x[ok], yy[ok]
        if np.ptp(ys) == 0:
            out[name] = (float(ys[0]), 0.0, np.nan)
            continue
        fit = stats.linregress(xs, ys)
        out[name] = (float(fit.intercept), float(fit.slope), float(fit.rvalue**2))
    return out


R2_MIN = 0.9
"""``*.ga_linear_npo_log``: the better law must explain at least 90% of the variance (a round
number fixed by the project)."""

EXPONENT_MIN = 0.9
"""``*.ga_linear_npo_log``: GA "grows at least linearly" when its fitted power exponent is at
least 0.9 (linear, 1, within a round 10%)."""


def law_fits(long: dict, quantity: str, t_min: float) -> list[dict]:
    """:func:`fit_laws` of each long run's ``quantity`` curve (rows of ``long[quantity]``, against
    ``long["steps"]``), on ``t >= t_min``: one dict per run, as the runs of
    :func:`synthetic.laws.divergence_runs` are ordered."""
    return [fit_laws(long["steps"], y, t_min) for y in np.asarray(long[quantity], float)]


def divergence_laws_claim(long: dict, t_min: float, claim_id: str, setting: str, note_runs: str = ""):
    """The claim ``<experiment>.ga_linear_npo_log`` (kind ``extension``) on long runs.

    ``long`` holds the runs of :func:`synthetic.laws.divergence_runs`: ``labels`` ("GA",
    "NPO beta=..."), ``betas``, ``steps``, ``diverged_step`` and the curves ``param_distance``
    and ``forget_nll_seq`` (per-sequence forget NLL), fitted here with :func:`fit_laws` on
    ``t >= t_min``. GA passes when both quantities grow at least linearly (power exponent
    >= :data:`EXPONENT_MIN`), each NPO run when ``a + b log t`` fits better than ``a + b t``
    with ``R^2 >=`` :data:`R2_MIN`. ``setting`` names the reference in the statement;
    ``note_runs`` is appended to it (how many runs, seeds).
    """
    lsteps = np.asarray(long["steps"])
    labels = [str(x) for x in long["labels"]]
    long_div = np.asarray(long["diverged_step"])
    fits = {q: law_fits(long, q, t_min) for q in ("param_distance", "forget_nll_seq")}
    parts, ok_all, values, exps = [], True, {}, {}
    for j, label in enumerate(labels):
        for q, qname in (("param_distance", "||theta-theta_ref||"), ("forget_nll_seq", "forget NLL/seq")):
            lin, lgf, pw = (np.asarray(fits[q][j][law]) for law in ("linear", "log", "power"))
            if label == "GA":
                ok = bool(np.isfinite(pw[1]) and pw[1] >= EXPONENT_MIN)
                exps[qname] = float(pw[1])
                parts.append(f"GA {qname}: power exponent {pw[1]:.2f} (Theorem 2, logistic model: 1); "
                             f"R2 lin {lin[2]:.3f} / log {lgf[2]:.3f}")
            else:
                better = "log" if lgf[2] >= lin[2] else "linear"
                ok = better == "log" and bool(lgf[2] >= R2_MIN)
                pred = f"; Thm 2: 1/beta={1 / float(long['betas'][j]):.3g}" if q == "forget_nll_seq" else ""
                parts.append(f"{label} {qname}: R2 lin {lin[2]:.3f} / log {lgf[2]:.3f} -> {better}; slope "
                             f"{lgf[1]:.3g}/log t{pred}; power exponent {pw[1]:.2f}")
            ok_all &= ok
            values[f"{label}/{q}"] = {"linear": lin, "log": lgf, "power": pw, "ok": ok}
    i_ga = labels.index("GA")
    shown = ", ".join(f"{v:.2f}" for v in exps.values())
    pace = ("faster than linearly" if all(v > 1.1 for v in exps.values()) else
            "about linearly" if all(abs(v - 1) <= 0.1 for v in exps.values()) else "at its own pace")
    note = ("Theorem 2 is proved for logistic regression; it does not cover this transformer. On it GA grows "
            f"{pace} (power exponents {shown} for {', '.join(exps)})")
    note += (f" and its run reaches non-finite parameters at step {long_div[i_ga]} (the fits use its finite points)."
             if long_div[i_ga] >= 0 else ".")
    return Claim(
        id=claim_id,
        kind="extension",
        paper_ref="Theorem 2 (extended to a transformer, empirical)",
        statement=(
            f"Theorem 2's contrast on the transformer under full-batch gradient descent ({setting}): GA "
            f"grows at least linearly (the power exponent p of ||theta_t - theta_ref|| ~ c t^p and of the "
            f"per-sequence forget NLL at least {EXPONENT_MIN:g}, linear within a round 10%), and NPO at every beta "
            f"grows logarithmically (a + b log t fits better than a + b t, with R^2 >= {R2_MIN:g}, a round number), "
            f"least squares over the recorded t in [{float(t_min):g}, {lsteps[-1]}]. The logistic "
            "theory's NPO forget-NLL slope per unit log t, 1/beta, is shown beside the fit. " + note_runs
        ).strip(),
        measured="; ".join(parts),
        verdict=bool(ok_all),
        values={**values, "ga_exponents": exps},
        note=note,
    )
