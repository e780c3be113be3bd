"""Models, data, the engine and the experiments of the toolkit (may import ``theory``).

``models/``: the logistic, random-feature, softmax and transformer models.
``data/``: the synthetic data sets.
``engine/``: the one unlearning loop, and training from scratch.
``experiments/``: one folder per experiment (config, run, claims), in a registry.

Importing this package changes no global setting: float64 is requested where it is needed,
with ``jax.enable_x64`` around the work.
"""
