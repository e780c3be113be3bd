"""Models, data, the engine and the experiments of the toolkit (may import ``theory``).

``models/``: the logistic, random-feature, softmax and transformer models.
``data/``: the synthetic data sets.
``engine/``: the one unlearning loop, and training from scratch.
``experiments/``: one folder per experiment (config, run, claims), in a registry.

Importing this package changes one setting, and only if JAX has not started yet and you have
not chosen yourself: it splits the CPU into one JAX device per core, so that the engine's runs
use every core (:mod:`synthetic.devices`; ``NPO_DEVICES=1`` turns it off). Nothing else:
float64 is requested where it is needed, with ``jax.enable_x64`` around the work.
"""

from synthetic.devices import use_cpu_cores as _use_cpu_cores

_use_cpu_cores()
