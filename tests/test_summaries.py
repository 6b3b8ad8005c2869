"""The typed summaries of the study and dynamics stages read back the committed metrics
exactly (to_json(from_json(x)) == x) and refuse unknown or missing keys."""

from __future__ import annotations

import copy
import json
import math

import pytest

from l2path.dynamics.summary import DynamicsSummary, EquilibriumSlope, TheoryRow
from l2path.monotonicity import MetricMonotonicity, MonotonicitySummary
from l2path.verdicts import VerdictCounts, VerdictSummary

from conftest import REPO


def committed(name: str) -> dict:
    return json.loads((REPO / "metrics" / name).read_text())


def test_monotonicity_summary_round_trip_and_keys():
    raw = committed("monotonicity.json")
    summary = MonotonicitySummary.from_json(raw)
    assert summary.to_json() == raw
    counts = summary.schedules["ascending"].train_mse
    assert counts.decreases == raw["ascending"]["train_mse"]["decreases"]
    bad = copy.deepcopy(raw)
    bad["ascending"]["train_mse"]["decreases_beyond_nose"] = 1
    del bad["ascending"]["train_mse"]["steps"]
    missed = r"missing \['steps'\], unknown \['decreases_beyond_nose'\]"
    with pytest.raises(ValueError, match=missed):
        MonotonicitySummary.from_json(bad)
    with pytest.raises(ValueError, match="sideways"):
        MonotonicitySummary.from_json({**raw, "sideways": raw["ascending"]})
    with pytest.raises(ValueError, match="objective"):
        MonotonicitySummary.from_json(
            {"cold": {k: v for k, v in raw["cold"].items() if k != "objective"}}
        )


def test_the_any_pair_counts_are_optional_together_with_the_rest():
    base = {
        "steps": 4,
        "decreases": 1,
        "decreases_beyond_noise": 0,
        "decreases_between_critical": 0,
        "largest_decrease": 0.1,
        "total_decrease": 0.1,
        "runs": 1,
        "longest_run": 1,
        "runs_beyond_noise": 0,
    }
    assert MetricMonotonicity.from_json(base).to_json() == base
    full = {**base, "largest_drop_any_pair": 0.2, "paths_with_drop_beyond_noise": 1}
    assert MetricMonotonicity.from_json(full).to_json() == full


def test_verdict_summary_round_trip_and_keys():
    raw = committed("verdicts.json")
    summary = VerdictSummary.from_json(raw)
    assert summary.to_json() == raw
    assert isinstance(summary.schedules["ascending"], VerdictCounts)
    with pytest.raises(ValueError, match=r"missing \['within_noise'\], unknown \['within_nosie'\]"):
        cold = {k: v for k, v in raw["cold"].items() if k != "within_noise"}
        VerdictSummary.from_json({"cold": {**cold, "within_nosie": 0}})
    with pytest.raises(ValueError, match="lukewarm"):
        VerdictSummary.from_json({"lukewarm": raw["cold"]})


def test_dynamics_summary_round_trip_and_keys():
    raw = committed("dynamics.json")
    summary = DynamicsSummary.from_json(raw)
    assert summary.to_json() == raw  # nulls read back as NaN and written as null again
    assert all(isinstance(row, TheoryRow) for row in summary.theory) and summary.theory
    assert summary.equilibrium
    assert all(isinstance(fit, EquilibriumSlope) for fit in summary.equilibrium)
    bad = copy.deepcopy(raw)
    leaf = bad["eta0.1"]["large"]["lambda5"]["layer1"]
    leaf["measured_factr"] = leaf.pop("measured_factor")
    missed = r"missing \['measured_factor'\], unknown \['measured_factr'\]"
    with pytest.raises(ValueError, match=missed):
        DynamicsSummary.from_json(bad)
    with pytest.raises(ValueError, match="beta0.1"):
        DynamicsSummary.from_json({"beta0.1": raw["eta0.1"]})
    clash = copy.deepcopy(raw)
    clash["eta0.1"]["large"]["lambda5"]["layer1"]["eta"] = 0.2
    with pytest.raises(ValueError, match="eta"):
        DynamicsSummary.from_json(clash)


def test_theory_row_columns_and_row_round_trip():
    raw = committed("dynamics.json")
    row = DynamicsSummary.from_json(raw).theory[0].to_row()
    assert list(row)[:4] == ["eta", "init", "lambda", "layer"]
    assert list(row) == list(TheoryRow.columns())
    again = TheoryRow.from_row(row).to_row()
    assert again.keys() == row.keys()
    assert all(
        a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))
        for a, b in zip(again.values(), row.values())
    )
    with pytest.raises(ValueError, match=r"missing \['layer'\], unknown \['extra'\]"):
        TheoryRow.from_row({**{k: v for k, v in row.items() if k != "layer"}, "extra": 1})


def test_a_summary_whose_optional_numbers_are_none_reads_back():
    """`to_json` leaves out a None (a chain with no step on one branch of minima has no lemma
    ratio); `from_json` gives it back as None, and still refuses a missing required key."""
    from l2path.chain.records import ChainSummary

    counts = dict.fromkeys(
        [
            "n_sub",
            "parameters",
            "chains",
            "points",
            "converged_points",
            "proved_minima",
            "proved_saddles",
            "degenerate_points",
            "steps",
            "drops",
            "one_branch_of_minima",
            "fold_jumps",
            "saddle_branches",
            "branch_switches",
            "branches_lost",
            "not_followed",
            "drops_on_one_branch_of_minima",
        ],
        1,
    )
    summary = ChainSummary(**counts, lemma_ratio_min=None, lemma_ratio_max=None)
    written = summary.to_json()
    assert "lemma_ratio_min" not in written and "lemma_ratio_max" not in written
    assert ChainSummary.from_json(written) == summary
    with pytest.raises(ValueError, match="missing \\['drops'\\]"):
        ChainSummary.from_json({k: v for k, v in written.items() if k != "drops"})
