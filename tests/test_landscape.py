"""Which points the hessian stage analyses, and how its summary counts them."""

from __future__ import annotations

import pandas as pd
import pytest

from l2path.config import load_params
from l2path.landscape import LandscapeResults, select_points, summary
from l2path.landscape_records import NOT_ANALYSED, CurvaturePoint, HessianSummary, SaddleStep

from l2path.monotonicity import nonmonotone_steps

from conftest import REPO
from study_setup import point_record


def tables():
    study = [
        point_record(f"{s}/seed0/lambda0{i}", lam)
        for s in ("ascending", "descending", "cold")
        for i, lam in enumerate([1.0, 2.0, 4.0])
    ]
    step = {
        "schedule": "ascending",
        "seed": 0,
        "metric": "train_mse",
        "lambda_from": 2.0,
        "lambda_to": 4.0,
        "change": -0.1,
        "decrease": True,
        "beyond_noise": False,
    }
    steps = pd.DataFrame(
        [
            {**step, "lambda_from": 1.0, "lambda_to": 2.0, "beyond_noise": True},
            {**step, "change": 0.1, "decrease": False},
            {**step, "metric": "objective"},
            {**step, "schedule": "cold"},
        ]
    )
    return study, steps


def test_nonmonotone_selection_takes_start_points_of_chain_mse_decreases():
    study, steps = tables()
    config = load_params(REPO / "params.yaml").hessian.model_copy(
        update={"schedules": ["ascending", "cold"], "select": "nonmonotone"}
    )
    # cold starts are not a chain; the objective's steps are ignored
    assert len(nonmonotone_steps(steps, config.schedules)) == 1
    assert [p.key for p in select_points(study, steps, config)] == ["ascending/seed0/lambda00"]
    everything = config.model_copy(update={"select": "all", "schedules": ["descending"]})
    assert [p.key for p in select_points(study, steps, everything)] == [
        f"descending/seed0/lambda0{i}" for i in range(3)
    ]
    # the default
    assert select_points(study, steps, config.model_copy(update={"select": "none"})) == []
    study[4] = point_record("descending/seed0/lambda01", 2.0, diverged=True)
    assert [p.key for p in select_points(study, steps, everything)] == [
        "descending/seed0/lambda00",
        "descending/seed0/lambda02",
    ]


def _point(schedule: str, cls: str) -> CurvaturePoint:
    return CurvaturePoint(
        key=f"{schedule}/seed0/lambda00",
        schedule=schedule,
        seed=0,
        lam=1.0,
        grad_norm=1e-3,
        critical=False,
        lambda_max=10.0,
        lambda_min=-1.0,
        lambda_max_residual=0.0,
        lambda_min_residual=0.0,
        top_converged=5,
        bottom_converged=5,
        index_estimate=0.1,
        index_stderr=0.01,
        trace=1.0,
        trace_stderr=0.1,
        slq_probes=3,
        trace_probes=10,
        curvature_class=cls,
        hvps=100,
        n_curvature=40,
        escape_lower=False,
    )


def _step(schedule: str, start_class: str, lower: bool) -> SaddleStep:
    return SaddleStep(
        schedule=schedule,
        seed=0,
        start="a",
        end="b",
        lambda_from=1.0,
        lambda_to=2.0,
        mse_change=-0.1,
        beyond_noise=True,
        start_class=start_class,
        start_lambda_min=float("nan"),
        start_index_estimate=float("nan"),
        start_escape_lower=lower,
        barrier_under_lambda_from=0.0,
        barrier_under_lambda_to=0.0,
    )


def test_summary_counts_classes_and_the_start_class_of_each_step():
    results = LandscapeResults(
        points=[_point("ascending", "saddle"), _point("ascending", "not critical")],
        steps=[
            _step("ascending", "saddle", True),
            _step("ascending", "not critical", False),
            _step("descending", NOT_ANALYSED, False),
        ],
    )
    expected = {
        "ascending": {
            "points": {"minimum": 0, "saddle": 1, "not critical": 1},
            "nonmonotone_steps": {
                "total": 2,
                "from_saddle": 1,
                "from_minimum": 0,
                "from_not_critical": 1,
                "escape_lowered": 1,
            },
        },
        "descending": {
            "points": {"minimum": 0, "saddle": 0, "not critical": 0},
            "nonmonotone_steps": {
                "total": 1,
                "from_saddle": 0,
                "from_minimum": 0,
                "from_not_critical": 0,
                "escape_lowered": 0,
            },
        },
    }
    assert summary(results).to_json() == expected
    assert HessianSummary.from_json(expected) == summary(results)
    only_points = summary(LandscapeResults(points=[_point("cold", "minimum")])).to_json()
    assert only_points == {"cold": {"points": {"minimum": 1, "saddle": 0, "not critical": 0}}}
    with pytest.raises(ValueError, match="degenerate"):
        summary(LandscapeResults(points=[_point("cold", "degenerate")]))
