"""The record every check of the toolkit returns (a paper claim beside what was measured),
how a claim is decided under seed noise, and the comparison helper the checks share.

A :class:`Claim` has a **kind** (:data:`KINDS`): an ``identity`` of symbolic algebra, a
``paper`` claim (an empirical statement the paper makes), an ``extension`` beyond the paper,
or a ``consistency`` check (two implementations or two measurements of one thing agree). Its
**verdict** (:data:`VERDICTS`) is ``pass``, ``fail`` or ``inconclusive``.

A decision on seed-mean curves is a :class:`Check`: a named quantity, its :class:`Interval`
over seeds and the threshold it must clear. A check passes when the whole interval is on the
right side of the threshold, fails when the whole interval is on the wrong side, and is
inconclusive when the interval contains the threshold (the seeds cannot tell). A claim's
verdict is :func:`combine` of its checks: any ``fail`` fails it, else any ``inconclusive``
makes it inconclusive.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Union

import numpy as np

__all__ = ["Claim", "Check", "Interval", "KINDS", "VERDICTS", "combine", "max_rel_error"]

KINDS = ("paper", "extension", "consistency", "identity")
"""What a claim is: the paper's empirical statement, beyond the paper, two implementations
agreeing, symbolic algebra. The report counts each kind separately, in this order."""

VERDICTS = ("pass", "fail", "inconclusive")


def _verdict(v: Union[str, bool]) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "pass" if v else "fail"
    if v not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS} or a bool, got {v!r}")
    return v


def combine(*verdicts: Union[str, bool]) -> str:
    """The verdict of several decisions: ``fail`` if any fails, else ``inconclusive`` if any
    is, else ``pass`` (``pass`` for none). Bools count as pass / fail."""
    vs = [_verdict(v) for v in verdicts]
    return "fail" if "fail" in vs else "inconclusive" if "inconclusive" in vs else "pass"


@dataclasses.dataclass(frozen=True)
class Interval:
    """An estimate and its confidence interval over seeds.

    Attributes:
      estimate: the quantity on all seeds (e.g. on the seed-mean curves).
      low, high: the interval's ends (``low <= estimate <= high`` for a percentile bootstrap
        whenever the estimate is inside the resampled range).
      level: the confidence level, e.g. 0.95.
      seeds: how many seeds it rests on.
      method: how it was computed, e.g. ``"bootstrap"`` or ``"t"``.
    """

    estimate: float
    low: float
    high: float
    level: float = 0.95
    seeds: int = 0
    method: str = "bootstrap"

    @property
    def defined(self) -> bool:
        """No end is NaN (an infinite end, e.g. a target never reached, is a value)."""
        return not any(math.isnan(x) for x in (self.estimate, self.low, self.high))

    def text(self, fmt: str = ".3g") -> str:
        """``"0.0227 [0.0031, 0.041]"``: the estimate and its interval."""
        return f"{self.estimate:{fmt}} [{self.low:{fmt}}, {self.high:{fmt}}]"


@dataclasses.dataclass(frozen=True)
class Check:
    """A named quantity, its interval over seeds, and the threshold it must clear.

    Attributes:
      quantity: what was measured, e.g. ``"gap NPO+RT vs GA"``.
      interval: its :class:`Interval`.
      threshold: the value to clear; for ``better="inside"`` a ``(low, high)`` band.
      better: ``"above"`` (pass when the interval lies above the threshold), ``"below"``, or
        ``"inside"`` (pass when the interval lies inside the band: an equivalence test).
    """

    quantity: str
    interval: Interval
    threshold: Union[float, tuple[float, float]]
    better: str = "above"

    def __post_init__(self):
        if self.better not in ("above", "below", "inside"):
            raise ValueError(f"better must be 'above', 'below' or 'inside', got {self.better!r}")
        if (self.better == "inside") != isinstance(self.threshold, tuple):
            raise ValueError("threshold must be a (low, high) tuple exactly when better='inside', "
                             f"got better={self.better!r}, threshold={self.threshold!r}")

    @property
    def verdict(self) -> str:
        """``pass`` / ``fail`` / ``inconclusive`` (an interval with a NaN end is inconclusive)."""
        iv = self.interval
        if not iv.defined:
            return "inconclusive"
        if self.better == "above":
            return "pass" if iv.low > self.threshold else "fail" if iv.high <= self.threshold else "inconclusive"
        if self.better == "below":
            return "pass" if iv.high < self.threshold else "fail" if iv.low >= self.threshold else "inconclusive"
        lo, hi = self.threshold
        if lo < iv.low and iv.high < hi:
            return "pass"
        return "fail" if iv.high <= lo or iv.low >= hi else "inconclusive"

    def rule(self) -> str:
        if self.better == "inside":
            return f"in ({self.threshold[0]:.3g}, {self.threshold[1]:.3g})"
        return f"{'>' if self.better == 'above' else '<'} {self.threshold:.3g}"

    def text(self, fmt: str = ".3g") -> str:
        """``"gap NPO+RT vs GA 0.0495 [0.031, 0.062] (> 0: pass)"``."""
        return f"{self.quantity} {self.interval.text(fmt)} ({self.rule()}: {self.verdict})"

    def to_json(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self.interval),
            "threshold": list(self.threshold) if isinstance(self.threshold, tuple) else self.threshold,
            "better": self.better,
            "verdict": self.verdict,
        }


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim and its verdict.

    Attributes:
      id: a stable dotted name, e.g. ``"npo.two_forms"`` or ``"fig4.b_ga_collapse"``.
      paper_ref: where the paper states it (its own numbering), e.g. ``"eq. 3"``.
      statement: the claim in one sentence, including how it is decided and the basis of
        every threshold.
      measured: what this run measured: numbers only, no explanation.
      verdict: ``"pass"``, ``"fail"`` or ``"inconclusive"`` (a bool is accepted: True is
        ``"pass"``). A claim that does not hold is ``"fail"``, never hidden.
      values: the key numbers behind ``measured`` (JSON-able), for machines.
      kind: one of :data:`KINDS` (default ``"extension"``: a claim you add is beyond the paper
        unless you say otherwise).
      interval: the checks decided under seed noise, ``{quantity: Check.to_json()}``; empty
        when the decision is deterministic (symbolic algebra, a single exact run).
      note: an explanation or caveat, printed under the report's table.
    """

    id: str
    paper_ref: str
    statement: str
    measured: str
    verdict: Union[str, bool]
    values: dict = dataclasses.field(default_factory=dict)
    kind: str = "extension"
    interval: dict = dataclasses.field(default_factory=dict)
    note: str = ""

    def __post_init__(self):
        object.__setattr__(self, "verdict", _verdict(self.verdict))
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")

    @classmethod
    def decided(cls, *, checks: Iterable[Check] = (), also: Iterable[Union[str, bool]] = (), **fields) -> "Claim":
        """A claim whose verdict combines ``checks`` (their intervals become ``interval``)
        with further deterministic decisions ``also``."""
        checks = list(checks)
        interval = {c.quantity: c.to_json() for c in checks}
        return cls(verdict=combine(*(c.verdict for c in checks), *also), interval=interval, **fields)

    @property
    def passed(self) -> bool:
        """True only for the verdict ``"pass"``."""
        return self.verdict == "pass"

    @property
    def detail(self) -> str:
        """Alias of ``measured`` (the symbolic checks call it the detail)."""
        return self.measured

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict: id, kind, paper_ref, statement, measured, verdict, passed,
        interval, note, values."""
        return {
            "id": self.id,
            "kind": self.kind,
            "paper_ref": self.paper_ref,
            "statement": self.statement,
            "measured": self.measured,
            "verdict": self.verdict,
            "passed": self.passed,
            "interval": _jsonable(self.interval),
            "note": self.note,
            "values": {k: _jsonable(v) for k, v in self.values.items()},
        }

    @classmethod
    def from_json(cls, record: dict) -> "Claim":
        """The inverse of :meth:`to_json` (``passed`` is derived, so it is dropped)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in fields})


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
