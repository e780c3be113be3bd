"""The tofu_mini_models experiment at a tiny size: models trained, saved and reused; the
per-question numbers; the sanity claims decided on them."""

import jax
import numpy as np
import pytest

from synthetic import store
from synthetic.registry import experiments
from synthetic.worlds.tofu_mini import claims as tclaims
from synthetic.worlds.tofu_mini import config as tconfig
from synthetic.worlds.tofu_mini import lm, measures
from synthetic.worlds.tofu_mini import models as trun


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    # the quick config (20 epochs) on a quarter of its rows: 10 authors of 2 relations
    config = tconfig.with_corpus(tconfig.tofu_mini_config(quick=True), n_authors=10, relations=2, n_real_authors=4,
                                 n_countries=2)
    config["splits"] = [10, 90]  # the 10% split the claims read and one more (the nesting is tested on the corpus)
    folder = tmp_path_factory.mktemp("tofu")
    messages = []
    with jax.numpy_dtype_promotion("standard"):
        results = trun.run_models(config, messages.append, folder)
    return config, results, folder, messages


def test_models_and_results(tiny):
    config, results, folder, _ = tiny
    # the pretrained and the full model, one retrained model per split and a second seed for 10%
    assert len(list((folder / "models").glob("tofu_*.npz"))) == 3 + len(config["splits"])
    full = results["full"]
    n_q = {p: len(full["forget"][str(p)]["truth_ratio"]) for p in config["splits"]}
    assert n_q == {10: 1 * 2, 90: 9 * 2}  # 10% and 90% of 10 authors, 2 relations each
    assert full["forget"]["10"]["p_perturbed"].shape == (n_q[10], 3)
    # the sets measured: every split's forget set for the full model and that split's retrained
    # model; the utility sets for the full model and the 10% split's two retrained models
    assert set(full) == {"forget", *measures.UTILITY_SETS} and set(full["forget"]) == {"10", "90"}
    assert set(results["retrained"]["90"]) == {"forget"} and set(results["retrained"]["90"]["forget"]) == {"90"}
    assert set(results["retrained"]["10"]) == {"forget", *measures.UTILITY_SETS}
    assert set(results["other_seeds"]) == {"1"} and set(results["other_seeds"]["1"]["forget"]) == {"10"}
    assert set(full["retain"]) == {"p_answer", "p_paraphrase", "p_perturbed", "truth_ratio", "rouge", "right",
                                   "knows", "valid", "degenerate"}
    # utility is the harmonic mean of the nine numbers of the 10% split's sets
    u = measures.utility(full)
    assert 0 < u <= 1
    nine = [measures.probability_score(full["retain"]["p_answer"], split="retain"),
            np.mean(full["retain"]["rouge"]), measures.truth_ratio_score(full["retain"]["truth_ratio"], "retain")]
    assert u <= min(nine) * 9  # a harmonic mean never exceeds n times its smallest term
    # the results are saved and loaded back with their nesting (the cache's .npz is flat)
    store.save(folder, "results", config, results, version={"test": 1})
    back = store.load(folder, "results", config, version={"test": 1})
    assert jax.tree.structure(back) == jax.tree.structure(results)
    np.testing.assert_array_equal(back["retrained"]["10"]["forget"]["10"]["valid"],
                                  results["retrained"]["10"]["forget"]["10"]["valid"])


def test_saved_models_are_reused(tiny, monkeypatch):
    config, results, folder, _ = tiny
    keys = []
    fingerprint = store.code_fingerprint

    def spy(modules, **kw):
        keys.append(list(modules))
        return fingerprint(modules, **kw)

    monkeypatch.setattr(store, "code_fingerprint", spy)
    again = []
    with jax.numpy_dtype_promotion("standard"):
        second = trun.run_models(config, again.append, folder)
    assert not any("epoch" in m for m in again)  # no model trained the second time
    np.testing.assert_array_equal(second["full"]["forget"]["10"]["truth_ratio"],
                                  results["full"]["forget"]["10"]["truth_ratio"])
    assert np.isnan(second["tokens_per_second"])  # nothing trained the second time
    # every model is keyed by lm.py's fingerprint alone (which covers lm.py and the corpus,
    # test_tofu_lm.py), so editing the study's code retrains nothing
    assert keys and all(k == ["synthetic.worlds.tofu_mini.lm"] for k in keys)


def test_claims_are_decided_on_the_results(tiny):
    config, results, _, _ = tiny
    claims = {c.id: c for c in tclaims.tofu_mini_claims(config, results)}
    assert set(claims) == {"tofu_mini.full_learns_the_facts", "tofu_mini.pretraining_kept",
                           "tofu_mini.full_knows_forget", "tofu_mini.retrain_is_baseline",
                           "tofu_mini.retrain_guesses_validly", "tofu_mini.brake_like_tofu"}
    assert claims["tofu_mini.full_knows_forget"].kind == "paper"
    fq = measures.forget_quality(results["full"]["forget"]["90"]["truth_ratio"],
                                 results["retrained"]["90"]["forget"]["90"]["truth_ratio"])
    assert claims["tofu_mini.full_knows_forget"].values["forget_quality_full"][90] == pytest.approx(float(fq))
    valid = float(np.mean(results["retrained"]["10"]["forget"]["10"]["valid"]))
    assert claims["tofu_mini.retrain_guesses_validly"].values["valid"] == pytest.approx(valid)
    # NPO's brake: beta x the median summed log-likelihood the forget answers lose, full -> retrained
    gap = results["brake"]["10"]["gap"]
    assert claims["tofu_mini.brake_like_tofu"].values["beta_gap"][10] == pytest.approx(0.1 * float(np.median(gap)))
    assert gap.shape == (len(results["full"]["forget"]["10"]["valid"]),)
    kept = claims["tofu_mini.pretraining_kept"].values["world_facts"]
    assert kept["pretrained"] == pytest.approx(float(np.mean(results["pretrained"]["world_facts"]["knows"])))
    exp = experiments()["tofu_mini_models"]
    assert exp.function("run") is trun.run_models and exp.function("claims") is tclaims.tofu_mini_claims


def test_splits_must_hold_the_one_the_claims_read():
    config = tconfig.tofu_mini_config(quick=True)
    config["splits"] = [5, 20]
    with pytest.raises(ValueError, match="splits"):
        trun.run_models(config)


def test_every_model_gets_the_full_models_optimizer_steps():
    train = {"epochs": 30, "batch_size": 64}
    assert lm.equal_steps(train, 1280, 1280)["epochs"] == 30
    # the 90% split's retrained model sees a sixth of the rows: six times the epochs
    assert lm.equal_steps(train, 213, 1280)["epochs"] == 181  # ceil(30 * 1280 / 213)
    assert lm.equal_steps(train, 5000, 1280)["epochs"] == 30  # never fewer than configured
