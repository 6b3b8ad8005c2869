"""The report's key numbers are typed: the headline reads them by attribute, and metrics/report.json
keeps its flat keys (``KeyNumbers.to_json``)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from l2path.chain.records import ChainSummary
from l2path.report.headline import headline
from l2path.report.numbers import (
    DecayNumbers,
    HessianNumbers,
    KeyNumbers,
    ScheduleNumbers,
    SlopeNumbers,
    StudyNumbers,
    VerdictNumbers,
)

SCHEDULES = ("ascending", "cold", "descending")
CHAIN = ChainSummary(
    n_sub=128,
    parameters=4180,
    chains=4,
    points=80,
    converged_points=79,
    proved_minima=60,
    proved_saddles=17,
    degenerate_points=2,
    steps=76,
    drops=3,
    one_branch_of_minima=50,
    fold_jumps=2,
    saddle_branches=14,
    branch_switches=5,
    branches_lost=4,
    not_followed=1,
    lemma_ratio_min=0.999,
    lemma_ratio_max=1.002,
    drops_on_one_branch_of_minima=0,
    graduated_compared=40,
    graduated_lower=5,
    best_found_lambdas=20,
    best_found_drops=1,
    several_minima_lambdas=7,
)


def complete() -> KeyNumbers:
    """Every section measured, with distinct values so a number read from the wrong field shows."""
    return KeyNumbers(
        study=StudyNumbers(points=158, critical_points=7),
        schedules=tuple(ScheduleNumbers(s, 10 + i, 36 + i) for i, s in enumerate(SCHEDULES)),
        verdicts=tuple(VerdictNumbers(s, i, 20 + i, 30 + i) for i, s in enumerate(SCHEDULES)),
        hessian=HessianNumbers(minimum=4, saddle=2, not_critical=9),
        nonmonotone_from_saddle=1,
        decay=(
            DecayNumbers("default", 1, None, None, 5.75, None),
            DecayNumbers("large", 1, 0.953, -1.5e-4, 0.28, 0.274),
            DecayNumbers("large", 2, None, None, 2.03, None),
        ),
        slopes=(
            SlopeNumbers(0.5, "default", 1, -0.38),
            SlopeNumbers(0.5, "large", 1, -0.378),
            SlopeNumbers(0.5, "large", 2, -0.232),
            SlopeNumbers(1.0, "large", 1, -9.0),
        ),
        chain=CHAIN,
    )


def test_the_json_keeps_the_flat_keys_in_their_order():
    numbers = complete().to_json()
    assert list(numbers)[:2] == ["points", "critical"]
    assert list(numbers)[2:8] == [f"{s}_mse_{k}" for s in SCHEDULES for k in ("decreases", "steps")]
    assert list(numbers)[8:11] == [
        "ascending_beyond_noise_unexplained",
        "ascending_continued_optimisation",
        "ascending_within_noise",
    ]
    assert not [k for k in numbers if k.startswith("continuation_")]
    assert [numbers[f"hessian_{c}"] for c in ("minimum", "saddle", "not_critical")] == [4, 2, 9]
    assert numbers["nonmonotone_from_saddle"] == 1
    chain = [k for k in numbers if k.startswith("chain_")]
    assert chain == [f"chain_{f.name}" for f in dataclasses.fields(ChainSummary)]
    assert numbers["chain_fold_jumps"] == 2 and numbers["chain_parameters"] == 4180
    assert list(numbers)[-16:-4] == [
        f"decay_{tag}_{name}"
        for tag in ("default_layer1", "large_layer1", "large_layer2")
        for name in (
            "measured_factor",
            "second_order_residual",
            "l2_change_question",
            "tail_off_rms",
        )
    ]
    assert numbers["decay_large_layer1_tail_off_rms"] == 0.274
    assert numbers["decay_default_layer1_measured_factor"] is None  # NaN: null, as before
    assert list(numbers)[-4:] == [
        "equilibrium_eta0.5_default_layer1_slope",
        "equilibrium_eta0.5_large_layer1_slope",
        "equilibrium_eta0.5_large_layer2_slope",
        "equilibrium_eta1_large_layer1_slope",
    ]
    assert len(numbers) == 2 + 6 + 9 + 3 + 1 + 32 + 12 + 4


def test_the_headline_of_complete_numbers_has_every_sections_numbers():
    top = headline(complete(), {"test_accuracy": 0.962, "test_mse": 0.01})
    assert top == {
        "train": {"test_accuracy": 0.962},
        "study": {
            "points": 158,
            "critical_points": 7,
            "ascending_mse_decreases": 10,
            "cold_mse_decreases": 11,
            "descending_mse_decreases": 12,
            "unexplained_steps": 0 + 1 + 2,
        },
        "curvature": {"saddles": 2, "nonmonotone_from_saddle": 1},
        "chain": {
            "points": 80,
            "proved_minima": 60,
            "proved_saddles": 17,
            "degenerate_points": 2,
            "drops": 3,
            "one_branch_of_minima": 50,
            "fold_jumps": 2,
            "branches_lost": 4,
            "graduated_lower": 5,
            "best_found_drops": 1,
            "several_minima_lambdas": 7,
        },
        "decay": {
            "layer1_norm_change": 0.28,
            "layer1_measured_factor": 0.953,
            "layer1_second_order_residual": -1.5e-4,
            "layer1_tail_off_rms": 0.274,
            "layer1_level_off_slope": -0.378,
            "layer2_level_off_slope": -0.232,
        },
    }


def test_the_headline_leaves_out_what_was_not_measured():
    bare = dataclasses.replace(
        complete(),
        verdicts=(),
        hessian=None,
        nonmonotone_from_saddle=None,
        decay=(),
        slopes=(),
        chain=None,
    )
    top = headline(bare, {})
    assert top["train"] == {} and top["curvature"] == {} and "continuation" not in top
    assert top["chain"] == {}
    assert top["decay"] == {} and "unexplained_steps" not in top["study"]
    assert top["study"]["points"] == 158
    # a count over analysed points is not shown when none was analysed, even if it is 0
    unanalysed = dataclasses.replace(complete(), hessian=None, nonmonotone_from_saddle=0)
    assert headline(unanalysed, {})["curvature"] == {}


def test_a_missing_number_fails_when_the_numbers_are_built():
    with pytest.raises(TypeError, match="critical_points"):
        StudyNumbers(points=158)
    fields = {f.name: getattr(complete(), f.name) for f in dataclasses.fields(KeyNumbers)}
    del fields["hessian"]
    with pytest.raises(TypeError, match="hessian"):
        KeyNumbers(**fields)
    with pytest.raises(TypeError, match="proved_minimas"):  # a misspelt number is not dropped
        dataclasses.replace(complete().chain, proved_minimas=3)
    with pytest.raises(AttributeError):
        complete().study.certified  # noqa: B018 (the old name is gone)


def test_a_display_table_names_its_columns_in_words_to_three_digits():
    from l2path.report.display_tables import VERDICT_TABLE, display

    table = pd.DataFrame(
        [
            {
                "verdict": "continued optimisation",
                "schedule": "ascending",
                "seed": 0,
                "lambda_from": 0.00390625,
                "lambda_to": 0.0078125,
                "change": -0.005768544852940746,
                "control_change": -0.0057945,
                "control_gap": 2.6036880e-05,
                "control_gap_sd_paired": 3.9336e-07,
                "z": 6.250198233733788,
                "noise_sd": 0.1,
            }
        ]
    )
    page = display(table, VERDICT_TABLE, "t")
    assert page.index("<th>verdict</th>") < page.index("<th>MSE change</th>")
    assert "<td>-0.00577</td>" in page and "<td>6.25</td>" in page and "<td>0.00391</td>" in page
    assert "noise_sd" not in page and "control_gap" not in page  # code names stay in the CSV


def test_the_shown_tables_name_only_columns_their_stages_write():
    """A display column whose source the stage's table lacks would vanish silently."""
    from l2path.report.chain_answers import CHAIN_COLUMNS
    from l2path.report.display_tables import CHAIN_TABLE, VERDICT_TABLE
    from l2path.report.html import VERDICT_COLUMNS

    assert {column.source for column in CHAIN_TABLE} == set(CHAIN_COLUMNS)
    assert {column.source for column in VERDICT_TABLE} <= set(VERDICT_COLUMNS)
