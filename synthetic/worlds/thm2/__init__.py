"""Theorem 2 in numbers: forget sets in (and outside) the theorem's regime, GA's linear against NPO's
logarithmic divergence of the logistic model, and the section-2.1 softmax toy.

``data``: the forget sets and the theorem's assumptions. ``run``: gradient descent in parameter
space and as appendix A.2's recursion. ``claims``/``figures``: the experiment ``thm2``.
"""
