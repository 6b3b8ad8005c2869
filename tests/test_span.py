"""The span reduction (``chain.span``) against the full problem, in float64: the full
Hessian's spectrum (autograd, eigvalsh) is the reduced Hessian's plus h (d - m) copies of
lambda/n; J splits into J~ plus the complement's penalty; a critical point of J~ expands to a
critical point of J; and the reduced inertia proof catches a saddle of the full problem."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from l2path.chain.span import reduced_subset, span_basis
from l2path.chain.subset import SubsetProblem
from l2path.curvature.inertia import certify_positive_definite, dense_hessian, inertia
from l2path.curvature.polish import Polish, polish

from test_hessian import SIZES, small_problem, trained_point

N_SUB = 6  # fewer images than the 12 inputs: m = 6, h (d - m) = 60 eigenvalues set aside
LAM = 0.3


@pytest.fixture(scope="module", params=["quadratic", "cross_entropy"])
def problems(request):
    base = small_problem(request.param, lam=LAM, n=N_SUB)
    subset = SubsetProblem(SIZES, base.x, base.y, request.param, N_SUB, N_SUB)
    basis = span_basis(subset)
    return subset, basis, reduced_subset(subset, basis)


def autograd_hessian(objective, theta):
    return torch.autograd.functional.hessian(objective.value, theta)


def test_the_basis_holds_every_image(problems):
    subset, basis, _ = problems
    q = basis.basis
    assert q.shape == (SIZES[0], N_SUB)
    assert torch.allclose(q.T @ q, torch.eye(N_SUB, dtype=torch.float64), atol=1e-14)
    assert torch.allclose(subset.x @ q @ q.T, subset.x, atol=1e-14)


def test_objective_splits_into_the_reduced_one_and_the_complement_penalty(problems):
    subset, basis, reduced = problems
    theta = trained_point(subset.at(LAM))
    full, small = subset.at(LAM), reduced.at(LAM)
    complement = basis.complement_norm(theta)
    assert complement > 0.1  # a generic point has weight outside the span
    expected = float(small.value(basis.reduce(theta))) + LAM / (2 * N_SUB) * complement**2
    assert float(full.value(theta)) == pytest.approx(expected, rel=1e-13)
    assert float(subset.mse.value(theta)) == pytest.approx(
        float(reduced.mse.value(basis.reduce(theta))), rel=1e-13
    )


def test_full_spectrum_is_the_reduced_one_plus_lambda_over_n(problems):
    """At a generic (not critical) point, so the claim does not lean on criticality."""
    subset, basis, reduced = problems
    theta = trained_point(subset.at(LAM))
    full = torch.linalg.eigvalsh(autograd_hessian(subset.at(LAM), theta)).numpy()
    small = torch.linalg.eigvalsh(autograd_hessian(reduced.at(LAM), basis.reduce(theta))).numpy()
    set_aside = np.full(basis.complement_count, LAM / N_SUB)
    assert basis.complement_count == SIZES[1] * (SIZES[0] - N_SUB)
    combined = np.sort(np.concatenate([small, set_aside]))
    np.testing.assert_allclose(combined, full, atol=1e-11 * np.abs(full).max())


def test_reduced_critical_point_is_critical_for_the_full_problem(problems):
    subset, basis, reduced = problems
    start = basis.reduce(trained_point(subset.at(LAM)))
    result = polish(reduced.at(LAM), start, Polish(tol=1e-11))
    assert result.converged
    theta = basis.expand(result.theta)
    point = theta.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(subset.at(LAM).value(point), point)
    assert float(gradient.norm()) < 1e-10
    assert basis.complement_norm(theta) < 1e-14


def test_reduced_inertia_counts_the_full_saddle(problems):
    """A point with negative curvature: the reduced LDL^T counts as many negative eigenvalues
    as eigvalsh of the full autograd Hessian, and the Cholesky certificate refuses it."""
    subset, basis, reduced = problems
    theta = 3 * trained_point(subset.at(LAM), seed=4)
    full = torch.linalg.eigvalsh(autograd_hessian(subset.at(LAM), theta)).numpy()
    negative = int((full < -1e-10).sum())
    assert negative > 0
    small = dense_hessian(reduced.at(LAM).operator(basis.reduce(theta)))
    assert inertia(small.matrix).negative == negative
    assert not certify_positive_definite(small).proves_minimum
