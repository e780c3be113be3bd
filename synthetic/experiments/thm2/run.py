"""Theorem 2 in numbers: GA diverges linearly, NPO logarithmically (PAPER.md section 3).

This module owns the *simulated* side of Theorem 2 and of the section-2.1 toy:

* :func:`make_forget_set` draws a forget set in the theorem's regime (``n_f <= d``, row
  norms in ``[b_x, B_x]``, coherence ``max_{i!=j} |<x_i, x_j>|`` from exactly 0 to strongly
  correlated, labels, ``||theta_init|| <= B_theta``) and :func:`check_assumptions` reports
  which of the theorem's assumptions the drawn set meets.
* :func:`gd_divergence` runs full-batch gradient descent on the mean ``L_GA`` or ``L_NPO``
  (the objectives of :mod:`theory.objectives`) of the binary logistic model for up to 10^6
  steps, GA and NPO at several betas in one ``vmap``-ed, jitted call, recorded at
  log-spaced steps, **twice**: in parameter space (``jax.grad`` of the objective) and as the
  recursion on ``b = X (theta - theta_init)`` of appendix A.2, which never sees ``theta``.
* Predictions (below), Lemma 4's closed form and Theorem 2's times to a distance, both
  lambdified from :mod:`theory.symbolic`, and the numpy analysis that compares them with
  the runs (slopes, decade growth, the tightest sandwich constants, fitted Lemma-4 constants).
* :func:`softmax_toy`: the K-class linear softmax of section 2.1.

Derivations (PAPER.md section 3; signs checked by the tests). Write ``s_i = 2 y_i - 1``, the
margin ``m_i = s_i <x_i, theta>``, so ``log pi_theta(y_i|x_i) = log sigma(m_i)`` and
``grad log pi = s_i (1 - pi_i) x_i``. Both objectives have gradient
``(1/n_f) sum_i w_i s_i (1 - pi_i) x_i`` with ``w_i = 1`` (GA) or the NPO weight
``W_i = 2 sigma(beta r_i)`` (eq. 4-5), so gradient descent with step ``eta`` keeps
``theta - theta_init`` in the row space of ``X`` and, with ``eta0 = eta / n_f`` and
``Gamma = X X^T``,

    b  <-  b - eta0 Gamma (w * s * (1 - pi)),      ||theta - theta_init||_{X^T X} = ||b||_2.

For orthogonal rows ``Gamma`` is diagonal and each ``u_i = s_i b_i`` evolves alone:
``u_i <- u_i - eta0 ||x_i||^2 w_i (1 - pi_i)``, decreasing (Lemmas 3-4: ``b_i`` has the
sign of ``-s_i``).

* GA: ``1 - pi_i -> 1``, so ``u_i = -eta0 ||x_i||^2 t + O(1)`` and
  ``||b^(t)|| / t -> eta0 sqrt(sum_i ||x_i||^4)`` (= ``eta n_f^{-1/2} ||x||^2`` for equal norms,
  Theorem 2's ``C n_f^{-1/2} eta t``).
* NPO: with ``m0_i = s_i <x_i, theta_init>``, as ``u_i -> -oo``, ``log pi_i = m0_i + u_i + o(1)``,
  ``r_i -> m0_i + u_i - log sigma(m0_i)`` and ``W_i ~ 2 (1 + e^{m0_i})^beta e^{beta u_i}``, so
  ``u_i' = -C_i eta0 e^{beta u_i}`` with ``C_i = 2 ||x_i||^2 (1 + e^{m0_i})^beta``: Lemma 4's ODE,
  solved by ``u_i = -(1/beta) log(beta C_i eta0 t + 1)``. Hence ``|b_i| = (1/beta) log t + O(1)``
  and ``d ||b|| / d ln t -> sqrt(n_f) / beta``. The neglected factors give relative corrections
  ``O(t^{-1/beta})`` (from ``1 - pi``) and ``O(log t / t)`` (from ``sigma`` vs ``exp``), so the
  closed form is asymptotic and large betas approach it slowly.
* Times to ``||b|| = D`` (Theorem 2, ``thm2.exp_slowdown`` of :mod:`theory.symbolic`): with
  all coordinates moving alike, ``||b|| = D`` means ``|b_i| = D / sqrt(n_f)``, so
  ``T_GA(D) = (D / sqrt(n_f)) / (C eta0)`` with ``C = sqrt(mean_i ||x_i||^4)`` and
  ``T_NPO(D) = (e^{beta D / sqrt(n_f)} - 1) / (beta C eta0)`` with ``C`` the geometric mean of
  the ``C_i``.

Everything here runs in float64 (each public function enables it for its own duration).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from theory import objectives as obj
from theory.methods import WEIGHT_FIELDS, Method, get_method, validate_method
from theory.validate import check_int, check_positive

__all__ = [
    "AssumptionReport",
    "ForgetSet",
    "check_assumptions",
    "make_forget_set",
    "thm2_methods",
    "log_spaced_steps",
    "power_of_two_distances",
    "gd_divergence",
    "ga_rate",
    "npo_slope",
    "npo_asymptotic_constants",
    "lemma4_distance",
    "predicted_distance",
    "predicted_time_to_distance",
    "log_slope",
    "decade_growth_ratio",
    "sandwich_constants",
    "fit_lemma4_constants",
    "max_rel_error",
    "softmax_toy",
]


# --------------------------------------------------------------------------- validation


def _check_range(value, name: str, lo: float, hi: float, *, hi_open: bool = False) -> float:
    v = float(value)
    ok = math.isfinite(v) and lo <= v and (v < hi if hi_open else v <= hi)
    if not ok:
        bracket = ")" if hi_open else "]"
        raise ValueError(f"{name} must lie in [{lo:g}, {hi:g}{bracket}, got {value!r}")
    return v


def _float64(fn):
    """Run ``fn`` with float64 enabled in JAX (a scoped setting, as :mod:`theory.symbolic`)."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with jax.enable_x64(True):
            return fn(*args, **kwargs)

    return wrapped


# --------------------------------------------------------------------------- forget sets


@dataclasses.dataclass(frozen=True)
class AssumptionReport:
    """Which assumptions of Theorem 2 a forget set meets (PAPER.md section 3, "Setting").

    Attributes:
      n_f, d: forget-set size and input dimension; ``high_dim`` is ``n_f <= d``.
      min_eig, max_eig: extreme eigenvalues of ``X X^T``; ``invertible`` is
        ``min_eig > eig_rtol * max_eig``.
      norm_min, norm_max: extreme row norms; ``norms_ok`` is both within ``[b_x, B_x]``.
      coherence: ``max_{i!=j} |<x_i, x_j>|`` (0 for a single row); ``coherence_bound`` is
        ``C0 / n_f`` and ``coherence_ok`` is ``coherence <= coherence_bound``.
      theta_norm: ``||theta_init||``; ``theta_ok`` is ``theta_norm <= B_theta``.
      b_x, B_x, B_theta, C0: the constants the set was checked against.
    """

    n_f: int
    d: int
    high_dim: bool
    min_eig: float
    max_eig: float
    invertible: bool
    norm_min: float
    norm_max: float
    norms_ok: bool
    coherence: float
    coherence_bound: float
    coherence_ok: bool
    theta_norm: float
    theta_ok: bool
    b_x: float
    B_x: float
    B_theta: float
    C0: float

    @property
    def holds(self) -> bool:
        """All of Theorem 2's assumptions hold."""
        return not self.failed()

    def failed(self) -> list[str]:
        """Names of the assumptions that fail, in the order of the theorem's setting."""
        checks = {
            "n_f <= d": self.high_dim,
            "X X^T invertible": self.invertible,
            "||x_i|| in [b_x, B_x]": self.norms_ok,
            "coherence <= C0/n_f": self.coherence_ok,
            "||theta_init|| <= B_theta": self.theta_ok,
        }
        return [name for name, ok in checks.items() if not ok]

    def summary(self) -> str:
        """One line: every assumption with its number and verdict."""
        mark = {True: "ok", False: "FAILS"}
        return (
            f"n_f={self.n_f} <= d={self.d}: {mark[self.high_dim]}; "
            f"min eig X X^T = {self.min_eig:.3g}: {mark[self.invertible]}; "
            f"||x_i|| in [{self.norm_min:.3g}, {self.norm_max:.3g}] vs [{self.b_x:g}, {self.B_x:g}]: "
            f"{mark[self.norms_ok]}; coherence {self.coherence:.3g} vs C0/n_f = "
            f"{self.coherence_bound:.3g}: {mark[self.coherence_ok]}; ||theta_init|| = "
            f"{self.theta_norm:.3g} <= {self.B_theta:g}: {mark[self.theta_ok]}"
        )


@dataclasses.dataclass(frozen=True)
class ForgetSet:
    """A forget set for the logistic model of Theorem 2 and its assumption report.

    Attributes:
      x: inputs ``X``, ``(n_f, d)`` float64.
      y: labels in {0, 1}, ``(n_f,)`` int.
      theta_init: the reference parameters (unlearning starts there), ``(d,)`` float64.
      report: :class:`AssumptionReport` of the set.
    """

    x: np.ndarray
    y: np.ndarray
    theta_init: np.ndarray
    report: AssumptionReport

    @property
    def n_f(self) -> int:
        return int(self.x.shape[0])

    @property
    def d(self) -> int:
        return int(self.x.shape[1])

    @property
    def signs(self) -> np.ndarray:
        """``s = 2 y - 1`` in {-1, +1}, float64."""
        return 2.0 * self.y.astype(np.float64) - 1.0

    @property
    def gram(self) -> np.ndarray:
        """``Gamma = X X^T``, ``(n_f, n_f)``."""
        return self.x @ self.x.T


def check_assumptions(
    x, theta_init, *, b_x: float, B_x: float, B_theta: float, C0: float = 1.0, eig_rtol: float = 1e-10
) -> AssumptionReport:
    """Check Theorem 2's assumptions on inputs ``x (n_f, d)`` and ``theta_init (d,)``.

    ``X X^T`` counts as invertible when its smallest eigenvalue exceeds ``eig_rtol`` times its
    largest (rounding makes a singular Gram matrix's smallest eigenvalue ~1e-16, not 0).
    """
    x = np.asarray(x, np.float64)
    theta_init = np.asarray(theta_init, np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"x must have shape (n_f, d) with n_f >= 1, got shape {x.shape}")
    if theta_init.shape != (x.shape[1],):
        raise ValueError(f"theta_init must have shape ({x.shape[1]},), got shape {theta_init.shape}")
    b_x, B_x, B_theta, C0 = _check_constants(b_x, B_x, B_theta, C0)
    n_f, d = x.shape
    gram = x @ x.T
    eig = np.linalg.eigvalsh(gram)
    norms = np.sqrt(np.diag(gram))
    off = np.abs(gram - np.diag(np.diag(gram)))
    coherence = float(off.max()) if n_f > 1 else 0.0
    slack = 1e-12  # rounding of norms drawn exactly at b_x or B_x
    theta_norm = float(np.linalg.norm(theta_init))
    return AssumptionReport(
        n_f=n_f,
        d=d,
        high_dim=bool(n_f <= d),
        min_eig=float(eig[0]),
        max_eig=float(eig[-1]),
        invertible=bool(eig[0] > eig_rtol * eig[-1]),
        norm_min=float(norms.min()),
        norm_max=float(norms.max()),
        norms_ok=bool(norms.min() >= b_x * (1 - slack) and norms.max() <= B_x * (1 + slack)),
        coherence=coherence,
        coherence_bound=C0 / n_f,
        coherence_ok=bool(coherence <= C0 / n_f),
        theta_norm=theta_norm,
        theta_ok=bool(theta_norm <= B_theta * (1 + slack)),
        b_x=b_x,
        B_x=B_x,
        B_theta=B_theta,
        C0=C0,
    )


def _check_constants(b_x, B_x, B_theta, C0):
    b_x = float(b_x)
    if not (math.isfinite(b_x) and b_x > 0):
        raise ValueError(f"b_x must be a finite number > 0, got {b_x!r}")
    B_x = float(B_x)
    if not (math.isfinite(B_x) and B_x >= b_x):
        raise ValueError(f"B_x must be finite and >= b_x = {b_x:g}, got {B_x!r}")
    B_theta = float(B_theta)
    if not (math.isfinite(B_theta) and B_theta >= 0):
        raise ValueError(f"B_theta must be a finite number >= 0, got {B_theta!r}")
    C0 = float(C0)
    if not (math.isfinite(C0) and C0 > 0):
        raise ValueError(f"C0 must be a finite number > 0, got {C0!r}")
    return b_x, B_x, B_theta, C0


@_float64
def make_forget_set(
    key: jax.Array,
    *,
    n_f: int = 32,
    d: int = 64,
    b_x: float = 0.5,
    B_x: float = 1.5,
    B_theta: float = 1.0,
    correlation: float = 0.0,
    p_one: float = 0.5,
    C0: float = 1.0,
) -> ForgetSet:
    """Draw a forget set for Theorem 2, from exactly orthogonal to strongly correlated inputs.

    Row norms ``r_i ~ U[b_x, B_x]``. For ``n_f <= d`` the rows have the exact Gram matrix
    ``Gamma_ij = r_i r_j (rho + (1 - rho) delta_ij)`` with ``rho = correlation``: ``X = L Q^T``
    with ``L`` the Cholesky factor of ``Gamma`` and ``Q`` a random ``d x n_f`` matrix with
    orthonormal columns. So ``rho = 0`` gives rows of a random orthogonal matrix, scaled
    (coherence 0 up to rounding), and ``rho > 0`` a shared component (coherence
    ``rho max_{i!=j} r_i r_j``). For ``n_f > d`` (outside the theorem) row directions are
    ``normalise(sqrt(1 - rho) g_i + sqrt(rho) v)`` with ``g_i`` uniform on the sphere and ``v`` one
    shared unit vector. Labels ``y_i ~ Bernoulli(p_one)``; ``theta_init`` is uniform on the
    sphere of radius ``B_theta``.

    Args:
      key: a ``jax.random`` key; the same key gives the same set.
      n_f, d: forget-set size and dimension, >= 1.
      b_x, B_x: row-norm range, ``0 < b_x <= B_x``.
      B_theta: ``||theta_init||``, >= 0.
      correlation: ``rho`` in [0, 1).
      p_one: probability of label 1, in [0, 1].
      C0: the coherence constant the report checks against (``coherence <= C0 / n_f``).
    Returns:
      A :class:`ForgetSet` whose ``report`` says which assumptions hold.
    """
    n_f = check_int(n_f, "n_f")
    d = check_int(d, "d")
    b_x, B_x, B_theta, C0 = _check_constants(b_x, B_x, B_theta, C0)
    rho = _check_range(correlation, "correlation", 0.0, 1.0, hi_open=True)
    p_one = _check_range(p_one, "p_one", 0.0, 1.0)
    k_norm, k_dir, k_shared, k_label, k_theta = jax.random.split(key, 5)
    norms = np.asarray(jax.random.uniform(k_norm, (n_f,), jnp.float64, b_x, B_x))
    if n_f <= d:
        gram = np.outer(norms, norms) * (rho + (1.0 - rho) * np.eye(n_f))
        q, r = np.linalg.qr(np.asarray(jax.random.normal(k_dir, (d, n_f), jnp.float64)))
        q = q * np.sign(np.diag(r))  # a uniformly random frame, not QR's sign convention
        x = np.linalg.cholesky(gram) @ q.T
    else:
        g = np.asarray(jax.random.normal(k_dir, (n_f, d), jnp.float64))
        v = np.asarray(jax.random.normal(k_shared, (d,), jnp.float64))
        g = g / np.linalg.norm(g, axis=1, keepdims=True)
        u = math.sqrt(1.0 - rho) * g + math.sqrt(rho) * (v / np.linalg.norm(v))[None, :]
        x = norms[:, None] * u / np.linalg.norm(u, axis=1, keepdims=True)
    y = np.asarray(jax.random.bernoulli(k_label, p_one, (n_f,))).astype(np.int64)
    t = np.asarray(jax.random.normal(k_theta, (d,), jnp.float64))
    theta_init = B_theta * t / np.linalg.norm(t)
    report = check_assumptions(x, theta_init, b_x=b_x, B_x=B_x, B_theta=B_theta, C0=C0)
    return ForgetSet(x=x, y=y, theta_init=theta_init, report=report)


# --------------------------------------------------------------------------- gradient descent


def thm2_methods(betas: Sequence[float]) -> list[Method]:
    """``[GA, NPO(beta_1), NPO(beta_2), ...]`` from the method registry."""
    return [get_method("GA")] + [get_method("NPO", beta=float(b)) for b in betas]


def log_spaced_steps(steps: int, per_decade: int = 20) -> np.ndarray:
    """Record steps ``0, 1, ..., steps``: every ``round(10^(k / per_decade))`` up to ``steps``.

    Powers of ten are included exactly, and so is ``steps``.
    """
    steps = check_int(steps, "steps")
    per_decade = check_int(per_decade, "records_per_decade")
    k = np.arange(0, int(np.ceil(per_decade * np.log10(steps))) + 1)
    grid = np.round(10.0 ** (k / per_decade)).astype(np.int64)
    return np.unique(np.concatenate([[0], grid[grid <= steps], [steps]]))


def power_of_two_distances(x, *, eta: float, steps: int) -> np.ndarray:
    """``1, 2, 4, ...`` up to a bound on ``||b^(steps)||`` (``2 eta0 steps ||Gamma||_2 sqrt(n_f)``,
    from ``w <= 2`` and ``|s (1 - pi)| <= 1``)."""
    x = np.asarray(x, np.float64)
    n_f = x.shape[0]
    bound = 2.0 * (eta / n_f) * steps * np.linalg.norm(x @ x.T, 2) * math.sqrt(n_f)
    return 2.0 ** np.arange(0, max(int(np.ceil(np.log2(max(bound, 1.0)))), 0) + 1)


def _method_arrays(methods: Sequence[Method]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(methods) == 0:
        raise ValueError("methods must be a non-empty sequence of Method (GA and NPO only)")
    for k, m in enumerate(methods):
        if not isinstance(m, Method):
            raise ValueError(f"methods[{k}] must be a theory.methods.Method, got {type(m).__name__}")
        validate_method(m)
        extra = {f: getattr(m, f) for f in WEIGHT_FIELDS if f not in ("ga", "npo") and getattr(m, f) != 0}
        if extra:
            raise ValueError(
                f"methods[{k}] has weights {extra}: gd_divergence runs GA and NPO weights only (Theorem 2)"
            )
    c_ga = np.array([m.ga for m in methods], np.float64)
    c_npo = np.array([m.npo for m in methods], np.float64)
    beta = np.array([m.beta for m in methods], np.float64)
    return c_ga, c_npo, beta


def _forget_objective(theta, x, s, ref_logp, c_ga, c_npo, beta):
    """``c_ga mean L_GA + c_npo mean L_NPO`` of the logistic model at ``theta`` (one run)."""
    logp = jax.nn.log_sigmoid(s * (x @ theta))
    return c_ga * jnp.mean(obj.ga_loss(logp)) + c_npo * jnp.mean(obj.npo_loss(logp, ref_logp, beta=beta))


def _theta_step(theta, x, s, ref_logp, c_ga, c_npo, beta, eta):
    """One gradient step in parameter space, ``theta - eta grad L`` (``jax.grad``)."""
    return theta - eta * jax.grad(_forget_objective)(theta, x, s, ref_logp, c_ga, c_npo, beta)


def _b_step(b, gram, s, z0, ref_logp, c_ga, c_npo, beta, eta0):
    """One step of appendix A.2's recursion: ``b - eta0 Gamma (w * s * (1 - pi))``; no theta."""
    margin = s * (z0 + b)
    logp = jax.nn.log_sigmoid(margin)
    w = c_ga + c_npo * obj.npo_weight(logp, ref_logp, beta=beta)
    return b - eta0 * (gram @ (w * s * jax.nn.sigmoid(-margin)))


@jax.jit
def _simulate(intervals, x, s, theta_init, c_ga, c_npo, beta, eta, distances):
    """Both implementations for all runs; ``intervals`` are the step counts between records.

    Besides the state at each record, every step updates (from the b-recursion) the running
    extremes of ``||b|| sqrt(n_f) / (eta t)`` and of ``log(n_f/(eta t) expm1(beta ||b|| / sqrt(n_f)))``
    (Theorem 2's GA and NPO sandwich ratios) and the first step at which ``||b|| >= D``.
    """
    n_f = x.shape[0]
    eta0 = eta / n_f
    gram = x @ x.T
    z0 = x @ theta_init
    ref_logp = jax.nn.log_sigmoid(s * z0)
    root_n = jnp.sqrt(jnp.asarray(n_f, x.dtype))
    per_run = (0, None, None, None, 0, 0, 0, None)
    theta_step = jax.vmap(_theta_step, in_axes=per_run)
    b_step = jax.vmap(_b_step, in_axes=(0, None, None, None, None, 0, 0, 0, None))

    def step(i, state):
        theta, b, ext, hit = state
        theta = theta_step(theta, x, s, ref_logp, c_ga, c_npo, beta, eta)
        b = b_step(b, gram, s, z0, ref_logp, c_ga, c_npo, beta, eta0)
        t = (i + 1).astype(x.dtype)
        nb = jnp.sqrt(jnp.sum(b * b, axis=-1))
        linear = nb * root_n / (eta * t)
        u = beta * nb / root_n
        log_expm1 = jnp.where(u > 0, u + jnp.log(-jnp.expm1(-jnp.where(u > 0, u, 1.0))), -jnp.inf)
        log_c = log_expm1 + jnp.log(n_f / (eta * t))
        ext = jnp.stack(
            [
                jnp.minimum(ext[:, 0], linear),
                jnp.maximum(ext[:, 1], linear),
                jnp.minimum(ext[:, 2], log_c),
                jnp.maximum(ext[:, 3], log_c),
            ],
            axis=-1,
        )
        hit = jnp.where((nb[:, None] >= distances[None, :]) & (hit < 0), i + 1, hit)
        return theta, b, ext, hit

    def interval(carry, length):
        start, state = carry
        state = jax.lax.fori_loop(start, start + length, step, state)
        theta, b = state[0], state[1]
        return (start + length, state), (theta, b)

    runs = c_ga.shape[0]
    inf = jnp.asarray(jnp.inf, x.dtype)
    ext0 = jnp.stack([jnp.full(runs, inf), jnp.full(runs, -inf), jnp.full(runs, inf), jnp.full(runs, -inf)], -1)
    state0 = (
        jnp.broadcast_to(theta_init, (runs, theta_init.shape[0])),
        jnp.zeros((runs, n_f), x.dtype),
        ext0,
        jnp.full((runs, distances.shape[0]), -1, jnp.int64),
    )
    (_, (_, _, ext, hit)), (thetas, bs) = jax.lax.scan(interval, (jnp.asarray(0, jnp.int64), state0), intervals)
    return thetas, bs, ext, hit


@_float64
def gd_divergence(
    forget_set: ForgetSet,
    methods: Sequence[Method],
    *,
    eta: float,
    steps: int,
    records_per_decade: int = 20,
    distances: Optional[Sequence[float]] = None,
) -> dict[str, np.ndarray]:
    """Gradient descent on the mean forget loss of each method, in two implementations.

    Runs every method (GA and/or NPO weights; see :func:`thm2_methods`) for ``steps`` steps of
    size ``eta`` from ``forget_set.theta_init`` (also the reference ``pi_ref``), in one jitted,
    vmapped call, float64: (1) in parameter space, ``theta <- theta - eta grad L`` with
    ``jax.grad`` of the objective built from :mod:`theory.objectives`; (2) as the recursion
    ``b <- b - eta0 Gamma (w * s * (1 - pi))`` of appendix A.2 (``eta0 = eta / n_f``), which
    never forms ``theta``.

    Args:
      forget_set: a :class:`ForgetSet` (any ``n_f``, ``d``: the recursion is exact outside the
        theorem's assumptions too).
      methods: ``R`` methods with only ``ga`` / ``npo`` weights.
      eta: step size, > 0 (Theorem 2 takes ``eta <= 1`` for NPO).
      steps: number of steps, >= 1.
      records_per_decade: record density (see :func:`log_spaced_steps`).
      distances: the ``D`` of the first-passage times; default :func:`power_of_two_distances`.
    Returns:
      ``steps (E,)`` record steps from 0; ``b (R, E, n_f)`` from the recursion; ``b_theta
      (R, E, n_f)`` ``= X (theta - theta_init)`` from parameter space; ``xtx_norm (R, E)``
      ``= sqrt(delta^T (X^T X) delta)``, ``delta = theta - theta_init``; ``theta_shift (R, E)``
      ``= ||delta||_2``; ``logp (R, E, n_f)`` ``log pi_theta(y_i|x_i)`` and ``loss (R, E)`` the
      objective, both from parameter space; ``distances (K,)`` and ``hit_step (R, K)``: the
      first step with ``||b|| >= D`` (-1 if never); ``linear_extremes (R, 2)``: min and max over
      every step ``1..steps`` of ``||b|| sqrt(n_f) / (eta t)``; ``log_extremes (R, 2)``: min and max
      of ``log(n_f / (eta t) expm1(beta ||b|| / sqrt(n_f)))``; ``diverged_step (R,)``: first record
      step with a non-finite value (-1 if none); ``c_ga, c_npo, beta (R,)``; ``eta``.
    """
    if not isinstance(forget_set, ForgetSet):
        raise ValueError(f"forget_set must be a ForgetSet (see make_forget_set), got {type(forget_set).__name__}")
    check_positive(eta, "eta")
    steps = check_int(steps, "steps")
    c_ga, c_npo, beta = _method_arrays(methods)
    record = log_spaced_steps(steps, records_per_decade)
    if distances is None:
        distances = power_of_two_distances(forget_set.x, eta=eta, steps=steps)
    distances = np.asarray(distances, np.float64)
    if distances.ndim != 1 or distances.size == 0 or not np.all(np.isfinite(distances) & (distances > 0)):
        raise ValueError(f"distances must be a non-empty 1-D sequence of numbers > 0, got {distances!r}")

    x, s, theta_init = forget_set.x, forget_set.signs, forget_set.theta_init
    thetas, bs, ext, hit = _simulate(
        jnp.asarray(np.diff(record)), x, s, theta_init, c_ga, c_npo, beta, jnp.asarray(float(eta)), distances
    )
    thetas = np.moveaxis(np.asarray(thetas), 0, 1)  # (R, E - 1, d): records after step 0
    bs = np.moveaxis(np.asarray(bs), 0, 1)
    runs = len(methods)
    thetas = np.concatenate([np.broadcast_to(theta_init, (runs, 1, theta_init.size)), thetas], axis=1)
    b = np.concatenate([np.zeros((runs, 1, forget_set.n_f)), bs], axis=1)
    delta = thetas - theta_init
    xtx = x.T @ x
    logp = -np.logaddexp(0.0, -s * (thetas @ x.T))
    ref_logp = np.broadcast_to(logp[:, :1], logp.shape)
    npo_term = np.asarray(obj.npo_loss(jnp.asarray(logp), jnp.asarray(ref_logp), beta=beta[:, None, None]))
    loss = c_ga[:, None] * logp.mean(-1) + c_npo[:, None] * npo_term.mean(-1)
    finite = np.isfinite(b).all(-1) & np.isfinite(thetas).all(-1)
    diverged = np.where(finite.all(-1), -1, record[np.argmin(finite, axis=-1)])
    return {
        "steps": record,
        "b": b,
        "b_theta": delta @ x.T,
        "xtx_norm": np.sqrt(np.einsum("red,df,ref->re", delta, xtx, delta)),
        "theta_shift": np.linalg.norm(delta, axis=-1),
        "logp": logp,
        "loss": loss,
        "distances": distances,
        "hit_step": np.asarray(hit),
        "linear_extremes": np.asarray(ext)[:, :2],
        "log_extremes": np.asarray(ext)[:, 2:],
        "diverged_step": diverged,
        "c_ga": c_ga,
        "c_npo": c_npo,
        "beta": beta,
        "eta": np.float64(eta),
    }


# --------------------------------------------------------------------------- predictions


@functools.cache
def _closed_forms():
    """Lemma 4's ``b(t)`` and Theorem 2's crossing times, lambdified from :mod:`theory.symbolic`."""
    import sympy as sp

    from theory import symbolic as sym

    b_npo = sym.lemma4_solution()  # -(1/beta) log(beta C eta0 t + 1)
    b_ga = -sym.C * sym.ETA0 * sym.T  # b' = -C eta0 (GA once pi ~ 0)
    args = (sym.BETA, sym.C, sym.ETA0, sym.DIST)
    return {
        "b_npo": sp.lambdify((sym.T, sym.BETA, sym.C, sym.ETA0), b_npo, "numpy"),
        "time_ga": sp.lambdify(args, sym._crossing_time(b_ga), "numpy"),
        "time_npo": sp.lambdify(args, sym._crossing_time(b_npo), "numpy"),
    }


def ga_rate(x, *, eta: float) -> float:
    """Limit of ``||b^(t)|| / t`` under GA for orthogonal rows: ``eta0 sqrt(sum_i ||x_i||^4)``."""
    sq = np.sum(np.asarray(x, np.float64) ** 2, axis=1)
    return float(eta / sq.size * np.sqrt(np.sum(sq**2)))


def npo_slope(n_f: int, beta) -> np.ndarray:
    """Limit of ``d ||b|| / d ln t`` under NPO for orthogonal rows: ``sqrt(n_f) / beta``."""
    check_positive(beta, "beta")
    return np.sqrt(n_f) / np.asarray(beta, np.float64)


def npo_asymptotic_constants(forget_set: ForgetSet, beta: float) -> np.ndarray:
    """Lemma 4's per-coordinate ``C_i = 2 ||x_i||^2 (1 + e^{m0_i})^beta``, ``m0_i = s_i <x_i, theta_init>``.

    With these, ``|b_i(t)| -> (1/beta) log(beta C_i eta0 t + 1)`` up to ``o(1)`` for orthogonal
    rows (module docstring).
    """
    check_positive(beta, "beta")
    sq = np.sum(forget_set.x**2, axis=1)
    m0 = forget_set.signs * (forget_set.x @ forget_set.theta_init)
    return 2.0 * sq * np.exp(beta * np.logaddexp(0.0, m0))


def lemma4_distance(t, *, beta: float, C, eta0: float) -> np.ndarray:
    """``|b(t)| = (1/beta) log(beta C eta0 t + 1)`` (Lemma 4, from ``symbolic.lemma4_solution``);
    broadcasts ``t`` against ``C``."""
    return -np.asarray(_closed_forms()["b_npo"](np.asarray(t, np.float64), beta, np.asarray(C, np.float64), eta0))


def predicted_distance(forget_set: ForgetSet, steps, *, eta: float, c_ga: float, beta: float) -> np.ndarray:
    """Predicted ``||b^(t)||`` for orthogonal rows at ``steps``.

    GA (``c_ga != 0``): the linear asymptote ``ga_rate t``. NPO: ``sqrt(sum_i |b_i(t)|^2)`` with each
    ``|b_i|`` Lemma 4's closed form at the asymptotic ``C_i`` (:func:`npo_asymptotic_constants`):
    no fitted parameter.
    """
    t = np.asarray(steps, np.float64)
    if c_ga != 0:
        return ga_rate(forget_set.x, eta=eta) * t
    c = npo_asymptotic_constants(forget_set, beta)
    per_coordinate = lemma4_distance(t[:, None], beta=beta, C=c[None, :], eta0=eta / forget_set.n_f)
    return np.sqrt(np.sum(per_coordinate**2, axis=-1))


def predicted_time_to_distance(forget_set: ForgetSet, distances, *, eta: float, c_ga: float, beta: float) -> np.ndarray:
    """Theorem 2's time to ``||b|| = D`` (``symbolic.thm2.exp_slowdown``), per-coordinate scaled.

    Each coordinate must reach ``D / sqrt(n_f)``. GA: ``T = (D / sqrt(n_f)) / (C eta0)`` with
    ``C = sqrt(mean ||x_i||^4)``; NPO: ``T = (e^{beta D / sqrt(n_f)} - 1) / (beta C eta0)`` with ``C`` the
    geometric mean of :func:`npo_asymptotic_constants`.
    """
    dist = np.asarray(distances, np.float64) / math.sqrt(forget_set.n_f)
    eta0 = eta / forget_set.n_f
    forms = _closed_forms()
    if c_ga != 0:
        c = math.sqrt(np.mean(np.sum(forget_set.x**2, axis=1) ** 2))
        return np.asarray(forms["time_ga"](beta, c, eta0, dist), np.float64) * np.ones_like(dist)
    c = float(np.exp(np.mean(np.log(npo_asymptotic_constants(forget_set, beta)))))
    with np.errstate(over="ignore"):  # e^{beta D} beyond float64: the distance is out of reach (inf)
        return np.asarray(forms["time_npo"](beta, c, eta0, dist), np.float64)


# --------------------------------------------------------------------------- analysis (numpy)


def max_rel_error(actual, expected, *, floor: float = 1.0) -> float:
    """``max |actual - expected| / max(|expected|, floor)``: relative where ``|expected| >= floor``,
    absolute below (the criterion of ``b_coordinates_agree``); NaN anywhere gives NaN."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        raise ValueError(f"shapes differ: actual {actual.shape}, expected {expected.shape}")
    return float(np.max(np.abs(actual - expected) / np.maximum(np.abs(expected), floor)))


def _interp_log(steps, values, t):
    steps = np.asarray(steps, np.float64)
    keep = steps > 0
    return np.interp(np.log(t), np.log(steps[keep]), np.asarray(values, np.float64)[keep])


def log_slope(steps, norms, *, start: float, stop: float) -> float:
    """Least-squares slope of ``norms`` against ``ln t`` over the records with ``start <= t <= stop``."""
    steps = np.asarray(steps, np.float64)
    sel = (steps >= start) & (steps <= stop) & (steps > 0)
    if sel.sum() < 2:
        raise ValueError(f"need two records in [{start:g}, {stop:g}], got {int(sel.sum())}")
    return float(np.polyfit(np.log(steps[sel]), np.asarray(norms, np.float64)[sel], 1)[0])


def decade_growth_ratio(steps, norms, *, end: float) -> float:
    """``(n(T) - n(T/10)) / (n(T/10) - n(T/100))`` at ``T = end`` (log-interpolated records).

    About 1 for growth linear in ``ln t`` and 10 for growth linear in ``t``.
    """
    n = [_interp_log(steps, norms, end / 10**k) for k in range(3)]
    return float((n[0] - n[1]) / (n[1] - n[2]))


def sandwich_constants(run: dict, index: int) -> dict:
    """Tightest constants of Theorem 2 over every step ``1..steps`` of run ``index``.

    GA runs (``c_ga != 0``), form ``[C1 n_f^{-1/2} eta t, C2 n_f^{-1/2} eta t]``: ``C1, C2`` are the
    extremes of ``||b|| sqrt(n_f) / (eta t)``. NPO runs, form ``[C1 sqrt(n_f) log(C2 eta t / n_f + 1),
    C1 sqrt(n_f) log(C3 eta t / n_f + 1)]`` with ``C1 = 1/beta`` fixed (Lemma 4's prefactor; the
    theorem leaves the prefactor free): ``C2, C3`` are the extremes of
    ``n_f / (eta t) (e^{beta ||b|| / sqrt(n_f)} - 1)``; ``linear_C1`` is the GA form's lower
    constant for the same run, which tends to 0 when growth is sublinear.
    """
    lin = run["linear_extremes"][index]
    if run["c_ga"][index] != 0:
        return {"C1": float(lin[0]), "C2": float(lin[1])}
    log_c = run["log_extremes"][index]
    with np.errstate(over="ignore"):
        c2, c3 = np.exp(log_c)
    return {"C1": float(1.0 / run["beta"][index]), "C2": float(c2), "C3": float(c3), "linear_C1": float(lin[0])}


def fit_lemma4_constants(steps, b, *, beta: float, eta0: float, start: float) -> tuple[np.ndarray, np.ndarray]:
    """Fit Lemma 4's closed form to each coordinate: one ``C_i`` per coordinate.

    Minimises ``sum_t (beta |b_i(t)| - log(beta C_i eta0 t + 1))^2`` over the records with
    ``t >= start`` (golden-section search on ``log C_i``, bracketed around the last record's
    ``C``; the loss is unimodal in ``log C``).

    Args:
      steps: ``(E,)`` record steps; b: ``(E, n_f)`` coordinates.
    Returns:
      ``(C (n_f,), err (n_f,))`` with ``err = beta max_t |(|b_i| - closed form)|`` over the window
      (the error in units of ``1/beta``, the natural scale of Lemma 4).
    """
    steps = np.asarray(steps, np.float64)
    sel = (steps >= start) & (steps > 0)
    t = steps[sel][:, None]
    target = beta * np.abs(np.asarray(b, np.float64)[sel])

    def sse(log_c):
        return np.sum((target - np.log1p(beta * np.exp(log_c)[None, :] * eta0 * t)) ** 2, axis=0)

    guess = np.log(np.maximum(np.expm1(target[-1]), 1e-300) / (beta * eta0 * t[-1, 0]))
    lo, hi = guess - 10.0, guess + 10.0
    phi = (math.sqrt(5.0) - 1.0) / 2.0
    for _ in range(100):
        m1, m2 = hi - phi * (hi - lo), lo + phi * (hi - lo)
        left = sse(m1) < sse(m2)
        hi = np.where(left, m2, hi)
        lo = np.where(left, lo, m1)
    log_c = 0.5 * (lo + hi)
    err = np.max(np.abs(target - np.log1p(beta * np.exp(log_c)[None, :] * eta0 * t)), axis=0)
    return np.exp(log_c), err


# --------------------------------------------------------------------------- section 2.1 toy


def _softmax_example_loss(theta, x, y, ref_logp, c_ga, c_npo, beta):
    logp = jax.nn.log_softmax(theta @ x)[y]
    return c_ga * obj.ga_loss(logp) + c_npo * obj.npo_loss(logp, ref_logp, beta=beta)


def _softmax_objective(theta, x, y, ref_logp, c_ga, c_npo, beta):
    per_example = jax.vmap(_softmax_example_loss, in_axes=(None, 0, 0, 0, None, None, None))
    return jnp.mean(per_example(theta, x, y, ref_logp, c_ga, c_npo, beta))


@jax.jit
def _simulate_softmax(intervals, x, y, theta_ref, c_ga, c_npo, beta, eta):
    ref_logp = jnp.take_along_axis(jax.nn.log_softmax(x @ theta_ref.T, axis=-1), y[:, None], axis=-1)[:, 0]
    grad = jax.vmap(jax.grad(_softmax_objective), in_axes=(0, None, None, None, 0, 0, 0))
    example_grad = jax.vmap(
        jax.vmap(jax.grad(_softmax_example_loss), in_axes=(None, 0, 0, 0, None, None, None)),
        in_axes=(0, None, None, None, 0, 0, 0),
    )

    def measure(theta):
        g = example_grad(theta, x, y, ref_logp, c_ga, c_npo, beta)  # (R, n_f, K, d)
        log_probs = jax.nn.log_softmax(jnp.einsum("rkd,nd->rnk", theta, x), axis=-1)
        logp = jnp.take_along_axis(log_probs, y[None, :, None], axis=-1)[..., 0]
        return jnp.sqrt(jnp.sum(g * g, axis=(-2, -1))), logp, jnp.exp(log_probs)

    def interval(theta, length):
        theta = jax.lax.fori_loop(
            0, length, lambda i, th: th - eta * grad(th, x, y, ref_logp, c_ga, c_npo, beta), theta
        )
        return theta, measure(theta)

    runs = c_ga.shape[0]
    theta0 = jnp.broadcast_to(theta_ref, (runs,) + theta_ref.shape)
    _, (gnorm, logp, probs) = jax.lax.scan(interval, theta0, intervals)
    first = measure(theta0)
    stack = lambda a0, a: jnp.concatenate([a0[None], a], axis=0)  # noqa: E731
    return stack(first[0], gnorm), stack(first[1], logp), stack(first[2], probs), ref_logp


@_float64
def softmax_toy(
    key: jax.Array,
    methods: Sequence[Method],
    *,
    n_classes: int = 4,
    d: int = 16,
    n_f: int = 8,
    eta: float = 1.0,
    steps: int = 10**5,
    records_per_decade: int = 20,
    ref_margin: float = 2.0,
    unlearned_below: float = 0.01,
) -> dict[str, np.ndarray]:
    """Section 2.1: GA and NPO on a K-class linear softmax ``pi_theta(.|x) = softmax(theta x)``.

    Forget inputs are orthonormal rows; labels uniform over the classes; the reference
    ``theta_ref = ref_margin sum_i e_{y_i} x_i^T`` gives each forget label a logit margin of
    ``ref_margin`` (``pi_ref(y_i|x_i) = e^m / (e^m + K - 1)``). Gradient descent with step ``eta``
    on the mean loss of each method from ``theta_ref``.

    ``grad_theta log pi(y|x) = (e_y - p) x^T``, of norm ``||e_y - p|| ||x||``: once ``p_y ~ 0`` it
    stays of constant size (``sqrt(K / (K - 1)) ||x||`` when the other classes share the mass
    evenly, as they do here by symmetry), while NPO multiplies it by ``W -> 0``.

    Returns:
      ``steps (E,)``; ``grad_norm (R, E, n_f)``: ``||grad_theta l_i||_F`` of each example's
      loss; ``logp (R, E, n_f)``: ``log pi_theta(y_i|x_i)``; ``ref_logp (n_f,)``;
      ``ga_grad_norm (R, E, n_f)``: ``||e_y - p|| ||x_i||``, the GA gradient norm at the same
      parameters; ``unlearned_grad_norm (R, E)``: mean ``grad_norm`` over examples with
      ``pi_theta(y_i|x_i) <= unlearned_below`` (NaN where there is none); ``ga_limit``:
      ``sqrt(K / (K - 1))`` (unit rows); ``n_classes``; ``unlearned_below``; ``c_ga, c_npo, beta (R,)``.
    """
    n_classes = check_int(n_classes, "n_classes", 2)
    d = check_int(d, "d")
    n_f = check_int(n_f, "n_f")
    if n_f > d:
        raise ValueError(f"n_f must be <= d = {d} (orthonormal forget inputs), got {n_f}")
    check_positive(eta, "eta")
    check_positive(ref_margin, "ref_margin")
    _check_range(unlearned_below, "unlearned_below", 0.0, 1.0)
    c_ga, c_npo, beta = _method_arrays(methods)
    record = log_spaced_steps(steps, records_per_decade)
    k_x, k_y = jax.random.split(key)
    q, r = np.linalg.qr(np.asarray(jax.random.normal(k_x, (d, n_f), jnp.float64)))
    x = (q * np.sign(np.diag(r))).T
    y = np.asarray(jax.random.randint(k_y, (n_f,), 0, n_classes))
    theta_ref = ref_margin * np.eye(n_classes)[y].T @ x
    gnorm, logp, probs, ref_logp = _simulate_softmax(
        jnp.asarray(np.diff(record)), x, y, theta_ref, c_ga, c_npo, beta, jnp.asarray(float(eta))
    )
    gnorm = np.moveaxis(np.asarray(gnorm), 0, 1)
    logp = np.moveaxis(np.asarray(logp), 0, 1)
    probs = np.moveaxis(np.asarray(probs), 0, 1)  # (R, E, n_f, K)
    onehot = np.eye(n_classes)[y]
    ga_norm = np.linalg.norm(onehot - probs, axis=-1) * np.linalg.norm(x, axis=1)
    unlearned = np.exp(logp) <= unlearned_below
    count = unlearned.sum(-1)
    mean = np.where(count > 0, np.sum(np.where(unlearned, gnorm, 0.0), -1) / np.maximum(count, 1), np.nan)
    return {
        "steps": record,
        "grad_norm": gnorm,
        "logp": logp,
        "ref_logp": np.asarray(ref_logp),
        "ga_grad_norm": ga_norm,
        "unlearned_grad_norm": mean,
        "ga_limit": np.float64(math.sqrt(n_classes / (n_classes - 1))),
        "n_classes": np.int64(n_classes),
        "unlearned_below": np.float64(unlearned_below),
        "c_ga": c_ga,
        "c_npo": c_npo,
        "beta": beta,
    }
