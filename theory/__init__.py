"""The mathematics of NPO vs gradient ascent (Zhang, Lin, Bai, Mei 2024, sections 2-3).

``objectives``: every unlearning loss as a pure function of log-probabilities.
``components``: the terms of eq. 17, each with the inputs and hyperparameters it reads.
``methods``: named methods as data (component weights plus hyperparameters), one loss for all.
``symbolic``: sympy derivations of the paper's identities, cross-checked against the JAX code.
``theorem2``: the closed-form predictions of Theorem 2 and Lemmas 3-4.
``claims``: the :class:`Claim` record every check returns.

This package imports nothing else from the project.
"""

from theory.claims import Claim
from theory.components import (
    COMPONENTS,
    HYPERPARAMETERS,
    INPUTS,
    Component,
    register_component,
    register_hyperparameter,
    register_input,
)
from theory.methods import (
    METHODS,
    Method,
    as_method,
    as_methods,
    get_method,
    method_loss,
    method_names,
    method_terms,
    register_method,
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
    "COMPONENTS",
    "HYPERPARAMETERS",
    "INPUTS",
    "Component",
    "register_component",
    "register_hyperparameter",
    "register_input",
    "METHODS",
    "Method",
    "as_method",
    "as_methods",
    "get_method",
    "method_loss",
    "method_names",
    "method_terms",
    "register_method",
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
