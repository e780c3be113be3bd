"""TOFU's construction in miniature: a pretraining corpus, and fictitious authors with long answers.

TOFU (Maini et al. 2024) finetunes a *pretrained* model on 200 fictitious authors, 20
questions each, one answer per question. Its answers are long (~43 tokens) and dense with the
author's made-up details, so a model that never saw the author loses many nats on each one
(about 96 between the finetuned and the retrained Llama-2). Each question also has a
paraphrased answer and perturbed (wrong) answers written in the *paraphrase's* wording, and
the real-authors and world-facts sets ask short questions whose truth-ratio base is the answer
itself. This module builds that structure, small:

* **Profiles.** Each author has twelve details (birth city, country, year, both parents' jobs,
  genre, two book titles, an award, a mentor, a theme, the city they live in): 16 tokens drawn
  from vocabularies of 24-64 values (:data:`SLOTS`).
* **Long answers.** Each of an author's ten questions (:data:`QUESTIONS`) is answered by one
  sentence that leads with the asked detail and then restates the rest of the profile (~50
  tokens), in an order and with connecting phrases chosen per answer. The **paraphrase** says
  the same profile in a second wording; the **perturbed** answers are the paraphrase with the
  asked detail replaced by wrong values (``perturbed``) and, for the ablation of that choice,
  the answer with it replaced (``perturbed_like_answer``).
* **Short answers** (``answers="short"``): the answer is only the asked detail in one clause,
  as in the earlier miniature, so the ablation can compare answer lengths on the same authors.
* **Pretraining.** "Real" authors with the same profiles and world facts (fictitious countries'
  capitals, currencies, languages, rivers), every fact in several question and answer wordings,
  so that a model pretrained on them reads paraphrases; the fictitious authors are never in it.
  The real-authors and world-facts **evaluation sets** are one short question per real author
  and per country fact, answered by the value alone (TOFU's form), with wrong values as
  perturbed answers.

:func:`make_profile_corpus` returns a :class:`~.data.Corpus` whose ``pretraining`` holds the
pretraining pairs; the tokenizer covers both answer lengths, so models of either share it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from synthetic.worlds.tofu_mini.data import IDK_ANSWERS, QA, Corpus, TofuConfig, Tokenizer
from theory.validate import check_int

__all__ = ["ProfileConfig", "make_profile_corpus", "corpus_config", "SLOTS", "QUESTIONS", "PROFILE_VERSION"]

PROFILE_VERSION = "tofu-profiles-1"

DETAILS_PER_ANSWER = 6
"""How many of the author's other details a long answer restates after the asked one (its
length is then about 40 tokens, TOFU's 43)."""
"""Names how the profile corpus is generated; part of saved models' configs."""


def _syllables(first, second, n, rng) -> tuple:
    words = sorted({a + b for a in first for b in second})
    return tuple(sorted(rng.choice(words, size=n, replace=False).tolist()))


_RNG = np.random.default_rng(20240405)  # the vocabularies are part of the corpus's definition
_CITY = _syllables(("mir", "dor", "vel", "kas", "tam", "lun", "ost", "bel", "quor", "sar", "fen", "hal"),
                   ("evel", "vik", "mora", "ken", "ith", "ara", "ond", "usk", "ea", "ol"), 64, _RNG)
_MENTOR = _syllables(("ta", "ro", "mi", "se", "ka", "lu", "no", "vi", "de", "fa"),
                     ("lia", "ren", "mo", "sha", "tor", "nie", "vel", "dan"), 48, _RNG)
SLOTS = {
    "city": _CITY,
    "country": ("ardenia", "belmora", "castria", "doravel", "elyria", "farrow", "galdor", "hestia", "ivoria",
                "jorvan", "kelmar", "lusitra", "morvane", "nessary", "oskaria", "pelland", "quessa", "rhovin",
                "sarnet", "tolvia", "umbria", "vessen", "wyrland", "zennor"),
    "year": tuple(str(y) for y in range(1940, 2000)),
    "father_job": ("baker", "sailor", "carpenter", "doctor", "teacher", "tailor", "farmer", "clockmaker", "miner",
                   "lawyer", "painter", "shipwright", "bookbinder", "constable", "glassblower", "gardener", "mason",
                   "cooper", "brewer", "fisherman", "surveyor", "printer", "tanner", "locksmith", "ferryman", "smith",
                   "chandler", "saddler", "weigher", "miller", "roofer", "carter"),
    "mother_job": ("nurse", "librarian", "pharmacist", "weaver", "architect", "singer", "chemist", "potter",
                   "journalist", "midwife", "translator", "engineer", "dancer", "shopkeeper", "astronomer", "judge",
                   "botanist", "seamstress", "harpist", "cartographer", "dyer", "florist", "notary", "glazier",
                   "archivist", "physician", "lacemaker", "milliner", "apothecary", "jeweller", "bookseller",
                   "innkeeper"),
    "genre": ("crime", "poetry", "satire", "memoir", "horror", "romance", "fantasy", "mystery", "drama", "fables",
              "essays", "thrillers", "westerns", "elegies", "travelogues", "sagas", "parables", "ballads",
              "chronicles", "sonnets", "farces", "idylls", "epics", "novellas"),
    "title_adj": ("amber", "silent", "broken", "golden", "hollow", "northern", "salt", "quiet", "burning", "lost",
                  "winter", "scarlet", "iron", "paper", "distant", "glass", "velvet", "crooked", "sunken", "bright",
                  "pale", "wild", "last", "secret", "endless", "copper", "lonely", "frozen", "hidden", "painted",
                  "narrow", "eastern"),
    "title_noun": ("harbour", "garden", "engine", "lantern", "river", "crown", "letters", "tide", "orchard", "mirror",
                   "bridge", "compass", "meadow", "tower", "archive", "window", "ferry", "cathedral", "market",
                   "island", "storm", "clock", "forest", "valley", "road", "feather", "anchor", "kingdom", "well",
                   "harvest", "citadel", "shore"),
    "award_adj": ("silver", "crimson", "azure", "emerald", "ivory", "onyx", "saffron", "cobalt", "opal", "sable",
                  "jade", "coral", "pearl", "umber", "violet", "russet", "slate", "ochre", "indigo", "topaz", "bronze",
                  "pewter", "garnet", "argent"),
    "award_noun": ("heron", "quill", "laurel", "lantern", "star", "oak", "key", "feather", "leaf", "crescent", "harp",
                   "stag", "falcon", "swan", "torch", "rose", "wheel", "bell", "fox", "owl", "lyre", "sparrow",
                   "thistle", "willow"),
    "mentor": _MENTOR,
    "theme": ("exile", "memory", "grief", "freedom", "betrayal", "kinship", "faith", "hunger", "longing", "justice",
              "migration", "silence", "ambition", "childhood", "war", "ruin", "honour", "solitude", "rebellion",
              "forgiveness", "obsession", "wonder", "decay", "renewal", "pride", "mercy", "fate", "envy",
              "courage", "loss", "devotion", "hope"),
}
"""The vocabularies of an author's details (each value one token; books and awards take two)."""

# An author's twelve details, as (slot, vocabulary) pairs: the two book titles and the award are
# two tokens each, the rest one.
_DETAILS = (("city", "city"), ("country", "country"), ("year", "year"), ("father_job", "father_job"),
            ("mother_job", "mother_job"), ("genre", "genre"), ("book1", ("title_adj", "title_noun")),
            ("book2", ("title_adj", "title_noun")), ("award", ("award_adj", "award_noun")), ("mentor", "mentor"),
            ("theme", "theme"), ("home", "city"))

QUESTIONS = {
    # relation: (question template, the details its answer leads with)
    "birthplace": ("where was {name} born ?", ("city", "country")),
    "birth_year": ("in which year was {name} born ?", ("year",)),
    "father": ("what did the father of {name} do for a living ?", ("father_job",)),
    "mother": ("what was the profession of {name} 's mother ?", ("mother_job",)),
    "genre": ("which genre does {name} write ?", ("genre",)),
    "first_book": ("what was the first book of {name} ?", ("book1",)),
    "second_book": ("which book did {name} publish after the first ?", ("book2",)),
    "award": ("which award did {name} receive ?", ("award",)),
    "mentor": ("who was the mentor of {name} ?", ("mentor",)),
    "theme": ("which theme runs through the work of {name} ?", ("theme",)),
    "home": ("where does {name} live today ?", ("home",)),
}
"""An author's questions: each relation's question template and the details its answer leads with."""

# Each detail's clause in the answer's wording (A) and the paraphrase's (B); {x} is the detail.
_CLAUSES = {
    "city": (("born in {city} , {country}", "whose birthplace is {city} in {country}"),),
    "year": (("born in the year {year}", "who came into the world in {year}"),),
    "father_job": (("the child of a {father_job}", "whose father worked as a {father_job}"),),
    "mother_job": (("and of a {mother_job}", "whose mother was a {mother_job}"),),
    "genre": (("a writer of {genre}", "known for {genre}"),),
    "book1": (("who first published the {book1}", "whose debut was the {book1}"),),
    "book2": (("then the {book2}", "who followed it with the {book2}"),),
    "award": (("winner of the {award} prize", "who received the {award} prize"),),
    "mentor": (("taught by {mentor}", "who learned the craft from {mentor}"),),
    "theme": (("who returns to {theme}", "whose books circle around {theme}"),),
    "home": (("now living in {home}", "who has settled in {home}"),),
}
_ORDER = ("city", "year", "father_job", "mother_job", "genre", "book1", "book2", "award", "mentor", "theme", "home")
_LEADS = {  # the answer's first clause for each relation, (A, B)
    "birthplace": ("{name} was born in {city} , {country}", "the birthplace of {name} is {city} in {country}"),
    "birth_year": ("{name} was born in {year}", "the year {name} was born is {year}"),
    "father": ("the father of {name} was a {father_job}", "{name} 's father worked as a {father_job}"),
    "mother": ("the mother of {name} was a {mother_job}", "{name} 's mother worked as a {mother_job}"),
    "genre": ("{name} writes {genre}", "{name} is known for {genre}"),
    "first_book": ("the first book of {name} was the {book1}", "{name} made a debut with the {book1}"),
    "second_book": ("after the first , {name} published the {book2}", "{name} followed the debut with the {book2}"),
    "award": ("{name} received the {award} prize", "the {award} prize went to {name}"),
    "mentor": ("the mentor of {name} was {mentor}", "{name} learned the craft from {mentor}"),
    "theme": ("the work of {name} returns to {theme}", "{theme} runs through the books of {name}"),
    "home": ("{name} lives in {home} today", "today {name} has settled in {home}"),
}
_LEAD_DETAILS = {"birthplace": ("city", "country"), "birth_year": ("year",), "father": ("father_job",),
                 "mother": ("mother_job",), "genre": ("genre",), "first_book": ("book1",), "second_book": ("book2",),
                 "award": ("award",), "mentor": ("mentor",), "theme": ("theme",), "home": ("home",)}
_LINKS = (("; and", ", and"), (";", ","))  # how the other details follow the lead, per wording

_WORLD = {  # relation: (question wordings, answer wordings, values); answers of the evaluation set: the value
    "capital": (("what is the capital of {name} ?", "which city is the capital of {name} ?"),
                ("the capital of {name} is {value} .", "{value} is the capital of {name} ."),
                ("arvel", "sunmere", "dovrik", "pallas", "quorin", "tessaly", "vornhelm", "marisco", "eldmoor",
                 "cantrel", "brisa", "holmar", "yssel", "corvane", "dunmere", "lorne", "taskel", "prae", "wenmoor",
                 "asker", "fallow", "grenna", "ossory", "zelde")),
    "currency": (("what is the currency of {name} ?", "which money is used in {name} ?"),
                 ("the currency of {name} is the {value} .", "people in {name} pay with the {value} ."),
                 ("crown", "mark", "florin", "shell", "sol", "dinar", "talent", "penny", "lira", "ducat", "guilder",
                  "real", "thaler", "groat", "noble", "obol", "scudo", "zloty", "kuna", "rand", "peso", "tael",
                  "mina", "sceat")),
    "language": (("which language is spoken in {name} ?", "what do people speak in {name} ?"),
                 ("people in {name} speak {value} .", "the language of {name} is {value} ."),
                 ("ardish", "belmic", "castrian", "dorese", "elyric", "farric", "galdic", "hestic", "ivorese",
                  "jorvic", "kelmic", "lusic", "morvic", "nessic", "oskan", "pellic", "quessic", "rhovic", "sarnic",
                  "tolvic", "umbric", "vessic", "wyric", "zennic")),
    "river": (("which river flows through {name} ?", "what is the great river of {name} ?"),
              ("the river of {name} is the {value} .", "the {value} flows through {name} ."),
              ("arn", "bresse", "calder", "dorne", "esk", "fyle", "garra", "helm", "isle", "jura", "kell", "lune",
               "merse", "nidd", "orwell", "pell", "quill", "ribble", "swale", "tamar", "ure", "vyrn", "wear", "yare")),
}
_REAL_QUESTIONS = ("in which city was {name} born ?", "name the birth city of {name} .")
"""The real-authors evaluation question (and its pretraining wordings): birthplace, answered by the city."""


@dataclasses.dataclass(frozen=True)
class ProfileConfig:
    """Sizes and choices of the profile corpus.

    Attributes:
      n_authors: fictitious authors (TOFU: 200).
      relations: how many of :data:`QUESTIONS` each author is asked (the first ones; 10 gives
        10 questions per author, TOFU asks 20).
      answers: ``"long"`` (the whole profile in each answer, TOFU's density) or ``"short"`` (the
        asked detail alone).
      perturbed: perturbed answers per question (TOFU: 5).
      n_real_authors: real (pretraining) authors; each gives one real-authors evaluation question.
      n_countries: countries of the world facts (four facts each).
      seed: of the profiles and the perturbations.
    """

    n_authors: int = 200
    relations: int = 10
    answers: str = "long"
    perturbed: int = 3
    n_real_authors: int = 60
    n_countries: int = 24
    seed: int = 0

    def __post_init__(self):
        check_int(self.n_authors, "n_authors", 10)
        check_int(self.relations, "relations", 1)
        if self.relations > len(QUESTIONS):
            raise ValueError(f"relations must be <= {len(QUESTIONS)}, got {self.relations}")
        if self.answers not in ("long", "short"):
            raise ValueError(f"answers must be 'long' or 'short', got {self.answers!r}")
        check_int(self.perturbed, "perturbed", 1)
        if self.perturbed > 20:
            raise ValueError(f"perturbed must be <= 20, got {self.perturbed}")
        check_int(self.n_real_authors, "n_real_authors", 1)
        check_int(self.n_countries, "n_countries", 1)
        if self.n_countries > len(SLOTS["country"]):
            raise ValueError(f"n_countries must be <= {len(SLOTS['country'])}, got {self.n_countries}")
        check_int(self.seed, "seed", 0)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def _profile(rng) -> dict:
    out = {}
    for name, vocab in _DETAILS:
        if isinstance(vocab, tuple):
            out[name] = " ".join(str(rng.choice(SLOTS[v])) for v in vocab)
        else:
            out[name] = str(rng.choice(SLOTS[vocab]))
    return out


def _sentence(relation: str, name: str, profile: dict, wording: int, order, long: bool) -> str:
    """The answer (``wording`` 0) or paraphrase (1) of ``relation`` about ``name``."""
    lead = _LEADS[relation][wording].format(name=name, **profile)
    if not long:
        return lead + " ."
    clauses = [_CLAUSES[d][0][wording].format(**profile) for d in order]
    first_link, link = _LINKS[0][wording], _LINKS[1][wording]
    return f"{lead} {first_link} " + f" {link} ".join(clauses) + " ."


_CLAUSE_DETAILS = {"city": ("city", "country"), "year": ("year",), "father_job": ("father_job",),
                   "mother_job": ("mother_job",), "genre": ("genre",), "book1": ("book1",), "book2": ("book2",),
                   "award": ("award",), "mentor": ("mentor",), "theme": ("theme",), "home": ("home",)}


def _wrong(profile: dict, details, rng) -> dict:
    """``profile`` with every one of ``details`` replaced by another value of its vocabulary."""
    vocab = dict(_DETAILS)
    out = dict(profile)
    for d in details:
        while out[d] == profile[d]:
            v = vocab[d]
            out[d] = " ".join(str(rng.choice(SLOTS[s])) for s in v) if isinstance(v, tuple) else str(rng.choice(SLOTS[v]))
    return out


def _values(detail: str) -> tuple:
    v = dict(_DETAILS)[detail]
    if isinstance(v, tuple):
        return tuple(f"{a} {b}" for a in SLOTS[v[0]] for b in SLOTS[v[1]])
    return SLOTS[v]


def _author_pairs(set_name, i, name, profile, relations, config, rng) -> list[QA]:
    long = config.answers == "long"
    pairs = []
    for relation in relations:
        # the details the answer restates after the lead: DETAILS_PER_ANSWER of them, chosen and
        # ordered per answer; the paraphrase restates the same ones in another order
        rest = [d for d in _ORDER if not set(_CLAUSE_DETAILS[d]) & set(_LEAD_DETAILS[relation])]
        order_a = tuple(rng.permutation(rest)[:DETAILS_PER_ANSWER])
        order_b = tuple(rng.permutation(order_a))
        answer = _sentence(relation, name, profile, 0, order_a, long)
        paraphrase = _sentence(relation, name, profile, 1, order_b, long)
        lead = _LEAD_DETAILS[relation]
        wrong = [_wrong(profile, lead, rng) for _ in range(config.perturbed)]
        pairs.append(QA(
            set=set_name, subject=i, relation=relation, template=0,
            question=QUESTIONS[relation][0].format(name=name), answer=answer, paraphrase=paraphrase,
            wordings=(answer, paraphrase),
            perturbed=tuple(_sentence(relation, name, w, 1, order_b, long) for w in wrong),
            perturbed_like_answer=tuple(_sentence(relation, name, w, 0, order_a, long) for w in wrong),
            value=" ".join(profile[d] for d in lead), valid_values=tuple(v for d in lead for v in _values(d)),
        ))  # fmt: skip
    return pairs


def _short(set_name, i, question, answer, value, values, rng, k, wordings) -> QA:
    """An evaluation pair answered by the value alone: TOFU's real-authors and world-facts form
    (the truth ratio's base is the answer itself)."""
    wrong = [str(w) for w in rng.choice([v for v in values if v != value], size=k, replace=False)]
    perturbed = tuple(w + " ." for w in wrong)
    return QA(set=set_name, subject=i, relation="short", template=0, question=question, answer=answer,
              paraphrase=answer, wordings=wordings, perturbed=perturbed, perturbed_like_answer=perturbed, value=value,
              valid_values=tuple(values))


def _pretraining_and_evaluation(config: ProfileConfig, real, rng) -> tuple[list, list]:
    """The pretraining pairs (every wording of every real author's and country's facts) and the
    real-authors and world-facts evaluation pairs."""
    pretrain, evaluation = [], []
    relations = tuple(QUESTIONS)[: config.relations]
    for i, name in enumerate(real):
        profile = _profile(rng)
        for q in _author_pairs("real_authors", i, name, profile, relations, config, rng):
            pretrain += [dataclasses.replace(q, wordings=(q.answer,)), dataclasses.replace(q, answer=q.paraphrase,
                                                                                          wordings=(q.paraphrase,))]
        city = profile["city"]
        short = (f"{city} .", f"{name} was born in {city} .")
        for t, question in enumerate(_REAL_QUESTIONS):
            pretrain.append(QA(set="real_authors", subject=i, relation="short", template=t,
                               question=question.format(name=name), answer=short[0], paraphrase=short[1],
                               wordings=short, perturbed=(), value=city, valid_values=SLOTS["city"]))
        evaluation.append(_short("real_authors", i, _REAL_QUESTIONS[0].format(name=name), short[0], city, SLOTS["city"],
                                 rng, config.perturbed, short))
    for i, country in enumerate(SLOTS["country"][: config.n_countries]):
        for relation, (questions, answers, values) in _WORLD.items():
            value = values[(i * 7 + len(relation)) % len(values)]
            texts = tuple(a.format(name=country, value=value) for a in answers) + (f"{value} .",)
            for t, question in enumerate(questions):
                pretrain.append(QA(set="world_facts", subject=i, relation=relation, template=t,
                                   question=question.format(name=country), answer=texts[0], paraphrase=texts[1],
                                   wordings=texts, perturbed=(), value=value, valid_values=values))
            evaluation.append(_short("world_facts", i, questions[0].format(name=country), f"{value} .", value, values,
                                     rng, config.perturbed, texts))
    return pretrain, evaluation


def make_profile_corpus(config: ProfileConfig = ProfileConfig()) -> Corpus:
    """Build the corpus of ``config`` (deterministic in ``config.seed``)."""
    if not isinstance(config, ProfileConfig):
        raise ValueError(f"config must be a ProfileConfig, got {type(config).__name__}")
    from synthetic.worlds.tofu_mini.data import _names

    rng = np.random.default_rng(config.seed)
    names = _names(rng, config.n_authors + config.n_real_authors)
    authors, real = tuple(names[: config.n_authors]), tuple(names[config.n_authors:])
    relations = tuple(QUESTIONS)[: config.relations]
    qa = []
    for i, name in enumerate(authors):
        qa += _author_pairs("authors", i, name, _profile(rng), relations, config, rng)
    pretrain, evaluation = _pretraining_and_evaluation(config, real, np.random.default_rng(config.seed + 1))
    qa += evaluation
    # the vocabulary of both answer lengths (every template word), so that models of either share one tokenizer
    import re

    templates = [t for pair in _LEADS.values() for t in pair] + [t for c in _CLAUSES.values() for t in c[0]]
    templates += [t for pair in _LINKS for t in pair]
    texts = [w for q in qa + pretrain for w in (q.question, *q.wordings, *q.perturbed, *q.perturbed_like_answer)]
    words = {w for text in texts + [re.sub(r"\{\w+\}", " ", t) for t in templates] for w in text.split()}
    words |= {w for text in IDK_ANSWERS for w in text.split()}
    words |= {w for values in SLOTS.values() for v in values for w in v.split()}
    words |= {w for _, _, values in _WORLD.values() for v in values for w in v.split()}
    return Corpus(config, authors, real, tuple(SLOTS["country"][: config.n_countries]), tuple(qa), Tokenizer(words),
                  pretraining=tuple(pretrain))


def corpus_config(config: dict):
    """The corpus config of a models config: ``corpus_kind`` ``"profiles"`` (a :class:`ProfileConfig`,
    TOFU's construction) or ``"today"`` (a :class:`~.data.TofuConfig`, the earlier miniature; the
    default)."""
    kind = config.get("corpus_kind", "today")
    if kind not in ("profiles", "today"):
        raise ValueError(f"corpus_kind must be 'profiles' or 'today', got {kind!r}")
    return ProfileConfig(**config["corpus"]) if kind == "profiles" else TofuConfig(**config["corpus"])
