"""The monotonicity analysis on a hand-made results table with known decreases and noise."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from l2path.monotonicity import largest_violations, step_table, summary


def row(schedule, seed, lam, mse, certified=False, diverged=False):
    return {"schedule": schedule, "seed": seed, "lambda": lam, "train_mse": mse, "data_loss": mse,
            "objective": mse + 0.01 * lam, "certified": certified, "diverged": diverged}


@pytest.fixture
def results():
    rows = [
        # ascending chain: 0.10 -> 0.08 (drop 0.02) -> 0.12 -> 0.119 (drop 0.001); one point diverged
        row("ascending", 0, 1.0, 0.10, certified=True), row("ascending", 0, 2.0, 0.08, certified=True),
        row("ascending", 0, 4.0, 0.12), row("ascending", 0, 8.0, 0.119),
        row("ascending", 0, 16.0, math.nan, diverged=True),
    ]
    # cold starts: sample std over seeds is 0.001 at every lambda (values m-0.001, m, m+0.001)
    for lam, mse in [(1.0, 0.2), (2.0, 0.21), (4.0, 0.22), (8.0, 0.23)]:
        rows += [row("cold", seed, lam, mse + (seed - 1) * 0.001) for seed in range(3)]
    return pd.DataFrame(rows)


def test_steps_changes_and_noise(results):
    steps = step_table(results, noise_sigmas=2.0)
    mse = steps[(steps["schedule"] == "ascending") & (steps["metric"] == "train_mse")]
    assert list(mse["lambda_from"]) == [1.0, 2.0, 4.0]  # the diverged point is left out
    assert list(mse["change"]) == pytest.approx([-0.02, 0.04, -0.001])
    assert list(mse["decrease"]) == [True, False, True]
    assert list(mse["noise_sd"]) == pytest.approx([0.001] * 3)
    # 0.02 > 2 * 0.001 is beyond noise; 0.001 is not
    assert list(mse["beyond_noise"]) == [True, False, False]
    assert list(mse["both_certified"]) == [True, False, False]
    objective = steps[(steps["schedule"] == "ascending") & (steps["metric"] == "objective")]
    assert list(objective["change"]) == pytest.approx([-0.01, 0.06, 0.039])


def test_summary_counts(results):
    metrics = summary(step_table(results, noise_sigmas=2.0))
    assert metrics["ascending"]["train_mse"] == {
        "steps": 3, "decreases": 2, "decreases_beyond_noise": 1, "decreases_between_certified": 1,
        "largest_decrease": pytest.approx(0.02), "total_decrease": pytest.approx(0.021)}
    assert metrics["ascending"]["objective"]["decreases"] == 1
    assert metrics["cold"]["train_mse"]["decreases"] == 0 and metrics["cold"]["train_mse"]["steps"] == 9


def test_noise_unknown_without_cold_starts(results):
    steps = step_table(results[results["schedule"] != "cold"], noise_sigmas=2.0)
    assert steps["noise_sd"].isna().all() and not steps["beyond_noise"].any()


def test_largest_drop_over_any_pair_adds_up_small_steps():
    """Three steps of -0.0015 are each within 2 sd (0.001 each) but add up to 0.0045 > 2 sd."""
    rows = [row("ascending", 0, lam, mse) for lam, mse in [(1.0, 0.1), (2.0, 0.0985), (4.0, 0.097), (8.0, 0.0955),
                                                          (16.0, 0.2)]]
    for lam in (1.0, 2.0, 4.0, 8.0, 16.0):
        rows += [row("cold", seed, lam, 0.3 + (seed - 1) * 0.001) for seed in range(3)]
    results = pd.DataFrame(rows)
    steps = step_table(results, noise_sigmas=2.0)
    assert not steps[steps["schedule"] == "ascending"]["beyond_noise"].any()
    violations = largest_violations(results, noise_sigmas=2.0)
    mse = violations[(violations["schedule"] == "ascending") & (violations["metric"] == "train_mse")].iloc[0]
    assert mse["drop"] == pytest.approx(0.0045) and (mse["lambda_from"], mse["lambda_to"]) == (1.0, 8.0)
    assert mse["beyond_noise"]
    cold = violations[(violations["schedule"] == "cold") & (violations["metric"] == "train_mse")]
    assert (cold["drop"] == 0).all() and not cold["beyond_noise"].any()
    metrics = summary(steps, violations)
    assert metrics["ascending"]["train_mse"]["largest_drop_any_pair"] == pytest.approx(0.0045)
    assert metrics["ascending"]["train_mse"]["paths_with_drop_beyond_noise"] == 1
