"""The loss components every unlearning method is built from, and what each one needs.

The paper writes its whole family of methods as one weighted sum of a few terms (eq. 17):
GA, NPO, DPO, KTO, SimNPO, the forget-to-uninformed term (IDK), the retain term (RT) and
the KL terms on retain and forget data. This module registers each term as a
:class:`Component`: a pure function of named *inputs* (per-example log-probabilities and
friends, see :data:`INPUTS`) and of named *hyperparameters* (``beta``, ``gamma``, see
:data:`HYPERPARAMETERS`), returning the batch loss it adds to a method's objective.

Each component declares, here and only here, which inputs and hyperparameters it reads.
Everything else asks the component: a method knows the inputs it needs and whether it uses
``beta`` or retain data (:class:`theory.methods.Method`), the engine computes only the inputs
the methods of a grid need, and a method whose inputs are missing is refused with a
``ValueError`` before anything runs.

Your own component, in your own script (see ``docs/extending.md``)::

    from theory.components import register_component, register_input

    register_input("forget_entropy", "forget", "entropy of pi_theta(.|x) per forget example")

    @register_component("maxent", needs=("forget_entropy",))
    def maxent(inputs, hyper):
        return -jnp.mean(inputs["forget_entropy"])   # push the forget answers to uniform
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Callable, Mapping, Optional

import jax
import jax.numpy as jnp

from theory import objectives as obj
from theory.validate import check_nonnegative, check_positive

__all__ = [
    "Input",
    "Hyperparameter",
    "Component",
    "INPUTS",
    "HYPERPARAMETERS",
    "COMPONENTS",
    "register_input",
    "register_hyperparameter",
    "register_component",
    "get_component",
    "closest",
]

SOURCES = ("forget", "retain")
"""The data sets an input can be computed from."""


@dataclasses.dataclass(frozen=True)
class Input:
    """A named quantity a component reads, computed by the model family from a batch.

    Attributes:
      name: the key in the inputs mapping, e.g. ``"forget_logp"``.
      source: the data set it is computed from, ``"forget"`` or ``"retain"``.
      description: what it is, with its shape.
    """

    name: str
    source: str
    description: str


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
    """A temperature or margin shared by components (``beta``, ``gamma``, ...).

    Attributes:
      name: the key in a method's ``hyper`` mapping.
      default: the value a method gets when it does not set it.
      positive: ``True`` requires values ``> 0``, ``False`` values ``>= 0``.
      description: what it is.
    """

    name: str
    default: float
    positive: bool
    description: str

    def check(self, value) -> None:
        """``ValueError`` naming the hyperparameter unless a concrete ``value`` is allowed: a
        finite number (not a string, not a bool), ``> 0`` or ``>= 0``."""
        (check_positive if self.positive else check_nonnegative)(value, self.name)


@dataclasses.dataclass(frozen=True)
class Component:
    """One term of eq. 17: ``loss(inputs, hyper) -> scalar``, with what it reads.

    Attributes:
      name: the key in a method's ``weights``, e.g. ``"npo"``.
      loss: ``(inputs, hyper) -> scalar``, the batch loss this term adds (with its sign: the
        forget KL of eq. 17 enters with a minus sign, so its loss is ``-mean K_FG``).
        ``inputs`` maps input names to arrays, ``hyper`` hyperparameter names to scalars.
      needs: the input names it reads (registered in :data:`INPUTS`).
      hyper: the hyperparameter names it reads (registered in :data:`HYPERPARAMETERS`).
      description: the formula and the paper's reference.
    """

    name: str
    loss: Callable[[Mapping[str, jax.Array], Mapping[str, jax.Array]], jax.Array]
    needs: tuple[str, ...]
    hyper: tuple[str, ...] = ()
    description: str = ""


INPUTS: dict[str, Input] = {}
"""Every registered input name (the standard ones below, plus any a user registers)."""

HYPERPARAMETERS: dict[str, Hyperparameter] = {}
"""Every registered hyperparameter name."""

COMPONENTS: dict[str, Component] = {}
"""Every registered component, by name, in registration order."""


def closest(name, allowed) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``allowed`` (case-insensitive), or ``""``."""
    by_upper = {str(a).upper(): a for a in allowed}
    close = difflib.get_close_matches(str(name).upper(), list(by_upper), n=1, cutoff=0.6)
    return f"; did you mean {by_upper[close[0]]!r}?" if close else ""


def _check_new_name(name, kind: str, taken: Mapping, replace: bool = False, builtin: frozenset = frozenset()) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{kind} name must be a Python identifier, got {name!r}")
    check_replace(name, kind, taken, replace, builtin)
    return name


def check_replace(name: str, kind: str, taken: Mapping, replace, builtin: frozenset) -> None:
    """Refuse a name already in ``taken`` unless ``replace`` is true and the name is not one of
    the toolkit's own (``builtin``)."""
    if not isinstance(replace, bool):
        raise ValueError(f"replace must be True or False, got {replace!r}")
    if name in taken and not replace:
        raise ValueError(f"{kind} {name!r} is already registered (pass replace=True to register it again, "
                         "e.g. when a notebook cell runs a second time)")
    if replace and name in builtin:
        raise ValueError(f"{kind} {name!r} is one of the toolkit's own and cannot be replaced; choose another name")


def register_input(name: str, source: str, description: str) -> Input:
    """Register an input name that components may read.

    Args:
      name: a new identifier, e.g. ``"forget_hidden"``.
      source: ``"forget"`` or ``"retain"``, the data set it is computed from (this is how a
        method answers "do you need retain data?").
      description: what it is, with its shape.
    Returns:
      The registered :class:`Input`.
    """
    _check_new_name(name, "input", INPUTS)
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    INPUTS[name] = Input(name, source, str(description))
    return INPUTS[name]


def register_hyperparameter(name: str, default: float, *, positive: bool, description: str) -> Hyperparameter:
    """Register a hyperparameter that components may read (``positive``: ``> 0``, else ``>= 0``)."""
    _check_new_name(name, "hyperparameter", HYPERPARAMETERS)
    if name in COMPONENTS:
        raise ValueError(f"hyperparameter {name!r} would shadow the component of that name")
    (check_positive if positive else check_nonnegative)(default, f"default of {name}")  # before float(): "2" is no number
    hp = Hyperparameter(name, float(default), bool(positive), str(description))
    HYPERPARAMETERS[name] = hp
    return hp


BUILTIN_COMPONENTS: frozenset = frozenset()  # set at the end of this module, once the built-ins are registered


def register_component(
    name: str,
    loss: Optional[Callable] = None,
    *,
    needs: tuple[str, ...],
    hyper: tuple[str, ...] = (),
    description: str = "",
    replace: bool = False,
):
    """Register a loss component; usable as a decorator when ``loss`` is omitted.

    Args:
      name: a new identifier, the key of the component's weight in a method.
      loss: ``(inputs, hyper) -> scalar`` batch loss.
      needs: the input names it reads; each must be registered (:func:`register_input`).
      hyper: the hyperparameter names it reads; each must be registered.
      description: the formula and its reference.
      replace: register a name registered before, e.g. by the same notebook cell run again (the
        toolkit's own components are never replaced).
    Returns:
      The :class:`Component` (or, as a decorator, the decorated function unchanged).
    """
    _check_new_name(name, "component", COMPONENTS, replace, BUILTIN_COMPONENTS)
    if name in HYPERPARAMETERS:
        raise ValueError(f"component {name!r} would shadow the hyperparameter of that name")
    needs, hyper = tuple(needs), tuple(hyper)
    if not needs:
        raise ValueError(f"component {name!r} must read at least one input (needs=...)")
    for n in needs:
        if n not in INPUTS:
            raise ValueError(f"component {name!r} needs unknown input {n!r}{closest(n, INPUTS)} "
                             f"Register it with register_input; known: {', '.join(INPUTS)}")
    for h in hyper:
        if h not in HYPERPARAMETERS:
            raise ValueError(f"component {name!r} reads unknown hyperparameter {h!r}{closest(h, HYPERPARAMETERS)} "
                             f"Register it with register_hyperparameter; known: {', '.join(HYPERPARAMETERS)}")

    def register(fn):
        if not callable(fn):
            raise ValueError(f"loss of component {name!r} must be callable, got {type(fn).__name__}")
        COMPONENTS[name] = Component(name, fn, needs, hyper, description or (fn.__doc__ or "").strip())
        return fn

    if loss is None:
        return register
    register(loss)
    return COMPONENTS[name]


def get_component(name: str) -> Component:
    """The registered component ``name``; ``ValueError`` suggesting the closest name."""
    if name not in COMPONENTS:
        raise ValueError(f"unknown component {name!r}{closest(name, COMPONENTS)} Allowed: {', '.join(COMPONENTS)}")
    return COMPONENTS[name]


# --------------------------------------------------------------------------- the standard inputs

for _name, _source, _text in (
    ("forget_logp", "forget", "log pi_theta(y|x) of each forget answer, (n_f,)"),
    ("forget_ref_logp", "forget", "log pi_ref(y|x) of each forget answer, (n_f,)"),
    ("forget_length", "forget", "|y|, the length of each forget answer in tokens (1 for a label), (n_f,)"),
    ("forget_kl", "forget", "KL(pi_theta(.|x) || pi_ref(.|x)) per forget example, (n_f,)"),
    ("idk_logp", "forget", "log pi_theta(y~|x) of the uninformed answer y~ on forget prompts, (n_f,)"),
    ("idk_ref_logp", "forget", "log pi_ref(y~|x), (n_f,)"),
    ("retain_logp", "retain", "log pi_theta(y|x) of each retain answer, (n_r,)"),
    ("retain_kl", "retain", "KL(pi_theta(.|x) || pi_ref(.|x)) per retain example, (n_r,)"),
    ("idk_length", "forget", "the length of each uninformed answer in tokens, (n_f,)"),
    ("retain_length", "retain", "the length of each retain answer in tokens, (n_r,)"),
    ("retain_kl_positions", "retain", "KL(pi_ref(.|x) || pi_theta(.|x)) summed over every position of each retain "
                                      "sequence, question included, (n_r,)"),
    ("retain_positions", "retain", "the number of positions of each retain sequence, (n_r,)"),
):
    register_input(_name, _source, _text)

register_hyperparameter("beta", 1.0, positive=True, description="inverse temperature of NPO, DPO, KTO and SimNPO")
register_hyperparameter("gamma", 0.0, positive=False, description="SimNPO's margin")


# --------------------------------------------------------------------------- the standard components
# Each is the batch mean of a per-example objective of theory.objectives (eq. numbers there).


@register_component("ga", needs=("forget_logp",))
def _ga(x, h):
    """L_GA = E_FG[log pi_theta(y|x)] (eq. 1): no lower bound."""
    return jnp.mean(obj.ga_loss(x["forget_logp"]))


@register_component("npo", needs=("forget_logp", "forget_ref_logp"), hyper=("beta",))
def _npo(x, h):
    """L_NPO = (2/beta) E_FG[log(1 + (pi_theta/pi_ref)^beta)] (eq. 3)."""
    return jnp.mean(obj.npo_loss(x["forget_logp"], x["forget_ref_logp"], beta=h["beta"]))


@register_component("dpo", needs=("idk_logp", "idk_ref_logp", "forget_logp", "forget_ref_logp"), hyper=("beta",))
def _dpo(x, h):
    """L_DPO = -(2/beta) E[log sigma(beta r(y~) - beta r(y))], the uninformed answer preferred (eq. 2)."""
    return jnp.mean(obj.dpo_loss(x["idk_logp"], x["idk_ref_logp"], x["forget_logp"], x["forget_ref_logp"], beta=h["beta"]))


@register_component("kto", needs=("forget_logp", "forget_ref_logp", "forget_kl"), hyper=("beta",))
def _kto(x, h):
    """L_KTO = (2/beta) E_FG[-log sigma(z_ref - beta r)], z_ref = beta E_FG[KL] held constant (eq. 18-19)."""
    z_ref = obj.kto_reference_point(x["forget_kl"], beta=h["beta"])
    return jnp.mean(obj.kto_loss(x["forget_logp"], x["forget_ref_logp"], beta=h["beta"], z_ref=z_ref))


@register_component("simnpo", needs=("forget_logp", "forget_length"), hyper=("beta", "gamma"))
def _simnpo(x, h):
    """L_SimNPO = -(2/beta) E_FG[log sigma(-(beta/|y|) log pi_theta(y|x) - gamma)] (Fan et al. 2024)."""
    return jnp.mean(obj.simnpo_loss(x["forget_logp"], x["forget_length"], beta=h["beta"], gamma=h["gamma"]))


@register_component("idk", needs=("idk_logp",))
def _idk(x, h):
    """L_FG = -E_FG[log pi_theta(y~|x)], forget to the uninformed answer (section 2)."""
    return jnp.mean(obj.idk_loss(x["idk_logp"]))


@register_component("rt", needs=("retain_logp",))
def _rt(x, h):
    """L_RT = -E_RT[log pi_theta(y|x)] (section 2)."""
    return jnp.mean(obj.rt_loss(x["retain_logp"]))


@register_component("kl_rt", needs=("retain_kl",))
def _kl_rt(x, h):
    """K_RT = E_RT[KL(pi_theta || pi_ref)] (section 2)."""
    return jnp.mean(x["retain_kl"])


@register_component("kl_fg", needs=("forget_kl",))
def _kl_fg(x, h):
    """-K_FG = -E_FG[KL(pi_theta || pi_ref)]: eq. 17 subtracts the forget KL."""
    return -jnp.mean(x["forget_kl"])


# --------------------------------------------------------------------------- token and position means
# The NPO paper's TOFU code (its CustomTrainerForgetting) normalises some terms over the tokens of
# the whole batch instead of averaging per-sequence sums: the GA, IDK and retain losses are the
# Hugging Face token mean (sum of the answer tokens' NLL / their number), the retain KL is
# torch's kl_div(log pi_theta, log pi_ref, reduction="batchmean") over every position, i.e.
# KL(pi_ref || pi_theta) summed over positions and divided by their number. NPO, DPO and KTO use
# per-sequence sums in that code, as the components above do. Swapping ga, idk, rt and kl_rt for
# these gives a method the paper's normalisations.


@register_component("ga_tokens", needs=("forget_logp", "forget_length"))
def _ga_tokens(x, h):
    """L_GA as a token mean: sum of log pi_theta(y_t|...) over the batch's answer tokens / their number."""
    return jnp.sum(x["forget_logp"]) / jnp.sum(x["forget_length"])


@register_component("idk_tokens", needs=("idk_logp", "idk_length"))
def _idk_tokens(x, h):
    """L_FG as a token mean over the uninformed answers' tokens."""
    return -jnp.sum(x["idk_logp"]) / jnp.sum(x["idk_length"])


@register_component("rt_tokens", needs=("retain_logp", "retain_length"))
def _rt_tokens(x, h):
    """L_RT as a token mean over the retain answers' tokens."""
    return -jnp.sum(x["retain_logp"]) / jnp.sum(x["retain_length"])


@register_component("kl_rt_positions", needs=("retain_kl_positions", "retain_positions"))
def _kl_rt_positions(x, h):
    """K_RT as the NPO paper's code computes it: KL(pi_ref || pi_theta) averaged over every position
    of the retain batch (the question's positions included)."""
    return jnp.sum(x["retain_kl_positions"]) / jnp.sum(x["retain_positions"])


BUILTIN_COMPONENTS = frozenset(COMPONENTS)
"""The toolkit's own components: ``register_component(..., replace=True)`` never replaces them."""
