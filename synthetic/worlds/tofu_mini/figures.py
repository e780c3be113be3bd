"""Figures of the ``tofu_mini`` experiment (TOFU in miniature, every method, the collapse of GA).

Each function takes the experiment's config and the results of
:func:`synthetic.worlds.tofu_mini.study.run_study` and returns a matplotlib Figure;
nothing here trains. Forget quality (TOFU's KS p-value) spans decades, so it is drawn on log
axes, floored at :data:`FQ_FLOOR`, and summarised over seeds by its geometric mean where a
single number is shown; model utility by its arithmetic mean.

* :func:`fig5`: the paper's figure 5: forget quality against model utility at each seed's
  peak forget quality, every method, one panel per forget split among 1, 5 and 10% (20% too
  when a config runs it).
* :func:`fig8`: the same on the 50% and 90% splits (the paper's figure 8), scored on the 10%
  split's questions as the paper scores them.
* :func:`trajectories`: the paper's figures 6 and 10: forget quality, model utility and the
  forget KL over the unlearning epochs on one split, every method.
* :func:`guidance`: NPO+RT over beta x learning rate (final forget quality and utility, the
  settings that avoid collapse outlined) and over the retain weight.
* :func:`divergence`: ``||theta_t - theta_ref||`` and the forget NLL of the long
  gradient-descent runs against t and log t with the fitted laws
  (:func:`figures.laws.divergence_laws` on this experiment's long runs).
* :func:`ablation_figure` (experiment ``tofu_mini_ablation``): the two readings of every
  ablation variant, one switched property per row.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from figures.laws import divergence_laws
from figures.style import heatmap, method_color, plot_band, seed_band, style_context
from synthetic.analysis import finite_seed_mean
from synthetic.worlds.tofu_mini.claims import (FQ_THRESHOLD, STABLE_SHARE, UTILITY_SHARE, ablation_readings, peak_index,
                                               splits_of)
from synthetic.worlds.tofu_mini.config import FACTORS, MAIN_SPLIT

__all__ = ["fig5", "fig8", "trajectories", "guidance", "divergence", "all_figures", "peak_points",
           "FQ_FLOOR", "COLLAPSE_UTILITY_FRACTION", "FIG5_SPLITS", "FIG8_SPLITS", "ablation_figure", "ablation_figures"]

FQ_FLOOR = 1e-20
"""Forget quality below this is drawn at it: a KS p-value can underflow to 0, which a log axis
cannot show (and below 1e-20 the exact value says nothing more: the forget set is not forgotten)."""

COLLAPSE_UTILITY_FRACTION = 0.5
"""A setting of the guidance grid "avoids collapse" when its final seed-mean model utility is at
least this fraction of the full (not unlearned) model's utility (``splits/10/full/model_utility``)."""

FIG5_SPLITS = (1, 5, 10, 20)
"""The forget splits (%) of :func:`fig5` (the paper's figure 5 shows 1, 5, 10; 20 when recorded)."""

FIG8_SPLITS = (50, 90)
"""The forget splits (%) of :func:`fig8` (the paper's figure 8)."""

FQ_LABEL = "forget quality (KS p-value, log)"
MU_LABEL = "model utility"
FORGET_KL_LABEL = r"forget KL  $E_{FG}\,KL(\pi_{ref}\,\|\,\pi_\theta)$"

_FULL_STYLE = {"marker": "o", "ms": 15, "mfc": "none", "mec": "0.45", "mew": 1.6, "ls": "none"}
_RETR_STYLE = {"marker": "*", "ms": 15, "mfc": "none", "mec": "0.25", "mew": 1.3, "ls": "none"}
"""The full and the retrained model in :func:`fig5` / :func:`fig8`: large hollow grey markers, so
that a method whose peak is the starting point (the full model) stays visible inside the ring."""


def _split(a: dict, p: int) -> dict:
    if str(p) not in a.get("splits", {}):
        raise ValueError(f"results lack split {p} (expected run_study results; splits {sorted(a.get('splits', {}))})")
    s = a["splits"][str(p)]
    for k in ("methods", "steps", "forget_quality", "model_utility"):
        if k not in s:
            raise ValueError(f"results lack splits/{p}/{k} (expected run_study results)")
    shape = np.shape(s["forget_quality"])
    if len(shape) != 3 or shape[1] != len(s["methods"]) or shape[2] != len(s["steps"]):
        raise ValueError(f"splits/{p}/forget_quality must have shape (seeds, methods={len(s['methods'])}, "
                         f"evaluations={len(s['steps'])}), got {shape}")
    return s


def _floor(fq):
    """Forget quality floored at :data:`FQ_FLOOR` (NaN stays NaN)."""
    fq = np.asarray(fq, float)
    return np.where(np.isnan(fq), np.nan, np.maximum(fq, FQ_FLOOR))


def _geo_mean(values) -> float:
    """Geometric mean of the finite values of ``values`` (floored at :data:`FQ_FLOOR`), NaN if none."""
    v = _floor(values).ravel()
    v = v[np.isfinite(v)]
    return float(np.exp(np.mean(np.log(v)))) if v.size else np.nan


def _bars(center, lo, hi):
    """Error-bar lengths ``[[center - lo], [hi - center]]`` from a range, clipped at 0 (a geometric
    mean of equal values can exceed them by a rounding error); NaN where undefined."""
    center, lo, hi = (np.atleast_1d(np.asarray(v, float)) for v in (center, lo, hi))
    return np.array([np.maximum(center - lo, 0.0), np.maximum(hi - center, 0.0)])


def _plot_geo_band(ax, x, fq_SE, color, label, *, band_alpha: float, **kw):
    """Forget quality on a log axis: the seeds' geometric mean with a band of x/÷ one geometric
    standard error (:func:`~figures.style.seed_band` of log10, floored at :data:`FQ_FLOOR`)."""
    logs = np.log10(_floor(fq_SE))
    mean, lower, upper = seed_band(logs)
    (line,) = ax.plot(x, 10.0**mean, color=color, label=label, **kw)
    if band_alpha > 0 and logs.shape[0] > 1:
        ok = np.isfinite(lower) & np.isfinite(upper)
        ax.fill_between(x, np.where(ok, 10.0**lower, 1.0), np.where(ok, 10.0**upper, 1.0), where=ok, color=color,
                        alpha=band_alpha, linewidth=0, label="_band")
    return line


def _marker(name: str) -> str:
    """A marker per variant, so that methods of one family (one hue) tell apart: plain, +RT, +KL."""
    if name.endswith("+RT"):
        return "s"
    if name.endswith("+KL"):
        return "D"
    return "o"


def _line_style(name: str) -> dict:
    """GA's and NPO's families solid and bold (the paper's comparison), the others dashed and thin."""
    if name.startswith(("GA", "NPO")):
        return {"linestyle": "-", "linewidth": 2.0}
    return {"linestyle": "--", "linewidth": 1.1}


def peak_points(fq_SE, mu_SE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each seed's evaluation of peak forget quality and the values there.

    Args:
      fq_SE, mu_SE: forget quality and model utility, ``(S, E)`` (seeds x evaluations).
    Returns:
      ``(index, fq, mu)``, each ``(S,)``: the first evaluation of the largest finite forget
      quality of each seed (-1 and NaNs for a seed with none finite), its forget quality and
      its utility.
    """
    fq, mu = np.asarray(fq_SE, float), np.asarray(mu_SE, float)
    if fq.ndim != 2 or fq.shape != mu.shape:
        raise ValueError(f"fq_SE and mu_SE must have one shape (seeds, evaluations), got {fq.shape} and {mu.shape}")
    idx = peak_index(fq)  # the claims' choice of each run's peak
    ok = np.isfinite(fq).any(axis=1)
    rows = np.arange(fq.shape[0])
    return (np.where(ok, idx, -1), np.where(ok, fq[rows, idx], np.nan), np.where(ok, mu[rows, idx], np.nan))


def _threshold_line(ax):
    """TOFU's 0.05 as a dashed line (named in each figure's legend, not on the panel, where it would
    cover points)."""
    ax.axhline(FQ_THRESHOLD, color="black", ls="--", lw=1.0, label="_threshold")


def _fq_axis(ax, top: float = 2.0) -> None:
    """Limits of a forget-quality axis that show at least 1 and a decade below 0.05, decades labelled only."""
    lo, hi = ax.get_ylim()
    ax.set_ylim(min(lo, FQ_THRESHOLD / 5), max(hi, top))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _threshold_handle():
    return Line2D([], [], color="black", ls="--", lw=1.0)


def _shared_legend(fig, entries: dict, ncol: int, loc: str = "outside lower center"):
    fig.legend(list(entries.values()), list(entries.keys()), loc=loc, ncol=ncol, handlelength=2.0, columnspacing=1.2)


def _peak_panel(ax, s: dict, p: int, entries: dict) -> None:
    """One split of :func:`fig5` / :func:`fig8`: a point per method, the full and retrained models."""
    ax.set_yscale("log")
    at_start = []
    for c, m in enumerate(str(x) for x in s["methods"]):
        index, fq, mu = peak_points(s["forget_quality"][:, c], s["model_utility"][:, c])
        if np.all(index == 0):
            at_start.append(m)
        ok = np.isfinite(fq) & np.isfinite(mu)
        if not ok.any():
            continue
        fq, mu = _floor(fq[ok]), mu[ok]
        gy, mx = _geo_mean(fq), float(np.mean(mu))
        container = ax.errorbar([mx], [gy], xerr=_bars(mx, mu.min(), mu.max()), yerr=_bars(gy, fq.min(), fq.max()), fmt=_marker(m), ms=6.5,
                                color=method_color(m), mec="white", mew=0.5, elinewidth=0.9, capsize=2,
                                alpha=0.95, label=m, zorder=3)
        entries.setdefault(m, container)
    if "full" in s:
        (h,) = ax.plot([float(s["full"]["model_utility"])], [float(_floor(s["full"]["forget_quality"]))], zorder=4,
                       label="full model (before unlearning)", **_FULL_STYLE)
        entries.setdefault(h.get_label(), h)
    if "retrained" in s:
        (h,) = ax.plot([float(s["retrained"]["model_utility"])], [float(_floor(s["retrained"]["forget_quality"]))], zorder=4,
                       label="retrained model (target)", **_RETR_STYLE)
        entries.setdefault(h.get_label(), h)
    _threshold_line(ax)
    _fq_axis(ax, top=2.5)
    ax.margins(x=0.08)
    if at_start:  # their points sit on the full model's, inside its ring: say who they are
        names = textwrap.fill(", ".join(at_start), 48)
        ax.text(0.02, 0.02, f"peak at step 0 (never above the full model):\n{names}", transform=ax.transAxes,
                fontsize=7, va="bottom", ha="left", bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "0.7",
                                                          "alpha": 0.85})
    n = f", {int(s['n_forget'])} questions" if "n_forget" in s else ""
    ax.set(title=f"forget {p}%{n}", xlabel=MU_LABEL + " (higher is better)", ylabel=FQ_LABEL)


def _peak_figure(config: dict, a: dict, wanted, title: str) -> Figure:
    splits = [p for p in wanted if p in splits_of(a)]
    if not splits:
        raise ValueError(f"arrays hold none of the splits {list(wanted)} (found {splits_of(a)})")
    seeds = {p: int(np.shape(_split(a, p)["forget_quality"])[0]) for p in splits}
    counts = sorted(set(seeds.values()))
    seeds_text = (f"{counts[0]} seeds" if len(counts) == 1 else
                  ", ".join(f"{n} seeds at {', '.join(f'{p}%' for p in splits if seeds[p] == n)}" for n in counts))
    with style_context():
        fig, axes = plt.subplots(1, len(splits), figsize=(3.6 + 3.7 * len(splits), 4.8), layout="constrained",
                                 squeeze=False, sharey=True)
        entries: dict = {}
        for ax, p in zip(axes[0], splits):
            _peak_panel(ax, _split(a, p), p, entries)
        # the panels share one y axis: set it once from every panel's points and bars
        lows = [ax.dataLim.y0 for ax in axes[0] if np.isfinite(ax.dataLim.y0) and ax.dataLim.y0 > 0]
        axes[0, 0].set_ylim(min(min(lows, default=FQ_THRESHOLD), FQ_THRESHOLD) / 3, 2.5)
        for ax in axes[0, 1:]:
            ax.set_ylabel("")
        entries["TOFU's 0.05 (forgotten above)"] = _threshold_handle()
        # an axes legend right of the last panel: below the suptitle, room kept by the layout
        axes[0, -1].legend(list(entries.values()), list(entries.keys()), loc="upper left", bbox_to_anchor=(1.03, 1.0),
                           borderaxespad=0.0, handlelength=2.0)
        fig.suptitle(f"{title}: forget quality vs model utility\nat each seed's peak forget quality "
                     f"({_recipe_text(config)})\ngeometric-mean forget quality and mean utility over {seeds_text}, "
                     f"bars: their range; floored at {FQ_FLOOR:g}", fontsize=9)
    return fig


def _recipe_text(config: dict) -> str:
    u = config.get("unlearn", {})
    parts = []
    if "learning_rate" in u:
        parts.append(f"AdamW, peak lr {u['learning_rate']:g}")
    if "epochs" in u:
        parts.append(f"{u['epochs']} epochs")
    if "beta" in u:
        groups: dict = {}
        for m, b in u.get("betas", {}).items():
            groups.setdefault(float(b), []).append(str(m))
        own = "; ".join(f"{', '.join(ms)} {b:g}" for b, ms in groups.items())
        parts.append(f"β {u['beta']:g}" + (f" ({own})" if own else ""))
    return ", ".join(parts)


def fig5(config: dict, a: dict) -> Figure:
    """The paper's figure 5: forget quality (log) against model utility at each seed's peak
    forget quality, every method, one panel per split among :data:`FIG5_SPLITS` present.

    Per method and seed, the first evaluation of that seed's largest forget quality is taken;
    the point is the seeds' geometric-mean forget quality and mean utility there, the bars the
    seeds' range. The full model (grey ring) and the retrained model (star, forget quality 1 by
    construction) for reference; dashed: TOFU's 0.05. Methods whose every seed peaks at step 0
    (their point is the full model's) are listed in the panel.
    """
    return _peak_figure(config, a, FIG5_SPLITS, "Figure 5 (Zhang et al. 2024) on TOFU in miniature")


def fig8(config: dict, a: dict) -> Figure:
    """The paper's figure 8: as :func:`fig5` on the 50% and 90% splits (those present); the
    methods that use retain data only."""
    return _peak_figure(config, a, FIG8_SPLITS, "Figure 8 (Zhang et al. 2024) on TOFU in miniature, large forget splits")


def trajectories(config: dict, a: dict, split: int = 10) -> Figure:
    """The paper's figures 6 and 10 on one split: forget quality (log), model utility and the
    forget KL (log) against unlearning epochs, every method.

    Seed means (runs that diverged drop out): forget quality's geometric mean with a band of
    x/÷ one geometric standard error (p-values of seeds differ by decades), utility's and the KL's
    arithmetic mean +- one standard error (:func:`~figures.style.plot_band`). GA's and NPO's
    families solid and bold with a band, the others dashed without (thirteen overlapping bands
    hide the lines).
    Dashed on the forget-quality panel: TOFU's 0.05; dotted on the utility panel: the retrained
    model's utility. The forget KL is 0 at the start, off the log axis.
    """
    s = _split(a, split)
    names = [str(m) for m in s["methods"]]
    per_epoch = float(s["epoch_steps"]) if "epoch_steps" in s else 1.0
    x = np.asarray(s["steps"], float) / per_epoch
    panels = [("forget_quality", FQ_LABEL, "log"), ("model_utility", MU_LABEL, "linear"),
              ("forget_kl", FORGET_KL_LABEL + " (log)", "log")]
    panels = [p for p in panels if p[0] in s]
    with style_context():
        fig, axes = plt.subplots(1, len(panels), figsize=(13.0, 4.5), layout="constrained", squeeze=False)
        entries: dict = {}
        for ax, (key, ylabel, scale) in zip(axes[0], panels):
            ax.set_yscale(scale)
            values = np.asarray(s[key], float)
            draw = _plot_geo_band if key == "forget_quality" else plot_band
            for c, m in enumerate(names):
                style = _line_style(m)
                line = draw(ax, x, values[:, c], method_color(m), m, band_alpha=0.12 if style["linestyle"] == "-" else 0.0,
                            **style)
                entries.setdefault(m, line)
            ax.set(xlabel="unlearning epoch", ylabel=ylabel)
        for ax, (key, _, _) in zip(axes[0], panels):
            if key == "forget_quality":
                _threshold_line(ax)
                _fq_axis(ax)
                ax.set_title("(a) forget quality (higher: closer to the retrained model)")
                entries["TOFU's 0.05 (forgotten above)"] = _threshold_handle()
            elif key == "model_utility":
                if "retrained" in s:
                    h = ax.axhline(float(s["retrained"]["model_utility"]), color="0.3", ls=":", lw=1.3,
                                   label="retrained model's utility")
                    entries[h.get_label()] = h
                ax.set_title("(b) model utility (higher is better)")
            else:
                ax.set_title("(c) forget KL to the full model (how far it moved)")
        _shared_legend(fig, entries, ncol=8)
        seeds = np.shape(s["forget_quality"])[0]
        n = f" ({int(s['n_forget'])} questions)" if "n_forget" in s else ""
        fig.suptitle(f"Figures 6 and 10 (Zhang et al. 2024) on TOFU in miniature: the {split}% forget split{n}, "
                     f"every method\n{_recipe_text(config)}; one epoch = {per_epoch:g} steps\n"
                     f"seed mean ± s.e. over {seeds} seeds (forget quality: geometric, floored at {FQ_FLOOR:g}); "
                     "bands on the bold GA and NPO families only", fontsize=9)
    return fig


def _final_geo(fq_S_E) -> float:
    return _geo_mean(np.asarray(fq_S_E, float)[..., -1])


def guidance(config: dict, a: dict) -> Figure:
    """The guidance grid of NPO+RT on the 10% split.

    (a) final-step forget quality (geometric mean over seeds, log colour scale) and (b) final-step
    model utility (seed mean) over beta (rows) x peak learning rate (columns), each cell
    annotated; outlined: the settings that avoid collapse (utility at least
    :data:`COLLAPSE_UTILITY_FRACTION` x the full model's). (c) the retain-weight ablation at
    the default beta and learning rate: final forget quality (left axis, log) and utility
    (right axis) against the retain weight, bars the range over seeds.
    """
    gd = a.get("guidance", {})
    for k in ("betas", "learning_rates", "grid", "method"):
        if k not in gd:
            raise ValueError(f"results lack guidance/{k} (expected run_study results)")
    betas = np.asarray(gd["betas"], float)
    lrs = np.asarray(gd["learning_rates"], float)
    fq = np.asarray(gd["grid"]["forget_quality"], float)
    mu = np.asarray(gd["grid"]["model_utility"], float)
    if fq.ndim != 4 or fq.shape[1:3] != (len(betas), len(lrs)) or mu.shape != fq.shape:
        raise ValueError(f"guidance forget quality and utility must have shape (seeds, {len(betas)}, "
                         f"{len(lrs)}, evaluations), got {fq.shape} and {mu.shape}")
    g = config.get("guidance", {})
    split = int(g.get("split", 10))
    method = str(gd["method"])
    full = a.get("splits", {}).get(str(split), {}).get("full", {})
    full_mu = float(full["model_utility"]) if "model_utility" in full else np.nan
    fq_grid = np.array([[_final_geo(fq[:, i, j]) for j in range(len(lrs))] for i in range(len(betas))])
    mu_grid = finite_seed_mean(mu[..., -1])
    avoid = np.isfinite(mu_grid) & (mu_grid >= COLLAPSE_UTILITY_FRACTION * full_mu)
    has_weights = "weights" in gd and "by_weight" in gd
    with style_context():
        fig, axes = plt.subplots(1, 3 if has_weights else 2, figsize=(15.0 if has_weights else 10.0, 4.6),
                                 layout="constrained", gridspec_kw={"width_ratios": [1, 1, 1.15][:3 if has_weights else 2]})
        finite = fq_grid[np.isfinite(fq_grid)]
        lo = float(finite.min()) if finite.size else FQ_FLOOR
        norm_fq = LogNorm(min(lo, 0.5 * FQ_THRESHOLD), 1.0)
        heatmap(fig, axes[0], fq_grid, norm=norm_fq, rows=betas, cols=lrs, outline=avoid, nan_text="diverged",
                title="(a) final forget quality (geometric mean)", label="forget quality (log)",
                xlabel="peak learning rate", fmt=lambda v: f"≤{FQ_FLOOR:.0e}" if v <= FQ_FLOOR else f"{v:.2g}")
        top = np.nanmax([np.nanmax(mu_grid) if np.isfinite(mu_grid).any() else 0.0, full_mu if np.isfinite(full_mu) else 0.0])
        heatmap(fig, axes[1], mu_grid, norm=Normalize(0.0, max(top, 1e-9)), rows=betas, cols=lrs, outline=avoid,
                nan_text="diverged", title="(b) final model utility (seed mean)", label=MU_LABEL,
                xlabel="peak learning rate", fmt=lambda v: f"{v:.2f}")
        steps = np.asarray(gd["steps"]) if "steps" in gd else None
        u = config.get("unlearn", {})
        if has_weights:
            _weights_panel(axes[2], gd, u, method)
        rule = (f"outlined: avoids collapse (final utility ≥ {COLLAPSE_UTILITY_FRACTION:g} × the full model's "
                f"{full_mu:.2f})")
        end = f" after {int(steps[-1])} steps" if steps is not None else ""
        fig.suptitle(f"Guidance: {method} on the {split}% forget split, final values{end} over "
                     f"{fq.shape[0]} seeds\n{rule}")
    return fig


def _weights_panel(ax, gd: dict, u: dict, method: str) -> None:
    w = np.asarray(gd["weights"], float)
    fq = _floor(np.asarray(gd["by_weight"]["forget_quality"], float)[..., -1])  # (S, W)
    mu = np.asarray(gd["by_weight"]["model_utility"], float)[..., -1]
    color_fq, color_mu = method_color(method), "#e6550d"
    gy = np.array([_geo_mean(fq[:, k]) for k in range(len(w))])
    lo = np.array([np.nanmin(fq[:, k]) if np.isfinite(fq[:, k]).any() else np.nan for k in range(len(w))])
    hi = np.array([np.nanmax(fq[:, k]) if np.isfinite(fq[:, k]).any() else np.nan for k in range(len(w))])
    ax.set_yscale("log")
    ax.errorbar(w, gy, yerr=_bars(gy, lo, hi), fmt="o-", color=color_fq, capsize=2.5, ms=5, label="forget quality")
    _threshold_line(ax)
    ax.set_ylim(min(np.nanmin(lo) if np.isfinite(lo).any() else FQ_THRESHOLD, FQ_THRESHOLD) / 3, 3.0)
    ax.set_xlabel("retain weight (0: no retain loss)")
    ax.set_ylabel("final " + FQ_LABEL + "\n(geometric mean)", color=color_fq)
    ax.tick_params(axis="y", colors=color_fq)
    ax2 = ax.twinx()
    mm = finite_seed_mean(mu)
    mlo = np.array([np.nanmin(mu[:, k]) if np.isfinite(mu[:, k]).any() else np.nan for k in range(len(w))])
    mhi = np.array([np.nanmax(mu[:, k]) if np.isfinite(mu[:, k]).any() else np.nan for k in range(len(w))])
    ax2.errorbar(w, mm, yerr=_bars(mm, mlo, mhi), fmt="s--", color=color_mu, capsize=2.5, ms=5, label="model utility")
    ax2.set_ylim(0.0, 1.0)
    ax2.grid(False)
    ax2.spines["right"].set_visible(True)
    ax2.set_ylabel("final " + MU_LABEL + " (seed mean)", color=color_mu)
    ax2.tick_params(axis="y", colors=color_mu)
    ax.set_xticks(w, [f"{x:g}" for x in w])
    beta = f"β {u['beta']:g}, " if "beta" in u else ""
    lr = f"lr {u['learning_rate']:g}" if "learning_rate" in u else ""
    ax.set_title(f"(c) {method}, retain weight ablation ({beta}{lr})\nbars: range over seeds")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2 + [_threshold_handle()], l1 + l2 + ["TOFU's 0.05 (forgotten above)"], loc="lower right",
              fontsize=7.5)


def divergence(config: dict, a: dict) -> Figure:
    """Long gradient-descent runs on the forget set: ``||theta_t - theta_ref||`` (top) and the
    per-sequence forget NLL (bottom) against t, with the fitted laws (:func:`figures.laws.divergence_laws`)."""
    lg = config["long"]
    split = lg["split"]
    s = a.get("splits", {}).get(str(split), {})
    where = f"the {int(s['n_forget'])} questions of the {split}% forget split" if "n_forget" in s else "the forget split"
    t_min = lg["steps"] / lg["fit_decades_from"]
    return divergence_laws(a["long"], t_min,
                           f"Divergence laws on TOFU in miniature: full-batch gradient descent (lr {lg['learning_rate']:g}) "
                           f"on {where}, from the full model\nTheorem 2: GA diverges linearly in t, NPO logarithmically; "
                           f"fits on t ≥ {t_min:g}")


def all_figures(config: dict, arrays: dict) -> dict[str, Figure]:
    """``{name: Figure}`` for ``paper_repro.py``, leaving out the figures whose arrays are absent."""
    a = arrays
    splits = splits_of(a)
    out: dict[str, Figure] = {}
    if any(p in splits for p in FIG5_SPLITS):
        out["tofu_fig5"] = fig5(config, a)
    if any(p in splits for p in FIG8_SPLITS):
        out["tofu_fig8"] = fig8(config, a)
    split = int(config.get("guidance", {}).get("split", 10))
    if splits:
        out["tofu_trajectories"] = trajectories(config, a, split if split in splits else splits[0])
    if "guidance" in a:
        out["tofu_guidance"] = guidance(config, a)
    if "long" in a:
        out["tofu_divergence"] = divergence(config, a)
    return out


def ablation_figure(config: dict, results: dict):
    """Two panels, one row per variant: the lowest utility share of NPO and NPO+RT (npo_stable's
    line at :data:`.claims.STABLE_SHARE`), and NPO+RT's best forget quality at utility >= the line
    (figure 5's threshold). Seeds as dots, their mean as a bar."""
    names = list(config["factors"])
    labels = dict(FACTORS)
    with style_context():
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 0.55 * len(names) + 1.8), sharey=True, layout="constrained")
        y = np.arange(len(names))[::-1]
        for i, name in enumerate(names):
            r = ablation_readings(results["variants"][name])
            for k, (m, dy) in enumerate((("NPO", 0.15), ("NPO+RT", -0.15))):
                v = r[f"{m} lowest share"]
                a.barh(y[i] + dy, np.mean(v), height=0.28, color=method_color(m), alpha=0.55,
                       label=m if i == 0 else None)
                a.plot(v, np.full(len(v), y[i] + dy), "o", color=method_color(m), ms=4)
            fq = np.maximum(r["NPO+RT best FQ"], 1e-20)
            b.barh(y[i], 10 ** np.mean(np.log10(fq)), height=0.5, color=method_color("NPO+RT"), alpha=0.55, left=1e-20)
            b.plot(fq, np.full(len(fq), y[i]), "o", color=method_color("NPO+RT"), ms=4)
        a.axvline(STABLE_SHARE, color="0.3", ls="--", lw=1)
        a.set(xlim=(0, 1.1), xlabel="lowest model utility / full model's", yticks=y,
              yticklabels=[labels[n] for n in names], title="npo_stable: utility never below the line")
        a.legend(loc="lower right", fontsize=8)
        b.axvline(FQ_THRESHOLD, color="0.3", ls="--", lw=1)
        b.set(xscale="log", xlim=(1e-20, 2), xlabel=f"NPO+RT best forget quality at utility >= {UTILITY_SHARE:g} x full",
              title="figure 5: NPO+RT above 0.05 while useful")
        fig.suptitle(f"What decides the verdicts: one property switched at a time ({MAIN_SPLIT}% split, "
                     f"{config['seeds']} seeds)")
    return fig


def ablation_figures(config: dict, results: dict) -> dict:
    """The figure of ``tofu_mini_ablation``."""
    return {"tofu_ablation": ablation_figure(config, results)}
