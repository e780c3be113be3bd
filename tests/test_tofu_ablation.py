"""The ablation of TOFU in miniature: its variants switch one property each, and its readings,
claims, table and figure are decided on the numbers they are given."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from synthetic.registry import experiments  # noqa: E402
from synthetic.worlds.tofu_mini import claims as tclaims  # noqa: E402
from synthetic.worlds.tofu_mini import config as tconfig  # noqa: E402
from synthetic.worlds.tofu_mini import figures as tfigures  # noqa: E402


def _diff(a, b, path=""):
    """The dotted paths at which two nested configs differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{path}.{k}" if path else k)]
    return [] if a == b else [path]


@pytest.mark.parametrize("quick", [False, True])
def test_each_variant_switches_one_property_of_the_faithful_setting(quick):
    config = tconfig.ablation_config(quick)
    v = config["variants"]
    assert config["factors"][0] == "tofu"
    assert config["factors"] == (list(tconfig.QUICK_FACTORS) if quick else [n for n, _ in tconfig.FACTORS])
    assert config["factors"][-1] == ("eval_40" if quick else "today")
    assert set(v) == set(config["factors"]) - {"eval_40"}  # the evaluation-size row reuses the faithful runs
    assert v["tofu"]["unlearn"]["eval_small"] == tconfig.EVAL_SMALL
    switched = {} if quick else {
        "no_pretraining": {"models.pretrain", "models.train"},
        "two_wordings": {"models.train.wordings"},
        "short_answers": {"models.corpus.answers"},
        "sum_normalisation": {"unlearn.normalisation"},
        "lr_scan": {"unlearn.learning_rate"},
    }
    for name, paths in switched.items():
        got = {p for p in _diff(v["tofu"], v[name]) if p != "unlearn.eval_small"}
        got = {p if not p.startswith(("models.pretrain", "models.train.")) or name == "two_wordings" else
               p.split(".")[0] + "." + p.split(".")[1] for p in got}
        assert got == paths, name
    lr = v["tofu"]["unlearn"]["learning_rate"]
    # the faithful rule: unlearning at the finetuning learning rate
    assert lr == v["tofu"]["models"]["train"]["learning_rate"]
    # every variant: NPO and NPO+RT on the 10% split only, the same seeds
    for s in v.values():
        assert s["methods"] == ["NPO", "NPO+RT"] and s["splits"] == [10] and s["large_splits"] == []
        assert s["unlearn"]["seeds"] == config["seeds"] and s["models"]["splits"] == [10]
    if not quick:
        assert _diff(v["tofu"], v["sum_normalisation"]) == ["unlearn.eval_small", "unlearn.normalisation"]
        assert v["lr_scan"]["unlearn"]["learning_rate"] == pytest.approx(tconfig.LR_SCAN_RATIO * lr)
        assert v["no_pretraining"]["unlearn"]["learning_rate"] == lr and v["no_pretraining"]["models"]["pretrain"] is None
        assert v["today"]["variant"] == "today" and v["today"]["unlearn"]["normalisation"] == "sum"


def _split(utility, fq, full_u=0.5):
    """One variant's split with NPO and NPO+RT: ``utility`` and ``fq`` ``(S, 2, E)``."""
    return {"methods": np.array(["NPO", "NPO+RT"]), "model_utility": np.asarray(utility, float),
            "forget_quality": np.asarray(fq, float), "full": {"model_utility": np.asarray(full_u)},
            "beta_gap": np.asarray(9.5), "n_scored": np.asarray(100)}


def _results():
    u_ok = [[[0.5, 0.45, 0.42], [0.5, 0.48, 0.35]]] * 2  # never below half; NPO+RT under 0.8 x 0.5 at the end
    u_bad = [[[0.5, 0.2, 0.1], [0.5, 0.15, 0.05]]] * 2  # collapses
    fq_hi = [[[1e-4, 0.2, 0.3], [1e-4, 0.3, 0.4]]] * 2
    fq_lo = [[[1e-4, 1e-3, 1e-3], [1e-4, 1e-3, 2e-3]]] * 2
    variants = {
        "tofu": {**_split(u_ok, fq_hi), "forget_quality_40": np.asarray(fq_hi) * 2},
        "no_pretraining": _split(u_bad, fq_lo),  # flips both verdicts alone
        "two_wordings": _split(u_ok, fq_lo),  # flips figure 5 only
        "today": _split(u_bad, fq_lo),
    }
    variants["eval_40"] = {**variants["tofu"], "forget_quality": variants["tofu"]["forget_quality_40"]}
    config = {"factors": ["tofu", "no_pretraining", "two_wordings", "eval_40", "today"], "seeds": 2, "eval_small": 40}
    return config, {"variants": variants, "seconds": {}}


def test_readings_and_verdicts_are_read_off_the_numbers():
    config, results = _results()
    r = tclaims.ablation_readings(results["variants"]["tofu"])
    np.testing.assert_allclose(r["NPO lowest share"], [0.42 / 0.5] * 2)
    np.testing.assert_allclose(r["NPO+RT best FQ"], [0.3] * 2)  # 0.4 comes at utility 0.35 < 0.8 x 0.5: not counted
    assert tclaims.ablation_verdicts(r) == (True, True)
    r = tclaims.ablation_readings(results["variants"]["no_pretraining"])
    # utility falls below 0.8 x full after step 0, where the forget quality is 1e-4
    np.testing.assert_allclose(r["NPO+RT best FQ"], [1e-4] * 2)
    assert tclaims.ablation_verdicts(r) == (False, False)


def test_claims_attribute_each_flip_and_the_small_evaluation_is_laxer():
    config, results = _results()
    claims = {c.id: c for c in tclaims.ablation_claims(config, results)}
    attr = claims["tofu_mini.ablation_attributes"]
    assert attr.verdict == "pass" and attr.kind == "extension"
    assert "npo_stable: holds (faithful) vs fails (earlier); flipped alone by: no_pretraining" in attr.measured
    assert "figure 5: holds (faithful) vs fails (earlier); flipped alone by: no_pretraining, two_wordings" in attr.measured
    small = claims["tofu_mini.ablation_small_eval_laxer"]
    assert small.verdict == "pass" and small.values["log10_difference"] == pytest.approx(np.log10(2))
    # when every forget question is among the 40 the two sizes are one: inconclusive
    few = {**results["variants"]["tofu"], "n_scored": np.asarray(40)}
    small = {c.id: c for c in tclaims.ablation_claims(config, {"variants": {**results["variants"], "tofu": few}})}
    assert small["tofu_mini.ablation_small_eval_laxer"].verdict == "inconclusive"
    # a difference no single property makes is a failure, not a pass
    results["variants"]["no_pretraining"] = results["variants"]["tofu"]
    results["variants"]["two_wordings"] = results["variants"]["tofu"]
    attr = {c.id: c for c in tclaims.ablation_claims(config, results)}["tofu_mini.ablation_attributes"]
    assert attr.verdict == "fail" and "flipped alone by: none" in attr.measured
    # ends that agree explain nothing: inconclusive
    results["variants"]["today"] = results["variants"]["tofu"]
    attr = {c.id: c for c in tclaims.ablation_claims(config, results)}["tofu_mini.ablation_attributes"]
    assert attr.verdict == "inconclusive"


def test_table_and_figure_have_one_row_per_variant():
    config, results = _results()
    table = tclaims.ablation_table(config, results)["What decides the verdicts (ablation)"]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "variant" not in line]
    assert len(rows) == len(config["factors"])
    assert rows[0].endswith("| holds | holds |") and rows[-1].endswith("| fails | fails |")
    fig = tfigures.ablation_figures(config, results)["tofu_ablation"]
    a, b = fig.axes[:2]
    assert len(a.get_yticklabels()) == len(config["factors"]) and b.get_xscale() == "log"
    exp = experiments()["tofu_mini_ablation"]
    assert exp.function("claims") is tclaims.ablation_claims and exp.function("figures") is tfigures.ablation_figures
