"""Config of the ``markov`` experiment: the SimNPO study's Markov-chain setting, both cases.

Everything is the study's (Fan et al. 2024, arXiv:2410.07163, its public ``synthetic/`` code):
the data (:class:`~synthetic.worlds.markov.data.MarkovConfig` defaults), the model
(:meth:`~synthetic.models.transformer.TransformerConfig.study`), the ``transformers`` AdamW
(:func:`synthetic.optim.transformers_adamw`: weight decay 0, eps 1e-6) for training (lr 5e-4,
batch 128, 5 epochs) and for unlearning (lr 5e-4, batch 4, 50 steps, beta 1). Two cases:

* ``B`` (weakly learned data): every sequence has length 20; the reference is trained on retain
  + forget-1, so it never saw forget-2.
* ``A`` (short data): forget-2 sequences have length ``case_a_forget2_length`` (5); the
  reference is trained on retain + forget-1 + forget-2.

The retrained model (retain only) is the same in both cases. The study's two methods, NPO and
SimNPO, are scored at every step of both cases (``unlearn``), inside a map of SimNPO's beta x
the optimizer's eps (``eps_map``: NPO at the study's beta and SimNPO at each map beta, under
each eps, one grid per case; the study's own runs are its cells at beta 1, eps 1e-6); all eight
methods of the collapse question run in case B and are scored every ``eval_every`` steps
(``collapse``). The model is the study's code's (:meth:`TransformerConfig.study`: no q/k/v
biases, positions N(0, 0.02)), and training keeps each epoch's last partial batch as its
``DataLoader`` does (``drop_last: False``). What differs from the study: 5 seeds instead of 1,
and the evaluation on a fixed tenth of the test sets
(``n_eval``: 200 retain, 100 forget-1, 100 forget-2 sequences; ``None`` scores all 2000 + 1000 +
1000, 10x longer: each evaluation is a forward pass of the model over every sequence, and 20 runs
x 51 evaluations of the full sets would take about 20 minutes on a 2-core CPU).
"""

from __future__ import annotations

import dataclasses

from synthetic.worlds.markov.data import MarkovConfig
from synthetic.models.transformer import TransformerConfig

__all__ = ["MARKOV_METHODS", "STUDY_METHODS", "CASES", "markov_config", "data_config", "case_data_config", "reference_parts",
           "map_settings", "study_settings"]

MARKOV_METHODS = ("GA", "GA+RT", "GA+KL", "NPO", "NPO+RT", "NPO+KL", "SimNPO", "SimNPO+RT")
"""The methods of the collapse curves (case B)."""

STUDY_METHODS = ("NPO", "SimNPO")
"""The methods the study compares, scored at every step of both cases."""

CASES = ("B", "A")
"""The study's two cases, in the order they run."""


def markov_config(quick: bool = False) -> dict:
    """The experiment's JSON config (``quick``: a 2-layer width-32 model, a tenth of the data,
    2 seeds, 400 long-run steps; about a minute)."""
    data = MarkovConfig()
    model = TransformerConfig.study(vocab_size=data.n_states, context=data.length)
    optimizer = {"weight_decay": 0.0, "eps": 1e-6}
    train = {"learning_rate": 5e-4, "batch_size": 128, "epochs": 5, "drop_last": False, **optimizer}
    unlearn = {
        "methods": list(STUDY_METHODS), "seeds": 5, "steps": 50, "learning_rate": 5e-4,
        "batch_size": 4, "beta": 1.0, **optimizer, "n_eval": [200, 100, 100],
    }  # fmt: skip
    # SimNPO's beta is recorded nowhere in the study; the map brackets it (1: the code's settings,
    # 3.5: where an earlier re-implementation saw the figure), under the code's eps and a small one.
    eps_map = {"simnpo_betas": [1.0, 2.5, 3.5, 5.0], "eps": [1e-6, 1e-8]}
    collapse = {"methods": list(MARKOV_METHODS), "eval_every": 5, "n_eval": [32, 32, 32]}
    long = {
        "betas": [0.5, 1.0, 2.0], "steps": 2000, "learning_rate": 1e-3, "n_forget": 4,
        "n_records": 40, "fit_decades_from": 100, "n_eval": 32,
    }  # fmt: skip
    if quick:
        data = MarkovConfig(n_retain=1000, n_forget1=500, n_forget2=500)
        model = TransformerConfig.study(vocab_size=data.n_states, context=data.length, layers=2, width=32)
        train = {**train, "batch_size": 32, "learning_rate": 2e-3}
        unlearn = {**unlearn, "seeds": 2, "n_eval": [100, 50, 50]}
        eps_map = {**eps_map, "simnpo_betas": [1.0, 3.5]}
        collapse = {**collapse, "n_eval": [16, 16, 16]}
        long = {**long, "steps": 400, "n_records": 25, "fit_decades_from": 40, "n_eval": 16}
    return {
        "data": data.to_json(),
        "case_a_forget2_length": 5,
        "cases": list(CASES),
        "model": model.to_json(),
        "train": train,
        "data_seed": 0,
        "model_seed": 0,
        "unlearn": unlearn,
        "eps_map": eps_map,
        "collapse": collapse,
        "long": long,
    }


def data_config(config: dict) -> MarkovConfig:
    """The :class:`~synthetic.worlds.markov.data.MarkovConfig` of a :func:`markov_config` (case B)."""
    d = dict(config["data"])
    d["blocks"] = tuple(tuple(b) for b in d["blocks"])
    return MarkovConfig(**d)


def case_data_config(config: dict, case: str) -> MarkovConfig:
    """The data of ``case``: B as configured, A with short forget-2 sequences."""
    if case not in CASES:
        raise ValueError(f"case must be one of {CASES}, got {case!r}")
    base = data_config(config)
    return base if case == "B" else dataclasses.replace(base, forget2_length=int(config["case_a_forget2_length"]))


def reference_parts(case: str) -> tuple[str, ...]:
    """The sets the reference model of ``case`` is trained on."""
    return ("retain", "forget1") if case == "B" else ("retain", "forget1", "forget2")


def map_settings(config: dict) -> list[tuple[str, float, float]]:
    """``(method, beta, eps)`` of every setting of a case's grid, in its order: for each eps of
    the map, NPO at the study's beta, then SimNPO at each map beta. The study's own runs (NPO
    and SimNPO at the study's beta and eps) are among them."""
    u, m = config["unlearn"], config["eps_map"]
    settings = [(name, float(beta), float(eps)) for eps in m["eps"]
                for name, beta in [("NPO", u["beta"])] + [("SimNPO", b) for b in m["simnpo_betas"]]]
    for name, beta, eps in study_settings(config):
        if (name, beta, eps) not in settings:
            raise ValueError(f"eps_map must contain the study's settings: {name} at beta {beta:g} and eps {eps:g} "
                             f"(simnpo_betas {m['simnpo_betas']}, eps {m['eps']})")
    return settings


def study_settings(config: dict) -> list[tuple[str, float, float]]:
    """``(method, beta, eps)`` of the study's runs: each of ``unlearn.methods`` at the study's
    beta and eps."""
    u = config["unlearn"]
    return [(name, float(u["beta"]), float(u["eps"])) for name in u["methods"]]
