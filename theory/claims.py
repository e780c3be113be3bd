"""The record every check of the toolkit returns: a paper claim beside what was measured."""

from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass(frozen=True)
class Claim:
    """One paper claim and its verdict.

    Attributes:
      id: a stable dotted name, e.g. ``"npo.two_forms"`` or ``"fig4.b_ga_collapse"``.
      paper_ref: where the paper states it (PAPER.md numbering), e.g. ``"eq. 3"``.
      statement: the claim in one sentence, including how it is decided.
      measured: what this run measured, as a short human-readable string with numbers.
      passed: the verdict. A claim that does not hold is ``False``, never hidden.
      values: the key numbers behind ``measured`` (JSON-able), for machines.
    """

    id: str
    paper_ref: str
    statement: str
    measured: str
    passed: bool
    values: dict = dataclasses.field(default_factory=dict)

    @property
    def detail(self) -> str:
        """Alias of ``measured`` (the symbolic checks call it the detail)."""
        return self.measured

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict with keys id, paper_ref, statement, measured, passed, values."""
        return {
            "id": self.id,
            "paper_ref": self.paper_ref,
            "statement": self.statement,
            "measured": self.measured,
            "passed": bool(self.passed),
            "values": {k: _jsonable(v) for k, v in self.values.items()},
        }


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if hasattr(v, "tolist"):
        return _jsonable(v.tolist())
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v
