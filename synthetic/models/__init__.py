"""Models as pure functions: ``init(key, config) -> params``, ``log_probs(params, x)``.

``logistic``: the binary logistic, random-feature and K-class softmax models of sections 2-4.
``transformer``: a small decoder-only transformer. Each module also holds its loss-input
providers for the engine (``BINARY_INPUTS``, ``SOFTMAX_INPUTS``, ``SEQUENCE_INPUTS``).
"""
