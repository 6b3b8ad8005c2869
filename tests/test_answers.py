"""The report's sentences carry the numbers of the tables they are written from."""

from __future__ import annotations

import dataclasses
import math
import typing

import pandas as pd

from l2path.config import load_params
from l2path.dynamics.summary import TheoryRow
from l2path.landscape_records import CurvaturePoint, InterpolationRow, SaddleStep
from l2path.monotonicity import MonotonicitySummary
from l2path.report.answers import continuation_answers, opening_answer
from l2path.report.decay_answers import dynamics_answers
from l2path.verdicts import VerdictSummary

from conftest import REPO


def counts(steps, decreases, beyond=0, runs=0, longest=0, runs_beyond=0):
    return {
        "steps": steps,
        "decreases": decreases,
        "decreases_beyond_noise": beyond,
        "decreases_between_critical": 0,
        "largest_decrease": 0.002,
        "largest_drop_any_pair": 0.004,
        "total_decrease": 0.003,
        "runs": runs,
        "longest_run": longest,
        "runs_beyond_noise": runs_beyond,
        "paths_with_drop_beyond_noise": 0,
    }


def rows_of(kind: type, columns: dict[str, list]) -> list:
    """Rows of a stage's table with the given columns; every other column blank (NaN, "",
    False or 0, by its field's type): what the answers do not read."""
    hints = typing.get_type_hints(kind)
    blank = {float: math.nan, str: "", bool: False, int: 0}
    size = len(next(iter(columns.values())))
    filler = {
        column: blank[hints[name]]
        for column, name in kind.columns().items()
        if column not in columns
    }
    return [
        kind.from_row({**filler, **{c: values[i] for c, values in columns.items()}})
        for i in range(size)
    ]


def monotonicity_of(**schedules) -> MonotonicitySummary:
    """metrics/monotonicity.json of ``schedules`` (name -> metric -> counts; a metric left
    out has no steps), read back as the report reads it."""
    return MonotonicitySummary.from_json(
        {
            name: {
                metric: metrics.get(metric, counts(0, 0))
                for metric in ("train_mse", "data_loss", "objective")
            }
            for name, metrics in schedules.items()
        }
    )


def test_continuation_answers_count_steps_and_saddles():
    monotonicity = monotonicity_of(
        ascending={
            "train_mse": counts(16, 3, beyond=1, runs=2, longest=2, runs_beyond=1),
            "objective": counts(16, 1),
        },
        cold={"train_mse": counts(15, 0)},
    )
    study = pd.DataFrame({"critical": [True, False, True], "grad_norm": [1e-5, 2e-2, 3e-5]})
    saddle_steps = rows_of(
        SaddleStep,
        {
            "schedule": ["ascending"] * 3,
            "start": ["a0", "a1", "a2"],
            "end": ["a1", "a2", "a3"],
            "start_class": ["saddle", "saddle", "minimum"],
            "start_escape_lower": [True, False, False],
            "barrier_under_lambda_from": [0.0, 0.1, 0.0],
            "barrier_under_lambda_to": [0.0] * 3,
        },
    )
    hessian = rows_of(
        CurvaturePoint,
        {
            "class": ["saddle", "saddle", "minimum"],
            "lambda_max": [0.5, 0.6, 0.7],
            "lambda_min": [-1e-3, -2e-3, 1e-4],
        },
    )
    # J under the old lambda along each step's segment: lower at the new point for a0->a1 and a2->a3
    interpolation = rows_of(
        InterpolationRow,
        pd.DataFrame(
            [
                {"start": a, "end": b, "objective_lambda": which, "t": t, "objective": value}
                for a, b, end_value in (("a0", "a1", 0.9), ("a1", "a2", 1.2), ("a2", "a3", 0.5))
                for which in ("from", "to")
                for t, value in ((0.0, 1.0), (1.0, end_value if which == "from" else 2.0))
            ]
        ).to_dict("list"),
    )
    answers = dict(continuation_answers(monotonicity, study, hessian, saddle_steps, interpolation))
    ascending = answers["λ continuation, ascending"]
    assert (
        "the in-sample MSE fell as λ rose at 3 of 16 steps" in ascending
        and "1 of them beyond" in ascending
    )
    assert (
        "2 runs of consecutive drops (the longest 2 steps), 1 with a cumulative drop beyond noise"
        in ascending
    )
    assert "the objective J_λ fell at 1 of its steps" in ascending
    assert "2 started from a saddle point, 1 from a minimum and 0 from a point" in ascending
    assert (
        "lowered J_λ at 1 of the saddles" in ascending
        and "1 of these steps cross a barrier" in ascending
    )
    assert (
        "At 2 of these 3 steps the new point is lower than the old one under the old λ's"
        in ascending
    )
    cold = answers["cold starts"]
    assert (
        "lower at the larger of two neighbouring λ at 0 of 15 steps" in cold
        and "not a continuation" in cold
    )
    summary = answers["Convergence and curvature"]
    assert "2 of 3 points of the study were critical points" in summary
    assert "0 minima" not in summary and "1 minima, 2 saddles, 0 not critical" in summary
    assert "2 points have a negative smallest eigenvalue" in summary


def test_the_opening_answer_is_made_of_the_verdict_counts():
    verdicts = {
        "ascending": {
            "nonmonotone_steps": 12,
            "continued_optimisation": 12,
            "within_noise": 0,
            "beyond_noise_unexplained": 0,
        },
        "descending": {
            "nonmonotone_steps": 2,
            "continued_optimisation": 0,
            "within_noise": 1,
            "beyond_noise_unexplained": 1,
        },
        "cold": {
            "nonmonotone_steps": 5,
            "continued_optimisation": 0,
            "within_noise": 5,
            "beyond_noise_unexplained": 0,
        },
    }
    monotonicity = monotonicity_of(
        ascending={"train_mse": counts(36, 12)},
        descending={"train_mse": counts(44, 2)},
        cold={"train_mse": counts(66, 5)},
    )
    text = opening_answer(VerdictSummary.from_json(verdicts), monotonicity)
    assert text.startswith("Yes, it is non-monotone.")
    assert (
        "ascending chains (λ rising from point to point), the in-sample MSE fell as λ rose at 12 "
        "of 36 steps: the same-λ controls got as low at 12 of them" in text
    )
    assert (
        "descending chains (λ falling from point to point), the in-sample MSE rose as λ fell at 2 "
        "of 44 steps" in text
    )
    assert (
        "1 remain beyond noise and unexplained" in text
        and "cold" not in text.lower().split("chains")[0]
    )
    quiet = {s: {**v, "nonmonotone_steps": 0} for s, v in verdicts.items()}
    assert opening_answer(VerdictSummary.from_json(quiet), monotonicity).startswith(
        "No non-monotone step."
    )


def test_without_the_per_point_hessian_analysis_no_class_counts_are_claimed():
    monotonicity = monotonicity_of(ascending={"train_mse": counts(5, 2), "objective": counts(5, 0)})
    study = pd.DataFrame({"critical": [False] * 3, "grad_norm": [2e-2] * 3})
    saddle_steps = rows_of(
        SaddleStep,
        {
            "schedule": ["ascending"] * 2,
            "start": ["a0", "a1"],
            "end": ["a1", "a2"],
            "start_class": ["not analysed"] * 2,
            "start_escape_lower": [False, False],
            "barrier_under_lambda_from": [0.0, 0.2],
            "barrier_under_lambda_to": [0.0, 0.0],
        },
    )
    answers = dict(continuation_answers(monotonicity, study, [], saddle_steps, None))
    ascending = answers["λ continuation, ascending"]
    assert (
        "none was classed by the per-point Hessian analysis" in ascending
        and "saddle point" not in ascending
    )
    assert "1 of these steps cross a barrier" in ascending


def _theory_row(init: str, layer: int, **numbers) -> dict:
    row = {
        "eta": 0.1,
        "init": init,
        "lambda": 5.0,
        "layer": layer,
        "n_in": 784 if layer == 1 else 30,
        "epochs": 100,
        "seeds": 3,
        "question_epoch": 30,
        "batch_ratio_start": 5.0,
        "theory_factor": 0.951229,
        "theory_factor_exp": 0.951229,
        "measured_factor": 0.953384,
        "relative_deviation": 2.3e-3,
        "small_epochs": 60,
        "radial_ratio_small": -0.1,
        "theory_factor_with_gradient": 0.9519,
        "first_order_share_of_gap": 0.31,
        "second_order_factor": 0.9533,
        "second_order_share_of_gap": 0.97,
        "second_order_residual": 1e-4,
        "first_epoch_factor": 0.95,
        "ratio_start": 0.5,
        "ratio_median": 2.0,
        "radial_ratio_median": 0.05,
        "radial_ratio_quadratic_median": 0.02,
        "decay_dominated_epochs": 0.0,
        "outward_epochs": 0.0,
        "tail_off_epoch": 41.2,
        "tail_off_epoch_min": 40.1,
        "tail_off_epoch_max": 42.5,
        "tail_off_rms": 0.21,
        "tail_off_rms_min": 0.2,
        "tail_off_rms_max": 0.22,
        "tail_off_seeds": 3,
        "equilibrium_rms": 0.2,
        "equilibrium_rms_min": 0.19,
        "equilibrium_rms_max": 0.21,
        "equilibrium_rate": 0.01,
        "equilibrium_levelled": True,
        "equilibrium_level_epoch": float("nan"),
        "equilibrium_radial_ratio": -0.98,
        "equilibrium_balance_radial_ratio": -0.97,
        "shrink_rate_end": 0.05,
        "rms_start": 1.0,
        "rms_end": 0.2,
        "var_question": 0.078,
        "reported_variance": 0.08,
        "inv_sqrt_n_weights": 0.0065,
        "inv_n_weights": 4.2e-5,
        "inv_sqrt_n_in": 0.036,
        "epochs_to_inv_sqrt_n_weights": 100.0,
        "l2_change_question": 0.28,
        "l2_change_question_control": 1.001,
        "validation_accuracy_question": 0.9631,
        "validation_accuracy_question_control": 0.9479,
        "saturation_mean_dsigma_start": 0.05,
        "saturation_mean_dsigma_end": 0.15,
        "saturation_share_z4_start": 0.6,
        "saturation_share_z4_end": 0.1,
        "output_error_start": 1.2,
        "output_error_end": 0.2,
    }
    return {**row, **numbers}


def _theory() -> list[TheoryRow]:
    """The question's rows (eta = 0.1), the book's large layer 1 (eta = 0.5, no tail-off within
    its 30 epochs) and a sweep of large layer 1 over lambda = 1, 2, 5 with RMS 0.4 lambda^(-1/2)."""
    sweep = [
        _theory_row(
            "large",
            1,
            eta=0.5,
            epochs=40,
            seeds=1,
            equilibrium_rms=0.4 * lam**-0.5,
            **{"lambda": lam},
        )
        for lam in (1.0, 2.0)
    ]
    return [
        TheoryRow.from_row(row)
        for row in [
            _theory_row("large", 1),
            _theory_row(
                "large",
                2,
                l2_change_question=1.9,
                l2_change_question_control=2.0,
                radial_ratio_median=-1.6,
                radial_ratio_quadratic_median=-0.2,
                first_epoch_factor=1.2,
                var_question=3.77,
                reported_variance=3.6,
                tail_off_seeds=0,
                equilibrium_levelled=False,
            ),
            _theory_row("default", 1, validation_accuracy_question=0.9639),
            _theory_row("default", 2, validation_accuracy_question=0.9639),
            _theory_row(
                "large",
                1,
                eta=0.5,
                epochs=40,
                tail_off_seeds=0,
                shrink_rate_end=0.6,
                rms_end=0.3,
                equilibrium_rms=0.4 * 5**-0.5,
            ),
            *sweep,
        ]
    ]


def test_the_dynamics_answers_open_with_a_plain_answer_and_its_number():
    config = load_params(REPO / "params.yaml").dynamics
    theory = _theory()
    answers = dict(dynamics_answers(theory, config))
    a = answers["(a) Are the first epochs dominated by decay? (large N(0,1) init)"]
    assert a.startswith(
        "Yes for layer 1 (over 30 epochs its norm changed ×0.28 with λ = 5 and ×1.001 with λ = 0); "
        "no for layer 2"
    )
    b = answers["(b) Per-epoch shrink (1 − ηλ/n)^(n/m) ≈ exp(−ηλ/m) while gradients are small"]
    assert (
        "(31% of the gap)" in b
        and "0.953300 to second order (97% of the gap; residual +1.0e-04)" in b
    )
    c = answers["(c) Does decay tail off near RMS 1/√n_w?"]
    assert c.startswith("No: at η = 0.1 layer 1 tails off at RMS 0.21, 32.3× 1/√n_w. ")
    assert (
        "η = 0.1, 100 epochs, layer 1: at epoch 41.2 with RMS 0.21 (seeds 40.1–42.5, RMS 0.2–0.22)"
        in c
    )
    assert (
        "η = 0.5, 40 epochs, layer 1: not below 50% (the last epoch's log-shrink is 60% of the "
        "theory's" in c
    )
    assert "layer 2 never decays: it grew ×1.2 in the first epoch" in c
    d = answers["(d) How does this relate to the N(0, 1/n_in) initialisation?"]
    assert d.startswith(
        "The N(0, 1/n_in) start ends with the best validation accuracy after 30 epochs: 96.39%, "
        "against 96.31% from the large start with λ = 5 and 94.79% from the large start without "
        "decay."
    )
    assert "layer 1: 0.078 (the question: 0.08); layer 2: 3.77 (the question: 3.6)" in d
    e = answers["(e) At what scale does each layer level off, and does it depend on λ?"]
    assert e.startswith(
        "Yes, it depends on λ, which a fixed 1/√n_w scale (slope 0) does not allow and the balance "
        "(λ/n)W = −∂L/∂W along W does: large layer 1: RMS ∝ λ^-0.50 ± 0.00 over λ = 1, 2, 5"
    )
    assert (
        "RMS at the end for λ = 1, 2, 5: large layer 1: 0.4, 0.283, 0.179 (27.5–61.5× 1/√n_w, "
        "4.97–11.1× 1/√n_in; r minus the balance's r from -0.01 to -0.01)"
    ) in e
    why = answers["Why one layer shrinks while another grows"]
    assert why.startswith(
        "Yes: large layer 2 grows (median r -1.6 under cross-entropy), and with the quadratic "
        "cost's σ′ factor the same weights give median r -0.2, so the missing σ′ factor"
    )
    not_explained = dict(
        dynamics_answers(
            [dataclasses.replace(r, radial_ratio_quadratic_median=-1.5) for r in theory], config
        )
    )
    assert not_explained["Why one layer shrinks while another grows"].startswith(
        "No: large layer 2 grows"
    )
    flat = [dataclasses.replace(r, equilibrium_rms=0.2) for r in theory]
    assert dict(dynamics_answers(flat, config))[
        "(e) At what scale does each layer level off, and does it depend on λ?"
    ].startswith("No, the scale barely moves with λ")


def _costs(quadratic_grows: bool) -> pd.DataFrame:
    """The causal test's table: large layer 2 grows x1.9 under cross-entropy; under the
    quadratic cost x1.05 (grows) or x0.6 (shrinks)."""
    rows = []
    for cost, change in (("cross_entropy", 1.9), ("quadratic", 1.05 if quadratic_grows else 0.6)):
        for layer in (1, 2):
            grows = layer == 2 and change > 1
            rows.append(
                {
                    "cost": cost,
                    "init": "large",
                    "layer": layer,
                    "eta": 0.1,
                    "lambda": 5.0,
                    "seeds": 3,
                    "question_epoch": 30,
                    "l2_change": change if layer == 2 else 0.3,
                    "l2_change_min": change - 0.05 if layer == 2 else 0.29,
                    "l2_change_max": change + 0.05 if layer == 2 else 0.31,
                    "grows_every_seed": grows,
                    "radial_ratio_median": -1.6 if grows else 0.4,
                    "outward_epochs": 20.0 if grows else 0.0,
                    "validation_accuracy": 0.96 if cost == "cross_entropy" else 0.93,
                }
            )
    return pd.DataFrame(rows)


def test_the_mechanism_opens_with_the_causal_test_and_its_numbers():
    config = load_params(REPO / "params.yaml").dynamics
    why = dict(dynamics_answers(_theory(), config, _costs(quadratic_grows=False)))[
        "Why one layer shrinks while another grows"
    ]
    assert why.startswith(
        "Tested causally, the cost is what grows it: trained again with the quadratic cost "
        "(same inits, seeds, mini-batch order, η, λ, 30 epochs, 3 seeds), large layer 2: ×1.9 "
        "(seeds 1.85–1.95, median r -1.6) under cross-entropy, ×0.6 (seeds 0.55–0.65, median "
        "r +0.4) under quadratic (it keeps -80% of its growth in ln‖W‖)."
    )
    assert "Validation accuracy at epoch 30: large 96.00% (cross-entropy) vs 93.00%" in why
    assert "Yes: large layer 2 grows (median r -1.6 under cross-entropy)" in why
    still = dict(dynamics_answers(_theory(), config, _costs(quadratic_grows=True)))[
        "Why one layer shrinks while another grows"
    ]
    # ln 1.05 / ln 1.9 = 7.6 %
    assert still.startswith(
        "Tested causally, the cost explains most of the growth: trained again with the "
        "quadratic cost"
    )
    assert "(it keeps 8% of its growth in ln‖W‖)" in still
    # without the comparison runs the answer is the counterfactual alone
    alone = dict(dynamics_answers(_theory(), config, pd.DataFrame()))
    assert alone["Why one layer shrinks while another grows"].startswith("Yes: large layer 2")


def test_the_balance_answer_names_the_largest_part_of_each_gap():
    """Two rows: layer 2's gap -0.9 is mostly the epoch-end reading (-0.7), layer 1's +0.1
    mostly the mini-batch term; on the trajectory the balance holds to 0.02."""
    config = load_params(REPO / "params.yaml").dynamics
    parts = [
        {
            "epoch_end": -0.7,
            "fitted_batches": -0.1,
            "fluctuation": -0.001,
            "drift": -0.019,
            "batch_noise": -0.08,
            "layer": 2,
        },
        {
            "epoch_end": 0.02,
            "fitted_batches": 0.0,
            "fluctuation": 0.0,
            "drift": 0.0,
            "batch_noise": 0.08,
            "layer": 1,
        },
    ]
    rows = []
    for part in parts:
        gap = sum(v for k, v in part.items() if k != "layer")
        rows.append(
            {
                "eta": 0.5,
                "init": "large",
                "lambda": 2.0,
                "seeds": 3,
                "epoch": 41,
                "snapshot": -0.8 + gap,
                "snapshot_balance": -0.8,
                "gap": gap,
                "along": -0.8 + gap - part["epoch_end"],
                "along_sd": 0.6,
                "fresh": -0.8 + gap - part["epoch_end"] - part["fitted_batches"],
                "fresh_balance": -0.8 + part["batch_noise"],
                "identity_error": 1e-15,
                **part,
            }
        )
    answer = dict(dynamics_answers(_theory(), config, None, pd.DataFrame(rows)))[
        "Why the balance misses a levelled layer's r at η = 0.5"
    ]
    assert answer.startswith(
        "The balance holds on the trajectory; the stage's reading of r misses it. Stepped "
        "through one more epoch, the fresh batches' mean share along W equals the balance's r "
        "up to the fluctuation the balance leaves out (at most 0.001) and the drift of a layer "
        "still levelling (at most 0.019, large layer 2 at λ = 2). The stage reads r once per "
        "epoch, the full batch at an epoch's end, and along an epoch that reading swings with "
        "sd 0.6–0.6: reading r at the epoch's end instead of along it is the largest part of "
        "the gap in 1, the mini-batch term at the end instead of along the epoch is the "
        "largest part of the gap in 1 of the 2 rows."
    )
    assert (
        "large layer 2 at λ = 2: r -1.70 against b -0.80, gap -0.90 = -0.70 + -0.10 + -0.00 + "
        "-0.02 + -0.08; along the epoch the full-batch r has mean -1.00 and sd 0.60"
    ) in answer
    assert "large layer 2 λ = 2: -0.90 (epoch end -0.70)" in answer
    assert "large layer 1 λ = 2" not in answer.split("Every row")[1]
