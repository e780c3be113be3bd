"""The ``markov`` experiment: the SimNPO study's Markov-chain setting, both cases, on the engine.

The SimNPO synthetic study (Fan et al. 2024, arXiv:2410.07163), as its public code runs it
(:mod:`.config`), with the question of the paper's sections 2.1 and 3 asked of it too:

1. Data (:mod:`.data`) of both cases; a reference model per case (B: retain + forget-1; A:
   retain + forget-1 + short forget-2) and one retrained model (retain only), trained with the
   ``transformers`` AdamW (:func:`.lm.train_lm`) and saved and reused by config and code
   version when a folder is given.
2. Per case, the study's 50-step runs inside the beta x eps map: NPO at beta 1 and SimNPO at
   each map beta, under each eps (:func:`~.config.map_settings`), x ``seeds``, from the case's
   reference as ONE engine call (:func:`synthetic.engine.unlearn`, eps injected per setting),
   the same AdamW at lr 5e-4, batch 4, the forget set = forget-1 + forget-2 training
   sequences; at every step the per-token KL to the **true chains** (the study's metric) and to
   the retrained model on the evaluation sets (``n_eval`` test sequences of retain, forget-1,
   forget-2; ``None``: all of them), and what the optimizer did
   (:data:`~.adam_stats.ADAM_STATS`). The study's own runs (NPO and SimNPO at beta 1, eps 1e-6)
   are read from the map. Then the collapse curves: all eight methods in case B, scored every
   ``eval_every`` steps on a smaller evaluation set.
3. Long runs for the divergence laws (case B's reference, :func:`synthetic.laws.divergence_runs`):
   GA and NPO at several betas, plain full-batch gradient descent (Theorem 2's optimizer) on
   ``n_forget`` forget-1 training sequences, metrics at log-spaced steps.

:func:`run_markov` returns nested numpy arrays (the tree in its docstring). Nothing here prints
or writes files, except the model cache under the folder.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import jax
import numpy as np

from synthetic import engine, laws, memory
from synthetic.models import transformer as tf
from synthetic.worlds.markov import data as markov
from synthetic.worlds.markov.adam_stats import ADAM_STATS, adam_tracker
from synthetic.worlds.markov.config import case_data_config, map_settings, reference_parts, study_settings
from synthetic.worlds.markov.lm import METRICS, adamw_injected, eval_sets, evaluate, fit_or_load, markov_metrics, train_lm
from theory.methods import get_method

__all__ = ["run_markov"]

TRUE_KL = ("kl_true_retain", "kl_true_forget1", "kl_true_forget2")


def run_markov(config: dict, progress=lambda msg: None, folder: Optional[Path] = None) -> dict:
    """Run the experiment of ``config`` (:func:`~.config.markov_config`); models are kept in
    ``folder / "models"`` when a folder is given.

    Returns nested numpy arrays:
      ``methods (K,)`` (the study's, NPO and SimNPO), ``betas (K,)``, ``steps (E,)`` (0..50);
      per case ``B`` and ``A``: each name of :data:`~.lm.METRICS` ``(K, S, E)``,
      ``diverged_step (K, S)``, ``reference_kl_true (3,)`` and ``retrained_kl_true (3,)``
      (per-token KL of the true chains to each model on the retain, forget-1 and forget-2
      evaluation sets: the targets), ``n_eval (3,)``; ``map``: ``methods``, ``betas``, ``eps``
      ``(M,)`` (:func:`~.config.map_settings`) and per case each metric and each of
      :data:`~.adam_stats.ADAM_STATS` ``(M, S, E)``, ``diverged_step (M, S)`` (the study's runs are
      its cells); ``collapse`` (case B, every method):
      ``methods (K2,)``, ``steps (E3,)``, each metric ``(K2, S, E3)``, ``diverged_step (K2, S)``,
      ``retrained_kl_true (3,)``; ``long``: the runs of :func:`synthetic.laws.divergence_runs`
      (``labels``, ``betas``, ``steps``, ``diverged_step``, each metric ``(J, E2)``) plus
      ``forget_nll_seq (J, E2)`` (the probe's NLL per sequence) and ``forget_length ()``;
      ``losses``: ``ref_B``, ``ref_A``, ``retr``; ``seconds``: each phase's wall time.
    """
    model_dir = None if folder is None else Path(folder) / "models"
    t0 = time.perf_counter()
    seconds = {}
    cases = list(config["cases"])
    data = {c: markov.make_markov_data(jax.random.key(config["data_seed"]), case_data_config(config, c)) for c in cases}
    refs, retr, losses = _train_models(config, data, model_dir, progress)
    seconds["train"] = time.perf_counter() - t0
    memory.release()  # the training programs and freed heap: each stage's peak is its own
    study = _Grids(config, data, refs, retr, progress)
    u, co = config["unlearn"], config["collapse"]
    out = {"methods": np.array(u["methods"]), "betas": np.array([u["beta"]] * len(u["methods"]))}
    settings = map_settings(config)
    out["map"] = {"methods": np.array([m for m, _, _ in settings]), "betas": np.array([b for _, b, _ in settings]),
                  "eps": np.array([e for _, _, e in settings])}
    for case in cases:
        t1 = time.perf_counter()
        out[case], out["map"][case], out["steps"] = study.case(case)
        seconds[f"unlearn_{case}"] = time.perf_counter() - t1
    memory.release()  # the map's program (both cases share it)
    t1 = time.perf_counter()
    out["collapse"] = study.collapse(cases[0], list(co["methods"]), int(co["eval_every"]), co["n_eval"])
    seconds["collapse"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    out["long"] = study.long(cases[0])
    seconds["long"] = time.perf_counter() - t1
    out["losses"] = {name: np.asarray(values) for name, values in losses.items()}
    seconds["total"] = time.perf_counter() - t0
    out["seconds"] = {k: np.asarray(v) for k, v in seconds.items()}
    progress("done: " + ", ".join(f"{k} {v:.0f}s" for k, v in seconds.items()))
    return out


class _Grids:
    """The engine calls of the experiment, sharing its data, models and unlearning batches."""

    def __init__(self, config: dict, data: dict, refs: dict, retr, progress):
        self.config, self.data, self.refs, self.retr, self.progress = config, data, refs, retr, progress
        lg, first = config["long"], data[config["cases"][0]]
        self.probe = first.forget1_train.take(slice(0, min(lg["n_forget"], len(first.forget1_train))))
        self.udata = {}  # each case's unlearning data, built once (case B's serves the collapse runs too)

    def _eval(self, case: str, n_eval) -> dict:
        d = self.data[case]
        mats = markov.chain_matrices(case_data_config(self.config, case))
        ev = eval_sets(d.retain_test, d.forget1_test, d.forget2_test, n_eval, self.retr,
                       lambda tokens, chain: markov.true_next_log_probs(mats, tokens, chain), self.probe)
        return {"ev": ev, "params_ref": self.refs[case]}

    def _unlearn(self, case: str, settings, eval_every: int, n_eval, label: str, track=None, runs_at_once=None):
        """One engine call: ``settings`` (``(method, beta, eps)``) x seeds from ``case``'s
        reference, AdamW minibatches (each setting's eps injected); ``runs_at_once`` as
        :func:`synthetic.engine.unlearn`."""
        u, d, ref = self.config["unlearn"], self.data[case], self.refs[case]
        ctx = self._eval(case, n_eval)
        if case not in self.udata:
            forget_set = markov.Sequences.concat([d.forget1_train, d.forget2_train])
            self.udata[case] = tf.sequence_batch(ref, forget_set.tokens, forget_set.mask, d.retain_train.tokens,
                                                 d.retain_train.mask)
        n_ev = [int(ctx["ev"]["group"][g].any(axis=1).sum()) for g in range(3)]
        self.progress(f"{label}: {len(settings)} settings x {u['seeds']} seeds x {u['steps']} steps, scoring "
                      f"{n_ev[0]} retain, {n_ev[1]} forget-1 and {n_ev[2]} forget-2 test sequences every "
                      f"{eval_every} step(s)")
        result = engine.unlearn(
            tf.SEQUENCE_INPUTS, [get_method(n, beta=b) for n, b, _ in settings],
            adamw_injected(float(u["weight_decay"]), float(u["eps"])), ref, self.udata[case],
            engine.Schedule(tuple(range(0, u["steps"] + 1, eval_every))), markov_metrics, context=ctx,
            hyperparams={"learning_rate": [u["learning_rate"]] * len(settings), "eps": [e for _, _, e in settings]},
            batches=engine.minibatches(forget=u["batch_size"], retain=u["batch_size"]), seeds=int(u["seeds"]),
            track=track, runs_at_once=runs_at_once, progress=lambda msg: self.progress(f"{label}: {msg}"),
        )  # fmt: skip
        names = METRICS + (ADAM_STATS if track is not None else ())
        runs = {name: np.swapaxes(result[name], 0, 1) for name in names}  # (S, K, E) -> (K, S, E)
        return runs, result["diverged_step"].T, result["steps"], ctx, n_ev

    def _true_kl(self, params, ctx) -> np.ndarray:
        values = evaluate(params, ctx)
        return np.array([float(values[k]) for k in TRUE_KL])

    def case(self, case: str) -> tuple[dict, dict, np.ndarray]:
        """The beta x eps map of ``case``: the study's runs (its cells at the study's settings),
        the whole map's arrays, and the record steps."""
        settings = map_settings(self.config)
        # One run at a time per device (here and in the collapse runs): each step scores 400
        # sequences per run, and all 50 runs at once held 3.4 GB and took 4.4 s a step here; one
        # at a time, 1.1 GB and 2.6 s a step (the same numbers to float32 rounding).
        runs, diverged, steps, ctx, n_ev = self._unlearn(case, settings, 1, self.config["unlearn"]["n_eval"],
                                                         f"case {case}", track=adam_tracker(), runs_at_once=1)
        idx = [settings.index(s) for s in study_settings(self.config)]
        study = {name: runs[name][idx] for name in METRICS}
        return ({**study, "diverged_step": diverged[idx], "reference_kl_true": self._true_kl(self.refs[case], ctx),
                 "retrained_kl_true": self._true_kl(self.retr, ctx), "n_eval": np.array(n_ev)},
                {**runs, "diverged_step": diverged}, steps)

    def collapse(self, case: str, method_names, eval_every: int, n_eval) -> dict:
        """Every method of the collapse curves, from ``case``'s reference."""
        u = self.config["unlearn"]
        settings = [(name, float(u["beta"]), float(u["eps"])) for name in method_names]
        runs, diverged, steps, ctx, _ = self._unlearn(case, settings, eval_every, n_eval, f"collapse, case {case}",
                                                      runs_at_once=1)
        return {**runs, "methods": np.array(method_names), "steps": steps, "diverged_step": diverged,
                "retrained_kl_true": self._true_kl(self.retr, ctx)}

    def long(self, case: str) -> dict:
        """GA and NPO at several betas under full-batch gradient descent on the probe."""
        lg, ref = self.config["long"], self.refs[case]
        labels = laws.run_labels(lg["betas"])
        self.progress(f"long runs: {', '.join(labels)}; gradient descent, {lg['steps']} steps on {len(self.probe)} "
                      "forget-1 sequences")
        long = laws.divergence_runs(
            tf.SEQUENCE_INPUTS, ref, tf.sequence_batch(ref, self.probe.tokens, self.probe.mask), markov_metrics,
            context=self._eval(case, lg["n_eval"]), betas=lg["betas"], steps=lg["steps"],
            learning_rate=lg["learning_rate"], n_records=lg["n_records"],
            progress=lambda msg: self.progress(f"long runs: {msg}"),
        )  # fmt: skip
        seq_len = float(np.mean(self.probe.length))
        return {**long, "forget_nll_seq": long["forget_train_nll"] * seq_len, "forget_length": np.asarray(seq_len)}


def _train_models(config: dict, data: dict, model_dir: Optional[Path], progress) -> tuple[dict, object, dict]:
    """``({case: reference}, retrained, {name: losses})``: one reference per case, one retrained
    model (retain only; the retain data are the same in both cases)."""
    model = tf.TransformerConfig(**config["model"])
    key = jax.random.key(config["model_seed"])
    # DATA_VERSION names the sampler, so a change to it invalidates saved models.
    base = {"data_version": markov.DATA_VERSION, "data": config["data"], "data_seed": config["data_seed"],
            "model": config["model"], "train": config["train"], "model_seed": config["model_seed"]}
    refs, losses = {}, {}
    for case in config["cases"]:
        parts = reference_parts(case)
        train_set = markov.Sequences.concat([getattr(data[case], f"{p}_train") for p in parts])
        cfg = {**base, "trained_on": "+".join(parts),
               "forget2_length": int(data[case].forget2_train.mask.sum(axis=1).max()) if "forget2" in parts else None}
        refs[case], losses[f"ref_{case}"] = fit_or_load(
            model_dir, f"markov_reference_{case}", cfg, model,
            lambda: train_lm(jax.random.fold_in(key, 0), model, train_set, config["train"],
                             lambda m, case=case: progress(f"reference {case} {m}")),
            progress,
        )  # fmt: skip
    retain = data[config["cases"][0]].retain_train
    retr, losses["retr"] = fit_or_load(
        model_dir, "markov_retrained", {**base, "trained_on": "retain"}, model,
        lambda: train_lm(jax.random.fold_in(key, 1), model, retain, config["train"], lambda m: progress(f"retrained {m}")),
        progress,
    )  # fmt: skip
    return refs, retr, losses


