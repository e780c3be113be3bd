"""The ``tofu_mini`` study's figures on small hand-built results (no training, no result files)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import same_color  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from figures.style import method_color  # noqa: E402
from synthetic.worlds.tofu_mini import figures as tc  # noqa: E402
from synthetic.worlds.tofu_mini.config import tofu_collapse_config  # noqa: E402

SMALL = ("GA", "NPO", "NPO+RT")
LARGE = ("GA+RT", "NPO+RT")
SUMMARY = ("forget_quality", "model_utility", "forget_kl", "forget_nll", "param_distance")
S, E = 3, 5


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def split_results(methods, rng):
    """One split's results: utility falls with the step, forget quality rises then falls."""
    c_n = len(methods)
    out = {"methods": np.array(methods), "steps": np.arange(E) * 2, "epoch_steps": np.asarray(2),
           "diverged_step": -np.ones((S, c_n), np.int32)}
    t = np.arange(E) / (E - 1)
    out["model_utility"] = 0.7 - 0.3 * t * (1 + np.arange(c_n))[None, :, None] * np.ones((S, 1, 1)) / c_n
    out["forget_quality"] = 10.0 ** -(1 + 20 * (t - 0.5) ** 2) * (1 + 0.1 * rng.random((S, c_n, E)))
    for k in SUMMARY[2:]:
        out[k] = t * (1 + rng.random((S, c_n, E)))
    out["full"], out["retrained"] = {}, {}
    for k, full, retr in (("forget_quality", 0.01, 1.0), ("model_utility", 0.7, 0.68), ("forget_kl", 0.0, 3.0),
                          ("forget_nll", 0.1, 4.0), ("param_distance", 0.0, 10.0)):
        out["full"][k], out["retrained"][k] = np.asarray(full), np.asarray(retr)
    return out


def tofu_results(splits=(1, 10, 50, 90), guide=True, long=True):
    """Results shaped as :func:`synthetic.worlds.tofu_mini.study.run_study`'s."""
    rng = np.random.default_rng(0)
    a = {"splits": {}}
    for p in splits:
        a["splits"][str(p)] = {**split_results(SMALL if p <= 10 else LARGE, rng), "n_forget": np.asarray(p)}
    if guide:
        betas, lrs, weights = np.array([0.1, 1.0]), np.array([1e-3, 3e-3, 1e-2]), np.array([0.0, 1.0, 2.0])
        fq = np.broadcast_to(np.linspace(0.01, 0.5, E), (S, 2, 3, E)).copy()
        mu = np.full((S, 2, 3, E), 0.65)
        mu[..., 2, -1] = 0.2  # the largest learning rate collapses at both betas: 4 cells of 6 avoid collapse
        a["guidance"] = {"method": np.array("NPO+RT"), "betas": betas, "learning_rates": lrs, "steps": np.arange(E) * 2,
                         "weights": weights, "grid": {"forget_quality": fq, "model_utility": mu},
                         "by_weight": {"forget_quality": fq[:, 0], "model_utility": mu[:, 0]}}
    if long:
        t = np.array([0, 1, 2, 5, 10, 20, 50, 100])
        dist = np.stack([0.1 * t, 1 + np.log1p(t), 0.5 + 0.1 * np.log1p(t)]).astype(np.float32)
        a["long"] = {"labels": np.array(["GA", "NPO beta=0.1", "NPO beta=1"]), "betas": np.array([np.nan, 0.1, 1.0]),
                     "steps": t, "param_distance": dist, "forget_nll_seq": 3 * dist,
                     "diverged_step": -np.ones(3, np.int32)}
    return a


CONFIG = tofu_collapse_config(quick=True)


def panels(fig):
    """The figure's data panels (not colorbars, not twin axes): the axes with a title."""
    return [ax for ax in fig.axes if ax.get_title()]


def test_all_figures_names_and_panels():
    figs = tc.all_figures(CONFIG, tofu_results())
    assert list(figs) == ["tofu_fig5", "tofu_fig8", "tofu_trajectories", "tofu_guidance", "tofu_divergence"]
    expected = {"tofu_fig5": 2, "tofu_fig8": 2, "tofu_trajectories": 3, "tofu_guidance": 3, "tofu_divergence": 6}
    for name, n in expected.items():
        assert len(panels(figs[name])) == n, name
    for fig in figs.values():  # the constrained layout runs (a full draw, without rasterising)
        fig.draw_without_rendering()


def test_figures_with_missing_arrays_are_left_out():
    figs = tc.all_figures(CONFIG, tofu_results(splits=(50,), guide=False, long=False))
    assert list(figs) == ["tofu_fig8", "tofu_trajectories"]
    assert len(panels(figs["tofu_fig8"])) == 1
    with pytest.raises(ValueError, match="none of the splits"):
        tc.fig5(CONFIG, tofu_results(splits=(50,), guide=False, long=False))


def test_peak_point_is_each_seeds_first_argmax():
    a = tofu_results(splits=(1,), guide=False, long=False)
    c = SMALL.index("NPO")
    fq = np.full((S, E), 1e-3)
    fq[0, [1, 3]] = 0.2  # a tie: the first one counts
    fq[1, 4] = 0.5
    fq[2, 0], fq[2, 2] = 1e-30, 0.02  # below the floor elsewhere, peak at 2
    fq[2, 3] = np.nan  # a diverged evaluation never wins
    mu = np.tile(np.linspace(0.7, 0.3, E), (S, 1)) + np.array([[0.0], [0.01], [0.02]])
    a["splits"]["1"]["forget_quality"][:, c], a["splits"]["1"]["model_utility"][:, c] = fq, mu
    index, peak_fq, peak_mu = tc.peak_points(fq, mu)
    np.testing.assert_array_equal(index, [1, 4, 2])
    np.testing.assert_allclose(peak_fq, [0.2, 0.5, 0.02])
    np.testing.assert_allclose(peak_mu, [mu[0, 1], mu[1, 4], mu[2, 2]])

    ax = panels(tc.fig5(CONFIG, a))[0]
    (container,) = [h for h in ax.containers if h.get_label() == "NPO"]
    line = container.lines[0]
    want_x = np.mean([mu[0, 1], mu[1, 4], mu[2, 2]])
    want_y = np.exp(np.mean(np.log([0.2, 0.5, 0.02])))  # geometric mean
    np.testing.assert_allclose(np.asarray(line.get_xdata(), float), [want_x])  # errorbar keeps object arrays
    np.testing.assert_allclose(np.asarray(line.get_ydata(), float), [want_y])
    assert same_color(line.get_color(), method_color("NPO"))
    # the error bars span the seeds' range
    _, y_bars = container.lines[2]
    bars = np.concatenate(y_bars.get_segments())
    np.testing.assert_allclose([bars[:, 1].min(), bars[:, 1].max()], [0.02, 0.5])
    assert ax.get_yscale() == "log"
    assert any(np.allclose(line.get_ydata(), tc.FQ_THRESHOLD) for line in ax.get_lines())


def test_peak_points_all_nan_seed():
    fq = np.array([[np.nan, np.nan], [0.1, 0.3]])
    index, peak_fq, peak_mu = tc.peak_points(fq, np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(index, [-1, 1])
    np.testing.assert_array_equal(peak_fq, [np.nan, 0.3])
    np.testing.assert_array_equal(peak_mu, [np.nan, 4.0])


def test_guidance_outlines_the_settings_that_avoid_collapse():
    fig = tc.guidance(CONFIG, tofu_results(splits=(10,), long=False))
    ax_fq, ax_mu, ax_w = panels(fig)
    for ax in (ax_fq, ax_mu):
        outlines = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert len(outlines) == 2 * 4  # two strokes per outlined cell, 4 cells of 6
        centres = {(round(p.get_x() + p.get_width() / 2), round(p.get_y() + p.get_height() / 2)) for p in outlines}
        assert centres == {(0, 0), (1, 0), (0, 1), (1, 1)}  # (lr column, beta row): never the largest lr
    texts = [t.get_text() for t in ax_mu.texts]
    assert texts.count("0.65") == 4 and texts.count("0.20") == 2
    assert ax_w.get_yscale() == "log"


def test_trajectories_axes_in_epochs_with_reference_lines():
    a = tofu_results(splits=(10,), guide=False, long=False)
    ax_fq, ax_mu, ax_kl = panels(tc.trajectories(CONFIG, a, split=10))
    (ga,) = [line for line in ax_mu.get_lines() if line.get_label() == "GA"]
    np.testing.assert_allclose(ga.get_xdata(), np.arange(E))  # steps 0, 2, ... over 2 steps an epoch
    np.testing.assert_allclose(ga.get_ydata(), a["splits"]["10"]["model_utility"][:, 0].mean(axis=0))
    assert any(np.allclose(line.get_ydata(), 0.68) for line in ax_mu.get_lines())  # the retrained model's utility
    assert ax_fq.get_yscale() == "log" and ax_kl.get_yscale() == "log"
