"""Experiment ``thm2``: Theorem 2 in numbers, with the section-2.1 softmax toy.

One forget set in the theorem's regime (``n_f = 32`` orthogonal rows in ``d = 64``, norms in
[0.5, 1.5], ``||theta_init|| = 1``) and two outside it (the same norms and labels with a
shared component of weight ``rho = 0.9``; ``n_f = 32 > d = 16``). On each, GA and NPO at
``beta in {0.1, 0.5, 1, 2}`` run ``10^6`` gradient-descent steps (``--quick``: ``10^4``) with
``eta = 1``, the largest step Theorem 2 allows for NPO, in two independent implementations:

1. in parameter space, through the engine (:func:`synthetic.engine.unlearn`) with the binary
   logistic model's loss inputs and ``optax.sgd``; a tracker follows ``b = X (theta -
   theta_init)`` at *every* step for the first time ``||b|| >= D`` and the running extremes
   of Theorem 2's sandwich ratios;
2. as the recursion on ``b`` of appendix A.2 (:data:`RECURSION`), which never reads ``theta``:
   ``b <- b - eta0 Gamma (w * s * (1 - pi))`` with ``Gamma = X X^T``, ``s = 2y - 1``, ``w = 1`` (GA)
   or NPO's weight ``W``, ``eta0 = eta / n_f``. It is the engine's tracker of each run, advanced
   in lockstep with the optimizer (one loop, two computations), and at every step it follows
   ``||b||`` for the first time it reaches each distance ``D`` and the running extremes of
   Theorem 2's sandwich ratios.

Both record at log-spaced steps. The section-2.1 toy (:func:`softmax_toy`) runs GA and NPO on
a K-class linear softmax through the same engine. Predictions come from :mod:`theory.theorem2`.
Run inside ``jax.enable_x64(True)`` (the registry does): the comparisons are at 1e-8.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from synthetic import engine
from synthetic.worlds.thm2.data import ForgetSet, make_forget_set
from synthetic.worlds.thm2.config import SETTINGS
from synthetic.models.logistic import BINARY_INPUTS, SOFTMAX_INPUTS, binary_batch, softmax_log_probs, take_label
from synthetic.optim import SGD
from theory import objectives as obj
from theory import theorem2 as t2
from theory.methods import Method, as_methods, get_method, method_loss
from theory.validate import check_int, check_positive

__all__ = [
    "thm2_methods",
    "power_of_two_distances",
    "gd_divergence",
    "RECURSION",
    "softmax_toy",
    "run_thm2",
]


def thm2_methods(betas: Sequence[float]) -> list[Method]:
    """``[GA, NPO(beta_1), NPO(beta_2), ...]`` from the method registry."""
    return [get_method("GA")] + [get_method("NPO", beta=float(b)) for b in betas]


def power_of_two_distances(x, *, eta: float, steps: int) -> np.ndarray:
    """``1, 2, 4, ...`` up to a bound on ``||b(steps)||`` (``2 eta0 steps ||Gamma||_2 sqrt(n_f)``,
    from ``w <= 2`` and ``|s (1 - pi)| <= 1``)."""
    x = np.asarray(x, np.float64)
    n_f = x.shape[0]
    bound = 2.0 * (eta / n_f) * steps * np.linalg.norm(x @ x.T, 2) * math.sqrt(n_f)
    return 2.0 ** np.arange(0, max(int(np.ceil(np.log2(max(bound, 1.0)))), 0) + 1)


def _check_methods(methods) -> tuple[list[Method], list[str]]:
    """The methods (:class:`Method` s or registered names, each GA or NPO alone) and their laws."""
    methods = as_methods(methods)
    laws = []
    for k, m in enumerate(methods):
        try:
            laws.append(t2.law_of(m.validate()))
        except ValueError as err:
            raise ValueError(f"methods[{k}]: {err}") from None
    return methods, laws


MAX_REACH = 1e150
"""The largest a-priori bound on ``||b||`` and ``||theta - theta_init||`` :func:`gd_divergence`
accepts: their squares (``||b||^2``, ``delta^T X^T X delta``) must stay far below float64's
largest number, 1.8e308."""


def _reach(x, *, eta: float, steps: int) -> float:
    """An upper bound on ``||delta||``, ``||b|| = ||X delta||`` and ``||X^T X delta||`` over
    ``steps`` steps, ``delta = theta - theta_init``: ``2 eta0 steps sqrt(n_f) max(1, ||X||_2)^3``
    (each step moves ``delta`` by ``eta0 X^T v`` with ``|v_i| = |w s (1 - pi)| <= 2``)."""
    x = np.asarray(x, np.float64)
    with np.errstate(over="ignore"):
        return float(2.0 * (eta / x.shape[0]) * steps * math.sqrt(x.shape[0]) * max(1.0, np.linalg.norm(x, 2)) ** 3)


# --------------------------------------------------------------------------- parameter space


def _divergence_metrics(theta, method, ctx):
    delta = theta - ctx["theta_init"]
    return {
        "b_theta": ctx["x"] @ delta,
        "xtx_norm": jnp.sqrt(delta @ (ctx["xtx"] @ delta)),
        "theta_shift": jnp.linalg.norm(delta),
        "logp": BINARY_INPUTS.compute(theta, ctx["batch"], {"forget_logp"})["forget_logp"],
        "loss": method_loss(method, BINARY_INPUTS.compute(theta, ctx["batch"], method.needs)),
    }


def _b_step(b, gram, s, z0, ref_logp, is_ga, beta, eta0):
    """One step of appendix A.2's recursion: ``b - eta0 Gamma (w * s * (1 - pi))``; no theta."""
    margin = s * (z0 + b)
    logp = jax.nn.log_sigmoid(margin)
    w = jnp.where(is_ga, 1.0, obj.npo_weight(logp, ref_logp, beta=beta))
    return b - eta0 * (gram @ (w * s * jax.nn.sigmoid(-margin)))


def _recursion_init(theta, method, ctx):
    inf = jnp.asarray(jnp.inf, theta.dtype)
    return {
        "b": jnp.zeros(ctx["x"].shape[0], theta.dtype),
        "linear_extremes": jnp.stack([inf, -inf]),
        "log_extremes": jnp.stack([inf, -inf]),
        "hit_step": jnp.full(ctx["distances"].shape, -1, jnp.int32),
    }


def _recursion_update(state, theta, step, method, ctx):
    """Advance the recursion one step (it never reads ``theta``), then the running extremes of
    Theorem 2's ratios and the first passage of each distance ``D``."""
    x, s, eta = ctx["x"], ctx["batch"]["forget_s"], ctx["eta"]
    n_f = x.shape[0]
    beta = method.beta
    b = _b_step(state["b"], ctx["gram"], s, ctx["z0"], ctx["batch"]["forget_ref_logp"], method.weight("ga") != 0,
                beta, eta / n_f)
    root_n = jnp.sqrt(jnp.asarray(n_f, b.dtype))
    t = step.astype(b.dtype)
    nb = jnp.sqrt(jnp.sum(b * b))
    linear = nb * root_n / (eta * t)
    u = beta * nb / root_n
    log_expm1 = jnp.where(u > 0, u + jnp.log(-jnp.expm1(-jnp.where(u > 0, u, 1.0))), -jnp.inf)
    log_c = log_expm1 + jnp.log(n_f / (eta * t))
    lin, lg, hit = state["linear_extremes"], state["log_extremes"], state["hit_step"]
    return {
        "b": b,
        "linear_extremes": jnp.stack([jnp.minimum(lin[0], linear), jnp.maximum(lin[1], linear)]),
        "log_extremes": jnp.stack([jnp.minimum(lg[0], log_c), jnp.maximum(lg[1], log_c)]),
        "hit_step": jnp.where((nb >= ctx["distances"]) & (hit < 0), step, hit),
    }


RECURSION = engine.Tracker(
    init=_recursion_init,
    update=_recursion_update,
    record=lambda state: {"b": state["b"]},
    final=lambda state: {k: v for k, v in state.items() if k != "b"},
)
"""Appendix A.2's recursion on ``b``, advanced in lockstep with each run: ``b`` is recorded at
every record step; at every step it updates ``min``/``max`` of ``||b|| sqrt(n_f) / (eta t)``
(GA's form), of ``log(n_f / (eta t) expm1(beta ||b|| / sqrt(n_f)))`` (NPO's form) and the first
step with ``||b|| >= D`` for each distance ``D``."""


def gd_divergence(
    forget_set: ForgetSet | Sequence[ForgetSet],
    methods: Sequence[Method],
    *,
    eta: float,
    steps: int,
    records_per_decade: float = 20,
    distances: Optional[Sequence[float]] = None,
    progress: Optional[Callable[[str], None]] = None,
) -> dict[str, np.ndarray] | list[dict[str, np.ndarray]]:
    """Gradient descent on the mean forget loss of each method, in two implementations.

    Runs every method (GA or NPO alone; see :func:`thm2_methods`) for ``steps`` steps of size
    ``eta`` from ``forget_set.theta_init`` (also the reference ``pi_ref``), float64: (1) in
    parameter space through the engine, ``theta <- theta - eta grad L`` with ``jax.grad`` of
    the method's loss; (2) as the recursion of appendix A.2 (:data:`RECURSION`), which never
    reads ``theta``. Several forget sets (same ``n_f``) run as the seeds of one engine call:
    one compiled program, the inputs of smaller ``d`` padded with zero columns (which leave
    every quantity unchanged: their coordinates of ``theta`` get zero gradient).

    Args:
      forget_set: a :class:`~synthetic.worlds.thm2.data.ForgetSet` (any ``n_f``, ``d``: the
        recursion is exact outside the theorem's assumptions too), or a list of them.
      methods: ``R`` methods, each GA or NPO alone.
      eta: step size, > 0 (Theorem 2 takes ``eta <= 1`` for NPO).
      steps: number of steps, >= 1.
      records_per_decade: record density (:func:`synthetic.engine.log_spaced_steps`).
      distances: the ``D`` of the first-passage times; default :func:`power_of_two_distances`
        of each set.
      progress: called with the time left while the runs go (see :func:`synthetic.engine.unlearn`).
    Returns:
      For one set (a list of these for a list): ``steps (E,)`` record steps from 0; ``b (R, E,
      n_f)`` from the recursion; ``b_theta (R, E, n_f)`` ``= X (theta - theta_init)`` from
      parameter space; ``xtx_norm (R, E)`` ``= sqrt(delta^T (X^T X) delta)``, ``delta = theta -
      theta_init``; ``theta_shift (R, E)`` ``= ||delta||_2``; ``logp (R, E, n_f)``
      ``log pi_theta(y_i|x_i)`` and ``loss (R, E)`` the objective, both from parameter space;
      ``distances (K,)`` and ``hit_step (R, K)``: the first step with ``||b|| >= D`` (-1 if
      never); ``linear_extremes (R, 2)``: min and max over every step ``1..steps`` of
      ``||b|| sqrt(n_f) / (eta t)``; ``log_extremes (R, 2)``: min and max of
      ``log(n_f / (eta t) expm1(beta ||b|| / sqrt(n_f)))``; ``diverged_step (R,)`` (-1 if never);
      ``law (R,)`` ("ga" or "npo"); ``beta (R,)``; ``eta``.
    Raises:
      ValueError: for a bad argument, and for an ``eta`` so large that the run could overflow
        float64: when the a-priori bound ``2 (eta / n_f) steps sqrt(n_f) max(1, ||X||_2)^3`` on
        ``||b||`` and ``||theta - theta_init||`` exceeds :data:`MAX_REACH` (1e150), since the
        squares of these norms would no longer be finite. Such an ``eta`` is refused before any
        work rather than returning infinite or NaN numbers (the engine would flag them in
        ``diverged_step``, but the tracker's first passages and extremes would be meaningless).
    """
    single = isinstance(forget_set, ForgetSet)
    sets = [forget_set] if single else list(forget_set)
    for k, fs in enumerate(sets):
        if not isinstance(fs, ForgetSet):
            raise ValueError(f"forget_set must be a ForgetSet (see make_forget_set) or a list of them, "
                             f"got {type(fs).__name__}" + ("" if single else f" at index {k}"))
    if not sets or len({fs.n_f for fs in sets}) != 1:
        raise ValueError(f"forget sets run together must share n_f, got {[fs.n_f for fs in sets]}")
    check_positive(eta, "eta")
    steps = check_int(steps, "steps")
    methods, laws = _check_methods(methods)
    for k, fs in enumerate(sets):
        per_eta = _reach(fs.x, eta=1.0, steps=steps)  # the bound is linear in eta
        with np.errstate(over="ignore"):
            reach = eta * per_eta
        if not reach <= MAX_REACH:
            where = "" if single else f" (forget set {k})"
            raise ValueError(f"eta={eta!r} is too large for {steps} steps{where}: ||b|| could reach {reach:.3g}, "
                             f"beyond {MAX_REACH:.0e}, where its square overflows float64; "
                             f"eta must be <= {MAX_REACH / per_eta:.3g}")
    schedule = engine.Schedule.log_spaced(steps, records_per_decade)
    all_distances = []
    for fs in sets:
        dist = power_of_two_distances(fs.x, eta=eta, steps=steps) if distances is None else distances
        dist = np.asarray(dist, np.float64)
        if dist.ndim != 1 or dist.size == 0 or not np.all(np.isfinite(dist) & (dist > 0)):
            raise ValueError(f"distances must be a non-empty 1-D sequence of numbers > 0, got {dist!r}")
        all_distances.append(dist)
    d, k = max(fs.d for fs in sets), max(dist.size for dist in all_distances)

    with jax.enable_x64(True):
        # Pad to a common d (zero columns) and a common number of distances (+inf: never reached).
        x = jnp.asarray(np.stack([np.pad(fs.x, ((0, 0), (0, d - fs.d))) for fs in sets]))
        theta_init = jnp.asarray(np.stack([np.pad(fs.theta_init, (0, d - fs.d)) for fs in sets]))
        dist = jnp.asarray(np.stack([np.pad(v, (0, k - v.size), constant_values=np.inf) for v in all_distances]))
        y = jnp.asarray(np.stack([fs.y for fs in sets]), jnp.int32)
        batch = jax.vmap(binary_batch)(theta_init, x, y)
        ctx = {"x": x, "theta_init": theta_init, "xtx": jnp.swapaxes(x, 1, 2) @ x, "gram": x @ jnp.swapaxes(x, 1, 2),
               "z0": jnp.einsum("snd,sd->sn", x, theta_init), "batch": batch, "distances": dist,
               "eta": jnp.full(len(sets), float(eta))}
        run = engine.unlearn(
            BINARY_INPUTS, methods, SGD, theta_init, batch, schedule, _divergence_metrics, context=ctx,
            hyperparams={"learning_rate": [float(eta)] * len(methods)}, track=RECURSION, seeds=len(sets),
            per_seed=("params", "data", "context"), progress=progress,
        )  # fmt: skip
    outs = []
    for s, dist in enumerate(all_distances):
        out = {name: value[s] for name, value in run.items() if name != "steps"}
        out.update(
            steps=run["steps"],
            hit_step=out["hit_step"][:, : dist.size],
            distances=dist,
            law=np.array(laws),
            beta=np.array([float(m.beta) for m in methods]),
            eta=np.float64(eta),
        )
        outs.append(out)
    return outs[0] if single else outs


# --------------------------------------------------------------------------- section 2.1 toy


def _toy_metrics(theta, method, ctx):
    batch = ctx["batch"]
    need = method.needs

    def example_grad(x, y, ref):
        one = {"forget_x": x[None], "forget_y": y[None], "forget_ref": ref[None]}
        return jax.grad(lambda th: method_loss(method, SOFTMAX_INPUTS.compute(th, one, need)))(theta)

    g = jax.vmap(example_grad)(batch["forget_x"], batch["forget_y"], batch["forget_ref"])  # (n_f, K, d)
    log_probs = softmax_log_probs(theta, batch["forget_x"])
    return {
        "grad_norm": jnp.sqrt(jnp.sum(g * g, axis=(-2, -1))),
        "logp": take_label(log_probs, batch["forget_y"]),
        "probs": jnp.exp(log_probs),
    }


def softmax_toy(
    key: jax.Array,
    methods: Sequence[Method],
    *,
    n_classes: int = 4,
    d: int = 16,
    n_f: int = 8,
    eta: float = 1.0,
    steps: int = 10**5,
    records_per_decade: float = 20,
    ref_margin: float = 2.0,
    unlearned_below: float = 0.01,
) -> dict[str, np.ndarray]:
    """Section 2.1: GA and NPO on a K-class linear softmax ``pi_theta(.|x) = softmax(theta x)``.

    Forget inputs are orthonormal rows; labels uniform over the classes; the reference
    ``theta_ref = ref_margin sum_i e_{y_i} x_i^T`` gives each forget label a logit margin of
    ``ref_margin`` (``pi_ref(y_i|x_i) = e^m / (e^m + K - 1)``). Gradient descent with step ``eta``
    on the mean loss of each method from ``theta_ref``, through the engine.

    ``grad_theta log pi(y|x) = (e_y - p) x^T``, of norm ``||e_y - p|| ||x||``: once ``p_y ~ 0`` it
    stays of constant size (``sqrt(K / (K - 1)) ||x||`` when the other classes share the mass
    evenly, as they do here by symmetry), while NPO multiplies it by ``W -> 0``.

    Returns:
      ``steps (E,)``; ``grad_norm (R, E, n_f)``: ``||grad_theta l_i||_F`` of each example's
      loss; ``logp (R, E, n_f)``: ``log pi_theta(y_i|x_i)``; ``ref_logp (n_f,)``;
      ``ga_grad_norm (R, E, n_f)``: ``||e_y - p|| ||x_i||``, the GA gradient norm at the same
      parameters; ``unlearned_grad_norm (R, E)``: mean ``grad_norm`` over examples with
      ``pi_theta(y_i|x_i) <= unlearned_below`` (NaN where there is none); ``ga_limit``:
      ``sqrt(K / (K - 1))`` (unit rows); ``n_classes``; ``unlearned_below``; ``law, beta (R,)``.
    """
    n_classes = check_int(n_classes, "n_classes", 2)
    d = check_int(d, "d")
    n_f = check_int(n_f, "n_f")
    if n_f > d:
        raise ValueError(f"n_f must be <= d = {d} (orthonormal forget inputs), got {n_f}")
    check_positive(eta, "eta")
    check_positive(ref_margin, "ref_margin")
    if not (0.0 <= unlearned_below <= 1.0):
        raise ValueError(f"unlearned_below must lie in [0, 1], got {unlearned_below!r}")
    methods, laws = _check_methods(methods)
    schedule = engine.Schedule.log_spaced(steps, records_per_decade)
    with jax.enable_x64(True):
        k_x, k_y = jax.random.split(key)
        q, r = np.linalg.qr(np.asarray(jax.random.normal(k_x, (d, n_f), jnp.float64)))
        x = (q * np.sign(np.diag(r))).T
        y = np.asarray(jax.random.randint(k_y, (n_f,), 0, n_classes))
        theta_ref = jnp.asarray(ref_margin * np.eye(n_classes)[y].T @ x)
        batch = {"forget_x": jnp.asarray(x), "forget_y": jnp.asarray(y), "forget_ref": softmax_log_probs(theta_ref, jnp.asarray(x))}
        run = engine.unlearn(
            SOFTMAX_INPUTS, methods, SGD, theta_ref, batch, schedule, _toy_metrics, context={"batch": batch},
            hyperparams={"learning_rate": [float(eta)] * len(methods)},
        )  # fmt: skip
        ref_logp = np.asarray(take_label(batch["forget_ref"], batch["forget_y"]))
    gnorm, logp, probs = run["grad_norm"][0], run["logp"][0], run["probs"][0]  # (R, E, ...)
    onehot = np.eye(n_classes)[y]
    ga_norm = np.linalg.norm(onehot - probs, axis=-1) * np.linalg.norm(x, axis=1)
    unlearned = np.exp(logp) <= unlearned_below
    count = unlearned.sum(-1)
    mean = np.where(count > 0, np.sum(np.where(unlearned, gnorm, 0.0), -1) / np.maximum(count, 1), np.nan)
    return {
        "steps": run["steps"],
        "grad_norm": gnorm,
        "logp": logp,
        "ref_logp": ref_logp,
        "ga_grad_norm": ga_norm,
        "unlearned_grad_norm": mean,
        "ga_limit": np.float64(math.sqrt(n_classes / (n_classes - 1))),
        "n_classes": np.int64(n_classes),
        "unlearned_below": np.float64(unlearned_below),
        "law": np.array(laws),
        "beta": np.array([float(m.beta) for m in methods]),
    }


# --------------------------------------------------------------------------- the experiment


def _forget_set_kwargs(config: dict, setting: str) -> dict:
    kwargs = dict(config["forget_set"])
    if setting != "orthogonal":
        kwargs.update(config["outside"][setting])
    return kwargs


def run_thm2(config: dict, progress=lambda msg: None, folder=None) -> dict[str, dict[str, np.ndarray]]:
    """Run the three forget sets and the toy of a :func:`~.config.thm2_config`.

    Returns ``{S: arrays}`` for each ``S`` in :data:`~.config.SETTINGS`, the arrays being every
    key of :func:`gd_divergence` (runs: GA, then NPO at each beta), plus ``method (R,)``;
    ``x, y, theta_init`` (the forget set); the assumption report ``n_f, d, min_eig, max_eig,
    norm_min, norm_max, coherence, coherence_bound, theta_norm, assumptions_hold``; the
    orthogonal-input predictions of :mod:`theory.theorem2` ``pred_distance (R, E)``,
    ``pred_time (R, K)`` (Theorem 2's time to each distance) and ``pred_time_dense`` (the same on
    the finer grid ``dense_distances``), ``ga_rate``, ``npo_slope (R,)`` (NaN for GA),
    ``npo_constants (R, n_f)`` (NaN for GA); ``seconds`` (the three sets' one call). And
    ``{"toy": arrays}``, the section-2.1 toy (see :func:`softmax_toy`).
    """
    key_sets, key_toy = jax.random.split(jax.random.key(config["seed"]))
    methods = thm2_methods(config["betas"])
    names = np.array(["GA"] + ["NPO"] * len(config["betas"]))
    eta, steps = float(config["eta"]), int(config["steps"])
    t0 = time.perf_counter()
    # One key for the three sets: the same norms, labels and theta_init draw.
    sets = [make_forget_set(key_sets, **_forget_set_kwargs(config, setting)) for setting in SETTINGS]
    for setting, fs in zip(SETTINGS, sets):
        progress(
            f"{setting}: n_f={fs.n_f}, d={fs.d}, {len(methods)} runs x {steps:.0e} steps "
            f"({'assumptions hold' if fs.report.holds else 'fails: ' + ', '.join(fs.report.failed())})"
        )
    runs = gd_divergence(sets, methods, eta=eta, steps=steps, records_per_decade=config["records_per_decade"],
                         progress=progress)
    seconds = time.perf_counter() - t0
    progress(f"the {len(SETTINGS)} forget sets in {seconds:.1f}s (one engine call, both implementations, compile included)")
    results = {setting: {**_setting_arrays(fs, run, methods, eta), "method": names, "seconds": np.float64(seconds)}
               for setting, fs, run in zip(SETTINGS, sets, runs)}

    t0 = time.perf_counter()
    toy_cfg = dict(config["toy"])
    toy = softmax_toy(key_toy, methods, **toy_cfg)
    toy["seconds"] = np.float64(time.perf_counter() - t0)
    toy["method"] = names
    results["toy"] = {k: np.asarray(v) for k, v in toy.items()}
    progress(f"softmax toy: {toy_cfg['steps']:.0e} steps in {float(toy['seconds']):.1f}s")
    return results


def _setting_arrays(fs: ForgetSet, run: dict, methods: Sequence[Method], eta: float) -> dict[str, np.ndarray]:
    """One forget set's runs, the set, its assumption report and Theorem 2's predictions for it."""
    rep = fs.report
    out = dict(run)
    out.update(
        x=fs.x, y=fs.y, theta_init=fs.theta_init, n_f=np.int64(rep.n_f), d=np.int64(rep.d),
        min_eig=np.float64(rep.min_eig), max_eig=np.float64(rep.max_eig), norm_min=np.float64(rep.norm_min),
        norm_max=np.float64(rep.norm_max), coherence=np.float64(rep.coherence),
        coherence_bound=np.float64(rep.coherence_bound), theta_norm=np.float64(rep.theta_norm),
        assumptions_hold=np.bool_(rep.holds), ga_rate=np.float64(t2.ga_rate(fs.x, eta=eta)),
    )  # fmt: skip
    dense = 2.0 ** np.arange(0.0, np.log2(run["distances"][-1]) + 1e-9, 1.0 / 16)
    pred_distance, pred_time, pred_dense, slope, constants = [], [], [], [], []
    for m in methods:
        pred_distance.append(t2.predicted_distance(fs.x, fs.y, fs.theta_init, run["steps"], eta=eta, method=m))
        pred_time.append(t2.predicted_time_to_distance(fs.x, fs.y, fs.theta_init, run["distances"], eta=eta, method=m))
        pred_dense.append(t2.predicted_time_to_distance(fs.x, fs.y, fs.theta_init, dense, eta=eta, method=m))
        is_ga = t2.law_of(m) == "ga"
        slope.append(np.nan if is_ga else float(t2.npo_slope(fs.n_f, m.beta)))
        constants.append(np.full(fs.n_f, np.nan) if is_ga else t2.npo_asymptotic_constants(fs.x, fs.y, fs.theta_init, m.beta))
    out.update(pred_distance=np.array(pred_distance), pred_time=np.array(pred_time), dense_distances=dense,
               pred_time_dense=np.array(pred_dense), npo_slope=np.array(slope), npo_constants=np.array(constants))
    return {k: np.asarray(v) for k, v in out.items()}
