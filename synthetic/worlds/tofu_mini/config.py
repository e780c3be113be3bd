"""Configs of TOFU in miniature's experiments: the corpus, the models and their training
(``tofu_mini_models``), and the unlearning study on them (``tofu_mini``).

Two **variants** of the world:

* ``"tofu"`` (the default): built as TOFU is. A transformer pretrained on real authors and world
  facts (every fact in several wordings) is finetuned on the fictitious authors at a smaller
  learning rate, one wording per question, with a replay of half the pretraining pairs (a model
  this small forgets its pretraining when finetuned on the fictitious authors alone; TOFU's
  7B models do not); answers as long and dense as TOFU's (:mod:`.profiles`), perturbed answers in
  the paraphrase's wording. Unlearning follows the NPO paper's TOFU recipe: the finetuning
  learning rate, warm-up over the first epoch then linear decay, 10 epochs over the forget set
  in shuffled batches of 32 forget and 32 random retain questions, weight decay 0.01, beta 0.1,
  the paper's loss normalisations (token means for GA, IDK and the retain loss, per-sequence sums
  for NPO, DPO and KTO, a position mean for the KL), 5 seeds, every forget question scored.
* ``"today"``: the earlier miniature, unchanged (:mod:`.data`: one model trained from scratch on
  everything, both wordings trained, short answers; unlearning at a learning rate picked from a
  scan, 5 epochs, batches of 4, per-sequence sums, 3 seeds, 40 forget questions scored). The
  ablation (``tofu_mini_ablation``) runs it as one end of the comparison.

The sizes of the default variant keep the whole world within a laptop's budget; what a larger
one costs is in ``docs/tofu_mini.md``. The claims' thresholds live in :mod:`.claims`.
"""

from __future__ import annotations

import copy
import dataclasses

from synthetic.worlds.tofu_mini.data import MAIN_SPLIT, SPLITS, TofuConfig
from synthetic.worlds.tofu_mini.profiles import ProfileConfig, corpus_config

__all__ = ["VARIANTS", "tofu_mini_config", "corpus_config", "with_corpus", "tofu_collapse_config", "METHODS",
           "RETAIN_METHODS", "LARGE_METHODS", "method_beta", "MAIN_SPLIT", "FACTORS",
           "ABLATION_METHODS", "EVAL_SMALL", "LR_SCAN_RATIO", "ablation_config", "QUICK_FACTORS"]

VARIANTS = ("tofu", "today")
"""The world's variants: TOFU's construction and the NPO paper's recipe, or the earlier miniature."""


def tofu_mini_config(quick: bool = False, variant: str = "tofu") -> dict:
    """The models' JSON config of ``variant`` (``quick``: a small corpus and model; seconds)."""
    if variant == "today":
        return _today_models(quick)
    if variant != "tofu":
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    corpus = ProfileConfig(n_authors=100)
    model = {"layers": 2, "width": 64, "heads": 4, "mlp_ratio": 4}
    pretrain = {"learning_rate": 5e-3, "batch_size": 64, "epochs": 12, "warmup": 0.05, "weight_decay": 0.01}
    train = {"learning_rate": 3e-3, "batch_size": 32, "epochs": 10, "warmup": 0.05, "weight_decay": 0.01,
             "wordings": 1, "replay": 0.5}
    if quick:
        corpus = ProfileConfig(n_authors=20, relations=4, n_real_authors=12, n_countries=6)
        model = {"layers": 1, "width": 32, "heads": 2, "mlp_ratio": 2}
        pretrain = {**pretrain, "learning_rate": 1e-2, "batch_size": 16, "epochs": 20}
        train = {**train, "learning_rate": 5e-3, "batch_size": 16, "epochs": 20}
    return {"corpus_kind": "profiles", "corpus": corpus.to_json(), "model": model, "pretrain": pretrain,
            "train": train, "splits": [1, 5, 10, 50, 90], "retrain_seeds": [0, 1]}


def _today_models(quick: bool) -> dict:
    corpus = TofuConfig()
    model = {"layers": 2, "width": 64, "heads": 4, "mlp_ratio": 4}
    train = {"learning_rate": 5e-3, "batch_size": 64, "epochs": 30, "warmup": 0.05, "weight_decay": 0.01}
    if quick:
        corpus = TofuConfig(n_authors=20, relations=3, n_real_authors=6, n_countries=4)
        model = {"layers": 1, "width": 32, "heads": 2, "mlp_ratio": 2}
        train = {**train, "learning_rate": 1e-2, "batch_size": 16, "epochs": 40}
    return {"corpus_kind": "today", "corpus": corpus.to_json(), "model": model, "pretrain": None, "train": train,
            "splits": list(SPLITS), "retrain_seeds": [0, 1]}


def with_corpus(config: dict, **changes) -> dict:
    """``config`` with corpus fields replaced (e.g. ``n_authors=40``)."""
    return {**config, "corpus": dataclasses.asdict(dataclasses.replace(corpus_config(config), **changes))}


METHODS = ("GA", "GA+RT", "GA+KL", "IDK+RT", "DPO+RT", "KTO", "NPO", "NPO+RT", "NPO+KL", "SimNPO+RT")
"""The methods of the study's 1, 5 and 10% splits (the paper's figure 5; SimNPO, later than the
paper, in figures and extension claims only), in the order of the figures' legends."""

TODAY_METHODS = ("GA", "GA+RT", "GA+KL", "IDK+RT", "DPO", "DPO+RT", "KTO", "KTO+RT", "NPO", "NPO+RT", "NPO+KL",
                 "SimNPO", "SimNPO+RT")
"""The earlier miniature's methods (every named method)."""

RETAIN_METHODS = tuple(m for m in METHODS if "+" in m)
"""The methods that read retain data."""

LARGE_METHODS = ("GA+RT", "NPO+RT")
"""The methods of the 20, 50 and 90% splits (the paper's figure 8): NPO+RT at every retain weight
of ``large_retain_weights`` (the paper tunes it there) beside GA+RT."""


def method_beta(config: dict, name: str) -> float:
    """The beta of method ``name`` in ``config`` (``betas`` overrides ``beta`` per method)."""
    u = config["unlearn"]
    return float(u.get("betas", {}).get(name, u["beta"]))


def tofu_collapse_config(quick: bool = False, variant: str = "tofu") -> dict:
    """The study's JSON config of ``variant`` (``quick``: the models' quick size, 2 seeds, small grids)."""
    models = tofu_mini_config(quick, variant)
    if variant == "today":
        return _today_study(models, quick)
    unlearn = {
        # the paper's rule: unlearn at the finetuning learning rate
        "learning_rate": models["train"]["learning_rate"], "epochs": 10, "warmup_epochs": 1, "batch_size": 32,
        "weight_decay": 0.01, "beta": 0.1, "betas": {"SimNPO": 2.5, "SimNPO+RT": 2.5}, "normalisation": "paper",
        "sampler": "epochs", "seeds": 5, "other_seeds": 2, "large_seeds": 2, "record_every_epochs": 2,
        "main_record_every_epochs": 1,
        # every forget question; 30 of each utility set (TOFU: up to 300); greedy answers of 20 forget questions
        "eval": {"forget": None, "forget_greedy": 20, "retain": 30, "utility": 30},
    }  # fmt: skip
    lr = unlearn["learning_rate"]
    lrs = [round(lr / 3, 12), lr, round(lr * 3, 12)]
    config = {
        "variant": variant, "models": models, "unlearn": unlearn, "methods": list(METHODS), "splits": [1, 5, 10],
        "large_methods": list(LARGE_METHODS), "large_splits": [50, 90], "large_retain_weights": [1.0, 2.0],
        "guidance": {"split": 10, "method": "NPO+RT", "betas": [0.03, 0.1, 0.3], "learning_rates": lrs,
                     "retain_weights": [0.0, 1.0, 2.0, 5.0], "record_every_epochs": 2, "seeds": 2},
        # the earlier miniature's 0.01 scaled by its answers' length over these (~9 / ~43 tokens: the
        # summed losses' gradients grow with the answer); set after a run at 0.01 whose first step
        # moved the forget NLL by 34 nats and whose GA diverged at step 16 (docs/tofu_mini.md)
        "long": {"split": 1, "betas": [0.1, 1.0], "steps": 1000, "learning_rate": 0.002, "n_records": 25,
                 "fit_decades_from": 50},
        "samples": 4,
    }  # fmt: skip
    if quick:
        config["unlearn"] = {**unlearn, "seeds": 2, "other_seeds": 2, "large_seeds": 2, "batch_size": 8, "epochs": 4,
                             "eval": {"forget": None, "forget_greedy": 6, "retain": 8, "utility": 8}}
        # a smoke test: one engine call per grid, no large split (their claim is inconclusive)
        config["splits"], config["large_splits"], config["large_retain_weights"] = [10], [], [1.0, 2.0]
        config["one_call"] = True
        config["guidance"] = {**config["guidance"], "betas": [0.1, 1.0], "learning_rates": lrs[1:],
                              "retain_weights": [0.0, 1.0, 2.0]}
        config["long"] = {**config["long"], "split": 10, "steps": 300, "n_records": 15, "fit_decades_from": 30}
    return config


def _today_study(models: dict, quick: bool) -> dict:
    """The earlier miniature's study, as it ran (its recipe; the methods of every split)."""
    unlearn = {
        "learning_rate": 1e-3, "epochs": 5, "warmup_epochs": 1, "batch_size": 4, "weight_decay": 0.01, "beta": 0.1,
        "betas": {"SimNPO": 2.5, "SimNPO+RT": 2.5}, "normalisation": "sum", "sampler": "random", "seeds": 3,
        "other_seeds": 3, "large_seeds": 3, "record_every_epochs": 1, "main_record_every_epochs": 0.5,
        "eval": {"forget": 40, "forget_greedy": 20, "retain": 40},
    }  # fmt: skip
    config = {
        "variant": "today", "models": models, "unlearn": unlearn, "methods": list(TODAY_METHODS), "splits": [1, 5, 10],
        "large_methods": [m for m in TODAY_METHODS if "+" in m], "large_splits": [20, 50, 90],
        "large_retain_weights": [1.0],
        "guidance": {"split": 10, "method": "NPO+RT", "betas": [0.03, 0.1, 0.3, 1.0], "learning_rates": [3e-4, 1e-3, 3e-3],
                     "retain_weights": [0.0, 0.5, 1.0, 2.0, 5.0], "record_every_epochs": 1, "seeds": 3},
        "long": {"split": 1, "betas": [0.1, 1.0], "steps": 2000, "learning_rate": 0.01, "n_records": 30,
                 "fit_decades_from": 100},
        "samples": 4,
    }  # fmt: skip
    if quick:
        config["unlearn"] = {**unlearn, "seeds": 2, "other_seeds": 2, "learning_rate": 3e-3}
        config["splits"], config["large_splits"] = [10], [50]
        config["guidance"] = {**config["guidance"], "betas": [0.1, 1.0], "learning_rates": [1e-3, 3e-3],
                              "retain_weights": [0.0, 1.0, 2.0]}
        config["long"] = {**config["long"], "split": 10, "steps": 300, "n_records": 15, "fit_decades_from": 30}
    return config


# --- the ablation (``tofu_mini_ablation``, :mod:`.ablation`) ---

EVAL_SMALL = 40
"""Forget questions the earlier miniature scored (TOFU's forget01 size)."""

LR_SCAN_RATIO = 0.2
"""The earlier miniature unlearned at a learning rate picked from a scan: 1e-3, a fifth of its
training rate (5e-3). The learning-rate row unlearns at this share of the finetuning rate."""

FACTORS = (
    ("tofu", "TOFU's construction (the study's setting)"),
    ("no_pretraining", "no pretraining: one model trained from scratch on everything"),
    ("two_wordings", "both wordings of every answer trained"),
    ("short_answers", "short answers (the asked detail alone): a weak brake"),
    ("sum_normalisation", "every loss a per-sequence sum"),
    ("lr_scan", f"unlearning at {LR_SCAN_RATIO:g} x the finetuning learning rate (the earlier pick)"),
    ("eval_40", f"forget quality on {EVAL_SMALL} forget questions"),
    ("today", "the earlier miniature (every difference at once)"),
)
"""``(name, what it switches)`` of every variant, the faithful setting first."""

ABLATION_METHODS = ("NPO", "NPO+RT")
"""The methods the two readings need (NPO+KL, the third method of ``npo_stable``, is in the study)."""


def ablation_config(quick: bool = False) -> dict:
    """The ablation's JSON config: the study config of every variant (methods NPO and NPO+RT, the
    10% split, ``seeds`` seeds, an evaluation every epoch)."""
    seeds = 2
    # quick: the rows that need no models of their own (a smoke test of the pipeline, seconds)
    factors = [name for name, _ in FACTORS if not quick or name in QUICK_FACTORS]
    variants = {}
    for name in factors:
        if name == "eval_40":
            continue
        study = tofu_collapse_config(quick, "today" if name == "today" else "tofu")
        variants[name] = _switched(study, name, seeds, quick)
    return {"variants": variants, "methods": list(ABLATION_METHODS), "seeds": seeds, "eval_small": EVAL_SMALL,
            "factors": factors}


QUICK_FACTORS = ("tofu", "eval_40")
"""The ablation's rows in a quick run: those that reuse the faithful models."""


def _switched(study: dict, name: str, seeds: int, quick: bool) -> dict:
    """``study`` (a study config) with factor ``name`` switched, reduced to the ablation's runs."""
    s = copy.deepcopy(study)
    m, u = s["models"], s["unlearn"]
    lr = u["learning_rate"]
    if name == "no_pretraining":
        # from scratch on everything, with the pretraining's recipe (a fresh model needs it);
        # unlearning stays at the faithful setting's rate, so only pretraining is switched
        m["train"] = {**m["pretrain"], "wordings": m["train"]["wordings"]}
        m["pretrain"] = None
    elif name == "two_wordings":
        m["train"] = {**m["train"], "wordings": 2}
    elif name == "short_answers":
        m["corpus"] = {**m["corpus"], "answers": "short"}
    elif name == "sum_normalisation":
        u["normalisation"] = "sum"
    elif name == "lr_scan":
        u["learning_rate"] = round(lr * LR_SCAN_RATIO, 12)
    elif name not in ("tofu", "today"):
        raise ValueError(f"factor must be one of {[f for f, _ in FACTORS]}, got {name!r}")
    m["splits"], m["retrain_seeds"] = [MAIN_SPLIT], [0]
    u.update(seeds=seeds, main_record_every_epochs=1 if not quick else u["main_record_every_epochs"],
             eval_small=EVAL_SMALL if name == "tofu" else None)
    s.update(methods=list(ABLATION_METHODS), splits=[MAIN_SPLIT], large_splits=[], samples=0)
    s["guidance"] = {**s["guidance"], "split": MAIN_SPLIT}
    return s
