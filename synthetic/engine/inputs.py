"""How a model family turns parameters and a batch into the named inputs of a method's loss.

A method (:class:`theory.methods.Method`) reads named inputs such as ``forget_logp``; a
model family computes them. A :class:`Provider` computes some of them from
``(params, batch)``, typically with one forward pass of the model on one part of the batch;
:class:`Providers` is a model family's set of them. The engine asks for exactly the inputs
the methods of a grid need, so a grid of forget-only methods never runs the model on retain
data, and an input that no provider produces is a ``ValueError`` before anything runs.

A provider receives the set of inputs asked of it (``need``, static), so one forward pass
can serve several inputs and compute only those asked for.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import jax

from theory.components import INPUTS, closest

__all__ = ["Provider", "Providers"]


@dataclasses.dataclass(frozen=True)
class Provider:
    """Computes the inputs ``produces`` from ``(params, batch, need)``.

    Attributes:
      produces: input names (registered in :data:`theory.components.INPUTS`).
      fn: ``(params, batch, need) -> {name: array}`` for at least the names of ``need``
        (a subset of ``produces``); ``batch`` is a dict of arrays.
    """

    produces: tuple[str, ...]
    fn: Callable[[object, Mapping[str, jax.Array], frozenset], Mapping[str, jax.Array]]

    def __post_init__(self):
        object.__setattr__(self, "produces", tuple(self.produces))
        for name in self.produces:
            if name not in INPUTS:
                raise ValueError(f"provider produces unknown input {name!r}{closest(name, INPUTS)} "
                                 "Register it with theory.components.register_input")
        if not callable(self.fn):
            raise ValueError(f"provider fn must be callable, got {type(self.fn).__name__}")


@dataclasses.dataclass(frozen=True)
class Providers:
    """A model family's providers; each input is produced by at most one of them."""

    providers: tuple[Provider, ...]

    def __post_init__(self):
        object.__setattr__(self, "providers", tuple(self.providers))
        seen: dict[str, int] = {}
        for i, p in enumerate(self.providers):
            if not isinstance(p, Provider):
                raise ValueError(f"providers[{i}] must be a Provider, got {type(p).__name__}")
            for name in p.produces:
                if name in seen:
                    raise ValueError(f"input {name!r} is produced by providers {seen[name]} and {i}")
                seen[name] = i

    @property
    def provides(self) -> frozenset:
        """Every input name some provider produces."""
        return frozenset(n for p in self.providers for n in p.produces)

    def plus(self, *providers: Provider) -> "Providers":
        """These providers and more (for your own inputs, e.g. hidden activations)."""
        return Providers(self.providers + tuple(providers))

    def check(self, need) -> frozenset:
        """``need`` as a frozenset; ``ValueError`` naming what no provider produces."""
        need = frozenset(need)
        missing = sorted(need - self.provides)
        if missing:
            raise ValueError(
                f"the methods need input(s) {missing} that this model family does not provide "
                f"(it provides {sorted(self.provides)}); add a Provider with Providers.plus"
            )
        return need

    def compute(self, params, batch: Mapping[str, jax.Array], need) -> dict:
        """The inputs ``need`` at ``params`` on ``batch``, each provider run only if needed."""
        need = self.check(need)
        out: dict = {}
        for p in self.providers:
            asked = need.intersection(p.produces)
            if not asked:
                continue
            got = p.fn(params, batch, frozenset(asked))
            lacking = sorted(asked - set(got))
            if lacking:
                raise ValueError(f"a provider of {list(p.produces)} did not return {lacking}")
            out.update({n: got[n] for n in asked})
        return out
