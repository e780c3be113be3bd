"""The TOFU-in-miniature language models: training at a tiny size, greedy answers, the
per-question numbers TOFU's measures read (``scoring``), one definition of those numbers for
both experiments, and the model cache's key (``lm``)."""

import dataclasses
from pathlib import Path

import jax
import numpy as np
import pytest

from synthetic import store
from synthetic.models import transformer as tf
from synthetic.worlds.tofu_mini import data as tofu
from synthetic.worlds.tofu_mini import lm as tofu_lm
from synthetic.worlds.tofu_mini import measures, scoring, unlearn
from synthetic.worlds.tofu_mini.config import tofu_mini_config


@pytest.fixture(scope="module")
def trained():
    corpus = tofu.make_corpus(tofu.TofuConfig(n_authors=10, relations=2, n_real_authors=4, n_countries=3))
    model = tofu_lm.model_config(corpus, layers=1, width=32, heads=2, mlp_ratio=2)
    data = corpus.encode_training(corpus.training_set(), length=model.context)
    train = {"learning_rate": 1e-2, "batch_size": 16, "epochs": 60, "warmup": 0.1, "weight_decay": 0.0}
    with jax.numpy_dtype_promotion("standard"):
        params, losses = tofu_lm.train_qa_model(jax.random.key(0), model, data, train)
    return corpus, params, losses


def test_training_on_answer_tokens_learns_the_facts(trained):
    corpus, params, losses = trained
    assert losses[-5:].mean() < 0.3 * losses[:5].mean()
    ev = scoring.question_numbers(params, corpus, corpus.split("full"))
    # the facts are learned: most greedy answers are a correct wording, nearly all well formed
    assert ev["right"].mean() > 0.6 and ev["valid"].mean() > 0.9 and ev["degenerate"].mean() < 0.1
    # the model prefers the true answer to the wrong ones: truth ratio below 1 on most questions
    assert np.median(ev["truth_ratio"]) < 1.0


def test_the_per_question_numbers_are_the_measures_of_their_parts(trained):
    corpus, params, _ = trained
    pairs = corpus.split("real_authors")
    ev = scoring.question_numbers(params, corpus, pairs)
    K = corpus.config.perturbed
    assert ev["p_perturbed"].shape == (len(pairs), K) and np.all((ev["p_answer"] > 0) & (ev["p_answer"] <= 1))
    # R: the geometric mean of the wrong answers' p~ over the paraphrase's p~ (log R is taken in
    # float32 from the float32 logs, so a few float32 ulps of log R, about 1e-7 here, apart)
    want = np.exp(np.mean(np.log(ev["p_perturbed"]), axis=1)) / ev["p_paraphrase"]
    np.testing.assert_allclose(ev["truth_ratio"], want, rtol=1e-6)
    # p~ of the answer, by hand from the model's token log-probabilities
    enc = corpus.encode(pairs[:1], length=tf.config_of(params).context)
    logp = np.asarray(tf.next_token_log_probs(params, enc.tokens))[0]
    m = enc.answer_mask[0, 1:] > 0
    by_hand = np.exp(np.mean(logp[np.arange(len(m)), enc.tokens[0, 1:]][m]))
    assert ev["p_answer"][0] == pytest.approx(by_hand, rel=1e-5)
    agg = measures.set_scores(ev, "real_authors")
    assert agg["probability"] == pytest.approx(
        float(measures.probability_score(ev["p_answer"], ev["p_perturbed"], split="real_authors")))


def test_greedy_answers_are_step_by_step_argmax_decoding(trained):
    corpus, params, _ = trained
    enc = corpus.encode(corpus.split("world_facts")[:2], length=tf.config_of(params).context)
    got = scoring.greedy_answers(params, enc, corpus.tokenizer.end)
    forward = jax.jit(tf.forward)
    for i in range(2):
        p = int(enc.prompt_length[i])
        row = enc.tokens[i : i + 1].copy()
        row[0, p:] = 0
        out = []
        for t in range(p, row.shape[1]):
            nxt = int(np.argmax(np.asarray(forward(params, row))[0, t - 1]))
            row[0, t] = nxt
            out.append(nxt)
            if nxt == corpus.tokenizer.end:
                break
        assert got[i] == tuple(out)
    # "right" is the decoded answer, its end token dropped, being one of the question's wordings
    pairs = corpus.split("world_facts")[:2]
    right = scoring.question_numbers(params, corpus, pairs)["right"]
    tok = corpus.tokenizer
    for i, q in enumerate(pairs):
        assert right[i] == (got[i] in {tuple(tok.encode(w)) + (tok.end,) for w in q.wordings})


def test_the_model_cache_is_keyed_by_the_models_code_only():
    """Editing how models are unlearned, measured, claimed or drawn must not retrain them: the
    models' cache key (lm.py's own fingerprint) covers lm.py and the corpus, not the study's code."""
    world = Path(tofu_lm.__file__).parent
    covered = {p.relative_to(world).as_posix() for p in store.fingerprint_files(["synthetic.worlds.tofu_mini.lm"])
               if p.parent == world}
    assert {"lm.py", "data.py"} <= covered
    assert not covered & {"study.py", "unlearn.py", "scoring.py", "measures.py", "claims.py", "figures.py",
                          "models.py", "config.py", "experiments.py"}


@pytest.fixture(scope="module")
def quick(request):
    """The quick config's full model and the 10% split's retrained model (about 20 s to train),
    kept in the pytest cache by config and code (as paper_repro.py keeps models): a rerun of the
    suite with the same code loads them."""
    config = tofu_mini_config(quick=True)
    config["splits"], config["retrain_seeds"] = [10], [0]
    with jax.numpy_dtype_promotion("standard"):
        corpus, params, _ = tofu_lm.train_models(config, folder=request.config.cache.mkdir("tofu_lm_quick"))
    return corpus, params


def test_one_definition_of_tofus_numbers(quick):
    """The study's summaries (engine records of :func:`scoring.tofu_metrics`, read by
    :func:`unlearn.summarize`) and the models experiment's per-question numbers
    (:func:`scoring.question_numbers`) are one computation: on the same questions they agree.

    Both are float32 forward passes of the same rows, batched differently (one batch, or chunks
    padded to a power of two), so probabilities and truth ratios agree to float32 rounding
    (rtol 1e-5); greedy answers, hence the valid, right and degenerate shares, are equal."""
    corpus, params = quick
    forget, retain = corpus.split("forget", 10), corpus.split("retain", 10)
    # every question of the 10% split, uncapped; the greedy set mixes the forget questions (the
    # retrained model never saw them) with retain questions (it knows them), so the right and
    # valid shares of one model are not all-or-nothing and a misread row would show
    sets = dataclasses.replace(scoring.eval_sets(corpus, 10, cap=None, greedy_cap=None, retain_split=10),
                               forget_greedy=tuple(forget) + tuple(retain[:6]))
    retr_R = scoring.question_numbers(params["retrained"]["10"], corpus, forget)["truth_ratio"]
    rtol = 1e-5
    for model in (params["full"], params["retrained"]["10"]):
        numbers = {name: scoring.question_numbers(model, corpus, list(getattr(sets, name)))
                   for name in ("forget", "forget_greedy") + measures.UTILITY_SETS}
        records = scoring.model_records(model, corpus, sets, params["full"])
        for name in ("forget",) + measures.UTILITY_SETS:  # per question
            got = measures.probability_numbers(records[name])
            for k in ("p_answer", "p_paraphrase", "p_perturbed", "truth_ratio"):
                np.testing.assert_allclose(got[k], numbers[name][k], rtol=rtol, err_msg=f"{name} {k}")
        s = unlearn.summarize(records, corpus, sets, retr_R)
        R, fg = numbers["forget"]["truth_ratio"], numbers["forget_greedy"]
        assert float(s["forget_probability"]) == pytest.approx(np.mean(numbers["forget"]["p_answer"]), rel=rtol)
        assert float(s["forget_truth_ratio"]) == pytest.approx(np.mean(np.minimum(R, 1 / R)), rel=rtol)
        assert float(s["forget_quality"]) == pytest.approx(float(measures.forget_quality(R, retr_R)), rel=rtol)
        assert float(s["model_utility"]) == pytest.approx(float(measures.utility(numbers)), rel=rtol)
        assert float(s["retain_probability"]) == pytest.approx(np.mean(numbers["retain"]["p_answer"]), rel=rtol)
        for k in ("valid", "right", "degenerate"):
            assert float(s[f"forget_{k}"]) == np.mean(fg[k]), k
        assert float(s["retain_degenerate"]) == np.mean(numbers["retain"]["degenerate"])
        assert float(s["retain_rouge"]) == np.mean(numbers["retain"]["rouge"])
    # the retrained model answers the retain questions right and the forget questions wrongly
    assert 0 < float(s["forget_right"]) < 1 and float(s["forget_valid"]) > float(s["forget_right"])
