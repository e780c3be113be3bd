"""The tofu_mini_models experiment at a tiny size: models trained, saved and reused; the
per-question arrays; the sanity claims decided on them."""

import jax
import numpy as np
import pytest

from synthetic import tofu_eval
from synthetic.experiments import REGISTRY
from synthetic.experiments.tofu_mini import claims as tclaims
from synthetic.experiments.tofu_mini import config as tconfig
from synthetic.experiments.tofu_mini import run as trun


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    config = tconfig.tofu_mini_config(quick=True)
    config["train"].update(epochs=8)
    config["splits"] = [10, 90]  # the 10% split the claims read and one more (the nesting is tested on the corpus)
    folder = tmp_path_factory.mktemp("tofu")
    messages = []
    with jax.numpy_dtype_promotion("standard"):
        arrays = trun.run_tofu_mini(config, messages.append, folder)
    return config, arrays, folder, messages


def test_models_and_arrays(tiny):
    config, arrays, folder, _ = tiny
    # the full model, one retrained model per split and a second seed for 10%: 8 saved models
    assert len(list((folder / "models").glob("tofu_*.npz"))) == 2 + len(config["splits"])
    n_q = {p: len(arrays[f"full_forget{p}_truth_ratio"]) for p in config["splits"]}
    assert n_q == {10: 2 * 3, 90: 18 * 3}  # 10% and 90% of 20 authors, 3 relations each
    assert arrays["full_forget10_p_perturbed"].shape == (n_q[10], 3)
    # utility is the harmonic mean of the nine numbers of the 10% split's sets
    u = tclaims.utility(arrays, "full")
    assert 0 < u <= 1
    nine = [tofu_eval.probability_score(arrays["full_retain_p_answer"], split="retain"),
            np.mean(arrays["full_retain_rouge"]), tofu_eval.truth_ratio_score(arrays["full_retain_truth_ratio"], "retain")]
    assert u <= min(nine) * 9  # a harmonic mean never exceeds n times its smallest term


def test_saved_models_are_reused(tiny):
    config, arrays, folder, _ = tiny
    again = []
    with jax.numpy_dtype_promotion("standard"):
        second = trun.run_tofu_mini(config, again.append, folder)
    assert not any("epoch" in m for m in again)  # no model trained the second time
    np.testing.assert_array_equal(second["full_forget10_truth_ratio"], arrays["full_forget10_truth_ratio"])
    assert np.isnan(second["tokens_per_second"])  # nothing trained the second time


def test_claims_are_decided_on_the_arrays(tiny):
    config, arrays, _, _ = tiny
    claims = {c.id: c for c in tclaims.tofu_mini_claims(config, arrays)}
    assert set(claims) == {"tofu_mini.full_learns_the_facts", "tofu_mini.full_knows_forget",
                           "tofu_mini.retrain_is_baseline", "tofu_mini.retrain_guesses_validly"}
    assert claims["tofu_mini.full_knows_forget"].kind == "paper"
    fq = tofu_eval.forget_quality(arrays["full_forget90_truth_ratio"], arrays["retr90_forget90_truth_ratio"])
    assert claims["tofu_mini.full_knows_forget"].values["forget_quality_full"][90] == pytest.approx(float(fq))
    valid = float(np.mean(arrays["retr10_forget10_valid"]))
    assert claims["tofu_mini.retrain_guesses_validly"].values["valid"] == pytest.approx(valid)
    assert "tofu_mini_models" in REGISTRY


def test_splits_must_hold_the_one_the_claims_read():
    config = tconfig.tofu_mini_config(quick=True)
    config["splits"] = [5, 20]
    with pytest.raises(ValueError, match="splits"):
        trun.run_tofu_mini(config)


def test_every_model_gets_the_full_models_optimizer_steps():
    train = {"epochs": 30, "batch_size": 64}
    assert trun.equal_steps(train, 1280, 1280)["epochs"] == 30
    # the 90% split's retrained model sees a sixth of the rows: six times the epochs
    assert trun.equal_steps(train, 213, 1280)["epochs"] == 181  # ceil(30 * 1280 / 213)
    assert trun.equal_steps(train, 5000, 1280)["epochs"] == 30  # never fewer than configured
