"""The divergence-laws figure: long GA-vs-NPO runs against t on the axes where each law is a line.

Any world that runs :func:`synthetic.laws.divergence_runs` draws it with :func:`divergence_laws`:
``||theta_t - theta_ref||`` (top) and the per-sequence forget NLL (bottom) against t, every run
on log-log axes (a power law ``c t^p`` is a straight line of slope ``p``), GA on linear axes
(Theorem 2's linear law is a straight line), NPO at each beta against log t (its log law is a
straight line), with the fits ``a + b t`` (solid) and ``a + b log t`` (dotted) of
:func:`synthetic.analysis.fit_laws` overlaid, the better one (higher R^2) bold, fitted on t
right of the dashed line.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from figures.style import beta_colors, method_color, style_context
from synthetic.analysis import law_fits

__all__ = ["divergence_laws"]

QUANTITIES = (
    ("param_distance", r"$\|\theta_t-\theta_{ref}\|_2$"),
    ("forget_nll_seq", "forget NLL per sequence (nats)"),
)


def _fit_line(fit_row, t, law):
    a, b, _ = fit_row
    return a + b * (t if law == "linear" else np.log(t))


def _overlay(ax, fit: dict, color, tt):
    """Both fits of one run on ``tt``, the better one bold."""
    lin, lg = np.asarray(fit["linear"]), np.asarray(fit["log"])
    best = "linear" if lin[2] > lg[2] else "log"
    for law, row, ls in (("linear", lin, "-"), ("log", lg, ":")):
        if np.all(np.isfinite(row)):
            bold = law == best
            ax.plot(tt, _fit_line(row, tt, law), ls, color=color, alpha=0.95 if bold else 0.5,
                    linewidth=1.8 if bold else 1.0,
                    label=f"fit {'a+b t' if law == 'linear' else 'a+b log t'}, R$^2$={row[2]:.2f}")


def _all_runs(ax, t, ys, fits, labels, colors, ylabel):
    ax.set_xscale("log")
    ax.set_yscale("log")
    for j, lab in enumerate(labels):
        ok = (t > 0) & np.isfinite(ys[j]) & (ys[j] > 0)
        ax.plot(t[ok], ys[j][ok], "o-", ms=3, linewidth=1.0, color=colors[j],
                label=f"{lab} (exponent {fits[j]['power'][1]:.2f})")
    ax.set_title("all runs, log-log (slope = growth exponent)")
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper left", fontsize=7)


def _ga_panel(ax, t, ys, fits, labels, colors, t_min, diverged_step):
    if "GA" not in labels:
        return
    j = labels.index("GA")
    ok = (t > 0) & np.isfinite(ys[j])
    tt = np.linspace(t_min, t[ok][-1] if ok.any() else t[-1], 200)
    ax.plot(t[ok], ys[j][ok], "o", ms=4, color=colors[j], label="GA")
    _overlay(ax, fits[j], colors[j], tt)
    title = "GA, linear axes (Theorem 2: a straight line)"
    if int(diverged_step[j]) >= 0:
        title += f"\nnon-finite from step {int(diverged_step[j])}"
    ax.set_title(title)
    ax.set_ylim(bottom=0, top=1.1 * np.nanmax(ys[j][ok]) if ok.any() else None)
    ax.legend(loc="upper left", fontsize=7)


def _npo_panel(ax, t, ys, fits, labels, colors, t_min):
    ax.set_xscale("log")
    tt = np.geomspace(max(t_min, 1.0), t[-1], 200)
    for j, lab in enumerate(labels):
        if lab == "GA":
            continue
        ok = (t > 0) & np.isfinite(ys[j])
        ax.plot(t[ok], ys[j][ok], "o", ms=3, color=colors[j], label=lab)
        _overlay(ax, fits[j], colors[j], tt)
    ax.set_title("NPO, log t axis (Theorem 2: straight lines, slope ~ 1/beta)")
    ax.legend(loc="upper left", fontsize=6.5, ncol=1)


def divergence_laws(long: dict, t_min: float, title: str) -> Figure:
    """The figure of long runs ``long`` (:func:`synthetic.laws.divergence_runs`, with the curves
    ``param_distance`` and ``forget_nll_seq``), the laws fitted on ``t >= t_min``; ``title``
    heads it."""
    for k in ("steps", "labels", "betas", "diverged_step", "param_distance", "forget_nll_seq"):
        if k not in long:
            raise ValueError(f"long runs lack {k!r} (expected synthetic.laws.divergence_runs results)")
    t = np.asarray(long["steps"], float)
    labels = [str(x) for x in long["labels"]]
    npo_cols = iter(beta_colors([b for b in np.asarray(long["betas"], float) if np.isfinite(b)]))
    colors = [method_color("GA") if lab == "GA" else next(npo_cols) for lab in labels]
    with style_context():
        fig, axes = plt.subplots(2, 3, figsize=(13.0, 7.0), constrained_layout=True)
        for r, (q, ylabel) in enumerate(QUANTITIES):
            ys, fits = np.asarray(long[q], float), law_fits(long, q, t_min)
            _all_runs(axes[r, 0], t, ys, fits, labels, colors, ylabel)
            _ga_panel(axes[r, 1], t, ys, fits, labels, colors, t_min, np.asarray(long["diverged_step"]))
            _npo_panel(axes[r, 2], t, ys, fits, labels, colors, t_min)
            for ax in axes[r]:
                ax.axvline(t_min, color="#999999", linewidth=0.8, linestyle="--")
                ax.set_xlabel("gradient-descent step t")
        fig.suptitle(title)
    return fig
