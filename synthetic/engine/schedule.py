"""When the engine records metrics: every ``k`` steps, or at an explicit list of steps."""

from __future__ import annotations

import dataclasses

import numpy as np

from theory.validate import check_int

__all__ = ["Schedule", "log_spaced_steps"]


def log_spaced_steps(steps: int, per_decade: float = 20) -> np.ndarray:
    """Steps ``0, 1, ..., steps`` spaced evenly in ``log t``: ``round(10^(k / per_decade))``.

    Every recorded step is an integer in ``[0, steps]``; 0, powers of ten (for an integer
    ``per_decade``) and ``steps`` itself are always included, duplicates removed.

    Args:
      steps: the last step, >= 1.
      per_decade: records per factor of ten (> 0; need not be an integer).
    Returns:
      Increasing int64 steps starting at 0 and ending at ``steps``.
    """
    steps = check_int(steps, "steps")
    if not (np.isfinite(per_decade) and per_decade > 0):
        raise ValueError(f"per_decade must be a finite number > 0, got {per_decade!r}")
    k = np.arange(0, int(np.ceil(per_decade * np.log10(steps))) + 1)
    grid = np.round(10.0 ** (k / per_decade)).astype(np.int64)
    return np.unique(np.concatenate([[0], grid[grid <= steps], [steps]]))


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The steps at which a run's metrics are recorded: increasing integers from 0.

    Step 0 is the starting point (the reference model); the run lasts ``steps[-1]``
    optimizer steps.
    """

    steps: tuple[int, ...]

    def __post_init__(self):
        s = np.asarray(self.steps)
        if s.ndim != 1 or s.size < 1 or not np.issubdtype(s.dtype, np.integer) or s[0] != 0 or np.any(np.diff(s) <= 0):
            shown = s.tolist()[:8] if s.ndim == 1 else s.tolist()
            raise ValueError(f"schedule steps must be increasing integers starting at 0, got {shown}")
        _check_total(int(s[-1]))
        object.__setattr__(self, "steps", tuple(int(x) for x in s))

    @classmethod
    def every(cls, k: int, steps: int) -> "Schedule":
        """Record every ``k`` steps up to ``steps`` (``k`` must divide ``steps``)."""
        steps = _check_total(check_int(steps, "steps"))
        k = check_int(k, "eval_every")
        if steps % k:
            raise ValueError(f"eval_every must be a positive integer dividing steps={steps}, got {k!r}")
        return cls(tuple(range(0, steps + 1, k)))

    @classmethod
    def log_spaced(cls, steps: int, per_decade: float = 20) -> "Schedule":
        """Record at :func:`log_spaced_steps` ``(steps, per_decade)``."""
        return cls(tuple(log_spaced_steps(steps, per_decade)))

    @property
    def total(self) -> int:
        """The number of optimizer steps of the run."""
        return self.steps[-1]

    def array(self) -> np.ndarray:
        """The record steps as an int64 array ``(E,)``."""
        return np.asarray(self.steps, np.int64)


MAX_STEPS = 2**31 - 1
"""The longest run: the engine counts steps in int32 (a longer run would wrap around to none)."""


def _check_total(steps: int) -> int:
    if steps > MAX_STEPS:
        raise ValueError(f"steps must be at most {MAX_STEPS} (the engine counts steps in int32), got {steps}")
    return steps
