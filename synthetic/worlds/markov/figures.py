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
* :func:`eps_map`: the SimNPO beta x eps map (case B): per-step retain KL of NPO and of SimNPO
  at every beta under each eps, beside the study's headline step counts, and the trade-off
  plane at the beta where the study's figure appears (or the slowest SimNPO when none does).
* :func:`mechanism`: why: per step, the gradient norm, Adam's second-moment scale against
  eps, the share of eps-dominated coordinates and the update's size, for NPO and SimNPO at
  beta 1 and at that beta, under both eps.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from figures.laws import divergence_laws
from figures.style import beta_colors, method_color, plot_band, style_context
from synthetic.worlds.markov import eps_map as emap

__all__ = ["trajectories", "collapse", "divergence", "eps_map", "mechanism", "all_figures"]

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


STUDY_STEPS = {"NPO": 5.3, "SimNPO": 23.6}
"""The study's figure (case B): steps to retain KL 0.1."""

STUDY_COSTS = {"NPO": 0.126, "SimNPO": 0.084}
"""The study's figure (case B): retain KL when forget-1 reaches the retrained model's."""


def _shown_beta(config: dict, a: dict) -> tuple[float, str]:
    """The SimNPO beta the figures single out (:func:`~.eps_map.featured_beta`: where the study's
    figure appears, else the candidate), else the map's slowest SimNPO at the study's eps."""
    beta, status = emap.featured_beta(config, a)
    if status == "reproduced":
        return beta, f"beta {beta:g}, where the study's figure appears"
    if status == "candidate":
        return beta, f"beta {beta:g}, the closest to the study's figure (no check fails; the seeds cannot tell)"
    eps0 = float(config["unlearn"]["eps"])
    largest = max(b for b, e in emap.cells(a) if e == eps0)
    return largest, f"beta {largest:g} (no beta reproduced the study's figure; the largest shown)"


def _eps_style(eps: float, eps0: float) -> str:
    return "-" if eps == eps0 else "--"


def eps_map(config: dict, a: dict) -> Figure:
    """Top: per-step retain KL (case B) of NPO and SimNPO at every map beta, one panel per eps,
    with the level 0.1 and the study's step counts. Bottom: the (retain KL, forget-k KL) plane
    at the singled-out beta, both eps, with the study's costs."""
    if "map" not in a or "B" not in a["map"]:
        raise ValueError("results lack map/B (expected run_markov results)")
    steps = np.asarray(a["steps"], float)
    m, c = a["map"], a["map"]["B"]
    eps_list = sorted({float(e) for e in m["eps"]}, reverse=True)
    eps0 = float(config["unlearn"]["eps"])
    betas = sorted({b for b, _ in emap.cells(a)})
    colors = dict(zip(betas, beta_colors(betas, "Oranges")))
    npo_beta = float(config["unlearn"]["beta"])
    beta, why = _shown_beta(config, a)
    retr = np.asarray(a["B"]["retrained_kl_true"], float)
    with style_context():
        fig, axes = plt.subplots(2, len(eps_list), figsize=(5.2 * len(eps_list), 8.4), constrained_layout=True,
                                 squeeze=False)
        for col, eps in enumerate(eps_list):
            ax = axes[0, col]
            ax.set_yscale("log")
            plot_band(ax, steps, c["kl_true_retain"][emap.setting_index(a, "NPO", npo_beta, eps)], method_color("NPO"),
                      f"NPO (beta {npo_beta:g})", linewidth=2.2)
            for b in betas:
                plot_band(ax, steps, c["kl_true_retain"][emap.setting_index(a, "SimNPO", b, eps)], colors[b],
                          f"SimNPO beta {b:g}", linewidth=1.6, linestyle="--")
            ax.axhline(emap.SPEED_LEVEL, color="#444444", linestyle=":", linewidth=1.0)
            for name, x in STUDY_STEPS.items():
                ax.plot([x], [emap.SPEED_LEVEL], marker="v", ms=10, mfc="white",
                        mec=method_color("NPO") if name == "NPO" else colors.get(beta, "black"), mew=2, ls="none",
                        label=f"study's figure: {name} at step {x:g}", zorder=5)
            ax.set_xlabel(_step_label(config))
            ax.set_ylabel(r"retain KL$(P_{true}\,\|\,\pi_\theta)$ per token")
            ax.set_title(f"eps {eps:g}{' (the study code)' if eps == eps0 else ''}: retain KL per step")
            ax.legend(fontsize=7, loc="lower right")
        # the trade-off plane at the singled-out beta, both eps
        for col, k in enumerate((1, 2)[: len(eps_list)]):
            ax = axes[1, col]
            ax.set_xscale("log")
            for eps in eps_list:
                for name, b in (("NPO", npo_beta), ("SimNPO", beta)):
                    i = emap.setting_index(a, name, b, eps)
                    x, y = (np.nanmean(np.asarray(c[f"kl_true_{g}"][i], float), axis=0) for g in ("retain", f"forget{k}"))
                    color = method_color("NPO") if name == "NPO" else colors[beta]
                    ax.plot(x, y, color=color, linestyle=_eps_style(eps, eps0), linewidth=2.0 if eps == eps0 else 1.3,
                            label=f"{name}{'' if name == 'NPO' else f' beta {b:g}'}, eps {eps:g}")
                    ax.plot(x[::10], y[::10], "o", color=color, ms=3)
            ax.axhline(retr[k], color="#444444", linestyle=":", linewidth=0.9)
            ax.plot([retr[0]], [retr[k]], "*", color="black", ms=13, label="retrained (target)", zorder=5)
            if k == 1:
                for name, x in STUDY_COSTS.items():
                    ax.plot([x], [retr[1]], marker="v", ms=10, mfc="white", mew=2, ls="none", zorder=6,
                            mec=method_color("NPO") if name == "NPO" else colors[beta],
                            label=f"study's figure: {name} reaches the target at retain KL {x:g}")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel(r"retain KL$(P_{true}\,\|\,\pi_\theta)$ per token")
            ax.set_ylabel(f"forget-{k} KL per token")
            ax.set_title(f"forget-{k}: the trade-off at SimNPO beta {beta:g}")
            ax.legend(fontsize=6.5, loc="best")
        fig.suptitle(f"SimNPO's beta x the optimizer's eps, case B ({c['kl_true_retain'].shape[1]} seeds, mean +- s.e.)"
                     f"\nbottom: SimNPO at {why}")
    return fig


def mechanism(config: dict, a: dict) -> Figure:
    """Why SimNPO's speed depends on eps: per step (case B, seed means), the gradient norm,
    ``sqrt(mean nu)`` against eps, the share of coordinates whose ``sqrt(nu)`` is below eps, and
    the update's norm, for NPO and SimNPO at beta 1 and at the singled-out beta, under each eps."""
    if "map" not in a or "B" not in a["map"] or "grad_norm" not in a["map"]["B"]:
        raise ValueError("results lack map/B and its optimizer records (expected run_markov results)")
    steps = np.asarray(a["steps"], float)
    c = a["map"]["B"]
    eps0 = float(config["unlearn"]["eps"])
    eps_list = sorted({float(e) for e in a["map"]["eps"]}, reverse=True)
    npo_beta = float(config["unlearn"]["beta"])
    beta, why = _shown_beta(config, a)
    betas = sorted({b for b, _ in emap.cells(a)})
    colors = dict(zip(betas, beta_colors(betas, "Oranges")))
    shown = [("NPO", npo_beta, method_color("NPO"))] + [("SimNPO", b, colors[b]) for b in sorted({npo_beta, beta})]
    lr = float(config["unlearn"]["learning_rate"])
    panels = (("grad_norm", r"gradient norm $\|g_t\|$", True),
              ("sqrt_nu_rms", r"Adam's $\sqrt{\mathrm{mean}\,v_t}$ (before bias correction)", True),
              ("eps_dominated", r"share of coordinates with $\sqrt{v_t} < \epsilon$", False),
              ("update_norm", r"update size $\|\theta_t - \theta_{t-1}\|$", True))
    with style_context():
        fig, axes = plt.subplots(1, 4, figsize=(17.0, 4.2), constrained_layout=True)
        for ax, (key, label, log) in zip(axes, panels):
            if log:
                ax.set_yscale("log")
            for name, b, color in shown:
                for eps in eps_list:
                    runs = np.asarray(c[key][emap.setting_index(a, name, b, eps)], float)[:, 1:]
                    plot_band(ax, steps[1:], runs, color,
                              f"{name}{'' if name == 'NPO' else f' beta {b:g}'}, eps {eps:g}",
                              linestyle=_eps_style(eps, eps0), linewidth=2.0 if eps == eps0 else 1.2)
            if key == "sqrt_nu_rms":
                for eps in eps_list:
                    ax.axhline(eps, color="#444444", linestyle=_eps_style(eps, eps0), linewidth=0.9)
                    ax.annotate(f"eps {eps:g}", (steps[-1], eps), fontsize=7, ha="right", va="bottom")
            ax.set_xlabel("unlearning step")
            ax.set_title(f"({'abcd'[list(axes).index(ax)]}) {label}", fontsize=9)
        axes[2].set_ylim(-0.02, 1.02)
        axes[0].legend(fontsize=6.5, loc="best")
        fig.suptitle(f"What AdamW did at each step, case B (lr {lr:g}; solid: eps {eps0:g}, the study's code; dashed: "
                     f"eps {min(eps_list):g})\nSimNPO at beta 1 and at {why}")
    return fig


def all_figures(config, arrays) -> dict:
    """``{name: Figure}`` for ``paper_repro.py``."""
    figs = {
        "markov_trajectories": trajectories(config, arrays),
        "markov_collapse": collapse(config, arrays),
        "markov_divergence": divergence(config, arrays),
    }
    if "map" in arrays and "B" in arrays["map"]:
        figs["markov_eps_map"] = eps_map(config, arrays)
        figs["markov_mechanism"] = mechanism(config, arrays)
    return figs
