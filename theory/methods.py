"""Unlearning methods as data: weights of loss components plus hyperparameters (eq. 17).

A :class:`Method` maps component names (:mod:`theory.components`) to weights and
hyperparameter names to values, e.g. NPO+RT is ``weights={"npo": 1, "rt": 1}``,
``hyper={"beta": 1}``. It is a JAX pytree whose leaves are all numbers, so a stack of
methods (:func:`stack_methods`) is one ``Method`` of arrays and a single compiled program can
``vmap`` over methods, betas and learning rates alike. There is no string switch inside the
loss: :func:`method_loss` always evaluates the weighted sum of the method's components.

The keys of ``weights`` decide which components are computed; they are static structure,
visible even inside ``jit``/``vmap``, so a component whose inputs are missing raises a
``ValueError`` when the loss is traced, never a silent NaN.

The paper's named methods (``"GA"``, ``"NPO+RT"``, ...) are entries of :data:`METHODS`;
:func:`register_method` adds your own.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from theory.components import COMPONENTS, HYPERPARAMETERS, INPUTS, check_replace, closest, get_component
from theory.validate import check_finite

__all__ = [
    "Method",
    "METHODS",
    "method_names",
    "get_method",
    "as_method",
    "as_methods",
    "register_method",
    "stack_methods",
    "method_terms",
    "method_loss",
]


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Method:
    """Weights of loss components and the hyperparameters they read.

    Build one with :meth:`Method.of` (``Method.of(npo=1, rt=1, beta=0.5)``) or
    :func:`get_method`. Leaves are numbers (or arrays with a leading run axis for a stack).

    Attributes:
      weights: component name -> weight. Its keys are the components computed.
      hyper: hyperparameter name -> value; at least every hyperparameter its components read.
    """

    weights: Mapping[str, object]
    hyper: Mapping[str, object]

    @classmethod
    def of(cls, **terms) -> "Method":
        """A validated method from keywords: component weights and hyperparameter values.

        Zero weights are dropped; hyperparameters the components read but that are not given
        take their registered defaults (``beta = 1``, ``gamma = 0``).
        """
        for k, v in terms.items():
            if k not in HYPERPARAMETERS and k not in COMPONENTS:
                allowed = list(COMPONENTS) + list(HYPERPARAMETERS)
                raise ValueError(f"unknown method term {k!r}{closest(k, allowed)} Allowed: {', '.join(allowed)}")
            if k in COMPONENTS:
                check_finite(v, f"method weight {k}")
        weights = {k: float(v) for k, v in terms.items() if k not in HYPERPARAMETERS and v != 0}
        hyper = {k: v for k, v in terms.items() if k in HYPERPARAMETERS}
        if not weights:
            raise ValueError("a method needs at least one component with a non-zero weight")
        for c in weights:
            for h in get_component(c).hyper:
                hyper.setdefault(h, HYPERPARAMETERS[h].default)
        return cls(weights=weights, hyper={k: hyper[k] for k in sorted(hyper)}).validate()

    def validate(self) -> "Method":
        """Check a concrete method: known components, finite weights, allowed hyperparameters.

        Traced leaves (inside ``jit``/``vmap``) cannot be inspected and are let through.
        """
        for name, w in self.weights.items():
            get_component(name)
            check_finite(w, f"method weight {name}")
        for name, value in self.hyper.items():
            if name not in HYPERPARAMETERS:
                raise ValueError(f"unknown hyperparameter {name!r}{closest(name, HYPERPARAMETERS)} "
                                 f"Allowed: {', '.join(HYPERPARAMETERS)}")
            HYPERPARAMETERS[name].check(value)
        missing = sorted({h for c in self.weights for h in get_component(c).hyper} - set(self.hyper))
        if missing:
            raise ValueError(f"method lacks hyperparameter(s) {missing} that its components read")
        return self

    def replace(self, **terms) -> "Method":
        """A copy with some weights or hyperparameters changed (a weight of 0 drops the term)."""
        merged = {**self.weights, **self.hyper, **terms}
        return Method.of(**merged)

    def active(self) -> "Method":
        """The components whose weight is non-zero somewhere (for a stack: in some run).

        The engine calls this on a stacked grid before tracing, so that a grid of forget-only
        methods computes no retain inputs.
        """
        keep = {k: w for k, w in self.weights.items() if not _is_concrete(w) or np.any(np.asarray(w) != 0)}
        return Method(weights=keep, hyper=dict(self.hyper))

    @property
    def components(self) -> tuple[str, ...]:
        """Names of the components with a non-zero weight (somewhere, for a stack)."""
        return tuple(self.active().weights)

    @property
    def needs(self) -> frozenset:
        """The input names the method's active components read."""
        return frozenset(n for c in self.components for n in get_component(c).needs)

    @property
    def sources(self) -> frozenset:
        """The data sets the method reads: a subset of ``{"forget", "retain"}``."""
        return frozenset(INPUTS[n].source for n in self.needs)

    @property
    def uses_retain(self) -> bool:
        """Whether the method reads retain data (RT, the retain KL, or a user component on it)."""
        return "retain" in self.sources

    def uses(self, hyperparameter: str) -> bool:
        """Whether an active component reads ``hyperparameter`` (e.g. ``"beta"``)."""
        return any(hyperparameter in get_component(c).hyper for c in self.components)

    def weight(self, component: str):
        """The weight of ``component`` (0.0 if the method does not have it)."""
        return self.weights.get(component, 0.0)

    @property
    def beta(self):
        """``hyper["beta"]`` (the default when the method does not set it)."""
        return self.hyper.get("beta", HYPERPARAMETERS["beta"].default)

    @property
    def gamma(self):
        """``hyper["gamma"]`` (the default when the method does not set it)."""
        return self.hyper.get("gamma", HYPERPARAMETERS["gamma"].default)


METHODS: dict[str, Method] = {}
"""The named methods: the paper's (section 2; combined terms have weight 1) and any registered."""


BUILTIN_METHODS: frozenset = frozenset()  # set below, once the paper's methods are registered


def register_method(name: str, method: Method, *, replace: bool = False) -> Method:
    """Register ``method`` under ``name`` (a new name), so :func:`get_method` finds it.

    ``replace=True`` registers a name registered before, e.g. by the same notebook cell run
    again; the toolkit's own methods are never replaced."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    check_replace(name, "method", METHODS, replace, BUILTIN_METHODS)
    if not isinstance(method, Method):
        raise ValueError(f"method must be a Method (see Method.of), got {type(method).__name__}")
    METHODS[name] = method.validate()
    return METHODS[name]


for _name, _terms in (
    ("GA", {"ga": 1}),
    ("GA+RT", {"ga": 1, "rt": 1}),
    ("GA+KL", {"ga": 1, "kl_rt": 1}),
    ("IDK+RT", {"idk": 1, "rt": 1}),
    ("DPO", {"dpo": 1}),
    ("DPO+RT", {"dpo": 1, "rt": 1}),
    ("DPO+KL", {"dpo": 1, "kl_rt": 1}),
    ("KTO", {"kto": 1}),
    ("KTO+RT", {"kto": 1, "rt": 1}),
    ("NPO", {"npo": 1}),
    ("NPO+RT", {"npo": 1, "rt": 1}),
    ("NPO+KL", {"npo": 1, "kl_rt": 1}),
    ("SimNPO", {"simnpo": 1}),
    ("SimNPO+RT", {"simnpo": 1, "rt": 1}),
):
    register_method(_name, Method.of(**_terms))

BUILTIN_METHODS = frozenset(METHODS)
"""The toolkit's own methods: ``register_method(..., replace=True)`` never replaces them."""


def method_names() -> list[str]:
    """Names of the registered methods, the paper's first, in its order."""
    return list(METHODS)


def get_method(name: str, **hyper) -> Method:
    """The registered method ``name``, with hyperparameters changed by keyword (``beta=0.5``).

    A hyperparameter the method does not read may be set too (it is stored and ignored), so a
    grid can give every setting a ``beta``; ``method.uses("beta")`` tells whether it matters.

    Raises:
      ValueError: for an unknown name (suggesting the closest), an unknown hyperparameter or
        a value out of range.
    """
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}{closest(name, METHODS)} Allowed: {', '.join(METHODS)}")
    for k in hyper:
        if k not in HYPERPARAMETERS:
            raise ValueError(f"unknown hyperparameter {k!r}{closest(k, HYPERPARAMETERS)} "
                             f"Allowed: {', '.join(HYPERPARAMETERS)}")
    base = METHODS[name]
    changes = {k: v for k, v in hyper.items() if v is not None}
    for k, v in changes.items():  # one method, one value: a grid over betas is a list of methods
        if np.ndim(v) != 0:
            raise ValueError(f"{k} must be a single number for one method, got {v!r} (for several values, make "
                             f"one method each: [get_method({name!r}, {k}=b) for b in values])")
    return Method(weights=dict(base.weights), hyper=dict(sorted({**base.hyper, **changes}.items()))).validate()


def as_method(method, name: str = "method") -> Method:
    """``method`` itself if it is a :class:`Method`, the registered method of that name if it is
    a string (:func:`get_method`, with the registered hyperparameters); ``ValueError`` naming
    ``name`` otherwise (an unknown name gets the closest registered one suggested)."""
    if isinstance(method, Method):
        return method
    if isinstance(method, str):
        if method not in METHODS:
            raise ValueError(f"{name} must be a Method or a registered method name, got unknown name {method!r}"
                             f"{closest(method, METHODS)} Allowed names: {', '.join(METHODS)}")
        return get_method(method)
    raise ValueError(f"{name} must be a Method or a registered method name (theory.method_names()), got "
                     f"{type(method).__name__}; build one with theory.get_method(name, beta=...) or Method.of(...)")


def as_methods(methods, name: str = "methods") -> list[Method]:
    """A non-empty list of :class:`Method` from a sequence of methods or registered names (a
    single method or name counts as a list of one); ``ValueError`` naming ``name[k]`` for a bad
    entry, or ``name`` for an empty sequence or one that is not a sequence."""
    if isinstance(methods, (Method, str)):
        methods = [methods]
    try:
        methods = list(methods)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of Method or registered method names, "
                         f"got {type(methods).__name__}") from None
    if not methods:
        raise ValueError(f"{name} must name at least one method (a non-empty sequence of Method or registered "
                         f"names), got an empty sequence")
    return [as_method(m, f"{name}[{k}]") for k, m in enumerate(methods)]


def stack_methods(methods) -> Method:
    """Stack concrete methods into one ``Method`` of arrays (leading axis = run), for ``vmap``.

    ``methods``: :class:`Method` s or registered names (:func:`as_methods`). The stack has the
    union of the methods' components (weight 0 where a method lacks one) and of their
    hyperparameters (the registered default where a method lacks one).
    """
    methods = as_methods(methods)
    for m in methods:
        m.validate()
    names = list(dict.fromkeys(c for m in methods for c in m.weights))
    hypers = sorted({h for m in methods for h in m.hyper})
    weights = {c: jnp.asarray(np.array([float(m.weight(c)) for m in methods])) for c in names}
    hyper = {h: jnp.asarray(np.array([float(m.hyper.get(h, HYPERPARAMETERS[h].default)) for m in methods]))
             for h in hypers}
    return Method(weights=weights, hyper=hyper)


def _check_inputs(method: Method, inputs: Mapping) -> None:
    missing = {}
    for c in method.weights:
        lacking = [n for n in get_component(c).needs if inputs.get(n) is None]
        if lacking:
            missing[c] = lacking
    if missing:
        listed = "; ".join(f"{c} needs {', '.join(n)}" for c, n in missing.items())
        raise ValueError(f"the method's inputs are missing: {listed} (got {', '.join(sorted(inputs))})")


def _component_losses(method: Method, inputs: Mapping, gated: bool) -> dict:
    """The loss of each component ``method`` gives a weight (concretely non-zero, or traced),
    from the inputs it needs; each must be one number.

    ``gated``: a run of a stacked grid that gives a component weight 0 must not feel it at all,
    even where its loss or derivatives are NaN or infinite, so its inputs pass through a select
    on the weight, which drops its cotangent for that run in the backward pass (the cotangent 0
    times a NaN partial would be NaN).
    """
    active = method.active()
    _check_inputs(active, inputs)
    losses = {}
    for c in active.weights:
        component, w = get_component(c), method.weights[c]
        gate = (lambda x: jnp.where(w != 0, x, jax.lax.stop_gradient(x))) if gated else (lambda x: x)
        term = component.loss({n: gate(inputs[n]) for n in component.needs}, method.hyper)
        if jnp.ndim(term) != 0:  # shapes are known while tracing, so this holds inside jit too
            raise ValueError(f"component {c!r} must return one number (the batch's loss), got shape "
                             f"{jnp.shape(term)}: reduce it, e.g. with jnp.mean")
        losses[c] = term
    return losses


def method_terms(method: Method, inputs: Mapping) -> dict:
    """The loss of each of ``method``'s components on a batch, unweighted (for logging).

    Components whose weight is concretely zero are left out; the others need their inputs.
    ``method`` may be a registered name (:func:`as_method`).
    """
    return _component_losses(as_method(method), inputs, gated=False)


def method_loss(method: Method, inputs: Mapping) -> jax.Array:
    """The scalar loss of ``method`` on a batch: ``sum_c weights[c] * loss_c(inputs, hyper)``.

    A component with weight 0 contributes exactly 0 to the loss and to its gradient, even if
    its loss is infinite or NaN (a grid's settings are independent).

    Args:
      method: a :class:`Method` (scalar leaves; ``vmap`` over a stacked one for a grid), or a
        registered method name (:func:`as_method`).
      inputs: input name -> per-example array (see :data:`theory.components.INPUTS`).
    Returns:
      A scalar.
    Raises:
      ValueError: if an input of one of the method's components is missing (checked when
        the loss is traced, so inside ``jit`` too) or a concrete method is invalid.
    """
    method = as_method(method).validate()
    total = 0.0
    for c, term in _component_losses(method, inputs, gated=True).items():
        w = method.weights[c]
        total = total + jnp.where(w != 0, w * term, 0.0)  # where, not a product: 0 * inf is NaN
    return total
