"""Figures of the ``markov`` experiment (the SimNPO study's Markov chains, both cases).

Each function takes the experiment's config and the arrays of
``synthetic.experiments.markov.run.run_markov`` and returns a matplotlib Figure; nothing here
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

from figures.style import beta_colors, method_color, plot_band, style_context

__all__ = ["trajectories", "collapse", "divergence", "all_figures"]

CASE_TITLES = {"B": "case B (forget-2 never learned)", "A": "case A (forget-2 short, learned)"}



def _step_label(config: dict) -> str:
    u = config["unlearn"]
    return f"unlearning step (AdamW, lr {u['learning_rate']:g}, batch {u['batch_size']})"

def _cases(config: dict, a: dict) -> list[str]:
    cases = [str(c) for c in config.get("cases", ("B", "A"))]
    for c in cases:
        for k in ("methods", "steps", f"{c}_kl_true_retain", f"{c}_kl_true_forget1", f"{c}_kl_true_forget2",
                  f"{c}_retrained_kl_true", f"{c}_reference_kl_true"):
            if k not in a:
                raise ValueError(f"arrays lack key {k!r} (expected run_markov arrays)")
        shape = np.shape(a[f"{c}_kl_true_retain"])
        if len(shape) != 3 or shape[0] != len(a["methods"]) or shape[2] != len(a["steps"]):
            raise ValueError(f"{c}_kl_true_retain must have shape (methods, seeds, steps), got {shape}")
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
            retr = np.asarray(a[f"{case}_retrained_kl_true"], float)
            ref = np.asarray(a[f"{case}_reference_kl_true"], float)
            for col, k in enumerate((1, 2)):
                ax = axes[r, col]
                ax.set_xscale("log")
                for m in chosen:
                    i = names.index(m)
                    x = np.asarray(a[f"{case}_kl_true_retain"][i], float)
                    y = np.asarray(a[f"{case}_kl_true_forget{k}"][i], float)
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
                     f"{a[f'{cases[0]}_kl_true_retain'].shape[1]} seeds (thin):\nthe retain KL each method pays to reach "
                     "the retrained model's forget KL (star)")
    return fig


def collapse(config: dict, a: dict) -> Figure:
    """Per-token KL to the true chains on retain, forget-1 and forget-2 vs step, every method
    of the collapse runs (case B)."""
    for k in ("collapse_methods", "collapse_steps", "collapse_kl_true_retain", "collapse_retrained_kl_true"):
        if k not in a:
            raise ValueError(f"arrays lack key {k!r} (expected run_markov arrays)")
    steps = np.asarray(a["collapse_steps"], float)
    retr = np.asarray(a["collapse_retrained_kl_true"], float)
    with style_context():
        fig, axes = plt.subplots(1, 3, figsize=(13.0, 3.8), constrained_layout=True)
        for col, (g, title) in enumerate((("retain", "retain"), ("forget1", "forget-1"), ("forget2", "forget-2"))):
            ax = axes[col]
            ax.set_yscale("log")
            for i, m in enumerate(a["collapse_methods"]):
                m = str(m)
                style = "-" if m.startswith(("GA", "NPO")) else "--"
                plot_band(ax, steps, np.asarray(a[f"collapse_kl_true_{g}"][i]), method_color(m), m, linestyle=style,
                          linewidth=2.2 if m in ("GA", "NPO", "SimNPO") else 1.2)
            ax.axhline(retr[col], color="#444444", linestyle=":", linewidth=1.0, label="retrained model")
            ax.set_title(f"{title} evaluation set")
            ax.set_xlabel(_step_label(config))
            ax.set_ylabel(r"per-token KL$(P_{true}\,\|\,\pi_\theta)$")
        axes[0].legend(ncol=2, loc="upper left", fontsize=7)
        fig.suptitle(f"{CASE_TITLES['B']}: per-token KL to the true chains over the unlearning steps, every method")
    return fig


def _fit_line(fit_row, t, law):
    a, b, _ = fit_row
    return a + b * (t if law == "linear" else np.log(t))


def divergence(config: dict, a: dict) -> Figure:
    """Long gradient-descent runs: parameter distance (top) and forget NLL (bottom) vs t.

    Columns: every run on log-log axes (a power law ``c t^p`` is a straight line of slope ``p``);
    GA on linear axes (Theorem 2's linear law is a straight line); NPO at each beta against
    log t (its log law is a straight line). Fits ``a + b t`` (solid) and ``a + b log t``
    (dotted) are overlaid, the better one (higher R^2) drawn bold, fitted on t right of the
    dashed line.
    """
    for k in ("long_steps", "long_labels", "long_param_distance", "long_forget_train_nll", "long_fit_param_distance_linear"):
        if k not in a:
            raise ValueError(f"arrays lack key {k!r} (expected run_markov arrays)")
    t = np.asarray(a["long_steps"], float)
    labels = [str(x) for x in a["long_labels"]]
    npo_cols = iter(beta_colors([b for b in np.asarray(a["long_betas"], float) if np.isfinite(b)]))
    colors = [method_color("GA") if lab == "GA" else next(npo_cols) for lab in labels]
    seq_len = float(a["long_forget_length"])
    t_min = float(a["long_fit_t_min"])
    rows = (
        ("param_distance", np.asarray(a["long_param_distance"], float), r"$\|\theta_t-\theta_{ref}\|_2$"),
        ("forget_nll_seq", np.asarray(a["long_forget_train_nll"], float) * seq_len, "forget NLL per sequence (nats)"),
    )

    def overlay(ax, j, q, tt):
        lin = np.asarray(a[f"long_fit_{q}_linear"])[j]
        lg = np.asarray(a[f"long_fit_{q}_log"])[j]
        best = "linear" if lin[2] > lg[2] else "log"
        for law, fit, ls in (("linear", lin, "-"), ("log", lg, ":")):
            if np.all(np.isfinite(fit)):
                bold = law == best
                ax.plot(tt, _fit_line(fit, tt, law), ls, color=colors[j], alpha=0.95 if bold else 0.5,
                        linewidth=1.8 if bold else 1.0, label=f"fit {'a+b t' if law == 'linear' else 'a+b log t'}, R$^2$={fit[2]:.2f}")

    with style_context():
        fig, axes = plt.subplots(2, 3, figsize=(13.0, 7.0), constrained_layout=True)
        for r, (q, ys, ylabel) in enumerate(rows):
            # (a) all runs, log-log
            ax = axes[r, 0]
            ax.set_xscale("log")
            ax.set_yscale("log")
            for j, lab in enumerate(labels):
                ok = (t > 0) & np.isfinite(ys[j]) & (ys[j] > 0)
                pw = np.asarray(a[f"long_fit_{q}_power"])[j]
                ax.plot(t[ok], ys[j][ok], "o-", ms=3, linewidth=1.0, color=colors[j], label=f"{lab} (exponent {pw[1]:.2f})")
            ax.set_title("all runs, log-log (slope = growth exponent)")
            ax.set_ylabel(ylabel)
            ax.legend(loc="upper left", fontsize=7)
            # (b) GA, linear axes
            ax = axes[r, 1]
            if "GA" in labels:
                j = labels.index("GA")
                ok = (t > 0) & np.isfinite(ys[j])
                tt = np.linspace(t_min, t[ok][-1] if ok.any() else t[-1], 200)
                ax.plot(t[ok], ys[j][ok], "o", ms=4, color=colors[j], label="GA")
                overlay(ax, j, q, tt)
                div = int(np.asarray(a["long_diverged_step"])[j])
                title = "GA, linear axes (Theorem 2: a straight line)"
                if div >= 0:
                    title += f"\nnon-finite from step {div}"
                ax.set_title(title)
                ax.set_ylim(bottom=0, top=1.1 * np.nanmax(ys[j][ok]) if ok.any() else None)
                ax.legend(loc="upper left", fontsize=7)
            # (c) NPO, log t axis
            ax = axes[r, 2]
            ax.set_xscale("log")
            tt = np.geomspace(max(t_min, 1.0), t[-1], 200)
            for j, lab in enumerate(labels):
                if lab == "GA":
                    continue
                ok = (t > 0) & np.isfinite(ys[j])
                ax.plot(t[ok], ys[j][ok], "o", ms=3, color=colors[j], label=lab)
                overlay(ax, j, q, tt)
            ax.set_title("NPO, log t axis (Theorem 2: straight lines, slope ~ 1/beta)")
            ax.legend(loc="upper left", fontsize=6.5, ncol=1)
            for ax in axes[r]:
                ax.axvline(t_min, color="#999999", linewidth=0.8, linestyle="--")
                ax.set_xlabel("gradient-descent step t")
        lg = config["long"]
        fig.suptitle(f"Divergence laws on the transformer, full-batch gradient descent (lr {lg['learning_rate']:g}) "
                     f"on {lg['n_forget']} forget-1 sequences")
    return fig


def all_figures(config, arrays) -> dict:
    """``{name: Figure}`` for ``paper_repro.py``."""
    return {
        "markov_trajectories": trajectories(config, arrays),
        "markov_collapse": collapse(config, arrays),
        "markov_divergence": divergence(config, arrays),
    }
