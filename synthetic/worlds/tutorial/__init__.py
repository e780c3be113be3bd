"""The tutorial's world: a logistic toy in 2-D, and the numbers behind every figure of ``docs/tutorial.md``.

A guided tour of the other worlds (section 4, Theorem 2, TOFU in miniature): the one world that
imports others. The experiment ``tutorial`` draws its figures and the animation.
"""
