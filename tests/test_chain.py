"""The converged warm-started chain on a 185-parameter network: every point a critical point of
its own lambda, polished from the previous one; the ascending chain ends at collapse; classes
proved by inertia agree with eigvalsh of autograd's dense Hessian; steps in lambda order; and a
step along one branch of minima judged so, with the lemma's slope integral equal to the
realised change of L."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from l2path.chain import points as chain
from l2path.chain import settle
from l2path.chain.arclength import ArclengthSettings
from l2path.chain.dense import dense_curvature, nearest_zero_eigenvalue
from l2path.chain.points import (
    ChainSettings,
    chain_steps,
    describe,
    run_chain,
    smallest_change,
    weight_norm,
)
from l2path.chain.records import (
    ChainDirection,
    ClassProof,
    StepVerdictKind,
)
from l2path.chain.trivial import threshold_at, trivial_point
from l2path.chain.verdicts import DEGENERATE_START, VerdictSettings, judge_step
from l2path.chain.subset import SubsetProblem
from l2path.curvature.classes import PointClass
from l2path.curvature.polish import Polish, polish

from test_certificate import LAM_MIN, minimum
from test_hessian import SIZES, dense_hessian, small_problem

SETTINGS = ChainSettings(Polish(tol=1e-10), collapse_ratio=0.02)


@pytest.fixture(scope="module")
def subset():
    problem = small_problem(lam=LAM_MIN)
    return SubsetProblem(SIZES, problem.x, problem.y, "quadratic", len(problem.x), len(problem.x))


@pytest.fixture(scope="module")
def start(subset):
    return minimum(subset.at(LAM_MIN))


def independent_gradient_norm(objective, theta):
    """||grad J|| by autograd on J's value: no use of the objective's own backprop."""
    point = theta.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(objective.value(point), point)
    return float(gradient.norm())


def test_every_point_is_critical_at_its_own_lambda_and_starts_from_the_previous(
    subset, start, monkeypatch
):
    starts = []

    def recording_polish(problem, theta, settings):
        starts.append(theta)
        return polish(problem, theta, settings)

    monkeypatch.setattr(settle, "polish", recording_polish)
    lams = [LAM_MIN * 1.25**k for k in range(4)]
    links = run_chain(subset, start, lams, ChainDirection.UP, SETTINGS)
    assert [link.lam for link in links] == lams
    for link in links:
        assert link.polished.converged
        assert independent_gradient_norm(subset.at(link.lam), link.theta) <= 1e-9
    assert torch.equal(starts[0], start)
    assert all(torch.equal(s, link.theta) for s, link in zip(starts[1:], links))  # warm


def test_the_ascending_chain_ends_after_its_weights_collapse(subset, start):
    lams = [LAM_MIN * 4**k for k in range(8)]  # up to 0.05 * 4^7 = 819
    links = run_chain(subset, start, lams, ChainDirection.UP, SETTINGS)
    norms = [weight_norm(subset.at(link.lam), link.theta) for link in links]
    assert norms[-1] < 0.02 * norms[0]
    assert all(n >= 0.02 * norms[0] for n in norms[:-1])
    assert len(links) < len(lams)  # it stopped before the grid's end
    down = run_chain(subset, start, lams[:3], ChainDirection.DOWN, SETTINGS)
    assert len(down) == 3  # a chain down the grid has no collapse rule


def test_the_inertia_class_and_bound_agree_with_eigvalsh(subset, start):
    links = run_chain(subset, start, [LAM_MIN], ChainDirection.UP, SETTINGS)
    theta = links[0].theta
    point = describe(subset, 0, ChainDirection.UP, 0, links[0], None, 1e-3, SETTINGS)
    hessian = dense_hessian(subset.at(LAM_MIN), theta)
    eigenvalues = np.linalg.eigvalsh(hessian.numpy())
    assert eigenvalues[0] > 0
    assert point.class_proof is ClassProof.INERTIA and point.curvature_class is PointClass.MINIMUM
    assert 0 < point.inertia_lower_bound <= eigenvalues[0]
    assert point.bottom == pytest.approx(eigenvalues[0], rel=1e-8)
    assert point.mse == pytest.approx(float(subset.mse.value(theta)), rel=1e-15)
    # the lemma's slope (lambda/n^2) w^T H^-1 w against autograd's H solved by numpy
    problem = subset.at(LAM_MIN)
    w = (theta * problem.weight_mask()).numpy()
    n = len(problem.x)
    expected = LAM_MIN / n**2 * w @ np.linalg.solve(hessian.numpy(), w)
    assert point.predicted_dL_dlambda == pytest.approx(expected, rel=1e-8)


def test_a_saddle_is_counted_by_inertia(subset, start):
    """At a point with negative curvature (not a critical point: the count does not need one),
    LDL^T counts exactly the negative eigenvalues eigvalsh sees, and the bottom is eigvalsh's."""
    theta = 3 * start.flip(0)
    problem = subset.at(LAM_MIN)
    eigenvalues = np.linalg.eigvalsh(dense_hessian(problem, theta).numpy())
    negative = int((eigenvalues < 0).sum())
    assert negative > 0
    c = dense_curvature(problem, subset.mse, theta)
    assert c.curvature_class is PointClass.SADDLE and c.negative == negative
    assert c.bottom == pytest.approx(eigenvalues[0], rel=1e-8)


def test_steps_are_in_lambda_order_whichever_way_the_chain_ran(subset, start):
    lams = [LAM_MIN * 1.5, LAM_MIN * 1.25, LAM_MIN]
    links = run_chain(subset, start, lams, ChainDirection.DOWN, SETTINGS)
    points = [
        describe(subset, 0, ChainDirection.DOWN, k, link, None, 1e-3, SETTINGS)
        for k, link in enumerate(links)
    ]
    steps = chain_steps(points, [link.theta for link in links])
    assert [(s.lambda_low, s.lambda_high) for s in steps] == [
        (lams[1], lams[0]),
        (lams[2], lams[1]),
    ]
    for s, (high, low) in zip(steps, zip(points, points[1:])):
        assert s.change == high.mse - low.mse and s.drop == (s.change < 0)
    assert smallest_change([s.change for s in steps]) == min(abs(s.change) for s in steps)
    assert smallest_change([0.0]) == 1e-12  # a step that does not move sets no scale of 0


def test_a_step_along_one_branch_of_minima_is_judged_so_and_the_lemma_integral_holds(subset, start):
    lams = [LAM_MIN, LAM_MIN * 1.3]
    links = run_chain(subset, start, lams, ChainDirection.UP, SETTINGS)
    points = [
        describe(subset, 0, ChainDirection.UP, k, link, None, 1e-3, SETTINGS)
        for k, link in enumerate(links)
    ]
    (step,) = chain_steps(points, [link.theta for link in links])
    settings = VerdictSettings(
        ArclengthSettings(step=0.5, max_step=0.5, grow=1.0, max_points=40, tol=1e-10),
        Polish(tol=1e-10),
    )
    judged = judge_step(
        subset, step, points[0], links[0].theta, points[1], links[1].theta, settings
    )
    assert judged.verdict is StepVerdictKind.ONE_BRANCH, judged.reason
    assert not judged.drop and judged.change >= 0  # the lemma: no drop along minima
    assert judged.lemma_ratio == pytest.approx(1.0, abs=2e-3)  # trapezoid error, O(ds^2)
    assert judged.arc_points >= 3


def test_a_point_that_did_not_converge_is_not_followed(subset, start):
    few = ChainSettings(Polish(tol=1e-30, lbfgs_iterations=1, newton_iterations=1), 0.02)
    links = run_chain(subset, start * 1.5, [LAM_MIN, LAM_MIN * 1.3], ChainDirection.UP, few)
    points = [
        describe(subset, 0, ChainDirection.UP, k, link, None, 1e-3, few)
        for k, link in enumerate(links)
    ]
    assert not points[0].converged and points[0].class_proof is ClassProof.NONE
    (step,) = chain_steps(points, [link.theta for link in links])
    settings = VerdictSettings(ArclengthSettings(), Polish())
    judged = judge_step(
        subset, step, points[0], links[0].theta, points[1], links[1].theta, settings
    )
    assert judged.verdict is StepVerdictKind.NOT_FOLLOWED


def test_a_step_from_a_degenerate_point_is_not_followed(subset, start):
    """Above lambda_c the trivial point w = 0 is degenerate (its hidden biases are exactly flat),
    and there [H, dF/dtau] has more than the one-dimensional kernel that pseudo-arclength needs
    (dF/dtau = (lambda/n) w = 0 and H v = 0 along each bias), so no unique branch leaves it: the
    step gets no verdict rather than a corrector that cannot converge."""
    point = trivial_point(start, subset.at(LAM_MIN))
    lam_c = threshold_at(subset.at(LAM_MIN), point, len(subset.x))
    links = run_chain(subset, point, [2 * lam_c, 4 * lam_c], ChainDirection.UP, SETTINGS)
    points = [
        describe(subset, 0, ChainDirection.UP, k, link, None, 1e-3, SETTINGS)
        for k, link in enumerate(links)
    ]
    assert points[0].curvature_class is PointClass.DEGENERATE
    problem = subset.at(2 * lam_c)
    hessian = dense_hessian(problem, links[0].theta)
    d_tau = problem.lam / problem.n * (problem.weight_mask() * links[0].theta)
    jacobian = np.column_stack([hessian.numpy(), d_tau.numpy()])
    singular = np.linalg.svd(jacobian, compute_uv=False)
    assert (singular < 1e-12 * singular[0]).sum() >= SIZES[1]  # a kernel of 1 + SIZES[1] or more
    (step,) = chain_steps(points, [link.theta for link in links])
    settings = VerdictSettings(ArclengthSettings(), Polish())
    judged = judge_step(
        subset, step, points[0], links[0].theta, points[1], links[1].theta, settings
    )
    assert judged.verdict is StepVerdictKind.NOT_FOLLOWED and judged.reason == DEGENERATE_START


@pytest.mark.parametrize(
    "diagonal, nearest",
    [
        ((-1.0, 0.5, 2.0), 0.5),  # indefinite: LU factors for shift-invert
        ((3.0, 0.25, 2.0), 0.25),  # positive definite: Cholesky
        ((-1.0, 0.0, 2.0), 0.0),  # exactly singular: LU's zero pivot, every eigenvalue instead
    ],
)
def test_the_eigenvalue_nearest_zero_of_a_fold_point(diagonal, nearest):
    rotation, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((3, 3)))
    rotated = rotation @ np.diag(diagonal) @ rotation.T
    assert nearest_zero_eigenvalue(rotated) == pytest.approx(nearest, abs=1e-12)
    if nearest == 0.0:  # unrotated, LU meets the exact zero pivot
        assert nearest_zero_eigenvalue(np.diag(diagonal)) == 0.0
