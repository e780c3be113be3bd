"""Theorem 2 and Lemmas 3-4 in closed form: what GA and NPO do to a logistic model.

The paper's Theorem 2 (section 3.1, proof in appendix A) runs gradient descent with step
``eta`` on the mean ``L_GA`` or ``L_NPO`` of the binary logistic model over a forget set
``X`` (``n_f x d``, labels ``y``) from ``theta_init`` (also ``pi_ref``). This module gives the
predictions the toolkit compares with simulation; everything is float64 numpy.

Derivation for orthogonal rows (the regime the toolkit simulates; signs checked by the
tests). Write ``s_i = 2 y_i - 1`` and ``b = X (theta - theta_init)``; then
``||theta - theta_init||_{X^T X} = ||b||_2`` and, with ``eta0 = eta / n_f``, each coordinate
``u_i = s_i b_i`` follows ``u_i <- u_i - eta0 ||x_i||^2 w_i (1 - pi_i)``, ``w_i = 1`` for GA and
NPO's weight ``W_i = 2 sigma(beta r_i)`` (eq. 4-5).

* GA (Lemma 3): ``1 - pi_i -> 1``, so ``u_i = -eta0 ||x_i||^2 t + O(1)`` and
  ``||b(t)|| / t -> eta0 sqrt(sum_i ||x_i||^4)`` (:func:`ga_rate`), Theorem 2's ``C n_f^{-1/2} eta t``.
* NPO (Lemma 4): with ``m0_i = s_i <x_i, theta_init>``, as ``u_i -> -oo``,
  ``W_i ~ 2 (1 + e^{m0_i})^beta e^{beta u_i}``, so ``u_i' = -C_i eta0 e^{beta u_i}`` with
  ``C_i = 2 ||x_i||^2 (1 + e^{m0_i})^beta`` (:func:`npo_asymptotic_constants`), solved by
  ``u_i = -(1/beta) log(beta C_i eta0 t + 1)`` (:func:`lemma4_distance`); hence
  ``d ||b|| / d ln t -> sqrt(n_f) / beta`` (:func:`npo_slope`). The neglected factors give
  relative corrections ``O(t^{-1/beta})`` and ``O(log t / t)``: the law is asymptotic, and
  large betas approach it slowly.
* Time to ``||b|| = D`` (:func:`predicted_time_to_distance`): with every coordinate at
  ``D / sqrt(n_f)``, ``T_GA = (D / sqrt(n_f)) / (C eta0)`` and
  ``T_NPO = (e^{beta D / sqrt(n_f)} - 1) / (beta C eta0)``: exponentially slower.

The closed forms are lambdified from the sympy derivations of :mod:`theory.symbolic`, so the
formula that is proved is the formula that is compared.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from theory.methods import Method, as_method
from theory.validate import check_positive

__all__ = [
    "law_of",
    "ga_rate",
    "npo_slope",
    "npo_asymptotic_constants",
    "lemma4_distance",
    "predicted_distance",
    "predicted_time_to_distance",
]


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
        "time_ga": sp.lambdify(args, sym.crossing_time(b_ga), "numpy"),
        "time_npo": sp.lambdify(args, sym.crossing_time(b_npo), "numpy"),
    }


def law_of(method: Method) -> str:
    """``"ga"`` or ``"npo"``: which of Theorem 2's laws ``method`` follows.

    Theorem 2 covers gradient descent on ``L_GA`` or on ``L_NPO`` alone; any other method
    raises ``ValueError``. ``method`` may be a registered name (``"GA"``, ``"NPO"``).
    """
    components = set(as_method(method).components)
    if components in ({"ga"}, {"npo"}):
        return components.pop()
    raise ValueError(f"Theorem 2 covers GA or NPO alone, got a method with components {sorted(components)}")


def _rows(x) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"x must have shape (n_f, d) with n_f >= 1, got shape {x.shape}")
    return x


def ga_rate(x, *, eta: float) -> float:
    """Limit of ``||b(t)|| / t`` under GA for orthogonal rows: ``eta0 sqrt(sum_i ||x_i||^4)``."""
    check_positive(eta, "eta")
    sq = np.sum(_rows(x) ** 2, axis=1)
    return float(eta / sq.size * np.sqrt(np.sum(sq**2)))


def npo_slope(n_f: int, beta) -> np.ndarray:
    """Limit of ``d ||b|| / d ln t`` under NPO for orthogonal rows: ``sqrt(n_f) / beta``."""
    check_positive(beta, "beta")
    return np.sqrt(n_f) / np.asarray(beta, np.float64)


def npo_asymptotic_constants(x, y, theta_init, beta: float) -> np.ndarray:
    """Lemma 4's per-coordinate ``C_i = 2 ||x_i||^2 (1 + e^{m0_i})^beta``, ``m0_i = (2y_i - 1) <x_i, theta_init>``.

    With these, ``|b_i(t)| -> (1/beta) log(beta C_i eta0 t + 1)`` up to ``o(1)`` for orthogonal
    rows (module docstring).
    """
    check_positive(beta, "beta")
    x = _rows(x)
    signs = 2.0 * np.asarray(y, np.float64) - 1.0
    m0 = signs * (x @ np.asarray(theta_init, np.float64))
    return 2.0 * np.sum(x**2, axis=1) * np.exp(beta * np.logaddexp(0.0, m0))


def lemma4_distance(t, *, beta: float, C, eta0: float) -> np.ndarray:
    """``|b(t)| = (1/beta) log(beta C eta0 t + 1)`` (Lemma 4); broadcasts ``t`` against ``C``."""
    return -np.asarray(_closed_forms()["b_npo"](np.asarray(t, np.float64), beta, np.asarray(C, np.float64), eta0))


def predicted_distance(x, y, theta_init, steps, *, eta: float, method: Method) -> np.ndarray:
    """Predicted ``||b(t)||`` for orthogonal rows at ``steps``, no fitted parameter.

    GA: the linear asymptote ``ga_rate t``. NPO: ``sqrt(sum_i |b_i(t)|^2)`` with each ``|b_i|``
    Lemma 4's closed form at the asymptotic ``C_i`` (:func:`npo_asymptotic_constants`).
    ``method``: a :class:`~theory.methods.Method` or a registered name.
    """
    method = as_method(method)
    t = np.asarray(steps, np.float64)
    if law_of(method) == "ga":
        return ga_rate(x, eta=eta) * t
    x = _rows(x)
    c = npo_asymptotic_constants(x, y, theta_init, method.beta)
    per_coordinate = lemma4_distance(t[:, None], beta=method.beta, C=c[None, :], eta0=eta / x.shape[0])
    return np.sqrt(np.sum(per_coordinate**2, axis=-1))


def predicted_time_to_distance(x, y, theta_init, distances, *, eta: float, method: Method) -> np.ndarray:
    """Theorem 2's time to ``||b|| = D`` (symbolic check ``thm2.exp_slowdown``), per coordinate.

    Each coordinate must reach ``D / sqrt(n_f)``. GA: ``T = (D / sqrt(n_f)) / (C eta0)`` with
    ``C = sqrt(mean ||x_i||^4)``; NPO: ``T = (e^{beta D / sqrt(n_f)} - 1) / (beta C eta0)`` with ``C``
    the geometric mean of :func:`npo_asymptotic_constants`. Out-of-reach distances give ``inf``.
    ``method``: a :class:`~theory.methods.Method` or a registered name.
    """
    method = as_method(method)
    x = _rows(x)
    n_f = x.shape[0]
    dist = np.asarray(distances, np.float64) / math.sqrt(n_f)
    eta0 = eta / n_f
    beta = float(method.beta)
    forms = _closed_forms()
    if law_of(method) == "ga":
        c = math.sqrt(np.mean(np.sum(x**2, axis=1) ** 2))
        return np.asarray(forms["time_ga"](beta, c, eta0, dist), np.float64) * np.ones_like(dist)
    c = float(np.exp(np.mean(np.log(npo_asymptotic_constants(x, y, theta_init, beta)))))
    with np.errstate(over="ignore"):  # e^{beta D} beyond float64: the distance is out of reach (inf)
        return np.asarray(forms["time_npo"](beta, c, eta0, dist), np.float64)
