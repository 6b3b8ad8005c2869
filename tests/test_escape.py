"""The escape test against closed forms: a two-weight double well whose origin is a saddle
with known minima, and a minimum, where leaving along the bottom eigenvector must not count."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse.linalg
import torch

from l2path.curvature.polish import Polish
from l2path.curvature.escape import escape


class DoubleWell:
    """J_lambda(x, y) = 1 + x^2/2 + y^4/4 - y^2/2 + (lambda/2)(x^2 + y^2), n = 1.

    grad J = ((1 + lambda) x, y^3 - (1 - lambda) y). For lambda < 1 the origin is a saddle
    (H = diag(1 + lambda, lambda - 1), J = 1) and (0, +-sqrt(1 - lambda)) are the minima,
    J = 1 - (1 - lambda)^2 / 4. (J > 0, as for a network: the escape's step scales with |J|.)"""

    n = 1

    def __init__(self, lam: float):
        self.lam = lam

    def data_loss(self, theta):
        x, y = theta
        return 1 + x**2 / 2 + y**4 / 4 - y**2 / 2

    def value(self, theta):
        return self.data_loss(theta) + self.lam / 2 * (theta**2).sum()

    def gradient(self, theta):
        x, y = theta
        return torch.stack([(1 + self.lam) * x, y**3 - (1 - self.lam) * y])

    def value_and_gradient(self, theta):
        return self.value(theta), self.gradient(theta)

    def operator(self, theta):
        return DiagonalOperator([1 + self.lam, 3 * float(theta[1]) ** 2 - 1 + self.lam])


class DiagonalOperator(scipy.sparse.linalg.LinearOperator):
    """The Hessian as the solvers see it: products only, counted."""

    def __init__(self, diagonal):
        super().__init__(dtype=np.float64, shape=(len(diagonal), len(diagonal)))
        self.diagonal, self.products = np.asarray(diagonal, dtype=np.float64), 0

    def _matvec(self, vector):
        self.products += 1
        return self.diagonal * np.asarray(vector, dtype=np.float64).reshape(-1)

    def _rmatvec(self, vector):
        return self._matvec(vector)


SETTINGS = Polish(tol=1e-12)


def test_leaving_a_saddle_along_negative_curvature_ends_lower_than_the_control_polish():
    problem = DoubleWell(0.2)
    result = escape(problem, torch.zeros(2, dtype=torch.float64), SETTINGS, drop=1e-3)
    assert result.bottom == pytest.approx(0.2 - 1)
    assert result.control_objective == 1.0  # the control polish stays at the critical point
    assert result.alpha == pytest.approx(math.sqrt(2 * 1e-3 / 0.8))
    for objective, grad_norm in zip(
        result.objectives, result.grad_norms
    ):  # each side reaches a minimum
        assert objective == pytest.approx(1 - (1 - 0.2) ** 2 / 4, rel=1e-10) and grad_norm <= 1e-12
    assert result.lowers


def test_at_a_minimum_the_perturbed_polishes_return_to_the_control():
    problem = DoubleWell(0.2)
    minimum = torch.tensor([0.0, math.sqrt(0.8)], dtype=torch.float64)
    result = escape(problem, minimum, SETTINGS, drop=1e-3)
    assert result.bottom == pytest.approx(
        1 + 0.2
    )  # H = diag(1.2, 1.6): the bottom is the x direction
    assert result.alpha == pytest.approx(math.sqrt(2 * 1e-3 * (1 - 0.16) / 1.2))
    assert all(o == pytest.approx(result.control_objective, rel=1e-12) for o in result.objectives)
    assert not result.lowers
