"""The continuation tied to a study, on the small network (185 parameters) whose branch of
minima from lambda = 0.05 meets a fold near lambda = 0.07 (test_branch): the verdicts of two
steps, one on the branch and one across the fold, and the metrics counted from them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from l2path.continuation.branch import Settings
from l2path.curvature.polish import Polish
from l2path.continuation.records import (
    ContinuationPoint,
    Direction,
    FoldSide,
    JumpKind,
    PointKind,
    Verdict,
    VerdictCounts,
)
from l2path.continuation.study import (
    NOT_FOLLOWED,
    BranchEnd,
    BranchEvidence,
    Continuation,
    ContinuationResults,
    FoldBracket,
    SGDPoint,
    Step,
    SubsetProblem,
    escape_test,
    judge_step,
    run,
    summary,
)
from l2path.rows import read_rows, write_rows

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
    assert step.curvature_verdict is Verdict.ONE_BRANCH and step.lemma_holds
    assert step.polished_data_loss_change > 0 and step.start_predicted_dL_dlambda > 0
    for point in (p for p in out.points if p.lam in (0.05, 0.06)):
        theta = torch.as_tensor(out.thetas[(0, point.lam, point.kind.value)])
        exact = np.linalg.eigvalsh(dense_hessian(subset.at(point.lam), theta).numpy())
        assert point.certified and point.curvature_class == "minimum" and exact[0] > 0


def test_a_step_across_the_fold_is_a_branch_jump_bracketed_within_two_to_the_eighth(results):
    _, out = results
    step = out.steps[1]
    assert step.curvature_verdict is Verdict.BRANCH_JUMP and step.jump_kind is JumpKind.FOLD
    assert step.up_followed and step.fold_side is FoldSide.UP
    assert 0.06 < step.fold_low < step.fold_high <= 0.08
    assert step.fold_evidence.startswith("the correct")
    assert step.fold_high / step.fold_low <= 2 ** (1 / 8) * (1 + 1e-12)
    assert {f.reason for f in out.folds} == {"fold"} and out.folds[0].lambda_low == step.fold_low
    # approaching the fold, the branch's bottom curvature falls (eigvalsh on the dense Hessian)
    before = [b for b in out.branch if b.step_from == 0.06 and b.direction is Direction.UP]
    assert before[-1].lam == step.fold_low and before[-1].bottom < before[0].bottom


def test_the_metrics_count_points_certificates_folds_and_verdicts(results):
    _, out = results
    metrics = summary(out, n_sub=40)
    # 3 polished points, and the branch from 0.05 at 0.06
    assert metrics.points == len(out.points) == 3 + 1
    assert metrics.folds == len(out.folds) >= 1 and metrics.nonmonotone_steps == 2
    assert metrics.undecided == 0
    assert metrics.verdicts == VerdictCounts(
        saddle_branch=0, branch_jump=1, one_branch_of_minima=1, undecided=0
    )
    assert metrics.certified_points == sum(metrics.classes.to_json().values())
    assert type(metrics).from_json(metrics.to_json()) == metrics


def _old_order(row: dict) -> tuple:
    """The sort key the task used on the tables' dicts before they were typed."""
    return (
        row["seed"],
        *(row.get(k, 0) for k in ("lambda", "lambda_from", "lambda_low")),
        row.get("kind", ""),
        row.get("step_from", 0),
        row.get("direction", ""),
    )


def test_the_tables_come_back_in_the_order_and_bytes_they_were_written(results, tmp_path):
    _, out = results
    shuffled = ContinuationResults(
        points=out.points[::-1],
        branch=out.branch[::-1],
        folds=out.folds[::-1],
        steps=out.steps[::-1],
    )
    ordered = shuffled.ordered()
    for name in ("points", "branch", "folds", "steps"):
        rows = getattr(ordered, name)
        written = [r.to_row() for r in getattr(shuffled, name)]
        assert [r.to_row() for r in rows] == sorted(written, key=_old_order)
        assert [_old_order(r.to_row()) for r in rows] == sorted(map(_old_order, written))
        write_rows(tmp_path / f"{name}.csv", rows)
        back = read_rows(tmp_path / f"{name}.csv", type(rows[0]))
        write_rows(tmp_path / f"{name}_again.csv", back)
        again = (tmp_path / f"{name}_again.csv").read_bytes()
        assert (tmp_path / f"{name}.csv").read_bytes() == again
        assert [r.to_row().keys() for r in back] == [r.to_row().keys() for r in rows]


def test_n_sub_beyond_the_training_set_is_refused_before_any_work():
    objective = small_problem(lam=LAM_MIN)
    with pytest.raises(ValueError, match="continuation.n_sub = 41"):
        SubsetProblem(SIZES, objective.x, objective.y, "quadratic", n_full=40, n_sub=41)


STEP = Step(0, 1.0, 2.0, -1e-3)


def _point(cls="minimum", data_loss=1.0, **extra) -> ContinuationPoint:
    """A polished point (a branch point with ``kind``, ``step_from`` and the distance)."""
    fields = dict(
        seed=0,
        lam=1.0,
        lam_sub=1.0,
        kind=PointKind.POLISHED,
        converged=True,
        lbfgs_iterations=0,
        newton_iterations=0,
        grad_norm=1e-12,
        newton_step_norm=0.0,
        newton_residual=1e-6,
        newton_mse_change=0.0,
        certified=True,
        bottom=1e-3,
        bottom_residual=0.0,
        delta=1e-9,
        curvature_class=cls,
        predicted_dL_dlambda=1e-3,
        data_loss=data_loss,
        mse=data_loss,
        objective=data_loss,
        weight_l2=1.0,
        hvps=0,
    )
    return ContinuationPoint(**{**fields, **extra})


def _judge(start, end, up: BranchEvidence, down: BranchEvidence = NOT_FOLLOWED):
    return judge_step(STEP, start, end, up, down)


def _reached(data_loss: float, on: bool, change: float) -> BranchEvidence:
    """What following a branch found when it reached the step's other lambda."""
    end = _point(
        data_loss=data_loss,
        kind=PointKind.BRANCH_UP,
        step_from=1.0,
        lbfgs_iterations=None,
        newton_iterations=None,
        distance_to_polished=0.0 if on else 3.0,
    )
    return BranchEvidence(end=BranchEnd(end, on, change))


def test_a_minimum_off_a_continuing_branch_is_a_switch_that_says_whether_it_lowers_the_loss():
    up = _reached(1.2, on=False, change=0.2)
    lower = _judge(_point(data_loss=1.0), _point(data_loss=0.9), up)
    assert lower.curvature_verdict is Verdict.BRANCH_JUMP and lower.jump_kind is JumpKind.SWITCH
    assert lower.switch_lowers and lower.lemma_holds and lower.drop_reproduced
    level = _judge(_point(data_loss=1.0), _point(data_loss=1.2), up)
    assert level.jump_kind is JumpKind.SWITCH and not level.switch_lowers
    assert not level.drop_reproduced
    assert level.up_distance_to_other == 3.0 and not level.down_followed
    uncertified = _judge(_point(data_loss=1.0), _point("degenerate"), up)
    assert uncertified.curvature_verdict is Verdict.UNDECIDED
    assert "off the start's branch" in uncertified.reason
    assert uncertified.switch_lowers is None and math.isnan(uncertified.to_row()["switch_lowers"])


def test_the_branch_down_from_the_end_decides_a_step_whose_start_is_not_a_certified_minimum():
    fold = BranchEvidence(fold=FoldBracket(1.4, 1.4 * 2 ** (1 / 8), "the corrector ...", 1e-9))
    born = _judge(_point("degenerate"), _point(), NOT_FOLLOWED, fold)
    assert born.curvature_verdict is Verdict.BRANCH_JUMP and born.jump_kind is JumpKind.FOLD
    assert born.fold_side is FoldSide.DOWN and born.fold_low == 1.4 and not born.up_followed
    assert born.down_followed and born.down_end_class == "" and born.bottom_before_fold == 1e-9
    same = _judge(
        _point("degenerate"),
        _point(data_loss=1.1),
        NOT_FOLLOWED,
        _reached(1.0, on=True, change=0.1),
    )
    assert same.curvature_verdict is Verdict.ONE_BRANCH and same.lemma_holds
    off = _judge(_point("degenerate"), _point(), NOT_FOLLOWED, _reached(1.0, on=False, change=0.1))
    assert off.curvature_verdict is Verdict.UNDECIDED and "degenerate" in off.reason
    assert "off the end's branch" in off.reason


def test_the_verdict_needs_a_certified_minimum_and_takes_a_saddle_branch_first():
    neither = _judge(_point("degenerate"), _point("degenerate"), NOT_FOLLOWED)
    assert neither.curvature_verdict is Verdict.UNDECIDED
    assert neither.reason.count("degenerate") == 2
    saddle = _judge(_point("saddle", predicted_dL_dlambda=-1e-3), _point(), NOT_FOLLOWED)
    assert saddle.curvature_verdict is Verdict.SADDLE_BRANCH
    rising = _judge(_point("saddle"), _point("degenerate"), NOT_FOLLOWED)
    assert rising.curvature_verdict is Verdict.UNDECIDED and "not negative" in rising.reason


def test_evidence_is_a_fold_or_an_end_never_both():
    end = _reached(1.0, on=True, change=0.1).end
    with pytest.raises(ValueError, match="not both"):
        BranchEvidence(fold=FoldBracket(1.0, 1.1, "", 0.0), end=end)
    assert not NOT_FOLLOWED.followed and BranchEvidence(end=end).followed


ESCAPE = ("escape_alpha", "escape_control_objective", "escape_objective", "escape_lowers")


def test_the_escape_runs_at_certified_saddles_only():
    # J = 1 at the saddle (0, 0), 1 - (1 - lambda)^2 / 4 at the minima
    from test_escape import DoubleWell

    problem = DoubleWell(0.2)
    at_saddle = escape_test(problem, torch.zeros(2, dtype=torch.float64), _point("saddle"), CONFIG)
    assert at_saddle.escape_lowers and at_saddle.escape_control_objective == 1.0
    assert at_saddle.escape_objective == pytest.approx(1 - 0.16, rel=1e-10)
    uncertified = escape_test(
        problem, torch.zeros(2, dtype=torch.float64), _point("saddle", certified=False), CONFIG
    )
    assert all(getattr(uncertified, name) is None for name in ESCAPE)
    assert all(math.isnan(uncertified.to_row()[name]) for name in ESCAPE)
    minimum_point = escape_test(problem, torch.zeros(2), _point("minimum"), CONFIG)
    assert all(getattr(minimum_point, name) is None for name in ESCAPE)
