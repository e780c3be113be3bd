"""Config of the ``thm2`` experiment (Theorem 2 in numbers); its claims' tolerances live in :mod:`.claims`."""

from __future__ import annotations

__all__ = [
    "SETTINGS",
    "thm2_config",
]

SETTINGS = ("orthogonal", "correlated", "overcomplete")
"""The forget sets: inside the theorem's assumptions, then two ways of leaving them."""

def thm2_config(quick: bool = False) -> dict:
    """The JSON config of ``thm2``; ``quick`` shortens the GD runs from 10^6 to 10^4 steps."""
    return {
        "seed": 0,
        "forget_set": {"n_f": 32, "d": 64, "b_x": 0.5, "B_x": 1.5, "B_theta": 1.0, "C0": 1.0, "p_one": 0.5},
        "outside": {"correlated": {"correlation": 0.9}, "overcomplete": {"d": 16}},
        "eta": 1.0,
        "betas": [0.1, 0.5, 1.0, 2.0],
        "steps": 10**4 if quick else 10**6,
        "records_per_decade": 20,
        "toy": {
            "n_classes": 4,
            "d": 16,
            "n_f": 8,
            "eta": 1.0,
            "steps": 10**5,
            "ref_margin": 2.0,
            "unlearned_below": 0.01,
        },
    }
