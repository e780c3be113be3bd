"""The ``tofu_mini`` experiment: every unlearning method on TOFU in miniature, on the engine.

1. The corpus and the models of ``tofu_mini_models`` (the full model, one retrained model per
   split), loaded from the model cache or trained (:func:`.lm.train_models`).
2. Per forget split, engine calls (:func:`synthetic.engine.unlearn`): every method x seed from the
   full model with the config's recipe (:mod:`.config`: the NPO paper's by default: AdamW with
   warm-up and linear decay (:func:`synthetic.optim.warmup_decay_adamw`), epochs of shuffled
   batches of forget questions each paired with as many random retain questions
   (:func:`synthetic.engine.epoch_batches`), the paper's loss normalisations
   (:func:`.unlearn.normalised`)); TOFU's records (:func:`.scoring.tofu_metrics`) every
   ``record_every_epochs`` epochs, then forget quality, model utility and the answer shares read
   off them (:func:`.unlearn.summarize`). Splits 1, 5 and 10% run ``methods``; 20, 50 and 90%
   ``large_methods``, NPO+RT at each of ``large_retain_weights``, scored on the 10% questions as
   the paper scores them. The methods with and without retain data run as separate calls (a
   grid of forget-only methods never runs the model on retain data), each run in turn on each
   device (``runs_at_once=1``: the memory of one run per device, one compilation per call).
3. The guidance grid (the 10% split): NPO+RT over betas x learning rates, and over retain weights
   at the default beta and learning rate.
4. Long runs for the divergence laws (:func:`synthetic.laws.divergence_runs`): GA and NPO
   (several betas) under plain full-batch gradient descent on a small forget set, metrics at
   log-spaced steps.

:func:`run_study` returns nested numpy arrays (the tree in its docstring); nothing here prints
or writes files except the model cache.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from synthetic import engine, laws
from synthetic.memory import peak_mb, release
from synthetic.models import transformer as tf
from synthetic.optim import warmup_decay_adamw
from synthetic.worlds.tofu_mini import measures, scoring
from synthetic.worlds.tofu_mini.config import method_beta
from synthetic.worlds.tofu_mini.data import SPLITS
from synthetic.worlds.tofu_mini.lm import MAIN_SPLIT, train_models
from synthetic.worlds.tofu_mini.unlearn import SUMMARY, greedy_text, normalised, summarize, unlearning_data
from theory.methods import Method, get_method
from theory.validate import check_int

__all__ = ["run_study", "SAMPLE_METHODS", "Recipe"]

SAMPLE_METHODS = ("GA", "NPO", "NPO+RT")
"""Whose answers after unlearning the report shows, beside the truth."""


def run_study(config: dict, progress=lambda msg: None, folder: Optional[Path] = None) -> dict:
    """Run the study of ``config`` (:func:`~.config.tofu_collapse_config`).

    Returns nested numpy arrays: ``splits/<p>`` for each split run: ``methods (C,)`` (labels;
    ``"NPO+RT w=2"`` for a retain weight other than 1), ``retain_weights (C,)``, ``steps (E,)``,
    ``epoch_steps ()`` (steps per epoch), ``n_forget ()``, ``n_scored ()`` (forget questions
    scored), ``diverged_step (S, C)``, each name of :data:`.unlearn.SUMMARY` ``(S, C, E)``, and
    ``full``, ``retrained`` (each name of SUMMARY ``()``: the full and the retrained model on the
    same sets); ``guidance``: ``method``, ``betas (B,)``, ``learning_rates (L,)``, ``steps``,
    ``grid`` (each name of SUMMARY ``(S, B, L, E)``), ``weights (W,)``, ``by_weight`` (each name
    ``(S, W, E)``); ``long``: the runs of :func:`synthetic.laws.divergence_runs` (``labels``,
    ``betas``, ``steps``, ``diverged_step``, ``param_distance``, ``forget_nll_seq (J, E2)``);
    ``samples``: the greedy answers after unlearning (seed 0, last step) of ``forget`` and
    ``retain`` questions (``question``, ``truth`` and one entry per method of
    :data:`SAMPLE_METHODS`); ``seconds`` per stage.
    """
    _check(config)
    t0 = time.perf_counter()
    corpus, models, _ = train_models(config["models"], progress, folder)
    study = _Study(config, corpus, models, progress, one_call=bool(config.get("one_call", False)))
    seconds = {"models": time.perf_counter() - t0}
    progress(f"models: {seconds['models']:.0f}s (peak memory so far {peak_mb():.0f} MB)")
    out: dict = {"splits": {}}
    for split in list(config["splits"]) + list(config["large_splits"]):
        release()  # the peak of the study is that of its largest stage (synthetic.memory)
        t1 = time.perf_counter()
        out["splits"][str(split)], samples = study.split(split)
        if samples is not None:
            out["samples"] = samples
        seconds[f"split{split}"] = time.perf_counter() - t1
        progress(f"{split}% split: {seconds[f'split{split}']:.0f}s (peak memory so far {peak_mb():.0f} MB)")
    for stage, make in (("guidance", study.guidance), ("long", study.long)):
        release()
        t1 = time.perf_counter()
        out[stage] = make()
        seconds[stage] = time.perf_counter() - t1
        progress(f"{stage}: {seconds[stage]:.0f}s (peak memory so far {peak_mb():.0f} MB)")
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
    for name in list(config["methods"]) + list(config["large_methods"]):
        get_method(name)  # a ValueError naming the closest registered method
    forget_only = [n for n in config["large_methods"] if not get_method(n).uses_retain]
    if forget_only:
        raise ValueError(f"large_methods must all use retain data, got {forget_only}")
    u = config["unlearn"]
    for key in ("seeds", "other_seeds", "large_seeds", "epochs", "batch_size"):
        check_int(u[key], f"unlearn.{key}", 1)
    check_int(config["guidance"]["seeds"], "guidance.seeds", 1)
    if u.get("sampler", "epochs") not in ("epochs", "random"):
        raise ValueError(f"unlearn.sampler must be 'epochs' or 'random', got {u.get('sampler')!r}")
    normalised(get_method("GA"), u.get("normalisation", "sum"))  # a ValueError naming the allowed ones


class Recipe:
    """The unlearning recipe of a study config, for one forget set of ``n_forget`` questions:
    its optimizer, batches and record schedule (records every ``every_epochs`` epochs, and at the end)."""

    def __init__(self, unlearn: dict, n_forget: int, every_epochs: float):
        self.u = unlearn
        self.batch = int(unlearn["batch_size"])
        self.per_epoch = -(-int(n_forget) // self.batch)
        self.total = self.per_epoch * int(unlearn["epochs"])
        every = max(1, int(round(self.per_epoch * float(every_epochs))))
        self.schedule = engine.Schedule(tuple(sorted(set(range(0, self.total + 1, every)) | {self.total})))
        self.optimizer = warmup_decay_adamw(self.per_epoch * int(unlearn["warmup_epochs"]), self.total,
                                            weight_decay=float(unlearn["weight_decay"]))

    @property
    def batches(self):
        if self.u.get("sampler", "epochs") == "epochs":
            return engine.epoch_batches("forget", self.batch, retain=self.batch)
        return engine.minibatches(forget=self.batch, retain=self.batch)


def _stack_runs(parts: list[tuple[list[int], dict]]) -> dict:
    """One grid's output from separate calls: ``parts`` holds, per group of settings, their indices
    and the engine's output for them (``(S, C_part, ...)``); the result has ``(S, C, ...)`` in the
    settings' order, and the record ``steps``."""
    outs = [{k: v for k, v in out.items() if k != "steps"} for _, out in parts]
    order = np.argsort(np.concatenate([np.asarray(idx) for idx, _ in parts]))
    merged = jax.tree.map(lambda *a: np.concatenate(a, axis=1)[:, order], *outs)
    return {**merged, "steps": parts[0][1]["steps"]}


class _Study:
    """The engine calls of the study, sharing its corpus and models."""

    def __init__(self, config: dict, corpus, models: dict, progress, *, one_call: bool = False):
        self.config, self.corpus, self.models, self.progress = config, corpus, models, progress
        self.ref, self.u = models["full"], config["unlearn"]
        # one engine call per grid (one compilation) instead of one per retain use
        self.one_call = one_call

    def _sets(self, scored_split: int) -> scoring.EvalSets:
        """The evaluation sets: the ``scored_split``% forget questions, the retain questions of the
        authors kept at every split, and the utility sets, each capped as the config says."""
        ev = self.u["eval"]
        sets = scoring.eval_sets(self.corpus, scored_split, cap=ev["forget"], greedy_cap=ev["forget_greedy"])
        retain = tuple(scoring.spread(self.corpus.split("retain", 90), ev["retain"]))
        # the real-author and world-fact sets: at most ``utility`` questions each (all if absent)
        other = [tuple(scoring.spread(s, ev.get("utility"))) for s in (sets.real_authors, sets.world_facts)]
        return scoring.EvalSets(sets.forget, sets.forget_greedy, retain, *other)

    def _grid(self, split: int, methods: Sequence[Method], learning_rates, seeds: int, every_epochs: float, label: str,
              scored_split: Optional[int] = None):
        """The engine calls of one grid on the ``split``% split: ``(records, summary, sets, the retrained
        model's forget truth ratios, the recipe, the forget questions)``."""
        u, corpus, ref = self.u, self.corpus, self.ref
        methods = [normalised(m, u.get("normalisation", "sum")) for m in methods]
        needs = set().union(*(m.needs for m in methods))
        data = unlearning_data(corpus, ref, split, retain_kl=bool({"retain_kl", "retain_kl_positions"} & needs),
                               forget_kl="forget_kl" in needs)
        sets = self._sets(scored_split or split)
        ctx = scoring.eval_context(corpus, sets, ref)
        recipe = Recipe(u, data["forget_tokens"].shape[0], every_epochs)
        self.progress(f"{label}: {len(methods)} settings x {seeds} seeds x {recipe.total} steps "
                      f"({data['forget_tokens'].shape[0]} forget questions, batch {recipe.batch}), "
                      f"{len(recipe.schedule.steps)} evaluations of {len(sets.forget)} forget questions")
        groups = ([list(range(len(methods)))] if self.one_call else
                  [[c for c, m in enumerate(methods) if m.uses_retain == r] for r in (False, True)])
        parts = []
        for idx in (g for g in groups if g):
            # one program per group, its runs one at a time on each device: the memory of one run
            # per device whatever the grid (a run's temporaries are ~150 MB here)
            out = engine.unlearn(
                tf.SEQUENCE_INPUTS, [methods[c] for c in idx], recipe.optimizer, ref, data, recipe.schedule,
                scoring.tofu_metrics, context=ctx, hyperparams={"learning_rate": [learning_rates[c] for c in idx]},
                batches=recipe.batches, seeds=seeds, progress=lambda msg: self.progress(f"{label}: {msg}"),
                runs_at_once=1,
            )  # fmt: skip
            parts.append((idx, out))
        res = _stack_runs(parts)
        retr = self.models["retrained"][str(split)]
        retr_R = measures.probability_numbers(scoring.model_records(retr, corpus, sets, ref)["forget"])["truth_ratio"]
        records = {k: v for k, v in res.items() if k not in engine.RESERVED}
        small = self.u.get("eval_small")
        # forget quality on ``eval_small`` evenly spaced forget questions too (all of them if fewer)
        subsets = {str(small): scoring.spread_indices(len(sets.forget), small)} if small else None
        return (res, summarize(records, corpus, sets, retr_R, subsets), sets, retr_R, recipe,
                data["forget_tokens"].shape[0])

    def _settings(self, split: int):
        """``(labels, methods, retain weights)`` of a split: ``methods`` at 1-10%, ``large_methods``
        (NPO+RT at every ``large_retain_weights``) above."""
        config = self.config
        if split in config["splits"]:
            names = list(config["methods"])
            return names, [get_method(n, beta=method_beta(config, n)) for n in names], [1.0] * len(names)
        labels, methods, weights = [], [], []
        for n in config["large_methods"]:
            base = get_method(n, beta=method_beta(config, n))
            for w in (config["large_retain_weights"] if n == "NPO+RT" else [1.0]):
                labels.append(n if w == 1.0 else f"{n} w={w:g}")
                methods.append(base if w == 1.0 else base.replace(rt=w))
                weights.append(w)
        return labels, methods, weights

    def split(self, split: int) -> tuple[dict, Optional[dict]]:
        """Every setting of the split; the sample answers too at the guidance split."""
        config, u = self.config, self.u
        labels, methods, weights = self._settings(split)
        main = split == config["guidance"]["split"]
        seeds = int(u["seeds"] if split == MAIN_SPLIT else u["other_seeds"] if split in config["splits"]
                    else u["large_seeds"])
        scored = split if split in config["splits"] else MAIN_SPLIT
        res, summary, sets, retr_R, recipe, n_forget = self._grid(
            split, methods, [u["learning_rate"]] * len(methods), seeds,
            u["main_record_every_epochs"] if main else u["record_every_epochs"], f"{split}% split", scored)
        full = summarize(scoring.model_records(self.ref, self.corpus, sets, self.ref), self.corpus, sets, retr_R)
        retr = scoring.model_records(self.models["retrained"][str(split)], self.corpus, sets, self.ref)
        out = {"methods": np.array(labels), "retain_weights": np.array(weights), "steps": res["steps"],
               "epoch_steps": np.asarray(recipe.per_epoch), "n_forget": np.asarray(n_forget),
               "n_scored": np.asarray(len(sets.forget)), "diverged_step": res["diverged_step"],
               **{k: v for k, v in summary.items() if k in SUMMARY or k.startswith("forget_quality_")},
               "full": {k: np.asarray(full[k]) for k in SUMMARY},
               "retrained": {k: np.asarray(v) for k, v in summarize(retr, self.corpus, sets, retr_R).items()}}
        return out, (_samples(self.corpus, sets, res, labels, config["samples"]) if main else None)

    def guidance(self) -> dict:
        """NPO+RT over beta x learning rate, and over the retain weight, on the guidance split."""
        g, u = self.config["guidance"], self.u
        betas, lrs, weights = list(g["betas"]), list(g["learning_rates"]), list(g["retain_weights"])
        base = get_method(g["method"])
        methods = [base.replace(beta=b) for b in betas for _ in lrs] + [base.replace(beta=u["beta"], rt=w) for w in weights]
        learning_rates = [lr for _ in betas for lr in lrs] + [u["learning_rate"]] * len(weights)
        res, summary, *_ = self._grid(g["split"], methods, learning_rates, int(g["seeds"]), g["record_every_epochs"],
                                      "guidance grid")
        S, E, n_grid = int(g["seeds"]), len(res["steps"]), len(betas) * len(lrs)
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


def _long_metrics(params, method, ctx):
    nll = -tf.sequence_log_probs(params, ctx["tokens"], ctx["mask"])
    return {"param_distance": engine.param_distance(params, ctx["params_ref"]), "forget_nll_seq": jnp.mean(nll)}


def _samples(corpus, sets, res, names, n) -> dict:
    """Greedy answers of seed 0 at the last step, for the first ``n`` forget and retain
    questions of the greedy sets (the report's table)."""
    out = {}
    for part, name in (("forget", "forget_greedy"), ("retain", "retain")):
        pairs = getattr(sets, name)[:n]
        prompts = corpus.encode(getattr(sets, name)).prompt_length
        out[part] = {"question": np.array([q.question for q in pairs]), "truth": np.array([q.answer for q in pairs])}
        for m in SAMPLE_METHODS:
            if m in names:
                greedy = res["greedy"][name][0, names.index(m), -1]
                out[part][m] = np.array([greedy_text(corpus, greedy[i], prompts[i]) for i in range(len(pairs))])
    return out
