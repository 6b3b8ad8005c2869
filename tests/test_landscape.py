"""Which points the hessian stage analyses, and how its summary counts them."""
from __future__ import annotations

import pandas as pd

from l2path.config import load_params
from l2path.curvature.landscape import LandscapeResults, nonmonotone_steps, select_points, summary

from conftest import REPO
from study_setup import point_record


def tables():
    study = [point_record(f"{s}/seed0/lambda0{i}", lam) for s in ("ascending", "descending", "cold")
             for i, lam in enumerate([1.0, 2.0, 4.0])]
    steps = pd.DataFrame([
        {"schedule": "ascending", "seed": 0, "metric": "train_mse", "lambda_from": 1.0, "lambda_to": 2.0,
         "change": -0.1, "decrease": True, "beyond_noise": True},
        {"schedule": "ascending", "seed": 0, "metric": "train_mse", "lambda_from": 2.0, "lambda_to": 4.0,
         "change": 0.1, "decrease": False, "beyond_noise": False},
        {"schedule": "ascending", "seed": 0, "metric": "objective", "lambda_from": 2.0, "lambda_to": 4.0,
         "change": -0.1, "decrease": True, "beyond_noise": False},
        {"schedule": "cold", "seed": 0, "metric": "train_mse", "lambda_from": 2.0, "lambda_to": 4.0,
         "change": -0.1, "decrease": True, "beyond_noise": False},
    ])
    return study, steps


def test_nonmonotone_selection_takes_start_points_of_chain_mse_decreases():
    study, steps = tables()
    config = load_params(REPO / "params.yaml").hessian.model_copy(update={"schedules": ["ascending", "cold"],
                                                                          "select": "nonmonotone"})
    assert len(nonmonotone_steps(steps, config.schedules)) == 1  # cold starts are not a chain; objective ignored
    assert [p.key for p in select_points(study, steps, config)] == ["ascending/seed0/lambda00"]
    everything = config.model_copy(update={"select": "all", "schedules": ["descending"]})
    assert [p.key for p in select_points(study, steps, everything)] == [f"descending/seed0/lambda0{i}" for i in range(3)]
    assert select_points(study, steps, config.model_copy(update={"select": "none"})) == []  # the default
    study[4] = point_record("descending/seed0/lambda01", 2.0, diverged=True)
    assert [p.key for p in select_points(study, steps, everything)] == ["descending/seed0/lambda00",
                                                                         "descending/seed0/lambda02"]


def test_summary_counts_classes_and_the_start_class_of_each_step():
    results = LandscapeResults(
        points=[{"schedule": "ascending", "class": "saddle"}, {"schedule": "ascending", "class": "not critical"}],
        steps=[{"schedule": "ascending", "start_class": "saddle", "start_escape_lower": True},
               {"schedule": "ascending", "start_class": "not critical", "start_escape_lower": False}])
    assert summary(results) == {"ascending": {
        "points": {"minimum": 0, "saddle": 1, "not critical": 1},
        "nonmonotone_steps": {"total": 2, "from_saddle": 1, "from_minimum": 0, "from_not_critical": 1,
                              "escape_lowered": 1}}}
