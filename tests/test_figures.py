"""The section-4 figures and the shared style, on small hand-built arrays (no training)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import same_color, to_rgb  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from figures.style import EXTRA_COLORS, METHOD_COLORS, beta_colors, method_color, plot_band, seed_band  # noqa: E402
from synthetic.worlds.section4 import figures as fig_s4  # noqa: E402

FIG4_METHODS = ["GA", "GA+RT", "IDK+RT", "NPO", "NPO+RT", "DPO+RT"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def grid_arrays(methods, *, seeds=3, evals=21, lrs=None, betas=None):
    """Arrays shaped like run_grid_experiment's: positive distances, forget KL 0 at step 0."""
    rng = np.random.default_rng(0)
    c_n = len(methods)
    t = np.arange(evals) / (evals - 1)
    speed = 1.0 + np.arange(c_n)[None, :, None]
    noise = 1.0 + 0.1 * rng.random((seeds, c_n, evals))
    forget = (np.exp(-3 * speed * t) + 0.01) * noise
    retain = 0.02 * (1 + speed * t) * noise
    return {
        "steps": np.arange(evals) * 25,
        "forget_distance": forget,
        "retain_distance": retain,
        "forget_kl": speed * t * noise,
        "diverged_step": -np.ones((seeds, c_n), int),
        "setting_method": np.array(methods),
        "setting_learning_rate": np.array(lrs if lrs is not None else [5e-4] * c_n, float),
        "setting_beta": np.array(betas if betas is not None else [1.0] * c_n, float),
    }


def fig4_arrays(**kw):
    """Shaped like run_fig4's results: one group of grid arrays per alpha."""
    return {key: grid_arrays(FIG4_METHODS, **kw) for key in ("alpha1", "alpha0")}


def method_lines(ax):
    """Lines of ``ax`` labelled with a method name (bands, trajectories and markers are not)."""
    return [line for line in ax.get_lines() if line.get_label() in METHOD_COLORS]


def assert_method_colours(ax, methods):
    lines = method_lines(ax)
    assert [line.get_label() for line in lines] == list(methods)
    for line in lines:
        assert same_color(line.get_color(), METHOD_COLORS[line.get_label()]), line.get_label()


# --- style ---------------------------------------------------------------------------------


def test_method_colours_cover_the_registry_and_are_distinct():
    expected = {"GA", "GA+RT", "GA+KL", "IDK+RT", "DPO", "DPO+RT", "DPO+KL", "KTO", "KTO+RT",
                "NPO", "NPO+RT", "NPO+KL", "SimNPO", "SimNPO+RT"}
    assert set(METHOD_COLORS) == expected
    rgb = np.array([to_rgb(c) for c in METHOD_COLORS.values()])
    gaps = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)[np.triu_indices(len(rgb), 1)]
    assert gaps.min() > 0.1


def test_method_colour_families():
    red, green, _ = to_rgb(method_color("GA"))
    assert red > 0.7 and green < 0.3
    for name in ("NPO", "NPO+RT", "NPO+KL"):
        r, g, b = to_rgb(method_color(name))
        assert b > r and b > g, name
    for name in ("DPO", "DPO+RT", "DPO+KL"):
        r, g, b = to_rgb(method_color(name))
        assert g > r and g > b, name


def test_a_method_of_your_own_gets_a_stable_colour_of_its_own():
    mine = method_color("RMU+RT")
    assert mine == method_color("RMU+RT") and mine in EXTRA_COLORS
    assert mine not in METHOD_COLORS.values()
    assert {method_color(f"mine{i}") for i in range(40)} == set(EXTRA_COLORS)  # the hash spreads names


def test_beta_colours_are_sequential_by_beta():
    betas = [1.0, 0.01, 0.5, 0.1, 0.5]
    colours = beta_colors(betas)
    assert len(colours) == 5
    assert colours[2] == colours[4]  # equal betas share a colour
    lightness = {b: sum(to_rgb(c)) for b, c in zip(betas, colours)}
    ordered = [lightness[b] for b in sorted(lightness)]
    assert all(x > y for x, y in zip(ordered, ordered[1:]))  # larger beta, darker
    assert beta_colors([]) == []
    with pytest.raises(ValueError):
        beta_colors([0.1, np.nan])


def test_seed_band_uses_the_finite_seeds():
    runs = np.array([[1.0, 2.0, np.nan, np.nan],
                     [3.0, 4.0, 5.0, np.nan],
                     [5.0, 9.0, np.nan, np.nan]])
    mean, lo, hi = seed_band(runs)
    np.testing.assert_allclose(mean[:3], [3.0, 5.0, 5.0])
    assert np.isnan(mean[3]) and np.isnan(lo[3]) and np.isnan(hi[3])
    se0 = np.std([1.0, 3.0, 5.0], ddof=1) / np.sqrt(3)
    np.testing.assert_allclose([lo[0], hi[0]], [3.0 - se0, 3.0 + se0])
    assert lo[2] == hi[2] == 5.0  # a single finite seed: no spread to show
    mean, lo, hi = seed_band(runs, kind="minmax")
    np.testing.assert_allclose([lo[1], hi[1]], [2.0, 9.0])
    with pytest.raises(ValueError, match="kind"):
        seed_band(runs, kind="std")


def test_plot_band_on_a_log_axis_masks_non_positive_values():
    fig, ax = plt.subplots()
    ax.set_yscale("log")
    runs = np.array([[0.0, 1.0, 0.01], [0.0, 3.0, 10.0]])
    line = plot_band(ax, np.arange(3), runs, "C0", "x")
    y = line.get_ydata()
    assert np.isnan(y[0])
    np.testing.assert_allclose(y[1:], [2.0, 5.005])
    band = [c for c in ax.collections][0]
    lower_edge = band.get_paths()[0].vertices[:, 1].min()
    assert lower_edge >= 0.01  # mean - s.e. < 0 is raised to the lowest run
    fig.canvas.draw()


# --- figures -------------------------------------------------------------------------------


def test_fig4_panels_and_method_colours():
    fig = fig_s4.fig4(fig4_arrays())
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4
    for ax in fig.axes:
        assert_method_colours(ax, FIG4_METHODS)
    ax_f, ax_r, ax_p, ax_0 = fig.axes
    assert ax_f.get_yscale() == ax_r.get_yscale() == ax_0.get_yscale() == "log"
    assert ax_p.get_xscale() == ax_p.get_yscale() == "log"
    assert any(np.allclose(line.get_ydata(), 0.005) for line in ax_f.get_lines())
    # panel (d) draws retain distance dashed in the same colour as the solid forget distance
    dashed = [line for line in ax_0.get_lines() if line.get_linestyle() == "--"]
    assert [line.get_color() for line in dashed] == [METHOD_COLORS[m] for m in FIG4_METHODS]
    assert "Figure 4 (Zhang et al. 2024)" in fig._suptitle.get_text() and "lr 0.0005" in fig._suptitle.get_text()
    fig.canvas.draw()


def test_fig4_pareto_panel_draws_the_frontier_of_the_seed_mean():
    arrays = fig4_arrays()
    # make NPO's trajectory turn back: its last points are dominated and leave the frontier
    arrays["alpha1"]["retain_distance"][:, 3, -5:] = 10.0
    fig = fig_s4.fig4(arrays)
    npo = [line for line in fig.axes[2].get_lines() if line.get_label() == "NPO"][0]
    fd = arrays["alpha1"]["forget_distance"][:, 3].mean(axis=0)
    assert len(npo.get_xdata()) < len(fd)
    assert np.all(np.diff(npo.get_xdata()) > 0) and np.all(np.diff(npo.get_ydata()) < 0)


def test_fig4_tolerates_a_run_that_diverged():
    arrays = fig4_arrays()
    arrays["alpha1"]["forget_distance"][0, 0, 10:] = np.nan  # GA, seed 0, after step 250
    arrays["alpha1"]["retain_distance"][0, 0, 10:] = np.nan
    arrays["alpha1"]["diverged_step"][0, 0] = 250
    fig = fig_s4.fig4(arrays)
    ga = method_lines(fig.axes[0])[0]
    expected = arrays["alpha1"]["forget_distance"][1:, 0, 15].mean()
    np.testing.assert_allclose(ga.get_ydata()[15], expected)
    assert np.all(np.isfinite(ga.get_ydata()))
    fig.canvas.draw()


def test_fig4_draws_a_method_of_your_own_and_rejects_missing_alphas():
    arrays = fig4_arrays()
    arrays["alpha0"]["setting_method"] = np.array(["GA", "GA+RT", "IDK+RT", "NPO", "NPO+RT", "RMU"])
    fig = fig_s4.fig4(arrays)
    assert any(same_color(line.get_color(), method_color("RMU")) for line in fig.axes[3].get_lines())
    alpha1_only = {"alpha1": fig4_arrays()["alpha1"]}
    with pytest.raises(ValueError, match="alpha0"):
        fig_s4.fig4(alpha1_only)


def test_fig9_panels_and_the_moderate_kl_span():
    arrays = fig4_arrays()
    fig = fig_s4.fig9(arrays)
    assert len(fig.axes) == 3
    for ax in fig.axes:
        assert_method_colours(ax, FIG4_METHODS)
        assert ax.get_yscale() == "log"
    # the grey span covers the forget KL of the seed-mean point with the smallest total distance
    kl = arrays["alpha1"]["forget_kl"].mean(axis=0)
    total = (arrays["alpha1"]["forget_distance"] + arrays["alpha1"]["retain_distance"]).mean(axis=0)
    best = np.unravel_index(np.argmin(total), total.shape)
    (span,) = [p for p in fig.axes[2].patches]
    x0, x1 = span.get_path().transformed(span.get_patch_transform()).get_extents().intervalx
    assert x0 <= kl[best] <= x1
    fig.canvas.draw()


def test_fig3_colours_ga_and_the_npo_betas():
    betas = [1.0, 0.01, 0.1, 0.2, 0.5, 1.0]
    arrays = grid_arrays(["GA"] + ["NPO"] * 5, betas=betas)
    fig = fig_s4.fig3(arrays)
    assert len(fig.axes) == 2
    colours = beta_colors(betas[1:])
    for ax in fig.axes:
        assert ax.get_yscale() == "log"
        labelled = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
        assert labelled[0].get_label() == "GA"
        assert same_color(labelled[0].get_color(), METHOD_COLORS["GA"])
        assert labelled[0].get_linewidth() > labelled[1].get_linewidth()
        assert [line.get_label() for line in labelled[1:]] == [f"NPO, β = {b:g}" for b in sorted(betas[1:])]
        for line, (b, c) in zip(labelled[1:], sorted(zip(betas[1:], colours))):
            assert same_color(line.get_color(), c)
    assert "0.0005" in fig._suptitle.get_text()
    fig.canvas.draw()


def grid_for_search():
    methods, lrs, betas = [], [], []
    for m, uses_beta in (("GA", False), ("NPO+RT", True), ("DPO+RT", True)):
        for lr in (1e-3, 1e-2):
            for beta in (0.1, 1.0) if uses_beta else (1.0,):
                methods.append(m), lrs.append(lr), betas.append(beta)
    return grid_arrays(methods, lrs=lrs, betas=betas)


def test_gridsearch_frontiers_and_heatmap():
    arrays = grid_for_search()
    best = {"GA": 1, "NPO+RT": 4, "DPO+RT": 6}
    fig = fig_s4.gridsearch(arrays, best)
    assert len(fig.axes) == 1
    assert [line.get_label().split(" (")[0] for line in fig.axes[0].get_lines() if line.get_label()[0] != "_"][:3] == list(best)
    for line in fig.axes[0].get_lines()[:6]:
        if not line.get_label().startswith("_"):
            assert same_color(line.get_color(), METHOD_COLORS[line.get_label().split(" (")[0]])

    scores = np.arange(10, 20, dtype=float)
    fig = fig_s4.gridsearch(arrays, best, scores)
    assert len(fig.axes) == 3  # frontiers, heatmap, colorbar
    image = fig.axes[1].get_images()[0].get_array()
    # NPO+RT settings 2..5 are (lr 1e-3, beta 0.1), (1e-3, 1), (1e-2, 0.1), (1e-2, 1): rows beta, columns lr
    np.testing.assert_allclose(image, [[12.0, 14.0], [13.0, 15.0]])
    fig.canvas.draw()


def test_gridsearch_rejects_bad_input():
    arrays = grid_for_search()
    with pytest.raises(ValueError, match="scores"):
        fig_s4.gridsearch(arrays, {"GA": 0}, np.zeros(3))
    with pytest.raises(ValueError, match="not a setting of 'GA'"):
        fig_s4.gridsearch(arrays, {"GA": 3})
    with pytest.raises(ValueError, match="not a setting of 'GA-RT'"):
        fig_s4.gridsearch(arrays, {"GA-RT": 0})
    with pytest.raises(ValueError, match="heatmap_method 'KTO'"):
        fig_s4.gridsearch(arrays, {"GA": 0}, np.zeros(10), heatmap_method="KTO")
    assert plt.get_fignums() == []  # bad input fails before a figure is opened


# --- the shared drawing layer: heat maps, the divergence-laws figure, files ----------------


def test_heatmap_annotates_outlines_and_boxes_cells():
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    from figures.style import heatmap

    grid = np.array([[0.0, 1.0, np.nan], [4.0, 9.0, 10.0]])
    outline = np.zeros(grid.shape, bool)
    outline[0, 1] = True
    fig, ax = plt.subplots()
    image = heatmap(fig, ax, grid, norm=Normalize(0.0, 10.0), rows=[0.1, 1.0], cols=[1e-3, 1e-2, 0.1],
                    fmt=lambda v: f"{v:.1f}", label="score", title="t", cmap="viridis", outline=outline,
                    best=(1, 2), nan_text="n/a")
    np.testing.assert_array_equal(np.ma.filled(image.get_array(), -1.0), np.where(np.isnan(grid), -1.0, grid))
    texts = {(t.get_position()): t for t in ax.texts}
    assert {k: t.get_text() for k, t in texts.items()} == {
        (0, 0): "0.0", (1, 0): "1.0", (2, 0): "n/a", (0, 1): "4.0", (1, 1): "9.0", (2, 1): "10.0"}
    # viridis is dark at 0 and light at 10: the text switches colour to stay readable
    assert texts[(0, 0)].get_color() == "white" and texts[(2, 1)].get_color() == "black"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.001", "0.01", "0.1"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.1", "1"]
    rects = [p for p in ax.patches if isinstance(p, Rectangle)]
    hatched = [r for r in rects if r.get_hatch()]
    assert [r.get_xy() for r in hatched] == [(1.5, -0.5)]  # the NaN cell, row 0 column 2
    outlined = [r for r in rects if not r.get_fill() and r.get_width() == pytest.approx(0.92)]
    assert len(outlined) == 2 and all(r.get_xy() == pytest.approx((0.54, -0.46)) for r in outlined)
    (red,) = [r for r in rects if same_color(r.get_edgecolor(), "red")]
    assert red.get_xy() == (1.5, 0.5)  # best = (row 1, column 2)
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "score"  # the colour bar
    fig.canvas.draw()


def _long_runs(ga_diverges_at=None):
    """Long runs shaped like synthetic.laws.divergence_runs': GA linear in t, NPO linear in log t."""
    t = np.unique(np.geomspace(1, 10**4, 25).astype(int))
    betas = [0.5, 2.0]
    ga = 0.1 * t
    npo = [0.5 + np.log(t) / b for b in betas]
    long = {
        "steps": np.concatenate([[0], t]),
        "labels": np.array(["GA"] + [f"NPO beta={b:g}" for b in betas]),
        "betas": np.array([np.nan] + betas),
        "diverged_step": np.full(3, -1),
        "param_distance": np.array([np.concatenate([[0.0], y]) for y in [ga, *npo]]),
        "forget_nll_seq": np.array([np.concatenate([[3.0], 3.0 + 2 * y]) for y in [ga, *npo]]),
    }
    if ga_diverges_at is not None:
        late = long["steps"] >= ga_diverges_at
        long["param_distance"][0, late] = np.nan
        long["forget_nll_seq"][0, late] = np.nan
        long["diverged_step"][0] = ga_diverges_at
    return long


def test_divergence_laws_figure_fits_and_bolds_the_better_law():
    from figures.laws import divergence_laws
    from synthetic.analysis import law_fits

    long, t_min = _long_runs(), 100.0
    fig = divergence_laws(long, t_min, "my world")
    assert len(fig.axes) == 6 and fig._suptitle.get_text() == "my world"
    for row, quantity in enumerate(("param_distance", "forget_nll_seq")):
        all_runs, ga, npo = fig.axes[3 * row: 3 * row + 3]
        assert all_runs.get_xscale() == all_runs.get_yscale() == "log" and npo.get_xscale() == "log"
        assert ga.get_xscale() == ga.get_yscale() == "linear"
        fits = law_fits(long, quantity, t_min)
        # the growth exponents in the legend are the fits' (GA: 1, a straight line on log-log)
        labels = [line.get_label() for line in all_runs.get_lines() if not line.get_label().startswith("_")]
        assert labels == [f"{lab} (exponent {f['power'][1]:.2f})" for lab, f in zip(long["labels"], fits)]
        if quantity == "param_distance":  # GA's distance is 0.1 t: exponent 1 (its NLL has an offset)
            assert fits[0]["power"][1] == pytest.approx(1.0, rel=1e-9)
        # GA's bold fit is a + b t (an exact line here, R^2 = 1); each NPO run's is a + b log t
        bold = [line for line in ga.get_lines() if line.get_linewidth() == 1.8]
        assert len(bold) == 1 and "a+b t" in bold[0].get_label() and "R$^2$=1.00" in bold[0].get_label()
        bold = [line for line in npo.get_lines() if line.get_linewidth() == 1.8]
        assert len(bold) == 2 and all("a+b log t" in line.get_label() for line in bold)
        assert fits[1]["log"][1] == pytest.approx(2.0 * (1 + row), rel=1e-9)  # slope 1/beta, x2 for the NLL
        for ax in (all_runs, ga, npo):  # the fit window's left edge
            assert any(np.allclose(line.get_xdata(), t_min) for line in ax.get_lines())
    fig.canvas.draw()


def test_divergence_laws_figure_names_a_diverged_run_and_missing_curves():
    from figures.laws import divergence_laws

    fig = divergence_laws(_long_runs(ga_diverges_at=5000), 100.0, "t")
    assert "non-finite from step 5000" in fig.axes[1].get_title()
    fig.canvas.draw()
    long = _long_runs()
    del long["forget_nll_seq"]
    with pytest.raises(ValueError, match="'forget_nll_seq'"):
        divergence_laws(long, 100.0, "t")


def test_save_figure_writes_png_and_pdf_atomically_and_closes(tmp_path):
    from figures.files import save_figure

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    paths = save_figure(fig, tmp_path / "out", "line")
    assert paths == [tmp_path / "out" / "line.png", tmp_path / "out" / "line.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[1].read_bytes()[:5] == b"%PDF-"
    assert not plt.fignum_exists(fig.number)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["line.pdf", "line.png"]  # no temporary left


def test_save_figure_writes_an_animation_as_gif(tmp_path):
    from matplotlib import animation

    from figures.files import save_figure

    fig, ax = plt.subplots(figsize=(1, 1))
    (line,) = ax.plot([], [])
    anim = animation.FuncAnimation(fig, lambda i: line.set_data([0, i], [0, i]), frames=2, interval=200)
    (path,) = save_figure(anim, tmp_path, "anim")
    assert path == tmp_path / "anim.gif" and path.read_bytes()[:6] == b"GIF89a"
    assert not plt.fignum_exists(fig.number) and [p.name for p in tmp_path.iterdir()] == ["anim.gif"]
