"""The claims of the ``markov`` experiment, decided on the arrays of :func:`~.run.run_markov`.

Two kept from the collapse question of the paper (GA collapses, NPO does not), the divergence
laws on the transformer, the six claims of the SimNPO study's synthetic experiment (Fan et al.
2024), declared before the run with the study's numbers beside them and decided at the study's
code's settings (SimNPO at beta 1, eps 1e-6), and the three claims of the beta x eps map
(:mod:`.eps_map`). The study's claims compare methods at **matched retain KL** along each
trajectory of (retain KL, forget-k KL), per-token KL to the true chains, with the retrained
model's forget KL as the target (the measures: :mod:`.measures`).

Every decision is taken on the seed-mean trajectories with a 95% bootstrap interval over seeds
(paired: NPO and SimNPO share each seed's minibatch order), and the per-seed values with how
many seeds agree are reported beside it.
"""

from __future__ import annotations

import numpy as np

from synthetic.analysis import diverged_text, divergence_laws_claim, seed_interval, seed_mean
from synthetic.worlds.markov import eps_map
from synthetic.worlds.markov.measures import (STUDY, a_cost_ratio, a_forget1_gap, a_forget2_share,
                                              b_forget1_cost_ratio, b_forget2_share_gap, forget2_share, paired,
                                              per_seed, single, target_cost)
from theory.claims import Check, Claim

__all__ = ["markov_claims"]

FACTOR_COLLAPSE = 10.0
"""``markov.ga_collapses``: GA's retain KL must end at least an order of magnitude above its
step-0 value (a round factor fixed by the project)."""

FACTOR_STABLE = 5.0
"""``markov.npo_stable``: NPO's retain KL at most 1/5 of GA's (a round factor fixed by the
project)."""

_BOOTSTRAP = "95% percentile-bootstrap intervals over the seeds of the 50-step runs"
_LONG = ("The long gradient-descent runs are one run per method (no seed interval; their decisions are "
         "deterministic).")


# --------------------------------------------------------------------------- helpers


def _names(arrays, case) -> list[str]:
    """The methods of ``case``'s runs: the study's (``B``, ``A``) or the collapse runs'."""
    return [str(m) for m in (arrays["collapse"]["methods"] if case == "collapse" else arrays["methods"])]


def _runs(arrays, metric, method, case="B"):
    """Per-seed curves ``(S, E)`` of ``metric`` for ``method`` in ``case`` (``B``, ``A`` or ``collapse``)."""
    names = _names(arrays, case)
    if method not in names:
        raise ValueError(f"method {method!r} not in the {case} runs' methods {names}")
    return np.asarray(arrays[case][metric][names.index(method)], float)


def _trio(arrays, method, case):
    return tuple(_runs(arrays, f"kl_true_{g}", method, case) for g in ("retain", "forget1", "forget2"))


def _diverged(arrays, methods, case) -> str:
    names = _names(arrays, case)
    texts = [t for m in methods if (t := diverged_text(np.asarray(arrays[case]["diverged_step"])[names.index(m)],
                                                       f"{case} {m}"))]
    return ("; " + "; ".join(texts)) if texts else ""


def _seeds_text(values, ok) -> str:
    return f"per seed {', '.join(f'{v:.3g}' for v in values)} ({int(np.sum(ok))} of {len(values)} seeds agree)"


_MAP_NOTE = ("Decided at the study's code's settings (SimNPO beta 1, eps 1e-6); the beta x eps map (markov.simnpo_faster_at_beta1, markov.study_reproduced_at_beta, "
             "markov.advantage_rests_on_eps and the table 'SimNPO beta x eps map') shows at which SimNPO beta the "
             "study's figure appears and what the optimizer's eps has to do with it.")


def _study_claim(cid, statement, checks, per_seed_parts, values, ref) -> Claim:
    return Claim.decided(
        id=cid, kind="extension", paper_ref=ref,
        statement=statement + f" Decided on the seed-mean trajectories ({_BOOTSTRAP}); a target not reached within "
        "the run is a failure (cost inf). A claim of the SimNPO study, not of this paper, hence an extension.",
        measured="; ".join(c.text() for c in checks) + " | " + "; ".join(per_seed_parts),
        checks=checks, values=values, note=_MAP_NOTE,
    )


# --------------------------------------------------------------------------- claims


def _collapse_claims(config, arrays) -> list[Claim]:
    p = _collapse_points(arrays)
    return [_ga_collapses(arrays, p), _npo_stable(arrays, p)]


def _collapse_points(arrays) -> dict:
    """The records the collapse claims read: the 50-step runs' half, three-quarter and last
    record (``h``, ``q``, ``T``) and GA's long run's last finite record and the one a decade earlier."""
    steps = np.asarray(arrays["collapse"]["steps"])
    E = len(steps) - 1  # record indices; the text names the steps
    h, q, T = E // 2, (3 * E) // 4, E
    lsteps = np.asarray(arrays["long"]["steps"])
    labels = [str(x) for x in arrays["long"]["labels"]]
    long_rt = np.asarray(arrays["long"]["kl_true_retain"], float)
    long_div = np.asarray(arrays["long"]["diverged_step"])
    i_ga = labels.index("GA")
    i_last = int(np.flatnonzero(np.isfinite(long_rt[i_ga]))[-1])
    i_dec = int(np.argmin(np.abs(lsteps - lsteps[i_last] / 10)))
    return {"h": h, "q": q, "T": T, "half": int(steps[h]), "three_q": int(steps[q]), "end": int(steps[T]),
            "lsteps": lsteps, "labels": labels, "long_rt": long_rt, "long_div": long_div, "i_ga": i_ga,
            "ga_long": long_rt[i_ga], "i_last": i_last, "i_dec": i_dec,
            "ga_runs": _runs(arrays, "kl_true_retain", "GA", "collapse")}


def _ga_collapses(arrays, p: dict) -> Claim:
    h, q, T, half, three_q, end = (p[k] for k in ("h", "q", "T", "half", "three_q", "end"))
    lsteps, long_div, i_ga, ga_long, i_last, i_dec = (p[k] for k in ("lsteps", "long_div", "i_ga", "ga_long",
                                                                     "i_last", "i_dec"))
    ga_runs = p["ga_runs"]
    ga = seed_mean(ga_runs)
    ga_diverged = bool(long_div[i_ga] >= 0)
    grows_long = ga_diverged or bool(ga_long[i_last] > ga_long[i_dec])
    div_txt = f", then non-finite parameters at step {long_div[i_ga]}" if ga_diverged else ""
    checks = [
        Check(f"GA retain KL step {half} -> {three_q} increase", seed_interval(lambda g: g[q] - g[h], ga_runs),
              0.0, "above"),
        Check(f"GA retain KL step {three_q} -> {end} increase", seed_interval(lambda g: g[T] - g[q], ga_runs),
              0.0, "above"),
        Check(f"GA retain KL step {end} / step 0", seed_interval(lambda g: g[T] / g[0], ga_runs), FACTOR_COLLAPSE,
              "above"),
    ]
    return Claim.decided(
        id="markov.ga_collapses",
        kind="paper",
        paper_ref="sec. 2.1, 4.2(b), 5 (GA's collapse); SimNPO study's setting",
        statement=(
            "GA's retain KL keeps growing (catastrophic collapse) on the transformer, case B. Decided on the "
            "seed-mean per-token KL(P_true || pi_theta) on the retain evaluation set: in the 50-step AdamW runs "
            f"it increases from step {half} to {three_q} to {end} and ends above {FACTOR_COLLAPSE:g}x its step-0 value "
            f"({_BOOTSTRAP}; x{FACTOR_COLLAPSE:g}: an order of magnitude, fixed by the project), and in the long "
            "gradient-descent run it is larger at the last finite evaluation than a decade of steps earlier (or the "
            "run reached non-finite parameters). " + _LONG
        ),
        measured=(
            f"GA retain KL: step 0 {ga[0]:.3g}, {half} {ga[h]:.3g}, {three_q} {ga[q]:.3g}, {end} {ga[T]:.3g}; "
            f"long GD: step {lsteps[i_dec]} {ga_long[i_dec]:.3g} -> {lsteps[i_last]} {ga_long[i_last]:.3g}{div_txt}; "
            + "; ".join(c.text() for c in checks) + _diverged(arrays, ["GA"], "collapse")
        ),
        checks=checks,
        also=[grows_long],
        values={"ga_retain_kl": ga, "ga_long_retain_kl": ga_long, "ga_long_diverged_step": int(long_div[i_ga])},
    )  # fmt: skip


def _npo_stable(arrays, p: dict) -> Claim:
    T, end, lsteps, labels, long_rt = (p[k] for k in ("T", "end", "lsteps", "labels", "long_rt"))
    long_div, ga_long, i_last, ga_runs = p["long_div"], p["ga_long"], p["i_last"], p["ga_runs"]
    ga = seed_mean(ga_runs)
    npo = seed_mean(_runs(arrays, "kl_true_retain", "NPO", "collapse"))
    npo_f1 = seed_mean(_runs(arrays, "kl_true_forget1", "NPO", "collapse"))
    i_npo1 = labels.index("NPO beta=1") if "NPO beta=1" in labels else 1
    npo_long = long_rt[i_npo1]
    ok_long = bool(long_div[i_npo1] < 0 and npo_long[-1] <= ga_long[i_last] / FACTOR_STABLE)
    checks = [
        Check(f"NPO / GA retain KL at step {end}",
              seed_interval(lambda n, g: n[T] / g[T], _runs(arrays, "kl_true_retain", "NPO", "collapse"), ga_runs),
              1.0 / FACTOR_STABLE, "below"),
        Check(f"NPO forget-1 KL step {end} - step 0",
              seed_interval(lambda f: f[T] - f[0], _runs(arrays, "kl_true_forget1", "NPO", "collapse")), 0.0, "above"),
    ]
    return Claim.decided(
        id="markov.npo_stable",
        kind="paper",
        paper_ref="sec. 3, 4.2(b), 5 (NPO's stability); SimNPO study's setting",
        statement=(
            "NPO does not collapse where GA does (case B). Decided on the seed-mean per-token KL(P_true || pi_theta): "
            f"NPO's retain KL at step {end} of the 50-step runs is below 1/{FACTOR_STABLE:g} of GA's (a round factor "
            "fixed by the project), and NPO still unlearns (its forget-1 KL to the true chain rises from step 0), "
            f"both with {_BOOTSTRAP}; in the long gradient-descent runs NPO (beta=1) stays finite and its retain KL at "
            f"step {lsteps[-1]} is at most 1/{FACTOR_STABLE:g} of GA's at GA's last finite evaluation. " + _LONG
        ),
        measured=(
            f"retain KL at {end}: NPO {npo[T]:.3g} vs GA {ga[T]:.3g}; NPO forget-1 KL {npo_f1[0]:.3g} -> {npo_f1[T]:.3g}; "
            f"long GD retain KL: NPO {npo_long[-1]:.3g} at step {lsteps[-1]} vs GA {ga_long[i_last]:.3g} at step "
            f"{lsteps[i_last]}; " + "; ".join(c.text() for c in checks) + _diverged(arrays, ["GA", "NPO"], "collapse")
        ),
        checks=checks,
        also=[ok_long],
        values={"npo_retain_kl": npo, "npo_forget1_kl": npo_f1, "npo_long_retain_kl": npo_long},
    )  # fmt: skip


def _laws_claim(config, arrays) -> Claim:
    t_min = config["long"]["steps"] / config["long"]["fit_decades_from"]
    return divergence_laws_claim(arrays["long"], t_min, "markov.ga_linear_npo_log", "case B's reference", _LONG)


_STUDY_REF = "SimNPO study (Fan et al. 2024), synthetic experiment"


def _study_claims(config, arrays) -> list[Claim]:
    cases = [str(c) for c in config.get("cases", ("B", "A"))]
    claims = []
    if "B" in cases:
        claims += [_b_forget1_cost(arrays), _b_forget2_share(arrays)]
    if "A" in cases:
        claims += [*_a_costs(arrays), _a_forget2_share(arrays), _a_forget1_npo_cheaper(arrays)]
    return claims


def _case_runs(arrays, case):
    """``(NPO's (retain, forget-1, forget-2) KL runs, SimNPO's, the retrained model's forget-1 and
    forget-2 KL targets)`` of ``case``."""
    target = np.asarray(arrays[case]["retrained_kl_true"], float)  # retain, forget1, forget2
    return _trio(arrays, "NPO", case), _trio(arrays, "SimNPO", case), float(target[1]), float(target[2])


def _b_forget1_cost(arrays) -> Claim:
    npo, sim, t1, _ = _case_runs(arrays, "B")
    interval, per = paired(lambda n, s: b_forget1_cost_ratio(n, s, t1), npo, sim)
    check = Check("SimNPO / NPO retain KL to reach the forget-1 target", interval, STUDY["b_forget1_cost"], "below")
    cn = per_seed(lambda r, f: target_cost(r, [f], [t1]), *npo[:2])
    cs = per_seed(lambda r, f: target_cost(r, [f], [t1]), *sim[:2])
    return _study_claim(
        "markov.b_forget1_cost",
        f"Case B: the retain KL paid to bring forget-1 to the retrained model's forget-1 KL ({t1:.3g}) is smaller "
        f"for SimNPO than for NPO: SimNPO / NPO <= {STUDY['b_forget1_cost']:g} (declared before the run; the "
        "study's figure: 0.084 / 0.126 = 0.67).",
        [check], [f"costs NPO {', '.join(f'{v:.3g}' for v in cn)}, SimNPO {', '.join(f'{v:.3g}' for v in cs)}",
                  "ratio " + _seeds_text(per, per <= STUDY["b_forget1_cost"])],
        {"npo_cost": cn, "simnpo_cost": cs, "target": t1}, _STUDY_REF)


def _b_forget2_share(arrays) -> Claim:
    npo, sim, t1, _ = _case_runs(arrays, "B")
    interval, per = paired(lambda n, s: b_forget2_share_gap(n, s, t1), npo, sim)
    check = Check("NPO - SimNPO forget-2 share at NPO's forget-1 cost", interval, STUDY["b_forget2_share"], "above")
    means = {"NPO": [seed_mean(x) for x in npo], "SimNPO": [seed_mean(x) for x in sim]}
    r_mean = target_cost(means["NPO"][0], [means["NPO"][1]], [t1])
    sh = {m: forget2_share(*trio, r_mean) for m, trio in means.items()}
    return _study_claim(
        "markov.b_forget2_share",
        "Case B: at NPO's retain KL when its forget-1 reaches the target, the share of the forget-KL increase "
        "that lands on forget-2 (never learned by the reference) is larger for NPO than for SimNPO by at least "
        f"{STUDY['b_forget2_share']:g} (declared; the study: 0.74 vs 0.55). SimNPO's share is read on its own "
        "trajectory at the same retain KL; no matched point (NPO never reaching the target, or SimNPO never "
        "reaching that retain KL) is a failure.",
        [check], [f"at retain KL {r_mean:.3g}: share NPO {sh['NPO']:.3g}, SimNPO {sh['SimNPO']:.3g}",
                  "gap " + _seeds_text(per, per >= STUDY["b_forget2_share"])],
        {"share": sh, "matched_retain_kl": r_mean, "per_seed_gap": per}, _STUDY_REF)


def _a_costs(arrays) -> list[Claim]:
    npo, sim, t1, t2 = _case_runs(arrays, "A")
    claims = []
    for cid, which, key, label, study in (
        ("markov.a_short_cost", (1,), "a_short_cost", "short forget-2", "0.030 / 0.192"),
        ("markov.a_both_cost", (0, 1), "a_both_cost", "both forget sets", "0.075 / 0.19"),
    ):
        interval, per = paired(lambda n, s, which=which: a_cost_ratio(n, s, t1, t2, which), npo, sim)
        check = Check(f"SimNPO / NPO retain KL to bring {label} to target", interval, STUDY[key], "below")
        claims.append(_study_claim(
            cid,
            f"Case A: the retain KL paid to bring {label} to the retrained model's forget KL "
            f"({', '.join(f'{(t1, t2)[i]:.3g}' for i in which)}) is smaller for SimNPO: SimNPO / NPO <= "
            f"{STUDY[key]:g} (declared before the run; the study: {study}).",
            [check], ["ratio " + _seeds_text(per, per <= STUDY[key])], {"per_seed_ratio": per}, _STUDY_REF))
    return claims


def _a_forget2_share(arrays) -> Claim:
    npo, sim, _, _ = _case_runs(arrays, "A")
    r_star = STUDY["a_retain_kl"]

    (npo_iv, pn), (sim_iv, ps) = (single(lambda t: a_forget2_share(t, r_star, np.inf), npo),
                                  single(lambda t: a_forget2_share(t, r_star, -np.inf), sim))
    checks = [
        Check(f"NPO forget-2 share at retain KL {r_star:g}", npo_iv, STUDY["a_forget2_share_npo"], "below"),
        Check(f"SimNPO forget-2 share at retain KL {r_star:g}", sim_iv, STUDY["a_forget2_share_simnpo"], "above"),
    ]
    return _study_claim(
        "markov.a_forget2_share",
        f"Case A: at retain KL {r_star:g}, NPO neglects the short forget-2 (its share of the forget-KL increase "
        f"below {STUDY['a_forget2_share_npo']:g}) while SimNPO does not (above {STUDY['a_forget2_share_simnpo']:g}) "
        "(declared; the study: 0.08 vs 0.72). No matched point (a trajectory starting above that retain KL or never "
        "reaching it) is a failure, shown as +-inf.",
        checks, ["NPO share " + _seeds_text(pn, pn < STUDY["a_forget2_share_npo"]),
                 "SimNPO share " + _seeds_text(ps, ps > STUDY["a_forget2_share_simnpo"])],
        {"npo_share": pn, "simnpo_share": ps, "reference_retain_kl": float(arrays["A"]["reference_kl_true"][0])},
        _STUDY_REF)


def _a_forget1_npo_cheaper(arrays) -> Claim:
    npo, sim, t1, _ = _case_runs(arrays, "A")
    interval, per = paired(lambda n, s: a_forget1_gap(n, s, t1), npo, sim)
    check = Check("SimNPO - NPO retain KL to reach the forget-1 target", interval, 0.0, "above")
    return _study_claim(
        "markov.a_forget1_npo_cheaper",
        "Case A: NPO reaches the forget-1 target at a lower retain KL than SimNPO (declared; the study: 0.031 vs "
        "0.075; a reallocation of effort, not SimNPO winning outright).",
        [check], ["SimNPO - NPO " + _seeds_text(per, per > 0)], {"per_seed_gap": per}, _STUDY_REF)


def markov_claims(config: dict, arrays: dict) -> list[Claim]:
    """The claims of the ``markov`` experiment, each stating how it is decided."""
    return (_collapse_claims(config, arrays) + [_laws_claim(config, arrays)] + _study_claims(config, arrays)
            + eps_map.map_claims(config, arrays))
