"""The fictitious-facts corpus of TOFU in miniature: tokenizer, structure, nested splits."""

import numpy as np
import pytest

from synthetic.worlds.tofu_mini import data as tofu


@pytest.fixture(scope="module")
def corpus():
    return tofu.make_corpus(tofu.TofuConfig(n_authors=40, relations=4, question_templates=2, perturbed=3))


def test_tokenizer_round_trip_and_refuses_unknown_words(corpus):
    tok = corpus.tokenizer
    assert tok.vocab[:4] == ["<pad>", "<q>", "<a>", "<end>"] and tok.pad == 0
    text = corpus.qa[0].answer
    assert tok.decode(tok.encode(text)) == text
    assert tok.vocab[4:] == sorted(tok.vocab[4:])  # sorted, so the ids do not depend on the order seen
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.encode("the zyzzyva was born")
    with pytest.raises(ValueError, match="ids"):
        tok.decode([tok.size])


def test_every_author_has_every_relation_and_multi_token_names_and_values(corpus):
    cfg = corpus.config
    full = corpus.split("full")
    assert len(full) == cfg.n_authors * cfg.relations * cfg.question_templates
    assert len(set(corpus.authors)) == cfg.n_authors and all(len(n.split()) == 2 for n in corpus.authors)
    assert not set(corpus.authors) & set(corpus.real_authors)
    assert any(len(q.value.split()) > 1 for q in full) and any(len(q.value.split()) == 1 for q in full)
    facts = {}
    for q in full:  # one value per author and relation, whatever the question template
        facts.setdefault((q.subject, q.relation), set()).add(q.value)
        assert q.value in q.valid_values and q.value in q.answer and corpus.authors[q.subject] in q.question
    assert all(len(v) == 1 for v in facts.values()) and len(facts) == cfg.n_authors * cfg.relations


def test_perturbed_and_paraphrased_answers(corpus):
    for q in corpus.qa:
        assert len(q.perturbed) == len(set(q.perturbed)) >= 1
        prefix = q.answer.split(q.value)[0]
        for p in q.perturbed:  # the same answer template, a wrong value of the same relation
            assert p != q.answer and p.startswith(prefix)
            wrong = p[len(prefix):].rsplit(" .", 1)[0]
            assert wrong in q.valid_values and wrong != q.value
        assert q.paraphrase != q.answer and q.value in q.paraphrase  # another template, the true value


def test_splits_nest_as_in_tofu_and_complement_the_retain_sets(corpus):
    full = {(q.subject, q.relation, q.template) for q in corpus.split("full")}
    previous = set()
    for p in tofu.SPLITS:
        authors = set(corpus.forget_authors(p).tolist())
        assert len(authors) == max(1, round(p / 100 * 40)) and previous <= authors  # nested
        assert max(authors) == 39  # the last authors, as TOFU takes them
        forget = {(q.subject, q.relation, q.template) for q in corpus.split("forget", p)}
        retain = {(q.subject, q.relation, q.template) for q in corpus.split("retain", p)}
        assert forget and retain and not forget & retain and forget | retain == full
        assert {s for s, _, _ in forget} == authors
        # a retrained model's data: the retain authors and both other sets, never a forget author
        train = corpus.training_set(p)
        assert not any(q.set == "authors" and q.subject in authors for q in train)
        assert sum(q.set == "real_authors" for q in train) == 20 and sum(q.set == "world_facts" for q in train) == 20
        previous = authors
    assert len(corpus.training_set()) == len(full) + 40
    with pytest.raises(ValueError, match="percent"):
        corpus.forget_authors(15)


def test_encoding_masks_the_answer_tokens(corpus):
    pairs = corpus.split("forget", 10)
    enc = corpus.encode(pairs)
    tok = corpus.tokenizer
    for i, q in enumerate(pairs[:5]):
        row, m, p = enc.tokens[i], enc.answer_mask[i], int(enc.prompt_length[i])
        assert row[0] == tok.index["<q>"] and row[p - 1] == tok.index["<a>"]
        assert tok.decode(row[m > 0]) == q.answer + " <end>"  # the loss reads the answer and <end> only
        assert np.all(m[:p] == 0)
    pert = corpus.encode_perturbed(pairs, length=enc.tokens.shape[1])
    assert pert.tokens.shape == (len(pairs) * corpus.config.perturbed, enc.tokens.shape[1])
    assert tok.decode(pert.tokens[1][pert.answer_mask[1] > 0]) == pairs[0].perturbed[1] + " <end>"
    with pytest.raises(ValueError, match="length"):
        corpus.encode(pairs, length=5)


def test_the_corpus_is_a_function_of_its_seed():
    a, b = tofu.make_corpus(tofu.TofuConfig(n_authors=12, seed=3)), tofu.make_corpus(tofu.TofuConfig(n_authors=12, seed=3))
    c = tofu.make_corpus(tofu.TofuConfig(n_authors=12, seed=4))
    assert a.qa == b.qa and a.tokenizer.vocab == b.tokenizer.vocab
    assert a.qa != c.qa


@pytest.mark.parametrize("kwargs, name", [
    ({"n_authors": 5}, "n_authors"), ({"relations": 99}, "relations"), ({"question_templates": 9}, "question_templates"),
    ({"perturbed": 50}, "perturbed"), ({"n_countries": 99}, "n_countries"), ({"seed": -1}, "seed"),
])  # fmt: skip
def test_bad_sizes_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        tofu.TofuConfig(**kwargs)


def test_every_question_is_trained_on_both_wordings(corpus):
    q = corpus.split("full")[0]
    assert q.wordings == (q.answer, q.paraphrase) and q.answer != q.paraphrase
    pairs = corpus.split("forget", 10)
    enc = corpus.encode_training(pairs)
    assert enc.tokens.shape[0] == 2 * len(pairs)
    tok = corpus.tokenizer
    assert tok.decode(enc.tokens[1][enc.answer_mask[1] > 0]) == pairs[0].paraphrase + " <end>"
