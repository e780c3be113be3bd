"""Experiment ``tutorial``: the numbers behind every figure of ``docs/tutorial.md``.

Each step of the tutorial is one function here, public so that a reader can call it, and
the tutorial's own code blocks compute the same numbers in the open (the tests check that
they agree):

1-2. :func:`objective_curves`: ``L_GA``, ``L_NPO`` and NPO's weight ``W`` against ``log pi``.
3.   :func:`blobs` and :func:`race`: logistic regression on a handful of points in 2-D, GA and
     NPO unlearning four of them by gradient descent, the parameters recorded for the animation.
4.   :func:`crossing_times`: Theorem 2's time to reach each distance, simulated and in closed form.
5.   figure 4 of section 4 (the ``fig4`` experiment's run at :func:`~.config.tutorial_fig4_config`).
6.   :func:`lm_collapse`: a transformer trained on TOFU in miniature, unlearned with GA, NPO
     and NPO+RT: utility over steps and greedy answers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from synthetic import engine
from synthetic.optim import warmup_decay_adamw
from synthetic.worlds.tofu_mini import data as tofu
from synthetic.worlds.tofu_mini import lm as tofu_lm
from synthetic.worlds.tofu_mini import scoring, unlearn
from synthetic.worlds.tofu_mini.measures import without_end
from synthetic.worlds.thm2.data import make_forget_set
from synthetic.worlds.section4.run import run_fig4
from synthetic.worlds.thm2.run import gd_divergence, thm2_methods
from synthetic.models import transformer as tf
from synthetic.models.logistic import BINARY_INPUTS, binary_batch, logistic_log_probs, take_label
from synthetic.optim import SGD
from theory import ga_loss, get_method, npo_loss, npo_weight
from theory import theorem2 as t2
from theory.methods import METHODS, Method, as_method, as_methods
from theory.validate import check_int, check_positive

__all__ = ["SEPARABLE_LOSS", "objective_curves", "blobs", "label_of", "race", "race_metrics", "crossing_times", "lm_collapse",
           "run_tutorial"]


SEPARABLE_LOSS = 1e-6
"""A reference fit whose mean NLL is below this has separated the classes (the likelihood has no
maximum): :func:`race` refuses such data."""


def objective_curves(betas: Sequence[float], *, log_pi_min: float = -12.0, points: int = 241,
                     ref_p: float = 0.5) -> dict[str, np.ndarray]:
    """``L_GA``, ``L_NPO`` and ``W`` of one forget example against ``log pi`` in ``[log_pi_min, 0]``.

    Returns:
      ``log_pi (P,)``, ``log_ref ()`` (``log ref_p``), ``betas (B,)``, ``ga (P,)``, ``npo (B, P)``,
      ``weight (B, P)``.
    """
    log_pi = np.linspace(log_pi_min, 0.0, check_int(points, "points", 2))
    log_ref = np.full_like(log_pi, np.log(ref_p))
    betas = np.asarray(betas, np.float64)
    check_positive(betas, "betas")
    with jax.enable_x64(True):
        npo = np.stack([npo_loss(log_pi, log_ref, beta=b) for b in betas])
        weight = np.stack([npo_weight(log_pi, log_ref, beta=b) for b in betas])
        ga = np.asarray(ga_loss(log_pi))
    return {"log_pi": log_pi, "log_ref": np.float64(log_ref[0]), "betas": betas, "ga": ga, "npo": npo, "weight": weight}


def blobs(seed: int = 0, per_class: int = 12, n_forget: int = 4) -> dict[str, np.ndarray]:
    """Two overlapping Gaussian classes in 2-D and the forget set: the ``n_forget`` class-1
    points furthest to the right.

    Returns:
      ``x (n, 3)``: the two coordinates and a constant 1 (the model's bias); ``y (n,)`` in
      {0, 1}; ``forget`` and ``retain``: row indices.
    """
    rng = np.random.default_rng(check_int(seed, "seed", 0))
    per_class = check_int(per_class, "per_class", 2)
    ones = rng.normal([0.8, 0.6], 1.0, (per_class, 2))
    zeros = rng.normal([-0.8, -0.6], 1.0, (per_class, 2))
    points = np.concatenate([ones, zeros])
    y = np.repeat([1, 0], per_class)
    forget = np.sort(np.argsort(-ones[:, 0])[: check_int(n_forget, "n_forget", 1)])
    return {"x": np.concatenate([points, np.ones((2 * per_class, 1))], axis=1), "y": y, "forget": forget,
            "retain": np.setdiff1d(np.arange(2 * per_class), forget)}


def race_metrics(theta, method, ctx) -> dict:
    """What :func:`race` records: the parameters, their distance from the reference, the mean
    ``log pi`` of the forget points, the share of retain points still classified right and
    their mean negative log-likelihood ``-log pi(y|x)``.

    The retain NLL shows what the accuracy hides: a wrong answer given with certainty costs
    GA's runaway parameters a loss that grows with them (1174 nats after the page's 1000 steps),
    while NPO's stay within a few nats of the reference's 0.57 (2.6)."""
    lp = logistic_log_probs(theta, ctx["retain_x"])
    right = jnp.mean(((lp[:, 1] > lp[:, 0]) == (ctx["retain_y"] == 1)).astype(theta.dtype))
    return {"theta": theta, "distance": engine.param_distance(theta, ctx["theta_ref"]),
            "forget_logp": jnp.mean(take_label(logistic_log_probs(theta, ctx["forget_x"]), ctx["forget_y"])),
            "retain_accuracy": right, "retain_nll": -jnp.mean(take_label(lp, ctx["retain_y"]))}


def label_of(method: Method | str) -> str:
    """A run's label: the registered name of ``method``'s components, with its beta if it
    reads one (``"GA"``, ``"NPO beta=1"``); ``"custom"`` for a method of your own."""
    method = as_method(method)
    name = next((n for n, m in METHODS.items() if dict(m.weights) == dict(method.weights)), "custom")
    return f"{name} beta={float(method.beta):g}" if method.uses("beta") else name


def race(data: dict, methods: Sequence[Method | str], *, eta: float, steps: int, every: int) -> dict[str, np.ndarray]:
    """Fit the reference on every point, then unlearn the forget points with each method.

    Full-batch gradient descent with step ``eta`` on each method's loss, every method in one
    engine call, float64.

    Returns:
      ``labels (C,)`` (:func:`label_of`); ``theta_ref (3,)``; ``steps (E,)``; ``theta (C, E, 3)``,
      ``distance (C, E)``,
      ``forget_logp (C, E)``, ``retain_accuracy (C, E)``, ``retain_nll (C, E)`` (mean
      ``-log pi(y|x)`` over the retain points); ``diverged_step (C,)`` (-1 if never);
      ``predicted_ga_rate ()``, GA's asymptotic speed ``eta ||mean_i s_i x_i||`` (``s_i = 2 y_i - 1``).
    Raises:
      ValueError: for a bad argument, or ``data`` whose classes are linearly separable (the
        maximum-likelihood fit does not exist).
    """
    check_positive(eta, "eta")
    methods = as_methods(methods)
    x, y, f, r = data["x"], data["y"], data["forget"], data["retain"]
    with jax.enable_x64(True):
        fit = engine.fit_logistic(x, y, np.ones(len(y)), solver="newton", steps=30)
        if not float(fit.loss) > SEPARABLE_LOSS:
            raise ValueError(f"data's two classes are linearly separable (the reference fit's mean NLL is "
                             f"{float(fit.loss):.1e}): its parameters run off to infinity, so there is no reference "
                             "model to unlearn from; draw overlapping classes (e.g. another seed of blobs)")
        theta_ref = fit.theta
        batch = binary_batch(theta_ref, jnp.asarray(x[f]), jnp.asarray(y[f]))
        context = {"theta_ref": theta_ref, "forget_x": jnp.asarray(x[f]), "forget_y": jnp.asarray(y[f]),
                   "retain_x": jnp.asarray(x[r]), "retain_y": jnp.asarray(y[r])}
        runs = engine.unlearn(
            BINARY_INPUTS, methods, SGD, theta_ref, batch, engine.Schedule.every(every, steps), race_metrics,
            context=context, hyperparams={"learning_rate": [float(eta)] * len(methods)},
        )  # fmt: skip
    signs = 2.0 * y[f] - 1.0
    out = {k: v[0] for k, v in runs.items() if k != "steps"}
    out.update(labels=np.array([label_of(m) for m in methods]), theta_ref=np.asarray(theta_ref), steps=runs["steps"],
               predicted_ga_rate=np.float64(eta * np.linalg.norm(np.mean(signs[:, None] * x[f], axis=0))))
    return out


def crossing_times(*, seed: int, n_f: int, d: int, betas: Sequence[float], eta: float, steps: int,
                   distances: Sequence[float]) -> dict[str, np.ndarray]:
    """Theorem 2 in numbers: the first step at which ``||b|| = ||X (theta - theta_init)||``
    reaches each distance, under GA and NPO at each beta, simulated and predicted.

    Returns:
      ``labels (R,)``, ``distances (K,)``, ``measured (R, K)`` (-1: not within ``steps``),
      ``predicted (R, K)`` (:func:`theory.theorem2.predicted_time_to_distance`), ``steps ()``.
    """
    fs = make_forget_set(jax.random.key(check_int(seed, "seed", 0)), n_f=n_f, d=d)
    methods = thm2_methods(betas)
    runs = gd_divergence(fs, methods, eta=eta, steps=steps, distances=distances)
    predicted = np.stack([t2.predicted_time_to_distance(fs.x, fs.y, fs.theta_init, distances, eta=eta, method=m)
                          for m in methods])
    labels = ["GA"] + [f"NPO beta={b:g}" for b in betas]
    return {"labels": np.array(labels), "distances": np.asarray(distances, np.float64), "measured": runs["hit_step"],
            "predicted": predicted, "steps": np.int64(steps)}


def lm_collapse(config: dict, progress=lambda msg: None) -> dict[str, np.ndarray]:
    """Train a small transformer on TOFU in miniature, then unlearn a forget split with each
    method (AdamW, minibatches of forget and retain questions), recording TOFU's model utility
    and the forget answers' probability, and the greedy answers at the end.

    ``config``: the ``lm`` entry of :func:`~.config.tutorial_config`.

    Returns:
      ``methods (C,)``, ``steps (E,)``, ``model_utility (C, E)``, ``forget_probability (C, E)``,
      ``param_distance (C, E)``, ``train_loss ()`` (the last training batch's loss),
      ``questions (G,)``, ``truths (G,)``, ``answers (C, G)``: greedy answers to the first
      ``greedy_cap`` forget questions after the last step, ``reference_answers (G,)``: before
      unlearning.
    """
    corpus = tofu.make_corpus(tofu.TofuConfig(**config["corpus"]))
    model = tofu_lm.model_config(corpus, **config["model"])
    data = corpus.encode_training(corpus.training_set(), length=model.context)
    progress(f"training a {model.layers}-layer transformer on {data.tokens.shape[0]} questions")
    reference, losses = tofu_lm.train_qa_model(jax.random.key(0), model, data, config["train"])
    split = int(config["split"])
    batch = unlearn.unlearning_data(corpus, reference, split)
    sets = scoring.eval_sets(corpus, split, cap=config["eval_cap"], greedy_cap=config["greedy_cap"])
    context = scoring.eval_context(corpus, sets, reference)
    methods = [get_method(name, beta=float(beta)) for name, beta in config["methods"]]
    names = [label_of(m) for m in methods]
    steps = int(config["steps"])
    optimizer = warmup_decay_adamw(int(config["warmup"]), steps, weight_decay=float(config["weight_decay"]))
    progress(f"unlearning {len(batch['forget_tokens'])} forget questions with {', '.join(names)}")
    runs = engine.unlearn(
        tf.SEQUENCE_INPUTS, methods, optimizer, reference, batch, engine.Schedule.every(config["every"], steps),
        scoring.tofu_metrics, context=context,
        hyperparams={"learning_rate": [config["learning_rate"]] * len(names)},
        batches=engine.minibatches(forget=config["batch_size"], retain=config["batch_size"]),
    )  # fmt: skip
    records = jax.tree.map(lambda v: v[0], {k: v for k, v in runs.items() if k not in engine.RESERVED})
    # Forget quality needs a retrained model (the tofu_mini experiment has one); here the
    # reference's own truth ratios (step 0) stand in, and only utility and probabilities are kept.
    own = np.exp(records["forget"]["log_truth_ratio"][0, 0].astype(np.float64))
    summary = unlearn.summarize(records, corpus, sets, own)
    end = corpus.tokenizer.end

    def decoded(greedy):
        rows = scoring.answers_after_prompts(greedy, context["greedy"]["forget_greedy"]["prompt"], end)
        return [corpus.tokenizer.decode(without_end(a, end)) for a in rows]

    answers = [decoded(records["greedy"]["forget_greedy"][c, -1]) for c in range(len(names))]
    return {
        "methods": np.array(names), "steps": runs["steps"], "train_loss": np.float64(losses[-1]),
        "model_utility": summary["model_utility"], "forget_probability": summary["forget_probability"],
        "param_distance": summary["param_distance"],
        "questions": np.array([q.question for q in sets.forget_greedy]),
        "truths": np.array([q.answer for q in sets.forget_greedy]), "answers": np.array(answers),
        "reference_answers": np.array(decoded(records["greedy"]["forget_greedy"][0, 0])),
    }  # fmt: skip


def run_tutorial(config: dict, progress=lambda msg: None, folder: Optional[Path] = None) -> dict:
    """Every step of the tutorial (:mod:`module docstring <synthetic.worlds.tutorial.run>`).

    Returns each step's arrays under its name: ``curves`` (:func:`objective_curves`), ``race``
    (:func:`race` of GA and NPO on :func:`blobs`, with the points), ``thm2``
    (:func:`crossing_times`), ``fig4`` (the ``fig4`` experiment's results), ``lm``
    (:func:`lm_collapse`); and ``seconds`` per step.
    """
    seconds, out = {}, {}
    t = time.perf_counter()
    c = config["curves"]
    out["curves"] = objective_curves(c["betas"], log_pi_min=c["log_pi_min"], points=c["points"], ref_p=c["ref_p"])
    r = config["race"]
    progress(f"section 3: GA and NPO on {r['n_forget']} forget points, {r['steps']} steps")
    data = blobs(r["seed"], r["per_class"], r["n_forget"])
    methods = [get_method("GA"), get_method("NPO", beta=r["beta"])]
    out["race"] = {**race(data, methods, eta=r["eta"], steps=r["steps"], every=r["every"]),
                   "x": data["x"], "y": data["y"], "forget": data["forget"]}
    seconds["race"] = time.perf_counter() - t

    t = time.perf_counter()
    progress(f"section 4: Theorem 2's first-passage times, {config['thm2']['steps']} steps")
    out["thm2"] = crossing_times(**config["thm2"])
    seconds["thm2"] = time.perf_counter() - t

    t = time.perf_counter()
    progress("section 5: figure 4 (one seed)")
    with jax.enable_x64(True):
        out["fig4"] = run_fig4(config["fig4"])
    seconds["fig4"] = time.perf_counter() - t

    t = time.perf_counter()
    out["lm"] = lm_collapse(config["lm"], lambda msg: progress(f"section 6: {msg}"))
    seconds["lm"] = time.perf_counter() - t
    out["seconds"] = {k: np.float64(v) for k, v in seconds.items()}
    return out
