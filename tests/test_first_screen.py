"""The report's first screen: four sentences, each number the count or range of hand-made rows
with that property (SGD verdicts and decomposition, the converged chains' summary, points and
chain records)."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from l2path.chain.records import ChainDirection, ChainRecord
from l2path.chain.stage import ChainResults, summary
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


def test_four_sentences_with_the_numbers_of_their_tables():
    chain = summary(Plan, ChainResults(POINTS, STEPS))
    sgd, converged, minima, classes = first_screen(
        VERDICTS, MONOTONICITY, decomposition(), chain, None
    )
    assert sgd.startswith("SGD: the in-sample MSE fell as λ rose at 2 of 36 ascending steps")
    assert "at all 2 the same-λ control fell as far: unfinished optimisation" in sgd
    # the falls' deficits and lambda effects (z = 30 and 3), not the rise's or other rows'
    assert "deficit -0.006 to -0.00035" in sgd
    assert "a rise (+3e-05 to +0.00015, 3.0 to 30.0 paired sds)" in sgd
    assert converged == (
        "Converged: on critical points of one objective (J_λ on 128 images) the MSE fell at 1 "
        "of 3 steps; 1 stay on one branch of minima, 1 jump at a located fold (1 per seed: these "
        "counts move with the SGD start's rounding, the drops do not), 1 lie on a saddle branch."
    )
    # the descending points are saddles: nothing to compare; the best found are the ascending
    assert minima.startswith(
        "Minima (0 cold-start points beside the chains): graduated optimisation (descending from "
        "w = 0) reached a lower J than the ascending chain at 0 of 0 (seed, λ); the in-sample MSE "
        "of the lowest-J minimum found at each λ fell at 1 of its 2 steps"
    )
    assert classes == (
        "Classes: of 5 converged-chain and cold points, 3 are proved minima (Cholesky), 2 proved "
        "saddles (a witness vector below the rounding margin) and 0 degenerate (flat within the "
        "margin, none below it); 0 escapes along a saddle's witness led to them."
    )


def test_the_minima_sentence_counts_graduated_wins_the_best_found_and_crevasses():
    cold = ChainDirection.COLD
    points = [
        point(UP, 0, 1.0, 0.10),
        point(UP, 1, 2.0, 0.12),
        point(UP, 2, 4.0, 0.13),
        point(DOWN, 0, 4.0, 0.13),
        point(DOWN, 1, 2.0, 0.115),
        point(DOWN, 2, 1.0, 0.10),
        replace(point(cold, 0, 2.0, 0.14), seed=3),
    ]
    records = [
        ChainRecord(
            seed=0, direction=UP, points=3, lambda_first=1.0, lambda_last=4.0, escapes=0,
            weights="ascending_seed0.npz",
        ),
        ChainRecord(
            seed=0, direction=DOWN, points=3, lambda_first=4.0, lambda_last=1.0, escapes=2,
            weights="descending_seed0.npz", trivial_threshold=3.5, left_trivial_at=2.0,
        ),
    ]  # fmt: skip
    chain = summary(Plan, ChainResults(points, []))
    (minima,) = [s for s in first_screen(None, MONOTONICITY, None, chain, records) if "Minima" in s]
    # at lambda 2 the descending J .115 is below the ascending .12 by 4.17 %; at 1 and 4 equal.
    # Best found: .10, .115, .13 (no fall). At lambda 2 three minima: .115, .12, .14
    assert minima == (
        "Minima (1 cold-start points beside the chains): graduated optimisation (descending from "
        "w = 0) reached a lower J than the ascending chain at 1 of 3 (seed, λ), by up to 4.17 %; "
        "the in-sample MSE of the lowest-J minimum found at each λ fell at 0 of its 2 steps; "
        "crevasses: 1 of 3 λ have two or more minima distinct by J or by distance modulo units' "
        "permutations and sign flips (up to 3; 0 share another's J, in-sample MSE "
        "differing by up to 0.025). The trivial point w = 0 is a minimum above λ_c = 3.5; the "
        "ascending chains end at λ = 4, the descending ones leave w = 0 at λ = 2."
    )


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
        "the drops do not), 1 switch branch, 34 are not followed (no drop: chain.follow)."
    )
    assert "saddle branch" not in converged and "lose" not in converged
