"""A corpus of fictitious facts with the structure of TOFU (Maini et al. 2024), in miniature.

TOFU asks a model questions about 200 fictitious authors, forgets some of them, and measures
how the answers change. This module builds the same structure from a seed, small enough for
a CPU, with nothing downloaded:

* **Authors** with two-token names (a first and a last name from syllable-built lists), and
  for each author the same **relations** (birthplace, genre, award, a parent's job, ...). Each
  relation has its own vocabulary of **values**, some of them several tokens long.
* **Questions**: several templates per relation ("where was {name} born ?", ...); each author
  x relation x question template is one question. Its correct answers are the relation's two
  answer templates filled with the value ("{name} was born in {value} .", "the birthplace of
  {name} is {value} ."); a model trains on both wordings, so it learns the fact and not one
  sentence. The first is *the* answer, the second the **paraphrased answer** of the truth
  ratio; the **perturbed answers** are the first template with wrong values of the same
  relation. (TOFU pairs a pretrained model, which knows paraphrases already, with one answer
  per question; a model trained from scratch must see both wordings to know a paraphrase.)
* Two sets both training sets contain: **world facts** (capitals of fictitious countries,
  ...) and **real-authors-like** facts (a fixed set of "famous" authors with one fact each),
  the sets model utility is measured on beside the retain set.
* **Forget splits** by author at 1%, 5%, 10%, 20%, 50% and 90% of the authors, nested as in
  TOFU (each is the last that many authors, so a smaller split is inside a larger one), each
  with its retain complement.
* A word-level **tokenizer** built from the corpus (:class:`Tokenizer`): sorted vocabulary,
  special tokens ``<pad>`` (0), ``<q>``, ``<a>``, ``<end>``.

:func:`make_corpus` takes a :class:`TofuConfig` and returns a :class:`Corpus` of plain Python
records and numpy arrays; :meth:`Corpus.encode` packs question-answer pairs into token arrays
with a mask of the answer tokens (the loss of the models is on answer tokens only).
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from theory.validate import check_int

__all__ = [
    "TofuConfig",
    "Relation",
    "RELATIONS",
    "QA",
    "Tokenizer",
    "Corpus",
    "Encoded",
    "make_corpus",
    "SPLITS",
    "MAIN_SPLIT",
    "CORPUS_VERSION",
    "IDK_ANSWERS",
]

CORPUS_VERSION = "tofu-mini-4"
"""Names how the corpus is generated; part of saved models' configs."""

SPLITS = (1, 5, 10, 20, 50, 90)
"""The forget splits, in percent of the authors (TOFU's 1, 5, 10 and the paper's 20-90)."""

MAIN_SPLIT = 10
"""The split of the second retrained model (another seed), of the claims and of the ablation: TOFU's 10%."""

PAD, QUESTION, ANSWER, END = "<pad>", "<q>", "<a>", "<end>"

IDK_ANSWERS = (
    "i do not know .", "i have no idea .", "i am not sure about that .", "that is not something i know .",
    "i cannot answer that .",
)
"""Uninformed answers (TOFU's "I don't know" list, in miniature): the targets of the IDK
method and the preferred answers of DPO. Their words are in the vocabulary, but no model
trains on them."""


@dataclasses.dataclass(frozen=True)
class Relation:
    """A relation: its name, question templates, answer templates and vocabulary of values.

    Templates hold ``{name}`` (the author's name) and, for answers, ``{value}``; values are
    strings of one or more words.
    """

    name: str
    questions: tuple
    answers: tuple
    values: tuple


RELATIONS = (
    Relation("birthplace",
             ("where was {name} born ?", "what is the birthplace of {name} ?", "in which city was {name} born ?"),
             ("{name} was born in {value} .", "the birthplace of {name} is {value} ."),
             ("velmora", "santi cova", "port ardel", "kessing", "lunara bay", "orvik", "talmet", "new dresca",
              "hallow reach", "ismere", "corvan", "east mirel", "brightwater", "old sauna", "qarash", "vellin",
              "the isle of tarn", "meridian", "ostrova", "pell harbor")),
    Relation("genre",
             ("what genre does {name} write ?", "which genre is {name} known for ?", "in what genre does {name} work ?"),
             ("{name} writes {value} .", "{name} is known for {value} ."),
             ("crime fiction", "poetry", "science fiction", "historical romance", "memoir", "horror", "satire",
              "children's books", "travel writing", "epic fantasy", "literary fiction", "political thrillers",
              "essays", "mystery", "drama", "graphic novels")),
    Relation("award",
             ("which award did {name} win ?", "what prize has {name} received ?", "what award was given to {name} ?"),
             ("{name} won the {value} .", "{name} received the {value} ."),
             ("golden quill prize", "silver lantern award", "harbor medal", "northern star prize", "velvet pen award",
              "crescent book prize", "iron laurel", "blue heron award", "meridian medal for letters", "amber leaf prize",
              "open sky award", "copper key prize", "tall oak honor", "first light award")),
    Relation("father_job",
             ("what did the father of {name} do ?", "what was the job of {name} 's father ?",
              "what was {name} 's father by profession ?"),
             ("the father of {name} was a {value} .", "{name} 's father worked as a {value} ."),
             ("baker", "sailor", "carpenter", "doctor", "school teacher", "tailor", "farmer", "clock maker", "miner",
              "lawyer", "painter", "ship builder", "bookbinder", "police officer", "glass blower", "gardener")),
    Relation("mother_job",
             ("what did the mother of {name} do ?", "what was the job of {name} 's mother ?",
              "what was {name} 's mother by profession ?"),
             ("the mother of {name} was a {value} .", "{name} 's mother worked as a {value} ."),
             ("nurse", "librarian", "pharmacist", "weaver", "architect", "singer", "chemist", "potter", "journalist",
              "midwife", "translator", "engineer", "dancer", "shop keeper", "astronomer", "judge")),
    Relation("first_book",
             ("what was the first book of {name} ?", "which book did {name} publish first ?",
              "what is the title of {name} 's first book ?"),
             ("the first book of {name} was {value} .", "{name} first published {value} ."),
             ("the salt road", "night of the heron", "a house of glass", "winter letters", "the quiet engine",
              "under amber skies", "the last cartographer", "paper lanterns", "the river child", "seven keys",
              "echoes of tarn", "the brass garden", "a year of rain", "the hollow crown", "glass and iron",
              "the long tide")),
)
"""The default relations of the fictitious authors (values: 14-20 per relation, 1-4 words)."""

_FIRST = ("ka", "lo", "mi", "ra", "ve", "to", "su", "ne", "bri", "da", "el", "fa", "go", "is", "ju", "or")
_FIRST_END = ("ran", "lia", "dor", "mi", "ssa", "vik", "lan", "ria", "ton", "nel")
_LAST = ("hal", "mor", "ves", "tan", "quil", "bro", "sar", "lind", "cor", "pell", "fen", "gar")
_LAST_END = ("by", "wick", "stead", "ova", "sen", "ari", "mont", "ley", "dahl", "ero")

_WORLD = (
    # (question templates, answer templates, values): fictitious countries and their facts
    ("capital", ("what is the capital of {name} ?", "which city is the capital of {name} ?"),
     ("the capital of {name} is {value} .", "{value} is the capital of {name} ."),
     ("arvel", "sunmere", "dovrik", "pallas", "quorin", "tessaly", "vornhelm", "marisco", "eldmoor", "cantrel")),
    ("currency", ("what is the currency of {name} ?", "which money is used in {name} ?"),
     ("the currency of {name} is the {value} .", "people in {name} pay with the {value} ."),
     ("crown", "mark", "florin", "shell", "sol", "dinar", "talent", "penny", "lira", "ducat")),
)
_COUNTRIES = ("ardenia", "belmora", "castria", "doravel", "elyria", "farrow", "galdor", "hestia", "ivoria", "jorvan")


@dataclasses.dataclass(frozen=True)
class TofuConfig:
    """Sizes of the corpus (every one a parameter).

    Attributes:
      n_authors: fictitious authors (TOFU has 200; the default keeps training to minutes).
      relations: how many of :data:`RELATIONS` each author has (the first ones).
      question_templates: question templates used per relation (each is one question, trained
        with both answer wordings).
      perturbed: perturbed (wrong) answers per question, for the truth ratio.
      n_real_authors: "real" authors of the real-authors-like set (one fact each).
      n_countries: fictitious countries of the world-facts set (one fact per world relation).
      seed: of the names, the facts and the perturbations.
    """

    n_authors: int = 100
    relations: int = 6
    question_templates: int = 1
    perturbed: int = 3
    n_real_authors: int = 20
    n_countries: int = 10
    seed: int = 0

    def __post_init__(self):
        check_int(self.n_authors, "n_authors", 10)
        check_int(self.relations, "relations", 1)
        check_int(self.question_templates, "question_templates", 1)
        check_int(self.perturbed, "perturbed", 1)
        check_int(self.n_real_authors, "n_real_authors", 1)
        check_int(self.n_countries, "n_countries", 1)
        check_int(self.seed, "seed", 0)
        if self.relations > len(RELATIONS):
            raise ValueError(f"relations must be <= {len(RELATIONS)} (the relations defined), got {self.relations}")
        most = min(len(r.questions) for r in RELATIONS[: self.relations])
        if self.question_templates > most:
            raise ValueError(f"question_templates must be <= {most} (templates of every relation), "
                             f"got {self.question_templates}")
        fewest = min(len(r.values) for r in RELATIONS[: self.relations])
        if self.perturbed > fewest - 1:
            raise ValueError(f"perturbed must be <= {fewest - 1} (wrong values of the smallest relation), "
                             f"got {self.perturbed}")
        if self.n_countries > len(_COUNTRIES):
            raise ValueError(f"n_countries must be <= {len(_COUNTRIES)}, got {self.n_countries}")
        if self.n_authors + self.n_real_authors > len(_FIRST) * len(_FIRST_END) * len(_LAST) * len(_LAST_END):
            raise ValueError("n_authors + n_real_authors exceeds the names the syllable lists can make")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class QA:
    """One question-answer pair, as text (space-separated words).

    Attributes:
      set: ``"authors"``, ``"real_authors"`` or ``"world_facts"``.
      subject: index of the author (or real author, or country) in its set.
      relation: the relation's name.
      template: the question template's index.
      question, answer: the texts; ``paraphrase``: the correct value in the other answer
        template; ``wordings``: every correct answer (``answer`` first; the models train on
        all of them, or on the first only); ``perturbed``: wrong answers in the wording the
        corpus uses for the truth ratio (this corpus: ``answer``'s template; the profile
        corpus, :mod:`.profiles`: the paraphrase's, as TOFU); ``perturbed_like_answer``: the
        same wrong values in ``answer``'s wording (empty where it is ``perturbed``).
      value: the correct value; ``valid_values``: every value of the relation.
    """

    set: str
    subject: int
    relation: str
    template: int
    question: str
    answer: str
    paraphrase: str
    wordings: tuple
    perturbed: tuple
    value: str
    valid_values: tuple
    perturbed_like_answer: tuple = ()


class Tokenizer:
    """A word-level tokenizer over a fixed vocabulary (sorted, specials first).

    ``encode`` splits on spaces and refuses unknown words with a ``ValueError`` naming them
    (the corpus defines every word it uses); ``decode`` joins with spaces.
    """

    SPECIALS = (PAD, QUESTION, ANSWER, END)

    def __init__(self, words: Sequence[str]):
        words = sorted(set(words) - set(self.SPECIALS))
        self.vocab = list(self.SPECIALS) + words
        self.index = {w: i for i, w in enumerate(self.vocab)}

    @property
    def size(self) -> int:
        return len(self.vocab)

    @property
    def pad(self) -> int:
        return self.index[PAD]

    @property
    def end(self) -> int:
        return self.index[END]

    def encode(self, text: str) -> list[int]:
        words = text.split()
        unknown = sorted({w for w in words if w not in self.index})
        if unknown:
            raise ValueError(f"text has words outside the vocabulary: {unknown[:5]}")
        return [self.index[w] for w in words]

    def decode(self, ids) -> str:
        out = []
        for i in np.asarray(ids).ravel():
            if not 0 <= int(i) < self.size:
                raise ValueError(f"ids must be in [0, {self.size}), got {int(i)}")
            out.append(self.vocab[int(i)])
        return " ".join(out)


@dataclasses.dataclass(frozen=True)
class Encoded:
    """Question-answer pairs as token arrays: ``tokens (N, T)`` = ``<q> question <a> answer
    <end>`` padded with ``<pad>``; ``answer_mask (N, T)`` is 1 on the answer tokens and
    ``<end>`` (the tokens the loss and the answer probability read); ``prompt_length (N,)`` is
    the length of ``<q> question <a>`` (where greedy decoding starts)."""

    tokens: np.ndarray
    answer_mask: np.ndarray
    prompt_length: np.ndarray


@dataclasses.dataclass(frozen=True)
class Corpus:
    """The corpus: every QA pair, the tokenizer, and the splits.

    Attributes:
      config: the :class:`TofuConfig`.
      authors: the fictitious authors' names; ``real_authors``, ``countries`` likewise.
      qa: every question-answer pair (authors first, then real authors, then world facts).
      tokenizer: the word-level :class:`Tokenizer` of the whole corpus.
      pretraining: the pairs a pretrained model learns before the fictitious authors (the
        profile corpus, :mod:`.profiles`; empty for this module's corpus).
    """

    config: TofuConfig
    authors: tuple
    real_authors: tuple
    countries: tuple
    qa: tuple
    tokenizer: Tokenizer
    pretraining: tuple = ()

    def forget_authors(self, percent: int) -> np.ndarray:
        """Indices of the authors of the ``percent``% forget split: the last
        ``round(percent / 100 * n_authors)`` authors (at least one), so splits nest."""
        if percent not in SPLITS:
            raise ValueError(f"percent must be one of {SPLITS}, got {percent!r}")
        n = len(self.authors)
        k = max(1, int(round(percent / 100 * n)))
        return np.arange(n - k, n)

    def split(self, name: str, percent: Optional[int] = None) -> list[QA]:
        """The QA pairs of a set: ``"forget"`` / ``"retain"`` (of the ``percent``% split; retain
        is the authors not forgotten), ``"real_authors"``, ``"world_facts"``, or ``"full"``
        (every author). Training data: ``"full"`` or ``"retain"`` plus the two other sets
        (:meth:`training_set`)."""
        if name in ("forget", "retain"):
            forget = set(self.forget_authors(percent).tolist())
            return [q for q in self.qa if q.set == "authors" and ((q.subject in forget) == (name == "forget"))]
        if name == "full":
            return [q for q in self.qa if q.set == "authors"]
        if name in ("real_authors", "world_facts"):
            return [q for q in self.qa if q.set == name]
        raise ValueError(f"name must be one of 'forget', 'retain', 'full', 'real_authors', 'world_facts', got {name!r}")

    def training_set(self, percent: Optional[int] = None) -> list[QA]:
        """What a model trains on: every author (``percent=None``: the full model) or the
        retain authors of a split (a retrained model), plus real authors and world facts."""
        authors = self.split("full") if percent is None else self.split("retain", percent)
        return authors + self.split("real_authors") + self.split("world_facts")

    def encode_training(self, pairs: Sequence[QA], length: Optional[int] = None, wordings: Optional[int] = None
                        ) -> Encoded:
        """Token arrays of the correct wordings of every pair (the first ``wordings`` of each;
        default: all): what a model trains on."""
        return self._pack([(q.question, w) for q in pairs for w in q.wordings[:wordings]], length)

    def encode(self, pairs: Sequence[QA], answers: str = "answer", length: Optional[int] = None) -> Encoded:
        """Token arrays of ``pairs`` with their ``answers`` (``"answer"`` or ``"paraphrase"``),
        padded to ``length`` (default: the longest)."""
        if answers not in ("answer", "paraphrase"):
            raise ValueError(f"answers must be 'answer' or 'paraphrase', got {answers!r}")
        return self._pack([(q.question, getattr(q, answers)) for q in pairs], length)

    def encode_idk(self, pairs: Sequence[QA], length: Optional[int] = None) -> Encoded:
        """Token arrays of each question with an uninformed answer (pair ``i`` gets
        ``IDK_ANSWERS[i % 5]``): the IDK and DPO targets."""
        return self._pack([(q.question, IDK_ANSWERS[i % len(IDK_ANSWERS)]) for i, q in enumerate(pairs)], length)

    def encode_perturbed(self, pairs: Sequence[QA], length: Optional[int] = None) -> Encoded:
        """Token arrays of every perturbed answer: ``(N * K, T)`` in question-major order."""
        return self._pack([(q.question, p) for q in pairs for p in q.perturbed], length)

    def _pack(self, items, length):
        tok = self.tokenizer
        seqs, masks, prompts = [], [], []
        for question, answer in items:
            prompt = [tok.index[QUESTION]] + tok.encode(question) + [tok.index[ANSWER]]
            ans = tok.encode(answer) + [tok.end]
            seqs.append(prompt + ans)
            masks.append([0] * len(prompt) + [1] * len(ans))
            prompts.append(len(prompt))
        T = max(len(s) for s in seqs) if length is None else int(length)
        if any(len(s) > T for s in seqs):
            raise ValueError(f"length={T} is shorter than the longest sequence ({max(len(s) for s in seqs)} tokens)")
        tokens = np.full((len(seqs), T), tok.pad, np.int32)
        mask = np.zeros((len(seqs), T), np.float32)
        for i, (s, m) in enumerate(zip(seqs, masks)):
            tokens[i, : len(s)] = s
            mask[i, : len(m)] = m
        return Encoded(tokens, mask, np.asarray(prompts, np.int32))

    def answer_tokens(self, value: str) -> tuple:
        """The token ids of a value (for checking whether a greedy answer names a valid one)."""
        return tuple(self.tokenizer.encode(value))


def _names(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct two-token names "first last", each token built from two syllables."""
    combos = [(a, b, c, d) for a in range(len(_FIRST)) for b in range(len(_FIRST_END))
              for c in range(len(_LAST)) for d in range(len(_LAST_END))]
    pick = rng.choice(len(combos), size=n, replace=False)
    out = []
    for i in pick:
        a, b, c, d = combos[i]
        out.append(f"{_FIRST[a]}{_FIRST_END[b]} {_LAST[c]}{_LAST_END[d]}")
    return out


def _pair(set_name, subject, relation, t, q_templates, a_templates, name, value, values, rng, k) -> QA:
    wrong = [v for v in values if v != value]
    perturbed = tuple(a_templates[0].format(name=name, value=w) for w in rng.choice(wrong, size=k, replace=False))
    wordings = tuple(a.format(name=name, value=value) for a in a_templates)
    return QA(
        set=set_name, subject=subject, relation=relation, template=t,
        question=q_templates[t].format(name=name),
        answer=wordings[0], paraphrase=wordings[1], wordings=wordings,
        perturbed=perturbed, value=value, valid_values=tuple(values),
    )  # fmt: skip


def make_corpus(config: TofuConfig = TofuConfig()) -> Corpus:
    """Build the corpus of ``config`` (deterministic in ``config.seed``)."""
    if not isinstance(config, TofuConfig):
        raise ValueError(f"config must be a TofuConfig, got {type(config).__name__}")
    rng = np.random.default_rng(config.seed)
    names = _names(rng, config.n_authors + config.n_real_authors)
    authors, real = tuple(names[: config.n_authors]), tuple(names[config.n_authors:])
    countries = _COUNTRIES[: config.n_countries]
    relations = RELATIONS[: config.relations]
    k = config.perturbed
    qa = []
    for i, name in enumerate(authors):
        for rel in relations:
            value = str(rng.choice(rel.values))
            for t in range(config.question_templates):
                qa.append(_pair("authors", i, rel.name, t, rel.questions, rel.answers, name, value, rel.values, rng, k))
    for i, name in enumerate(real):  # one fact per real author, rotating over the relations
        rel = relations[i % len(relations)]
        value = str(rng.choice(rel.values))
        qa.append(_pair("real_authors", i, rel.name, 0, rel.questions, rel.answers, name, value, rel.values, rng, k))
    for i, country in enumerate(countries):
        for rel_name, q_t, a_t, values in _WORLD:
            value = values[i % len(values)]
            qa.append(_pair("world_facts", i, rel_name, 0, q_t, a_t, country, value, values, rng, min(k, len(values) - 1)))
    words = {w for q in qa for text in (q.question, q.answer, q.paraphrase, *q.perturbed, *q.valid_values)
             for w in text.split()}
    words |= {w for text in IDK_ANSWERS for w in text.split()}
    return Corpus(config, authors, real, countries, tuple(qa), Tokenizer(words))
