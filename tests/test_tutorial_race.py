"""The tutorial's 2-D race (section 3) shows the collapse in behaviour: the retain NLL beside
the retain accuracy, log-spaced frames with the last one held, the reference model's boundary
as a ghost, and any number of runs in the animation and the strip.

One race of GA and NPO at three betas, 1000 steps, is run once (a module fixture, about a
second); the one- and three-run pictures are slices of it.
"""

import gc
import warnings

import numpy as np
import pytest
from matplotlib import animation
from PIL import Image

from synthetic.worlds.tutorial import figures as tutorial_figures
from synthetic.worlds.tutorial.run import blobs, race
from theory import get_method

BETAS = (0.5, 1.0, 2.0)


@pytest.fixture(scope="module")
def four():
    """GA, NPO beta=0.5, NPO beta=1 and NPO beta=2 on the page's points, with the points."""
    data = blobs(seed=0, per_class=12, n_forget=4)
    methods = [get_method("GA")] + [get_method("NPO", beta=b) for b in BETAS]
    return {**race(data, methods, eta=1.0, steps=1000, every=10), **data}


def _runs(r: dict, rows) -> dict:
    """``r`` restricted to the runs ``rows`` (every per-run array has the runs first)."""
    per_run = ("labels", "theta", "distance", "forget_logp", "retain_accuracy", "retain_nll", "diverged_step")
    return {**r, **{k: np.asarray(r[k])[list(rows)] for k in per_run}}


def _retain_by_hand(r: dict, theta_CxEx3):
    """Mean ``-log pi(y|x)`` and accuracy over the retain points, in numpy: ``(C, E)`` each."""
    x, y = r["x"][r["retain"]], r["y"][r["retain"]]
    margin = (2.0 * y - 1.0) * np.einsum("nd,ced->cen", x, theta_CxEx3)   # s_i theta . x_i
    return np.mean(np.logaddexp(0.0, -margin), axis=-1), np.mean(margin > 0, axis=-1)


def _on_line(theta, xs, ys) -> float:
    """The largest ``|theta . (x1, x2, 1)|`` over a drawn line's points, against the line's size."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    return float(np.max(np.abs(theta[0] * xs + theta[1] * ys + theta[2])) / np.linalg.norm(theta))


def test_the_retain_nll_is_the_mean_nll_by_hand(four):
    nll, accuracy = _retain_by_hand(four, four["theta"])
    np.testing.assert_allclose(four["retain_nll"], nll, rtol=1e-12)
    np.testing.assert_allclose(four["retain_nll"][:, -1], nll[:, -1], rtol=1e-12)   # the final parameters
    # the existing metric is unchanged: the share of retain points on the right side
    np.testing.assert_allclose(four["retain_accuracy"], accuracy, rtol=0, atol=1e-12)   # 20 points: 0.05 apart
    (ref_nll,), _ = _retain_by_hand(four, np.asarray(four["theta_ref"])[None, None])
    assert np.allclose(four["retain_nll"][:, 0], ref_nll[0], rtol=1e-12)      # every run starts at the reference
    assert four["retain_nll"].shape == four["distance"].shape == (4, 101)


def test_ga_retain_nll_runs_away_npo_stays_near_the_reference(four):
    nll = four["retain_nll"][:, -1]
    assert list(four["labels"]) == ["GA", "NPO beta=0.5", "NPO beta=1", "NPO beta=2"]
    # measured after 1000 steps (eta 1): GA 1174.29, NPO 4.71 / 2.596 / 1.50 at beta 0.5 / 1 / 2,
    # the reference 0.566: GA 452x NPO beta=1's and 249x NPO beta=0.5's; bound: 100x
    assert nll[0] > 100 * nll[1:].max()
    assert nll[2] == pytest.approx(2.596, rel=1e-3) and nll[0] == pytest.approx(1174.3, rel=1e-3)
    # GA's grows about linearly with its parameters (1174 at step 1000, 113 at step 100); NPO's levels off
    at_100 = int(np.searchsorted(four["steps"], 100))
    assert 8 < nll[0] / four["retain_nll"][0, at_100] < 12
    assert np.all(nll[1:] / four["retain_nll"][1:, at_100] < 2)
    # the accuracies (0.25 and 0.4) differ by less than 2x where the NLLs differ 450x: accuracy hides the collapse
    assert four["retain_accuracy"][[0, 2], -1] == pytest.approx([0.25, 0.4], abs=1e-12)


def test_frames_are_log_spaced():
    steps = np.arange(0, 1001, 10)
    picks = tutorial_figures.log_spaced_records(steps, tutorial_figures.RACE_STEPS_SHOWN)
    shown = steps[picks]
    assert len(picks) == tutorial_figures.RACE_STEPS_SHOWN
    assert np.all(np.diff(shown) > 0) and shown[0] == 0 and shown[-1] == 1000
    # the first decade (steps 0-100) gets every record, 11 frames; even spacing would give 5
    uniform = steps[np.linspace(0, len(steps) - 1, len(picks)).round().astype(int)]
    assert np.sum(shown <= 100) == 11 and np.sum(uniform <= 100) == 5
    # and the rest follows a geometric sequence: the gaps grow, the ratios stay near one value
    late = shown[shown >= 200]
    assert np.all(np.diff(late, 2) >= 0) and np.ptp(late[1:] / late[:-1]) < 0.05
    assert list(steps[tutorial_figures.log_spaced_records(steps, 4)]) == [0, 10, 100, 1000]
    assert list(tutorial_figures.log_spaced_records(steps, 2)) == [0, 100]
    assert list(tutorial_figures.log_spaced_records(steps[:3], 40)) == [0, 1, 2]   # fewer records than frames
    with pytest.raises(ValueError, match="strictly increasing"):
        tutorial_figures.log_spaced_records([0, 10, 10, 20], 3)


def test_the_page_animation_shows_log_spaced_frames_and_holds_the_last(four):
    page = _runs(four, [0, 2])                                      # the page's race: GA and NPO beta=1
    anim = tutorial_figures.race_animation(page)
    sequence = list(anim.new_frame_seq())
    hold = tutorial_figures.RACE_HOLD_SECONDS * tutorial_figures.ANIMATION_FPS
    assert len(sequence) == tutorial_figures.RACE_FRAMES == 60 == tutorial_figures.RACE_STEPS_SHOWN + hold
    distinct = sequence[: tutorial_figures.RACE_STEPS_SHOWN]
    assert distinct == list(tutorial_figures.log_spaced_records(four["steps"], tutorial_figures.RACE_STEPS_SHOWN))
    assert sequence[-hold - 1:] == [100] * (hold + 1)             # the last record, shown then held for 2 s
    with warnings.catch_warnings():                               # not rendered: let it go without the warning
        warnings.filterwarnings("ignore", "Animation was deleted without rendering", UserWarning)
        del anim
        gc.collect()


@pytest.mark.parametrize("rows", [[0], [0, 1, 3]], ids=["GA alone", "GA and NPO at two betas"])
def test_the_animation_draws_any_number_of_runs(four, rows, tmp_path):
    r = _runs(four, rows)
    anim = tutorial_figures.race_animation(r, frames=3, hold=0.3, dpi=40)
    assert list(anim.new_frame_seq()) == [0, 1, 100, 100, 100, 100]
    anim.save(tmp_path / "race.gif", writer=animation.PillowWriter(fps=tutorial_figures.ANIMATION_FPS))
    with Image.open(tmp_path / "race.gif") as gif:
        # Pillow merges the held copies into one long last frame: 100 ms, 100 ms, then 400 ms
        durations = []
        for k in range(gif.n_frames):
            gif.seek(k)
            durations.append(gif.info["duration"])
        assert durations == [100, 100, 400]
    fig = anim._fig
    planes, (ax_d, ax_n) = fig.axes[: len(rows)], fig.axes[len(rows):]
    labels = [str(m).replace("beta", "β") for m in r["labels"]]
    assert [ax.get_title().split("\n")[0] for ax in planes] == [f"{name}: step 1000" for name in labels]
    assert [t.get_text() for t in ax_n.get_legend().get_texts()] == labels
    assert ax_n.get_yscale() == "log" and ax_d.get_yscale() == "log"
    for c, ax in enumerate(planes):
        ghost, boundary = ax.get_lines()
        assert _on_line(r["theta_ref"], *ghost.get_data()) < 1e-9                 # the reference's boundary
        assert _on_line(r["theta"][c, -1], *boundary.get_data()) < 1e-9           # the last frame's
        assert ghost.get_linestyle() == "--" and boundary.get_linestyle() == "-"
        # the run's curves end at its last record's numbers
        for ax_curve, key in ((ax_d, "distance"), (ax_n, "retain_nll")):
            line = ax_curve.get_lines()[c]
            assert line.get_ydata()[-1] == r[key][c, -1]
    # one colour per run, NPO's betas in distinct shades
    colors = [ax_n.get_lines()[c].get_color() for c in range(len(rows))]
    assert len({str(c) for c in colors}) == len(rows)


@pytest.mark.parametrize("rows", [[2], [0, 1, 3]], ids=["NPO alone", "three runs"])
def test_the_strip_has_a_row_per_run_at_log_spaced_steps(four, rows):
    r = _runs(four, rows)
    fig = tutorial_figures.race_strip(r)
    assert len(fig.axes) == 4 * len(rows)
    labels = [str(m).replace("beta", "β") for m in r["labels"]]
    for k, ax in enumerate(fig.axes):
        c, step = divmod(k, 4)
        assert ax.get_title().split("\n")[0] == f"{labels[c]}, step {(0, 10, 100, 1000)[step]}"
        ghost, boundary = ax.get_lines()
        assert _on_line(r["theta_ref"], *ghost.get_data()) < 1e-9
        e = int(np.searchsorted(r["steps"], (0, 10, 100, 1000)[step]))
        assert _on_line(r["theta"][c, e], *boundary.get_data()) < 1e-9
