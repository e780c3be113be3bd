"""The ``tofu_mini`` experiment: every unlearning method on TOFU in miniature, on the engine.

1. The corpus and the models of ``tofu_mini_models`` (the full model, one retrained model per
   split), loaded from the model cache or trained (:func:`~synthetic.experiments.tofu_mini.run.train_models`).
2. Per forget split, one engine call (:func:`synthetic.engine.unlearn`): every method x
   ``seeds`` from the full model, AdamW with warm-up and linear decay
   (:func:`synthetic.tofu_unlearn.unlearn_optimizer`), minibatches of forget (and retain)
   questions; TOFU's per-question numbers, greedy answers, the forget KL, the forget NLL and
   ``||theta - theta_ref||`` recorded ``records_per_epoch`` times an epoch
   (:func:`synthetic.tofu_unlearn.tofu_metrics`), then forget quality, model utility and the
   answer shares read off them (:func:`synthetic.tofu_unlearn.summarize`). Splits 1, 5 and
   10% run every method; 20, 50 and 90% the methods that use retain data.
3. The guidance grid (the 10% split): NPO+RT over betas x peak learning rates, and over retain
   weights at the default beta and learning rate, one engine call.
4. Long runs for the divergence laws: GA and NPO (several betas) under plain full-batch
   gradient descent on a small forget set, metrics at log-spaced steps, ``||theta_t -
   theta_ref||`` and the forget NLL fitted against ``t`` and ``log t``.

:func:`run_tofu_collapse` returns plain arrays (keys in its docstring); nothing here prints
or writes files except the model cache.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from synthetic import engine, tofu_unlearn
from synthetic.analysis import fit_laws
from synthetic.experiments.tofu_collapse.config import method_beta
from synthetic.experiments.tofu_mini.run import train_models
from synthetic.models import transformer as tf
from synthetic.pipeline import SGD
from synthetic.data.tofu import SPLITS
from theory.methods import get_method
from theory.validate import check_int

__all__ = ["run_tofu_collapse", "SUMMARY"]

SUMMARY = tofu_unlearn.SUMMARY


def _steps(n_forget: int, u: dict, records_per_epoch: int):
    """``(total steps, steps per epoch, record schedule)`` of the recipe on ``n_forget`` questions."""
    per_epoch = -(-n_forget // int(u["batch_size"]))
    total = per_epoch * int(u["epochs"])
    every = max(1, per_epoch // int(records_per_epoch))
    steps = sorted(set(range(0, total + 1, every)) | {total})
    return total, per_epoch, engine.Schedule(tuple(steps))


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


def _long_metrics(params, method, ctx):
    sq = sum(jnp.sum(jnp.square(a - b)) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ctx["params_ref"])))
    nll = -tf.sequence_log_probs(params, ctx["tokens"], ctx["mask"])
    return {"param_distance": jnp.sqrt(sq), "forget_nll_seq": jnp.mean(nll)}


def run_tofu_collapse(config: dict, progress=lambda msg: None, folder: Optional[Path] = None) -> dict[str, np.ndarray]:
    """Run the study of ``config`` (:func:`~.config.tofu_collapse_config`).

    Returns numpy arrays; per split ``p`` (``s<p>_`` prefix): ``methods (C,)``, ``steps (E,)``,
    ``epoch_steps ()`` (steps per epoch), each name of :data:`SUMMARY` ``(S, C, E)``,
    ``diverged_step (S, C)``, ``full_<summary> ()`` and ``retrained_<summary> ()`` (the full
    and the retrained model on the same sets), ``n_forget ()``; the guidance grid: ``guide_betas
    (B,)``, ``guide_learning_rates (L,)``, ``guide_<summary> (S, B, L, E)``, ``guide_steps``,
    ``weights (W,)``, ``weights_<summary> (S, W, E)``; the long runs: ``long_labels (J,)``,
    ``long_betas (J,)`` (NaN for GA), ``long_steps (E2,)``, ``long_param_distance``,
    ``long_forget_nll_seq (J, E2)``, ``long_diverged_step (J,)``,
    ``long_fit_<param_distance|forget_nll_seq>_<linear|log|power> (J, 3)``, ``long_fit_t_min``;
    sample answers after unlearning (seed 0, last step)
    ``samples_<forget|retain>_<question|truth|GA|NPO|NPO+RT>``; ``seconds_<stage>``.
    """
    _check(config)
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    corpus, models, _ = train_models(config["models"], progress, folder)
    ref = models["full"]
    seconds["models"] = time.perf_counter() - t0
    u = config["unlearn"]
    seeds = int(u["seeds"])
    out: dict[str, np.ndarray] = {}

    def grid(split, methods, learning_rates, records_per_epoch, label):
        """One engine call on the ``split``% split: ``(engine output, summary, evaluation sets,
        the retrained model's records, steps per epoch, forget questions)``."""
        data = tofu_unlearn.unlearning_data(corpus, ref, split)
        sets = tofu_unlearn.eval_sets(corpus, split, cap=u["eval_cap"], greedy_cap=u["greedy_cap"])
        ctx = tofu_unlearn.eval_context(corpus, sets, ref)
        n_forget = int(data["forget_tokens"].shape[0])
        total, per_epoch, schedule = _steps(n_forget, u, records_per_epoch)
        optimizer = tofu_unlearn.unlearn_optimizer(per_epoch * int(u["warmup_epochs"]), total, u["weight_decay"])
        progress(f"{label}: {len(methods)} settings x {seeds} seeds x {total} steps ({n_forget} forget questions, "
                 f"batch {u['batch_size']}), {len(schedule.steps)} evaluations")
        res = engine.unlearn(
            tf.SEQUENCE_INPUTS, methods, optimizer, ref, data, schedule, tofu_unlearn.tofu_metrics, context=ctx,
            hyperparams={"learning_rate": list(learning_rates)},
            batches=engine.minibatches(forget=int(u["batch_size"]), retain=int(u["batch_size"])), seeds=seeds,
            progress=lambda msg: progress(f"{label}: {msg}"),
        )  # fmt: skip
        retr = tofu_unlearn.model_records(models[f"retr{split}"], corpus, sets, ref)
        records = {k: v for k, v in res.items() if k not in engine.RESERVED}
        summary = tofu_unlearn.summarize(records, corpus, sets, retr["forget_truth_ratio"])
        return res, summary, sets, retr, per_epoch, n_forget

    # ---- every method on every split
    for split in list(config["splits"]) + list(config["large_splits"]):
        t1 = time.perf_counter()
        names = list(config["methods"] if split in config["splits"] else config["retain_methods"])
        methods = [get_method(n, beta=method_beta(config, n)) for n in names]
        records = u["main_records_per_epoch"] if split == config["guidance"]["split"] else u["records_per_epoch"]
        res, summary, sets, retr, per_epoch, n_forget = grid(
            split, methods, [u["learning_rate"]] * len(names), records, f"{split}% split")
        p = f"s{split}_"
        out[p + "methods"] = np.array(names)
        out[p + "steps"] = res["steps"]
        out[p + "epoch_steps"] = np.asarray(per_epoch)
        out[p + "n_forget"] = np.asarray(n_forget)
        out[p + "diverged_step"] = res["diverged_step"]
        for k in SUMMARY:
            out[p + k] = summary[k]
        full = tofu_unlearn.summarize(tofu_unlearn.model_records(ref, corpus, sets, ref), corpus, sets,
                                      retr["forget_truth_ratio"])
        retrained = tofu_unlearn.summarize(retr, corpus, sets, retr["forget_truth_ratio"])
        for k in SUMMARY:
            out[p + "full_" + k] = np.asarray(full[k])
            out[p + "retrained_" + k] = np.asarray(retrained[k])
        if split == config["guidance"]["split"]:
            _samples(out, corpus, sets, res, names, config["samples"])
        seconds[f"split{split}"] = time.perf_counter() - t1
        progress(f"{split}% split: {seconds[f'split{split}']:.0f}s")

    # ---- the guidance grid: NPO+RT over beta x learning rate, and over the retain weight
    t1 = time.perf_counter()
    g = config["guidance"]
    betas, lrs, weights = list(g["betas"]), list(g["learning_rates"]), list(g["retain_weights"])
    base = get_method(g["method"])
    methods = [base.replace(beta=b) for b in betas for _ in lrs]
    methods += [base.replace(beta=u["beta"], rt=w) for w in weights]
    learning_rates = [lr for _ in betas for lr in lrs] + [u["learning_rate"]] * len(weights)
    res, summary, *_ = grid(g["split"], methods, learning_rates, g["records_per_epoch"], "guidance grid")
    S, E = seeds, len(res["steps"])
    n_grid = len(betas) * len(lrs)
    out["guide_betas"], out["guide_learning_rates"], out["weights"] = np.array(betas), np.array(lrs), np.array(weights)
    out["guide_steps"] = res["steps"]
    out["guide_method"] = np.array(g["method"])
    for k in SUMMARY:
        out["guide_" + k] = summary[k][:, :n_grid].reshape(S, len(betas), len(lrs), E)
        out["weights_" + k] = summary[k][:, n_grid:]
    seconds["guidance"] = time.perf_counter() - t1
    progress(f"guidance grid: {seconds['guidance']:.0f}s")

    # ---- long gradient-descent runs: the divergence laws
    t1 = time.perf_counter()
    lg = config["long"]
    forget = corpus.encode(corpus.split("forget", lg["split"]), length=tf._config_of(ref).context)
    ldata = tf.sequence_batch(ref, forget.tokens, forget.answer_mask)
    long_methods = [get_method("GA")] + [get_method("NPO", beta=b) for b in lg["betas"]]
    labels = ["GA"] + [f"NPO beta={b:g}" for b in lg["betas"]]
    schedule = engine.Schedule.log_spaced(lg["steps"], (lg["n_records"] - 1) / np.log10(lg["steps"]))
    progress(f"long runs: {', '.join(labels)}; gradient descent, {lg['steps']} steps on the {forget.tokens.shape[0]} "
             f"questions of the {lg['split']}% forget split")
    ctx = {"params_ref": ref, "tokens": jnp.asarray(forget.tokens), "mask": jnp.asarray(forget.answer_mask)}
    long = engine.unlearn(
        tf.SEQUENCE_INPUTS, long_methods, SGD, ref, ldata, schedule, _long_metrics, context=ctx,
        hyperparams={"learning_rate": [lg["learning_rate"]] * len(long_methods)}, seeds=1,
        progress=lambda msg: progress(f"long runs: {msg}"),
    )  # fmt: skip
    out["long_labels"] = np.array(labels)
    out["long_betas"] = np.array([np.nan] + list(lg["betas"]), float)
    out["long_steps"] = long["steps"]
    out["long_diverged_step"] = long["diverged_step"][0]
    t_min = lg["steps"] / lg["fit_decades_from"]
    for name in ("param_distance", "forget_nll_seq"):
        out[f"long_{name}"] = long[name][0]
        fits = [fit_laws(long["steps"], y, t_min) for y in long[name][0]]
        for law in ("linear", "log", "power"):
            out[f"long_fit_{name}_{law}"] = np.array([f[law] for f in fits])
    out["long_fit_t_min"] = np.asarray(t_min)
    seconds["long"] = time.perf_counter() - t1

    seconds["total"] = time.perf_counter() - t0
    for k, v in seconds.items():
        out[f"seconds_{k}"] = np.asarray(v)
    progress("done: " + ", ".join(f"{k} {v:.0f}s" for k, v in seconds.items()))
    return out


SAMPLE_METHODS = ("GA", "NPO", "NPO+RT")
"""Whose answers after unlearning the report shows, beside the truth."""


def _samples(out, corpus, sets, res, names, n):
    """Greedy answers of seed 0 at the last step, for the first ``n`` forget and retain
    questions of the greedy sets (the report's table)."""
    prompts = np.concatenate([corpus.encode(getattr(sets, s)).prompt_length
                              for s in ("forget_greedy",) + tofu_unlearn.UTILITY_SETS])
    starts = {"forget": 0, "retain": len(sets.forget_greedy)}
    for part, pairs in (("forget", sets.forget_greedy), ("retain", sets.retain)):
        rows = range(starts[part], starts[part] + min(n, len(pairs)))
        out[f"samples_{part}_question"] = np.array([pairs[i - starts[part]].question for i in rows])
        out[f"samples_{part}_truth"] = np.array([pairs[i - starts[part]].answer for i in rows])
        for m in SAMPLE_METHODS:
            if m in names:
                greedy = res["greedy"][0, names.index(m), -1]
                out[f"samples_{part}_{m}"] = np.array([tofu_unlearn.greedy_text(corpus, greedy[i], prompts[i]) for i in rows])
