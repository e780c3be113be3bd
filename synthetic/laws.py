"""The long runs behind the divergence laws: Theorem 2's contrast, asked of any model.

Theorem 2 proves, for logistic regression under full-batch gradient descent, that GA's
parameters run away linearly in the number of steps and NPO's logarithmically.
:func:`divergence_runs` runs that experiment on any model the engine serves (the Markov study's
transformer, TOFU in miniature's): GA and NPO at several betas, plain gradient descent
(:data:`synthetic.optim.SGD`) from the reference, records at log-spaced steps. The laws are
fitted to these curves where they are read (:func:`synthetic.analysis.fit_laws`,
:func:`synthetic.analysis.divergence_laws_claim`), never here, so a claim's threshold or fit
window can change without rerunning.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from synthetic import engine
from synthetic.optim import SGD
from theory.methods import get_method

__all__ = ["divergence_runs", "run_labels"]


def run_labels(betas: Sequence[float]) -> list[str]:
    """``["GA", "NPO beta=0.1", ...]``: the label of each long run, in order."""
    return ["GA"] + [f"NPO beta={b:g}" for b in betas]


def divergence_runs(providers: engine.Providers, params_ref, data: dict, metrics: Callable, *, context,
                    betas: Sequence[float], steps: int, learning_rate: float, n_records: int,
                    progress: Optional[Callable[[str], None]] = None) -> dict:
    """GA and NPO at each of ``betas`` for ``steps`` full-batch gradient-descent steps from
    ``params_ref``, one engine call, metrics at ``n_records`` log-spaced steps.

    Args:
      providers, data, metrics, context: as for :func:`synthetic.engine.unlearn` (one seed).
      betas: NPO's betas; learning_rate: the step size of every run.
    Returns:
      ``labels (J,)`` (:func:`run_labels`), ``betas (J,)`` (NaN for GA), ``steps (E,)``,
      ``diverged_step (J,)`` and each metric ``(J, E, ...)``.
    """
    methods = [get_method("GA")] + [get_method("NPO", beta=float(b)) for b in betas]
    schedule = engine.Schedule.log_spaced(int(steps), (int(n_records) - 1) / np.log10(int(steps)))
    runs = engine.unlearn(
        providers, methods, SGD, params_ref, data, schedule, metrics, context=context,
        hyperparams={"learning_rate": [learning_rate] * len(methods)}, seeds=1, progress=progress,
    )  # fmt: skip
    out = {name: value[0] for name, value in runs.items() if name not in engine.RESERVED}
    return {"labels": np.array(run_labels(betas)), "betas": np.array([np.nan] + [float(b) for b in betas]),
            "steps": runs["steps"], "diverged_step": runs["diverged_step"][0], **out}
