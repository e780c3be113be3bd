"""The toolkit's computing layers (they may import :mod:`theory`).

Shared layers, used by every world:

* ``engine/``: the one unlearning loop, training from scratch, record schedules;
* ``models/``: the logistic, random-feature, softmax and transformer models;
* ``optim.py``: the optimizers of the published recipes; ``analysis.py``: seed statistics,
  intervals, Pareto frontiers, growth laws; ``laws.py``: the long GA-vs-NPO runs whose growth
  laws extend Theorem 2;
* ``experiment.py``, ``registry.py``, ``store.py``, ``report.py``: named experiments, their
  discovery, the result cache and the report; ``devices.py``: one JAX device per core, on request.

``worlds/``: one package per synthetic world (its data, measures, experiments and figures).

Importing any module of the toolkit changes no global state, JAX's configuration included:
float64 is requested with ``jax.enable_x64`` around the work that needs it, and the split of
the CPU into devices is the entry point's call (:func:`synthetic.devices.use_cpu_cores`).
"""
