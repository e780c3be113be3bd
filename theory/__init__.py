"""The mathematics of NPO vs gradient ascent (PAPER.md sections 2-3).

``objectives``: every unlearning loss as a pure function of log-probabilities.
``methods``: named methods as data (weights of eq. 17) and one function evaluating any.
``symbolic``: sympy derivations of the paper's identities, cross-checked against the JAX code.
``divergence``: Theorem 2 in numbers (logistic GD on GA / NPO, in ``theta`` and in ``b``).
``claims``: the :class:`Claim` record every check returns.
"""

from theory.claims import Claim
from theory.methods import (
    METHODS,
    LossInputs,
    Method,
    get_method,
    method_loss,
    method_names,
    method_terms,
    stack_methods,
)
from theory.objectives import (
    dpo_loss,
    ga_loss,
    idk_loss,
    kl_divergence,
    kto_loss,
    kto_reference_point,
    npo_loss,
    npo_weight,
    rt_loss,
    simnpo_loss,
)

__all__ = [
    "Claim",
    "METHODS",
    "LossInputs",
    "Method",
    "get_method",
    "method_loss",
    "method_names",
    "method_terms",
    "stack_methods",
    "dpo_loss",
    "ga_loss",
    "idk_loss",
    "kl_divergence",
    "kto_loss",
    "kto_reference_point",
    "npo_loss",
    "npo_weight",
    "rt_loss",
    "simnpo_loss",
]
