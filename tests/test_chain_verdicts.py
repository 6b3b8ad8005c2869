"""A converged chain's step verdicts (l2path/chain/verdicts.py) on the closed-form
quartics of test_arclength: a fold inside the step is a fold jump located at lambda* = 9c^2/4
with its sign change and fit; a branch of minima that reaches the chain's next point is one
branch, with the lemma's slope integral equal to the realised change of L; a branch that
arrives elsewhere is a switch; one with negative curvature a saddle branch; a corrector that
fails loses the branch and claims nothing."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from l2path.chain.arclength import ArcBranch, ArclengthSettings, follow_arclength
from l2path.chain.records import ChainDirection, ChainStep, StepVerdictKind
from l2path.chain.verdicts import branch_verdict, slope_integral

from test_arclength import Quartics

SETTINGS = ArclengthSettings(step=0.02, max_step=0.05, max_points=400, tol=1e-12)


class QuarticStep:
    """``StepProblem`` of the quartics: L = sum theta^4/4 - c theta^3 (J without the penalty,
    n = 1), so at a critical point dL/dlambda = -theta . dtheta/dtau."""

    def __init__(self, family: Quartics, arrive_at: np.ndarray | None = None):
        self.family, self.arrive_at = family, arrive_at

    def arrive(self, branch: ArcBranch, tau_end: float) -> np.ndarray:
        return self.family.minimum(math.exp(tau_end)) if self.arrive_at is None else self.arrive_at

    def data_loss(self, theta: np.ndarray) -> float:
        return float((theta**4 / 4 - self.family.c * theta**3).sum())

    def slope(self, point) -> float:
        return float(-point.theta @ point.theta_per_tau())


def step(lam_low: float, lam_high: float) -> ChainStep:
    return ChainStep(
        seed=0,
        direction=ChainDirection.UP,
        lambda_low=lam_low,
        lambda_high=lam_high,
        mse_low=0.0,
        mse_high=0.0,
        change=0.0,
        drop=False,
        distance=0.0,
    )


def follow(family, theta, lam_from, lam_to, settings=SETTINGS):
    settings = replace(settings, stop_at_fold=True)
    return follow_arclength(
        family, theta, math.log(lam_from), math.log(lam_to), settings, family.bottom
    )


def test_a_fold_inside_the_step_is_a_located_fold_jump_with_its_sign_change_and_fit():
    family = Quartics([1.0])
    branch = follow(family, family.minimum(0.5), 0.5, 4.0)
    assert len(branch.folds) == 1 and not branch.reached_end  # stopped at the fold
    judged = branch_verdict(
        step(0.5, 4.0), branch, QuarticStep(family), np.zeros(1), math.log(4.0), 1e-6, 0.5
    )
    assert judged.verdict is StepVerdictKind.FOLD_JUMP
    assert judged.fold_lambda == pytest.approx(2.25 / 0.5, rel=1e-7)  # in the study's lambda
    assert judged.fold_lambda_error < 1e-6
    assert judged.fold_tangent_before > 0 > judged.fold_tangent_after
    # mu^2 = 9 |d lambda| (1 + (4/3) sqrt|d lambda| + ...): the fit's points, up to 1e-2 from
    # lambda*, carry the next-order term of a few per cent
    assert judged.fold_fit_k == pytest.approx(9.0, rel=0.02) and judged.fold_fit_residual < 2e-2


@pytest.mark.parametrize("fold_tol", [1e-2, 1e-3])
def test_a_coarse_bisection_states_an_error_that_covers_the_true_fold(fold_tol):
    family = Quartics([1.0])
    branch = follow(family, family.minimum(0.5), 0.5, 4.0, replace(SETTINGS, fold_tol=fold_tol))
    judged = branch_verdict(
        step(0.5, 4.0), branch, QuarticStep(family), np.zeros(1), math.log(4.0), 1e-6, 0.5
    )
    error = abs(judged.fold_lambda - 4.5)  # lambda* = 2.25 of the subset, 4.5 of the study
    assert 0 < error <= judged.fold_lambda_error < 0.1


def test_one_branch_of_minima_reaches_the_next_point_and_the_lemma_integral_holds():
    family = Quartics([2.0, 3.0])  # folds at 9 and 20.25, far above the step
    branch = follow(family, family.minimum(0.5), 0.5, 2.0)
    later = family.minimum(2.0)
    judged = branch_verdict(step(0.5, 2.0), branch, QuarticStep(family), later, math.log(2.0), 1e-6)
    assert judged.verdict is StepVerdictKind.ONE_BRANCH, judged.reason
    assert judged.lemma_ratio == pytest.approx(1.0, abs=1e-4)
    # the lemma itself: along minima L rises with lambda; closed form L(lambda) on the branch
    assert QuarticStep(family).data_loss(later) > QuarticStep(family).data_loss(family.minimum(0.5))


def test_the_lemma_integrals_error_falls_as_the_square_of_the_arclength_step():
    family = Quartics([2.0])
    errors = []
    for h in (0.1, 0.05, 0.025):
        fixed = replace(SETTINGS, step=h, max_step=h, grow=1.0)
        branch = follow(family, family.minimum(0.5), 0.5, 2.0, fixed)
        problem = QuarticStep(family)
        realised = problem.data_loss(branch.points[-1].theta) - problem.data_loss(
            branch.points[0].theta
        )
        errors.append(abs(slope_integral(branch, problem) / realised - 1))
    orders = [math.log2(a / b) for a, b in zip(errors, errors[1:])]
    assert all(1.8 < order < 2.2 for order in orders), (errors, orders)


def test_a_branch_that_arrives_away_from_the_chains_point_is_a_switch():
    family = Quartics([2.0])
    branch = follow(family, family.minimum(0.5), 0.5, 2.0)
    elsewhere = np.zeros(1)  # theta = 0: also a minimum of J at lambda > 0, on another branch
    judged = branch_verdict(
        step(0.5, 2.0), branch, QuarticStep(family), elsewhere, math.log(2.0), 1e-6
    )
    assert judged.verdict is StepVerdictKind.BRANCH_SWITCH and "arrives" in judged.reason


def test_a_branch_with_negative_curvature_is_a_saddle_branch():
    family = Quartics([1.0, 2.0])
    lam = 0.5
    upper, lower = family.minimum(lam), (3 * family.c - np.sqrt(9 * family.c**2 - 4 * lam)) / 2
    start = np.array([upper[0], lower[1]])  # a minimum in theta_0, a maximum in theta_1
    assert family.curvature(start, math.log(lam))[1] < 0
    branch = follow(family, start, lam, 1.0)
    judged = branch_verdict(step(lam, 1.0), branch, QuarticStep(family), start, math.log(1.0), 1e-6)
    assert judged.verdict is StepVerdictKind.SADDLE_BRANCH and "bottom eigenvalue" in judged.reason


def test_a_corrector_that_fails_loses_the_branch_and_claims_no_fold():
    family = Quartics([1.0])
    hopeless = replace(SETTINGS, corrector_iterations=0, min_step=1e-3)
    branch = follow(family, family.minimum(0.5), 0.5, 4.0, hopeless)
    judged = branch_verdict(
        step(0.5, 4.0), branch, QuarticStep(family), np.zeros(1), math.log(4.0), 1e-6
    )
    assert judged.verdict is StepVerdictKind.BRANCH_LOST and judged.fold_lambda is None
    assert "corrector" in judged.reason
