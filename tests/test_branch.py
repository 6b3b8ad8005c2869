"""Branch following against closed forms: a one-weight quartic with a known fold, and a small
network's branch of minima against dense eigvalsh and the lemma's slope."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse.linalg
import torch

from l2path.continuation.branch import NetworkProblem, Settings, follow
from l2path.continuation.corrector import Polish

from test_certificate import LAM_MIN, minimum
from test_hessian import dense_hessian, small_problem


class ScalarOperator(scipy.sparse.linalg.LinearOperator):
    def __init__(self, curvature: float, theta: torch.Tensor):
        super().__init__(dtype=np.float64, shape=(1, 1))
        self.curvature, self.theta, self.products = curvature, theta, 0

    def _matvec(self, vector):
        self.products += 1
        return self.curvature * np.asarray(vector, dtype=np.float64).reshape(-1)

    def _rmatvec(self, vector):
        return self._matvec(vector)


class Quartic:
    """J_lambda(theta) = theta^4/4 - theta^2/2 + a theta + (lambda/2) theta^2: one weight, n = 1.

    grad J = theta^3 - (1 - lambda) theta + a. For a > 0 the minimum at theta > 0 meets the
    maximum at the fold theta_f = (a/2)^(1/3), lambda_f = 1 - 3 theta_f^2; beyond it the
    only minimum is the negative root."""

    n = 1

    def __init__(self, lam: float, a: float = 0.1):
        self.lam, self.a = lam, a

    def at(self, lam):
        return Quartic(lam, self.a)

    def value(self, theta):
        return self.data_loss(theta) + self.lam / 2 * (theta ** 2).sum()

    def gradient(self, theta):
        return theta ** 3 - (1 - self.lam) * theta + self.a

    def value_and_gradient(self, theta):
        return self.value(theta), self.gradient(theta)

    def operator(self, theta):
        return ScalarOperator(float(3 * theta[0] ** 2 - 1 + self.lam), theta)

    def weight_mask(self):
        return torch.ones(1, dtype=torch.float64)

    def data_loss(self, theta):
        return (theta ** 4 / 4 - theta ** 2 / 2 + self.a * theta).sum()

    def roots(self):
        """The real roots of grad J, ascending."""
        roots = np.roots([1.0, 0.0, -(1 - self.lam), self.a])
        return np.sort(roots[np.abs(roots.imag) < 1e-12].real)


def test_the_fold_of_the_quartic_is_located_within_a_factor_two_to_the_eighth():
    a = 0.1
    fold = 1 - 3 * (a / 2) ** (2 / 3)
    problem = Quartic(0.05, a)
    branch = follow(problem, torch.tensor([0.9], dtype=torch.float64), lam_end=1.0, step=math.log(2) / 2)
    assert branch.fold is not None
    low, high = branch.fold
    assert low < fold < high and high / low <= 2 ** (1 / 8) * (1 + 1e-12)
    for point in branch.points:  # the positive minimum of the closed form, at every accepted lambda
        assert point.theta[0] == pytest.approx(Quartic(point.lam, a).roots()[-1], abs=1e-9)
        assert point.bottom > 0
    beyond = Quartic(high, a).roots()
    assert branch.jumped_to is not None and branch.jumped_to[0] == pytest.approx(beyond[0], abs=1e-9)


def test_predicted_slope_is_the_lemma_and_matches_the_closed_form():
    """dL/dlambda = lambda theta^2 / (3 theta^2 - 1 + lambda) >= 0 on the branch of minima."""
    problem = Quartic(0.05)
    branch = follow(problem, torch.tensor([0.9], dtype=torch.float64), lam_end=0.4, step=math.log(2) / 4)
    assert len(branch.points) > 3 and branch.fold is None
    for before, after in zip(branch.points, branch.points[1:]):
        theta = before.theta[0]
        exact = before.lam * theta ** 2 / (3 * theta ** 2 - 1 + before.lam)
        assert after.predicted_slope == pytest.approx(exact, rel=1e-9)
        assert after.realised_slope > 0 and after.predicted_slope > 0


def test_a_small_network_branch_of_minima_is_followed_and_certified_by_eigvalsh():
    """From lambda = 0.05 to 0.06: the branch's bottom curvature rises then falls (it reaches
    zero at a fold near lambda = 0.07, found by the same continuation run further)."""
    objective = small_problem(lam=LAM_MIN)
    problem = NetworkProblem(objective)
    branch = follow(problem, minimum(objective), lam_end=0.06, step=math.log(2) / 16, settings=Settings(polish=Polish(tol=1e-11)))
    assert branch.fold is None and branch.points[-1].lam == pytest.approx(0.06)
    for point in branch.points:
        exact = np.linalg.eigvalsh(dense_hessian(problem.at(point.lam).objective, torch.as_tensor(point.theta)).numpy())
        assert point.grad_norm <= 1e-11 and exact[0] > 0
        assert abs(point.bottom - exact[0]) <= point.bottom_residual + 1e-12
    for point in branch.points[1:]:  # the secant of L against the tangent's slope: equal to first order in the step
        assert point.realised_slope == pytest.approx(point.predicted_slope, rel=0.05)
        assert point.predicted_slope > 0
