"""Figures 3, 4 and 9 of the paper's section 4 and the grid-search figure, from recorded arrays.

Each function takes the arrays of :func:`~synthetic.worlds.section4.run.run_grid_experiment`
(``fig4`` and ``fig9`` take the ``run_fig4`` results, ``{"alpha1": ..., "alpha0": ...}``) and
returns a matplotlib Figure; the ``*_figures`` functions are what the experiments register. Nothing here trains or samples: curves are seed means
(NaN-safe, runs that diverged drop out) with a band of +- one standard error over seeds.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from figures.style import beta_colors, heatmap, method_color, plot_band, style_context, uses_beta
from synthetic.analysis import finite_seed_mean, pareto_frontier
from synthetic.worlds.section4.claims import FORGET_THRESHOLD, FORGET_WITHIN, best_settings, setting_scores

__all__ = ["fig3", "fig4", "fig9", "gridsearch", "fig4_figures", "fig9_figures", "fig3_figures", "gridsearch_figures"]


FORGET_LABEL = r"forget distance  $E_{FG}\,KL(\pi_{retr}\,\|\,\pi_\theta)$"
RETAIN_LABEL = r"retain distance  $E_{RT}\,KL(\pi_{retr}\,\|\,\pi_\theta)$"
FORGET_KL_LABEL = r"forget KL  $E_{FG}\,KL(\pi_{ref}\,\|\,\pi_\theta)$"
STEP_LABEL = "step (full-batch gradient descent)"

_REQUIRED = ("steps", "forget_distance", "retain_distance", "setting_method")


def _alphas(results: dict, name: str) -> tuple[dict, dict]:
    """The alpha = 1 and alpha = 0 grids of ``run_fig4`` results (a ValueError naming what lacks)."""
    missing = [k for k in ("alpha1", "alpha0") if k not in results]
    if missing:
        raise ValueError(f"{name}: results lack {missing} (expected run_fig4 results, {{'alpha1': ..., 'alpha0': ...}})")
    return results["alpha1"], results["alpha0"]


def _check(a: dict, name: str, extra: tuple = ()) -> None:
    missing = [k for k in _REQUIRED + tuple(extra) if k not in a]
    if missing:
        raise ValueError(f"{name}: arrays lack keys {missing} (expected run_grid_experiment arrays)")
    shape = np.shape(a["forget_distance"])
    if len(shape) != 3 or shape[1] != len(a["setting_method"]) or shape[2] != len(a["steps"]):
        raise ValueError(
            f"{name}: forget_distance must have shape (seeds, settings={len(a['setting_method'])}, "
            f"evaluations={len(a['steps'])}), got {shape}"
        )
    for m in a["setting_method"]:
        method_color(str(m))  # ValueError for an unknown method name


def _methods(a: dict) -> dict[str, int]:
    """Method name -> its first setting index, in the order of the settings."""
    out: dict[str, int] = {}
    for c, m in enumerate(a["setting_method"]):
        out.setdefault(str(m), c)
    return out


def _settings_text(a: dict) -> str:
    """'GA, GA+RT, IDK+RT: lr 5e-4; NPO, NPO+RT: lr 5e-3, beta 1; ...' from the setting arrays."""
    groups: dict[str, list[str]] = {}
    for m, c in _methods(a).items():
        text = f"lr {a['setting_learning_rate'][c]:g}" if "setting_learning_rate" in a else ""
        if uses_beta(m) and "setting_beta" in a:
            text += f", β {a['setting_beta'][c]:g}"
        groups.setdefault(text, []).append(m)
    return "; ".join(f"{', '.join(ms)}: {text}" for text, ms in groups.items())


def _n_seeds(a: dict) -> str:
    """``"5 seeds"`` (``"1 seed"``)."""
    n = int(np.shape(a["forget_distance"])[0])
    return f"{n} seed" + ("s" if n != 1 else "")


def _over_seeds(a: dict) -> str:
    """``"mean ± s.e. over 5 seeds"``, or ``"1 seed"`` (one run has no spread to show)."""
    one = int(np.shape(a["forget_distance"])[0]) == 1
    return _n_seeds(a) if one else f"mean ± s.e. over {_n_seeds(a)}"


def _log_axes(ax, x=False) -> None:
    ax.set_yscale("log")
    if x:
        ax.set_xscale("log")


def _plot_frontier(ax, fd_E, rd_E, color, label, *, order=0, light_alpha=0.35):
    """A method's seed-mean trajectory (thin, light) and its Pareto frontier (bold).

    Frontiers of different methods can coincide (GA's and NPO's do at alpha = 1), so the
    ``order``-th one drawn is thinner than the previous: every colour stays visible.
    """
    ok = np.isfinite(fd_E) & np.isfinite(rd_E) & (fd_E > 0) & (rd_E > 0)
    ax.plot(fd_E[ok], rd_E[ok], color=color, lw=0.8, alpha=light_alpha, label="_trajectory")
    pf, pr = pareto_frontier(fd_E[ok], rd_E[ok])
    # a path that only ever improves both distances (NPO+RT's, often) has one point as its
    # frontier, its end: a bold line of one point is invisible, so it gets a dot
    marker = {"marker": "o", "ms": 7} if len(pf) == 1 else {}
    (line,) = ax.plot(pf, pr, color=color, lw=max(3.6 - 0.4 * order, 1.2), label=label, solid_capstyle="butt",
                      **marker)
    return line


def _mark_start(ax, a: dict):
    """The reference model, where every trajectory starts (seed-mean distances at step 0)."""
    f0 = finite_seed_mean(a["forget_distance"][:, 0, 0])
    r0 = finite_seed_mean(a["retain_distance"][:, 0, 0])
    (star,) = ax.plot([f0], [r0], marker="*", ms=11, color="black", ls="none", zorder=5,
                      label="start: reference model")
    return star


def _shared_legend(fig, ax, extra=(), ncol=None):
    handles, labels = ax.get_legend_handles_labels()
    handles, labels = list(handles) + [h for h, _ in extra], list(labels) + [l for _, l in extra]
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol or len(labels),
               handlelength=2.2, columnspacing=1.4)


def fig4(arrays: dict, *, threshold: float = FORGET_THRESHOLD) -> Figure:
    """Figure 4 of the paper: the six table-1 methods on the random-features model.

    Panels: (a) forget distance vs step at alpha = 1 with claim (a)'s ``threshold``;
    (b) retain distance vs step at alpha = 1; (c) forget vs retain distance along each
    method's seed-mean trajectory (thin) and its Pareto frontier (bold), from the common start
    at the reference model; (d) alpha = 0, forget (solid) and retain (dashed) distance vs step.
    Seed mean +- standard error over seeds; log distances.

    Args:
      arrays: the results of ``synthetic.worlds.section4.run.run_fig4`` (``{"alpha1": ..., "alpha0": ...}``).
    """
    a1, a0 = _alphas(arrays, "fig4")
    _check(a1, "fig4 alpha1")
    _check(a0, "fig4 alpha0")
    with style_context():
        fig, axes = plt.subplots(1, 4, figsize=(13, 3.9), layout="constrained")
        ax_f, ax_r, ax_p, ax_0 = axes
        for ax in (ax_f, ax_r, ax_0):
            _log_axes(ax)
        _log_axes(ax_p, x=True)
        for j, (m, c) in enumerate(_methods(a1).items()):
            color = method_color(m)
            plot_band(ax_f, a1["steps"], a1["forget_distance"][:, c], color, m)
            plot_band(ax_r, a1["steps"], a1["retain_distance"][:, c], color, m)
            _plot_frontier(ax_p, finite_seed_mean(a1["forget_distance"][:, c]), finite_seed_mean(a1["retain_distance"][:, c]),
                           color, m, order=j)
        star = _mark_start(ax_p, a1)
        ax_f.axhline(threshold, color="black", ls=":", lw=1.1, label="_threshold")
        ax_f.annotate(f"{threshold:g} (claim a)", (1.0, threshold), xycoords=("axes fraction", "data"),
                      xytext=(-2, 3), textcoords="offset points", ha="right", va="bottom", fontsize=7.5)
        for m, c in _methods(a0).items():
            color = method_color(m)
            plot_band(ax_0, a0["steps"], a0["forget_distance"][:, c], color, m)
            plot_band(ax_0, a0["steps"], a0["retain_distance"][:, c], color, "_retain", ls="--", band_alpha=0.08)

        ax_f.set(title="(a) forget distance, α = 1", xlabel=STEP_LABEL, ylabel=FORGET_LABEL)
        ax_r.set(title="(b) retain distance, α = 1", xlabel=STEP_LABEL, ylabel=RETAIN_LABEL)
        ax_p.set(title="(c) Pareto frontier, α = 1 (lower left is better)", xlabel=FORGET_LABEL, ylabel=RETAIN_LABEL)
        ax_0.set(title="(d) α = 0: forget (solid), retain (dashed)", xlabel=STEP_LABEL, ylabel="distance to $\\pi_{retr}$")
        ax_0.legend([Line2D([], [], color="0.3"), Line2D([], [], color="0.3", ls="--")],
                    ["forget distance", "retain distance"], loc="upper left", fontsize=7.5)
        _shared_legend(fig, ax_f, extra=[(Line2D([], [], color="black", ls=":", lw=1.1), f"threshold {threshold:g}"),
                                         (star, star.get_label())])
        fig.suptitle(
            f"Figure 4 (Zhang et al. 2024): unlearning the random-features model ({_over_seeds(a1)}; "
            f"thin line in (c): trajectory, bold: its Pareto frontier)\n"
            f"table 1, α = 1: {_settings_text(a1)}   |   α = 0: {_settings_text(a0)}",
            fontsize=9,
        )
    return fig


def _good_kl_range(kl_CE: np.ndarray, total_CE: np.ndarray, *, slack: float):
    """The forget-KL range of the trajectory points whose total distance is within ``slack``
    times the smallest one, or ``None`` if no point is finite."""
    ok = np.isfinite(kl_CE) & np.isfinite(total_CE) & (kl_CE > 0)
    if not ok.any():
        return None
    near = ok & (total_CE <= slack * np.min(total_CE[ok]))
    return float(np.min(kl_CE[near])), float(np.max(kl_CE[near]))


def fig9(arrays: dict, *, mark_step: int = FORGET_WITHIN, good_slack: float = 2.0) -> Figure:
    """Figure 9 of the paper (appendix B.1): the forget KL ``E_FG[KL(pi_ref || pi_theta)]``.

    Panels: (a) forget KL vs step at alpha = 1; (b) the same at alpha = 0; (c) at alpha = 1,
    the total distance to the retrained model (forget + retain distance, a single score for
    a point of figure 4(c)) against the forget KL along each method's seed-mean trajectory,
    from the reference (KL = 0) to the last step (dot), with ``mark_step`` marked (x). The
    grey span is the forget-KL range of the points whose total distance is within
    ``good_slack`` times the best one. Claim (e): the good models sit at a moderate forget KL;
    GA past ``mark_step`` steps goes too far, IDK+RT stays too near the reference.

    Args:
      arrays: the dict of ``synthetic.worlds.section4.run.run_fig4``.
      mark_step: the step marked on each method's curve in (c).
      good_slack: the tolerance of the grey span in (c).
    """
    a1, a0 = _alphas(arrays, "fig9")
    _check(a1, "fig9 alpha1", ("forget_kl",))
    _check(a0, "fig9 alpha0", ("forget_kl",))
    with style_context():
        fig, (ax_1, ax_0, ax_t) = plt.subplots(1, 3, figsize=(13, 3.9), layout="constrained")
        for ax in (ax_1, ax_0):
            _log_axes(ax)
        _log_axes(ax_t, x=True)
        for ax, a in ((ax_1, a1), (ax_0, a0)):
            for m, c in _methods(a).items():
                plot_band(ax, a["steps"], a["forget_kl"][:, c], method_color(m), m)

        kl = finite_seed_mean(a1["forget_kl"])
        fd, rd = finite_seed_mean(a1["forget_distance"]), finite_seed_mean(a1["retain_distance"])
        total = fd + rd
        steps = np.asarray(a1["steps"])
        k = int(np.argmin(np.abs(steps - mark_step)))
        methods = _methods(a1)
        idx = list(methods.values())
        good = _good_kl_range(kl[idx], total[idx], slack=good_slack)
        if good is not None:
            ax_t.axvspan(*good, color="0.85", alpha=0.6, lw=0, label="_good")
        for m, c in methods.items():
            ok = np.isfinite(kl[c]) & np.isfinite(total[c]) & (kl[c] > 0) & (total[c] > 0)
            color = method_color(m)
            ax_t.plot(kl[c][ok], total[c][ok], color=color, label=m, lw=1.4)
            if ok[k]:
                ax_t.plot(kl[c][k], total[c][k], marker="x", ms=7, mew=1.8, color=color, label="_mark")
            last = np.flatnonzero(ok)
            if last.size:
                ax_t.plot(kl[c][last[-1]], total[c][last[-1]], marker="o", ms=5, color=color, mec="white",
                          mew=0.6, ls="none", label="_end", zorder=4)

        ax_1.set(title="(a) forget KL, α = 1", xlabel=STEP_LABEL, ylabel=FORGET_KL_LABEL)
        ax_0.set(title="(b) forget KL, α = 0", xlabel=STEP_LABEL, ylabel=FORGET_KL_LABEL)
        ax_t.set(title="(c) α = 1: distance to $\\pi_{retr}$ vs forget KL", xlabel=FORGET_KL_LABEL,
                 ylabel="forget + retain distance")
        steps_final = int(steps[-1])
        handles = [Line2D([], [], ls="none", marker="x", color="0.3", mew=1.8),
                   Line2D([], [], ls="none", marker="o", color="0.3", mec="white")]
        labels = [f"step {int(steps[k])}", f"step {steps_final} (end)"]
        if good is not None:
            handles.append(plt.Rectangle((0, 0), 1, 1, color="0.85", alpha=0.6, lw=0))
            labels.append(f"forget KL where forget + retain\n≤ {good_slack:g} × its minimum")
        ax_t.legend(handles, labels, loc="lower left", fontsize=7.5)
        _shared_legend(fig, ax_1)
        fig.suptitle(
            f"Figure 9 (Zhang et al. 2024): forget KL of the figure-4 runs ({_over_seeds(a1)}); "
            "(c) each seed-mean trajectory, from the reference (KL = 0)\n"
            f"table 1, α = 1: {_settings_text(a1)}   |   α = 0: {_settings_text(a0)}",
            fontsize=9,
        )
    return fig


def fig3(arrays: dict) -> Figure:
    """Figure 3 of the paper (Proposition 1): NPO approaches GA as beta -> 0.

    GA (bold, its method colour) and NPO at each beta of the record (a sequential colormap,
    light = small beta), at the recorded learning rate: (a) forget distance and (b) retain
    distance vs step, log y, seed mean +- standard error.

    Args:
      arrays: ``run_grid_experiment`` arrays of ``synthetic.worlds.section4.config.fig3_config`` (GA first,
        then NPO settings); other methods are drawn in their method colour.
    """
    _check(arrays, "fig3", ("setting_beta",))
    a = arrays
    methods = [str(m) for m in a["setting_method"]]
    npo = [c for c, m in enumerate(methods) if m == "NPO"]
    colors = dict(zip(npo, beta_colors([a["setting_beta"][c] for c in npo])))
    lrs = sorted({float(x) for x in a.get("setting_learning_rate", [])})
    with style_context():
        fig, (ax_f, ax_r) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
        for ax, key, ylabel in ((ax_f, "forget_distance", FORGET_LABEL), (ax_r, "retain_distance", RETAIN_LABEL)):
            _log_axes(ax)
            for c, m in enumerate(methods):
                if c in colors:
                    continue
                plot_band(ax, a["steps"], a[key][:, c], method_color(m), m, lw=4.0, alpha=0.75, zorder=2,
                          solid_capstyle="butt", band_alpha=0.12)
            for c in sorted(npo, key=lambda c: a["setting_beta"][c]):
                plot_band(ax, a["steps"], a[key][:, c], colors[c], f"NPO, β = {a['setting_beta'][c]:g}",
                          lw=1.3, zorder=3, band_alpha=0.07)
            ax.set(xlabel=STEP_LABEL, ylabel=ylabel)
        ax_f.set_title("(a) forget distance")
        ax_r.set_title("(b) retain distance")
        ax_r.legend(loc="lower right", ncol=1)
        fig.suptitle(
            f"Figure 3 (Zhang et al. 2024, Proposition 1): NPO → GA as β → 0; learning rate {', '.join(f'{x:g}' for x in lrs)}, "
            f"α = 1, {_over_seeds(a)}",
            fontsize=9,
        )
    return fig


def gridsearch(arrays: dict, best: dict, scores=None, *, heatmap_method: str = "NPO+RT",
               score_label: str = "score") -> Figure:
    """The grid search of section 4: each method's Pareto frontier at its best setting.

    Panel (a): forget vs retain distance (log-log) along the seed-mean trajectory (thin) of
    each method's best setting, its Pareto frontier bold, legend with the setting. Panel (b),
    only if ``scores`` is given: a heatmap of ``scores`` over learning rate x beta for the
    settings of ``heatmap_method``, its best setting outlined (log colour scale when the
    scores are positive and span more than a decade). The title states alpha only if the
    arrays carry an ``alpha`` entry (``run_grid_experiment`` does not record it).

    Args:
      arrays: ``run_grid_experiment`` arrays of a grid (``C`` settings).
      best: method name -> index of its best setting (e.g. ``synthetic.worlds.section4.claims.best_settings``).
      scores: optional ``(C,)`` per-setting score (e.g. the frontier area; lower is better).
      heatmap_method: whose settings the heatmap shows.
      score_label: colorbar label.
    """
    _check(arrays, "gridsearch", ("setting_learning_rate", "setting_beta"))
    a = arrays
    n_settings = len(a["setting_method"])
    for m, c in best.items():
        method_color(str(m))
        if not (0 <= int(c) < n_settings) or str(a["setting_method"][int(c)]) != str(m):
            raise ValueError(f"best[{m!r}] = {c} is not a setting of {m!r} (settings 0..{n_settings - 1})")
    fd, rd = finite_seed_mean(a["forget_distance"]), finite_seed_mean(a["retain_distance"])
    with style_context():
        if scores is None:
            fig, ax_p = plt.subplots(1, 1, figsize=(5.6, 4.2), layout="constrained")
        else:
            scores = np.asarray(scores, float)
            if scores.shape != (n_settings,):
                raise ValueError(f"scores must have shape (settings,) = ({n_settings},), got {scores.shape}")
            if heatmap_method not in {str(m) for m in a["setting_method"]}:
                raise ValueError(f"heatmap_method {heatmap_method!r} has no setting in the grid")
            fig, (ax_p, ax_h) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained",
                                             gridspec_kw={"width_ratios": [1.25, 1]})
        _log_axes(ax_p, x=True)
        for j, (m, c) in enumerate(best.items()):
            c = int(c)
            text = f"lr {a['setting_learning_rate'][c]:g}" + (f", β {a['setting_beta'][c]:g}" if uses_beta(str(m)) else "")
            _plot_frontier(ax_p, fd[c], rd[c], method_color(str(m)), f"{m} ({text})", order=j)
        _mark_start(ax_p, a)
        prefix = "" if scores is None else "(a) "
        ax_p.set(title=f"{prefix}Pareto frontier of each method's best setting", xlabel=FORGET_LABEL, ylabel=RETAIN_LABEL)
        ax_p.legend(loc="best", fontsize=7.5)
        if scores is not None:
            _heatmap(ax_h, fig, a, scores, best.get(heatmap_method), heatmap_method, score_label)
        alpha = f", α = {float(a['alpha']):g}" if "alpha" in a else ""
        fig.suptitle(
            f"Section 4 grid search{alpha}: {n_settings} settings, seed mean over {_n_seeds(a)}\n"
            "thin: trajectory, bold: its Pareto frontier",
            fontsize=9,
        )
    return fig


def _heatmap(ax, fig, a, scores, best_c, method, label):
    rows = [c for c, m in enumerate(a["setting_method"]) if str(m) == method]
    lrs = np.unique(a["setting_learning_rate"][rows])
    betas = np.unique(a["setting_beta"][rows])
    grid = np.full((len(betas), len(lrs)), np.nan)
    for c in rows:
        grid[np.searchsorted(betas, a["setting_beta"][c]), np.searchsorted(lrs, a["setting_learning_rate"][c])] = scores[c]
    finite = grid[np.isfinite(grid)]
    # Scores such as the frontier area span decades (unreached levels count at a cap), so a
    # log colour scale when they are positive and spread out; linear otherwise.
    log = finite.size > 0 and finite.min() > 0 and finite.max() > 10 * finite.min()
    if log:
        norm = LogNorm(finite.min(), finite.max())
    elif finite.size:
        norm = Normalize(finite.min(), finite.max())
    else:
        norm = Normalize(0.0, 1.0)
    best = None
    if best_c is not None:
        best = (np.searchsorted(betas, a["setting_beta"][best_c]), np.searchsorted(lrs, a["setting_learning_rate"][best_c]))
    heatmap(fig, ax, grid, norm=norm, rows=betas, cols=lrs, fmt=lambda v: f"{v:.3g}", label=label, cmap="viridis_r",
            title=f"(b) {method}: {label} per setting (red box: best)", best=best)


def fig4_figures(config: dict, results: dict) -> dict[str, Figure]:
    """The ``fig4`` experiment's figure."""
    return {"fig4": fig4(results)}


def fig9_figures(config: dict, results: dict) -> dict[str, Figure]:
    """The ``fig9`` experiment's figure."""
    return {"fig9": fig9(results)}


def fig3_figures(config: dict, results: dict) -> dict[str, Figure]:
    """The ``fig3`` experiment's figure."""
    return {"fig3": fig3(results)}


def gridsearch_figures(config: dict, results: dict) -> dict[str, Figure]:
    """The ``gridsearch`` experiment's figure: each method's best frontier, NPO+RT's scores."""
    return {"gridsearch": gridsearch(results, best_settings(results), scores=setting_scores(results),
                                     score_label="area under Pareto curve")}
