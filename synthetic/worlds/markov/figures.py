"""Figures of the ``markov`` experiment (the SimNPO study's Markov chains, both cases).

Each function takes the experiment's config and the results of
:func:`synthetic.worlds.markov.run.run_markov` and returns a matplotlib Figure; nothing here
trains. Curves are seed means; the seeds are drawn thin (or as a +- one standard error band).

* :func:`trajectories`: as the study draws them: each method's path in the (retain KL,
  forget-k KL) plane, per-token KL to the true chains, one panel per forget set and case,
  with the retrained model's point as the target.
* :func:`collapse`: per-token KL to the true chains on the retain, forget-1 and forget-2
  evaluation sets vs step, every method, per case (GA's collapse against NPO's plateau).
* :func:`divergence`: ``||theta_t - theta_ref||`` and the forget NLL of the long
  gradient-descent runs against t on linear and on log axes, with the fitted laws
  ``a + b t`` and ``a + b log t`` overlaid (Theorem 2).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from figures.laws import divergence_laws
from figures.style import method_color, plot_band, style_context

__all__ = ["trajectories", "collapse", "divergence", "all_figures"]

CASE_TITLES = {"B": "case B (forget-2 never learned)", "A": "case A (forget-2 short, learned)"}



def _step_label(config: dict) -> str:
    u = config["unlearn"]
    return f"unlearning step (AdamW, lr {u['learning_rate']:g}, batch {u['batch_size']})"

def _cases(config: dict, a: dict) -> list[str]:
    cases = [str(c) for c in config.get("cases", ("B", "A"))]
    for c in cases:
        if c not in a or "methods" not in a or "steps" not in a:
            raise ValueError(f"results lack case {c!r}, methods or steps (expected run_markov results)")
        for k in ("kl_true_retain", "kl_true_forget1", "kl_true_forget2", "retrained_kl_true", "reference_kl_true"):
            if k not in a[c]:
                raise ValueError(f"results lack {c}/{k} (expected run_markov results)")
        shape = np.shape(a[c]["kl_true_retain"])
        if len(shape) != 3 or shape[0] != len(a["methods"]) or shape[2] != len(a["steps"]):
            raise ValueError(f"{c}/kl_true_retain must have shape (methods, seeds, steps), got {shape}")
    return cases


def trajectories(config: dict, a: dict, methods=("NPO", "SimNPO")) -> Figure:
    """Each method's path in the (retain KL, forget-k KL) plane, per forget set and case.

    Seed means bold with a marker every 10 steps, each seed thin; the retrained model's
    point (the target: its forget-k KL, its retain KL) as a star, the reference's start as a
    circle, the target forget KL as a dashed line. Retain KL on a log axis.
    """
    cases = _cases(config, a)
    names = [str(m) for m in a["methods"]]
    chosen = [m for m in methods if m in names]
    with style_context():
        fig, axes = plt.subplots(len(cases), 2, figsize=(9.5, 3.7 * len(cases)), constrained_layout=True,
                                 squeeze=False)
        for r, case in enumerate(cases):
            retr = np.asarray(a[case]["retrained_kl_true"], float)
            ref = np.asarray(a[case]["reference_kl_true"], float)
            for col, k in enumerate((1, 2)):
                ax = axes[r, col]
                ax.set_xscale("log")
                for m in chosen:
                    i = names.index(m)
                    x = np.asarray(a[case]["kl_true_retain"][i], float)
                    y = np.asarray(a[case][f"kl_true_forget{k}"][i], float)
                    color = method_color(m)
                    for s in range(x.shape[0]):
                        ax.plot(x[s], y[s], color=color, alpha=0.25, linewidth=0.7)
                    mx, my = np.nanmean(x, axis=0), np.nanmean(y, axis=0)
                    ax.plot(mx, my, color=color, linewidth=2.0, linestyle="--" if m.startswith("Sim") else "-",
                            label=f"{m} (seed mean)")
                    ax.plot(mx[::10], my[::10], "o", color=color, ms=3.5)
                ax.axhline(retr[k], color="#444444", linestyle="--", linewidth=0.9)
                ax.plot([retr[0]], [retr[k]], "*", color="black", ms=13, label="retrained (target)", zorder=5)
                ax.plot([ref[0]], [ref[k]], "o", mfc="white", mec="black", ms=7, label="reference (start)", zorder=5)
                ax.xaxis.set_minor_formatter(NullFormatter())
                ax.set_xlabel(r"retain KL$(P_{true}\,\|\,\pi_\theta)$ per token (lower is better)")
                ax.set_ylabel(f"forget-{k} KL per token (target: the retrained model's)")
                short = " (short)" if case == "A" and k == 2 else ""
                ax.set_title(f"{CASE_TITLES.get(case, case)}: forget-{k}{short}")
            axes[r, 0].legend(loc="best", fontsize=7.5)
        u = config["unlearn"]
        fig.suptitle(f"Unlearning trajectories, {u['steps']} steps (markers every 10), "
                     f"{a[cases[0]]['kl_true_retain'].shape[1]} seeds (thin):\nthe retain KL each method pays to reach "
                     "the retrained model's forget KL (star)")
    return fig


def collapse(config: dict, a: dict) -> Figure:
    """Per-token KL to the true chains on retain, forget-1 and forget-2 vs step, every method
    of the collapse runs (case B)."""
    c = a["collapse"]
    for k in ("methods", "steps", "kl_true_retain", "retrained_kl_true"):
        if k not in c:
            raise ValueError(f"results lack collapse/{k} (expected run_markov results)")
    steps = np.asarray(c["steps"], float)
    retr = np.asarray(c["retrained_kl_true"], float)
    with style_context():
        fig, axes = plt.subplots(1, 3, figsize=(13.0, 3.8), constrained_layout=True)
        for col, (g, title) in enumerate((("retain", "retain"), ("forget1", "forget-1"), ("forget2", "forget-2"))):
            ax = axes[col]
            ax.set_yscale("log")
            for i, m in enumerate(c["methods"]):
                m = str(m)
                style = "-" if m.startswith(("GA", "NPO")) else "--"
                plot_band(ax, steps, np.asarray(c[f"kl_true_{g}"][i]), method_color(m), m, linestyle=style,
                          linewidth=2.2 if m in ("GA", "NPO", "SimNPO") else 1.2)
            ax.axhline(retr[col], color="#444444", linestyle=":", linewidth=1.0, label="retrained model")
            ax.set_title(f"{title} evaluation set")
            ax.set_xlabel(_step_label(config))
            ax.set_ylabel(r"per-token KL$(P_{true}\,\|\,\pi_\theta)$")
        axes[0].legend(ncol=2, loc="upper left", fontsize=7)
        fig.suptitle(f"{CASE_TITLES['B']}: per-token KL to the true chains over the unlearning steps, every method")
    return fig


def divergence(config: dict, a: dict) -> Figure:
    """The long gradient-descent runs against t, with the fitted laws (:func:`figures.laws.divergence_laws`)."""
    lg = config["long"]
    return divergence_laws(a["long"], lg["steps"] / lg["fit_decades_from"],
                           f"Divergence laws on the transformer, full-batch gradient descent (lr {lg['learning_rate']:g}) "
                           f"on {lg['n_forget']} forget-1 sequences")


def all_figures(config, arrays) -> dict:
    """``{name: Figure}`` for ``paper_repro.py``."""
    return {
        "markov_trajectories": trajectories(config, arrays),
        "markov_collapse": collapse(config, arrays),
        "markov_divergence": divergence(config, arrays),
    }
