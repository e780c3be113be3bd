"""The SimNPO beta x eps map of the Markov study: where SimNPO's advantage comes from.

The study's run script launches only NPO (beta 1); SimNPO's beta is recorded nowhere. Run with
its committed code at beta 1, SimNPO's gradients are far smaller than NPO's, yet the
``transformers`` AdamW divides each step by ``sqrt(v) + eps`` (eps 1e-6 on the un-corrected
second moment), so SimNPO may take full Adam steps; at a larger beta its gradients may fall
below eps and its steps become eps-dominated and slow. The map measures this: each case runs
NPO (beta 1) and SimNPO at every map beta under every eps (:func:`~.config.map_settings`), with
the study's measures of every cell (:mod:`.measures`) and what the optimizer did
(:data:`~.adam_stats.ADAM_STATS`).

Readings of a cell (SimNPO at beta ``b`` and eps ``e``, against NPO at the same eps, paired
seeds, 95% bootstrap intervals over seeds):

* ``speed``: SimNPO's / NPO's steps to retain KL :data:`SPEED_LEVEL` (above 1: NPO faster);
* ``b_cost``, ``b_share``: the case-B trade-off as the claims ``markov.b_forget1_cost`` and
  ``markov.b_forget2_share`` measure it;
* ``a_short``, ``a_both``, ``a_share_npo``, ``a_share_sim``, ``a_forget1``: the case-A
  measures of the other four study claims.

Three claims (kind ``extension``; thresholds and the choice rule declared before the run):
``markov.simnpo_faster_at_beta1``, ``markov.study_reproduced_at_beta`` and
``markov.advantage_rests_on_eps`` (:func:`map_claims`); :func:`map_table` is the report's table.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from synthetic.worlds.markov.measures import (STUDY, a_cost_ratio, a_forget1_gap, a_forget2_share,
                                              b_forget1_cost_ratio, b_forget2_share_gap, paired, single, speed_ratio,
                                              steps_to)
from theory.claims import Check, Claim, combine

__all__ = ["SPEED_LEVEL", "FASTER", "cells", "setting_index", "reading", "chosen_beta", "featured_beta", "map_claims", "map_table",
           "adam_summary"]

SPEED_LEVEL = 0.1
"""The retain KL at which per-step speed is read: the study's figure reaches it in 5.3 steps
with NPO and 23.6 with SimNPO (case B)."""

FASTER = 3.0
"""``markov.study_reproduced_at_beta``: NPO at least 3x faster per step (the study's figures:
3.5-4.5x; 23.6 / 5.3 = 4.5 in case B), declared before the run."""

_REF = "SimNPO study (Fan et al. 2024), synthetic experiment; its code's optimizer"


def _settings(arrays) -> list[tuple[str, float, float]]:
    m = arrays["map"]
    return [(str(n), float(b), float(e)) for n, b, e in zip(m["methods"], m["betas"], m["eps"])]


def cells(arrays) -> list[tuple[float, float]]:
    """``(beta, eps)`` of every SimNPO cell of the map, in the grid's order (eps outer)."""
    return [(b, e) for n, b, e in _settings(arrays) if n == "SimNPO"]


def setting_index(arrays, name: str, beta: float, eps: float) -> int:
    """The index of setting ``(name, beta, eps)`` in the map's arrays (``ValueError`` naming it if
    the map has no such setting)."""
    settings = _settings(arrays)
    if (name, float(beta), float(eps)) not in settings:
        raise ValueError(f"the map has no setting {name} at beta {beta:g}, eps {eps:g}")
    return settings.index((name, float(beta), float(eps)))


def _trio(arrays, case, name, beta, eps):
    i = setting_index(arrays, name, beta, eps)
    c = arrays["map"][case]
    return tuple(np.asarray(c[f"kl_true_{g}"][i], float) for g in ("retain", "forget1", "forget2"))


def _npo_beta(arrays) -> float:
    return next(b for n, b, _ in _settings(arrays) if n == "NPO")


def reading(config, arrays, beta: float, eps: float) -> dict:
    """The readings of the SimNPO cell ``(beta, eps)`` against NPO at ``eps``: ``{name: (interval,
    per_seed)}`` for ``speed`` and, per case present, the study's measures; plus ``steps``:
    the seed-mean steps to retain KL :data:`SPEED_LEVEL` of NPO and SimNPO (case B)."""
    steps = np.asarray(arrays["steps"], float)
    out = {}
    nb = _npo_beta(arrays)
    if "B" in arrays["map"]:
        npo, sim = _trio(arrays, "B", "NPO", nb, eps), _trio(arrays, "B", "SimNPO", beta, eps)
        t1 = float(arrays["B"]["retrained_kl_true"][1])
        out["speed"] = paired(lambda n, s: speed_ratio(steps, n[0], s[0], SPEED_LEVEL), npo, sim)
        out["steps"] = {m: steps_to(steps, np.mean(t[0], axis=0), SPEED_LEVEL) for m, t in (("NPO", npo), ("SimNPO", sim))}
        out["b_cost"] = paired(lambda n, s: b_forget1_cost_ratio(n, s, t1), npo, sim)
        out["b_share"] = paired(lambda n, s: b_forget2_share_gap(n, s, t1), npo, sim)
    if "A" in arrays["map"]:
        npo, sim = _trio(arrays, "A", "NPO", nb, eps), _trio(arrays, "A", "SimNPO", beta, eps)
        t1, t2 = (float(x) for x in arrays["A"]["retrained_kl_true"][1:])
        r_star = STUDY["a_retain_kl"]
        out["a_short"] = paired(lambda n, s: a_cost_ratio(n, s, t1, t2, (1,)), npo, sim)
        out["a_both"] = paired(lambda n, s: a_cost_ratio(n, s, t1, t2, (0, 1)), npo, sim)
        out["a_share_npo"] = single(lambda t: a_forget2_share(t, r_star, np.inf), npo)
        out["a_share_sim"] = single(lambda t: a_forget2_share(t, r_star, -np.inf), sim)
        out["a_forget1"] = paired(lambda n, s: a_forget1_gap(n, s, t1), npo, sim)
    return out


def _order_check(r: dict, label: str) -> Check:
    return Check(f"{label}SimNPO / NPO steps to retain KL {SPEED_LEVEL:g}", r["speed"][0], FASTER, "above")


def _tradeoff_checks(r: dict, label: str) -> list[Check]:
    return [Check(f"{label}SimNPO / NPO retain KL to reach the forget-1 target", r["b_cost"][0],
                  STUDY["b_forget1_cost"], "below"),
            Check(f"{label}NPO - SimNPO forget-2 share at NPO's forget-1 cost", r["b_share"][0],
                  STUDY["b_forget2_share"], "above")]


def _label(beta: float, eps: float) -> str:
    return f"SimNPO beta {beta:g}, eps {eps:g}: "


def _study_checks(config, arrays, readings: Optional[dict] = None) -> list[tuple[float, list[Check]]]:
    """``[(beta, [order, forget-1 cost, forget-2 share checks])]`` of every map beta under the
    study's eps, in increasing beta."""
    eps = float(config["unlearn"]["eps"])
    out = []
    for beta in sorted(b for b, e in cells(arrays) if e == eps):
        r = readings[(beta, eps)] if readings else reading(config, arrays, beta, eps)
        out.append((beta, [_order_check(r, _label(beta, eps)), *_tradeoff_checks(r, _label(beta, eps))]))
    return out


def chosen_beta(config, arrays, readings: Optional[dict] = None) -> Optional[float]:
    """The smallest map beta at which, under the study's eps, NPO is at least :data:`FASTER`
    times faster per step and the case-B trade-off holds (every check passes); ``None`` if
    there is none. The rule of ``markov.study_reproduced_at_beta``, declared before the run."""
    return next((b for b, checks in _study_checks(config, arrays, readings)
                 if all(c.verdict == "pass" for c in checks)), None)


def featured_beta(config, arrays, readings: Optional[dict] = None) -> tuple[Optional[float], str]:
    """The SimNPO beta the map's last claim and figures read: ``(beta, "reproduced")`` at
    :func:`chosen_beta`; else ``(beta, "candidate")`` at the smallest beta none of whose checks
    fails (the seeds cannot tell whether the figure appears there); else ``(None, "none")``.
    (The candidate fallback was added after the first full run, in which no beta passed every
    check.)"""
    per_beta = _study_checks(config, arrays, readings)
    beta = next((b for b, checks in per_beta if all(c.verdict == "pass" for c in checks)), None)
    if beta is not None:
        return beta, "reproduced"
    beta = next((b for b, checks in per_beta if all(c.verdict != "fail" for c in checks)), None)
    return (beta, "candidate") if beta is not None else (None, "none")


def _steps_text(r: dict) -> str:
    s = r["steps"]
    return f"steps to retain KL {SPEED_LEVEL:g}: NPO {s['NPO']:.3g}, SimNPO {s['SimNPO']:.3g}"


def map_claims(config, arrays) -> list[Claim]:
    """The map's three claims (none when the results hold no map or no case B)."""
    if "map" not in arrays or "B" not in arrays["map"]:
        return []
    u = config["unlearn"]
    eps0, beta0 = float(u["eps"]), float(u["beta"])
    readings = {cell: reading(config, arrays, *cell) for cell in cells(arrays)}
    return [_faster_at_beta1(readings[(beta0, eps0)], beta0, eps0), *_reproduced_and_eps(config, arrays, readings)]


def _faster_at_beta1(r: dict, beta: float, eps: float) -> Claim:
    check = Check(f"SimNPO / NPO steps to retain KL {SPEED_LEVEL:g}", r["speed"][0], 1.0, "below")
    per = r["speed"][1]
    return Claim.decided(
        id="markov.simnpo_faster_at_beta1", kind="extension", paper_ref=_REF,
        statement=(f"With the study's committed code's settings (SimNPO beta {beta:g}, the transformers AdamW's eps "
                   f"{eps:g}), SimNPO reaches retain KL {SPEED_LEVEL:g} in fewer steps than NPO (case B): the ratio of "
                   "their steps (interpolated between records; a level never reached is inf) is below 1, decided on "
                   "the seed-mean curves with a 95% bootstrap interval over seeds (paired). The study's figure shows "
                   "the opposite order (NPO 5.3 steps, SimNPO 23.6)."),
        measured=f"{_steps_text(r)}; {check.text()} | per seed {', '.join(f'{v:.3g}' for v in per)}",
        checks=[check], values={"steps": r["steps"], "per_seed_ratio": per},
    )  # fmt: skip


def _reproduced_and_eps(config, arrays, readings) -> list[Claim]:
    eps0 = float(config["unlearn"]["eps"])
    others = sorted({e for _, e in cells(arrays) if e != eps0})
    per_beta = _study_checks(config, arrays, readings)
    beta, status = featured_beta(config, arrays, readings)
    verdict = {"reproduced": "pass", "candidate": "inconclusive", "none": "fail"}[status]
    interval = {c.quantity: c.to_json() for _, checks in per_beta for c in checks}
    measured = " || ".join(f"beta {b:g}: {_steps_text(readings[(b, eps0)])}; " + "; ".join(c.text() for c in checks)
                           for b, checks in per_beta)
    head = {"reproduced": f"reproduced at SimNPO beta {beta:g}" if beta is not None else "",
            "candidate": f"no beta passes every check; at SimNPO beta {beta:g} none fails (the seeds cannot tell)"
            if beta is not None else "",
            "none": "reproduced at no beta of the map (a check fails at every beta)"}[status]
    reproduced = Claim(
        id="markov.study_reproduced_at_beta", kind="extension", paper_ref=_REF, verdict=verdict, interval=interval,
        statement=(f"There is a SimNPO beta in the map ({', '.join(f'{b:g}' for b, _ in per_beta)}; the study records "
                   f"none) at which, with the study's eps {eps0:g}, the study's case-B figure appears: NPO at least "
                   f"{FASTER:g}x faster per step (SimNPO / NPO steps to retain KL {SPEED_LEVEL:g} above {FASTER:g}; the "
                   f"study: 23.6 / 5.3 = 4.5) and its trade-off as the claims markov.b_forget1_cost (SimNPO / NPO cost "
                   f"<= {STUDY['b_forget1_cost']:g}) and markov.b_forget2_share (share gap >= "
                   f"{STUDY['b_forget2_share']:g}) declare it. Passes when at some beta every check's 95% bootstrap "
                   "interval over seeds clears its threshold (the smallest such beta is reported; rule declared before "
                   "the run); fails when at every beta some check's interval lies on the wrong side; inconclusive "
                   "otherwise. Searching over the map's betas gives the claim more than one chance; every beta's "
                   "intervals are reported."),
        measured=head + " || " + measured,
        values={"beta": beta, "status": status,
                "per_beta": {f"{b:g}": {c.quantity: c.verdict for c in checks} for b, checks in per_beta}},
    )  # fmt: skip
    return [reproduced, _rests_on_eps(readings, beta, status, eps0, others)]


def _part(verdict_holds: str) -> str:
    return {"pass": "holds", "fail": "gone"}.get(verdict_holds, "undecided")


def _rests_on_eps(readings, beta, status, eps0, others) -> Claim:
    statement = (
        "SimNPO's advantage in the study's figure rests on the optimizer's eps: at the beta where the study's figure "
        f"appears (markov.study_reproduced_at_beta), with a smaller eps ({', '.join(f'{e:g}' for e in others)}) both "
        f"the per-step order and the trade-off are gone: the interval of SimNPO / NPO steps to retain KL "
        f"{SPEED_LEVEL:g} lies below {FASTER:g}, and the case-B trade-off fails (at least one of its two checks, as "
        "declared, has its interval on the wrong side of the threshold). Fails when the order and the trade-off both "
        "still hold; inconclusive otherwise. When no beta passes but one has no failing check (a candidate), the claim "
        "is read there and cannot pass; with no candidate it is inconclusive (nothing to remove).")
    if beta is None or not others:
        return Claim(id="markov.advantage_rests_on_eps", kind="extension", paper_ref=_REF, verdict="inconclusive",
                     statement=statement, measured="no beta of the map reproduced the study's figure at eps "
                     f"{eps0:g}, so there is no advantage to remove" if beta is None else "the map has no other eps",
                     values={"beta": beta})
    eps = others[0]
    r0, r1 = readings[(beta, eps0)], readings[(beta, eps)]
    order = Check(f"{_label(beta, eps)}SimNPO / NPO steps to retain KL {SPEED_LEVEL:g}", r1["speed"][0], FASTER,
                  "below")
    trade = _tradeoff_checks(r1, _label(beta, eps))
    trade_holds = combine(*(c.verdict for c in trade))  # the trade-off holds only if both checks pass
    order_holds = {"pass": "fail", "fail": "pass"}.get(order.verdict, "inconclusive")
    if order_holds == "fail" and trade_holds == "fail":
        verdict = "pass" if status == "reproduced" else "inconclusive"
    elif order_holds == "pass" and trade_holds == "pass":
        verdict = "fail"
    else:
        verdict = "inconclusive"
    where = f"SimNPO beta {beta:g} ({'where the figure appears' if status == 'reproduced' else 'the candidate'})"
    parts = (f"read at {where}, eps {eps0:g} -> {eps:g}: the per-step order is {_part(order_holds)} (SimNPO / NPO steps "
             f"{r0['speed'][0].estimate:.3g} -> {r1['speed'][0].estimate:.3g}); the trade-off is {_part(trade_holds)} "
             f"(forget-1 cost ratio {r0['b_cost'][0].estimate:.3g} -> {r1['b_cost'][0].estimate:.3g}, forget-2 share gap "
             f"{r0['b_share'][0].estimate:.3g} -> {r1['b_share'][0].estimate:.3g})")
    checks = [order, *trade]
    return Claim(
        id="markov.advantage_rests_on_eps", kind="extension", paper_ref=_REF, verdict=verdict,
        interval={c.quantity: c.to_json() for c in checks}, statement=statement,
        measured=f"{parts}; {_steps_text(r1)} at eps {eps:g}; " + "; ".join(c.text() for c in checks),
        note=f"Part by part, {parts}.",
        values={"beta": beta, "status": status, "eps": eps, "order": _part(order_holds), "tradeoff": _part(trade_holds),
                "speed": [r0["speed"][0].estimate, r1["speed"][0].estimate],
                "b_cost": [r0["b_cost"][0].estimate, r1["b_cost"][0].estimate],
                "b_share": [r0["b_share"][0].estimate, r1["b_share"][0].estimate]},
    )  # fmt: skip


def adam_summary(arrays, case: str = "B") -> dict:
    """Per setting of the map, ``(label, {stat: seed-mean over steps 1..E})`` of
    :data:`~.adam_stats.ADAM_STATS` (the medians over steps of the seed means), for the report."""
    m = arrays["map"][case]
    out = {}
    for i, (n, b, e) in enumerate(_settings(arrays)):
        out[(n, b, e)] = {k: float(np.median(np.mean(np.asarray(m[k][i], float), axis=0)[1:]))
                          for k in ("grad_norm", "update_norm", "sqrt_nu_rms", "eps_dominated")}
    return out


def _cell(iv_per, fmt=".3g") -> str:
    iv = iv_per[0]
    return f"{iv.estimate:{fmt}} [{iv.low:{fmt}}, {iv.high:{fmt}}]"


def map_table(config, arrays) -> dict[str, str]:
    """The report's table of the map: every SimNPO cell against NPO at its eps, with the
    intervals of the study's measures and the optimizer's state."""
    if "map" not in arrays or "B" not in arrays["map"]:
        return {}
    nb = _npo_beta(arrays)
    adam = adam_summary(arrays)
    head = ("| eps | SimNPO beta | steps to retain KL 0.1: NPO / SimNPO | SimNPO / NPO steps | B: forget-1 cost ratio "
            "(<= 0.85) | B: forget-2 share gap (>= 0.1) |")
    rows = [head, "|---|---|---|---|---|---|"]
    has_a = "A" in arrays["map"]
    if has_a:
        rows[0] += (" A: short cost ratio (<= 0.5) | A: both cost ratio (<= 0.7) | A: share NPO / SimNPO at 0.03 | "
                    "A: forget-1 cost, SimNPO - NPO (> 0) |")
        rows[1] += "---|---|---|---|"
    rows[0] += " SimNPO: grad norm, eps-dominated share | NPO: grad norm, eps-dominated share |"
    rows[1] += "---|---|"
    for beta, eps in cells(arrays):
        r = reading(config, arrays, beta, eps)
        row = (f"| {eps:g} | {beta:g} | {r['steps']['NPO']:.3g} / {r['steps']['SimNPO']:.3g} | {_cell(r['speed'])} | "
               f"{_cell(r['b_cost'])} | {_cell(r['b_share'])} |")
        if has_a:
            row += (f" {_cell(r['a_short'])} | {_cell(r['a_both'])} | {r['a_share_npo'][0].estimate:.2g} / "
                    f"{r['a_share_sim'][0].estimate:.2g} | {_cell(r['a_forget1'], '.2g')} |")
        s, n = adam[("SimNPO", beta, eps)], adam[("NPO", nb, eps)]
        row += (f" {s['grad_norm']:.2g}, {s['eps_dominated']:.0%} | {n['grad_norm']:.2g}, {n['eps_dominated']:.0%} |")
        rows.append(row)
    text = ("Every SimNPO cell of the map against NPO (beta "
            f"{nb:g}) under the same eps, seed means with 95% bootstrap intervals over seeds (paired). The optimizer "
            "columns are medians over the 50 steps of the seed-mean gradient norm and of the share of coordinates "
            "whose sqrt(v) is below eps (there Adam's step is eps-dominated). inf: a target or level never reached "
            "within the run.\n\n" + "\n".join(rows))
    return {"SimNPO beta x eps map": text}
