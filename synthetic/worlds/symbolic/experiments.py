"""The sympy checks of sections 2-3 (:mod:`theory.symbolic`) as an experiment of the registry.

Nothing to compute or cache: the checks derive each identity symbolically and compare it
numerically with the JAX objectives when their claims are asked for.
"""

from synthetic.experiment import Experiment

__all__ = ["EXPERIMENTS"]


def _run(config, progress, folder):
    return {}


def _claims(config, results):
    from theory import symbolic  # sympy is imported only when the checks run

    return symbolic.run_all()


EXPERIMENTS = (
    Experiment(
        name="symbolic",
        description="sympy derivations of sections 2-3, each cross-checked against the JAX objectives",
        config=lambda quick: {},
        run=_run,
        claims=_claims,
        cache=False,
        reference_seconds=2,
    ),
)
