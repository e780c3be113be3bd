"""The ``tofu_mini_ablation`` experiment: which property of the setting decides NPO's verdicts.

TOFU in miniature is built as TOFU is (:mod:`.config`, variant ``"tofu"``); the earlier miniature
(variant ``"today"``) differed from it in several ways at once, and its verdicts on the paper's
TOFU claims differed too. The ablation starts from the faithful setting and switches **one**
difference at a time back to the earlier miniature's choice (:data:`FACTORS`), plus the earlier
miniature itself as the far end, and reads off each variant the two verdicts the claims decide
on the 10% split:

* ``npo_stable`` (:func:`.claims.npo_stable_reading`): each seed's lowest model utility over the
  run, as a share of the full model's, for NPO and NPO+RT (the claim asks for at least
  :data:`.claims.STABLE_SHARE` at every evaluation);
* figure 5's reading (:func:`.claims.figure5_reading`): NPO+RT's best forget quality at an
  evaluation whose utility is at least :data:`.claims.UTILITY_SHARE` x the full model's (the claim
  asks for above :data:`.claims.FQ_THRESHOLD`).

Every variant unlearns with the same seeds, methods and evaluation schedule, so a difference
between two rows is the switched property's. A variant that changes the models (no pretraining,
two wordings, short answers) trains its own full and retrained (10%) models, cached as the
study's are; the others reuse the faithful models. The evaluation-size row reads the faithful
runs' forget quality on 40 evenly spaced forget questions (the earlier miniature's size)
instead of all of them: no new runs.

:func:`run_ablation` returns, per variant (``variants/<name>``), the same arrays as one split of
:func:`.study.run_study` (methods NPO and NPO+RT), plus ``beta_gap`` (the median ``beta x gap``
of its forget answers: NPO's brake, :func:`.models.brake`) and ``seconds``. The readings, the
claims and the table are in :mod:`.claims` (``ablation_*``), the figure in :mod:`.figures`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np

from synthetic.memory import peak_mb, release
from synthetic.worlds.tofu_mini.config import EVAL_SMALL, FACTORS, LR_SCAN_RATIO, MAIN_SPLIT, ablation_config
from synthetic.worlds.tofu_mini.lm import train_models
from synthetic.worlds.tofu_mini.models import brake
from synthetic.worlds.tofu_mini.study import _Study
from theory.validate import check_int

__all__ = ["FACTORS", "ablation_config", "run_ablation", "EVAL_SMALL", "LR_SCAN_RATIO"]

def run_ablation(config: dict, progress=lambda msg: None, folder: Optional[Path] = None) -> dict:
    """Run every variant of ``config`` (:func:`ablation_config`); see the module's docstring."""
    check_int(config["seeds"], "seeds", 1)
    out, seconds = {}, {}
    for name in config["factors"]:
        if name == "eval_40":
            continue
        release()  # each variant's programs and buffers go before the next one's
        t0 = time.perf_counter()
        study = config["variants"][name]
        say = lambda msg, name=name: progress(f"{name}: {msg}")  # noqa: E731
        corpus, models, _ = train_models(study["models"], say, folder)
        split, _ = _Study(study, corpus, models, say, one_call=True).split(MAIN_SPLIT)
        forget = corpus.split("forget", MAIN_SPLIT)
        gap = brake(models["full"], models["retrained"][str(MAIN_SPLIT)], corpus, forget)["gap"]
        out[name] = {**split, "beta_gap": np.asarray(float(np.median(0.1 * gap)))}
        seconds[name] = time.perf_counter() - t0
        progress(f"{name}: {seconds[name]:.0f}s (peak memory so far {peak_mb():.0f} MB)")
    if "eval_40" in config["factors"]:
        small = f"forget_quality_{config['eval_small']}"
        out["eval_40"] = {**out["tofu"], "forget_quality": out["tofu"][small]}
    return {"variants": out, "seconds": {k: np.asarray(v) for k, v in seconds.items()}}
