"""The SimNPO study's Markov chains: its data, a small transformer trained on them, both cases of
the study, and GA's collapse on the transformer.

``data``: the chains and their sequences. ``lm``: training the language models and the study's
measures. ``run``/``claims``/``figures``: the experiment ``markov``.
"""
