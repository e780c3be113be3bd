"""Figures of the ``markov`` experiment (transformer on mixture-of-Markov-chains data).

Each function takes the experiment's config and the arrays of
``synthetic.experiments.markov.run.run_markov`` and returns a matplotlib Figure; nothing here trains. Curves are seed means with a +- one standard error
band (runs that diverged drop out).

* :func:`collapse`: per-token KL to the retrained model on the forget and retain test subsets
  vs step, one curve per method (the collapse curve of GA vs the plateau of NPO).
* :func:`divergence`: ``||theta_t - theta_ref||`` and the forget NLL of the long
  gradient-descent runs against t on linear and on log axes, with the fitted laws
  ``a + b t`` and ``a + b log t`` overlaid (Theorem 2).
* :func:`split`: NPO vs SimNPO on forget-1 (learned by the reference) and forget-2
  (never learned): KL to the retrained model vs step.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from figures.style import beta_colors, method_color, plot_band, style_context

__all__ = ["collapse", "divergence", "split", "all_figures"]



def _step_label(config: dict) -> str:
    u = config["unlearn"]
    return f"unlearning step (AdamW, lr {u['learning_rate']:g}, batch {u['batch_size']})"

_REQUIRED = ("methods", "steps", "kl_retr_retain", "kl_retr_forget", "kl_retr_forget1", "kl_retr_forget2")


def _check(a: dict, extra=()) -> None:
    missing = [k for k in _REQUIRED + tuple(extra) if k not in a]
    if missing:
        raise ValueError(f"arrays lack keys {missing} (expected run_markov arrays)")
    shape = np.shape(a["kl_retr_retain"])
    if len(shape) != 3 or shape[0] != len(a["methods"]) or shape[2] != len(a["steps"]):
        raise ValueError(f"kl_retr_retain must have shape (methods, seeds, steps), got {shape}")


def collapse(config: dict, a: dict) -> Figure:
    """KL(pi_retr || pi_theta) per token on forget and retain vs step, every method."""
    _check(a)
    steps = np.asarray(a["steps"], float)
    with style_context():
        fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6), constrained_layout=True)
        for ax, key, title in (
            (axes[0], "kl_retr_forget", "forget test set (forget-1 + forget-2)"),
            (axes[1], "kl_retr_retain", "retain test set"),
        ):
            ax.set_yscale("log")
            for i, m in enumerate(a["methods"]):
                m = str(m)
                style = "-" if m.startswith(("GA", "NPO")) else "--"
                plot_band(ax, steps, np.asarray(a[key][i]), method_color(m), m, linestyle=style,
                          linewidth=2.4 if m in ("GA", "NPO") else 1.3)
            ax.set_title(f"KL to the retrained model, {title}")
            ax.set_xlabel(_step_label(config))
            ax.set_ylabel(r"per-token $KL(\pi_{retr}\,\|\,\pi_\theta)$")
        axes[1].legend(ncol=2, loc="upper left")
        fig.suptitle("Transformer on Markov-chain data: GA's retain KL keeps growing, NPO's stays low")
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


def split(config: dict, a: dict) -> Figure:
    """NPO vs SimNPO (and their +RT variants): KL to the retrained model on forget-1 and forget-2."""
    _check(a)
    steps = np.asarray(a["steps"], float)
    names = [str(m) for m in a["methods"]]
    chosen = [m for m in ("NPO", "SimNPO", "NPO+RT", "SimNPO+RT", "GA") if m in names]
    with style_context():
        fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6), constrained_layout=True, sharey=True)
        for ax, key, title in (
            (axes[0], "kl_retr_forget1", "forget-1 (learned by the reference)"),
            (axes[1], "kl_retr_forget2", "forget-2 (never learned by the reference)"),
        ):
            ax.set_yscale("log")
            for m in chosen:
                i = names.index(m)
                plot_band(ax, steps, np.asarray(a[key][i]), method_color(m), m,
                          linestyle="-" if "RT" not in m else "--", linewidth=2.2 if m in ("NPO", "SimNPO") else 1.2)
            ax.set_title(title)
            ax.set_xlabel(_step_label(config))
        axes[0].set_ylabel(r"per-token $KL(\pi_{retr}\,\|\,\pi_\theta)$")
        axes[1].legend(loc="best")
        fig.suptitle("How NPO and SimNPO split the unlearning between forget-1 and forget-2")
    return fig


def all_figures(config, arrays) -> dict:
    """``{name: Figure}`` for ``paper_repro.py``."""
    return {
        "markov_collapse": collapse(config, arrays),
        "markov_divergence": divergence(config, arrays),
        "markov_split": split(config, arrays),
    }
