"""The monotonicity analysis on a hand-made results table with known decreases and noise
(every expected number below is computed by hand from the table)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from l2path.monotonicity import largest_violations, step_table, summary, threshold


def row(schedule, seed, lam, mse, sd=0.001, critical=False, diverged=False):
    """A point whose three metrics share the within-stage noise ``sd``."""
    return {
        "schedule": schedule,
        "seed": seed,
        "lambda": lam,
        "train_mse": mse,
        "data_loss": mse,
        "objective": mse + 0.01 * lam,
        "train_mse_sd": sd,
        "data_loss_sd": sd,
        "objective_sd": sd,
        "critical": critical,
        "diverged": diverged,
    }


@pytest.fixture
def results():
    rows = [
        # ascending chain: 0.10 -> 0.08 (drop 0.02) -> 0.12 -> 0.119 -> 0.117 (a run of two
        # drops); one diverged
        row("ascending", 0, 1.0, 0.10, 0.001, critical=True),
        row("ascending", 0, 2.0, 0.08, 0.001, critical=True),
        row("ascending", 0, 4.0, 0.12, 0.002),
        row("ascending", 0, 8.0, 0.119, 0.0005),
        row("ascending", 0, 16.0, 0.117, 0.0005),
        row("ascending", 0, 32.0, math.nan, diverged=True),
    ]
    # cold starts: sample std over seeds is 0.001 at every lambda (values m-0.001, m, m+0.001)
    for lam, mse in [(1.0, 0.2), (2.0, 0.21), (4.0, 0.22), (8.0, 0.23), (16.0, 0.24)]:
        rows += [row("cold", seed, lam, mse + (seed - 1) * 0.001) for seed in range(3)]
    return pd.DataFrame(rows)


def test_threshold_is_the_one_sided_normal_quantile():
    assert threshold(0.05) == pytest.approx(1.6448536, rel=1e-6)
    assert threshold(0.1) == pytest.approx(1.2815516, rel=1e-6)


def test_steps_are_judged_against_the_within_stage_noise_of_both_ends(results):
    steps = step_table(results, false_alarm=0.05)
    mse = steps[(steps["schedule"] == "ascending") & (steps["metric"] == "train_mse")]
    assert list(mse["lambda_from"]) == [1.0, 2.0, 4.0, 8.0]  # the diverged point is left out
    assert list(mse["change"]) == pytest.approx([-0.02, 0.04, -0.001, -0.002])
    assert list(mse["decrease"]) == [True, False, True, True]
    # sqrt(sd_i^2 + sd_j^2): 0.001 and 0.001; 0.001 and 0.002; 0.002 and 0.0005; 0.0005 and 0.0005
    assert list(mse["noise_sd"]) == pytest.approx(
        [math.sqrt(2e-6), math.sqrt(5e-6), math.sqrt(4.25e-6), math.sqrt(0.5e-6)]
    )
    assert list(mse["z"]) == pytest.approx(
        [
            0.02 / math.sqrt(2e-6),
            -0.04 / math.sqrt(5e-6),
            0.001 / math.sqrt(4.25e-6),
            0.002 / math.sqrt(0.5e-6),
        ]
    )
    # z = 14.1, 0.49, 2.83 against 1.645
    assert list(mse["beyond_noise"]) == [True, False, False, True]
    assert list(mse["cold_sd"]) == pytest.approx(
        [math.sqrt(2) * 0.001] * 4
    )  # sqrt(2) sigma for a difference
    assert list(mse["both_critical"]) == [True, False, False, False]
    objective = steps[(steps["schedule"] == "ascending") & (steps["metric"] == "objective")]
    assert list(objective["change"]) == pytest.approx([-0.01, 0.06, 0.039, 0.078])


def test_runs_of_consecutive_drops_are_tested_on_their_cumulative_drop(results):
    """The run 4 -> 8 -> 16 drops 0.12 - 0.117 = 0.003 against sqrt(0.002^2 + 0.0005^2) = 0.00206:
    z = 1.455, beyond noise at alpha = 0.1 (1.28), not at 0.05 (1.645), though one of its steps
    is."""
    for alpha, beyond in ((0.05, False), (0.1, True)):
        steps = step_table(results, false_alarm=alpha)
        mse = steps[(steps["schedule"] == "ascending") & (steps["metric"] == "train_mse")]
        assert list(mse["run"]) == [0, -1, 1, 1]
        assert list(mse["run_length"]) == [1, 0, 2, 2]
        assert list(mse["run_drop"])[2:] == pytest.approx([0.003, 0.003])
        assert list(mse["run_noise_sd"])[2:] == pytest.approx([math.sqrt(4.25e-6)] * 2)
        assert list(mse["run_beyond_noise"]) == [True, False, beyond, beyond]


def test_summary_counts(results):
    metrics = summary(step_table(results, false_alarm=0.05)).to_json()
    assert metrics["ascending"]["train_mse"] == {
        "steps": 4,
        "decreases": 3,
        "decreases_beyond_noise": 2,
        "decreases_between_critical": 1,
        "largest_decrease": pytest.approx(0.02),
        "total_decrease": pytest.approx(0.023),
        "runs": 2,
        "longest_run": 2,
        "runs_beyond_noise": 1,
    }
    assert metrics["ascending"]["objective"]["decreases"] == 1
    assert (
        metrics["cold"]["train_mse"]["decreases"] == 0
        and metrics["cold"]["train_mse"]["steps"] == 12
    )


def test_cold_spread_unknown_without_cold_starts(results):
    steps = step_table(results[results["schedule"] != "cold"], false_alarm=0.05)
    assert (
        steps["cold_sd"].isna().all() and steps["beyond_noise"].any()
    )  # the within-stage noise is enough


def test_largest_drop_over_any_pair_adds_up_small_steps():
    """Three steps of -0.0015 are each within noise (z = 0.0015 / sqrt(2e-6) = 1.06) but add up to
    0.0045 between lambda = 1 and 8 (z = 3.18)."""
    rows = [
        row("ascending", 0, lam, mse)
        for lam, mse in [(1.0, 0.1), (2.0, 0.0985), (4.0, 0.097), (8.0, 0.0955), (16.0, 0.2)]
    ]
    for lam in (1.0, 2.0, 4.0, 8.0, 16.0):
        rows += [row("cold", seed, lam, 0.3 + (seed - 1) * 0.001) for seed in range(3)]
    results = pd.DataFrame(rows)
    steps = step_table(results, false_alarm=0.05)
    assert not steps[steps["schedule"] == "ascending"]["beyond_noise"].any()
    assert steps[(steps["schedule"] == "ascending") & (steps["metric"] == "train_mse")][
        "run_beyond_noise"
    ].any()
    violations = largest_violations(results, false_alarm=0.05)
    mse = violations[
        (violations["schedule"] == "ascending") & (violations["metric"] == "train_mse")
    ].iloc[0]
    assert mse["drop"] == pytest.approx(0.0045) and (mse["lambda_from"], mse["lambda_to"]) == (
        1.0,
        8.0,
    )
    assert mse["noise_sd"] == pytest.approx(math.sqrt(2e-6)) and mse["beyond_noise"]
    cold = violations[(violations["schedule"] == "cold") & (violations["metric"] == "train_mse")]
    assert (cold["drop"] == 0).all() and not cold["beyond_noise"].any()
    metrics = summary(steps, violations).schedules
    assert metrics["ascending"].train_mse.largest_drop_any_pair == pytest.approx(0.0045)
    assert metrics["ascending"].train_mse.paths_with_drop_beyond_noise == 1


def chain_row(key, lam, mse, parent=None, control_of=None, sd=0.001):
    schedule = key.split("/")[0]
    return {
        **row(schedule, 0, lam, mse, sd),
        "key": key,
        "parent": parent,
        "control_of": control_of,
    }


@pytest.fixture
def with_controls():
    """Ascending: 0.10 -> 0.08 (control 0.079: as low, explained) -> 0.079 (control 0.085, a drop
    within noise) -> 0.05 (control 0.078: the new lambda went far lower, unexplained).
    Descending (lambda falls along the chain): 0.07 at lambda 2 -> 0.09 at lambda 1 (control
    0.065)."""
    points = pd.DataFrame(
        [
            chain_row("ascending/seed0/lambda00", 1.0, 0.10),
            chain_row("ascending/seed0/lambda01", 2.0, 0.08, "ascending/seed0/lambda00"),
            chain_row("ascending/seed0/lambda02", 4.0, 0.079, "ascending/seed0/lambda01"),
            chain_row("ascending/seed0/lambda03", 8.0, 0.05, "ascending/seed0/lambda02"),
            chain_row("descending/seed0/lambda01", 2.0, 0.07),
            chain_row("descending/seed0/lambda00", 1.0, 0.09, "descending/seed0/lambda01"),
        ]
    )
    controls = pd.DataFrame(
        [
            chain_row(
                "ascending/seed0/control01",
                1.0,
                0.079,
                "ascending/seed0/lambda00",
                "ascending/seed0/lambda01",
            ),
            chain_row(
                "ascending/seed0/control02",
                2.0,
                0.085,
                "ascending/seed0/lambda01",
                "ascending/seed0/lambda02",
            ),
            chain_row(
                "ascending/seed0/control03",
                4.0,
                0.078,
                "ascending/seed0/lambda02",
                "ascending/seed0/lambda03",
            ),
            chain_row(
                "descending/seed0/control00",
                2.0,
                0.065,
                "descending/seed0/lambda01",
                "descending/seed0/lambda00",
            ),
        ]
    )
    return points, controls


def test_each_chain_step_is_set_against_its_same_lambda_control(with_controls):
    points, controls = with_controls
    steps = step_table(points, false_alarm=0.05, controls=controls)
    mse = steps[(steps["schedule"] == "ascending") & (steps["metric"] == "train_mse")]
    assert list(mse["control_change"]) == pytest.approx([0.079 - 0.10, 0.085 - 0.08, 0.078 - 0.079])
    assert list(mse["control_gap"]) == pytest.approx([0.08 - 0.079, 0.079 - 0.085, 0.05 - 0.078])
    assert list(mse["control_gap_sd"]) == pytest.approx([math.sqrt(2e-6)] * 3)
    # -z * sd = -0.00233: gaps 0.001 and -0.006 and -0.028
    assert list(mse["explained"]) == [True, False, False]
    descending = steps[(steps["schedule"] == "descending") & (steps["metric"] == "train_mse")].iloc[
        0
    ]
    assert descending["decrease"] and not descending["explained"]  # the chain rose as lambda fell
    assert descending["control_change"] == pytest.approx(0.065 - 0.07)
    assert descending["control_gap"] == pytest.approx(0.09 - 0.065)


def test_every_nonmonotone_step_gets_a_verdict(with_controls):
    from l2path.verdicts import verdict_counts, verdict_table

    points, controls = with_controls
    table = verdict_table(step_table(points, false_alarm=0.05, controls=controls))
    ascending = table[table["schedule"] == "ascending"]
    assert list(ascending["verdict"]) == [
        "continued optimisation",
        "within noise",
        "beyond noise, unexplained",
    ]
    assert list(table[table["schedule"] == "descending"]["verdict"]) == [
        "beyond noise, unexplained"
    ]
    assert verdict_counts(table, ["ascending", "descending", "cold"]).to_json() == {
        "ascending": {
            "nonmonotone_steps": 3,
            "continued_optimisation": 1,
            "within_noise": 1,
            "beyond_noise_unexplained": 1,
        },
        "descending": {
            "nonmonotone_steps": 1,
            "continued_optimisation": 0,
            "within_noise": 0,
            "beyond_noise_unexplained": 1,
        },
        "cold": {
            "nonmonotone_steps": 0,
            "continued_optimisation": 0,
            "within_noise": 0,
            "beyond_noise_unexplained": 0,
        },
    }
