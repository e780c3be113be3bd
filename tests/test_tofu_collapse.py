"""Unlearning TOFU in miniature: the cached greedy decoder, every method's data, the in-run
measures against the same measures taken outside the engine, the recipe's schedule, and the
``tofu_mini`` experiment at a tiny size (arrays, claims, the answers table)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from synthetic.models import transformer as tf
from synthetic.optim import warmup_decay_adamw
from synthetic.registry import experiments
from synthetic.worlds.tofu_mini import claims as cclaims
from synthetic.worlds.tofu_mini import config as cconfig
from synthetic.worlds.tofu_mini import measures, scoring
from synthetic.worlds.tofu_mini import study as crun
from synthetic.worlds.tofu_mini import unlearn as tofu_unlearn
from synthetic.worlds.tofu_mini.data import IDK_ANSWERS
from synthetic.worlds.tofu_mini.profiles import ProfileConfig
from synthetic.worlds.tofu_mini.lm import train_models
from theory.methods import get_method


@pytest.mark.parametrize("config", [tf.TransformerConfig(vocab_size=30, context=12, layers=2, width=16, heads=2),
                                    tf.TransformerConfig.study(vocab_size=10, context=9, layers=2, width=8)])
def test_cached_greedy_decode_equals_decoding_with_full_forward_passes(config):
    params = tf.init(jax.random.key(1), config)
    B, T = 16, config.context
    tokens = jax.random.randint(jax.random.key(2), (B, T), 0, config.vocab_size)
    prompt = jax.random.randint(jax.random.key(3), (B,), 1, T)
    out = np.asarray(jax.jit(tf.greedy_complete)(params, tokens, prompt))
    # the reference: one full forward pass per position, the argmax of the last one
    want = np.where(np.arange(T)[None] < np.asarray(prompt)[:, None], np.asarray(tokens), 0)
    forward = jax.jit(tf.forward)
    for t in range(1, T):
        nxt = np.argmax(np.asarray(forward(params, jnp.asarray(want)))[:, t - 1], axis=-1)
        want[:, t] = np.where(t >= np.asarray(prompt), nxt, want[:, t])
    np.testing.assert_array_equal(out, want)


def test_greedy_sets_of_similar_length_decode_as_one_batch_with_the_same_tokens():
    config = tf.TransformerConfig(vocab_size=30, context=14, layers=1, width=16, heads=2)
    params = tf.init(jax.random.key(4), config)
    sets = {}
    for name, (B, T) in {"a": (3, 12), "b": (5, 11), "c": (4, 6)}.items():
        tokens = jax.random.randint(jax.random.key(B), (B, T), 1, config.vocab_size)
        sets[name] = {"tokens": tokens, "prompt": jnp.full((B,), 3) + jnp.arange(B) % 2}
    got = jax.jit(scoring._greedy_decodes)(params, sets)
    for name, g in sets.items():  # a and b (12 and 11 positions) share a decode; c decodes alone
        want = tf.greedy_complete(params, g["tokens"], g["prompt"])
        np.testing.assert_array_equal(np.asarray(got[name]), np.asarray(want), err_msg=name)


@pytest.fixture(scope="module")
def models(request):
    """The tiny study's corpus and models (10 authors, 1 layer of width 16), trained once into
    the folder the study below reads them from: the pytest cache, where they are kept by config
    and code (as paper_repro.py keeps models), so a rerun of the suite with the same code loads
    them."""
    folder = request.config.cache.mkdir("tofu_collapse_models")
    with jax.numpy_dtype_promotion("standard"):
        corpus, params, _ = train_models(tiny_config()["models"], folder=folder)
    return corpus, params, folder


@pytest.fixture(scope="module")
def small(models):
    corpus, params, _ = models
    assert corpus.config == ProfileConfig(n_authors=10, relations=2, n_real_authors=4, n_countries=2)
    return corpus, params["full"]


def test_unlearning_data_holds_every_methods_inputs(small):
    corpus, params = small
    data = tofu_unlearn.unlearning_data(corpus, params, 20)
    n_f, n_r = len(corpus.split("forget", 20)), len(corpus.split("retain", 20))
    assert data["forget_tokens"].shape[0] == data["forget_idk_tokens"].shape[0] == n_f == 4
    assert data["retain_tokens"].shape[0] == n_r == 16
    # each group at its own longest row, within the model's context; the reference's laws are
    # computed on each step's rows from the parameters the data carries, not stored per row
    T = data["forget_tokens"].shape[1]
    assert T == corpus.encode(corpus.split("forget", 20)).tokens.shape[1] <= tf.config_of(params).context
    assert data["reference_params"] is params and not any(k.endswith("_ref_dist") for k in data)
    assert "reference_params" not in tofu_unlearn.unlearning_data(corpus, params, 20, retain_kl=False, forget_kl=False)
    # the uninformed answers are the IDK list, in turn
    first = corpus.tokenizer.decode(np.asarray(data["forget_idk_tokens"][1])[np.asarray(data["forget_idk_mask"][1]) > 0])
    assert first.startswith(IDK_ANSWERS[1])
    # the reference's log-probability of each forget answer: the answer tokens only (and <end>),
    # by hand from the model's next-token log-probabilities
    enc = corpus.encode(corpus.split("forget", 20))
    logp = np.asarray(tf.next_token_log_probs(params, enc.tokens), np.float64)
    per_token = np.take_along_axis(logp, enc.tokens[:, 1:, None], axis=-1)[..., 0]
    lp = np.sum(per_token * (enc.answer_mask[:, 1:] > 0), axis=-1)
    np.testing.assert_allclose(np.asarray(data["forget_ref_logp"]), lp, rtol=1e-5, atol=1e-4)


def test_engine_measures_equal_the_measures_taken_outside(small):
    """:func:`scoring.tofu_metrics` + :func:`summarize` on one model give what
    :func:`scoring.question_numbers` and :mod:`measures` give on the same questions."""
    corpus, params = small
    sets = scoring.eval_sets(corpus, 20, cap=None, greedy_cap=None, retain_split=50)
    rec = scoring.model_records(params, corpus, sets, params)
    ev = {name: scoring.question_numbers(params, corpus, list(getattr(sets, name)))
          for name in ("forget",) + measures.UTILITY_SETS}
    np.testing.assert_allclose(measures.probability_numbers(rec["forget"])["truth_ratio"], ev["forget"]["truth_ratio"],
                               rtol=1e-4)
    np.testing.assert_allclose(measures.probability_numbers(rec["real_authors"])["p_perturbed"],
                               ev["real_authors"]["p_perturbed"], rtol=1e-4)
    R_other = ev["forget"]["truth_ratio"][::-1] * 1.5  # any second sample
    s = tofu_unlearn.summarize(rec, corpus, sets, R_other)
    fq = measures.forget_quality(ev["forget"]["truth_ratio"], R_other)
    assert float(s["forget_quality"]) == pytest.approx(float(fq), rel=1e-3)
    nine = {}
    for name in measures.UTILITY_SETS:
        m = measures.set_scores(ev[name], name)
        nine.update({f"{name}/probability": m["probability"], f"{name}/rouge": m["rouge"],
                     f"{name}/truth_ratio": m["truth_ratio"]})
    assert float(s["model_utility"]) == pytest.approx(float(measures.model_utility(nine)), rel=1e-4)
    assert float(s["forget_right"]) == pytest.approx(float(np.mean(ev["forget"]["right"])))
    assert float(s["forget_valid"]) == pytest.approx(float(np.mean(ev["forget"]["valid"])))
    assert float(s["retain_degenerate"]) == pytest.approx(float(np.mean(ev["retain"]["degenerate"])))
    assert float(s["param_distance"]) == 0.0 and abs(float(s["forget_kl"])) < 1e-5


def test_recipe_warms_up_then_decays_linearly():
    opt = warmup_decay_adamw(4, 20, weight_decay=0.0)
    params = {"w": jnp.zeros(3)}
    state = opt.init(params)
    state = state._replace(hyperparams={**state.hyperparams, "learning_rate": jnp.asarray(0.5)})
    sizes = []
    with jax.numpy_dtype_promotion("standard"):
        for _ in range(20):
            updates, state = opt.update({"w": jnp.ones(3)}, state, params)
            sizes.append(float(jnp.abs(updates["w"][0])))
    # a constant gradient makes Adam's step 1 x the learning rate of the step: 0.5 x the schedule
    want = [0.5 * min(t / 4, (20 - t) / 16) for t in range(20)]
    np.testing.assert_allclose(sizes, want, rtol=1e-4, atol=1e-7)
    assert isinstance(opt, optax.GradientTransformation)
    # the training form: the same schedule with the peak fixed, nothing injected
    fixed = warmup_decay_adamw(4, 20, weight_decay=0.0, learning_rate=0.5)
    state, sizes = fixed.init(params), []
    with jax.numpy_dtype_promotion("standard"):
        for _ in range(20):
            updates, state = fixed.update({"w": jnp.ones(3)}, state, params)
            sizes.append(float(jnp.abs(updates["w"][0])))
    np.testing.assert_allclose(sizes, want, rtol=1e-4, atol=1e-7)
    # one object per setting, so the engine compiles once per shape
    assert warmup_decay_adamw(4, 20, weight_decay=0.0) is opt


def test_the_papers_normalisations_swap_the_mean_terms_only():
    npo_rt = tofu_unlearn.normalised(get_method("NPO+RT", beta=0.3), "paper")
    assert npo_rt.weights == {"npo": 1.0, "rt_tokens": 1.0} and npo_rt.hyper["beta"] == 0.3
    assert tofu_unlearn.normalised(get_method("GA+KL"), "paper").weights == {"ga_tokens": 1.0, "kl_rt_positions": 1.0}
    assert tofu_unlearn.normalised(get_method("IDK+RT"), "paper").weights == {"idk_tokens": 1.0, "rt_tokens": 1.0}
    for name in ("NPO", "KTO", "DPO+RT", "SimNPO+RT"):  # sums stay sums (DPO+RT's retain term becomes a mean)
        w = tofu_unlearn.normalised(get_method(name), "paper").weights
        assert {k for k in w if k not in ("rt_tokens",)} == {k for k in get_method(name).weights if k != "rt"}
    assert tofu_unlearn.normalised(get_method("GA+RT"), "sum") == get_method("GA+RT")
    with pytest.raises(ValueError, match="normalisation must be 'paper' or 'sum'"):
        tofu_unlearn.normalised(get_method("GA"), "mean")


def tiny_config():
    config = cconfig.tofu_collapse_config(quick=True)
    models = config["models"]
    models["corpus"].update(n_authors=10, relations=2, n_real_authors=4, n_countries=2)
    models["model"] = {"layers": 1, "width": 16, "heads": 2, "mlp_ratio": 2}
    models["train"].update(epochs=15, batch_size=8)
    models["splits"], models["retrain_seeds"] = [10], [0]
    config["methods"] = ["GA", "NPO", "NPO+RT", "IDK+RT", "DPO", "KTO"]
    config["splits"], config["large_splits"] = [10], []  # the large splits run the same code
    config["unlearn"].update(seeds=2, epochs=3, batch_size=2, eval={"forget": 8, "forget_greedy": 4, "retain": 8})
    config["guidance"].update(betas=[0.1, 1.0], learning_rates=[3e-3], retain_weights=[0.0, 1.0, 2.0])
    config["one_call"] = False  # the quick config's single call; here one call per retain use, as a full run
    config["long"].update(steps=60, n_records=8, fit_decades_from=6)
    return config


@pytest.fixture(scope="module")
def study(models):
    config = tiny_config()
    messages = []
    with jax.numpy_dtype_promotion("standard"):
        results = crun.run_study(config, messages.append, models[2])  # the models saved there are reused
    assert not any("epoch" in m for m in messages)
    return config, results, messages


def test_study_results(study):
    config, a, messages = study
    exp = experiments()["tofu_mini"]
    assert exp.function("run") is crun.run_study and exp.function("claims") is cclaims.tofu_collapse_claims
    S, C = 2, len(config["methods"])
    s10 = a["splits"]["10"]
    assert list(s10["methods"]) == config["methods"] and set(a["splits"]) == {"10"}
    # 2 forget questions at 10% (1 author x 2 relations), batch 2: 1 step an epoch, 3 epochs
    assert int(s10["epoch_steps"]) == 1 and list(s10["steps"]) == [0, 1, 2, 3]
    assert s10["forget_quality"].shape == (S, C, 4) and set(tofu_unlearn.SUMMARY) <= set(s10)
    # step 0 is the full model, measured inside the engine and outside it
    for k in ("forget_quality", "model_utility", "forget_truth_ratio", "retain_rouge"):
        np.testing.assert_allclose(s10[k][:, :, 0], float(s10["full"][k]), rtol=1e-4, err_msg=k)
    assert float(s10["retrained"]["forget_quality"]) == 1.0
    # the learning rate warms up from 0 at the first step (as in transformers' linear schedule)
    assert np.all(s10["param_distance"][:, :, 1] == 0) and np.all(s10["param_distance"][:, :, 2:] > 0)
    g = a["guidance"]
    assert g["grid"]["forget_quality"].shape == (S, 2, 1, len(g["steps"]))
    assert g["by_weight"]["model_utility"].shape == (S, 3, len(g["steps"]))
    # the retain weight 0 setting is NPO alone: with the same beta and seed it is a different run from weight 1
    assert not np.allclose(g["by_weight"]["param_distance"][:, 0, -1], g["by_weight"]["param_distance"][:, 1, -1])
    assert a["long"]["param_distance"].shape == (3, len(a["long"]["steps"]))
    assert not any("fit" in k for k in a["long"])  # the laws are fitted by the claims and figures, not stored
    assert any(m.startswith("10% split:") for m in messages) and messages[-1].startswith("done:")


def test_study_claims_and_table(study):
    config, a, _ = study
    claims = {c.id: c for c in cclaims.tofu_collapse_claims(config, a)}
    assert set(claims) == {f"tofu_mini.{c}" for c in (
        "ga_collapses", "npo_stable", "npo_collapses_later", "ga_fq_peaks_then_falls", "npo_fq_plateau",
        "npo_rt_forgets_with_utility", "npo_answers_valid_but_wrong", "npo_rt_large_splits", "retain_weight",
        "simnpo_rt_forgets_with_utility", "ga_linear_npo_log")}
    assert claims["tofu_mini.ga_linear_npo_log"].kind == "extension"
    assert claims["tofu_mini.simnpo_rt_forgets_with_utility"].kind == "extension"
    # what did not run is inconclusive, never a pass: no split above 10%, no SimNPO+RT
    assert claims["tofu_mini.npo_rt_large_splits"].verdict == "inconclusive"
    assert claims["tofu_mini.simnpo_rt_forgets_with_utility"].verdict == "inconclusive"
    # figure 5's reading: NPO+RT's best forget quality where utility is at least UTILITY_SHARE x the full model's
    s10 = a["splits"]["10"]
    c = config["methods"].index("NPO+RT")
    ok = s10["model_utility"][:, c] >= cclaims.UTILITY_SHARE * float(s10["full"]["model_utility"])
    want = np.max(np.where(ok, s10["forget_quality"][:, c], cclaims.FQ_FLOOR), axis=-1)
    np.testing.assert_allclose(cclaims.best_fq_with_utility(s10, "NPO+RT"), want)
    lows = cclaims.npo_stable_reading(s10)
    assert set(lows) == {"NPO", "NPO+RT"}  # NPO+KL did not run
    np.testing.assert_allclose(lows["NPO"], s10["model_utility"][:, config["methods"].index("NPO")].min(-1)
                               / float(s10["full"]["model_utility"]))
    assert all(c.verdict in ("pass", "fail", "inconclusive") for c in claims.values())
    # the collapse claim reads GA's final utility against the full model's
    ga = a["splits"]["10"]["model_utility"][:, config["methods"].index("GA"), -1]
    np.testing.assert_allclose(claims["tofu_mini.ga_collapses"].values["ga_utility"], ga)
    table = cclaims.answers_table(config, a)["Answers after unlearning"]
    # 2 forget questions; the retain set is the questions of the one author kept at every split up to 90%
    assert table.count("| forget |") == 2 and table.count("| retain |") == 2


def test_peak_index_ignores_diverged_records():
    fq = np.array([[1e-5, 0.2, 0.01, np.nan], [0.3, np.nan, np.nan, np.nan]])
    np.testing.assert_array_equal(cclaims.peak_index(fq), [1, 0])


@pytest.mark.parametrize("change, match", [
    (lambda c: c.update(splits=[10, 15]), "splits must be among"),
    (lambda c: c["guidance"].update(split=50), "guidance split 50"),
    (lambda c: c.update(methods=["GA", "NOP"]), "NOP"),
    (lambda c: c.update(large_methods=["NPO+RT", "NPO"]), "large_methods must all use retain data"),
    (lambda c: c["unlearn"].update(seeds=0), "unlearn.seeds"),
])
def test_bad_configs_are_refused_before_any_work(change, match, tmp_path):
    config = tiny_config()
    change(config)
    with pytest.raises(ValueError, match=match):
        crun.run_study(config, folder=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written
