"""The tutorial notebook's sliders: NPO's weight curve and the race, as functions of beta and eta.

Each slider is a thin ``ipywidgets`` layer over a plain function that the tests check:

* :func:`weight_curve` -- NPO's weight ``W = 2 sigma(beta log(pi / pi_ref))`` over a range of
  ``log(pi / pi_ref)``, beside GA's constant 1;
* :func:`race_curves` -- the tutorial's 2-D race (section 3) of GA against NPO at ``beta``, at
  learning rate ``eta``: ``||theta_t - theta_ref||`` and the retain accuracy over the steps.

:func:`weight_explorer` and :func:`race_explorer` put sliders on them (``pip install -e
".[notebook]"`` installs ``ipywidgets``); evaluated last in a notebook cell, each shows its
sliders and redraws on every move (a race takes about 2 s on a 2-core laptop).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from figures.style import method_color
from theory import get_method, npo_weight
from theory.validate import check_int, check_positive

__all__ = ["weight_curve", "race_curves", "weight_explorer", "race_explorer"]


def weight_curve(beta: float, *, log_ratio_min: float = -10.0, points: int = 201) -> dict:
    """NPO's weight against ``r = log(pi / pi_ref)`` from ``log_ratio_min`` to 0, at ``beta``.

    Returns ``{"log_ratio": (points,), "weight": (points,)}``; the weight is 1 at ``r = 0``
    (NPO's first step is GA's) and ``2 sigma(beta r)`` everywhere.
    """
    check_positive(beta, "beta")
    points = check_int(points, "points", 2)
    if not np.isfinite(log_ratio_min) or log_ratio_min >= 0:
        raise ValueError(f"log_ratio_min must be a finite negative number, got {log_ratio_min!r}")
    r = np.linspace(float(log_ratio_min), 0.0, points)
    w = np.asarray(npo_weight(r, np.zeros_like(r), beta=float(beta)), np.float64)
    return {"log_ratio": r, "weight": w}


def race_curves(beta: float, eta: float, *, steps: int = 1000, every: int = 10, data: Optional[dict] = None) -> dict:
    """The race of section 3 (GA and NPO at ``beta``, gradient descent at learning rate ``eta``)
    on ``data`` (default: the page's 24 points, :func:`~synthetic.worlds.tutorial.run.blobs`).

    Returns what :func:`~synthetic.worlds.tutorial.run.race` returns (``labels``, ``steps``,
    ``distance (2, E)``, ``retain_accuracy (2, E)``, ...).
    """
    from synthetic.worlds.tutorial.run import blobs, race

    check_positive(beta, "beta")
    check_positive(eta, "eta")
    data = blobs(seed=0, per_class=12, n_forget=4) if data is None else data
    return race(data, [get_method("GA"), get_method("NPO", beta=float(beta))], eta=float(eta), steps=steps,
                every=every)


def _ipywidgets():
    try:
        import ipywidgets
    except ImportError as err:  # the notebook extra is optional
        raise ImportError('the sliders need ipywidgets: pip install -e ".[notebook]"') from err
    return ipywidgets


def _show(fig) -> None:
    """Show ``fig`` in the slider's output (a notebook draws it) and free it."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(fig)
    plt.close(fig)


def weight_explorer():
    """A slider for beta over NPO's weight curve (GA's weight, 1, beside it)."""
    widgets = _ipywidgets()
    import matplotlib.pyplot as plt

    def draw(beta=1.0):
        curve = weight_curve(beta)
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        ax.plot(curve["log_ratio"], np.ones_like(curve["log_ratio"]), color=method_color("GA"), label="GA: 1")
        ax.plot(curve["log_ratio"], curve["weight"], color=method_color("NPO"), lw=2, label=f"NPO, β = {beta:.3g}")
        ax.set_xlabel("log(π / π_ref): how far the example is forgotten")
        ax.set_ylabel("weight W")
        ax.set_ylim(0, 1.1)
        ax.legend(loc="lower right")
        _show(fig)

    return widgets.interactive(draw, beta=widgets.FloatLogSlider(value=1.0, base=10, min=-3, max=1, step=0.1,
                                                                  description="β", continuous_update=False))


def race_explorer():
    """Sliders for beta and the learning rate over the race: distance and retain accuracy."""
    widgets = _ipywidgets()
    import matplotlib.pyplot as plt

    def draw(beta=1.0, eta=1.0):
        r = race_curves(beta, eta)
        fig, (ax_d, ax_a) = plt.subplots(1, 2, figsize=(10, 3.2))
        for k, label in enumerate(r["labels"]):
            color = method_color(str(label).split(" ")[0])
            later = r["steps"] > 0
            ax_d.plot(r["steps"][later], r["distance"][k, later], color=color, label=str(label))
            ax_a.plot(r["steps"], r["retain_accuracy"][k], color=color, label=str(label))
        ax_d.set_xscale("log")
        ax_d.set_xlabel("step (log scale)")
        ax_d.set_ylabel("||θ_t − θ_ref||")
        ax_a.set_xlabel("step")
        ax_a.set_ylabel("retain accuracy")
        ax_d.legend()
        _show(fig)

    slider = dict(base=10, step=0.1, continuous_update=False)
    return widgets.interactive(draw, beta=widgets.FloatLogSlider(value=1.0, min=-3, max=1, description="β", **slider),
                               eta=widgets.FloatLogSlider(value=1.0, min=-2, max=0, description="η", **slider))
