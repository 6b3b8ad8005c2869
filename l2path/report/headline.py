"""The study's headline: about 25 numbers, the ones ``dvc metrics show`` prints by default.

Every stage's detailed numbers stay in its own JSON (metrics/<stage>.json, and the
report's ``KeyNumbers`` in metrics/report.json); those files are DVC outputs but not
declared metrics, so ``dvc metrics show`` and ``dvc exp show`` stay readable. Sections:

- ``train``: the single model's test accuracy;
- ``study``: points, critical points (the gradient rule), non-monotone MSE steps per
  schedule, and the steps beyond noise that no control explains;
- ``curvature``: analysed saddles, and non-monotone steps that start at a saddle (only when
  the hessian stage analysed points);
- ``chain``: the converged chains' points, minima and saddles proved by inertia, drops, and
  the steps' verdicts (one branch of minima, fold jumps, branches lost);
- ``decay``: the large init's layer 1 at the question's eta and lambda (norm change over
  the question's epochs, measured per-epoch factor, second-order residual, RMS at the
  tail-off) and the level-off slopes d ln RMS / d ln lambda of both layers.

Numbers are read from ``KeyNumbers`` by attribute: a misnamed one is an AttributeError.
"""

from __future__ import annotations

from typing import Mapping

from .numbers import KeyNumbers

DECAY_INIT = "large"  # the question's initialiser, N(0, 1)


def _study(numbers: KeyNumbers) -> dict:
    study = {"points": numbers.study.points, "critical_points": numbers.study.critical_points}
    for counts in numbers.schedules:
        study[f"{counts.schedule}_mse_decreases"] = counts.mse_decreases
    unexplained = [counts.beyond_noise_unexplained for counts in numbers.verdicts]
    study["unexplained_steps"] = sum(unexplained) if unexplained else None
    return study


def _curvature(numbers: KeyNumbers) -> dict:
    if numbers.hessian is None:  # no point analysed: no count to show
        return {}
    return {
        "saddles": numbers.hessian.saddle,
        "nonmonotone_from_saddle": numbers.nonmonotone_from_saddle,
    }


def _chain(numbers: KeyNumbers) -> dict:
    chain = numbers.chain
    if chain is None:
        return {}
    return {
        "points": chain.points,
        "proved_minima": chain.proved_minima,
        "proved_saddles": chain.proved_saddles,
        "degenerate_points": chain.degenerate_points,
        "drops": chain.drops,
        "one_branch_of_minima": chain.one_branch_of_minima,
        "fold_jumps": chain.fold_jumps,
        "branches_lost": chain.branches_lost,
        "graduated_lower": chain.graduated_lower,
        "best_found_drops": chain.best_found_drops,
        "several_minima_lambdas": chain.several_minima_lambdas,
    }


def _decay(numbers: KeyNumbers) -> dict:
    layer1 = numbers.decay_of(DECAY_INIT, 1)
    decay = {}
    if layer1 is not None:
        decay = {
            "layer1_norm_change": layer1.l2_change_question,
            "layer1_measured_factor": layer1.measured_factor,
            "layer1_second_order_residual": layer1.second_order_residual,
            "layer1_tail_off_rms": layer1.tail_off_rms,
        }
    return {
        **decay,
        "layer1_level_off_slope": numbers.slope_of(DECAY_INIT, 1),
        "layer2_level_off_slope": numbers.slope_of(DECAY_INIT, 2),
    }


def headline(numbers: KeyNumbers, train: Mapping) -> dict:
    """The headline from the report's key numbers and the train stage's metrics; a number
    the study did not measure (a stage not run, nothing to analyse, a NaN) is left out."""
    sections = {
        "train": {"test_accuracy": train.get("test_accuracy")},
        "study": _study(numbers),
        "curvature": _curvature(numbers),
        "chain": _chain(numbers),
        "decay": _decay(numbers),
    }
    return {
        section: {k: v for k, v in values.items() if v is not None}
        for section, values in sections.items()
    }
