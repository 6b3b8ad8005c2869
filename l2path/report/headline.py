"""The study's headline: about 20 numbers, the ones ``dvc metrics show`` prints by default.

Every stage's detailed numbers stay in its own JSON (metrics/<stage>.json, and the
report's ``key_numbers`` in metrics/report.json); those files are DVC outputs but not
declared metrics, so ``dvc metrics show`` and ``dvc exp show`` stay readable. Sections:

- ``train``: the single model's test accuracy;
- ``study``: points, certified points, non-monotone MSE steps per schedule, and the steps
  beyond noise that no control explains;
- ``curvature``: analysed saddles, and non-monotone steps that start at a saddle;
- ``continuation``: certified points, folds, non-monotone steps and the drops it reproduces;
- ``decay``: the large init's layer 1 at the question's eta and lambda (norm change over
  the question's epochs, measured per-epoch factor, second-order residual, RMS at the
  tail-off) and the level-off slopes d ln RMS / d ln lambda of both layers.
"""
from __future__ import annotations

from typing import Mapping

STUDY = ("points", "certified", "ascending_mse_decreases", "descending_mse_decreases", "cold_mse_decreases")
CURVATURE = {"saddles": "hessian_saddle", "nonmonotone_from_saddle": "nonmonotone_from_saddle"}
CONTINUATION = ("certified_points", "folds", "nonmonotone_steps", "drops_reproduced")
DECAY = {"layer1_norm_change": "decay_large_layer1_l2_change_question",
         "layer1_measured_factor": "decay_large_layer1_measured_factor",
         "layer1_second_order_residual": "decay_large_layer1_second_order_residual",
         "layer1_tail_off_rms": "decay_large_layer1_tail_off_rms"}


def _slope(numbers: Mapping, layer: int) -> float | None:
    """The large init's level-off slope of ``layer`` (key ``equilibrium_eta<eta>_large_layer<l>_slope``)."""
    return next((v for k, v in numbers.items() if k.startswith("equilibrium_eta")
                 and k.endswith(f"_large_layer{layer}_slope")), None)


def headline(numbers: Mapping, train: Mapping) -> dict:
    """The headline from the report's key numbers and the train stage's metrics; a number
    the study did not measure (a stage with nothing to analyse) is left out."""
    unexplained = [v for k, v in numbers.items() if k.endswith("_beyond_noise_unexplained")]
    sections = {
        "train": {"test_accuracy": train.get("test_accuracy")},
        "study": {**{key: numbers.get(key) for key in STUDY},
                  "unexplained_steps": sum(unexplained) if unexplained else None},
        "curvature": {name: numbers.get(key) for name, key in CURVATURE.items()},
        "continuation": {key: numbers.get(f"continuation_{key}") for key in CONTINUATION},
        "decay": {**{name: numbers.get(key) for name, key in DECAY.items()},
                  "layer1_level_off_slope": _slope(numbers, 1), "layer2_level_off_slope": _slope(numbers, 2)},
    }
    return {section: {k: v for k, v in values.items() if v is not None} for section, values in sections.items()}
