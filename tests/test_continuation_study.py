"""The continuation tied to a study, on the small network (185 parameters) whose branch of
minima from lambda = 0.05 meets a fold near lambda = 0.07 (test_branch): the verdicts of two
steps, one on the branch and one across the fold, and the metrics counted from them."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from l2path.continuation.branch import Settings
from l2path.continuation.corrector import Polish
from l2path.continuation.study import (NOT_FOLLOWED, Continuation, ContinuationResults, SGDPoint, Step, SubsetProblem,
                                       escape_columns, judge_step, run, summary)

from test_certificate import LAM_MIN, minimum
from test_hessian import SIZES, dense_hessian, small_problem

CONFIG = Continuation(n_sub=40, step=math.log(2) / 8, branch=Settings(polish=Polish(tol=1e-11)))


@pytest.fixture(scope="module")
def results():
    objective = small_problem(lam=LAM_MIN)
    subset = SubsetProblem(SIZES, objective.x, objective.y, "quadratic", n_full=40, n_sub=40)
    start = minimum(objective)
    points = [SGDPoint(0, lam, start.clone()) for lam in (0.05, 0.06, 0.08)]
    steps = [Step(0, 0.05, 0.06, -1e-3), Step(0, 0.06, 0.08, -1e-3)]
    out = ContinuationResults()
    run(subset, points, steps, CONFIG, smallest_change=1e-3, out=out)
    return subset, out


def test_a_step_along_the_branch_of_minima_keeps_the_lemma(results):
    subset, out = results
    step = out.steps[0]
    assert step["curvature_verdict"] == "one branch of minima" and step["lemma_holds"]
    assert step["polished_data_loss_change"] > 0 and step["start_predicted_dL_dlambda"] > 0
    for row in (p for p in out.points if p["lambda"] in (0.05, 0.06)):
        theta = torch.as_tensor(out.thetas[(0, row["lambda"], row["kind"])])
        exact = np.linalg.eigvalsh(dense_hessian(subset.at(row["lambda"]).objective, theta).numpy())
        assert row["certified"] and row["class"] == "minimum" and exact[0] > 0


def test_a_step_across_the_fold_is_a_branch_jump_bracketed_within_two_to_the_eighth(results):
    _, out = results
    step = out.steps[1]
    assert step["curvature_verdict"] == "branch jump" and step["jump_kind"] == "fold" and step["up_followed"]
    assert step["fold_side"] == "up from the start"
    assert 0.06 < step["fold_low"] < step["fold_high"] <= 0.08 and step["fold_evidence"].startswith("the correct")
    assert step["fold_high"] / step["fold_low"] <= 2 ** (1 / 8) * (1 + 1e-12)
    assert {f["reason"] for f in out.folds} == {"fold"} and out.folds[0]["lambda_low"] == step["fold_low"]
    # approaching the fold, the branch's bottom curvature falls (eigvalsh on the dense Hessian)
    before = [b for b in out.branch if b["step_from"] == 0.06 and b["direction"] == "up"]
    assert before[-1]["lambda"] == step["fold_low"] and before[-1]["bottom"] < before[0]["bottom"]


def test_the_metrics_count_points_certificates_folds_and_verdicts(results):
    _, out = results
    metrics = summary(out, n_sub=40)
    assert metrics["points"] == len(out.points) == 3 + 1  # 3 polished points, the branch from 0.05 at 0.06
    assert metrics["folds"] == len(out.folds) >= 1 and metrics["nonmonotone_steps"] == 2 and metrics["undecided"] == 0
    assert metrics["verdicts"] == {"saddle_branch": 0, "branch_jump": 1, "one_branch_of_minima": 1, "undecided": 0}
    assert metrics["certified_points"] == sum(metrics["classes"].values())


def test_n_sub_beyond_the_training_set_is_refused_before_any_work():
    objective = small_problem(lam=LAM_MIN)
    with pytest.raises(ValueError, match="continuation.n_sub = 41"):
        SubsetProblem(SIZES, objective.x, objective.y, "quadratic", n_full=40, n_sub=41)


def _row(cls="minimum", data_loss=1.0, **extra):
    return {"class": cls, "certified": True, "converged": True, "data_loss": data_loss, "mse": data_loss,
            "predicted_dL_dlambda": 1e-3, "grad_norm": 1e-12, "bottom": 1e-3, "delta": 1e-9,
            "newton_mse_change": 0.0, "newton_residual": 1e-6, **extra}


def _judge(start: dict, end: dict, up: dict, down: dict = NOT_FOLLOWED) -> dict:
    return judge_step(start, end, up, down)


def _reached(data_loss: float, on: bool, change: float) -> dict:
    """What following a branch found when it reached the step's other lambda."""
    return {"followed": True, "branch_end": _row(data_loss=data_loss, distance_to_polished=0.0 if on else 3.0),
            "other_on_branch": on, "branch_data_loss_change": change}


def test_a_minimum_off_a_continuing_branch_is_a_switch_that_says_whether_it_lowers_the_loss():
    up = _reached(1.2, on=False, change=0.2)
    lower = _judge(_row(data_loss=1.0), _row(data_loss=0.9), up)
    assert lower["curvature_verdict"] == "branch jump" and lower["jump_kind"] == "switch"
    assert lower["switch_lowers"] and lower["lemma_holds"] and lower["drop_reproduced"]
    level = _judge(_row(data_loss=1.0), _row(data_loss=1.2), up)
    assert level["jump_kind"] == "switch" and not level["switch_lowers"] and not level["drop_reproduced"]
    assert level["up_distance_to_other"] == 3.0 and not level["down_followed"]
    uncertified = _judge(_row(data_loss=1.0), _row("degenerate"), up)
    assert uncertified["curvature_verdict"] == "undecided" and "off the start's branch" in uncertified["reason"]


def test_the_branch_down_from_the_end_decides_a_step_whose_start_is_not_a_certified_minimum():
    fold = {"followed": True, "fold_low": 1.4, "fold_high": 1.4 * 2 ** (1 / 8), "fold_evidence": "the corrector ...",
            "bottom_before_fold": 1e-9}
    born = _judge(_row("degenerate"), _row(), NOT_FOLLOWED, fold)
    assert born["curvature_verdict"] == "branch jump" and born["jump_kind"] == "fold"
    assert born["fold_side"] == "down from the end" and born["fold_low"] == 1.4 and not born["up_followed"]
    same = _judge(_row("degenerate"), _row(data_loss=1.1), NOT_FOLLOWED, _reached(1.0, on=True, change=0.1))
    assert same["curvature_verdict"] == "one branch of minima" and same["lemma_holds"]
    off = _judge(_row("degenerate"), _row(), NOT_FOLLOWED, _reached(1.0, on=False, change=0.1))
    assert off["curvature_verdict"] == "undecided" and "degenerate" in off["reason"]
    assert "off the end's branch" in off["reason"]


def test_the_verdict_needs_a_certified_minimum_and_takes_a_saddle_branch_first():
    neither = _judge(_row("degenerate"), _row("degenerate"), NOT_FOLLOWED)
    assert neither["curvature_verdict"] == "undecided" and neither["reason"].count("degenerate") == 2
    saddle = _judge(_row("saddle", predicted_dL_dlambda=-1e-3), _row(), NOT_FOLLOWED)
    assert saddle["curvature_verdict"] == "saddle branch"
    rising = _judge(_row("saddle"), _row("degenerate"), NOT_FOLLOWED)
    assert rising["curvature_verdict"] == "undecided" and "not negative" in rising["reason"]


def test_the_escape_runs_at_certified_saddles_only():
    from test_escape import DoubleWell  # J = 1 at the saddle (0, 0), 1 - (1 - lambda)^2 / 4 at the minima

    problem = DoubleWell(0.2)
    at_saddle = escape_columns(problem, torch.zeros(2, dtype=torch.float64), _row("saddle"), CONFIG)
    assert at_saddle["escape_lowers"] and at_saddle["escape_control_objective"] == 1.0
    assert at_saddle["escape_objective"] == pytest.approx(1 - 0.16, rel=1e-10)
    uncertified = escape_columns(problem, torch.zeros(2, dtype=torch.float64), _row("saddle", certified=False), CONFIG)
    assert all(math.isnan(v) for v in uncertified.values())
    assert all(math.isnan(v) for v in escape_columns(problem, torch.zeros(2), _row("minimum"), CONFIG).values())
