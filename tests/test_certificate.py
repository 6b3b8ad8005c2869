"""Certificates, Newton steps and branch tangents against dense float64 references on a small
network (185 parameters): numpy's solve and eigvalsh, and finite differences along a branch."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import torch

from l2path.curvature.certificate import branch_tangent, certify, newton_step
from l2path.curvature.classes import PointClass, classify_bottom
from l2path.model.costs import get_cost
from l2path.objective import Objective
from l2path.model.init import init_stack

from test_hessian import SIZES, dense_hessian, saddle_point, small_problem, trained_point


def mse_of(objective: Objective) -> Objective:
    return Objective(SIZES, objective.x, objective.y, get_cost("quadratic"), 0.0, chunk=16)


def dense_newton(objective: Objective, theta: torch.Tensor, tol: float = 1e-13) -> torch.Tensor:
    """Newton's method with the dense Hessian until ||grad J|| <= tol (quadratic convergence)."""
    for _ in range(50):
        gradient = objective.gradient(theta)
        if float(gradient.norm()) <= tol:
            return theta
        theta = theta - torch.linalg.solve(dense_hessian(objective, theta), gradient)
    raise AssertionError(f"Newton did not converge: ||grad J|| = {float(gradient.norm()):.3g}")


LAM_MIN = 0.05  # a minimum with every Hessian eigenvalue > 0 (bottom ~1e-5, top ~0.4); at
# lambda = 0.5 L-BFGS lands on the collapsed all-zero-weight point, whose biases are flat


def minimum(objective: Objective) -> torch.Tensor:
    """A local minimiser: L-BFGS from the default initialisation, then dense Newton."""
    theta = objective.flat(init_stack(SIZES, ["default"], [1], torch.float64))

    def value_and_gradient(vector):
        t = torch.as_tensor(vector)
        return float(objective.value(t)), objective.gradient(t).numpy()

    result = scipy.optimize.minimize(
        value_and_gradient,
        theta.numpy(),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 5000, "gtol": 1e-10, "ftol": 1e-15},
    )
    return dense_newton(objective, torch.as_tensor(result.x))


def test_newton_step_equals_the_dense_solve_at_a_point_far_from_critical():
    objective = small_problem(lam=0.5)
    theta = trained_point(objective)
    gradient = objective.gradient(theta).numpy()
    step = newton_step(objective.operator(theta), gradient)
    exact = -np.linalg.solve(dense_hessian(objective, theta).numpy(), gradient)
    assert np.linalg.norm(step.step - exact) <= 1e-6 * np.linalg.norm(exact)
    assert step.residual <= 1e-7 and step.products > 0


def test_a_point_far_from_critical_is_not_certified_and_its_predicted_change_is_the_dense_one():
    objective = small_problem(lam=0.5)
    theta = trained_point(objective)
    certificate = certify(objective, mse_of(objective), theta, smallest_change=1e-4)
    exact_step = -np.linalg.solve(
        dense_hessian(objective, theta).numpy(), objective.gradient(theta).numpy()
    )
    exact_change = float(mse_of(objective).gradient(theta).numpy() @ exact_step)
    assert certificate.mse_change == pytest.approx(exact_change, rel=1e-6)
    assert abs(exact_change) > 1e-6 and not certificate.certified


@pytest.mark.parametrize(
    "lam, expected", [(0.01, PointClass.SADDLE), (400.0, PointClass.DEGENERATE)]
)
def test_classes_at_the_zero_weight_critical_point_agree_with_eigvalsh(lam, expected):
    """With every weight zero the hidden biases reach nothing: their curvature is exactly 0,
    so once lambda removes the negative curvature the point is degenerate, not a minimum."""
    objective = small_problem(lam=lam)
    theta = saddle_point(objective)
    certificate = certify(objective, mse_of(objective), theta, smallest_change=1e-6)
    exact = np.linalg.eigvalsh(dense_hessian(objective, theta).numpy())
    assert certificate.certified and certificate.grad_norm < 1e-12
    assert abs(certificate.bottom - exact[0]) <= certificate.bottom_residual + 1e-12
    assert certificate.curvature_class is expected
    if expected is PointClass.SADDLE:
        assert exact[0] < -certificate.delta
    else:
        assert abs(exact[0]) <= 1e-12 <= certificate.delta


def test_a_converged_minimum_is_certified_and_classed_a_minimum():
    objective = small_problem(lam=LAM_MIN)
    theta = minimum(objective)
    exact = np.linalg.eigvalsh(dense_hessian(objective, theta).numpy())
    assert exact[0] > 0
    certificate = certify(objective, mse_of(objective), theta, smallest_change=1e-8)
    assert certificate.certified and certificate.curvature_class is PointClass.MINIMUM
    assert certificate.bottom == pytest.approx(exact[0], rel=1e-6)


def test_inconclusive_when_the_bottom_curvature_is_within_its_uncertainty():
    assert classify_bottom(mu=1e-5, residual=1e-6, delta=2e-5) is PointClass.DEGENERATE
    assert classify_bottom(mu=-1e-5, residual=1e-6, delta=2e-5) is PointClass.DEGENERATE
    assert classify_bottom(mu=-3e-5, residual=1e-6, delta=2e-5) is PointClass.SADDLE
    assert classify_bottom(mu=3e-5, residual=1e-6, delta=2e-5) is PointClass.MINIMUM


def test_a_class_writes_as_its_bare_value():
    """CSVs, JSON and log lines keep the strings they had before the enum."""
    import json

    import pandas as pd

    for member in PointClass:
        assert str(member) == f"{member}" == format(member) == member.value
        assert member == member.value and hash(member) == hash(member.value)
    assert PointClass.NOT_CRITICAL.value == "not critical"
    table = pd.DataFrame([{"class": PointClass.NOT_CRITICAL}, {"class": PointClass.MINIMUM}])
    assert table.to_csv(index=False) == "class\nnot critical\nminimum\n"
    assert json.dumps({PointClass.SADDLE: PointClass.DEGENERATE}) == '{"saddle": "degenerate"}'


def test_branch_slope_of_the_data_loss_matches_finite_differences():
    """Along a branch of minima: dL/dlambda = (lambda/n^2) w^T H^{-1} w >= 0 (the lemma), equal
    to the central difference of L over critical points at lambda +- h, to 1e-6."""
    lam, h = LAM_MIN, 1e-5
    objective = small_problem(lam=lam)
    theta = minimum(objective)
    tangent = branch_tangent(objective, objective.operator(theta), rtol=1e-13)
    ends = []
    for sign in (1, -1):
        shifted = small_problem(lam=lam + sign * h)
        ends.append(dense_newton(shifted, theta + sign * h * torch.as_tensor(tangent.direction)))
    slope = float(objective.data_loss(ends[0]) - objective.data_loss(ends[1])) / (2 * h)
    assert tangent.data_loss_slope > 0
    assert slope == pytest.approx(tangent.data_loss_slope, rel=1e-6)
    # the branch's own direction, to the precision its ends allow: ||grad J|| <= 1e-13 at a
    # bottom curvature ~1e-5 leaves ~1e-8 in each end, ~5e-4 in a difference over 2h
    direction = (ends[0] - ends[1]).numpy() / (2 * h)
    assert np.linalg.norm(direction - tangent.direction) <= 1e-5 * np.linalg.norm(tangent.direction)
