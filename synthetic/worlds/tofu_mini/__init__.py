"""TOFU in miniature: fictitious authors and their facts, language models trained on them on a CPU,
TOFU's measures, and every unlearning method of the paper on them.

``data``: the corpus and its splits. ``lm``: the models, their training and their answers.
``measures``: TOFU's measures (truth ratio, forget quality, ROUGE-L, model utility).
``unlearn``: the unlearning runs' data and their measures inside the engine. Experiments:
``tofu_mini_models`` (``models``: train and measure the full and retrained models) and
``tofu_mini`` (``study``: unlearn with every method).
"""
