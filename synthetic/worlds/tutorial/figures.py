"""Figures and the animation of the tutorial (``docs/tutorial.md``), from arrays.

Each function takes the arrays of one step of :mod:`synthetic.worlds.tutorial.run`
(without the experiment's prefix, e.g. the dict :func:`~synthetic.worlds.tutorial.run.race`
returns) and returns a matplotlib Figure, or for :func:`race_animation` a
``matplotlib.animation.FuncAnimation``; :func:`all_figures` draws them all from the
experiment's arrays.

* :func:`losses` -- ``L_GA`` and ``L_NPO`` against ``log pi``: GA has no floor, NPO does.
* :func:`weight` -- NPO's weight ``W`` against ``log(pi / pi_ref)`` for several betas.
* :func:`race_animation` / :func:`race_strip` -- the 2-D race of GA and NPO (or any runs):
  the model's probability over the plane, the decision boundary beside the reference's,
  ``||theta - theta_ref||`` and the retain NLL, at log-spaced steps.
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
from theory.validate import check_int

__all__ = ["losses", "weight", "race_animation", "race_strip", "log_spaced_records", "log_time", "crossing_times",
           "lm_collapse", "all_figures", "ANIMATION_FPS", "RACE_STEPS_SHOWN", "RACE_HOLD_SECONDS", "RACE_FRAMES"]

ANIMATION_FPS = 10
"""Frames per second of the race's GIF."""

RACE_STEPS_SHOWN = 40
"""Distinct recorded steps the race's animation shows, log-spaced (:func:`log_spaced_records`)."""

RACE_HOLD_SECONDS = 2
"""How long the race's animation holds its last frame before it loops."""

RACE_FRAMES = RACE_STEPS_SHOWN + RACE_HOLD_SECONDS * ANIMATION_FPS
"""Frames of the race's animation (60) for a race of at least :data:`RACE_STEPS_SHOWN` records, as
the page's (101): the log-spaced steps, then the last one repeated for :data:`RACE_HOLD_SECONDS`."""


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

_GHOST = {"color": "0.3", "lw": 1.0, "ls": (0, (4, 3)), "alpha": 0.6}
"""The reference model's decision boundary, drawn under every frame: where unlearning started."""

_BETA_RAMPS = {"NPO": "Blues", "SimNPO": "GnBu", "DPO": "Greens", "KTO": "YlOrBr"}
"""The colormap of a method run at several betas (:func:`figures.style.beta_colors`); others: Purples."""


def log_spaced_records(steps, n: int) -> np.ndarray:
    """``n`` record indices into ``steps`` (increasing recorded steps), spaced evenly in ``log step``:
    the first record, the second, then each the record nearest (in ``log step``) to the next
    point of a geometric sequence from the last pick to the last record, at least one record
    after the last pick.

    Early on, where the geometric sequence is denser than the records, that takes every
    record; later it follows the sequence. So all ``min(n, E)`` picks are distinct, strictly
    increasing, the first is 0 and the last is ``E - 1`` (``E = len(steps)``); on the race's
    ``0, 10, ..., 1000`` and ``n = 4`` they are the steps 0, 10, 100 and 1000.

    Why: NPO does everything in its first tens of steps and GA keeps running away to the end;
    evenly spaced frames would squeeze the first into one frame.
    """
    steps = np.asarray(steps, np.float64)
    n, E = check_int(n, "n", 2), len(steps)
    if E == 0 or np.any(np.diff(steps) <= 0) or steps[0] < 0:
        raise ValueError(f"steps must be non-empty, non-negative and strictly increasing, got {steps.tolist()}")
    if n >= E:
        return np.arange(E)
    if n == 2:
        return np.array([0, E - 1])
    picks = [0, 1]
    while len(picks) < n:
        p, left = picks[-1], n - len(picks)               # ``left`` picks to go, the last one E - 1
        target = np.log(steps[p]) + (np.log(steps[-1]) - np.log(steps[p])) / left
        later = np.arange(p + 1, E - left + 1)              # leave a record for each later pick
        picks.append(int(later[np.argmin(np.abs(np.log(steps[later]) - target))]))
    return np.array(picks)


def _run_colors(labels) -> list:
    """One colour per run: its method's own (:func:`figures.style.method_color`), or, for a method
    run at several betas, shades of its ramp by beta (light = small beta)."""
    names = [str(label).split(" beta=")[0] for label in labels]
    betas = [float(str(label).split(" beta=")[1]) if " beta=" in str(label) else None for label in labels]
    colors = [method_color(name) for name in names]
    for name in set(names):
        runs = [c for c, other in enumerate(names) if other == name and betas[c] is not None]
        if len({betas[c] for c in runs}) > 1:
            shades = beta_colors([betas[c] for c in runs], cmap=_BETA_RAMPS.get(name, "Purples"))
            for c, color in zip(runs, shades):
                colors[c] = color
    return colors


def _boundary(theta, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """Two points of the line ``theta_1 x1 + theta_2 x2 + theta_3 = 0`` across the box ``lo``-``hi``,
    parametrised along its longer axis (so a steep line is not lost to a division)."""
    if abs(theta[1]) >= abs(theta[0]):
        x1 = np.array([lo[0], hi[0]])
        return x1, -(theta[0] * x1 + theta[2]) / theta[1]
    x2 = np.array([lo[1], hi[1]])
    return -(theta[1] * x2 + theta[2]) / theta[0], x2


class _Plane:
    """One panel of the race: ``pi_theta(y=1|x)`` over the plane in bands, the decision
    boundary ``theta . (x1, x2, 1) = 0``, the reference model's boundary as a dashed ghost and
    the points; :meth:`show` moves it to a record (only the image and the line change, so an
    animation frame is cheap)."""

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
        ax.plot(*_boundary(np.asarray(race["theta_ref"]), self.lo, self.hi), zorder=2, **_GHOST)
        (self.boundary,) = ax.plot([], [], color="k", lw=1.2, zorder=2)
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
        self.boundary.set_data(*_boundary(theta, self.lo, self.hi))


def _method_label(race: dict, c: int) -> str:
    return str(race["labels"][c]).replace("beta", "β")


def _numbers(race: dict, c: int, e: int) -> str:
    """Run ``c``'s distance and retain NLL at record ``e``, for a panel's title (three digits,
    whole numbers from 1000 on: ``2044``, not ``2.04e+03``)."""
    d, nll = (f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}" for v in (race["distance"][c, e], race["retain_nll"][c, e]))
    return rf"$\|\theta-\theta_{{ref}}\|$ {d}, retain NLL {nll}"


def _caption(race: dict) -> str:
    return (rf"$\times$ the {len(race['forget'])} forget points (class 1), dots the others; shading "
            r"$\pi_\theta(y{=}1|x)$, red = class 1; black line: the decision boundary, dashed: the reference model's")


def race_strip(race: dict, frames: int = 4) -> Figure:
    """Still frames of the race for print: one row per run, ``frames`` log-spaced steps
    (:func:`log_spaced_records`: 0, 10, 100 and 1000 for the page's race), each with the
    reference model's boundary as a dashed ghost and the run's distance and retain NLL."""
    steps, C = race["steps"], len(race["labels"])
    picks = log_spaced_records(steps, frames)
    colors = _run_colors(race["labels"])
    with style_context():
        fig = Figure(figsize=(2.3 * len(picks), 2.35 * C + 0.75))
        axes = fig.subplots(C, len(picks), squeeze=False)
        for c in range(C):
            for k, e in enumerate(picks):
                ax = axes[c, k]
                _Plane(ax, race, c).show(e)
                ax.set_title(f"{_method_label(race, c)}, step {steps[e]}\n{_numbers(race, c, e)}", fontsize=8)
                for spine in ax.spines.values():
                    spine.set(color=colors[c], linewidth=1.6)
        fig.suptitle(rf"Unlearning the {len(race['forget'])} $\times$ points: $\pi_\theta(y{{=}}1|x)$ over the plane "
                     "(red = class 1), the boundary in black, the reference model's dashed")
        fig.tight_layout()
    return fig


def race_animation(race: dict, frames: int = RACE_STEPS_SHOWN, hold: float = RACE_HOLD_SECONDS,
                   dpi: int = 90) -> animation.FuncAnimation:
    """The race as an animation, for any number of runs: each run's plane (the reference
    model's boundary dashed), then ``||theta - theta_ref||`` and the retain NLL against the step,
    both on log axes (GA's grow without bound, NPO's level off).

    ``frames`` log-spaced records (:func:`log_spaced_records`), then the last one repeated for
    ``hold`` seconds: :data:`RACE_FRAMES` frames in all for a race of at least ``frames``
    records. Save with ``anim.save(path, writer=animation.PillowWriter(fps=ANIMATION_FPS))``
    (Pillow merges the repeats into one long last frame of the GIF)."""
    steps, dist, nll = np.asarray(race["steps"]), np.asarray(race["distance"]), np.asarray(race["retain_nll"])
    labels, C = [str(m) for m in race["labels"]], len(race["labels"])
    records = log_spaced_records(steps, frames)
    sequence = list(records) + [int(records[-1])] * int(round(hold * ANIMATION_FPS))
    colors = _run_colors(labels)
    with style_context():
        fig = Figure(figsize=(2.9 * C + 4.4, 4.0), dpi=dpi)
        grid_spec = fig.add_gridspec(2, C + 1, width_ratios=[1] * C + [1.45], hspace=0.3)
        axes = [fig.add_subplot(grid_spec[:, c]) for c in range(C)]
        planes = [_Plane(ax, race, c) for c, ax in enumerate(axes)]
        for ax, color in zip(axes, colors):
            for spine in ax.spines.values():
                spine.set(color=color, linewidth=2)
        ax_d = fig.add_subplot(grid_spec[0, C])
        ax_n = fig.add_subplot(grid_spec[1, C], sharex=ax_d)
        curves, handles = [], []
        for ax, values in ((ax_d, dist), (ax_n, nll)):
            handles = [ax.plot([], [], color=colors[c], lw=2, label=_method_label(race, c))[0] for c in range(C)]
            curves += [(values[c], line, ax.plot([], [], "o", color=colors[c], ms=4)[0])
                       for c, line in enumerate(handles)]
            ax.set_yscale("log", nonpositive="mask")
            shown = values[values > 0]
            ax.set_ylim(shown.min() / 3, shown.max() * 2)
            ax.yaxis.tick_right()
        # steps on a log axis past the first record, as the frames are spaced; 0 at the left edge
        linear_to = max(float(steps[min(1, len(steps) - 1)]), 1.0)
        ax_d.set_xscale("symlog", linthresh=linear_to, linscale=0.4)
        ax_d.set_xlim(0, steps[-1])
        if "GA" in labels:
            later = steps > 0
            (rate,) = ax_d.plot(steps[later], float(race["predicted_ga_rate"]) * steps[later], color="0.4", ls="--",
                                lw=1)
            ax_d.legend([rate], [r"GA's rate: $\eta\,\|\mathrm{mean}_i\, s_i x_i\|\,t$"], loc="center right",
                        fontsize=7)
        ax_d.tick_params(labelbottom=False)
        ax_d.set_title(r"$\|\theta-\theta_{ref}\|$ (log scale)", pad=3)
        if steps[0] == 0:   # the first record is the reference model, the same for every run
            ax_n.axhline(nll[0, 0], **_GHOST)
            ax_n.annotate("the reference model", (steps[-1], nll[0, 0]), xytext=(-3, -3), textcoords="offset points",
                          fontsize=7, color="0.35", ha="right", va="top")
        ax_n.legend(handles=handles, loc="upper left", fontsize=7, ncols=1 if C <= 3 else 2)
        ax_n.set_title(r"retain NLL, mean $-\log\pi_\theta(y|x)$ (log scale)", pad=3)
        ax_n.set_xlabel(f"gradient-descent step (log scale past {linear_to:g})")
        fig.text(0.01, 0.02, _caption(race), fontsize=8, color="0.25")
        fig.subplots_adjust(left=0.01, right=0.94, bottom=0.2, top=0.87, wspace=0.1)

        def draw(e):
            for c in range(C):
                planes[c].show(e)
                axes[c].set_title(f"{_method_label(race, c)}: step {steps[e]}\n{_numbers(race, c, e)}", fontsize=8.5)
            for values, line, dot in curves:
                line.set_data(steps[: e + 1], values[: e + 1])
                dot.set_data([steps[e]], [values[e]])
            return []

        return animation.FuncAnimation(fig, draw, frames=sequence, blit=False, interval=1000 / ANIMATION_FPS)


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
        for c, (ax, name, color) in enumerate(zip(axes, names, _run_colors(names))):
            ax.plot(steps[later], dist[c, later], color=color, lw=1.8)
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
