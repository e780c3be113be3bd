"""Sympy derivations of the paper's identities, each cross-checked against the JAX code.

This module owns the *symbolic* side of the paper's sections 2-3: the two forms of the NPO
loss (eq. 3), Proposition 1 (NPO -> GA as beta -> 0, for the loss and its gradient), the
adaptive weight of eq. 4-5, NPO's lower bound, NPO as DPO without its positive term
(eq. 2 -> eq. 3) and as KTO with a zero reference point (eq. 18-19), the logistic gradient
used in the proof of Theorem 2, the ODE of Lemma 4, and Theorem 2's exponential slowdown.

Every check is decided twice:

1. symbolically, as ``sympy.simplify(lhs - rhs) == 0``, a ``sympy.limit`` or a
   ``sympy.series``; and
2. numerically: the sympy expression is lambdified and compared, in float64 at random
   points from a fixed seed, with the JAX implementation in :mod:`theory.objectives` (or,
   for the ODE of Lemma 4, with ``scipy.integrate.solve_ivp``), against a stated tolerance.

A check returns a :class:`theory.claims.Claim` whose ``passed`` is True only if every
symbolic fact *and* every numeric fact holds. :func:`run_all` runs :data:`CHECKS` in order
and never raises: a check that crashes becomes a failed claim.

Notation (the paper's section 2): ``r = log pi_theta(y|x) - log pi_ref(y|x)``,
``sigma(z) = 1 / (1 + exp(-z))``, ``beta > 0``. All objectives are minimised.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

from theory import objectives as obj
from theory.claims import Claim, max_rel_error

__all__ = [
    "symbolic_residual",
    "symbolic_equal",
    "max_rel_error",
    "OdePath",
    "first_passage",
    "lemma4_rate",
    "lemma4_solution",
    "crossing_time",
    "check_npo_two_forms",
    "check_prop1_loss_limit",
    "check_prop1_grad_limit",
    "check_npo_grad_weight",
    "check_npo_bounded_below",
    "check_npo_is_dpo_without_positive",
    "check_kto_zero_ref_is_npo",
    "check_logistic_grad",
    "check_lemma4_ode",
    "check_thm2_exp_slowdown",
    "CHECKS",
    "run_all",
]

SEED = 0
"""Seed of every check's random points (each check starts its own generator from it)."""

IDENTITY_TOL = 1e-10
"""Float64 tolerance of an exact identity evaluated two ways (rounding is ~1e-15)."""

N_POINTS = 1000
"""Random points per numeric comparison."""


# --------------------------------------------------------------------------- comparison helpers


def symbolic_residual(lhs: sp.Expr, rhs: sp.Expr) -> sp.Expr:
    """``sympy.simplify(lhs - rhs)``: zero exactly when sympy proves ``lhs == rhs``."""
    return sp.simplify(lhs - rhs)


def symbolic_equal(lhs: sp.Expr, rhs: sp.Expr) -> bool:
    """True iff ``sympy.simplify(lhs - rhs) == 0``.

    A False can also mean that sympy failed to prove a true identity; either way the
    check fails visibly rather than passing on faith.
    """
    return bool(symbolic_residual(lhs, rhs) == 0)


@dataclasses.dataclass(frozen=True)
class Fact:
    """One piece of evidence of a check: symbolic or numeric, holding or not."""

    kind: str  # "symbolic" or "numeric"
    name: str
    holds: bool
    shown: str
    numbers: dict = dataclasses.field(default_factory=dict)


def _sym_identity(name: str, lhs: sp.Expr, rhs: sp.Expr) -> Fact:
    residual = symbolic_residual(lhs, rhs)
    return Fact("symbolic", name, bool(residual == 0), f"simplify({name}) = {residual}")


def _same_value(value: sp.Expr, expected: sp.Expr) -> bool:
    # oo - oo is nan, so infinities are compared structurally before subtracting.
    if value == expected:
        return True
    if value.is_finite is False or expected.is_finite is False:
        return False
    return symbolic_equal(value, expected)


def _sym_limit(name: str, expr: sp.Expr, var: sp.Symbol, point, expected, direction="+") -> Fact:
    value = sp.limit(expr, var, point, direction)
    return Fact("symbolic", name, _same_value(value, sp.sympify(expected)), f"{name} = {value}")


def _sym_fact(name: str, holds, shown: str) -> Fact:
    return Fact("symbolic", name, holds is True, shown)


def _num_close(name: str, actual, expected, tol: float, *, absolute: bool = False) -> Fact:
    """``max_rel_error(actual, expected) <= tol`` (or the plain absolute error if ``absolute``)."""
    if absolute:
        diff = np.asarray(actual, np.float64) - np.asarray(expected, np.float64)
        err = float(np.max(np.abs(diff)))
    else:
        err = max_rel_error(actual, expected)
    kind = "abs" if absolute else "rel"
    return Fact(
        "numeric", name, err <= tol, f"{name}: max {kind} err {err:.2g} (tol {tol:.2g})",
        {"error": err, "tol": tol},
    )


def _num_fact(name: str, holds: bool, shown: str, **numbers) -> Fact:
    return Fact("numeric", name, bool(holds), shown, {k: float(v) for k, v in numbers.items()})


def _to_claim(claim_id: str, paper_ref: str, statement: str, note: str, facts) -> Claim:
    symbolic = [f for f in facts if f.kind == "symbolic"]
    numeric = [f for f in facts if f.kind == "numeric"]
    symbolic_ok = bool(symbolic) and all(f.holds for f in symbolic)
    numeric_ok = bool(numeric) and all(f.holds for f in numeric)
    measured = "symbolic: " + "; ".join(f.shown for f in symbolic)
    measured += " | numeric: " + "; ".join(f.shown for f in numeric)
    values = {
        "symbolic_ok": symbolic_ok,
        "numeric_ok": numeric_ok,
        "symbolic": {f.name: {"holds": f.holds, "shown": f.shown} for f in symbolic},
        "numeric": {f.name: {"holds": f.holds, **f.numbers} for f in numeric},
    }
    return Claim(claim_id, paper_ref, statement, measured, symbolic_ok and numeric_ok, values, kind="identity",
                 note=note)


def _check(claim_id: str, paper_ref: str, statement: str, note: str = ""):
    """Turn a function returning a list of :class:`Fact` into a check returning a Claim.

    The facts are computed with float64 enabled in JAX (a scoped setting, not a global one),
    so the tolerances below hold whatever the caller's configuration.
    """

    def decorate(derive: Callable[[], list]) -> Callable[[], Claim]:
        def check() -> Claim:
            with jax.enable_x64(True):
                facts = derive()
            return _to_claim(claim_id, paper_ref, statement, note, facts)

        # Not functools.wraps: the check returns a Claim, not derive's list of facts.
        check.__name__ = check.__qualname__ = derive.__name__
        check.__doc__ = f"{derive.__doc__}\n\nReturns the Claim ``{claim_id}``."
        check.__module__ = derive.__module__
        check.claim_id = claim_id
        check.paper_ref = paper_ref
        check.statement = statement
        return check

    return decorate


# --------------------------------------------------------------------------- symbols, expressions

BETA = sp.Symbol("beta", positive=True)
R = sp.Symbol("r", real=True)
PI = sp.Symbol("pi", positive=True)  # pi_theta(y|x)
PI_REF = sp.Symbol("pi_ref", positive=True)
LOG_RATIO = sp.log(PI) - sp.log(PI_REF)  # r written through the probabilities


def sym_sigmoid(z: sp.Expr) -> sp.Expr:
    """``sigma(z) = 1 / (1 + exp(-z))``."""
    return 1 / (1 + sp.exp(-z))


def npo_logsigmoid_form(r: sp.Expr) -> sp.Expr:
    """``L_NPO = -(2/beta) log sigma(-beta r)`` (eq. 3, first form)."""
    return -(2 / BETA) * sp.log(sym_sigmoid(-BETA * r))


def npo_ratio_form(pi: sp.Expr, pi_ref: sp.Expr) -> sp.Expr:
    """``L_NPO = (2/beta) log(1 + (pi/pi_ref)^beta)`` (eq. 3, second form)."""
    return (2 / BETA) * sp.log(1 + (pi / pi_ref) ** BETA)


def npo_softplus_form(r: sp.Expr) -> sp.Expr:
    """``L_NPO = (2/beta) log(1 + e^{beta r})``, the form :func:`obj.npo_loss` computes."""
    return (2 / BETA) * sp.log(1 + sp.exp(BETA * r))


def _f64(*arrays):
    return tuple(jnp.asarray(a, dtype=jnp.float64) for a in arrays)


def _sum_grad(loss: Callable, logp, *args, **kwargs) -> np.ndarray:
    """Per-example ``d loss / d logp`` (the losses are per-example, so grad of the sum)."""
    return np.asarray(jax.grad(lambda lp: jnp.sum(loss(lp, *args, **kwargs)))(logp))


def _random_npo_points(rng: np.random.Generator, n: int = N_POINTS):
    """``(logp, ref_logp, beta)``: log-probs in [-30, 0] and beta log-uniform in [0.05, 5].

    So ``|beta r| <= 150``, where every lambdified ``exp`` is finite in float64.
    """
    logp = rng.uniform(-30.0, 0.0, n)
    ref = rng.uniform(-30.0, 0.0, n)
    beta = np.exp(rng.uniform(np.log(0.05), np.log(5.0), n))
    return logp, ref, beta


# --------------------------------------------------------------------------- 1. eq. 3


@_check(
    "npo.two_forms",
    "eq. 3",
    "-(2/beta) log sigma(-beta r) == (2/beta) log(1 + (pi/pi_ref)^beta) with "
    "r = log pi - log pi_ref: simplify(lhs - rhs) == 0, and npo_loss equals both lambdified "
    f"forms at {N_POINTS} random float64 points to {IDENTITY_TOL:.0e} relative.",
)
def check_npo_two_forms() -> list[Fact]:
    """Eq. 3: ``-(2/beta) log sigma(-beta r) = (2/beta) log(1 + (pi/pi_ref)^beta)``."""
    form1 = npo_logsigmoid_form(LOG_RATIO)
    form2 = npo_ratio_form(PI, PI_REF)
    facts = [_sym_identity("form1 - form2", form1, form2)]

    logp, ref, beta = _random_npo_points(np.random.default_rng(SEED))
    form1_fn = sp.lambdify((R, BETA), npo_logsigmoid_form(R), "numpy")
    form2_fn = sp.lambdify((PI, PI_REF, BETA), form2, "numpy")
    jax_loss = np.asarray(obj.npo_loss(*_f64(logp, ref), beta=beta))
    form1_np = form1_fn(logp - ref, beta)
    form2_np = form2_fn(np.exp(logp), np.exp(ref), beta)
    facts.append(_num_close("npo_loss vs form1", jax_loss, form1_np, IDENTITY_TOL))
    facts.append(_num_close("npo_loss vs form2", jax_loss, form2_np, IDENTITY_TOL))
    return facts


# --------------------------------------------------------------------------- 2-3. Proposition 1

PROP1_BETAS = (1e-2, 1e-3, 1e-4)
PROP1_GRAD_BETA = 1e-6
PROP1_ROUNDING = 1e-9
"""Float64 slack for Proposition 1: ``npo_loss - 2 log 2 / beta`` cancels two terms of size
``2 log 2 / beta ~ 1.4e4`` (at beta = 1e-4), leaving rounding of about 1e-12."""


def prop1_per_example() -> sp.Expr:
    """``f(r) = (2/beta) log((1 + e^{beta r}) / 2)``: NPO's loss minus ``(2/beta) log 2``."""
    return (2 / BETA) * sp.log((1 + sp.exp(BETA * R)) / 2)


@_check(
    "prop1.loss_limit",
    "Proposition 1 (part 1)",
    "Per example (2/beta) log((1 + e^{beta r})/2) -> r as beta -> 0, i.e. "
    "L_NPO - (2/beta) log 2 -> L_GA - log pi_ref: sympy limit and series "
    "r + beta r^2/4 + O(beta^3); npo_loss - 2 log 2/beta is within beta max r^2/4 (+1e-9) of "
    "ga_loss - ref_logp at beta = 1e-2, 1e-3, 1e-4, and within 1e-9 of the two-term series "
    "at beta = 1e-4.",
)
def check_prop1_loss_limit() -> list[Fact]:
    """Proposition 1, loss: ``(2/beta) log((1+e^{beta r})/2) = r + beta r^2/4 + O(beta^3) -> r``."""
    f = prop1_per_example()
    series = sp.series(f, BETA, 0, 3).removeO()
    facts = [
        _sym_identity("L_NPO - (2/beta) log 2 - f", npo_softplus_form(R) - 2 * sp.log(2) / BETA, f),
        _sym_limit("lim_{beta->0} f", f, BETA, 0, R),
        _sym_identity("series_{beta,3}(f) - (r + beta r^2/4)", series, R + BETA * R**2 / 4),
    ]

    rng = np.random.default_rng(SEED)
    ref = rng.uniform(-20.0, 0.0, N_POINTS)
    r = rng.uniform(-5.0, 5.0, N_POINTS)
    logp_j, ref_j = _f64(ref + r, ref)
    ga_minus_ref = np.asarray(obj.ga_loss(logp_j)) - ref

    def shifted_npo(beta):
        return np.asarray(obj.npo_loss(logp_j, ref_j, beta=beta)) - 2 * math.log(2) / beta

    # The limit itself: the gap (2/beta) log cosh(beta r/2) is at most beta r^2/4
    # (log cosh u <= u^2/2), so it must shrink tenfold with each tenfold smaller beta.
    gaps = {beta: float(np.max(np.abs(shifted_npo(beta) - ga_minus_ref))) for beta in PROP1_BETAS}
    bounds = {beta: beta * float(np.max(r**2)) / 4 + PROP1_ROUNDING for beta in PROP1_BETAS}
    facts.append(
        _num_fact(
            "npo - 2log2/beta -> ga - ref",
            all(gaps[beta] <= bounds[beta] for beta in PROP1_BETAS),
            "max |npo_loss - 2 log 2/beta - (ga_loss - ref_logp)| at beta = "
            + ", ".join(f"{beta:g}: {gap:.3g}" for beta, gap in gaps.items())
            + " (each <= beta max r^2/4 + 1e-9)",
            **{f"gap_at_beta_{beta:g}": gap for beta, gap in gaps.items()},
        )
    )
    # The series pins the gap down to its next term, beta^3 r^4 / 96 < 1e-14 at beta = 1e-4.
    beta = PROP1_BETAS[-1]
    series_np = sp.lambdify((R, BETA), series, "numpy")(r, beta)
    facts.append(
        _num_close(
            f"npo - 2log2/beta vs series at beta={beta:g}",
            shifted_npo(beta), series_np, PROP1_ROUNDING, absolute=True,
        )
    )
    return facts


@_check(
    "prop1.grad_limit",
    "Proposition 1 (part 2)",
    "d/dr of the NPO per-example loss -> 1 = d/dr of the GA loss as beta -> 0 (sympy limit; "
    "series 1 + beta r/2); jax.grad of npo_loss w.r.t. logp at beta = 1e-6 equals jax.grad "
    "of ga_loss within beta max|r|/2 (+1e-12), and the series within 1e-12.",
)
def check_prop1_grad_limit() -> list[Fact]:
    """Proposition 1, gradient: ``d/dr L_NPO = 2 sigma(beta r) = 1 + beta r/2 + O(beta^3) -> 1``."""
    grad_npo = sp.diff(npo_softplus_form(R), R)
    grad_ga = sp.diff(R, R)  # L_GA - log pi_ref = r, and d/dlogp = d/dr at fixed pi_ref
    series = sp.series(grad_npo, BETA, 0, 2).removeO()
    facts = [
        _sym_limit("lim_{beta->0} dL_NPO/dr", grad_npo, BETA, 0, grad_ga),
        _sym_identity("series_{beta,2}(dL_NPO/dr) - (1 + beta r/2)", series, 1 + BETA * R / 2),
    ]

    rng = np.random.default_rng(SEED)
    ref = rng.uniform(-20.0, 0.0, N_POINTS)
    r = rng.uniform(-5.0, 5.0, N_POINTS)
    logp_j, ref_j = _f64(ref + r, ref)
    beta = PROP1_GRAD_BETA
    g_npo = _sum_grad(obj.npo_loss, logp_j, ref_j, beta=beta)
    g_ga = _sum_grad(obj.ga_loss, logp_j)
    # |2 sigma(beta r) - 1| = |tanh(beta r/2)| <= beta |r|/2; 1e-12 covers rounding.
    tol = beta * float(np.max(np.abs(r))) / 2 + 1e-12
    name = "grad npo_loss vs grad ga_loss (tol = beta max|r|/2 + 1e-12)"
    facts.append(_num_close(name, g_npo, g_ga, tol, absolute=True))
    series_fn = sp.lambdify((R, BETA), series, "numpy")
    series_np = series_fn(r, beta)
    facts.append(_num_close("grad npo_loss vs series", g_npo, series_np, 1e-12, absolute=True))
    return facts


# --------------------------------------------------------------------------- 4. eq. 4-5


def npo_weight_expr(pi: sp.Expr, pi_ref: sp.Expr) -> sp.Expr:
    """``W = 2 pi^beta / (pi^beta + pi_ref^beta)`` (eq. 4-5)."""
    return 2 * pi**BETA / (pi**BETA + pi_ref**BETA)


@_check(
    "npo.grad_weight",
    "eq. 4-5",
    "d L_NPO / d log pi = W = 2 pi^beta/(pi^beta + pi_ref^beta) = 2 sigma(beta r), so "
    "grad L_NPO = +W grad log pi; 0 < W < 2, W = 1 at pi = pi_ref, W -> 0 as pi -> 0 "
    "(sympy); jax.grad(npo_loss) == npo_weight == lambdified W at random points to 1e-10.",
    note="sign: for the minimised loss grad L_NPO = +W grad log pi (and grad L_GA = "
    "+grad log pi); the leading minus printed in the paper's eq. 4-5 belongs to the "
    "descent direction -grad, not to the gradient",
)
def check_npo_grad_weight() -> list[Fact]:
    """Eq. 4-5: ``d L_NPO / d log pi = W = 2 sigma(beta r)`` in (0, 2), ``-> 0`` as ``pi -> 0``."""
    loss = npo_ratio_form(PI, PI_REF)
    weight = npo_weight_expr(PI, PI_REF)
    weight_r = 2 * sym_sigmoid(BETA * R)
    complement = sp.simplify(2 - weight_r)  # 2 sigma(-beta r), positive for the same reason
    facts = [
        # d/d(log pi) = pi d/dpi; grad_theta L = (dL/dlog pi) grad_theta log pi by the chain rule.
        _sym_identity("pi dL_NPO/dpi - W", PI * sp.diff(loss, PI), weight),
        _sym_identity("W - 2 sigma(beta r)", weight, weight_r.subs(R, LOG_RATIO)),
        _sym_fact(
            "W > 0", weight_r.is_positive, f"(2 sigma(beta r)).is_positive = {weight_r.is_positive}"
        ),
        _sym_fact(
            "2 - W > 0",
            complement.is_positive,
            f"2 - W = {complement}, is_positive = {complement.is_positive}",
        ),
        _sym_identity("W(pi = pi_ref) - 1", weight.subs(PI, PI_REF), 1),
        _sym_limit("lim_{pi->0+} W", weight, PI, 0, 0),
        _sym_limit("lim_{r->-oo} 2 sigma(beta r)", weight_r, R, -sp.oo, 0),
    ]

    logp, ref, beta = _random_npo_points(np.random.default_rng(SEED))
    logp_j, ref_j = _f64(logp, ref)
    grad = _sum_grad(obj.npo_loss, logp_j, ref_j, beta=beta)
    w_jax = np.asarray(obj.npo_weight(logp_j, ref_j, beta=beta))
    w_fn = sp.lambdify((PI, PI_REF, BETA), weight, "numpy")
    facts.append(_num_close("grad npo_loss vs npo_weight", grad, w_jax, IDENTITY_TOL))
    w_np = w_fn(np.exp(logp), np.exp(ref), beta)
    facts.append(_num_close("npo_weight vs lambdified W", w_jax, w_np, IDENTITY_TOL))
    # Strict bounds need |beta r| small enough that sigma is not rounded to 0 or 1.
    moderate = np.abs(beta * (logp - ref)) < 30
    w_mod = w_jax[moderate]
    facts.append(
        _num_fact(
            "0 < W < 2",
            np.all((w_mod > 0) & (w_mod < 2)),
            f"min W = {w_mod.min():.2g} > 0, 2 - max W = {2 - w_mod.max():.2g} > 0 on {w_mod.size} "
            "points with |beta r| < 30",
            w_min=w_mod.min(), w_max=w_mod.max(),
        )
    )
    return facts


# --------------------------------------------------------------------------- 5. bounded below

UNLEARNED_LOGP = -1e4
UNLEARNED_TOL = 1e-30


@_check(
    "npo.bounded_below",
    "section 3 (eq. 1 vs eq. 3)",
    "L_NPO = (2/beta) log(1 + e^{beta r}) > 0 and -> 0 as pi -> 0 (sympy sign and limits), "
    "while L_GA = log pi -> -oo; npo_loss >= 0 at random and extreme points, and "
    f"npo_loss(logp = {UNLEARNED_LOGP:g}) <= {UNLEARNED_TOL:g}.",
)
def check_npo_bounded_below() -> list[Fact]:
    """``L_NPO > 0`` with infimum 0 as ``pi -> 0``; ``L_GA = log pi`` is unbounded below."""
    loss_r = npo_softplus_form(R)
    facts = [
        # log(1 + positive) > 0: sympy derives the sign from exp(beta r) > 0 and beta > 0.
        _sym_fact(
            "L_NPO > 0",
            loss_r.is_positive,
            f"((2/beta) log(1 + e^(beta r))).is_positive = {loss_r.is_positive}",
        ),
        _sym_limit("lim_{r->-oo} L_NPO", loss_r, R, -sp.oo, 0),
        _sym_limit("lim_{pi->0+} L_NPO", npo_ratio_form(PI, PI_REF), PI, 0, 0),
        _sym_limit("lim_{pi->0+} L_GA", sp.log(PI), PI, 0, -sp.oo),
    ]

    rng = np.random.default_rng(SEED)
    logp, ref, beta = _random_npo_points(rng)
    # Add extreme log-ratios |r| up to 1e4, where a naive log(1 + exp(.)) would overflow.
    logp = np.concatenate([logp, rng.uniform(-1e4, 0.0, N_POINTS)])
    ref = np.concatenate([ref, rng.uniform(-1e4, 0.0, N_POINTS)])
    beta = np.concatenate([beta, beta])
    loss = np.asarray(obj.npo_loss(*_f64(logp, ref), beta=beta))
    facts.append(
        _num_fact(
            "npo_loss >= 0",
            np.all(loss >= 0),
            f"min npo_loss = {loss.min():.2g} on {loss.size} points",
            min_loss=loss.min(),
        )
    )
    ref_u = rng.uniform(-20.0, 0.0, N_POINTS)
    logp_u = np.full(N_POINTS, UNLEARNED_LOGP)
    loss_u = np.asarray(obj.npo_loss(*_f64(logp_u, ref_u), beta=beta[:N_POINTS]))
    ga_u = float(obj.ga_loss(jnp.asarray(UNLEARNED_LOGP)))
    facts.append(
        _num_fact(
            "npo_loss at pi ~ 0",
            np.all(np.abs(loss_u) <= UNLEARNED_TOL),
            f"max npo_loss(logp={UNLEARNED_LOGP:g}) = {loss_u.max():.1e} (tol {UNLEARNED_TOL:g}), "
            f"while ga_loss = {ga_u:g}",
            max_loss=loss_u.max(), tol=UNLEARNED_TOL, ga_loss=ga_u,
        )
    )
    return facts


# --------------------------------------------------------------------------- 6-7. DPO and KTO

R_W = sp.Symbol("r_w", real=True)
Z_REF = sp.Symbol("z_ref", nonnegative=True)


def dpo_expr(r_w: sp.Expr, r_l: sp.Expr) -> sp.Expr:
    """``L_DPO = -(2/beta) log sigma(beta r_w - beta r_l)`` (eq. 2, with the 2/beta of the code)."""
    return -(2 / BETA) * sp.log(sym_sigmoid(BETA * r_w - BETA * r_l))


def kto_expr(r: sp.Expr, z_ref: sp.Expr) -> sp.Expr:
    """``L_KTO = -(2/beta) log sigma(z_ref - beta r)`` (eq. 18-19)."""
    return -(2 / BETA) * sp.log(sym_sigmoid(z_ref - BETA * r))


@_check(
    "npo.is_dpo_without_positive",
    "eq. 2 -> eq. 3",
    "DPO (eq. 2, factor 2/beta) with the winner term removed (r_w = 0) is NPO: "
    "simplify == 0; dpo_loss(ref_w, ref_w, logp_l, ref_l) == npo_loss(logp_l, ref_l) and "
    "dpo_loss == lambdified eq. 2 at random points to 1e-10.",
)
def check_npo_is_dpo_without_positive() -> list[Fact]:
    """``L_DPO(r_w = 0, r_l) = -(2/beta) log sigma(-beta r_l) = L_NPO(r_l)``."""
    facts = [_sym_identity("L_DPO(r_w=0, r) - L_NPO(r)", dpo_expr(0, R), npo_logsigmoid_form(R))]

    rng = np.random.default_rng(SEED)
    logp_l, ref_l, beta = _random_npo_points(rng)
    ref_w = rng.uniform(-30.0, 0.0, N_POINTS)
    logp_w = rng.uniform(-30.0, 0.0, N_POINTS)
    lw, rw, ll, rl = _f64(logp_w, ref_w, logp_l, ref_l)
    no_positive = np.asarray(obj.dpo_loss(rw, rw, ll, rl, beta=beta))
    npo = np.asarray(obj.npo_loss(ll, rl, beta=beta))
    facts.append(_num_close("dpo_loss(r_w=0) vs npo_loss", no_positive, npo, IDENTITY_TOL))
    dpo_fn = sp.lambdify((R_W, R, BETA), dpo_expr(R_W, R), "numpy")
    facts.append(
        _num_close(
            "dpo_loss vs lambdified eq. 2",
            np.asarray(obj.dpo_loss(lw, rw, ll, rl, beta=beta)),
            dpo_fn(logp_w - ref_w, logp_l - ref_l, beta),
            IDENTITY_TOL,
        )
    )
    return facts


@_check(
    "kto.zero_ref_is_npo",
    "eq. 18-19",
    "KTO -(2/beta) log sigma(z_ref - beta r) with z_ref = 0 is NPO: simplify == 0; "
    "kto_loss(z_ref=0) == npo_loss and kto_loss == lambdified eq. 18 at random z_ref >= 0 "
    "to 1e-10.",
)
def check_kto_zero_ref_is_npo() -> list[Fact]:
    """``L_KTO(r; z_ref = 0) = -(2/beta) log sigma(-beta r) = L_NPO(r)``."""
    facts = [_sym_identity("L_KTO(r, z_ref=0) - L_NPO(r)", kto_expr(R, 0), npo_logsigmoid_form(R))]

    rng = np.random.default_rng(SEED)
    logp, ref, beta = _random_npo_points(rng)
    z_ref = rng.uniform(0.0, 5.0, N_POINTS)
    logp_j, ref_j, z_j = _f64(logp, ref, z_ref)
    facts.append(
        _num_close(
            "kto_loss(z_ref=0) vs npo_loss",
            np.asarray(obj.kto_loss(logp_j, ref_j, beta=beta, z_ref=0.0)),
            np.asarray(obj.npo_loss(logp_j, ref_j, beta=beta)),
            IDENTITY_TOL,
        )
    )
    kto_fn = sp.lambdify((R, Z_REF, BETA), kto_expr(R, Z_REF), "numpy")
    facts.append(
        _num_close(
            "kto_loss vs lambdified eq. 18",
            np.asarray(obj.kto_loss(logp_j, ref_j, beta=beta, z_ref=z_j)),
            kto_fn(logp - ref, z_ref, beta),
            IDENTITY_TOL,
        )
    )
    return facts


# --------------------------------------------------------------------------- 8. logistic gradient

LOGISTIC_DIM = 3


def _logistic_log_prob(theta: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """``log pi_theta(y|x) = log sigma((2y - 1) <x, theta>)`` for ``y in {0, 1}``."""
    return jax.nn.log_sigmoid((2 * y - 1) * jnp.dot(x, theta))


@_check(
    "logistic.grad",
    "section 3, proof of Theorem 2 (appendix A.2)",
    "For pi(y=1|x) = sigma(<x, theta>), grad_theta log pi(y|x) = x (2y - 1)(1 - pi(y|x)) for "
    f"y in {{0, 1}}: simplify == 0 per coordinate (d = {LOGISTIC_DIM}); jax.grad of "
    "ga_loss(log_sigmoid((2y-1)<x,theta>)) equals the lambdified formula at random x, theta "
    "to 1e-10.",
)
def check_logistic_grad() -> list[Fact]:
    """``grad_theta log pi_theta(y|x) = x (2y - 1)(1 - pi_theta(y|x))`` (appendix A.2)."""
    xs = sp.symbols(f"x0:{LOGISTIC_DIM}", real=True)
    thetas = sp.symbols(f"theta0:{LOGISTIC_DIM}", real=True)
    y = sp.Symbol("y")
    score = sum(x * t for x, t in zip(xs, thetas))
    p1 = sym_sigmoid(score)
    # pi(y|x) written for both labels at once; valid for y in {0, 1} only.
    pi_y = y * p1 + (1 - y) * (1 - p1)
    log_pi_y = y * sp.log(p1) + (1 - y) * sp.log(1 - p1)
    formula = [x * (2 * y - 1) * (1 - pi_y) for x in xs]
    facts = []
    for label in (0, 1):
        residuals = [
            symbolic_residual(sp.diff(log_pi_y, t).subs(y, label), f.subs(y, label))
            for t, f in zip(thetas, formula)
        ]
        facts.append(
            _sym_fact(
                f"y={label}",
                all(res == 0 for res in residuals),
                f"simplify(d/dtheta_j log pi(y={label}|x) - x_j ({2 * label - 1})(1 - pi))"
                f" = {residuals}",
            )
        )

    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(N_POINTS, LOGISTIC_DIM))
    theta = rng.normal(size=(N_POINTS, LOGISTIC_DIM))
    labels = rng.integers(0, 2, N_POINTS).astype(np.float64)
    # L_GA is log pi itself (eq. 1), so this is also the per-example GA gradient.
    grad_fn = jax.vmap(jax.grad(lambda t, xi, yi: obj.ga_loss(_logistic_log_prob(t, xi, yi))))
    grad_jax = np.asarray(grad_fn(*_f64(theta, x, labels)))
    formula_fn = sp.lambdify((xs, thetas, y), formula, "numpy")
    grad_formula = np.stack(formula_fn(x.T, theta.T, labels), axis=-1)
    facts.append(_num_close("jax.grad vs x (2y-1)(1-pi)", grad_jax, grad_formula, IDENTITY_TOL))
    return facts


# --------------------------------------------------------------------------- 9-10. Lemma 4, Thm 2

T = sp.Symbol("t", nonnegative=True)
C = sp.Symbol("C", positive=True)
ETA0 = sp.Symbol("eta0", positive=True)
DIST = sp.Symbol("D", positive=True)

ODE_PARAMS = ((1.0, 1.0, 0.1), (0.5, 2.0, 0.05), (2.0, 0.5, 0.2), (10.0, 1.0, 0.01))
"""``(beta, C, eta0)`` for the numeric ODE checks (beta = 10 is the paper's alpha = 0 value)."""

ODE_BETA_DISTANCES = (1.0, 3.0, 6.0)
"""Distances ``D`` in units of ``1/beta``: the NPO time to reach ``D`` grows like ``e^{beta D}``."""

ODE_RTOL = 1e-12
"""Relative tolerance of ``solve_ivp`` (DOP853); its global error here is ~1e-12."""

ODE_TOL = 1e-9


class OdePath(NamedTuple):
    """A solution of ``b' = rate(b)``, ``b(0) = 0``, stopped when ``|b|`` reaches a distance.

    Attributes:
      t, b: the integrator's accepted times and values, from ``t = 0`` to the crossing.
      hit_time: the first time with ``|b| = distance`` (``solve_ivp``'s terminal event).
    """

    t: np.ndarray
    b: np.ndarray
    hit_time: float


def first_passage(rate: Callable[[float], float], distance: float, *, t_max: float = np.inf,
                  rtol: float = ODE_RTOL) -> OdePath:
    """Integrate ``b' = rate(b)``, ``b(0) = 0``, until ``|b| = distance``.

    ``scipy.integrate.solve_ivp`` with the 8th-order DOP853 method and a terminal event at
    ``|b| = distance``: the adaptive step follows Lemma 4's rate, which decays like
    ``e^{beta b}`` (a fixed step would need ``e^{beta D}`` steps to cover NPO's time), and the
    crossing time is located by the solver's root finding on its dense output.

    Args:
      rate: the right-hand side ``b -> b'(t)``.
      distance: the ``|b|`` at which to stop, > 0.
      t_max: give up after this time.
      rtol: the integrator's relative tolerance (absolute: ``rtol * distance``).
    Returns:
      An :class:`OdePath`.
    Raises:
      RuntimeError: if ``|b|`` does not reach ``distance`` by ``t_max``.
    """

    def reached(t, b):
        return abs(b[0]) - distance

    reached.terminal = True
    sol = solve_ivp(lambda t, b: [rate(b[0])], (0.0, t_max), [0.0], method="DOP853", rtol=rtol,
                    atol=rtol * distance, events=reached)
    if sol.status != 1 or not len(sol.t_events[0]):
        raise RuntimeError(f"|b| did not reach {distance} by t = {t_max}: {sol.message}")
    return OdePath(sol.t, sol.y[0], float(sol.t_events[0][0]))


def lemma4_rate(beta: float, c: float, eta0: float) -> Callable[[float], float]:
    """Lemma 4's right-hand side ``b -> -C eta0 exp(beta b)`` (``b <= 0``: no overflow)."""
    return lambda b: -c * eta0 * math.exp(beta * b)


def lemma4_solution() -> sp.Expr:
    """``b(t) = -(1/beta) log(beta C eta0 t + 1)`` (Lemma 4)."""
    return -(1 / BETA) * sp.log(BETA * C * ETA0 * T + 1)


@_check(
    "lemma4.ode",
    "Lemma 4 (appendix A)",
    "b(t) = -(1/beta) log(beta C eta0 t + 1) solves b' = -C eta0 exp(beta b), b(0) = 0: "
    "simplify of the ODE residual == 0 (and sympy.dsolve agrees); scipy's solve_ivp (DOP853) for "
    f"{len(ODE_PARAMS)} (beta, C, eta0) until beta|b| = {max(ODE_BETA_DISTANCES):g} matches "
    f"the closed form to beta max|db| <= {ODE_TOL:.0e}.",
)
def check_lemma4_ode() -> list[Fact]:
    """Lemma 4: ``b' = -C eta0 e^{beta b}``, ``b(0) = 0`` is solved by
    ``b(t) = -(1/beta) log(beta C eta0 t + 1)``."""
    b = lemma4_solution()
    b_fn = sp.Function("b")
    dsolved = sp.dsolve(
        sp.Eq(b_fn(T).diff(T), -C * ETA0 * sp.exp(BETA * b_fn(T))), b_fn(T), ics={b_fn(0): 0}
    )
    facts = [
        _sym_identity("b' + C eta0 exp(beta b)", sp.diff(b, T), -C * ETA0 * sp.exp(BETA * b)),
        _sym_identity("b(0)", b.subs(T, 0), 0),
        _sym_identity("dsolve - b", dsolved.rhs, b),
    ]

    b_closed = sp.lambdify((T, BETA, C, ETA0), b, "numpy")
    errors, steps = [], []
    for beta, c, eta0 in ODE_PARAMS:
        distance = max(ODE_BETA_DISTANCES) / beta
        path = first_passage(lemma4_rate(beta, c, eta0), distance)
        # beta b is the ODE's natural scale (u = beta b solves u' = -beta C eta0 e^u).
        errors.append(beta * float(np.max(np.abs(path.b - b_closed(path.t, beta, c, eta0)))))
        steps.append(path.t.size)
    err = max(errors)
    facts.append(
        _num_fact(
            "solve_ivp vs closed form",
            err <= ODE_TOL,
            f"solve_ivp vs closed form: beta max|db| = {err:.2g} (tol {ODE_TOL:.2g}) over "
            f"{len(ODE_PARAMS)} (beta, C, eta0), <= {max(steps)} steps each",
            error=err, tol=ODE_TOL,
        )
    )
    return facts


def crossing_time(b_expr: sp.Expr) -> sp.Expr:
    """The unique ``t > 0`` with ``-b(t) = D`` (``b`` decreasing from 0)."""
    t_pos = sp.Symbol("t_cross", positive=True)
    (solution,) = sp.solve(sp.Eq(-b_expr.subs(T, t_pos), DIST), t_pos)
    return solution


@_check(
    "thm2.exp_slowdown",
    "Theorem 2 (section 3.1)",
    "Time to reach |b| = D: GA (b' = -C eta0) needs D/(C eta0), linear in D; NPO (Lemma 4) "
    "needs (e^{beta D} - 1)/(beta C eta0); the ratio (e^{beta D} - 1)/(beta D) grows "
    "exponentially (ratio e^{-beta D/2} -> oo, log(ratio)/D -> beta) and T_NPO -> T_GA as "
    "beta -> 0 (sympy); solve_ivp first-passage times match both closed forms and the ratio to 1e-9.",
)
def check_thm2_exp_slowdown() -> list[Fact]:
    """Theorem 2: ``T_NPO(D) / T_GA(D) = (e^{beta D} - 1)/(beta D)``, exponential in ``D``."""
    b_ga = -C * ETA0 * T
    t_ga = crossing_time(b_ga)
    t_npo = crossing_time(lemma4_solution())
    ratio = sp.simplify(t_npo / t_ga)
    growth = sp.exp(BETA * DIST) - 1
    facts = [
        _sym_identity("b_GA' + C eta0", sp.diff(b_ga, T), -C * ETA0),
        _sym_identity("T_GA - D/(C eta0)", t_ga, DIST / (C * ETA0)),
        _sym_identity("d^2 T_GA/dD^2", sp.diff(t_ga, DIST, 2), 0),
        _sym_identity("T_NPO - (e^{beta D}-1)/(beta C eta0)", t_npo, growth / (BETA * C * ETA0)),
        _sym_identity("T_NPO/T_GA - (e^{beta D}-1)/(beta D)", ratio, growth / (BETA * DIST)),
        _sym_limit(
            "lim_{D->oo} ratio e^{-beta D/2}", ratio * sp.exp(-BETA * DIST / 2), DIST, sp.oo, sp.oo
        ),
        _sym_limit("lim_{D->oo} log(ratio)/D", sp.log(ratio) / DIST, DIST, sp.oo, BETA),
        _sym_limit("lim_{beta->0} T_NPO", t_npo, BETA, 0, t_ga),
    ]

    args = (BETA, C, ETA0, DIST)
    t_ga_fn = sp.lambdify(args, t_ga, "numpy")
    t_npo_fn = sp.lambdify(args, t_npo, "numpy")
    ratio_fn = sp.lambdify(args, ratio, "numpy")
    rows = []  # (T_GA numeric, T_GA closed, T_NPO numeric, T_NPO closed, ratio closed)
    for beta, c, eta0 in ODE_PARAMS:
        for beta_d in ODE_BETA_DISTANCES:
            d = beta_d / beta
            ga = first_passage(lambda b: -c * eta0, d).hit_time
            npo = first_passage(lemma4_rate(beta, c, eta0), d).hit_time
            p = (beta, c, eta0, d)
            rows.append((ga, t_ga_fn(*p), npo, t_npo_fn(*p), ratio_fn(*p)))
    ga_num, ga_cf, npo_num, npo_cf, ratio_cf = (np.array(col, np.float64) for col in zip(*rows))
    facts += [
        _num_close("T_GA: solve_ivp vs D/(C eta0)", ga_num, ga_cf, ODE_TOL),
        _num_close("T_NPO: solve_ivp vs closed form", npo_num, npo_cf, ODE_TOL),
        _num_close("T_NPO/T_GA: solve_ivp vs closed form", npo_num / ga_num, ratio_cf, ODE_TOL),
    ]
    shown_ratios = ", ".join(
        f"{bd:g}: {(math.exp(bd) - 1) / bd:.3g}" for bd in ODE_BETA_DISTANCES
    )
    facts.append(
        _num_fact(
            "ratio grows",
            np.all(np.diff(ratio_cf.reshape(len(ODE_PARAMS), -1), axis=1) > 0),
            f"T_NPO/T_GA at beta D = {shown_ratios}",
            **{f"ratio_at_beta_D_{bd:g}": (math.exp(bd) - 1) / bd for bd in ODE_BETA_DISTANCES},
        )
    )
    return facts


# --------------------------------------------------------------------------- running

CHECKS: list = [
    check_npo_two_forms,
    check_prop1_loss_limit,
    check_prop1_grad_limit,
    check_npo_grad_weight,
    check_npo_bounded_below,
    check_npo_is_dpo_without_positive,
    check_kto_zero_ref_is_npo,
    check_logistic_grad,
    check_lemma4_ode,
    check_thm2_exp_slowdown,
]
"""The checks in the paper's order; each is a zero-argument function returning a Claim."""


def _run_safely(check: Callable[[], Claim]) -> Claim:
    try:
        return check()
    except Exception as err:  # noqa: BLE001 -- a broken check must be reported, not crash the run
        return Claim(
            id=getattr(check, "claim_id", getattr(check, "__name__", repr(check))),
            paper_ref=getattr(check, "paper_ref", ""),
            statement=getattr(check, "statement", ""),
            measured=f"check raised {type(err).__name__}: {err}",
            verdict="fail",
            values={"error": f"{type(err).__name__}: {err}"},
            kind="identity",
        )


def run_all(checks: Optional[Sequence[Callable[[], Claim]]] = None) -> list[Claim]:
    """Run ``checks`` (default :data:`CHECKS`) in order; never raises.

    A check that raises becomes a failed Claim and the error in ``measured``.
    """
    return [_run_safely(check) for check in (CHECKS if checks is None else checks)]
