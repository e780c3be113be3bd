"""The SimNPO study's measures of an unlearning trajectory, as plain functions of its curves.

A trajectory is three curves over the record steps: the per-token KL to the true chains on
the retain, forget-1 and forget-2 evaluation sets (``(retain, forget1, forget2)``, a *trio*).
The study compares methods at **matched retain KL**, with the retrained model's forget KL as
the target:

* the *cost* of a target is the retain KL at the first step the forget KL reaches it (linearly
  interpolated between the two records around the crossing); a target not reached within the
  run is a failure: cost ``inf``;
* the *forget-2 share* at a retain KL ``r*`` is ``dF2 / (dF1 + dF2)``, the increases of the two
  forget KLs from step 0 to the first step the retain KL reaches ``r*`` (interpolated);
* the *steps to* a retain KL is the (interpolated) step at which the retain KL first reaches
  it: the per-step speed the study's figure shows (NPO 5.3 steps to retain KL 0.1, SimNPO 23.6).

The study statistics (:func:`b_forget1_cost_ratio` and the others) compare an NPO trio with a
SimNPO trio. The claims apply them to seed means, resampled over seeds for their intervals
(:mod:`.claims`, and the beta x eps map of :mod:`.eps_map`): one definition for both.
"""

from __future__ import annotations

import numpy as np

from synthetic.analysis import seed_interval

__all__ = ["STUDY", "per_seed", "paired", "single", "first_crossing", "value_at", "target_cost", "forget2_share", "steps_to", "later",
           "b_forget1_cost_ratio", "b_forget2_share_gap", "a_cost_ratio", "a_forget2_share", "a_forget1_gap",
           "speed_ratio"]


STUDY = {
    "b_forget1_cost": 0.85, "b_forget2_share": 0.1, "a_short_cost": 0.5, "a_both_cost": 0.7,
    "a_forget2_share_npo": 0.3, "a_forget2_share_simnpo": 0.5, "a_retain_kl": 0.03,
}  # fmt: skip
"""The thresholds of the six study claims, declared before the run (from the study's figures,
one seed: 0.084 / 0.126 = 0.67; 0.74 vs 0.55; 0.030 / 0.192; 0.075 / 0.19; 0.08 vs 0.72 at
retain KL 0.03; 0.031 vs 0.075)."""


def _crossing_index(y, level: float) -> float:
    """The fractional record index where ``y`` first reaches ``level`` (linear between the two
    records around it; 0 if ``y[0] >= level``; ``inf`` if never, or a non-finite record comes first)."""
    y = np.asarray(y, float)
    for i in range(len(y)):
        if not np.isfinite(y[i]):
            return np.inf
        if y[i] >= level:
            return 0.0 if i == 0 else i - 1 + (level - y[i - 1]) / (y[i] - y[i - 1])
    return np.inf


def _at_index(x, index: float) -> float:
    x = np.asarray(x, float)
    if not np.isfinite(index):
        return np.inf
    i = int(np.floor(index))
    w = index - i
    if i >= len(x) - 1 or w == 0:  # on a record: its value, whatever the next one holds
        return float(x[min(i, len(x) - 1)])
    return float(x[i] + w * (x[i + 1] - x[i]))


def first_crossing(x, y, level: float) -> float:
    """``x`` at the first record where ``y >= level``, linearly interpolated between that record
    and the one before; ``x[0]`` if ``y[0] >= level``; ``inf`` if ``y`` never reaches it (or a
    non-finite record comes first)."""
    return _at_index(x, _crossing_index(y, level))


def value_at(x, y, x_star: float) -> float:
    """``y`` at the first record where ``x >= x_star`` (interpolated as :func:`first_crossing`);
    NaN if ``x`` never reaches ``x_star`` or starts above it (no matched point), or a record of
    ``y`` up to that point is not finite."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if not np.isfinite(x_star) or not np.isfinite(x[0]) or x[0] >= x_star:
        return np.nan
    index = _crossing_index(x, x_star)
    if not np.isfinite(index) or not np.isfinite(y[1 : int(np.ceil(index)) + 1]).all():
        return np.nan
    return _at_index(y, index)


def target_cost(retain, forgets, targets) -> float:
    """The retain KL at the first step every forget KL of ``forgets`` has reached its target
    (each crossing interpolated between records, the latest one taken; ``inf`` if a target is
    never reached)."""
    return _at_index(retain, max(_crossing_index(f, t) for f, t in zip(forgets, targets)))


def forget2_share(retain, forget1, forget2, r_star: float) -> float:
    """``dF2 / (dF1 + dF2)`` from step 0 to the first step the retain KL reaches ``r_star``."""
    d1 = value_at(retain, forget1, r_star) - float(np.asarray(forget1)[0])
    d2 = value_at(retain, forget2, r_star) - float(np.asarray(forget2)[0])
    return float(d2 / (d1 + d2)) if np.isfinite(d1 + d2) and d1 + d2 != 0 else np.nan


def steps_to(steps, retain, level: float) -> float:
    """The step at which ``retain`` first reaches ``level`` (interpolated between records;
    ``inf`` if never within the run)."""
    return first_crossing(steps, retain, level)


def later(cost_a: float, cost_b: float) -> float:
    """``cost_a - cost_b`` where a target never reached counts as failing: ``-inf`` when B never
    reached it (B is not cheaper), ``+inf`` when only A never did."""
    if not np.isfinite(cost_b):
        return -np.inf
    return np.inf if not np.isfinite(cost_a) else cost_a - cost_b


def _or(value: float, undecided: float) -> float:
    """``value``, or ``undecided`` (the failing side) when it is NaN: no matched point is a failure."""
    return undecided if np.isnan(value) else value


# --------------------------------------------------------------------------- the study's statistics
# ``npo`` and ``sim`` are trios (retain, forget1, forget2); ``t1``, ``t2`` the retrained model's
# forget-1 and forget-2 KL (the targets).


def b_forget1_cost_ratio(npo, sim, t1: float) -> float:
    """Case B: SimNPO's / NPO's retain KL to bring forget-1 to its target (``inf`` when SimNPO
    never reaches it)."""
    cs, cn = target_cost(sim[0], [sim[1]], [t1]), target_cost(npo[0], [npo[1]], [t1])
    return np.inf if not np.isfinite(cs) else cs / cn


def b_forget2_share_gap(npo, sim, t1: float) -> float:
    """Case B: NPO's minus SimNPO's forget-2 share at NPO's retain KL when its forget-1 reaches
    the target; no matched point (NPO never reaching the target, SimNPO never reaching that
    retain KL) gives ``-inf``, the failing side."""
    r_star = target_cost(npo[0], [npo[1]], [t1])  # inf if NPO never reaches the target: no matched point
    return _or(forget2_share(*npo, r_star) - forget2_share(*sim, r_star), -np.inf)


def a_cost_ratio(npo, sim, t1: float, t2: float, which=(1,)) -> float:
    """Case A: SimNPO's / NPO's retain KL to bring the forget sets ``which`` (0: forget-1, 1:
    the short forget-2) to their targets (``inf`` when SimNPO never reaches them)."""
    targets = (t1, t2)
    cn = target_cost(npo[0], [npo[1 + i] for i in which], [targets[i] for i in which])
    cs = target_cost(sim[0], [sim[1 + i] for i in which], [targets[i] for i in which])
    return np.inf if not np.isfinite(cs) else cs / cn


def a_forget2_share(trio, r_star: float, undecided: float) -> float:
    """Case A: a method's forget-2 share at retain KL ``r_star``, or ``undecided`` (the failing
    side of the check it feeds) when there is no matched point."""
    return _or(forget2_share(*trio, r_star), undecided)


def a_forget1_gap(npo, sim, t1: float) -> float:
    """Case A: SimNPO's minus NPO's retain KL to reach the forget-1 target (:func:`later`)."""
    return later(target_cost(sim[0], [sim[1]], [t1]), target_cost(npo[0], [npo[1]], [t1]))


def speed_ratio(steps, npo_retain, sim_retain, level: float) -> float:
    """SimNPO's / NPO's steps to retain KL ``level`` (above 1: NPO moves faster per step).
    ``inf`` when only SimNPO never gets there, ``0`` when only NPO never does, NaN when neither."""
    sn, ss = steps_to(steps, npo_retain, level), steps_to(steps, sim_retain, level)
    if not np.isfinite(sn):
        return np.nan if not np.isfinite(ss) else 0.0
    return np.inf if not np.isfinite(ss) else ss / max(sn, 1e-12)


def per_seed(stat, *runs) -> np.ndarray:
    """``stat`` of each seed's curves: ``runs`` are ``(S, E)`` arrays, ``stat`` takes one row of
    each."""
    return np.array([stat(*(r[s] for r in runs)) for s in range(runs[0].shape[0])])


def paired(stat, npo, sim):
    """``(interval, per_seed)`` of ``stat(npo_trio, sim_trio)``: the 95% bootstrap interval over
    seeds of the statistic of the seed-mean trios (the seeds resampled together: NPO and SimNPO
    share each seed's minibatches) and its value on each seed. ``npo`` and ``sim`` are trios of
    ``(S, E)`` runs."""

    def flat(a, b, c, d, e, f):
        return stat((a, b, c), (d, e, f))

    return seed_interval(flat, *npo, *sim), per_seed(flat, *npo, *sim)


def single(stat, runs):
    """``(interval, per_seed)`` of ``stat(trio)`` for one method's trio of ``(S, E)`` runs (as
    :func:`paired`)."""

    def flat(a, b, c):
        return stat((a, b, c))

    return seed_interval(flat, *runs), per_seed(flat, *runs)
