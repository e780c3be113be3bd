"""The unlearning objectives of the paper's section 2, as pure functions of log-probabilities.

Zhang, Lin, Bai, Mei (2024), *Negative Preference Optimization: From Catastrophic Collapse to
Effective Unlearning*, arXiv:2404.05868; equation numbers are the paper's.

Every function here takes per-example log-probabilities (arrays of any common shape,
usually ``(n,)``) and returns per-example values of the same shape, unreduced: the caller
averages. Array arguments may be JAX or numpy arrays or nested lists of numbers (converted
with ``jnp.asarray``, integers to floats); strings and booleans are refused with a
``ValueError`` naming the argument. Hyperparameters are keyword-only. All objectives are
*minimised*.

Notation (section 2): ``logp = log pi_theta(y|x)``, ``ref_logp = log pi_ref(y|x)``
and ``r = logp - ref_logp`` the log-ratio. Each loss is written in its numerically stable
form (``softplus``, ``log_sigmoid``), so values and gradients stay finite for log-ratios of
any size representable in the dtype (tested up to +-1e4 in float32 and float64).

Gradient signs, derived rather than copied (the paper's eq. 4-5 print a leading minus that
belongs to the ascent direction, not to the gradient of the minimised loss):

* ``d/dtheta L_GA  = grad log pi_theta``
* ``d/dtheta L_NPO = W_theta * grad log pi_theta`` with ``W_theta = 2 sigma(beta r)`` in (0, 2).

Gradient *descent* on either therefore pushes ``log pi_theta(y|x)`` down; NPO's push fades
as ``W_theta -> 0`` once ``pi_theta << pi_ref``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from theory.validate import as_float_array, check_broadcastable, check_nonnegative, check_positive, check_same_shape

__all__ = [
    "ga_loss",
    "rt_loss",
    "idk_loss",
    "kl_divergence",
    "dpo_loss",
    "npo_loss",
    "npo_weight",
    "kto_loss",
    "kto_reference_point",
    "simnpo_loss",
]


# --------------------------------------------------------------------------- components


def ga_loss(logp: jax.Array) -> jax.Array:
    """Gradient-ascent loss: the forget log-likelihood itself.

    ``L_GA(x, y) = log pi_theta(y|x)`` (eq. 1). Minimising it drives ``pi_theta(y|x)``
    to 0 and the loss to ``-inf``: it has no lower bound, the root of the collapse.

    Args:
      logp: ``log pi_theta(y|x)`` on forget examples, any shape.
    Returns:
      The per-example loss, same shape as ``logp``.
    """
    return as_float_array(logp, "logp")


def rt_loss(logp: jax.Array) -> jax.Array:
    """Retain loss: negative log-likelihood on the retain set, ``L_RT = -log pi_theta(y|x)``.

    Args:
      logp: ``log pi_theta(y|x)`` on retain examples, any shape.
    Returns:
      The per-example loss, same shape. (section 2.)
    """
    return -as_float_array(logp, "logp")


def idk_loss(idk_logp: jax.Array) -> jax.Array:
    """Forget-to-uninformed loss ``L_FG = -log pi_theta(y~|x)`` (section 2, "IDK").

    Args:
      idk_logp: ``log pi_theta(y~|x)`` of the uninformed ("I don't know") answer ``y~`` on
        forget prompts, any shape.
    Returns:
      The per-example loss, same shape.
    """
    return -as_float_array(idk_logp, "idk_logp")


def kl_divergence(logp_dist: jax.Array, ref_logp_dist: jax.Array) -> jax.Array:
    """``KL(p || q) = sum_k p_k (log p_k - log q_k)`` over the last axis.

    Used for ``K_RT``/``K_FG`` (``p = pi_theta``, ``q = pi_ref``; section 2) and for
    the section-4 metrics. Computed from log-probabilities, so it is finite whenever they are.

    Args:
      logp_dist: log-probabilities of ``p``, shape ``(..., K)``, normalised over the last axis.
      ref_logp_dist: log-probabilities of ``q``, same shape.
    Returns:
      Shape ``(...)``: one divergence per distribution, >= 0 up to rounding. Entries with
      ``p_k = 0`` contribute 0.
    """
    logp_dist, ref_logp_dist = as_float_array(logp_dist, "logp_dist"), as_float_array(ref_logp_dist, "ref_logp_dist")
    check_same_shape(logp_dist=logp_dist, ref_logp_dist=ref_logp_dist)
    p = jnp.exp(logp_dist)
    # 0 log 0 = 0: entries with p = 0 (log p = -inf) contribute nothing, gradient included.
    diff = jnp.where(p > 0, logp_dist - ref_logp_dist, 0.0)
    return jnp.sum(p * diff, axis=-1)


def dpo_loss(
    logp_w: jax.Array,
    ref_logp_w: jax.Array,
    logp_l: jax.Array,
    ref_logp_l: jax.Array,
    *,
    beta,
) -> jax.Array:
    """Direct preference optimisation with the forget answer as the loser.

    ``L_DPO = -(2/beta) log sigma(beta r_w - beta r_l)`` with ``r = log pi_theta - log pi_ref``,
    winner ``y_w = y~`` (uninformed answer), loser ``y_l = y`` (forget answer). Eq. 2; the factor 2/beta (not 1/beta) is the paper's code and matches NPO, so that
    dropping the winner term gives exactly ``L_NPO`` (eq. 2 -> eq. 3).

    Args:
      logp_w, ref_logp_w: log-probs of the preferred (uninformed) answer, policy and reference.
      logp_l, ref_logp_l: log-probs of the dispreferred (forget) answer, same shape.
      beta: inverse temperature, > 0.
    Returns:
      Per-example loss, >= 0.
    """
    logp_w, ref_logp_w = as_float_array(logp_w, "logp_w"), as_float_array(ref_logp_w, "ref_logp_w")
    logp_l, ref_logp_l = as_float_array(logp_l, "logp_l"), as_float_array(ref_logp_l, "ref_logp_l")
    check_same_shape(logp_w=logp_w, ref_logp_w=ref_logp_w, logp_l=logp_l, ref_logp_l=ref_logp_l)
    check_positive(beta, "beta")
    margin = (logp_w - ref_logp_w) - (logp_l - ref_logp_l)
    return -(2.0 / beta) * jax.nn.log_sigmoid(beta * margin)


def npo_loss(logp: jax.Array, ref_logp: jax.Array, *, beta) -> jax.Array:
    """Negative preference optimisation (eq. 3).

    ``L_NPO = -(2/beta) log sigma(-beta r) = (2/beta) log(1 + (pi_theta/pi_ref)^beta)``,
    computed as ``(2/beta) softplus(beta r)``.

    Limits: ``L_NPO >= 0`` (> 0 in exact arithmetic) and ``-> 0`` as ``pi_theta -> 0`` (bounded below, unlike GA);
    as ``beta -> 0``, ``L_NPO - (2/beta) log 2 -> r`` and its gradient tends to GA's
    (Proposition 1).

    Args:
      logp: ``log pi_theta(y|x)`` on forget examples.
      ref_logp: ``log pi_ref(y|x)``, same shape.
      beta: inverse temperature, > 0.
    Returns:
      Per-example loss, same shape.
    """
    logp, ref_logp = as_float_array(logp, "logp"), as_float_array(ref_logp, "ref_logp")
    check_same_shape(logp=logp, ref_logp=ref_logp)
    check_positive(beta, "beta")
    return (2.0 / beta) * jax.nn.softplus(beta * (logp - ref_logp))


def npo_weight(logp: jax.Array, ref_logp: jax.Array, *, beta) -> jax.Array:
    """NPO's adaptive gradient weight ``W_theta = 2 pi^beta / (pi^beta + pi_ref^beta)``.

    Equal to ``2 sigma(beta r)``; lies in (0, 2), is 1 at ``pi_theta = pi_ref`` and tends to 0
    as ``pi_theta -> 0``. ``grad L_NPO = W_theta * grad log pi_theta`` (eq. 4-5,
    with the sign derived for the minimised loss).

    Args:
      logp, ref_logp: policy and reference log-probs, same shape.
      beta: inverse temperature, > 0.
    Returns:
      Per-example weight, same shape.
    """
    logp, ref_logp = as_float_array(logp, "logp"), as_float_array(ref_logp, "ref_logp")
    check_same_shape(logp=logp, ref_logp=ref_logp)
    check_positive(beta, "beta")
    return 2.0 * jax.nn.sigmoid(beta * (logp - ref_logp))


def kto_reference_point(forget_kl: jax.Array, *, beta) -> jax.Array:
    """KTO's reference point ``z_ref = beta * E_FG[KL(pi_theta || pi_ref)]``, gradient stopped.

    Eq. 19: it is a batch statistic held constant (no gradient flows through it).
    KL is clamped at 0 against rounding.

    Args:
      forget_kl: per-example ``KL(pi_theta(.|x) || pi_ref(.|x))`` on forget prompts.
      beta: inverse temperature, > 0.
    Returns:
      A scalar.
    """
    check_positive(beta, "beta")
    forget_kl = as_float_array(forget_kl, "forget_kl")
    return jax.lax.stop_gradient(beta * jnp.maximum(jnp.mean(forget_kl), 0.0))


def kto_loss(logp: jax.Array, ref_logp: jax.Array, *, beta, z_ref) -> jax.Array:
    """The paper's KTO variant, ``L_KTO = -(2/beta) log sigma(z_ref - beta r)`` (eq. 18-19).

    ``z_ref`` is treated as a constant (``stop_gradient``); with ``z_ref = 0`` this is exactly
    ``L_NPO``. Use :func:`kto_reference_point` to compute it from the forget KL.

    Args:
      logp, ref_logp: policy and reference log-probs on forget examples, same shape.
      beta: inverse temperature, > 0.
      z_ref: the reference point, a scalar or broadcastable array, >= 0.
    Returns:
      Per-example loss, same shape as ``logp``.
    """
    logp, ref_logp = as_float_array(logp, "logp"), as_float_array(ref_logp, "ref_logp")
    check_same_shape(logp=logp, ref_logp=ref_logp)
    check_positive(beta, "beta")
    check_nonnegative(z_ref, "z_ref")
    check_broadcastable("z_ref", z_ref, jnp.shape(logp))
    z_ref = jax.lax.stop_gradient(as_float_array(z_ref, "z_ref"))
    return -(2.0 / beta) * jax.nn.log_sigmoid(z_ref - beta * (logp - ref_logp))


def simnpo_loss(logp: jax.Array, length: jax.Array, *, beta, gamma=0.0) -> jax.Array:
    """SimNPO (Fan et al. 2024): reference-free, length-normalised NPO.

    ``L_SimNPO = -(2/beta) log sigma(-(beta/|y|) log pi_theta(y|x) - gamma)`` (Fan et al. 2024,
    arXiv:2410.07163). Their code puts the margin inside the beta scaling; that is this form with
    ``gamma_code = gamma / beta`` (the two agree at ``gamma = 0``).

    Args:
      logp: ``log pi_theta(y|x)`` summed over the answer's tokens.
      length: ``|y|``, the answer length in tokens (> 0), broadcastable to ``logp``.
      beta: inverse temperature, > 0.
      gamma: margin, >= 0.
    Returns:
      Per-example loss, same shape as ``logp``.
    """
    check_positive(beta, "beta")
    check_nonnegative(gamma, "gamma")
    logp, length = as_float_array(logp, "logp"), as_float_array(length, "length")
    check_positive(length, "length")
    check_broadcastable("length", length, jnp.shape(logp))
    return -(2.0 / beta) * jax.nn.log_sigmoid(-(beta / length) * logp - gamma)
