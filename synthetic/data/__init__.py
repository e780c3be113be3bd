"""Synthetic data sets, each a pure function of an explicit ``jax.random`` key.

``gaussian``: the forget and retain sets of the paper's eq. 6 (section 4).
``forget_sets``: forget sets in (and out of) the regime of Theorem 2.
``markov``: the mixture of Markov chains of the SimNPO synthetic study.
"""
