"""The theory's identities (sections 2-3), derived with sympy and checked against the JAX code.

No data: the experiment ``symbolic`` runs :mod:`theory.symbolic`'s checks.
"""
