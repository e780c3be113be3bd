"""The record every check of the toolkit returns (a paper claim beside what was measured),
and the comparison helper the checks share."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

__all__ = ["Claim", "max_rel_error"]


@dataclasses.dataclass(frozen=True)
class Claim:
    """One paper claim and its verdict.

    Attributes:
      id: a stable dotted name, e.g. ``"npo.two_forms"`` or ``"fig4.b_ga_collapse"``.
      paper_ref: where the paper states it (its own numbering), e.g. ``"eq. 3"``.
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


def max_rel_error(actual, expected, *, floor: float = 1.0) -> float:
    """``max |actual - expected| / max(|expected|, floor)`` over all entries.

    Relative where ``|expected| >= floor`` and absolute below it, so values near zero
    (e.g. ``L_NPO`` of an unlearned example) are not judged by a meaningless relative
    error. NaN anywhere gives NaN, which fails every ``<= tol`` test.
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise ValueError(f"shapes differ: actual {actual.shape}, expected {expected.shape}")
    scale = np.maximum(np.abs(expected), floor)
    return float(np.max(np.abs(actual - expected) / scale))
