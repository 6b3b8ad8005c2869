"""Pseudo-arclength continuation (l2path/chain/arclength.py) against closed forms:
a one-weight quartic whose branch of minima turns at a known fold, passed and located."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse.linalg

from l2path.chain.cholesky import cholesky_solver
from l2path.chain.arclength import (
    ArclengthSettings,
    BorderedPreconditioner,
    fold_fit,
    follow_arclength,
    solve_bordered,
)


class Quartics:
    """J_lambda = sum_i theta_i^4/4 - c_i theta_i^3 + lambda theta_i^2/2 (n = 1), so
    F_i = theta_i^3 - 3 c_i theta_i^2 + lambda theta_i. On the branch theta_i > 0,
    lambda = 3 c_i theta_i - theta_i^2: it turns at theta_i = 3 c_i / 2, lambda* = 9 c_i^2 / 4,
    with H_ii = 2 theta_i^2 - 3 c_i theta_i (minima above the fold, maxima below)."""

    def __init__(self, c: list[float]):
        self.c = np.asarray(c, dtype=float)

    def residual(self, theta, tau):
        return theta**3 - 3 * self.c * theta**2 + math.exp(tau) * theta

    def curvature(self, theta, tau):
        return 3 * theta**2 - 6 * self.c * theta + math.exp(tau)

    def jacobian(self, theta, tau):
        return scipy.sparse.linalg.aslinearoperator(np.diag(self.curvature(theta, tau)))

    def d_tau(self, theta, tau):
        return math.exp(tau) * theta

    def bottom(self, theta, tau):
        return float(self.curvature(theta, tau).min())

    def minimum(self, lam):
        """The branch of minima theta_i = (3 c_i + sqrt(9 c_i^2 - 4 lambda)) / 2."""
        return (3 * self.c + np.sqrt(9 * self.c**2 - 4 * lam)) / 2


SETTINGS = ArclengthSettings(step=0.05, max_step=0.2, max_points=80, tol=1e-12)


def test_the_bordered_solve_equals_the_dense_one():
    rng = np.random.default_rng(0)
    h = rng.standard_normal((6, 6))
    h = h + h.T
    b, c, d = rng.standard_normal(6), rng.standard_normal(6), 0.3
    rhs = rng.standard_normal(7)
    z, residual, _ = solve_bordered(
        scipy.sparse.linalg.aslinearoperator(h), b, c, d, rhs, 1e-13, 20
    )
    dense = np.block([[h, b[:, None]], [c[None, :], np.array([[d]])]])
    np.testing.assert_allclose(z, np.linalg.solve(dense, rhs), rtol=1e-10, atol=1e-12)
    assert residual < 1e-12


def test_the_branch_passes_the_turning_point_and_the_fold_is_located():
    family = Quartics([1.0])
    lam0 = 0.5
    branch = follow_arclength(
        family, family.minimum(lam0), math.log(lam0), math.log(4.0), SETTINGS, family.bottom
    )
    assert not branch.lost
    assert len(branch.folds) == 1
    fold = branch.folds[0]
    assert fold.lam == pytest.approx(2.25, rel=1e-7)
    assert fold.theta[0] == pytest.approx(1.5, abs=1e-3)
    assert fold.tangent_tau_before > 0 > fold.tangent_tau_after
    assert abs(fold.bottom) < 1e-2
    # the branch went on past the fold: lambda falls again, on the branch of maxima
    after = [p for p in branch.points if p.s > fold.s]
    assert after and all(p.tangent_tau < 0 for p in after)
    assert min(p.theta[0] for p in after) < 1.4 and all(p.bottom < 0 for p in after)
    for p in branch.points:  # on the closed-form branch lambda = 3 theta - theta^2, up to the
        theta = p.theta[0]  # corrector's tolerance on F = theta (theta^2 - 3 theta + lambda)
        assert theta > 0 and abs(p.lam - (3 * theta - theta**2)) <= 1.01e-12 / theta
    # mu^2 = k |lambda* - lambda| with k -> 9 at the fold (mu = 3 d + 2 d^2, lambda* - lambda = d^2)
    assert fold.fit is not None and fold.fit.points >= 2
    assert fold.fit.k == pytest.approx(9.0, rel=0.01) and fold.fit.residual < 1e-2


def test_a_fold_whose_bisection_left_no_approach_points_still_gets_its_fit(monkeypatch):
    """The stage computes mu only on a fold's approach. Where the bisection's approach points
    all lie outside the fit's window (simulated here by dropping them: a fold at sigma* just
    above ds/4 leaves only one, nearly at lambda*), points placed at sigma* (1 - 2^-j) give the
    fit. On this branch mu = 2 theta (theta - 3/2) and lambda* - lambda = (theta - 3/2)^2, so
    mu^2 = 4 theta^2 (lambda* - lambda) and k = 9 at the fold."""
    import l2path.chain.arclength as arclength

    locate = arclength._locate_fold

    def without_samples(*args):
        sigma, point, bracket, _ = locate(*args)
        return sigma, point, bracket, []

    monkeypatch.setattr(arclength, "_locate_fold", without_samples)
    family = Quartics([1.0])
    settings = ArclengthSettings(
        step=0.05,
        max_step=0.2,
        max_points=80,
        tol=1e-12,
        bottom_at_every_point=False,
        stop_at_fold=True,
    )
    branch = follow_arclength(
        family, family.minimum(2.0), math.log(2.0), math.log(4.0), settings, family.bottom
    )
    (fold,) = branch.folds
    assert fold.lam == pytest.approx(2.25, rel=1e-8)
    assert fold.fit is not None and fold.fit.points >= 2
    assert fold.fit.k == pytest.approx(9.0, rel=0.02) and fold.fit.residual < 2e-2


def test_two_weights_turn_at_the_first_fold():
    family = Quartics([1.0, 2.0])  # folds at lambda = 2.25 and 9: the branch turns at the first
    lam0 = 0.3
    branch = follow_arclength(
        family, family.minimum(lam0), math.log(lam0), math.log(20.0), SETTINGS, family.bottom
    )
    assert len(branch.folds) == 1 and branch.folds[0].lam == pytest.approx(2.25, rel=1e-7)
    assert not branch.reached_end


def test_a_branch_of_minima_without_a_fold_reaches_its_end():
    family = Quartics([2.0])  # fold at 9
    branch = follow_arclength(
        family, family.minimum(0.5), math.log(0.5), math.log(4.0), SETTINGS, family.bottom
    )
    assert branch.reached_end and not branch.folds and not branch.lost
    end = branch.points[-1]
    np.testing.assert_allclose(end.theta, family.minimum(end.lam), rtol=1e-10)
    assert all(p.bottom > 0 for p in branch.points)


class Vanishing(Quartics):
    """The quartic whose residual is undefined beyond lambda = 1.5: the corrector cannot
    converge there, and the branch is lost, not folded."""

    def residual(self, theta, tau):
        return super().residual(theta, tau) if math.exp(tau) < 1.5 else np.full_like(theta, np.nan)


def test_a_corrector_that_fails_loses_the_branch_and_claims_no_fold():
    family = Vanishing([1.0])
    branch = follow_arclength(
        family, family.minimum(0.5), math.log(0.5), math.log(4.0), SETTINGS, family.bottom
    )
    assert branch.lost and "did not converge" in branch.lost
    assert not branch.folds and branch.points[-1].lam < 1.5


def test_a_start_that_is_not_critical_is_refused():
    family = Quartics([1.0])
    with pytest.raises(ValueError, match="not a critical point"):
        follow_arclength(family, family.minimum(0.5) + 0.1, math.log(0.5), 1.0, SETTINGS)


def test_fold_fit_recovers_k_of_an_exact_normal_form():
    from l2path.chain.arclength import ArcPoint

    lam_star, k = 2.0, 4.0
    points = [
        ArcPoint(0.0, math.log(lam_star - d), np.zeros(1), 1.0, 0.0, 0, math.sqrt(k * d))
        for d in (0.1, 0.05, 0.01)
    ]
    fit = fold_fit(points, lam_star)
    assert fit.k == pytest.approx(k, rel=1e-9) and fit.residual < 1e-9 and fit.points == 3


def test_a_small_networks_branch_of_minima_matches_dense_references():
    """On a 185-parameter network: every point critical, the tangent dtheta/dtau equal to the
    dense solve -H^{-1} F_tau, the bottom eigenvalue (eigvalsh) positive, no fold claimed."""
    import torch
    from test_certificate import LAM_MIN, minimum
    from test_hessian import dense_hessian, small_problem

    from l2path.chain.arclength import NetworkFamily, tangent_at

    objective = small_problem(lam=LAM_MIN)
    theta = minimum(objective).numpy()
    family = NetworkFamily(objective)
    settings = ArclengthSettings(step=0.5, max_step=5.0, max_points=12, tol=1e-10)

    def bottom(point, tau):
        matrix = dense_hessian(objective.at(math.exp(tau)), torch.as_tensor(point)).numpy()
        return float(np.linalg.eigvalsh(matrix)[0])

    branch = follow_arclength(
        family, theta, math.log(LAM_MIN), math.log(LAM_MIN * 1.3), settings, bottom
    )
    assert branch.reached_end and not branch.folds and not branch.lost
    assert all(p.grad_norm <= 1e-10 and p.bottom > 0 for p in branch.points)
    for p in branch.points[1:3]:
        h = dense_hessian(objective.at(p.lam), torch.as_tensor(p.theta)).numpy()
        expected = -np.linalg.solve(h, family.d_tau(p.theta, p.tau))  # dtheta/dtau
        seed = np.append(np.zeros(len(p.theta)), 1.0)
        t = tangent_at(family, p.theta, p.tau, seed, settings)
        np.testing.assert_allclose(t[:-1] / t[-1], expected, rtol=1e-6, atol=1e-9)


def test_the_preconditioned_bordered_solve_is_the_same_solution_in_fewer_iterations():
    """M = A_0^{-1} from the bordered matrix at a nearby point: the solve at another point,
    with another border, equals numpy's dense solve; A_0^{-1} A clusters at 1 (H's drift plus a
    rank-2 border change), so GMRES needs a few iterations, where without M it needs about the
    dimension."""
    p = 200
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    h0 = (q * np.geomspace(1e-6, 1.0, p)) @ q.T  # ill-conditioned, as near a fold
    h = h0 + 1e-7 * np.diag(rng.standard_normal(p))  # the branch moved a little
    b, c = rng.standard_normal(p), rng.standard_normal(p)
    rhs = rng.standard_normal(p + 1)
    keeper = BorderedPreconditioner(lambda theta, tau: h0, refresh_after=30)
    m = keeper.operator(None, 0.0, rng.standard_normal(p), rng.standard_normal(p), 0.7)
    op = scipy.sparse.linalg.aslinearoperator(h)
    z, residual, iterations = solve_bordered(op, b, c, 0.2, rhs, 1e-9, 20, m)
    dense = np.block([[h, b[:, None]], [c[None, :], np.array([[0.2]])]])
    np.testing.assert_allclose(z, np.linalg.solve(dense, rhs), rtol=1e-7)
    assert residual < 1e-9 and iterations <= 25
    _, _, plain = solve_bordered(op, b, c, 0.2, rhs, 1e-9, 20)
    assert plain > 4 * iterations
    keeper.solved(iterations)  # few iterations: the factors are kept
    keeper.operator(None, 0.0, b, c, 0.2)
    assert keeper.factorisations == 1
    keeper.solved(31)  # too many: renewed at the next solve
    keeper.operator(None, 0.0, b, c, 0.2)
    assert keeper.factorisations == 2


def test_a_fold_whose_correctors_all_fail_inside_its_step_is_located_to_the_step(monkeypatch):
    """Where no bisection corrector converges (a chord across a sharp turn, as at a chain's
    collapse onto w = 0), the fold is not lost: it is located to its whole step, and the
    stated lambda error covers the true lambda* = 2.25."""
    import l2path.chain.arclength as arclength

    locate, real_correct = arclength._locate_fold, arclength.correct

    def failing_inside(*args):
        monkeypatch.setattr(arclength, "correct", lambda *a, **k: None)
        try:
            return locate(*args)
        finally:
            monkeypatch.setattr(arclength, "correct", real_correct)

    monkeypatch.setattr(arclength, "_locate_fold", failing_inside)
    family = Quartics([1.0])
    settings = ArclengthSettings(
        step=0.05, max_step=0.2, max_points=80, tol=1e-12, stop_at_fold=True
    )
    branch = follow_arclength(
        family, family.minimum(2.0), math.log(2.0), math.log(4.0), settings, family.bottom
    )
    (fold,) = branch.folds
    assert fold.bracket[1] - fold.bracket[0] > settings.fold_tol  # not bisected
    assert abs(fold.lam - 2.25) <= fold.lam_error


@pytest.mark.parametrize("bottom", [1e-6, -1e-3])  # H_0 positive definite, then indefinite
def test_the_preconditioner_applies_the_bordered_inverse_either_way(bottom):
    """Block elimination on H_0's Cholesky factor (positive definite H_0, nearly singular as
    near a fold) and the bordered LU (indefinite H_0) both apply A_0^{-1}."""
    p = 60
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    h0 = (q * np.append(bottom, np.geomspace(1e-4, 1.0, p - 1))) @ q.T
    b, c, d = rng.standard_normal(p), rng.standard_normal(p), 0.3
    m = BorderedPreconditioner(lambda theta, tau: h0.copy()).operator(None, 0.0, b, c, d)
    dense = np.block([[h0, b[:, None]], [c[None, :], np.array([[d]])]])
    for rhs in rng.standard_normal((3, p + 1)):
        expected = np.linalg.solve(dense, rhs)
        np.testing.assert_allclose(
            m.matvec(rhs), expected, rtol=1e-6, atol=1e-9 * abs(expected).max()
        )


@pytest.mark.parametrize("lower", [False, True])
def test_the_cholesky_solver_solves(lower):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((30, 30))
    matrix = a @ a.T + 0.1 * np.eye(30)
    solve = cholesky_solver(scipy.linalg.cho_factor(matrix, lower=lower))
    rhs = rng.standard_normal((30, 4))
    np.testing.assert_allclose(solve(rhs), np.linalg.solve(matrix, rhs), rtol=1e-10)
    np.testing.assert_allclose(solve(rhs[:, 0]), np.linalg.solve(matrix, rhs[:, 0]), rtol=1e-10)
