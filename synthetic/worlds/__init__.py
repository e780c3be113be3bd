"""The synthetic worlds: one package each, holding the world's data, measures, experiments and figures.

A world package holds (names as the toolkit's worlds use them; only ``experiments.py`` is required)::

    data.py         the data sets, pure functions of an explicit key
    config.py       each experiment's JSON config (quick and full)
    run.py          config -> results (calls the engine); what the cache key covers
    claims.py       results -> [Claim], with the thresholds and their basis
    figures.py      results -> {name: matplotlib Figure}
    experiments.py  EXPERIMENTS: the Experiment records the registry discovers

Worlds import the shared layers (``synthetic.engine``, ``synthetic.models``, ...), never each
other; the tutorial, a guided tour of the other worlds, is the one exception. Importing a world
package changes nothing: its ``__init__`` holds only a docstring.
"""
