"""Claims of the ``tutorial`` experiment: its two tables agree with the closed forms they teach.

Both are consistency checks of single deterministic runs (no seeds): GA's speed in the 2-D
race against ``eta ||mean_i s_i x_i||``, and the first-passage times of section 4 of the
tutorial against Theorem 2's closed forms.
"""

from __future__ import annotations

import numpy as np

from theory.claims import Claim

RATE_TOL = 1e-3
"""``tutorial.ga_rate``: GA's measured speed is within 0.1% of ``eta ||mean_i s_i x_i||`` (the
prediction is exact once every forget example has probability ~0; a round number)."""

TIME_TOL = 0.1
"""``tutorial.crossing_times``: measured first-passage times within 10% of Theorem 2's closed
forms (which drop O(1) terms, so they are asymptotic; a round number) ..."""

TIME_FROM = 300
"""... for every distance whose predicted time is at least this many steps (the closed forms
neglect the first steps' transients, tens of steps here); a distance predicted beyond the run
must not be reached."""

__all__ = ["tutorial_claims", "answers_table", "measured_ga_rate", "RATE_TOL", "TIME_TOL", "TIME_FROM"]


def measured_ga_rate(steps, distance) -> float:
    """GA's speed over the second half of a run: ``(d(T) - d(T/2)) / (T - T/2)``."""
    steps, distance = np.asarray(steps), np.asarray(distance)
    half = int(np.searchsorted(steps, steps[-1] / 2))
    return float((distance[-1] - distance[half]) / (steps[-1] - steps[half]))


def _ga_rate(config: dict, a: dict) -> Claim:
    r = config["race"]
    measured = measured_ga_rate(a["race"]["steps"], a["race"]["distance"][0])
    predicted = float(a["race"]["predicted_ga_rate"])
    err = abs(measured / predicted - 1)
    return Claim(
        id="tutorial.ga_rate",
        kind="consistency",
        paper_ref="Theorem 2 (GA's linear divergence)",
        statement=(f"In the tutorial's 2-D race ({r['n_forget']} forget points, eta {r['eta']:g}, {r['steps']} steps), "
                   "||theta - theta_ref|| under GA grows over the second half at eta ||mean_i s_i x_i|| "
                   "(s_i = 2 y_i - 1: the gradient of log pi once every forget probability is ~0), "
                   f"within {RATE_TOL:.1%}."),
        measured=f"{measured:.6f} per step (predicted {predicted:.6f}, error {err:.1e})",
        verdict=bool(err <= RATE_TOL),
        values={"measured": measured, "predicted": predicted},
    )


def _crossing_times(config: dict, a: dict) -> Claim:
    labels = [str(x) for x in a["thm2"]["labels"]]
    dist, measured, predicted = a["thm2"]["distances"], a["thm2"]["measured"], a["thm2"]["predicted"]
    steps = int(a["thm2"]["steps"])
    parts, ok, checked = [], True, 0
    for j, label in enumerate(labels):
        for k, D in enumerate(dist):
            p, m = float(predicted[j, k]), int(measured[j, k])
            if p > steps:  # beyond the run: must not be reached
                ok &= m == -1
                parts.append(f"{label} D={D:g}: predicted {p:.3g} > {steps}, measured {'not reached' if m < 0 else m}")
                checked += 1
            elif p >= TIME_FROM:
                err = abs(m / p - 1) if m > 0 else np.inf
                ok &= bool(err <= TIME_TOL)
                parts.append(f"{label} D={D:g}: {m} vs {p:.0f} ({err:.1%})")
                checked += 1
    t = config["thm2"]
    return Claim(
        id="tutorial.crossing_times",
        kind="consistency",
        paper_ref="Theorem 2 (time to reach a distance, exponential in beta D for NPO)",
        statement=(f"The tutorial's table of first-passage times ({t['n_f']} orthogonal forget rows in d = {t['d']}, "
                   f"GA and NPO at beta {', '.join(f'{b:g}' for b in t['betas'])}, eta {t['eta']:g}, {steps} steps): "
                   f"every time Theorem 2 predicts at {TIME_FROM} steps or more is measured within {TIME_TOL:.0%}, "
                   "and every distance predicted beyond the run is not reached."),
        measured="; ".join(parts),
        verdict=bool(ok and checked > 0),
        values={"checked": checked},
    )


def tutorial_claims(config: dict, arrays: dict) -> list[Claim]:
    """The tutorial's two consistency checks."""
    return [_ga_rate(config, arrays), _crossing_times(config, arrays)]


def answers_table(config: dict, arrays: dict) -> dict[str, str]:
    """The report's table of the small transformer's greedy answers after each method."""
    methods = [str(m) for m in arrays["lm"]["methods"]]
    lines = ["| question | truth | before | " + " | ".join(methods) + " |", "|---|---|---|" + "---|" * len(methods)]
    for g, q in enumerate(arrays["lm"]["questions"]):
        cells = [str(q), str(arrays["lm"]["truths"][g]), str(arrays["lm"]["reference_answers"][g])]
        cells += [str(arrays["lm"]["answers"][c, g]) or "(nothing)" for c in range(len(methods))]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lm = config["lm"]
    intro = (f"The tutorial's transformer after {lm['steps']} unlearning steps on the {lm['split']}% forget split: "
             "greedy answers to forget questions, before unlearning and after each method.")
    return {"Tutorial: answers after unlearning": intro + "\n\n" + "\n".join(lines)}
