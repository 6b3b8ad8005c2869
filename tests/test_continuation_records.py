"""The typed rows of the continuation and hessian stages: each gives back the very dict (keys,
order, values) the stage wrote before it was typed, reads back from its CSV to the same bytes,
and refuses unknown and missing keys."""

from __future__ import annotations

import math

import pytest

from l2path.continuation.records import (
    BranchStep,
    ContinuationPoint,
    ContinuationSummary,
    Fold,
    PointKind,
    StepVerdict,
    Verdict,
)
from l2path.landscape_records import (
    CurvaturePoint,
    EscapeRow,
    HessianSummary,
    InterpolationRow,
    SaddleStep,
)
from l2path.rows import frame, read_rows, write_rows

NAN = math.nan
DESCRIBED = {
    "grad_norm": 3e-11,
    "newton_step_norm": 1e-9,
    "newton_residual": 1e-7,
    "newton_mse_change": -2e-12,
    "certified": True,
    "bottom": 1.5e-6,
    "bottom_residual": 1e-12,
    "delta": 1e-10,
    "class": "minimum",
    "predicted_dL_dlambda": 0.25,
    "data_loss": 0.0123,
    "mse": 0.0246,
    "objective": 0.013,
    "weight_l2": 12.5,
    "hvps": 1234,
}
# rows as the stage wrote them before they were typed (its dicts, in their key order)
POLISHED = {
    "seed": 0,
    "lambda": 0.5,
    "lambda_sub": 0.01,
    "kind": "polished",
    "converged": True,
    "lbfgs_iterations": 120,
    "newton_iterations": 7,
    **DESCRIBED,
    "escape_alpha": NAN,
    "escape_control_objective": NAN,
    "escape_objective": NAN,
    "escape_lowers": NAN,
}
SADDLE = {
    **POLISHED,
    "lambda": 1.0,
    "class": "saddle",
    "escape_alpha": 0.1,
    "escape_control_objective": 0.02,
    "escape_objective": 0.019,
    "escape_lowers": True,
}
BRANCH_UP = {
    "seed": 0,
    "lambda": 1.0,
    "lambda_sub": 0.02,
    "kind": "branch up",
    "step_from": 0.5,
    "converged": True,
    **DESCRIBED,
    "distance_to_polished": 25.6,
}
BRANCH = {
    "seed": 1,
    "step_from": 0.5,
    "direction": "up",
    "lambda": 0.5,
    "lambda_sub": 0.01,
    "data_loss": 0.0123,
    "grad_norm": 1e-11,
    "bottom": 1e-6,
    "bottom_residual": 1e-12,
    "predicted_dL_dlambda_sub": NAN,
    "realised_dL_dlambda_sub": NAN,
    "jump": 0.0,
    "barrier": NAN,
    "same_branch": True,
}
FOLD = {
    "seed": 1,
    "step_from": 0.5,
    "direction": "down",
    "lambda_low": 0.6,
    "lambda_high": 0.65,
    "jumped": False,
    "reason": "fold",
    "evidence": "the corrector converged 3.1 from the prediction (allowed 0.2)",
    "bottom_before": 1e-9,
    "bottom_residual_before": 1e-13,
}
SIDE_NOT_FOLLOWED = {
    "followed": False,
    "end_class": "",
    "end_certified": False,
    "data_loss_change": NAN,
    "other_on_branch": False,
    "distance_to_other": NAN,
}
STEP = {
    "seed": 2,
    "lambda_from": 0.5,
    "lambda_to": 1.0,
    "sgd_mse_change": -1e-4,
    "start_class": "minimum",
    "start_certified": True,
    "end_class": "minimum",
    "end_certified": True,
    "start_predicted_dL_dlambda": 0.3,
    "polished_mse_change": 1e-3,
    "polished_data_loss_change": 2e-3,
    "drop_reproduced": False,
    "up_followed": True,
    "up_end_class": "minimum",
    "up_end_certified": True,
    "up_data_loss_change": 0.1,
    "up_other_on_branch": False,
    "up_distance_to_other": 3.0,
    "down_followed": False,
    "down_end_class": "",
    "down_end_certified": False,
    "down_data_loss_change": NAN,
    "down_other_on_branch": False,
    "down_distance_to_other": NAN,
    "fold_side": "",
    "fold_low": NAN,
    "fold_high": NAN,
    "fold_evidence": "",
    "bottom_before_fold": NAN,
    "jump_kind": "switch",
    "switch_lowers": False,
    "lemma_holds": True,
    "reason": "",
    "curvature_verdict": "branch jump",
}
UNDECIDED = {
    **STEP,
    "up_followed": False,
    "up_end_class": "",
    "up_end_certified": False,
    "up_data_loss_change": NAN,
    "up_distance_to_other": NAN,
    "jump_kind": "",
    "switch_lowers": NAN,
    "lemma_holds": NAN,
    "curvature_verdict": "undecided",
    "reason": "the start point is degenerate (bottom 1.00e-12, delta 1.0e-10)",
}
CURVATURE = {
    "key": "ascending/seed0/lambda03",
    "schedule": "ascending",
    "seed": 0,
    "lambda": 0.125,
    "grad_norm": 1e-4,
    "critical": False,
    "lambda_max": 40.0,
    "lambda_min": -0.002,
    "lambda_max_residual": 1e-8,
    "lambda_min_residual": 1e-5,
    "top_converged": 5,
    "bottom_converged": 4,
    "index_estimate": 0.01,
    "index_stderr": 0.002,
    "trace": 310.0,
    "trace_stderr": 4.0,
    "slq_probes": 3,
    "trace_probes": 10,
    "class": "saddle",
    "hvps": 412,
    "n_curvature": 50000,
    "escape_lower": True,
}
ESCAPE = {
    "key": "ascending/seed0/lambda03",
    "sign": -1.0,
    "alpha": 0.05,
    "objective_before": 0.3,
    "objective_after": 0.29,
    "objective_drop": 0.01,
    "mse_before": 0.02,
    "mse_after": 0.019,
    "grad_norm_after": 1e-5,
    "lower": True,
}
LINE = {
    "start": "ascending/seed0/lambda03",
    "end": "ascending/seed0/lambda04",
    "objective_lambda": "from",
    "lambda": 0.125,
    "t": 0.1,
    "data_loss": 0.02,
    "penalty": 150.0,
    "objective": 18.77,
}
SADDLE_STEP = {
    "schedule": "ascending",
    "seed": 0,
    "start": "ascending/seed0/lambda03",
    "end": "ascending/seed0/lambda04",
    "lambda_from": 0.125,
    "lambda_to": 0.25,
    "mse_change": -1e-4,
    "beyond_noise": False,
    "start_class": "not analysed",
    "start_lambda_min": NAN,
    "start_index_estimate": NAN,
    "start_escape_lower": False,
    "barrier_under_lambda_from": 0.0,
    "barrier_under_lambda_to": 1e-6,
}
ROWS = [
    (ContinuationPoint, POLISHED),
    (ContinuationPoint, SADDLE),
    (ContinuationPoint, BRANCH_UP),
    (BranchStep, BRANCH),
    (Fold, FOLD),
    (StepVerdict, STEP),
    (StepVerdict, UNDECIDED),
    (CurvaturePoint, CURVATURE),
    (EscapeRow, ESCAPE),
    (InterpolationRow, LINE),
    (SaddleStep, SADDLE_STEP),
]
CONTINUATION_JSON = {
    "n_sub": 1000,
    "points": 16,
    "certified_points": 16,
    "folds": 6,
    "nonmonotone_steps": 10,
    "undecided": 0,
    "drops_reproduced": 1,
    "escapes": 0,
    "escapes_lowering": 0,
    "branch_steps": 16,
    "branch_steps_across_a_barrier": 0,
    "classes": {"minimum": 16, "saddle": 0, "degenerate": 0},
    "verdicts": {"saddle_branch": 0, "branch_jump": 10, "one_branch_of_minima": 0, "undecided": 0},
    "jumps": {"fold": 6, "switch": 4, "switch_lowering": 0},
}
HESSIAN_JSON = {
    "ascending": {
        "points": {"minimum": 0, "saddle": 0, "not critical": 0},
        "nonmonotone_steps": {
            "total": 10,
            "from_saddle": 0,
            "from_minimum": 0,
            "from_not_critical": 0,
            "escape_lowered": 0,
        },
    },
    "cold": {"points": {"minimum": 1, "saddle": 2, "not critical": 3}},
}


def same(a: dict, b: dict) -> bool:
    """Equal keys in equal order, and equal values (NaN equal to NaN)."""
    return list(a) == list(b) and all(
        (
            isinstance(a[k], float)
            and math.isnan(a[k])
            and isinstance(b[k], float)
            and math.isnan(b[k])
        )
        or a[k] == b[k]
        for k in a
    )


@pytest.mark.parametrize("cls, row", ROWS)
def test_a_row_comes_back_as_the_dict_the_stage_wrote(cls, row):
    assert same(cls.from_row(row).to_row(), row)


@pytest.mark.parametrize("cls, row", ROWS)
def test_unknown_and_missing_columns_are_refused_by_name(cls, row):
    with pytest.raises(ValueError, match="unknown \\['colour'\\]"):
        cls.from_row({**row, "colour": "red"})
    name = list(row)[-1]
    with pytest.raises(ValueError, match=f"missing \\['{name}'\\]"):
        cls.from_row({k: v for k, v in row.items() if k != name})


def test_a_value_of_the_wrong_type_is_refused_by_name():
    with pytest.raises(ValueError, match="hvps"):
        ContinuationPoint.from_row({**POLISHED, "hvps": 1.5})
    with pytest.raises(ValueError, match="curvature_verdict"):
        StepVerdict.from_row({**STEP, "curvature_verdict": "branch jumped"})
    with pytest.raises(ValueError, match="certified"):
        CurvaturePoint.from_row({**CURVATURE, "certified": "yes"})


def test_the_points_table_holds_both_kinds_with_the_other_kinds_cells_blank(tmp_path):
    polished, branch = ContinuationPoint.from_row(POLISHED), ContinuationPoint.from_row(BRANCH_UP)
    assert polished.kind is PointKind.POLISHED and polished.escape_lowers is None
    assert branch.lbfgs_iterations is None and branch.distance_to_polished == 25.6
    assert ContinuationPoint.from_row({**BRANCH_UP, "lbfgs_iterations": NAN}) == branch
    with pytest.raises(ValueError, match="unknown \\['step_from'\\]"):
        ContinuationPoint.from_row({**POLISHED, "step_from": 0.5})
    with pytest.raises(ValueError, match="cannot have"):
        ContinuationPoint(**{**vars(polished), "step_from": 0.5})
    # the columns of a table of both kinds come from the first row met, then the others
    branch_first = list(frame([branch, polished]).columns)
    assert branch_first == list(BRANCH_UP) + [
        "lbfgs_iterations",
        "newton_iterations",
        "escape_alpha",
        "escape_control_objective",
        "escape_objective",
        "escape_lowers",
    ]
    write_rows(tmp_path / "points.csv", [branch, polished])
    assert read_rows(tmp_path / "points.csv", ContinuationPoint) == [branch, polished]


@pytest.mark.parametrize(
    "cls, rows",
    [
        (ContinuationPoint, [POLISHED, BRANCH_UP, SADDLE]),
        (StepVerdict, [STEP, UNDECIDED]),
        (BranchStep, [BRANCH]),
        (Fold, [FOLD]),
        (CurvaturePoint, [CURVATURE]),
        (EscapeRow, [ESCAPE]),
        (InterpolationRow, [LINE]),
        (SaddleStep, [SADDLE_STEP]),
    ],
)
def test_a_table_read_back_and_written_again_is_the_same_bytes(cls, rows, tmp_path):
    records = [cls.from_row(r) for r in rows]
    write_rows(tmp_path / "first.csv", records)
    back = read_rows(tmp_path / "first.csv", cls)
    write_rows(tmp_path / "second.csv", back)
    assert (tmp_path / "first.csv").read_bytes() == (tmp_path / "second.csv").read_bytes()
    assert all(same(a.to_row(), b.to_row()) for a, b in zip(records, back))


def test_an_empty_table_is_a_lone_newline_and_reads_back_as_no_rows(tmp_path):
    write_rows(tmp_path / "empty.csv", [])
    assert (tmp_path / "empty.csv").read_bytes() == b"\n"
    assert read_rows(tmp_path / "empty.csv", CurvaturePoint) == []


def test_the_metrics_come_back_as_their_json_and_refuse_unknown_and_missing_keys():
    summary = ContinuationSummary.from_json(CONTINUATION_JSON)
    assert summary.to_json() == CONTINUATION_JSON and summary.verdicts.of(Verdict.BRANCH_JUMP) == 10
    with pytest.raises(ValueError, match="unknown \\['saddle_branches'\\]"):
        ContinuationSummary.from_json(
            {
                **CONTINUATION_JSON,
                "verdicts": {**CONTINUATION_JSON["verdicts"], "saddle_branches": 0},
            }
        )
    with pytest.raises(ValueError, match="missing \\['jumps'\\]"):
        ContinuationSummary.from_json({k: v for k, v in CONTINUATION_JSON.items() if k != "jumps"})
    hessian = HessianSummary.from_json(HESSIAN_JSON)
    assert hessian.to_json() == HESSIAN_JSON and hessian.schedules["cold"].nonmonotone_steps is None
    assert hessian.schedules["cold"].points.not_critical == 3
    with pytest.raises(ValueError, match="missing \\['not critical'\\]"):
        HessianSummary.from_json({"cold": {"points": {"minimum": 1, "saddle": 2}}})
