"""The ``tofu_mini`` experiment: every unlearning method on TOFU in miniature, on the engine.

1. The corpus and the models of ``tofu_mini_models`` (the full model, one retrained model per
   split), loaded from the model cache or trained (:func:`.lm.train_models`).
2. Per forget split, one engine call (:func:`synthetic.engine.unlearn`): every method x
   ``seeds`` from the full model, AdamW with warm-up and linear decay
   (:func:`synthetic.optim.warmup_decay_adamw`), minibatches of forget (and retain) questions;
   TOFU's records (:func:`.scoring.tofu_metrics`) ``records_per_epoch`` times an epoch, then
   forget quality, model utility and the answer shares read off them (:func:`.unlearn.summarize`).
   Splits 1, 5 and 10% run every method; 20, 50 and 90% the methods that use retain data.
3. The guidance grid (the 10% split): NPO+RT over betas x peak learning rates, and over retain
   weights at the default beta and learning rate, one engine call.
4. Long runs for the divergence laws (:func:`synthetic.laws.divergence_runs`): GA and NPO
   (several betas) under plain full-batch gradient descent on a small forget set, metrics at
   log-spaced steps.

:func:`run_study` returns nested numpy arrays (the tree in its docstring); nothing here prints
or writes files except the model cache.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import jax.numpy as jnp
import numpy as np

from synthetic import engine, laws
from synthetic.models import transformer as tf
from synthetic.optim import warmup_decay_adamw
from synthetic.worlds.tofu_mini import measures, scoring
from synthetic.worlds.tofu_mini.config import method_beta
from synthetic.worlds.tofu_mini.data import SPLITS
from synthetic.worlds.tofu_mini.lm import train_models
from synthetic.worlds.tofu_mini.unlearn import SUMMARY, greedy_text, summarize, unlearning_data
from theory.methods import get_method
from theory.validate import check_int

__all__ = ["run_study", "SAMPLE_METHODS"]

SAMPLE_METHODS = ("GA", "NPO", "NPO+RT")
"""Whose answers after unlearning the report shows, beside the truth."""


def run_study(config: dict, progress=lambda msg: None, folder: Optional[Path] = None) -> dict:
    """Run the study of ``config`` (:func:`~.config.tofu_collapse_config`).

    Returns nested numpy arrays: ``splits/<p>`` for each split run: ``methods (C,)``, ``steps
    (E,)``, ``epoch_steps ()`` (steps per epoch), ``n_forget ()``, ``diverged_step (S, C)``, each
    name of :data:`.unlearn.SUMMARY` ``(S, C, E)``, and ``full``, ``retrained`` (each name of
    SUMMARY ``()``: the full and the retrained model on the same sets); ``guidance``: ``method``,
    ``betas (B,)``, ``learning_rates (L,)``, ``steps``, ``grid`` (each name of SUMMARY ``(S, B, L,
    E)``), ``weights (W,)``, ``by_weight`` (each name ``(S, W, E)``); ``long``: the runs of
    :func:`synthetic.laws.divergence_runs` (``labels``, ``betas``, ``steps``, ``diverged_step``,
    ``param_distance``, ``forget_nll_seq (J, E2)``); ``samples``: the greedy answers after
    unlearning (seed 0, last step) of ``forget`` and ``retain`` questions (``question``, ``truth``
    and one entry per method of :data:`SAMPLE_METHODS`); ``seconds`` per stage.
    """
    _check(config)
    t0 = time.perf_counter()
    corpus, models, _ = train_models(config["models"], progress, folder)
    study, seconds = _Study(config, corpus, models, progress), {"models": time.perf_counter() - t0}
    out: dict = {"splits": {}}
    for split in list(config["splits"]) + list(config["large_splits"]):
        t1 = time.perf_counter()
        out["splits"][str(split)], samples = study.split(split)
        if samples is not None:
            out["samples"] = samples
        seconds[f"split{split}"] = time.perf_counter() - t1
        progress(f"{split}% split: {seconds[f'split{split}']:.0f}s")
    for stage, make in (("guidance", study.guidance), ("long", study.long)):
        t1 = time.perf_counter()
        out[stage] = make()
        seconds[stage] = time.perf_counter() - t1
    progress(f"guidance grid: {seconds['guidance']:.0f}s")
    seconds["total"] = time.perf_counter() - t0
    out["seconds"] = {k: np.asarray(v) for k, v in seconds.items()}
    progress("done: " + ", ".join(f"{k} {v:.0f}s" for k, v in seconds.items()))
    return out


def _check(config: dict) -> None:
    """Refuse a config the study cannot run, before any work (a named method, split or size)."""
    unknown = sorted((set(config["splits"]) | set(config["large_splits"]) | {config["guidance"]["split"]}) - set(SPLITS))
    if unknown:
        raise ValueError(f"splits must be among {SPLITS}, got {unknown}")
    if config["guidance"]["split"] not in config["splits"]:
        raise ValueError(f"guidance split {config['guidance']['split']} must be one of splits {config['splits']}")
    for name in list(config["methods"]) + list(config["retain_methods"]):
        get_method(name)  # a ValueError naming the closest registered method
    forget_only = [n for n in config["retain_methods"] if not get_method(n).uses_retain]
    if forget_only:
        raise ValueError(f"retain_methods must all use retain data, got {forget_only}")
    u = config["unlearn"]
    for key in ("seeds", "epochs", "batch_size", "records_per_epoch", "main_records_per_epoch"):
        check_int(u[key], f"unlearn.{key}", 1)


def _steps(n_forget: int, u: dict, records_per_epoch: int):
    """``(total steps, steps per epoch, record schedule)`` of the recipe on ``n_forget`` questions."""
    per_epoch = -(-n_forget // int(u["batch_size"]))
    total = per_epoch * int(u["epochs"])
    every = max(1, per_epoch // int(records_per_epoch))
    steps = sorted(set(range(0, total + 1, every)) | {total})
    return total, per_epoch, engine.Schedule(tuple(steps))


def _long_metrics(params, method, ctx):
    nll = -tf.sequence_log_probs(params, ctx["tokens"], ctx["mask"])
    return {"param_distance": engine.param_distance(params, ctx["params_ref"]), "forget_nll_seq": jnp.mean(nll)}


class _Study:
    """The engine calls of the study, sharing its corpus and models."""

    def __init__(self, config: dict, corpus, models: dict, progress):
        self.config, self.corpus, self.models, self.progress = config, corpus, models, progress
        self.ref, self.u = models["full"], config["unlearn"]

    def _grid(self, split: int, methods, learning_rates, records_per_epoch: int, label: str):
        """One engine call on the ``split``% split: ``(engine output, summary, evaluation sets,
        the retrained model's records, steps per epoch, forget questions)``."""
        u, corpus, ref = self.u, self.corpus, self.ref
        data = unlearning_data(corpus, ref, split)
        sets = scoring.eval_sets(corpus, split, cap=u["eval_cap"], greedy_cap=u["greedy_cap"])
        ctx = scoring.eval_context(corpus, sets, ref)
        n_forget = int(data["forget_tokens"].shape[0])
        total, per_epoch, schedule = _steps(n_forget, u, records_per_epoch)
        optimizer = warmup_decay_adamw(per_epoch * int(u["warmup_epochs"]), total, weight_decay=float(u["weight_decay"]))
        self.progress(f"{label}: {len(methods)} settings x {u['seeds']} seeds x {total} steps ({n_forget} forget "
                      f"questions, batch {u['batch_size']}), {len(schedule.steps)} evaluations")
        res = engine.unlearn(
            tf.SEQUENCE_INPUTS, methods, optimizer, ref, data, schedule, scoring.tofu_metrics, context=ctx,
            hyperparams={"learning_rate": list(learning_rates)},
            batches=engine.minibatches(forget=int(u["batch_size"]), retain=int(u["batch_size"])), seeds=int(u["seeds"]),
            progress=lambda msg: self.progress(f"{label}: {msg}"),
        )  # fmt: skip
        retr = scoring.model_records(self.models["retrained"][str(split)], corpus, sets, ref)
        retr_R = measures.probability_numbers(retr["forget"])["truth_ratio"]
        records = {k: v for k, v in res.items() if k not in engine.RESERVED}
        return res, summarize(records, corpus, sets, retr_R), sets, (retr, retr_R), per_epoch, n_forget

    def split(self, split: int) -> tuple[dict, Optional[dict]]:
        """Every method of the split's list; the sample answers too at the guidance split."""
        config, u = self.config, self.u
        names = list(config["methods"] if split in config["splits"] else config["retain_methods"])
        methods = [get_method(n, beta=method_beta(config, n)) for n in names]
        main = split == config["guidance"]["split"]
        res, summary, sets, (retr, retr_R), per_epoch, n_forget = self._grid(
            split, methods, [u["learning_rate"]] * len(names),
            u["main_records_per_epoch"] if main else u["records_per_epoch"], f"{split}% split")
        full = summarize(scoring.model_records(self.ref, self.corpus, sets, self.ref), self.corpus, sets, retr_R)
        out = {"methods": np.array(names), "steps": res["steps"], "epoch_steps": np.asarray(per_epoch),
               "n_forget": np.asarray(n_forget), "diverged_step": res["diverged_step"],
               **{k: summary[k] for k in SUMMARY},
               "full": {k: np.asarray(full[k]) for k in SUMMARY},
               "retrained": {k: np.asarray(v) for k, v in summarize(retr, self.corpus, sets, retr_R).items()}}
        return out, (_samples(self.corpus, sets, res, names, config["samples"]) if main else None)

    def guidance(self) -> dict:
        """NPO+RT over beta x learning rate, and over the retain weight, on the guidance split."""
        g, u = self.config["guidance"], self.u
        betas, lrs, weights = list(g["betas"]), list(g["learning_rates"]), list(g["retain_weights"])
        base = get_method(g["method"])
        methods = [base.replace(beta=b) for b in betas for _ in lrs] + [base.replace(beta=u["beta"], rt=w) for w in weights]
        learning_rates = [lr for _ in betas for lr in lrs] + [u["learning_rate"]] * len(weights)
        res, summary, *_ = self._grid(g["split"], methods, learning_rates, g["records_per_epoch"], "guidance grid")
        S, E, n_grid = int(u["seeds"]), len(res["steps"]), len(betas) * len(lrs)
        return {"method": np.array(g["method"]), "betas": np.array(betas), "learning_rates": np.array(lrs),
                "steps": res["steps"], "weights": np.array(weights),
                "grid": {k: summary[k][:, :n_grid].reshape(S, len(betas), len(lrs), E) for k in SUMMARY},
                "by_weight": {k: summary[k][:, n_grid:] for k in SUMMARY}}

    def long(self) -> dict:
        """GA and NPO at several betas under full-batch gradient descent on a forget split."""
        lg, ref = self.config["long"], self.ref
        forget = self.corpus.encode(self.corpus.split("forget", lg["split"]), length=tf.config_of(ref).context)
        self.progress(f"long runs: {', '.join(laws.run_labels(lg['betas']))}; gradient descent, {lg['steps']} steps "
                      f"on the {forget.tokens.shape[0]} questions of the {lg['split']}% forget split")
        ctx = {"params_ref": ref, "tokens": jnp.asarray(forget.tokens), "mask": jnp.asarray(forget.answer_mask)}
        return laws.divergence_runs(
            tf.SEQUENCE_INPUTS, ref, tf.sequence_batch(ref, forget.tokens, forget.answer_mask), _long_metrics,
            context=ctx, betas=lg["betas"], steps=lg["steps"], learning_rate=lg["learning_rate"],
            n_records=lg["n_records"], progress=lambda msg: self.progress(f"long runs: {msg}"),
        )  # fmt: skip


def _samples(corpus, sets, res, names, n) -> dict:
    """Greedy answers of seed 0 at the last step, for the first ``n`` forget and retain
    questions of the greedy sets (the report's table)."""
    prompts = np.concatenate([corpus.encode(getattr(sets, s)).prompt_length for s in scoring.GREEDY_SETS])
    starts = {"forget": 0, "retain": len(sets.forget_greedy)}
    out = {}
    for part, pairs in (("forget", sets.forget_greedy), ("retain", sets.retain)):
        rows = range(starts[part], starts[part] + min(n, len(pairs)))
        out[part] = {"question": np.array([pairs[i - starts[part]].question for i in rows]),
                     "truth": np.array([pairs[i - starts[part]].answer for i in rows])}
        for m in SAMPLE_METHODS:
            if m in names:
                greedy = res["greedy"][0, names.index(m), -1]
                out[part][m] = np.array([greedy_text(corpus, greedy[i], prompts[i]) for i in rows])
    return out
