"""Unlearning methods as data: a weighted sum of the components of PAPER.md eq. 17.

A :class:`Method` is an immutable record of weights and temperatures; it is a JAX pytree
whose leaves are all numbers, so a stack of methods is just a ``Method`` of arrays and one
compiled program can ``vmap`` over methods, betas and learning rates alike. There is no
string switch inside the loss: :func:`method_loss` always evaluates

    c_ga L_GA + c_npo L_NPO + c_dpo L_DPO + c_kto L_KTO + c_simnpo L_SimNPO
      + c_idk L_FG + c_rt L_RT + c_kl_rt K_RT - c_kl_fg K_FG

on a :class:`LossInputs` record of per-example log-probabilities (model-independent), and
the named methods of the paper (``"GA"``, ``"NPO+RT"``, ...) are entries of :data:`METHODS`.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from theory import objectives as obj
from theory.validate import check_nonnegative, check_positive

__all__ = [
    "Method",
    "LossInputs",
    "METHODS",
    "method_names",
    "get_method",
    "stack_methods",
    "method_terms",
    "method_loss",
]

WEIGHT_FIELDS = ("ga", "npo", "dpo", "kto", "simnpo", "idk", "rt", "kl_rt", "kl_fg")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Method:
    """Weights of each loss component (eq. 17) plus the temperatures they use.

    Attributes:
      ga, npo, dpo, kto, simnpo, idk, rt, kl_rt: weights of ``L_GA``, ``L_NPO``, ``L_DPO``,
        ``L_KTO``, ``L_SimNPO``, ``L_FG`` (IDK), ``L_RT`` and ``K_RT``.
      kl_fg: weight of ``K_FG``, which enters with a minus sign (eq. 17).
      beta: inverse temperature of NPO, DPO, KTO and SimNPO (> 0).
      gamma: SimNPO's margin (>= 0).
    """

    ga: float = 0.0
    npo: float = 0.0
    dpo: float = 0.0
    kto: float = 0.0
    simnpo: float = 0.0
    idk: float = 0.0
    rt: float = 0.0
    kl_rt: float = 0.0
    kl_fg: float = 0.0
    beta: float = 1.0
    gamma: float = 0.0

    def replace(self, **changes) -> "Method":
        """A copy with some fields changed, validated."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(
                f"unknown Method field(s) {sorted(unknown)}; "
                f"allowed: {[f.name for f in dataclasses.fields(self)]}"
            )
        return validate_method(dataclasses.replace(self, **changes))

    def weights(self) -> dict:
        """The component weights as a dict (only meaningful for a concrete method)."""
        return {name: getattr(self, name) for name in WEIGHT_FIELDS}


def validate_method(method: Method) -> Method:
    """Check a concrete method: ``beta > 0``, ``gamma >= 0``, finite weights."""
    check_positive(method.beta, "beta")
    check_nonnegative(method.gamma, "gamma")
    for name in WEIGHT_FIELDS:
        w = getattr(method, name)
        if not isinstance(w, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(w, float))):
            raise ValueError(f"method weight {name} must be finite, got {w!r}")
    return method


METHODS: dict[str, Method] = {
    "GA": Method(ga=1.0),
    "GA+RT": Method(ga=1.0, rt=1.0),
    "GA+KL": Method(ga=1.0, kl_rt=1.0),
    "IDK+RT": Method(idk=1.0, rt=1.0),
    "DPO": Method(dpo=1.0),
    "DPO+RT": Method(dpo=1.0, rt=1.0),
    "DPO+KL": Method(dpo=1.0, kl_rt=1.0),
    "KTO": Method(kto=1.0),
    "KTO+RT": Method(kto=1.0, rt=1.0),
    "NPO": Method(npo=1.0),
    "NPO+RT": Method(npo=1.0, rt=1.0),
    "NPO+KL": Method(npo=1.0, kl_rt=1.0),
    "SimNPO": Method(simnpo=1.0),
    "SimNPO+RT": Method(simnpo=1.0, rt=1.0),
}
"""The named methods of PAPER.md section 2 (combined terms have weight 1)."""


def method_names() -> list[str]:
    """Names of the registered methods, in the paper's order."""
    return list(METHODS)


def get_method(name: str, *, beta: Optional[float] = None, gamma: Optional[float] = None) -> Method:
    """The registered method ``name``, optionally with another ``beta`` or ``gamma``.

    Raises:
      ValueError: for an unknown name, suggesting the closest registered one, or for an
        invalid ``beta`` / ``gamma``.
    """
    if name not in METHODS:
        by_upper = {n.upper(): n for n in METHODS}
        close = difflib.get_close_matches(str(name).upper(), list(by_upper), n=1, cutoff=0.0)
        hint = f"; did you mean {by_upper[close[0]]!r}?" if close else ""
        raise ValueError(f"unknown method {name!r}{hint} Allowed: {', '.join(METHODS)}")
    changes = {k: v for k, v in (("beta", beta), ("gamma", gamma)) if v is not None}
    return METHODS[name].replace(**changes)


def stack_methods(methods) -> Method:
    """Stack concrete methods into one ``Method`` of arrays (leading axis = run), for vmap."""
    methods = [validate_method(m) for m in methods]
    if not methods:
        raise ValueError("methods must be a non-empty sequence of Method")
    return jax.tree.map(lambda *xs: jnp.asarray(np.array(xs, dtype=float)), *methods)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LossInputs:
    """Per-example quantities a method's loss is built from, all functions of ``theta``.

    Only ``forget_logp`` and ``forget_ref_logp`` are required; a component whose inputs are
    ``None`` is left out (and :func:`method_loss` refuses a concrete method that weights it).

    Attributes:
      forget_logp: ``log pi_theta(y|x)`` on the forget batch, ``(n_f,)``.
      forget_ref_logp: ``log pi_ref(y|x)``, ``(n_f,)``.
      idk_logp: ``log pi_theta(y~|x)`` of the uninformed answer (IDK, DPO), ``(n_f,)``.
      idk_ref_logp: ``log pi_ref(y~|x)`` (DPO), ``(n_f,)``.
      forget_length: ``|y|`` in tokens for SimNPO, ``(n_f,)``; ``None`` means 1 (one token).
      forget_kl: ``KL(pi_theta || pi_ref)`` per forget example (KTO's ``z_ref``, ``K_FG``).
      retain_logp: ``log pi_theta(y|x)`` on the retain batch, ``(n_r,)`` (RT).
      retain_kl: ``KL(pi_theta || pi_ref)`` per retain example, ``(n_r,)`` (``K_RT``).
    """

    forget_logp: jax.Array
    forget_ref_logp: jax.Array
    idk_logp: Optional[jax.Array] = None
    idk_ref_logp: Optional[jax.Array] = None
    forget_length: Optional[jax.Array] = None
    forget_kl: Optional[jax.Array] = None
    retain_logp: Optional[jax.Array] = None
    retain_kl: Optional[jax.Array] = None


_NEEDS = {
    "dpo": ("idk_logp", "idk_ref_logp"),
    "idk": ("idk_logp",),
    "kto": ("forget_kl",),
    "kl_fg": ("forget_kl",),
    "rt": ("retain_logp",),
    "kl_rt": ("retain_kl",),
}


def method_terms(method: Method, inputs: LossInputs) -> dict:
    """Batch means of every component that ``inputs`` allows, keyed by weight name.

    The values are the unweighted terms (``kl_fg`` with a plus sign); useful for logging.
    """
    f, fr = inputs.forget_logp, inputs.forget_ref_logp
    beta = method.beta
    length = 1.0 if inputs.forget_length is None else inputs.forget_length
    terms = {
        "ga": jnp.mean(obj.ga_loss(f)),
        "npo": jnp.mean(obj.npo_loss(f, fr, beta=beta)),
        "simnpo": jnp.mean(obj.simnpo_loss(f, length, beta=beta, gamma=method.gamma)),
    }
    if inputs.idk_logp is not None:
        terms["idk"] = jnp.mean(obj.idk_loss(inputs.idk_logp))
        if inputs.idk_ref_logp is not None:
            terms["dpo"] = jnp.mean(
                obj.dpo_loss(inputs.idk_logp, inputs.idk_ref_logp, f, fr, beta=beta)
            )
    if inputs.forget_kl is not None:
        z_ref = obj.kto_reference_point(inputs.forget_kl, beta=beta)
        terms["kto"] = jnp.mean(obj.kto_loss(f, fr, beta=beta, z_ref=z_ref))
        terms["kl_fg"] = jnp.mean(inputs.forget_kl)
    if inputs.retain_logp is not None:
        terms["rt"] = jnp.mean(obj.rt_loss(inputs.retain_logp))
    if inputs.retain_kl is not None:
        terms["kl_rt"] = jnp.mean(inputs.retain_kl)
    return terms


def _check_inputs(method: Method, inputs: LossInputs) -> None:
    for name, needed in _NEEDS.items():
        weight = getattr(method, name)
        if isinstance(weight, jax.core.Tracer) or not np.any(np.asarray(weight) != 0):
            continue
        missing = [n for n in needed if getattr(inputs, n) is None]
        if missing:
            raise ValueError(
                f"method weight {name}={weight} needs LossInputs.{', '.join(missing)}, "
                "which is None"
            )


def method_loss(method: Method, inputs: LossInputs) -> jax.Array:
    """The scalar loss of ``method`` on a batch: the weighted sum of eq. 17.

    Components with weight 0 contribute exactly 0 (even if infinite). A component with a
    non-zero weight whose inputs are ``None`` raises ``ValueError`` for a concrete method and
    makes the loss NaN under ``jit``/``vmap``, where the weights cannot be inspected.

    Args:
      method: a :class:`Method` (scalar leaves; ``vmap`` over a stacked one for a grid).
      inputs: the batch's :class:`LossInputs`.
    Returns:
      A scalar.
    """
    validate_method(method)
    _check_inputs(method, inputs)
    terms = method_terms(method, inputs)
    total = 0.0
    for name in WEIGHT_FIELDS:
        weight = getattr(method, name)
        if name not in terms:
            # Under jit/vmap the weights are traced and _check_inputs cannot see them: a
            # weighted component without its inputs poisons the loss instead of vanishing.
            total = total + jnp.where(weight != 0, jnp.nan, 0.0)
            continue
        sign = -1.0 if name == "kl_fg" else 1.0
        # where, not a product: 0 * inf would be NaN for a component the method ignores.
        total = total + jnp.where(weight != 0, sign * weight * terms[name], 0.0)
    return total
