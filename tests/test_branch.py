"""Branch following against closed forms: a one-weight quartic with a known fold, and a small
network's branch of minima against dense eigvalsh and the lemma's slope."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import scipy.sparse.linalg
import torch

from l2path.continuation.branch import Settings, follow, segment_barrier
from l2path.curvature.polish import Polish

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


class OneWeight:
    """J_lambda(theta) = L(theta) + (lambda/2) theta^2: one weight, n = 1; subclasses give L, L'
    and L'' (``loss``, ``slope``, ``curvature``) and the real roots of grad J."""

    n = 1

    def __init__(self, lam: float):
        self.lam = lam

    def at(self, lam):
        other = copy.copy(self)
        other.lam = lam
        return other

    def value(self, theta):
        return self.data_loss(theta) + self.lam / 2 * (theta**2).sum()

    def gradient(self, theta):
        return self.slope(theta) + self.lam * theta

    def value_and_gradient(self, theta):
        return self.value(theta), self.gradient(theta)

    def operator(self, theta):
        return ScalarOperator(float(self.curvature(theta[0]) + self.lam), theta)

    def weight_mask(self):
        return torch.ones(1, dtype=torch.float64)

    def data_loss(self, theta):
        return self.loss(theta).sum()


class Quartic(OneWeight):
    """L = theta^4/4 - theta^2/2 + a theta, so grad J = theta^3 - (1 - lambda) theta + a.

    For a > 0 the minimum at theta > 0 meets the maximum at the fold theta_f = (a/2)^(1/3),
    lambda_f = 1 - 3 theta_f^2; beyond it the only minimum is the negative root."""

    def __init__(self, lam: float, a: float = 0.1):
        super().__init__(lam)
        self.a = a

    def loss(self, theta):
        return theta**4 / 4 - theta**2 / 2 + self.a * theta

    def slope(self, theta):
        return theta**3 - theta + self.a

    def curvature(self, theta):
        return 3 * theta**2 - 1

    def roots(self):
        """The real roots of grad J, ascending."""
        roots = np.roots([1.0, 0.0, -(1 - self.lam), self.a])
        return np.sort(roots[np.abs(roots.imag) < 1e-12].real)


class Born(OneWeight):
    """L' = -theta ((theta - 2)^2 + 1/2), so grad J = theta (lambda - 1/2 - (theta - 2)^2).

    A branch of minima theta = 2 - sqrt(lambda - 1/2) (H = 2s(2 - s), s = sqrt(lambda - 1/2))
    is born at the fold lambda_f = 1/2 together with the maximum 2 + s: followed down in
    lambda, it ends there."""

    def loss(self, theta):
        return -(theta**4) / 4 + 4 * theta**3 / 3 - 2.25 * theta**2

    def slope(self, theta):
        return -(theta**3) + 4 * theta**2 - 4.5 * theta

    def curvature(self, theta):
        return -3 * theta**2 + 8 * theta - 4.5

    def minimum(self) -> float:
        return 2 - math.sqrt(self.lam - 0.5)


def test_the_fold_of_the_quartic_is_located_within_a_factor_two_to_the_eighth():
    a = 0.1
    fold = 1 - 3 * (a / 2) ** (2 / 3)
    problem = Quartic(0.05, a)
    branch = follow(
        problem, torch.tensor([0.9], dtype=torch.float64), lam_end=1.0, step=math.log(2) / 2
    )
    assert branch.fold is not None
    low, high = branch.fold
    assert low < fold < high and high / low <= 2 ** (1 / 8) * (1 + 1e-12)
    for point in branch.points:  # the positive minimum of the closed form, at every accepted lambda
        assert point.theta[0] == pytest.approx(Quartic(point.lam, a).roots()[-1], abs=1e-9)
        assert point.bottom > 0
    beyond = Quartic(high, a).roots()
    assert branch.jumped_to is not None and branch.jumped_to[0] == pytest.approx(
        beyond[0], abs=1e-9
    )


def test_predicted_slope_is_the_lemma_and_matches_the_closed_form():
    """dL/dlambda = lambda theta^2 / (3 theta^2 - 1 + lambda) >= 0 on the branch of minima."""
    problem = Quartic(0.05)
    branch = follow(
        problem, torch.tensor([0.9], dtype=torch.float64), lam_end=0.4, step=math.log(2) / 4
    )
    assert len(branch.points) > 3 and branch.fold is None
    for before, after in zip(branch.points, branch.points[1:]):
        theta = before.theta[0]
        exact = before.lam * theta**2 / (3 * theta**2 - 1 + before.lam)
        assert after.predicted_slope == pytest.approx(exact, rel=1e-9)
        assert after.realised_slope > 0 and after.predicted_slope > 0


def test_a_branch_followed_down_in_lambda_ends_where_it_is_born_within_a_factor_two_to_the_eighth():
    problem = Born(0.9)
    branch = follow(
        problem,
        torch.tensor([problem.minimum()], dtype=torch.float64),
        lam_end=0.3,
        step=math.log(2) / 2,
    )
    assert branch.fold is not None
    low, high = branch.fold
    assert low < 0.5 < high and high / low <= 2 ** (1 / 8) * (1 + 1e-12)
    assert high == branch.points[-1].lam  # the last accepted point is above the fold
    assert [p.lam for p in branch.points] == sorted((p.lam for p in branch.points), reverse=True)
    for before, after in zip(
        branch.points, branch.points[1:]
    ):  # the closed form, and the lemma going down
        assert after.theta[0] == pytest.approx(Born(after.lam).minimum(), abs=1e-9)
        assert after.bottom == pytest.approx(2 * (2 - after.theta[0]) * after.theta[0], rel=1e-9)
        exact = before.lam * before.theta[0] ** 2 / before.bottom  # dL/dlambda = lambda theta^2 / H
        assert after.predicted_slope == pytest.approx(exact, rel=1e-9) and after.realised_slope > 0


def test_a_small_network_branch_of_minima_is_followed_and_certified_by_eigvalsh():
    """From lambda = 0.05 to 0.06: the branch's bottom curvature rises then falls (it reaches
    zero at a fold near lambda = 0.07, found by the same continuation run further)."""
    objective = small_problem(lam=LAM_MIN)
    branch = follow(
        objective,
        minimum(objective),
        lam_end=0.06,
        step=math.log(2) / 16,
        settings=Settings(polish=Polish(tol=1e-11)),
    )
    assert branch.fold is None and branch.points[-1].lam == pytest.approx(0.06)
    for point in branch.points:
        hessian = dense_hessian(objective.at(point.lam), torch.as_tensor(point.theta))
        exact = np.linalg.eigvalsh(hessian.numpy())
        assert point.grad_norm <= 1e-11 and exact[0] > 0
        assert abs(point.bottom - exact[0]) <= point.bottom_residual + 1e-12
    for point in branch.points[
        1:
    ]:  # the secant of L against the tangent's slope: equal to first order in the step
        assert point.realised_slope == pytest.approx(point.predicted_slope, rel=0.05)
        assert point.predicted_slope > 0
        assert (
            point.barrier == 0 and point.same_branch
        )  # no basin crossed between consecutive points


def test_the_barrier_between_the_two_minima_of_the_quartic_is_its_maximum_above_them():
    problem = Quartic(0.05)
    low, middle, high = problem.roots()  # minimum, maximum, minimum
    value = lambda t: float(problem.value(torch.tensor([t], dtype=torch.float64)))
    exact = value(middle) - max(value(low), value(high))
    ends = torch.tensor([high], dtype=torch.float64), torch.tensor([low], dtype=torch.float64)
    assert 0 < segment_barrier(problem, *ends) <= exact
    assert segment_barrier(problem, *ends, samples=2001) == pytest.approx(exact, rel=1e-5)
    near = torch.tensor(
        [high * 0.9], dtype=torch.float64
    )  # inside the basin of the positive minimum
    assert segment_barrier(problem, near, ends[0]) == 0.0
