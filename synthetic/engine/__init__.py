"""The engine: one unlearning loop for every model, and one training routine per kind of model.

* :func:`unlearn` (``loop.py``): a grid of seeds x settings (methods, learning rates, betas)
  as one jitted, vmapped program under ``lax.scan``, sharded over devices, with divergence
  guarded and metrics recorded on a :class:`Schedule`.
* :class:`Providers` (``inputs.py``): how a model family computes the named inputs of a
  method's loss from parameters and a batch.
* :func:`fit_logistic`, :func:`fit_reference_and_retrained` and :func:`train` (``fit.py``):
  training from scratch, convex (gradient descent or Newton) or by minibatches with optax.
* :func:`param_distance` (``params.py``): ``||theta - theta_ref||`` over a parameter pytree.
"""

from synthetic.engine.fit import FitResult, fit_logistic, fit_reference_and_retrained, train
from synthetic.engine.inputs import Provider, Providers
from synthetic.engine.params import param_distance
from synthetic.engine.loop import (RESERVED, EpochBatches, Minibatches, Tracker, all_finite, epoch_batches, keep_finite,
                                  minibatches, run_mesh, sharded_map, unlearn)
from synthetic.engine.schedule import Schedule, log_spaced_steps

__all__ = [
    "FitResult",
    "fit_logistic",
    "fit_reference_and_retrained",
    "train",
    "Provider",
    "Providers",
    "Minibatches",
    "EpochBatches",
    "epoch_batches",
    "Tracker",
    "all_finite",
    "keep_finite",
    "minibatches",
    "run_mesh",
    "sharded_map",
    "unlearn",
    "RESERVED",
    "Schedule",
    "log_spaced_steps",
    "param_distance",
]
