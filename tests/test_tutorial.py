"""docs/tutorial.md runs as written, its numbers say what its prose says, and the ``tutorial``
experiment draws the same pictures.

The page's code runs once per module (a fixture), in a temporary folder (it writes
``race.gif``). Section 6, the transformer, runs in ``test_tutorial_lm.py`` so that the two
halves can go to different test workers.
"""

import gc
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from matplotlib import animation
from matplotlib.figure import Figure
from PIL import Image

from figures.files import save_figure
from synthetic.analysis import decade_growth_ratio
from synthetic.registry import experiments
from synthetic.worlds.tutorial import claims, config, run
from synthetic.worlds.tutorial import figures as tutorial_figures
from theory import theorem2
from tutorial_page import LM_SECTION, PAGE, page_blocks

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tutorial")
    namespace = {"__name__": "docs_tutorial"}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        exec(compile(page_blocks(lambda title: title != LM_SECTION), str(PAGE), "exec"), namespace)
    namespace["folder"] = folder
    return namespace


@pytest.fixture(scope="module")
def experiment(page):
    """The ``tutorial`` experiment's results, its transformer step replaced by a stand-in of the
    same shapes (the real one is checked in ``test_tutorial_lm.py``; here the composition,
    claims and figures are)."""
    stand_in = {
        "methods": np.array(["GA", "NPO beta=0.1"]), "steps": np.arange(0, 15, 5),
        "model_utility": np.array([[0.7, 0.3, 0.01], [0.7, 0.6, 0.5]]),
        "forget_probability": np.array([[0.9, 1e-3, 1e-6], [0.9, 0.1, 0.05]]),
        "param_distance": np.array([[0.0, 1.0, 2.0], [0.0, 0.5, 0.6]]), "train_loss": np.float64(0.1),
        "questions": np.array(["q one ?", "q two ?"]), "truths": np.array(["a one .", "a two ."]),
        "answers": np.array([["is is is", "is is is"], ["a three .", "a four ."]]),
        "reference_answers": np.array(["a one .", "a two ."]),
    }  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run, "lm_collapse", lambda lm_config, progress: stand_in)
        return run.run_tutorial(config.tutorial_config())


def test_the_losses_and_the_weight(page):
    # GA falls one unit per unit of log pi; NPO stops within (2/beta) log 2 of its start
    assert page["L_ga"][0] == -12.0
    for b, L in zip(page["betas"], page["L_npo"]):
        assert 0 <= L[0] < L[page["start"]] <= 2 / b * np.log(2) + 0.1
    assert page["L_npo"][2][0] < 1e-3 < page["L_npo"][0][0]   # beta 1 at its floor, beta 0.1 far from it
    assert float(abs(page["W"] - 0.442)) < 1e-3
    assert float(np.max(np.abs(page["g_npo"] - page["W"] * page["g_log_pi"]))) < 1e-6


def test_the_race_runs_away_linearly_under_ga_only(page):
    distance = page["distance"]
    assert page["measured_rate"] == pytest.approx(page["predicted_rate"], rel=1e-6)
    assert distance[0, -1] > 2000 and 5 < distance[1, -1] < 7       # GA 2044, NPO 6.1 after 1000 steps
    nll = page["runs"]["retain_nll"][0]
    assert nll[0, -1] > 1000 and 2 < nll[1, -1] < 3 and 0.5 < nll[0, 0] < 0.6     # GA 1174, NPO 2.6, reference 0.57
    # NPO's distance slows down: the second half adds far less than the first
    half = len(distance[1]) // 2
    assert distance[1, -1] - distance[1, half] < 0.2 * distance[1, half]
    # the packaged race is the page's run, and the GIF was written with every frame
    assert np.allclose(page["packaged"]["theta"], page["runs"]["theta"][0], rtol=1e-12)
    with Image.open(page["folder"] / "race.gif") as gif:
        assert gif.n_frames == tutorial_figures.RACE_STEPS_SHOWN and gif.size[0] > 800
    assert isinstance(page["strip"], Figure)


def test_theorem2_table(page):
    hits = page["sim"]["hit_step"]
    assert list(hits[0]) == [4, 8, 13, 22, 40, 74]         # GA: doubling D about doubles the time
    assert hits[3, -2] > 30000 and hits[3, -1] == -1       # NPO beta=2: 38492 steps to D=16, D=32 never
    assert np.all(np.diff(hits[0]) > 0)
    # the page's formulas, written out by hand, are the toolkit's closed forms (D / sqrt(n_f) per
    # coordinate, eta0 = eta / n_f, C as defined there) and predict the measured table
    fs, D, (ga, *_, npo2) = page["fs"], page["D"], page["thm2_runs"]
    for T, m in ((page["T_ga"], ga), (page["T_npo"], npo2)):
        np.testing.assert_allclose(T, theorem2.predicted_time_to_distance(fs.x, fs.y, fs.theta_init, D, eta=1.0,
                                                                         method=m), rtol=1e-12)
    assert page["T_npo"][-2] == pytest.approx(hits[3, -2], rel=0.1)   # D = 16: 38158 predicted, 38492 measured
    assert 1e9 < page["T_npo"][-1] < 1e10                           # D = 32: "about three billion"
    assert page["T_ga"][-1] == pytest.approx(hits[0, -1], rel=0.1)


def test_the_update_rule_by_hand_is_the_engine(page):
    for k, name in enumerate(("GA", "NPO")):
        np.testing.assert_allclose(page["by_hand"][name], page["runs"]["theta"][0, k, -1], rtol=1e-12)
    # growth per decade of steps: ten times the previous decade's for GA, about the same for NPO
    ratios = [decade_growth_ratio(page["steps"], page["distance"][k], end=1000) for k in range(2)]
    assert ratios[0] == pytest.approx(10.0, rel=1e-3) and 0.8 < ratios[1] < 1.1


def test_figure4_in_one_call(page):
    verdicts = {c.id: c.verdict for c in page["fig4"].function("claims")(page["config"], page["results"])}
    assert len(verdicts) == 6 and set(verdicts.values()) == {"pass"}
    # section 5's reading of panel (c): NPO+RT ends below its starting retain distance, near 3e-3
    a1 = page["alpha1"]
    k = list(a1["setting_method"]).index("NPO+RT")
    assert a1["retain_distance"][0, k, -1] < a1["retain_distance"][0, k, 0]
    assert 1e-3 < a1["forget_distance"][0, k, -1] < 1e-2
    assert isinstance(page["fig"], Figure)


def test_the_exercises(page):
    # 1: the beta below which NPO follows GA for 1000 steps, predicted from the weight
    assert 5e-5 < page["beta_measured"] < 2e-4
    assert page["beta_predicted"] == pytest.approx(page["beta_measured"], rel=0.1)
    # 2: GA's speed on another forget set
    assert page["rate_measured"] == pytest.approx(page["rate_predicted"], rel=1e-5)
    assert page["rate_predicted"] != pytest.approx(page["predicted_rate"] / 2, rel=0.01)   # not section 3's
    # 3: GA weighted by NPO's frozen weight follows NPO step for step
    assert page["gap"] < 1e-10 and page["both"]["distance"][0, -1] > 5


def test_the_experiment_is_the_page(page, experiment):
    a = experiment
    assert np.array_equal(a["race"]["theta"], page["packaged"]["theta"])
    assert np.allclose(a["curves"]["npo"], page["L_npo"], rtol=1e-6)   # the page in float32, the experiment float64
    assert np.array_equal(a["thm2"]["measured"], page["sim"]["hit_step"])
    assert np.array_equal(a["fig4"]["alpha1"]["forget_distance"], page["results"]["alpha1"]["forget_distance"])
    verdicts = {c.id: c.verdict for c in claims.tutorial_claims(config.tutorial_config(), a)}
    assert verdicts == {"tutorial.ga_rate": "pass", "tutorial.crossing_times": "pass"}
    table = claims.answers_table(config.tutorial_config(), a)
    assert "| q one ? | a one . | a one . | is is is | a three . |" in next(iter(table.values()))


def test_a_wrong_prediction_fails_the_claims(experiment):
    race, thm2 = experiment["race"], experiment["thm2"]
    broken = {**experiment, "race": {**race, "predicted_ga_rate": race["predicted_ga_rate"] * 1.01},
              "thm2": {**thm2, "measured": np.where(thm2["measured"] > 300, thm2["measured"] * 2, -1)}}
    verdicts = [c.verdict for c in claims.tutorial_claims(config.tutorial_config(), broken)]
    assert verdicts == ["fail", "fail"]


def test_every_figure_and_the_animation_are_drawn_and_saved(experiment, tmp_path):
    drawn = tutorial_figures.all_figures(config.tutorial_config(), experiment)
    assert set(drawn) == {"tutorial_losses", "tutorial_weight", "tutorial_race", "tutorial_race_strip",
                          "tutorial_log_time", "tutorial_thm2", "tutorial_fig4", "tutorial_lm"}
    anim = drawn.pop("tutorial_race")
    assert isinstance(anim, animation.FuncAnimation) and len(list(anim.new_frame_seq())) == tutorial_figures.RACE_FRAMES
    # not rendered here (the page's block above wrote the race's GIF): let it go without
    # matplotlib's warning about an animation deleted unrendered
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Animation was deleted without rendering", UserWarning)
        del anim
        gc.collect()
    assert all(isinstance(f, Figure) for f in drawn.values())
    # paper_repro writes an animation as a GIF (figures.files), atomically like every result; here a
    # two-frame one, to keep the test short
    fig = Figure()
    ax = fig.subplots()
    small = animation.FuncAnimation(fig, lambda k: ax.plot([0, k]), frames=2, interval=200)
    (path,) = save_figure(small, tmp_path, "small")
    with Image.open(path) as gif:
        assert path == tmp_path / "small.gif" and gif.n_frames == 2 and gif.info["duration"] == 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.gif"]


def test_the_experiment_is_registered_small_and_documented():
    exp = experiments()["tutorial"]
    assert list(experiments())[-1] == "tutorial" and exp.reference_seconds <= 40
    assert exp.function("run") is run.run_tutorial and exp.function("claims") is claims.tutorial_claims
    assert exp.config(True) == exp.config(False)
    # every figure the page shows is one the experiment writes, and is committed beside the page
    shown = set(re.findall(r"\]\((tutorial_[a-z0-9_]+\.(?:png|gif))\)", PAGE.read_text()))
    assert shown == {f"{name}.{'gif' if name == 'tutorial_race' else 'png'}" for name in (
        "tutorial_losses", "tutorial_weight", "tutorial_race", "tutorial_race_strip", "tutorial_log_time",
        "tutorial_thm2", "tutorial_fig4", "tutorial_lm")}
    assert all((PAGE.parent / name).is_file() for name in shown)
    assert "(docs/tutorial.md)" in (ROOT / "README.md").read_text()


def test_the_race_refuses_separable_data_by_name():
    separable = run.blobs(seed=1, per_class=12, n_forget=6)   # these two classes do not overlap
    with pytest.raises(ValueError, match="data's two classes are linearly separable"):
        run.race(separable, ["GA"], eta=1.0, steps=10, every=10)
