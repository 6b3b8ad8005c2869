"""The report's first screen: three sentences, each number the count or range of hand-made rows
with that property (SGD verdicts and decomposition, the converged chains' summary and points)."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from l2path.chain.records import ClassProof
from l2path.chain.stage import ChainResults, summary
from l2path.curvature.classes import PointClass
from l2path.report.first_screen import first_screen
from l2path.verdicts import VerdictSummary

from test_answers import counts, monotonicity_of
from test_chain_answers import DOWN, POINTS, STEPS, UP, Plan, point

VERDICTS = VerdictSummary.from_json(
    {
        "ascending": {
            "nonmonotone_steps": 2,
            "continued_optimisation": 2,
            "within_noise": 0,
            "beyond_noise_unexplained": 0,
        }
    }
)
MONOTONICITY = monotonicity_of(ascending={"train_mse": counts(36, 2)})


def decomposition() -> pd.DataFrame:
    """Two ascending falls and a rise; a descending row and a data-loss row that must not count."""
    return pd.DataFrame(
        {
            "schedule": ["ascending", "ascending", "ascending", "descending", "ascending"],
            "metric": ["train_mse"] * 4 + ["data_loss"],
            "change": [-0.006, -0.0002, 0.001, -0.5, -0.9],
            "lambda_effect": [3e-5, 1.5e-4, 2e-4, -0.5, -0.9],
            "optimisation_deficit": [-0.00603, -0.00035, 0.0008, 0.0, 0.0],
            "sd_paired": [1e-6, 5e-5, 1e-5, 1.0, 1.0],
        }
    )


def test_three_sentences_with_the_numbers_of_their_tables():
    chain = summary(Plan, ChainResults(POINTS, STEPS))
    sgd, converged, saddles = first_screen(VERDICTS, MONOTONICITY, decomposition(), chain, POINTS)
    assert sgd.startswith("SGD: the in-sample MSE fell as λ rose at 2 of 36 ascending steps")
    assert "at all 2 the same-λ control fell as far: unfinished optimisation" in sgd
    # the falls' deficits and lambda effects (z = 30 and 3), not the rise's or other rows'
    assert "deficit -0.006 to -0.00035" in sgd
    assert "a rise (+3e-05 to +0.00015, 3.0 to 30.0 paired sds)" in sgd
    assert converged == (
        "Converged: on critical points of one objective (J_λ on 128 images) the MSE fell at 1 "
        "of 3 steps; 1 stay on one branch of minima, 1 jump at a located fold, 1 lie on a saddle "
        "branch."
    )
    assert saddles.startswith("Saddles: 2 of 5 converged points are proved saddles (0 at w = 0)")
    assert "3 proved minima" in saddles and "none by Lanczos alone" in saddles


def test_saddles_at_w_zero_and_classes_resting_on_lanczos_are_named():
    points = [
        replace(point(DOWN, 0, 4.0, 0.3, PointClass.SADDLE, negative=5), weight_l2=1e-10),
        replace(point(UP, 0, 1.0, 0.1), class_proof=ClassProof.LANCZOS),
        replace(point(UP, 1, 2.0, 0.1), converged=False),
    ]
    saddles = first_screen(None, MONOTONICITY, None, None, points)[0]
    assert saddles.startswith("Saddles: 1 of 2 converged points are proved saddles (1 at w = 0)")
    assert "0 proved minima" in saddles and "1 by Lanczos alone" in saddles


def test_a_sentence_without_its_table_is_left_out():
    assert first_screen(None, MONOTONICITY, None, None, None) == []
    (sgd,) = first_screen(VERDICTS, MONOTONICITY, None, None, None)
    assert sgd.endswith("unfinished optimisation.")


def test_the_rarer_verdicts_are_named_only_where_they_occur():
    chain = replace(
        summary(Plan, ChainResults(POINTS, STEPS)),
        saddle_branches=0,
        branch_switches=1,
        not_followed=34,
    )
    converged = first_screen(None, MONOTONICITY, None, chain, None)[0]
    assert converged.endswith(
        "1 jump at a located fold, 1 switch branch, 34 are not followed (no drop: chain.follow)."
    )
    assert "saddle branch" not in converged and "lose" not in converged
