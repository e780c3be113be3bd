"""Forget sets for Theorem 2: the logistic model's regime, from orthogonal to correlated inputs.

:func:`make_forget_set` draws ``n_f`` inputs with controlled row norms and coherence
(``max_{i!=j} |<x_i, x_j>|``), labels and a starting point ``theta_init``, and
:func:`check_assumptions` reports which assumptions of the paper's Theorem 2 (section 3.1)
a set meets: ``n_f <= d``, ``X X^T`` invertible, ``||x_i||`` in ``[b_x, B_x]``, coherence
``<= C0 / n_f`` and ``||theta_init|| <= B_theta``.

Arrays are float64 numpy (the draws are made with ``jax.random`` inside ``jax.enable_x64``).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from theory.validate import check_int

__all__ = ["AssumptionReport", "ForgetSet", "check_assumptions", "make_forget_set"]


def _check_range(value, name: str, lo: float, hi: float, *, hi_open: bool = False) -> float:
    v = float(value)
    ok = math.isfinite(v) and lo <= v and (v < hi if hi_open else v <= hi)
    if not ok:
        bracket = ")" if hi_open else "]"
        raise ValueError(f"{name} must lie in [{lo:g}, {hi:g}{bracket}, got {value!r}")
    return v


@dataclasses.dataclass(frozen=True)
class AssumptionReport:
    """Which assumptions of Theorem 2 a forget set meets (the paper's section 3.1, "Setting").

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
    with jax.enable_x64(True):
        return _draw(key, n_f, d, b_x, B_x, B_theta, rho, p_one, C0)


def _draw(key, n_f, d, b_x, B_x, B_theta, rho, p_one, C0) -> ForgetSet:
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


