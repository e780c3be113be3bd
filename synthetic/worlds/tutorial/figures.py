"""Figures and the animation of the tutorial (``docs/tutorial.md``), from arrays.

Each function takes the arrays of one step of :mod:`synthetic.worlds.tutorial.run`
(without the experiment's prefix, e.g. the dict :func:`~synthetic.worlds.tutorial.run.race`
returns) and returns a matplotlib Figure, or for :func:`race_animation` a
``matplotlib.animation.FuncAnimation``; :func:`all_figures` draws them all from the
experiment's arrays.

* :func:`losses` -- ``L_GA`` and ``L_NPO`` against ``log pi``: GA has no floor, NPO does.
* :func:`weight` -- NPO's weight ``W`` against ``log(pi / pi_ref)`` for several betas.
* :func:`race_animation` / :func:`race_strip` -- the 2-D race of GA and NPO: the model's
  probability over the plane, the decision boundary and ``||theta - theta_ref||``.
* :func:`log_time` -- the race's distance against ``log t``: NPO's is a straight line.
* :func:`crossing_times` -- Theorem 2: steps to reach a distance, simulated and closed form.
* :func:`lm_collapse` -- a small transformer's utility and forget probability over steps.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib import animation
from matplotlib.figure import Figure

from synthetic.worlds.section4 import figures as section4
from figures.style import beta_colors, method_color, style_context

__all__ = ["losses", "weight", "race_animation", "race_strip", "log_time", "crossing_times", "lm_collapse", "all_figures",
           "ANIMATION_FPS"]

ANIMATION_FPS = 10
"""Frames per second of the race's GIF."""


def _npo_label(beta) -> str:
    return f"NPO β={float(beta):g}"


def losses(curves: dict) -> Figure:
    """``L_GA = log pi`` and ``L_NPO = (2/beta) log(1 + (pi/pi_ref)^beta)`` of one forget example,
    each minus its value at ``pi = pi_ref`` (where unlearning starts): GA falls without end,
    NPO stops at ``-(2/beta) log 2``."""
    x, betas, at_ref = curves["log_pi"], curves["betas"], int(np.argmin(np.abs(curves["log_pi"] - curves["log_ref"])))
    with style_context():
        fig = Figure(figsize=(5.2, 3.5))
        ax = fig.subplots()
        ax.plot(x, curves["ga"] - curves["ga"][at_ref], color=method_color("GA"), lw=2.2, label=r"GA: $\log\pi$")
        for b, c, y in zip(betas, beta_colors(betas), curves["npo"]):
            ax.plot(x, y - y[at_ref], color=c, label=_npo_label(b))
            ax.axhline(-2 / b * np.log(2), color=c, lw=0.7, ls=":")
        ax.axvline(curves["log_ref"], color="0.5", lw=0.8, ls=":")
        ax.annotate(r"start: $\pi=\pi_{ref}$", (curves["log_ref"], 0), xytext=(-4, 8), textcoords="offset points",
                    fontsize=7.5, color="0.3", ha="right")
        ax.set_xlabel(r"$\log \pi_\theta(y|x)$ of a forget example (unlearning moves left)")
        ax.set_ylabel(r"loss $-$ loss at $\pi_{ref}$")
        ax.set_title(r"GA's loss has no floor; NPO's stops at $-(2/\beta)\log 2$ (dotted)")
        ax.legend(loc="lower right")
        fig.tight_layout()
    return fig


def weight(curves: dict) -> Figure:
    """NPO's weight ``W = 2 pi^beta / (pi^beta + pi_ref^beta)`` against ``log(pi / pi_ref)``."""
    ratio = curves["log_pi"] - curves["log_ref"]
    betas = curves["betas"]
    with style_context():
        fig = Figure(figsize=(5.2, 3.4))
        ax = fig.subplots()
        ax.axhline(1, color=method_color("GA"), lw=2.2, label="GA (W = 1)")
        for b, c, w in zip(betas, beta_colors(betas), curves["weight"]):
            ax.plot(ratio, w, color=c, label=_npo_label(b))
        ax.set_xlabel(r"$\log(\pi_\theta / \pi_{ref})$ (0: the reference model)")
        ax.set_ylabel(r"weight $W_\theta$ of the example's gradient")
        ax.set_ylim(0, 1.3)
        ax.set_title(r"NPO lets go of forgotten examples; $\beta\to 0$ is GA")
        ax.legend(loc="upper left")
        fig.tight_layout()
    return fig


_SHADES = matplotlib.colormaps["RdBu_r"].resampled(12)
"""Bands of ``pi(y=1|x)``, blue (0) to red (1); the darkest are left out (``vmin``, ``vmax``), so
the points show."""


class _Plane:
    """One panel of the race: ``pi_theta(y=1|x)`` over the plane in bands, the decision
    boundary ``theta . (x1, x2, 1) = 0`` and the points; :meth:`show` moves it to a record
    (only the image and the line change, so an animation frame is cheap)."""

    def __init__(self, ax, race: dict, c: int, n: int = 160):
        self.race, self.c = race, c
        x, y, f = race["x"], race["y"], race["forget"]
        self.lo, self.hi = x[:, :2].min(axis=0) - 1.0, x[:, :2].max(axis=0) + 1.0
        g1, g2 = np.meshgrid(np.linspace(self.lo[0], self.hi[0], n), np.linspace(self.lo[1], self.hi[1], n))
        self.plane = np.stack([g1.ravel(), g2.ravel(), np.ones(g1.size)], axis=1)
        self.shape = g1.shape
        extent = (self.lo[0], self.hi[0], self.lo[1], self.hi[1])
        self.image = ax.imshow(np.zeros(self.shape), origin="lower", extent=extent, cmap=_SHADES, vmin=-0.15,
                               vmax=1.15, alpha=0.75, aspect="auto", interpolation="nearest")
        (self.boundary,) = ax.plot([], [], color="k", lw=1.2)
        keep = np.setdiff1d(np.arange(len(y)), f)
        for label, color in ((1, "#b2182b"), (0, "#2166ac")):
            rows = keep[y[keep] == label]
            ax.scatter(x[rows, 0], x[rows, 1], s=16, color=color, edgecolor="white", linewidth=0.5, zorder=3)
        ax.scatter(x[f, 0], x[f, 1], s=70, marker="X", color="#b2182b", edgecolor="black", linewidth=0.9, zorder=4)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        ax.set_xlim(self.lo[0], self.hi[0])
        ax.set_ylim(self.lo[1], self.hi[1])

    def show(self, e: int) -> None:
        theta = self.race["theta"][self.c, e]
        z = np.clip(self.plane @ theta, -500, 500)
        self.image.set_data((1.0 / (1.0 + np.exp(-z))).reshape(self.shape))
        # the boundary theta_1 x1 + theta_2 x2 + theta_3 = 0, along its longer axis
        if abs(theta[1]) >= abs(theta[0]):
            x1 = np.array([self.lo[0], self.hi[0]])
            self.boundary.set_data(x1, -(theta[0] * x1 + theta[2]) / theta[1])
        else:
            x2 = np.array([self.lo[1], self.hi[1]])
            self.boundary.set_data(-(theta[1] * x2 + theta[2]) / theta[0], x2)


def _method_label(race: dict, c: int) -> str:
    return str(race["labels"][c]).replace("beta", "β")


def race_strip(race: dict, frames: int = 4) -> Figure:
    """Still frames of the race for print: GA's row above NPO's, ``frames`` evenly spaced steps."""
    steps = race["steps"]
    picks = np.linspace(0, len(steps) - 1, frames).round().astype(int)
    with style_context():
        fig = Figure(figsize=(2.1 * frames, 4.6))
        axes = fig.subplots(2, frames)
        for c in range(2):
            for k, e in enumerate(picks):
                ax = axes[c, k]
                _Plane(ax, race, c).show(e)
                ax.set_title(f"{_method_label(race, c)}, step {steps[e]}\n"
                             rf"$\|\theta-\theta_{{ref}}\|$ = {race['distance'][c, e]:.3g}", fontsize=8.5)
        fig.suptitle(r"Unlearning the four $\times$ points: $\pi_\theta(y{=}1|x)$ over the plane (red = class 1), "
                     "the boundary in black")
        fig.tight_layout()
    return fig


def race_animation(race: dict, every: int = 2, dpi: int = 90) -> animation.FuncAnimation:
    """The race as an animation: GA's plane, NPO's plane and ``||theta - theta_ref||`` against the
    step, one frame per ``every`` records. Save with
    ``anim.save(path, writer=animation.PillowWriter(fps=ANIMATION_FPS))``."""
    steps, dist = race["steps"], race["distance"]
    frames = list(range(0, len(steps), every))
    if frames[-1] != len(steps) - 1:
        frames.append(len(steps) - 1)
    colors = [method_color("GA"), method_color("NPO")]
    with style_context():
        fig = Figure(figsize=(10.5, 3.8), dpi=dpi)
        grid_spec = fig.add_gridspec(2, 3, width_ratios=[1, 1, 1.2], hspace=0.15)
        axes = [fig.add_subplot(grid_spec[:, c]) for c in range(2)]
        planes = [_Plane(ax, race, c) for c, ax in enumerate(axes)]
        both, npo = fig.add_subplot(grid_spec[0, 2]), fig.add_subplot(grid_spec[1, 2])
        lines, dots = [], []
        for ax, runs in ((both, (0, 1)), (npo, (1,))):
            for c in runs:
                lines.append((c, ax.plot([], [], color=colors[c], lw=2, label=_method_label(race, c))[0]))
                dots.append((c, ax.plot([], [], "o", color=colors[c], ms=4)[0]))
            ax.set_xlim(0, steps[-1])
            ax.set_ylim(0, 1.1 * np.nanmax(dist[list(runs)]))
        rate = float(race["predicted_ga_rate"])
        both.plot(steps, rate * steps, color="0.4", ls="--", lw=1, label=r"$\eta\,\|\mathrm{mean}_i\, s_i x_i\|\,t$")
        both.set_xticklabels([])
        both.legend(loc="upper left", fontsize=7)
        both.set_title(r"$\|\theta-\theta_{ref}\|$: GA runs away linearly")
        npo.set_title("NPO alone, zoomed in: it slows down", fontsize=8.5, pad=3)
        npo.set_xlabel("gradient-descent step")
        text = both.text(0.97, 0.08, "", transform=both.transAxes, ha="right", va="bottom", fontsize=8,
                         family="monospace")
        fig.text(0.01, 0.03, r"$\times$ the forget points (class 1), dots the others; shading $\pi_\theta(y{=}1|x)$, "
                 "red = class 1; black line: the decision boundary", fontsize=8, color="0.25")
        fig.subplots_adjust(left=0.01, right=0.97, bottom=0.13, top=0.9, wspace=0.12)

        def draw(e):
            for c in range(2):
                planes[c].show(e)
                axes[c].set_title(f"{_method_label(race, c)}: step {steps[e]}")
            for c, line in lines:
                line.set_data(steps[: e + 1], dist[c, : e + 1])
            for c, dot in dots:
                dot.set_data([steps[e]], [dist[c, e]])
            text.set_text(f"GA  {dist[0, e]:7.1f}\nNPO {dist[1, e]:7.2f}")
            return []

        return animation.FuncAnimation(fig, draw, frames=frames, blit=False, interval=1000 / ANIMATION_FPS)


def log_time(race: dict) -> Figure:
    """``||theta - theta_ref||`` of each method against the step on a logarithmic axis, one panel
    per method: growth linear in ``t`` curves upward there, growth linear in ``log t`` (NPO's)
    is a straight line."""
    names = [str(m) for m in race["labels"]]
    steps, dist = np.asarray(race["steps"]), np.asarray(race["distance"])
    later = steps > 0
    with style_context():
        fig = Figure(figsize=(4.2 * len(names), 3.4))
        axes = np.atleast_1d(fig.subplots(1, len(names)))
        for c, (ax, name) in enumerate(zip(axes, names)):
            ax.plot(steps[later], dist[c, later], color=method_color(name.split(" ")[0]), lw=1.8)
            ax.set_xscale("log")
            ax.set_xlabel("step t (log scale)")
            ax.set_ylabel(r"$\|\theta_t - \theta_{ref}\|$")
            shape = "straight: growth ∝ log t" if name.startswith("NPO") else "curves up: growth ∝ t"
            ax.set_title(f"{name.replace('beta', 'β')}: {shape}")
        fig.tight_layout()
    return fig


def crossing_times(thm2: dict) -> Figure:
    """Steps to first reach ``||b|| = D``: simulated (dots) and the closed-form asymptotics of
    :func:`theory.theorem2.predicted_time_to_distance` (dashed), against ``D`` on a log axis
    (left) and a linear one (right: NPO's times, exponential in ``D``, are straight lines of
    slope ``beta / sqrt(n_f)`` in ``ln T``)."""
    labels = [str(x) for x in thm2["labels"]]
    npo = [i for i, s in enumerate(labels) if s != "GA"]
    betas = [float(labels[i].split("=")[1]) for i in npo]
    colors = {i: c for i, c in zip(npo, beta_colors(betas))}
    colors.update({i: method_color("GA") for i, s in enumerate(labels) if s == "GA"})
    D = thm2["distances"]
    with style_context():
        fig = Figure(figsize=(10.4, 3.8))
        axes = fig.subplots(1, 2)
        for ax, xscale in zip(axes, ("log", "linear")):
            for j, label in enumerate(labels):
                ax.plot(D, thm2["predicted"][j], color=colors[j], lw=1.4, ls="--")
                hit = thm2["measured"][j] > 0
                ax.plot(D[hit], thm2["measured"][j][hit], "o", color=colors[j], ms=5,
                        label=label.replace("beta", "β"))
            ax.axhline(float(thm2["steps"]), color="0.5", lw=0.8, ls=":")
            ax.annotate("end of the run", (D[0], float(thm2["steps"])), xytext=(2, 3), textcoords="offset points",
                        fontsize=7.5, color="0.4")
            if xscale == "log":
                ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_ylim(0.3, 30 * float(thm2["steps"]))
            ax.set_xlabel(r"distance $D$ = $\|X(\theta-\theta_{init})\|$" + (" (linear axis)" if xscale == "linear" else ""))
            ax.set_ylabel("first step with distance ≥ D")
        axes[0].set_title("Time to reach D: GA doubles when D doubles")
        axes[1].set_title("Against linear D: NPO's lines are straight,\nits time is exponential in D")
        axes[0].legend(loc="center left")
        fig.suptitle("dots: simulated; dashed: the closed-form asymptotics", fontsize=9)
        fig.tight_layout()
    return fig


def lm_collapse(lm: dict) -> Figure:
    """The small transformer's model utility and forget-answer probability over unlearning steps."""
    names = [str(m) for m in lm["methods"]]
    npo = [i for i, n in enumerate(names) if n.startswith("NPO beta")]
    blues = dict(zip(npo, beta_colors([float(names[i].split("=")[1]) for i in npo], cmap="Blues")))
    steps = lm["steps"]
    with style_context():
        fig = Figure(figsize=(9, 3.3))
        ax_u, ax_p = fig.subplots(1, 2)
        for c, name in enumerate(names):
            method = name.split(" ")[0]
            color = blues.get(c, method_color(method))
            style = {"color": color, "label": name.replace("beta", "β"), "ls": "--" if "+" in method else "-"}
            ax_u.plot(steps, lm["model_utility"][c], **style)
            ax_p.plot(steps, lm["forget_probability"][c], **style)
        ax_u.set_ylim(0, None)
        ax_u.set_xlabel("unlearning step")
        ax_u.set_ylabel("model utility (higher is better)")
        ax_u.set_title("Utility: what the model still knows")
        ax_p.set_yscale("log")
        ax_p.set_xlabel("unlearning step")
        ax_p.set_ylabel("mean probability of the forget answers")
        ax_p.set_title("Forgetting: the answers' probability")
        ax_u.legend(loc="lower left")
        fig.tight_layout()
    return fig


def all_figures(config: dict, arrays: dict) -> dict:
    """Every figure of the tutorial (the race's animation included) from the experiment's arrays."""
    curves, race = arrays["curves"], arrays["race"]
    return {
        "tutorial_losses": losses(curves),
        "tutorial_weight": weight(curves),
        "tutorial_race": race_animation(race),
        "tutorial_race_strip": race_strip(race),
        "tutorial_log_time": log_time(race),
        "tutorial_thm2": crossing_times(arrays["thm2"]),
        "tutorial_fig4": section4.fig4(arrays["fig4"]),
        "tutorial_lm": lm_collapse(arrays["lm"]),
    }
