"""Figures of the ``thm2`` experiment (Theorem 2, section 3.1, and section 2.1), from arrays.

Each function takes the dict of numpy arrays of ``synthetic.worlds.thm2.run.run_thm2`` and returns a
matplotlib Figure; :func:`thm2_figures` returns all four. Nothing here trains or predicts:
the predicted curves are arrays the experiment stored beside the measured ones.

* :func:`distance` -- ``||b|| = ||theta - theta_init||_{X^T X}`` against t for GA and NPO,
  predictions dashed: log-log (GA's slope 1) and against ln t (NPO's straight lines).
* :func:`time_to_distance` -- steps to first reach ``||b|| = D`` (log y), measured vs Theorem 2.
* :func:`outside` -- the same distances on the two forget sets outside the assumptions.
* :func:`softmax_toy` -- section 2.1: gradient norm on unlearned examples, GA flat, NPO decaying.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from figures.style import beta_colors, method_color, style_context

__all__ = ["distance", "time_to_distance", "outside", "softmax_toy", "thm2_figures"]

DIST_LABEL = r"$\|\theta-\theta_{init}\|_{X^\top X} = \|b\|_2$"
STEP_LABEL = "step t (full-batch gradient descent)"


def _runs(a: dict) -> list[tuple[int, str, object]]:
    """(index, label, colour) per run: GA in its method colour, NPO betas in blues."""
    npo = [i for i, law in enumerate(a["law"]) if law == "npo"]
    blues = dict(zip(npo, beta_colors([a["beta"][i] for i in npo])))
    out = []
    for i, law in enumerate(a["law"]):
        if law == "ga":
            out.append((i, "GA", method_color("GA")))
        else:
            out.append((i, f"NPO β={float(a['beta'][i]):g}", blues[i]))
    return out


def _setting_text(a: dict) -> str:
    return (
        rf"$n_f$={int(a['n_f'])}, d={int(a['d'])}, η={float(a['eta']):g} ($\eta_0=\eta/n_f$), "
        f"coherence {float(a['coherence']):.2g}, min eig $XX^\\top$ {float(a['min_eig']):.2g}"
    )


def _prediction_handles(text: str) -> list:
    return [Line2D([], [], color="0.3", ls="--", lw=1.2, label=text)]


def distance(arrays: dict) -> Figure:
    """Theorem 2 on orthogonal inputs: ``||b||`` vs t, measured (solid) and predicted (dashed)."""
    a = arrays["orthogonal"]
    t = a["steps"][1:].astype(float)
    nb = np.linalg.norm(a["b"], axis=-1)[:, 1:]
    pred = a["pred_distance"][:, 1:]
    runs = _runs(a)
    with style_context():
        fig = Figure(figsize=(11, 4.4), layout="constrained")
        ax_log, ax_lin = fig.subplots(1, 2)
        for i, label, color in runs:
            ax_log.plot(t, nb[i], color=color, label=label)
            ax_log.plot(t, pred[i], color=color, ls="--", lw=1.1, alpha=0.9)
        ax_log.set(xscale="log", yscale="log", xlabel=STEP_LABEL, ylabel=DIST_LABEL,
                   title="(a) log-log: GA grows like t (slope 1), NPO like log t")
        handles = ax_log.get_legend_handles_labels()[0]
        ax_log.legend(handles=handles + _prediction_handles("prediction"), loc="upper left")

        npo_max = max(nb[i].max() for i, lbl, _ in runs if lbl != "GA")
        last_decade = t >= t[-1] / 10
        for i, label, color in runs:
            if label != "GA":
                measured = np.polyfit(np.log(t[last_decade]), nb[i, last_decade], 1)[0]
                label = rf"{label}: slope {measured:.3g} (pred. $\sqrt{{n_f}}/\beta$ = {float(a['npo_slope'][i]):.3g})"
            ax_lin.plot(t, nb[i], color=color, label=label)
            ax_lin.plot(t, pred[i], color=color, ls="--", lw=1.1, alpha=0.9)
        ga = next(i for i, lbl, _ in runs if lbl == "GA")
        ymax = 1.12 * npo_max
        leaves = t[np.argmax(nb[ga] > ymax)] if np.any(nb[ga] > ymax) else None
        if leaves is not None:
            ax_lin.annotate(f"GA leaves the frame at t ≈ {leaves:.0f}\n(reaches {nb[ga, -1]:.3g} at t = {t[-1]:.0e})",
                            (leaves, ymax * 0.9), xytext=(-150, -20), textcoords="offset points",
                            fontsize=7.5, color=method_color("GA"),
                            arrowprops={"arrowstyle": "->", "color": method_color("GA"), "lw": 0.8})
        ax_lin.legend(loc="upper left", bbox_to_anchor=(0.0, 0.8), title="slope over the last decade (vs ln t)",
                      title_fontsize=7.5)
        ax_lin.set(xscale="log", ylim=(0, ymax), xlabel=STEP_LABEL + " (log scale)", ylabel=DIST_LABEL,
                   title=r"(b) against ln t: NPO is a straight line of slope $\sqrt{n_f}/\beta$")
        fig.suptitle(
            "Theorem 2: GA diverges linearly, NPO logarithmically (orthogonal inputs; " + _setting_text(a) + ")\n"
            r"dashed: GA $\eta_0\sqrt{\sum_i\|x_i\|^4}\,t$;  NPO Lemma 4 per coordinate, "
            r"$|b_i|=\frac{1}{\beta}\log(\beta C_i\eta_0 t+1)$, $C_i=2\|x_i\|^2(1+e^{m_{0,i}})^\beta$ (nothing fitted)"
        )
    return fig


def time_to_distance(arrays: dict) -> Figure:
    """Steps to first reach ``||b|| = D``: measured (markers) vs Theorem 2's closed forms (dashed)."""
    a = arrays["orthogonal"]
    dist, hit = a["distances"], a["hit_step"]
    dense, pred = a["dense_distances"], a["pred_time_dense"]
    T = float(a["steps"][-1])
    runs = _runs(a)
    npo_reach = max(dist[hit[i] > 0].max() for i, lbl, _ in runs if lbl != "GA")
    with style_context():
        fig = Figure(figsize=(11, 4.6), layout="constrained")
        ax_all, ax_zoom = fig.subplots(1, 2, sharey=True)
        for ax, zoom in ((ax_all, False), (ax_zoom, True)):
            for i, label, color in runs:
                ok = hit[i] > 0
                ax.plot(dist[ok], hit[i, ok], color=color, marker="o", ms=3.5, label=label)
                shown = np.isfinite(pred[i]) & (pred[i] <= 30 * T)
                ax.plot(dense[shown], pred[i, shown], color=color, ls="--", lw=1.1)
            ax.axhline(T, color="0.4", lw=0.8, ls=":")
            ax.set(yscale="log", ylim=(0.5, 30 * T), xlabel=r"distance D  (first step with $\|b\|_2 \geq D$)")
        ax_all.text(dist[0], T * 1.3, f"run length T = {T:.0e}", fontsize=7.5, color="0.35")
        ax_all.set_xscale("log", base=2)
        ax_all.set(ylabel="steps to reach D", title="(a) all distances (log D): GA's times grow like D")
        ax_zoom.set(xlim=(0, 1.5 * npo_reach),
                    title=r"(b) linear D: NPO's times grow like $e^{\beta D/\sqrt{n_f}}$ (straight lines)")
        handles = ax_all.get_legend_handles_labels()[0]
        ax_all.legend(handles=handles + _prediction_handles("Theorem 2 (symbolic thm2.exp_slowdown)"),
                      loc="lower right")
        fig.suptitle(
            "Time to reach distance D: about D steps for GA, about exp(D) for NPO (orthogonal inputs; "
            + _setting_text(a) + ")\n"
            r"dashed, per coordinate ($|b_i| = D/\sqrt{n_f}$): $T_{GA}=\frac{D/\sqrt{n_f}}{C\eta_0}$, "
            r"$C=\sqrt{\mathrm{mean}_i\|x_i\|^4}$;  $T_{NPO}=\frac{e^{\beta D/\sqrt{n_f}}-1}{\beta C\eta_0}$, "
            r"C = geometric mean of Lemma 4's $C_i$"
        )
    return fig


def outside(arrays: dict) -> Figure:
    """Distances on the forget sets outside the assumptions; dashed: the orthogonal-input formulas."""
    settings = [("correlated", "strongly correlated inputs"), ("overcomplete", r"$n_f > d$ ($XX^\top$ singular)")]
    with style_context():
        fig = Figure(figsize=(11, 4.4), layout="constrained")
        axes = fig.subplots(1, 2, sharey=True)
        for ax, (setting, title) in zip(axes, settings):
            a = arrays[setting]
            t = a["steps"][1:].astype(float)
            nb = np.linalg.norm(a["b"], axis=-1)[:, 1:]
            for i, label, color in _runs(a):
                ax.plot(t, nb[i], color=color, label=label)
                ax.plot(t, a["pred_distance"][i, 1:], color=color, ls="--", lw=1.0, alpha=0.6)
            ax.set(xscale="log", yscale="log", xlabel=STEP_LABEL, title=f"{title}\n{_setting_text(a)}")
        axes[0].set_ylabel(DIST_LABEL)
        handles = axes[0].get_legend_handles_labels()[0]
        axes[0].legend(handles=handles + _prediction_handles("orthogonal-input prediction"), loc="upper left")
        fig.suptitle(
            "Outside Theorem 2's assumptions (measured; dashed: the orthogonal-input predictions, which do not apply)"
        )
    return fig


def softmax_toy(arrays: dict) -> Figure:
    """Section 2.1: gradient norm on already-unlearned examples (GA flat, NPO decaying)."""
    a = arrays["toy"]
    t = a["steps"][1:].astype(float)
    u = a["unlearned_grad_norm"][:, 1:]
    nll = -a["logp"][:, 1:].mean(-1)
    k_over = float(a["ga_limit"])
    below = float(a["unlearned_below"])
    with style_context():
        fig = Figure(figsize=(11, 4.3), layout="constrained")
        ax_g, ax_p = fig.subplots(1, 2)
        for i, label, color in _runs(a):
            ax_g.plot(t, u[i], color=color, label=label)
            ax_p.plot(t, nll[i], color=color, label=label)
        ax_g.axhspan(k_over, np.sqrt(2.0), color=method_color("GA"), alpha=0.12, lw=0)
        ax_g.text(0.98, 0.88, r"band: GA's limit $\|e_y-p\|\,\|x\| \in [\sqrt{K/(K-1)}, \sqrt{2}]$",
                  transform=ax_g.transAxes, ha="right", va="top", fontsize=7.5, color=method_color("GA"))
        npo = [i for i, law in enumerate(a["law"]) if law == "npo"]
        # A 1/t guide, offset below the largest-beta run: NPO's weight W ~ 1/t once pi ~ 0.
        j = npo[-1]
        start = t[np.argmax(np.isfinite(u[j]))]
        mask = t >= start
        ax_g.plot(t[mask], 0.4 * u[j, -1] * t[-1] / t[mask], color="0.4", ls="--", lw=1.0, label=r"$\propto 1/t$ (guide)")
        ax_g.set(xscale="log", yscale="log", xlabel=STEP_LABEL,
                 ylabel=r"mean $\|\nabla_\theta \ell_i\|$ over unlearned examples",
                 title=rf"(a) gradient on already-unlearned examples ($\pi_\theta(y|x) \leq {below:g}$)")
        ax_g.legend(loc="lower left")
        ax_p.axhline(-np.log(below), color="0.4", lw=0.8, ls=":")
        ax_p.text(t[0], -np.log(below) * 1.15, f"unlearned: pi below {below:g}", fontsize=7.5, color="0.35")
        ax_p.set(xscale="log", yscale="log", xlabel=STEP_LABEL,
                 ylabel=r"mean $-\log \pi_\theta(y_i|x_i)$ on the forget set",
                 title="(b) how far the forget set is pushed: like t for GA, like log t for NPO")
        fig.suptitle(
            f"Section 2.1: {int(a['n_classes'])}-class linear softmax, {a['logp'].shape[-1]} orthonormal forget inputs: "
            "GA's push on unlearned examples stays of constant size, NPO's decays"
        )
    return fig


def thm2_figures(config: dict, arrays: dict) -> dict[str, Figure]:
    """All figures of ``thm2``: ``{name: Figure}``."""
    return {
        "thm2_distance": distance(arrays),
        "thm2_time_to_distance": time_to_distance(arrays),
        "thm2_outside": outside(arrays),
        "thm2_softmax_toy": softmax_toy(arrays),
    }
