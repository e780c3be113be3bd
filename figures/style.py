"""The look shared by every figure of the toolkit: one colour per method, beta colours, bands.

A method keeps the same colour in every figure so that a reader can follow, say, NPO+RT from
figure 4 to the grid search without reading legends twice. Families share a hue (the paper's
section 2): gradient ascent in reds and oranges, NPO in blues, DPO in greens, IDK purple,
KTO browns, SimNPO teal and cyan.
"""

from __future__ import annotations

import hashlib
from typing import Optional

import matplotlib
import numpy as np

from synthetic.analysis import finite_seed_mean
from theory.methods import METHODS

__all__ = [
    "METHOD_COLORS",
    "RC",
    "apply_style",
    "style_context",
    "method_color",
    "uses_beta",
    "beta_colors",
    "seed_band",
    "plot_band",
    "heatmap",
]

METHOD_COLORS: dict[str, str] = {
    # gradient ascent: reds and oranges
    "GA": "#d62728",
    "GA+RT": "#ff7f0e",
    "GA+KL": "#8b0000",
    # uninformed answer
    "IDK+RT": "#8e44ad",
    # DPO: greens
    "DPO": "#74c476",
    "DPO+RT": "#2ca02c",
    "DPO+KL": "#00441b",
    # KTO: browns
    "KTO": "#b8860b",
    "KTO+RT": "#6f4e37",
    # NPO: blues, the darkest for the paper's best method
    "NPO": "#4a90d9",
    "NPO+RT": "#08306b",
    "NPO+KL": "#9ecae1",
    # SimNPO: teal and cyan
    "SimNPO": "#17becf",
    "SimNPO+RT": "#008080",
}
"""The colour of each named method (``theory.methods.METHODS``), the same in every figure."""

RC: dict = {
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "figure.titlesize": 10,
    "axes.grid": True,
    "axes.grid.which": "major",
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.6,
    # read when a figure is created, so saved PNGs (savefig's default dpi is "figure") are sharp
    "figure.dpi": 150,
}
"""rcParams of the toolkit's figures: readable small fonts, a light grid, no top/right spines."""


def apply_style() -> None:
    """Apply :data:`RC` to matplotlib's global rcParams (for notebooks; figures use :func:`style_context`)."""
    matplotlib.rcParams.update(RC)


def style_context():
    """A context manager in which figures are built with :data:`RC`, leaving global rcParams alone."""
    return matplotlib.rc_context(RC)


EXTRA_COLORS = ("#e377c2", "#7f7f7f", "#bcbd22", "#9467bd", "#8c564b", "#1b9e77", "#d95f02", "#e7298a")
"""Colours for methods outside :data:`METHOD_COLORS` (your own), picked by a hash of the name."""


def method_color(name: str) -> str:
    """The colour of method ``name``: its own for the paper's methods, else a stable one.

    A method you register gets a colour from :data:`EXTRA_COLORS` chosen by a hash of its
    name, so it keeps that colour in every figure and run without editing this module.
    """
    name = str(name)
    if name in METHOD_COLORS:
        return METHOD_COLORS[name]
    digest = int(hashlib.sha256(name.encode()).hexdigest(), 16)
    return EXTRA_COLORS[digest % len(EXTRA_COLORS)]


def uses_beta(name: str) -> bool:
    """Whether the registered method ``name`` reads beta (``False`` for unknown names)."""
    return name in METHODS and METHODS[name].uses("beta")


def beta_colors(betas, cmap: str = "Blues") -> list:
    """Colours for curves indexed by ``beta``, from a sequential colormap (light = small beta).

    Colours follow the rank of each beta among the distinct values (so equal betas share a
    colour and close betas on a log grid stay distinguishable), spread over the 35-100% part
    of ``cmap`` so that the lightest curve stays visible on white.

    Args:
      betas: sequence of ``K`` numbers.
    Returns:
      ``K`` RGBA tuples, in the order of ``betas``.
    """
    betas = np.asarray(betas, float).ravel()
    if betas.size == 0:
        return []
    if not np.all(np.isfinite(betas)):
        raise ValueError(f"betas must be finite, got {betas.tolist()}")
    distinct = np.unique(betas)
    rank = np.searchsorted(distinct, betas)
    positions = np.linspace(0.35, 1.0, len(distinct)) if len(distinct) > 1 else np.array([0.75])
    colormap = matplotlib.colormaps[cmap]
    return [tuple(colormap(positions[r])) for r in rank]


def seed_band(runs_SxE, kind: str = "se") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seed mean and band edges of ``runs_SxE`` (``S`` seeds x ``E`` evaluations), NaN-safe.

    Non-finite values (a run after it diverged) are left out, so each evaluation uses the seeds
    that are still finite there; an evaluation with no finite seed gives NaN.

    Args:
      runs_SxE: array ``(S, E)``.
      kind: ``"se"`` for mean +- standard error over the finite seeds (``std(ddof=1)/sqrt(n)``,
        zero width when a single seed is finite), or ``"minmax"`` for the seeds' range.
    Returns:
      ``(mean, lower, upper)``, each ``(E,)``.
    """
    runs = np.asarray(runs_SxE, float)
    if runs.ndim != 2:
        raise ValueError(f"runs_SxE must have shape (seeds, evaluations), got shape {runs.shape}")
    if kind not in ("se", "minmax"):
        raise ValueError(f"kind must be 'se' or 'minmax', got {kind!r}")
    mean = finite_seed_mean(runs)
    finite = np.isfinite(runs)
    n = finite.sum(axis=0)
    if kind == "minmax":
        lower = np.where(n > 0, np.min(np.where(finite, runs, np.inf), axis=0), np.nan)
        upper = np.where(n > 0, np.max(np.where(finite, runs, -np.inf), axis=0), np.nan)
        return mean, lower, upper
    se = np.zeros(runs.shape[1])
    several = n > 1  # one finite seed gives no spread (a zero-width band), none gives NaN
    # the standard error of the mean over the finite seeds (scipy.stats.sem, nan_policy="omit")
    se[several] = np.nanstd(runs[:, several], axis=0, ddof=1) / np.sqrt(n[several])
    return mean, mean - se, mean + se


def plot_band(ax, x, runs_SxE, color, label, *, kind: str = "se", band_alpha: float = 0.18, log=None, **kw):
    """Draw the seed mean of ``runs_SxE`` as a line with a shaded band (:func:`seed_band`).

    The band is mean +- standard error over the seeds still finite at each evaluation
    (``kind="se"``, the default) or their min-max range (``kind="minmax"``). Runs that turned
    NaN after diverging are left out of both.

    On a log y axis (``log=None`` reads ``ax``'s current scale, so set it first), values
    <= 0 cannot be drawn: the mean is masked where it is not positive, and the band's lower
    edge is raised to the smallest positive seed value at that evaluation (it never extends
    below the lowest run) or masked if there is none.

    Args:
      ax: matplotlib Axes.
      x: ``(E,)`` abscissae (steps).
      runs_SxE: ``(S, E)`` values, one row per seed.
      color, label: of the mean line (the band gets no legend entry).
      kind: ``"se"`` or ``"minmax"``.
      band_alpha: opacity of the band; 0 draws no band.
      **kw: passed to ``ax.plot`` for the mean line.
    Returns:
      The mean line (``matplotlib.lines.Line2D``).
    """
    x = np.asarray(x, float)
    runs = np.asarray(runs_SxE, float)
    if runs.ndim != 2 or runs.shape[1] != x.shape[0]:
        raise ValueError(f"runs_SxE must have shape (seeds, {x.shape[0]}) to match x, got {runs.shape}")
    mean, lower, upper = seed_band(runs, kind)
    if log is None:
        log = ax.get_yscale() == "log"
    if log:
        positive = np.where(np.isfinite(runs) & (runs > 0), runs, np.inf)
        floor = np.min(positive, axis=0)
        mean = np.where(mean > 0, mean, np.nan)
        lower = np.where(np.isfinite(floor), np.maximum(lower, floor), np.nan)
        upper = np.where(upper > 0, upper, np.nan)
    (line,) = ax.plot(x, mean, color=color, label=label, **kw)
    if band_alpha > 0 and runs.shape[0] > 1:
        ok = np.isfinite(lower) & np.isfinite(upper)
        ax.fill_between(x, np.where(ok, lower, 0.0), np.where(ok, upper, 0.0), where=ok,
                        color=color, alpha=band_alpha, linewidth=0, label="_band")
    return line


def heatmap(fig, ax, grid, *, norm, rows, cols, fmt, label: str, title: str, xlabel: str = "learning rate",
            ylabel: str = "β", cmap: str = "viridis", outline=None, best=None, nan_text: Optional[str] = None):
    """A grid of values over ``rows`` (e.g. betas) x ``cols`` (e.g. learning rates), each cell
    annotated with ``fmt(value)`` in black or white, whichever reads on the cell's colour.

    ``outline``: a boolean grid of cells to outline (black and white, visible on any colour);
    ``best``: ``(row, col)`` of one cell boxed in red; ``nan_text``: the label of non-finite cells,
    drawn grey and hatched (empty when ``None``). Adds a colour bar labelled ``label``.
    """
    from matplotlib.patches import Rectangle

    grid = np.asarray(grid, float)
    image = ax.imshow(grid, origin="lower", cmap=cmap, aspect="auto", norm=norm)
    colours = matplotlib.colormaps[cmap]
    ax.grid(False)
    ax.set_xticks(range(len(cols)), [f"{x:g}" for x in cols])
    ax.set_yticks(range(len(rows)), [f"{x:g}" for x in rows])
    for i, j in np.ndindex(*grid.shape):
        v = grid[i, j]
        if np.isfinite(v):
            r, g, b, _ = colours(norm(v))
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
            ax.text(j, i, fmt(v), ha="center", va="center", fontsize=7.5, color="white" if dark else "black")
        elif nan_text is not None:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, color="0.85", hatch="//", ec="0.6", lw=0))
            ax.text(j, i, nan_text, ha="center", va="center", fontsize=7.5, color="black")
        if outline is not None and outline[i, j]:
            ax.add_patch(Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, ec="black", lw=3.0))
            ax.add_patch(Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, ec="white", lw=1.2))
    if best is not None:
        ax.add_patch(Rectangle((best[1] - 0.5, best[0] - 0.5), 1, 1, fill=False, ec="red", lw=2))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    fig.colorbar(image, ax=ax, label=label, shrink=0.9)
    return image
