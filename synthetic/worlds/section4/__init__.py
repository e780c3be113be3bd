"""Section 4 of the paper: Gaussian data (eq. 6), the random-features model, figures 3, 4 and 9 and the grid search.

``data``: eq. 6. ``pipeline``: the section-4 recipe on any arrays (fit, unlearn, measure).
``config``/``run``/``claims``/``figures``: the experiments ``fig4``, ``fig9``, ``fig3`` and
``gridsearch``.
"""
