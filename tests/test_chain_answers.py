"""The converged chains' report sentence and table, and the stage's summary, from hand-made
rows: every number in them is the count of rows with that property."""

from __future__ import annotations

from dataclasses import replace

from l2path.chain.records import ChainDirection, ChainPoint, ChainStep, ClassProof
from l2path.chain.records import StepVerdictKind as Kind
from l2path.chain.stage import ChainResults, summary
from l2path.curvature.classes import PointClass
from l2path.report.chain_answers import CHAIN_COLUMNS, chain_answer, chain_table

UP, DOWN = ChainDirection.UP, ChainDirection.DOWN


def point(direction, index, lam, mse, curvature_class=PointClass.MINIMUM, negative=0):
    return ChainPoint(
        seed=0,
        direction=direction,
        index=index,
        lam=lam,
        lam_sub=lam / 100,
        converged=True,
        lbfgs_iterations=10,
        newton_iterations=2,
        grad_norm=1e-12,
        newton_step_norm=1e-9,
        newton_residual=1e-12,
        newton_mse_change=1e-12,
        certified=True,
        bottom=1e-8 if negative == 0 else -1e-3,
        bottom_residual=1e-14,
        delta=1e-13,
        curvature_class=curvature_class,
        class_proof=ClassProof.INERTIA,
        inertia_lower_bound=1e-9 if negative == 0 else None,
        inertia_negative=negative,
        predicted_dL_dlambda=1e-4,
        data_loss=mse / 2,
        mse=mse,
        objective=mse,
        weight_l2=3.0,
        distance_from_previous=0.1 * index,
        hvps=100,
    )


def step(direction, low, high, change, verdict, **extra):
    return ChainStep(
        seed=0,
        direction=direction,
        lambda_low=low,
        lambda_high=high,
        mse_low=0.1,
        mse_high=0.1 + change,
        change=change,
        drop=change < 0,
        distance=1.0,
        verdict=verdict,
        **extra,
    )


POINTS = [
    point(UP, 0, 1.0, 0.10),
    point(UP, 1, 2.0, 0.12),
    point(UP, 2, 4.0, 0.11),
    point(DOWN, 0, 4.0, 0.30, PointClass.SADDLE, negative=3),
    point(DOWN, 1, 2.0, 0.25, PointClass.SADDLE, negative=2),
]
STEPS = [
    step(UP, 1.0, 2.0, 0.02, Kind.ONE_BRANCH, lemma_ratio=1.0004),
    step(UP, 2.0, 4.0, -0.01, Kind.FOLD_JUMP, fold_lambda=3.1, fold_lambda_error=2e-5),
    step(DOWN, 2.0, 4.0, 0.05, Kind.SADDLE_BRANCH),
]


class Plan:  # what ``summary`` reads of a plan
    n_sub = 128

    class subset:
        class mse:
            size = 4180


def test_summary_counts_the_rows():
    counts = summary(Plan, ChainResults(POINTS, STEPS))
    assert (counts.chains, counts.points, counts.steps, counts.drops) == (2, 5, 3, 1)
    assert (counts.proved_minima, counts.proved_saddles) == (3, 2)
    assert (counts.one_branch_of_minima, counts.fold_jumps, counts.saddle_branches) == (1, 1, 1)
    assert counts.lemma_ratio_min == counts.lemma_ratio_max == 1.0004
    assert counts.drops_on_one_branch_of_minima == 0


def test_the_answer_names_each_count_and_each_drop():
    text = chain_answer(summary(Plan, ChainResults(POINTS, STEPS)), STEPS)
    assert "first 128 training images" in text
    assert "fell as λ rose at 1 of the 3 steps of 2 chains" in text
    assert "1 steps stay on one branch of minima" in text and "1.00040 to 1.00040" in text
    assert "1 jump at a located fold (t_τ changes sign in every one;" in text
    assert "residual under 0.02 at 0, worse at 0, and has too few approach points at 1)" in text
    assert "1 lie on a saddle branch" in text
    assert "3 of 5 points (with 0 of cold starts) are proved minima, 2 proved saddles" in text
    assert "ascending seed 0, λ 2 to 4: change -0.01, fold jump at λ* = 3.1 ± 2e-05" in text


def test_the_answer_counts_the_folds_whose_approach_fits():
    folds = [
        step(UP, 2.0, 4.0, 0.01, Kind.FOLD_JUMP, fold_lambda=3.1, fold_fit_residual=r)
        for r in (0.001, 0.019, 0.5, None)
    ]
    text = chain_answer(summary(Plan, ChainResults(POINTS, folds)), folds)
    assert (
        "4 jump at a located fold (t_τ changes sign in every one; the approach's μ² = "
        "k|λ* − λ| fits with a relative residual under 0.02 at 2, worse at 1, and has too few "
        "approach points at 1)"
    ) in text


def test_the_table_has_a_row_per_chain():
    table = chain_table(POINTS, STEPS)
    assert list(table.columns) == CHAIN_COLUMNS
    up, down = table.to_dict("records")
    assert (up["points"], up["lambda_from"], up["lambda_to"], up["drops"]) == (3, 1.0, 4.0, 1)
    assert (up["proved_minima"], up["fold jump"], up["one branch of minima"]) == (3, 1, 1)
    assert (down["proved_saddles"], down["saddle branch"], down["mse_last"]) == (2, 1, 0.25)


def test_a_drop_on_one_branch_of_minima_is_counted_as_a_contradiction():
    contradiction = replace(STEPS[0], change=-0.01, drop=True)
    counts = summary(Plan, ChainResults(POINTS, [contradiction, *STEPS[1:]]))
    assert counts.drops_on_one_branch_of_minima == 1


def test_the_diagram_draws_each_seed_with_its_folds_lambda_c_and_hysteresis_window():
    from l2path.chain.records import ChainRecord
    from l2path.report.figures import png
    from l2path.report.minima_figure import minima_figure

    points = [
        point(UP, 0, 1.0, 0.10),
        point(UP, 1, 2.0, 0.12),
        point(UP, 2, 4.0, 0.13),
        point(DOWN, 0, 4.0, 0.13),
        point(DOWN, 1, 2.0, 0.115),  # graduated lower here only: the window is [2, 2]
        point(DOWN, 2, 1.0, 0.10),
        replace(point(ChainDirection.COLD, 0, 2.0, 0.14), seed=3),
    ]
    steps = [step(UP, 2.0, 4.0, 0.01, Kind.FOLD_JUMP, fold_lambda=3.1, fold_lambda_error=1e-5)]
    records = [
        ChainRecord(
            seed=0, direction=DOWN, points=3, lambda_first=4.0, lambda_last=1.0, escapes=0,
            weights="descending_seed0.npz", trivial_threshold=3.5, left_trivial_at=2.0,
        )
    ]  # fmt: skip
    figure = minima_figure(points, steps, records)
    top, _ = figure.axes
    assert [ax.get_ylabel() for ax in figure.axes] == ["J_λ", "in-sample MSE"]
    dashed = [line for line in top.lines if line.get_linestyle() in (":", "--")]
    vertical = sorted({line.get_xdata()[0] for line in dashed if len(line.get_xdata())})
    assert vertical == [3.1, 3.5]  # the fold (dotted) and lambda_c (dashed)
    spans = [patch.get_x() for patch in top.patches]
    assert 2.0 in spans  # the shaded window starts at lambda = 2
    assert top.get_title() == "seed 0: λ_c = 3.5 (dashed)"
    assert png(figure)[:4] == b"\x89PNG"
