"""Hessian-vector products and spectra against a dense float64 Hessian of a small network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from l2path.model.costs import get_cost
from l2path.objective import Objective
from l2path.model.init import init_stack
from l2path.curvature.classes import PointClass, classify_by_gradient
from l2path.curvature.spectrum import (
    extreme_eigenpairs,
    hutchinson_trace,
    lanczos_extreme,
    slq_density,
)

SIZES = [12, 10, 5]  # 120 + 50 weights, 15 biases: 185 parameters


def small_problem(cost="quadratic", lam=0.5, n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(rng.random((n, SIZES[0])))
    labels = np.argmax(x[:, : SIZES[-1]].numpy(), axis=1)  # labels that depend on the input
    labels[: SIZES[-1]] = np.arange(SIZES[-1])  # every class present
    y = torch.nn.functional.one_hot(torch.as_tensor(labels), SIZES[-1]).to(torch.float64)
    return Objective(SIZES, x, y, get_cost(cost), lam, chunk=16)


def trained_point(objective, seed=1):
    net = init_stack(SIZES, ["large"], [seed], torch.float64)
    return objective.flat(net)


def dense_hessian(objective, theta):
    return torch.autograd.functional.hessian(objective.value, theta)


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
def test_hvp_equals_dense_hessian_times_vector(cost):
    objective = small_problem(cost)
    theta = trained_point(objective)
    dense = dense_hessian(objective, theta)
    for seed in range(3):
        v = torch.as_tensor(np.random.default_rng(seed).standard_normal(objective.size))
        ours, reference = objective.hvp(theta, v), dense @ v
        assert torch.linalg.norm(ours - reference) <= 1e-10 * torch.linalg.norm(reference)


def test_l2_term_shifts_the_weight_block_by_lambda_over_n():
    lam = 3.0
    with_l2, without = small_problem(lam=lam), small_problem(lam=0.0)
    theta = trained_point(with_l2)
    shift = dense_hessian(with_l2, theta) - dense_hessian(without, theta)
    n = len(with_l2.x)
    assert torch.allclose(shift, torch.diag(with_l2.weight_mask()) * lam / n, rtol=0, atol=1e-12)
    assert (
        shift[with_l2.n_weights :, with_l2.n_weights :].abs().max() <= 1e-12
    )  # biases are not penalised


def test_gradient_equals_autograd():
    objective = small_problem("cross_entropy")
    theta = trained_point(objective).requires_grad_()
    (reference,) = torch.autograd.grad(objective.value(theta), theta)
    assert torch.allclose(objective.gradient(theta.detach()), reference, rtol=1e-12, atol=1e-14)


def saddle_point(objective):
    """All weights zero, output biases at logit(mean y): a critical point of J_lambda for any
    lambda (no signal reaches the output, the bias fits the class frequencies). Distinct
    hidden biases avoid repeated eigenvalues (Lanczos finds one vector per eigenspace)."""
    layers = len(SIZES) - 1
    weights = [torch.zeros(o, i, dtype=torch.float64) for i, o in zip(SIZES[:-1], SIZES[1:])]
    biases = [torch.linspace(-1.0, 1.0, o, dtype=torch.float64) for o in SIZES[1:]]
    mean = objective.y.mean(0)
    biases[-1] = torch.log(mean / (1 - mean))
    assert len(weights) == layers
    return torch.cat([w.reshape(-1) for w in weights] + biases)


@pytest.mark.parametrize("which", ["trained", "saddle"])
def test_extreme_eigenvalues_match_dense_eigvalsh(which):
    objective = small_problem(lam=0.01)
    theta = trained_point(objective) if which == "trained" else saddle_point(objective)
    exact = np.linalg.eigvalsh(dense_hessian(objective, theta).numpy())
    op = objective.operator(theta)
    top = extreme_eigenpairs(op, k=3, which="LA", tol=1e-10)
    bottom = extreme_eigenpairs(op, k=3, which="SA", tol=1e-10, scale=abs(exact[-1]))
    scale = np.abs(exact).max()
    assert np.allclose(top.values, exact[-3:], rtol=0, atol=1e-8 * scale)
    assert np.allclose(bottom.values, exact[:3], rtol=0, atol=1e-8 * scale)
    assert top.converged.all() and bottom.converged.all()
    assert (top.residuals <= 1e-8 * scale).all()
    if which == "saddle":
        assert exact[0] < -1e-3 * exact[-1]  # indefinite: the weight blocks couple


@pytest.mark.parametrize("which", ["LA", "SA"])
@pytest.mark.parametrize("point", ["trained", "saddle"])
def test_plain_lanczos_extreme_match_dense_eigvalsh(which, point):
    objective = small_problem(lam=0.01)
    theta = trained_point(objective) if point == "trained" else saddle_point(objective)
    exact = np.linalg.eigvalsh(dense_hessian(objective, theta).numpy())
    scale = abs(exact[-1])
    wanted = exact[-3:] if which == "LA" else exact[:3]
    op = objective.operator(theta)
    pairs = lanczos_extreme(op, 3, which, tol=1e-8, max_steps=objective.size, scale=scale)
    assert np.allclose(pairs.values, wanted, rtol=0, atol=1e-8 * scale) and pairs.converged.all()
    assert (pairs.residuals <= 1e-8 * scale).all()
    assert np.allclose(pairs.vectors.T @ pairs.vectors, np.eye(3), atol=1e-8)


def test_lanczos_stops_once_converged_and_its_residuals_bound_the_error():
    """The top end converges long before p steps; the stop rule's cheap residual estimate
    must agree with the explicit residuals, which bound each Ritz value's distance to the
    spectrum (|theta - lambda_j| <= ||H v - theta v|| for symmetric H)."""
    objective = small_problem(lam=0.01)
    theta = trained_point(objective)
    exact = np.linalg.eigvalsh(dense_hessian(objective, theta).numpy())
    op = objective.operator(theta)
    pairs = lanczos_extreme(op, 1, "LA", tol=1e-6, max_steps=objective.size)
    assert (
        op.products < objective.size // 3
    )  # stopped early (the count includes the residual check)
    assert pairs.converged.all()
    assert abs(pairs.values[0] - exact[-1]) <= pairs.residuals[0]
    few = lanczos_extreme(
        objective.operator(theta), 1, "SA", tol=1e-12, max_steps=30, scale=abs(exact[-1])
    )
    assert few.values[0] >= exact[0] - 1e-12  # a Ritz value never undershoots the spectrum
    assert not few.converged.all() and few.residuals[0] > 1e-12 * abs(exact[-1])
    assert np.min(np.abs(exact - few.values[0])) <= few.residuals[0]


def test_classification_of_the_zero_weight_critical_point():
    """Small lambda: a saddle; once lambda/n exceeds the coupling, the same point is a minimum."""
    for lam, expected in [(0.01, PointClass.SADDLE), (400.0, PointClass.MINIMUM)]:
        objective = small_problem(lam=lam)
        theta = saddle_point(objective)
        grad_norm = float(torch.linalg.norm(objective.gradient(theta)))
        assert grad_norm < 1e-12
        exact = np.linalg.eigvalsh(dense_hessian(objective, theta).numpy())
        assert classify_by_gradient(grad_norm, 1e-8, exact[0], exact[-1], rel_tol=1e-6) is expected
    assert classify_by_gradient(1e-3, 1e-4, -1.0, 1.0, 1e-6) is PointClass.NOT_CRITICAL
    assert classify_by_gradient(float("nan"), 1e-4, -1.0, 1.0, 1e-6) is PointClass.NOT_CRITICAL


def test_density_and_trace_agree_with_the_dense_spectrum_within_their_errors():
    objective = small_problem(lam=0.01)
    theta = saddle_point(objective)
    exact = np.linalg.eigvalsh(dense_hessian(objective, theta).numpy())
    op = objective.operator(theta)
    trace, trace_error = hutchinson_trace(op, probes=60, seed=1)
    assert abs(trace - exact.sum()) <= 4 * trace_error
    density = slq_density(op, probes=20, steps=40, seed=2)
    negative, negative_error = density.fraction_below(0.0)
    true_negative = float((exact < 0).mean())
    assert 0 < true_negative < 0.5
    assert abs(negative - true_negative) <= 4 * negative_error + 1e-3
    slq_trace, slq_error = density.trace()
    assert abs(slq_trace - exact.sum()) <= 4 * slq_error
    assert np.allclose(density.weights.sum(1), 1.0)


def test_analysis_of_the_saddle_and_the_escape_along_negative_curvature():
    from l2path.curvature.saddle import CurvatureSettings, analyse_point, escape

    objective = small_problem(lam=0.01)
    theta = saddle_point(objective)
    exact = np.linalg.eigvalsh(dense_hessian(objective, theta).numpy())
    row, spectrum = analyse_point(
        objective,
        theta,
        grad_norm=0.0,
        grad_tol=1e-8,
        settings=CurvatureSettings(k=3, eig_tol=1e-8, lanczos_steps=objective.size),
    )
    assert row["class"] is PointClass.SADDLE and row["lambda_min"] == pytest.approx(
        exact[0], rel=1e-8
    )
    mse = lambda net: float(
        0.5
        * (
            torch.sigmoid(
                torch.sigmoid(objective.x @ net.weights[0][0].T + net.biases[0][0])
                @ net.weights[1][0].T
                + net.biases[1][0]
            )
            - objective.y
        )
        .square()
        .sum(1)
        .mean()
    )
    results = escape(
        objective,
        theta,
        spectrum["min_vector"],
        row["lambda_min"],
        mse,
        grad_tol=1e-6,
        max_iter=200,
    )
    assert [list(r) for r in results] == [
        [
            "sign",
            "alpha",
            "objective_before",
            "objective_after",
            "objective_drop",
            "mse_before",
            "mse_after",
            "grad_norm_after",
            "lower",
        ]
    ] * 2  # escapes.csv's columns
    assert len(results) == 2 and all(r["lower"] and r["objective_drop"] > 0 for r in results)
    assert all(r["mse_after"] < r["mse_before"] and r["grad_norm_after"] <= 1e-6 for r in results)
    value = float(objective.value(theta))
    assert results[0]["alpha"] == pytest.approx(np.sqrt(2e-3 * value / abs(exact[0])), rel=1e-8)


def test_interpolation_endpoints_are_the_two_points():
    from l2path.curvature.saddle import interpolate

    objective = small_problem(lam=2.0)
    a, b = trained_point(objective, seed=1), trained_point(objective, seed=2)
    line = interpolate(objective, a, b, np.linspace(0, 1, 5))
    for point, theta in ((line[0], a), (line[-1], b)):
        assert point["data_loss"] + 2.0 * point["penalty"] == pytest.approx(
            float(objective.value(theta)), rel=1e-12
        )
