"""The trust-region Newton-CG corrector against dense float64 references on the small network
(185 parameters): numpy's solve for the inner step, eigvalsh for where it ends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from l2path.curvature.polish import Polish, polish, steihaug, trust_region_newton

from test_certificate import LAM_MIN, dense_newton, minimum
from test_hessian import dense_hessian, saddle_point, small_problem, trained_point


class DenseOperator:
    def __init__(self, matrix: np.ndarray):
        self.matrix, self.products = matrix, 0

    def matvec(self, vector):
        self.products += 1
        return self.matrix @ vector


def test_steihaug_inside_the_region_is_the_newton_step_of_a_positive_definite_hessian():
    objective = small_problem(lam=LAM_MIN)
    theta = minimum(objective) + 1e-3 * torch.as_tensor(
        np.random.default_rng(0).standard_normal(objective.size)
    )
    hessian = dense_hessian(objective, theta).numpy()
    assert np.linalg.eigvalsh(hessian)[0] > 0
    gradient = objective.gradient(theta).numpy()
    step = steihaug(DenseOperator(hessian), gradient, radius=1e6, forcing=1e-12, iterations=5000)
    exact = -np.linalg.solve(hessian, gradient)
    assert not step.on_boundary
    assert np.linalg.norm(step.step - exact) <= 1e-6 * np.linalg.norm(exact)
    assert step.model_decrease == pytest.approx(
        0.5 * gradient @ np.linalg.solve(hessian, gradient), rel=1e-8
    )


def test_steihaug_at_a_saddle_goes_to_the_boundary_and_lowers_the_model():
    objective = small_problem(lam=0.01)
    theta = saddle_point(objective) + 1e-4 * torch.as_tensor(
        np.random.default_rng(1).standard_normal(objective.size)
    )
    hessian = dense_hessian(objective, theta).numpy()
    assert np.linalg.eigvalsh(hessian)[0] < 0
    gradient = objective.gradient(theta).numpy()
    step = steihaug(DenseOperator(hessian), gradient, radius=0.3, forcing=1e-12, iterations=5000)
    assert step.on_boundary and np.linalg.norm(step.step) == pytest.approx(0.3, rel=1e-12)
    model = gradient @ step.step + 0.5 * step.step @ hessian @ step.step
    assert step.model_decrease == pytest.approx(-model, rel=1e-10) and step.model_decrease > 0


def test_newton_cg_from_near_a_minimum_reaches_the_dense_newton_point():
    objective = small_problem(lam=LAM_MIN)
    exact = minimum(objective)
    start = exact + 1e-2 * torch.as_tensor(np.random.default_rng(2).standard_normal(objective.size))
    theta, norm, iterations, products = trust_region_newton(objective, start, Polish(tol=1e-12))
    assert norm <= 1e-12 and products > 0
    assert torch.allclose(theta, dense_newton(objective, theta), atol=1e-9)
    assert float((theta - exact).norm()) <= 1e-8 * (1 + float(exact.norm()))


def test_polish_leaves_the_zero_weight_saddle_for_a_minimum_that_eigvalsh_confirms():
    """At lambda = 0.01 the all-zero-weight point is a saddle (test_certificate); started
    beside it, the polish must not stop there: it ends where every eigenvalue is positive."""
    objective = small_problem(lam=0.01)
    start = saddle_point(objective) + 1e-3 * torch.as_tensor(
        np.random.default_rng(3).standard_normal(objective.size)
    )
    result = polish(objective, start, Polish(tol=1e-10, lbfgs_iterations=0))
    assert result.converged and result.lbfgs_iterations == 0 and result.newton_iterations > 0
    assert np.linalg.eigvalsh(dense_hessian(objective, result.theta).numpy())[0] > 0
    assert float(objective.value(result.theta)) < float(objective.value(saddle_point(objective)))


def test_polish_from_a_far_start_uses_lbfgs_first_and_converges():
    """From the large initialisation it lands where a saturated unit leaves a flat direction:
    no negative curvature beyond rounding, the bottom eigenvalue ~1e-18 (a degenerate minimum)."""
    objective = small_problem(lam=LAM_MIN)
    start = trained_point(objective)
    assert float(objective.gradient(start).norm()) > 1e-2
    result = polish(objective, start, Polish(tol=1e-10))
    assert result.converged and result.lbfgs_iterations > 0
    assert float(objective.gradient(result.theta).norm()) <= 1e-10
    assert np.linalg.eigvalsh(dense_hessian(objective, result.theta).numpy())[0] > -1e-12
    assert float(objective.value(result.theta)) < float(objective.value(start))
