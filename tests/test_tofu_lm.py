"""The TOFU-in-miniature language models: training at a tiny size, greedy answers, the
per-question numbers TOFU's measures read."""

import jax
import numpy as np
import pytest

from synthetic import tofu_eval, tofu_lm
from synthetic.data import tofu
from synthetic.models import transformer as tf


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
    ev = tofu_lm.evaluate_set(params, corpus, corpus.split("full"))
    # the facts are learned: most greedy answers are a correct wording, nearly all well formed
    assert ev["exact"].mean() > 0.6 and ev["valid"].mean() > 0.9 and ev["degenerate"].mean() < 0.1
    # the model prefers the true answer to the wrong ones: truth ratio below 1 on most questions
    assert np.median(ev["truth_ratio"]) < 1.0


def test_the_per_question_numbers_are_the_measures_of_their_parts(trained):
    corpus, params, _ = trained
    pairs = corpus.split("real_authors")
    ev = tofu_lm.evaluate_set(params, corpus, pairs)
    K = corpus.config.perturbed
    assert ev["p_perturbed"].shape == (len(pairs), K) and np.all((ev["p_answer"] > 0) & (ev["p_answer"] <= 1))
    # R: the geometric mean of the wrong answers' p~ over the paraphrase's p~
    want = np.exp(np.mean(np.log(ev["p_perturbed"]), axis=1)) / ev["p_paraphrase"]
    np.testing.assert_allclose(ev["truth_ratio"], want, rtol=1e-10)
    # p~ of the answer, by hand from the model's token log-probabilities
    enc = corpus.encode(pairs[:1], length=tf._config_of(params).context)
    logp = np.asarray(tf.next_token_log_probs(params, enc.tokens))[0]
    m = enc.answer_mask[0, 1:] > 0
    by_hand = np.exp(np.mean(logp[np.arange(len(m)), enc.tokens[0, 1:]][m]))
    assert ev["p_answer"][0] == pytest.approx(by_hand, rel=1e-5)
    agg = tofu_lm.measures(ev, "real_authors")
    assert agg["probability"] == pytest.approx(
        float(tofu_eval.probability_score(ev["p_answer"], ev["p_perturbed"], split="real_authors")))


def test_greedy_answers_are_step_by_step_argmax_decoding(trained):
    corpus, params, _ = trained
    enc = corpus.encode(corpus.split("world_facts")[:2], length=tf._config_of(params).context)
    got = tofu_lm.greedy_answers(params, enc, corpus.tokenizer.end)
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
    # teacher-forced exact match agrees with greedy decoding of the same answer
    em = tofu_lm.exact_match(params, enc)
    for i, q in enumerate(corpus.split("world_facts")[:2]):
        assert em[i] == (got[i] == tuple(corpus.tokenizer.encode(q.answer)) + (corpus.tokenizer.end,))
