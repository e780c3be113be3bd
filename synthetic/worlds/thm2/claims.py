"""The claims of ``thm2``: Theorem 2 and Lemmas 3-4 against the runs, and the section-2.1 toy.

Each claim compares the arrays of :func:`~.run.run_thm2` with the closed forms of
:mod:`theory.theorem2` (stored beside them), and states exactly how it is decided; the
tolerances are defined here, each with its basis.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize

from synthetic.analysis import decade_growth_ratio, log_slope
from synthetic.worlds.thm2.config import SETTINGS
from theory.claims import Claim, max_rel_error

__all__ = ["thm2_claims", "sandwich_constants", "fit_lemma4_constants", "GA_RATE_TOL", "LOG_RATIO_BAND",
           "LINEAR_RATIO_BAND", "SLOPE_TOL", "TIME_TOL", "AGREE_TOL", "TOY_DECAY"]

GA_RATE_TOL = 0.01
"""``thm2.ga_linear``: ``||b(T)|| / T`` within 1% of ``eta0 sqrt(sum ||x_i||^4)`` (the O(1) transient
contributes about ``20 / T`` relative)."""

LOG_RATIO_BAND = (0.9, 1.1)
"""Decade growth ratio of a logarithmic curve (exactly 1 for ``a + c ln t``); +-10%, a round
band fixed by the project, far from the 10 of linear growth."""

LINEAR_RATIO_BAND = (9.0, 11.0)
"""Decade growth ratio of a linear curve (exactly 10 for ``c t``); +-10% as for the log band."""

SLOPE_TOL = 0.05
"""``thm2.npo_slope_matches``: the measured slope of ``||b||`` against ``ln t`` within 5% of
``sqrt(n_f) / beta`` (the asymptotic corrections are ``O(t^{-1/beta})``, a few percent at 10^6
steps for beta = 2)."""

TIME_TOL = 0.05
"""``thm2.exp_slowdown_measured``: at the largest distance a run reaches, measured / predicted
time within 5%, for GA and NPO alike (a round tolerance, the same as the NPO slope's; it
replaces an earlier 25% for NPO that had no stated basis)."""

AGREE_TOL = 1e-8
"""``thm2.b_coordinates_agree``: parameter space and the b-recursion agree to this in float64
(their difference is accumulated rounding, ~1e-11 after 10^6 steps)."""

TOY_DECAY = 0.1
"""``thm2.softmax_toy``: NPO's gradient norm on unlearned examples falls below this fraction of
its value when every example is first unlearned (a decade, fixed by the project)."""


def sandwich_constants(run: dict, index: int) -> dict:
    """Tightest constants of Theorem 2 over every step ``1..steps`` of run ``index``.

    GA runs, form ``[C1 n_f^{-1/2} eta t, C2 n_f^{-1/2} eta t]``: ``C1, C2`` are the extremes of
    ``||b|| sqrt(n_f) / (eta t)``. NPO runs, form ``[C1 sqrt(n_f) log(C2 eta t / n_f + 1),
    C1 sqrt(n_f) log(C3 eta t / n_f + 1)]`` with ``C1 = 1/beta`` fixed (Lemma 4's prefactor; the
    theorem leaves the prefactor free): ``C2, C3`` are the extremes of
    ``n_f / (eta t) (e^{beta ||b|| / sqrt(n_f)} - 1)``; ``linear_C1`` is the GA form's lower
    constant for the same run, which tends to 0 when growth is sublinear.
    """
    lin = run["linear_extremes"][index]
    if run["law"][index] == "ga":
        return {"C1": float(lin[0]), "C2": float(lin[1])}
    log_c = run["log_extremes"][index]
    with np.errstate(over="ignore"):
        c2, c3 = np.exp(log_c)
    return {"C1": float(1.0 / run["beta"][index]), "C2": float(c2), "C3": float(c3), "linear_C1": float(lin[0])}


def fit_lemma4_constants(steps, b, *, beta: float, eta0: float, start: float) -> tuple[np.ndarray, np.ndarray]:
    """Fit Lemma 4's closed form to each coordinate: one ``C_i`` per coordinate.

    Minimises ``sum_t (beta |b_i(t)| - log(beta C_i eta0 t + 1))^2`` over the records with
    ``t >= start``, over ``log C_i`` in a bracket of +-10 around the last record's ``C``
    (``scipy.optimize.minimize_scalar``, bounded Brent; the loss is unimodal in ``log C``).

    Args:
      steps: ``(E,)`` record steps; b: ``(E, n_f)`` coordinates.
    Returns:
      ``(C (n_f,), err (n_f,))`` with ``err = beta max_t |(|b_i| - closed form)|`` over the window
      (the error in units of ``1/beta``, the natural scale of Lemma 4).
    """
    steps = np.asarray(steps, np.float64)
    sel = (steps >= start) & (steps > 0)
    t = steps[sel]
    target = beta * np.abs(np.asarray(b, np.float64)[sel])
    guess = np.log(np.maximum(np.expm1(target[-1]), 1e-300) / (beta * eta0 * t[-1]))
    log_c = np.empty(target.shape[1])
    for i in range(target.shape[1]):
        def sse(lc, i=i):
            return float(np.sum((target[:, i] - np.log1p(beta * math.exp(lc) * eta0 * t)) ** 2))

        res = optimize.minimize_scalar(sse, bounds=(guess[i] - 10.0, guess[i] + 10.0), method="bounded",
                                       options={"xatol": 1e-12})
        log_c[i] = res.x
    err = np.max(np.abs(target - np.log1p(beta * np.exp(log_c)[None, :] * eta0 * t[:, None])), axis=0)
    return np.exp(log_c), err


# --------------------------------------------------------------------------- claims


def _norms(a: dict) -> np.ndarray:
    return np.linalg.norm(a["b"], axis=-1)


def _npo_runs(a: dict) -> list[int]:
    return [i for i, law in enumerate(a["law"]) if law == "npo"]


def _ga_run(a: dict) -> int:
    return int(np.flatnonzero(a["law"] == "ga")[0])


def _sign_share(a: dict, i: int) -> float:
    """Share of coordinates with Lemma 3/4's sign ``sign(b_i) = -(2 y_i - 1)`` at the last record."""
    s = 2.0 * a["y"] - 1.0
    return float(np.mean(np.sign(a["b"][i, -1]) == -s))


def _quick_note(config: dict) -> str:
    if config["steps"] >= 10**6:
        return ""
    return (
        f" This run has T = {config['steps']:.0e} (--quick), where the small betas are still in "
        "their GA-like transient, so the asymptotic test may fail here; it is meant for T = 1e6."
    )


def _claim_ga_linear(config, a) -> Claim:
    T, n = int(a["steps"][-1]), int(a["n_f"])
    g = _ga_run(a)
    nb = _norms(a)[g]
    rate, pred = nb[-1] / T, float(a["ga_rate"])
    err = abs(rate / pred - 1.0)
    signs = _sign_share(a, g)
    sw = sandwich_constants(a, g)
    ratio = decade_growth_ratio(a["steps"], nb, end=T)
    passed = bool(err <= GA_RATE_TOL and signs == 1.0)
    return Claim(
        id="thm2.ga_linear",
        kind="paper",
        paper_ref="Theorem 2 (GA), Lemma 3",
        statement=(
            f"For orthogonal inputs (n_f = {n}, d = {int(a['d'])}, eta = {config['eta']:g}), GA's distance "
            "||theta - theta_init||_{X^T X} = ||b|| grows linearly in t. Decided by ||b(T)||/T at "
            f"T = {T:.0e} lying within {GA_RATE_TOL:.0%} (the O(1) transient contributes about 20/T) of the derived limit eta0 sqrt(sum_i ||x_i||^4) "
            "(eta0 = eta/n_f; each coordinate moves by eta0 ||x_i||^2 per step once pi_i ~ 0) and every b_i "
            "having Lemma 3's sign -(2y_i - 1). Reported: the tightest C1, C2 of Theorem 2's "
            "[C1 n_f^-1/2 eta t, C2 n_f^-1/2 eta t] over every step 1..T, and the decade growth ratio "
            "(||b(T)|| - ||b(T/10)||)/(||b(T/10)|| - ||b(T/100)||) (10 for linear growth)."
        ),
        measured=(
            f"||b(T)||/T = {rate:.6g} vs predicted {pred:.6g} (rel. err {err:.1e}); Lemma-3 signs "
            f"{signs:.0%}; tightest C1 = {sw['C1']:.3g}, C2 = {sw['C2']:.3g}; decade growth ratio {ratio:.4g}"
        ),
        verdict=passed,
        values={"rate": rate, "predicted": pred, "rel_error": err, "sign_share": signs, "decade_ratio": ratio, **sw},
    )


def _claim_npo_log(config, a) -> Claim:
    T = int(a["steps"][-1])
    eta0 = float(a["eta"]) / int(a["n_f"])
    nb = _norms(a)
    ga_ratio = decade_growth_ratio(a["steps"], nb[_ga_run(a)], end=T)
    parts, per_beta, ok = [], {}, True
    for i in _npo_runs(a):
        beta = float(a["beta"][i])
        ratio = decade_growth_ratio(a["steps"], nb[i], end=T)
        signs = _sign_share(a, i)
        sw = sandwich_constants(a, i)
        c_fit, fit_err = fit_lemma4_constants(a["steps"], a["b"][i], beta=beta, eta0=eta0, start=T / 10)
        c_rel = c_fit / a["npo_constants"][i]
        good = LOG_RATIO_BAND[0] <= ratio <= LOG_RATIO_BAND[1] and signs == 1.0
        ok &= good
        parts.append(
            f"beta={beta:g}: decade ratio {ratio:.3f}, signs {signs:.0%}, C2 = {sw['C2']:.3g}, C3 = {sw['C3']:.3g}, "
            f"Lemma-4 fit err {float(fit_err.max()):.2g}/beta, fitted/asymptotic C_i in "
            f"[{float(c_rel.min()):.3f}, {float(c_rel.max()):.3f}]"
        )
        per_beta[f"{beta:g}"] = {
            "decade_ratio": ratio,
            "sign_share": signs,
            **sw,
            "lemma4_fit_error": float(fit_err.max()),
            "fitted_over_asymptotic_C": [float(c_rel.min()), float(c_rel.max())],
        }
    return Claim(
        id="thm2.npo_log",
        kind="paper",
        paper_ref="Theorem 2 (NPO), Lemma 4",
        statement=(
            f"For orthogonal inputs, NPO's ||b|| grows logarithmically in t at every beta in {config['betas']}. "
            "Decided by the decade growth ratio (||b(T)|| - ||b(T/10)||)/(||b(T/10)|| - ||b(T/100)||) lying in "
            f"[{LOG_RATIO_BAND[0]:g}, {LOG_RATIO_BAND[1]:g}] (1 for growth linear in ln t, 10 for linear growth; "
            "the +-10% band is a round one fixed by the project) "
            "and every b_i having Lemma 4's sign -(2y_i - 1), for every beta. Reported: the tightest C2, C3 of "
            "Theorem 2's [C1 sqrt(n_f) log(C2 eta t/n_f + 1), C1 sqrt(n_f) log(C3 eta t/n_f + 1)] with C1 = 1/beta "
            "over every step 1..T, and Lemma 4's closed form (1/beta) log(beta C_i eta0 t + 1) fitted per "
            "coordinate on [T/10, T] (max error in units of 1/beta; fitted C_i over the derived asymptotic "
            "C_i = 2||x_i||^2 (1 + e^{m0_i})^beta, m0_i = (2y_i - 1)<x_i, theta_init>)." + _quick_note(config)
        ),
        measured=f"GA's decade ratio {ga_ratio:.3f}; " + "; ".join(parts),
        verdict=bool(ok),
        values={"ga_decade_ratio": ga_ratio, "per_beta": per_beta},
    )


def _claim_npo_slope(config, a) -> Claim:
    T, n = int(a["steps"][-1]), int(a["n_f"])
    nb = _norms(a)
    parts, per_beta, ok = [], {}, True
    for i in _npo_runs(a):
        beta = float(a["beta"][i])
        slope = log_slope(a["steps"], nb[i], start=T / 10, stop=T)
        pred = float(a["npo_slope"][i])
        err = slope / pred - 1.0
        ok &= abs(err) <= SLOPE_TOL
        parts.append(f"beta={beta:g}: {slope:.4g} vs {pred:.4g} ({err:+.2%})")
        per_beta[f"{beta:g}"] = {"slope": slope, "predicted": pred, "rel_error": err}
    return Claim(
        id="thm2.npo_slope_matches",
        kind="paper",
        paper_ref="Theorem 2 (NPO), Lemma 4",
        statement=(
            f"For orthogonal inputs (n_f = {n}), the slope of NPO's ||b|| against ln t at T = {T:.0e} "
            "(least-squares over the records in [T/10, T]) is within "
            f"{SLOPE_TOL:.0%} of sqrt(n_f)/beta for every beta (each |b_i| ~ (1/beta) ln t; the corrections are "
            "O(t^(-1/beta)), a few percent at T = 1e6 for beta = 2)." + _quick_note(config)
        ),
        measured="slope vs sqrt(n_f)/beta: " + "; ".join(parts),
        verdict=bool(ok),
        values={"per_beta": per_beta},
    )


def _approaches_one(ratios, measured) -> bool:
    """Whether measured/predicted ``ratios`` (over increasing D) move towards 1 at every D: each
    ``|ln ratio|`` is at most the previous one plus one step of rounding (``1 / measured``)."""
    dev = np.abs(np.log(np.asarray(ratios, float)))
    slack = 1.0 / np.asarray(measured, float)
    return bool(np.all(dev[1:] <= dev[:-1] + slack[1:]))


def _claim_exp_slowdown(config, a) -> Claim:
    T = int(a["steps"][-1])
    dist, hit, pred = a["distances"], a["hit_step"], a["pred_time"]
    g = _ga_run(a)
    rows, ok, values, slow = [], True, {}, []
    for i in range(len(a["law"])):
        kind = str(a["law"][i])
        label = "GA" if kind == "ga" else f"NPO beta={float(a['beta'][i]):g}"
        reached = np.flatnonzero(hit[i] > 0)
        if reached.size == 0:
            ok = False
            rows.append(f"{label}: reaches no D")
            values[label] = {"largest_D": None}
            continue
        k = int(reached[-1])
        ratios = hit[i, reached] / pred[i, reached]
        approaches = _approaches_one(ratios, hit[i, reached])
        final_ok = abs(ratios[-1] - 1.0) <= TIME_TOL
        ok &= approaches and final_ok
        rows.append(
            f"{label}: measured/predicted x{ratios[0]:.3g} at D={dist[reached[0]]:g} -> x{ratios[-1]:.3f} at "
            f"D={dist[k]:g} ({int(hit[i, k])} vs {pred[i, k]:.4g} steps; {reached.size} D, "
            f"{'towards 1 at every D' if approaches else 'NOT towards 1 at every D'})"
        )
        values[label] = {
            "largest_D": float(dist[k]),
            "ratio_at_largest_D": float(ratios[-1]),
            "approaches_one": approaches,
            "distances": dist[reached],
            "measured": hit[i, reached],
            "predicted": pred[i, reached],
        }
        if kind == "npo":
            slow.append(f"D={dist[k]:g}: NPO beta={float(a['beta'][i]):g} {int(hit[i, k])} steps vs GA "
                        f"{int(hit[g, k])} (x{hit[i, k] / hit[g, k]:.3g})")
    return Claim(
        id="thm2.exp_slowdown_measured",
        kind="paper",
        paper_ref="Theorem 2 (section 3.1)",
        statement=(
            "The first step at which ||b|| >= D (D = 1, 2, 4, ..., tracked at every step) against Theorem 2's "
            "times from symbolic thm2.exp_slowdown, scaled per coordinate (each |b_i| must reach D/sqrt(n_f)): "
            "T_GA = (D/sqrt(n_f))/(C eta0) with C = sqrt(mean_i ||x_i||^4), T_NPO = (e^{beta D/sqrt(n_f)} - 1)/"
            "(beta C eta0) with C the geometric mean of the asymptotic C_i = 2||x_i||^2 (1 + e^{m0_i})^beta. "
            "The closed forms are the leading terms, exact only asymptotically (small D pay a transient of the "
            "first steps), so the claim is decided at every D each run reaches within "
            f"T = {T:.0e} steps: the ratio measured/predicted must move towards 1 as D grows (|ln ratio| never "
            "larger than at the previous D, up to one step of rounding), and at the largest D reached lie within "
            f"{TIME_TOL:.0%} of 1 ({TIME_TOL:.0%}: a round tolerance, the same as the NPO slope's), for GA and "
            "every NPO beta. Orthogonal inputs; every D reached is in the claim's values and the time-to-distance "
            "figure." + _quick_note(config)
        ),
        measured="; ".join(rows) + " | slowdown at the largest D reached: " + "; ".join(slow),
        verdict=bool(ok),
        values=values,
    )


def _claim_agree(config, arrays) -> Claim:
    parts, errors = [], {}
    for setting in SETTINGS:
        a = arrays[setting]
        e_b = max_rel_error(a["b_theta"], a["b"])
        e_n = max_rel_error(a["xtx_norm"], _norms(a))
        errors[setting] = {"b": e_b, "xtx_norm": e_n}
        parts.append(f"{setting}: b {e_b:.1e}, ||.||_XtX {e_n:.1e}")
    worst = max(max(v.values()) for v in errors.values())
    T = int(config["steps"])
    return Claim(
        id="thm2.b_coordinates_agree",
        kind="consistency",
        paper_ref="Theorem 2, proof (appendix A.2)",
        statement=(
            "Gradient descent in parameter space (jax.grad of the objective) and the recursion "
            "b <- b - eta0 Gamma (w * s * (1 - pi)) of appendix A.2 (Gamma = X X^T and per-example weights, no theta) "
            f"give the same b = X(theta - theta_init) at every record of every run (GA, NPO at 4 betas, {T:.0e} "
            "steps) on all three forget sets (orthogonal, correlated, n_f > d), and ||theta - theta_init||_{X^T X} "
            f"(through X^T X) equals ||b||_2: max |a - b| / max(|b|, 1) <= {AGREE_TOL:g} in float64."
        ),
        measured="max error " + "; ".join(parts),
        verdict=bool(np.isfinite(worst) and worst <= AGREE_TOL),
        values=errors,
    )


def _regime_numbers(a: dict) -> dict:
    T = int(a["steps"][-1])
    nb = _norms(a)
    g = _ga_run(a)
    s = 2.0 * a["y"] - 1.0
    less_likely = lambda i: float(np.mean(s * a["b"][i, -1] < 0))  # noqa: E731 -- pi_theta < pi_ref
    npo = _npo_runs(a)
    return {
        "ga_decade_ratio": decade_growth_ratio(a["steps"], nb[g], end=T),
        "ga_rate": float(nb[g, -1] / T),
        "ga_rate_orthogonal_formula": float(a["ga_rate"]),
        "ga_less_likely": less_likely(g),
        "npo_decade_ratios": [decade_growth_ratio(a["steps"], nb[i], end=T) for i in npo],
        "npo_slope_over_predicted": [
            log_slope(a["steps"], nb[i], start=T / 10, stop=T) / float(a["npo_slope"][i]) for i in npo
        ],
        "npo_less_likely": [less_likely(i) for i in npo],
        "coherence": float(a["coherence"]),
        "coherence_bound": float(a["coherence_bound"]),
        "min_eig": float(a["min_eig"]),
        "n_f": int(a["n_f"]),
        "d": int(a["d"]),
    }


def _claim_outside(config, arrays) -> Claim:
    numbers, parts, ok, explain = {}, [], True, []
    for setting in SETTINGS[1:]:
        r = _regime_numbers(arrays[setting])
        numbers[setting] = r
        ga_linear = LINEAR_RATIO_BAND[0] <= r["ga_decade_ratio"] <= LINEAR_RATIO_BAND[1]
        npo_slow = all(x <= LOG_RATIO_BAND[1] for x in r["npo_decade_ratios"])
        ok &= ga_linear and npo_slow
        where = (f"rho = {config['outside']['correlated']['correlation']:g}, coherence {r['coherence']:.3g} "
                 f"> C0/n_f = {r['coherence_bound']:.3g}" if setting == "correlated"
                 else f"n_f = {r['n_f']} > d = {r['d']}, min eig X X^T = {r['min_eig']:.1e}")
        slopes = r["npo_slope_over_predicted"]
        parts.append(
            f"{setting} ({where}): GA decade ratio {r['ga_decade_ratio']:.3f}, ||b||/t = {r['ga_rate']:.3g} "
            f"(x{r['ga_rate'] / r['ga_rate_orthogonal_formula']:.2g} the orthogonal formula), leaves "
            f"{r['ga_less_likely']:.0%} of the forget set less likely than pi_ref; NPO decade ratios "
            f"{min(r['npo_decade_ratios']):.3f}-{max(r['npo_decade_ratios']):.3f}, slope / (sqrt(n_f)/beta) "
            f"{min(slopes):.2f}-{max(slopes):.2f}, less likely {min(r['npo_less_likely']):.0%}-"
            f"{max(r['npo_less_likely']):.0%}"
        )
        explain.append((setting, ga_linear, npo_slow, r))
    return Claim(
        id="thm2.outside_assumptions",
        kind="extension",
        paper_ref="Theorem 2 (assumptions)",
        statement=(
            "Outside the theorem's assumptions (strongly correlated inputs; n_f > d, X X^T singular) Theorem 2 says "
            "nothing; we measure whether its contrast survives, GA linear and NPO at most logarithmic. Decided by "
            f"GA's decade growth ratio lying in [{LINEAR_RATIO_BAND[0]:g}, {LINEAR_RATIO_BAND[1]:g}] and every NPO "
            f"decade growth ratio being <= {LOG_RATIO_BAND[1]:g}, on both forget sets (no lower bound is claimed "
            "outside the assumptions). Reported: GA's rate against the orthogonal formula, NPO's slope against "
            "sqrt(n_f)/beta, and the share of the forget set each method leaves less likely than under pi_ref."
            + _quick_note(config)
        ),
        measured="; ".join(parts),
        note=_outside_sentence(explain),
        verdict=bool(ok),
        values=numbers,
    )


def _outside_sentence(explain) -> str:
    """One sentence explaining the measured behaviour outside the assumptions, from the numbers."""
    survives = all(ga and npo for _, ga, npo, _ in explain)
    faster = [r["ga_rate"] / r["ga_rate_orthogonal_formula"] for *_, r in explain]
    wrong_ga = max(1.0 - r["ga_less_likely"] for *_, r in explain)
    wrong_npo = max(1.0 - min(r["npo_less_likely"]) for *_, r in explain)
    text = (
        "Off-diagonal entries of Gamma = X X^T couple the coordinates of b, so Lemmas 3-4's "
        f"per-coordinate constants no longer apply (GA runs x{min(faster):.2g}-x{max(faster):.2g} faster than the "
        "orthogonal formula"
    )
    if wrong_ga > 0 or wrong_npo > 0:
        text += (f", and the shared directions push up to {wrong_ga:.0%} (GA) and {wrong_npo:.0%} (NPO) of the "
                 "forget set the wrong way, making it more likely")
    if survives:
        return text + "), but GA's per-example push never fades while NPO's weights W_i still vanish on the " \
                      "examples it unlearns, so GA stays linear and NPO at most logarithmic."
    return text + "), and the linear vs logarithmic contrast does not survive in every run (see the ratios)."


def _claim_toy(config, arrays) -> Claim:
    a = arrays["toy"]
    steps, u = a["steps"], a["unlearned_grad_norm"]
    every = (np.exp(a["logp"]) <= float(a["unlearned_below"])).all(-1)  # (R, E)
    k_cfg = config["toy"]["n_classes"]
    T = int(steps[-1])
    parts, ok, values = [], True, {}
    for i in range(len(a["law"])):
        label = "GA" if a["law"][i] == "ga" else f"NPO beta={float(a['beta'][i]):g}"
        if not every[i].any():
            ok = False
            parts.append(f"{label}: never unlearns every example")
            values[label] = {"first_all_unlearned": -1}
            continue
        k = int(np.argmax(every[i]))
        ratio = float(u[i, -1] / u[i, k])
        if a["law"][i] == "ga":
            # GA: -log pi_y keeps growing linearly (the push never fades).
            nll = -np.mean(a["logp"][i], axis=-1)
            decade = decade_growth_ratio(steps, nll, end=T)
            good = LINEAR_RATIO_BAND[0] <= decade <= LINEAR_RATIO_BAND[1]
            parts.append(f"{label}: -log pi_y decade growth ratio {decade:.4g} (mean -log pi_y {nll[-1]:.4g} at T); "
                         f"gradient norm step {int(steps[k])} {u[i, k]:.3g} -> end {u[i, -1]:.3g} (x{ratio:.3g})")
            values[label] = {"decade_ratio": decade, "nll_at_end": float(nll[-1])}
        else:
            good = ratio <= TOY_DECAY
            parts.append(f"{label}: gradient norm step {int(steps[k])} {u[i, k]:.3g} -> end {u[i, -1]:.3g} (x{ratio:.3g})")
            values[label] = {}
        ok &= bool(good)
        values[label].update({"first_all_unlearned": int(steps[k]), "at_first": float(u[i, k]),
                              "at_end": float(u[i, -1]), "ratio": ratio})
    return Claim(
        id="thm2.softmax_toy",
        kind="paper",
        paper_ref="section 2.1",
        statement=(
            f"K = {k_cfg}-class linear softmax, {config['toy']['n_f']} orthonormal forget inputs, "
            f"{config['toy']['steps']:.0e} GD steps; an example is unlearned once pi_theta(y|x) <= "
            f"{float(a['unlearned_below']):g}, every example first at step t*. GA's push never fades, so it drives "
            "the forget log-likelihood to -infinity linearly: decided by the decade growth ratio of the mean "
            f"-log pi_theta(y|x) at T lying in [{LINEAR_RATIO_BAND[0]:g}, {LINEAR_RATIO_BAND[1]:g}] (10 for linear "
            "growth, 1 for logarithmic; the +-10% band a round one). NPO's gradient on unlearned examples is "
            f"weighted by W -> 0 and decays: decided by its mean gradient norm at T being below {TOY_DECAY:g} x its "
            "value at t*, for every beta (a decade, fixed by the project). GA's gradient norm, "
            "||e_y - p|| ||x|| >= 1 - pi_theta(y|x), is reported but not decided: it cannot fall below 0.99 "
            "while the examples stay unlearned."
        ),
        measured="; ".join(parts),
        verdict=bool(ok),
        values=values,
    )


def thm2_claims(config: dict, arrays: dict) -> list[Claim]:
    """The claims of ``thm2``: Theorem 2's five, outside the assumptions, the softmax toy."""
    orth = arrays["orthogonal"]
    return [
        _claim_ga_linear(config, orth),
        _claim_npo_log(config, orth),
        _claim_npo_slope(config, orth),
        _claim_exp_slowdown(config, orth),
        _claim_agree(config, arrays),
        _claim_outside(config, arrays),
        _claim_toy(config, arrays),
    ]
