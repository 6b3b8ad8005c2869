"""A chain point's curvature from its dense Hessian (the span-reduced problem's H~, ``chain.span``):
the inertia proof, and the certificate's numbers by direct solves instead of Krylov iterations.

With H assembled (``chain.hessian``) and symmetrised:

- **class** (``chain.witness.classify``), each with its witness: Cholesky of H - eps I with
  a stated rounding bound proves lambda_min(H) > 0 (*minimum*); a unit vector whose Rayleigh
  quotient is below -delta (delta: the rounding bound plus the products' error) proves a
  *saddle*; otherwise the point is *degenerate*, with its eigenvalues in [-delta, delta]
  counted (LDL^T of H -+ delta I);
- **Newton step** s = -H^{-1} g and **branch tangent** H t = -w/n: solves with H's Cholesky
  factor (when H is positive definite) or its LU factors (otherwise), residuals explicit;
- **bottom pair** (mu, v): Lanczos on H^{-1} (shift-invert at 0, ``eigsh``), so the eigenvalue
  nearest 0 converges in a few solves; with a proved positive definite H that is the bottom
  (for an indefinite H, the dense solver's smallest eigenpair). Its
  residual r = ||H v - mu v|| is explicit, and delta = r + |v.H(theta + s)v - mu| as in
  ``curvature.certificate``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.linalg
import scipy.sparse.linalg
import torch

from ..curvature.certificate import NEWTON_RESIDUAL
from ..curvature.classes import PointClass
from ..curvature.inertia import DefinitenessCertificate, DenseHessian, certify_positive_definite
from .flat import flat_directions
from .witness import ClassWitness, classify
from ..objective import Objective
from .cholesky import cholesky_solver
from .hessian import dense_hessian_at


@dataclass(frozen=True)
class DenseCurvature:
    """Everything a chain point's row says about H at theta."""

    curvature_class: PointClass
    proof: DefinitenessCertificate
    witness: ClassWitness  # the class's witness (``chain.witness``)
    flat: str  # degenerate: where the flat directions live (``chain.flat``); else ""
    negative: int  # eigenvalues < -delta counted by LDL^T (0 when Cholesky proved H > 0)
    grad_norm: float
    step_norm: float
    newton_residual: float
    mse_change: float  # grad M . s
    bottom: float  # mu
    bottom_residual: float
    delta: float
    data_loss_slope: float  # the lemma's (lambda/n^2) w^T H^-1 w
    products: int

    def certifies(self, smallest_change: float, fraction: float) -> bool:
        """The Newton-step certificate: |mse_change| < fraction * smallest_change with the
        solve's residual <= NEWTON_RESIDUAL (``curvature.certificate``)."""
        return (
            abs(self.mse_change) < fraction * smallest_change
            and self.newton_residual <= NEWTON_RESIDUAL
        )


@dataclass(frozen=True)
class Solver:
    """x = H^{-1} b (``solve``), and the eigenvalue shift ``sigma`` with the plain solve
    ``shifted`` = (H - sigma I)^{-1} that shift-invert Lanczos needs."""

    solve: Callable[[np.ndarray], np.ndarray]
    shifted: Callable[[np.ndarray], np.ndarray]
    sigma: float


def _solver(hessian: DenseHessian, proof: DefinitenessCertificate) -> Solver:
    """When H - eps I factorised (H is then positive definite): its factor R, with one step of
    iterative refinement for H itself, x1 = x0 + (H - eps I)^{-1} (b - H x0), which squares
    the relative error eps / lambda_min; else LU of H."""
    matrix = hessian.matrix
    if proof.factorised:
        shifted = cholesky_solver((proof.factor, False))  # upper R, R^T R = H - eps I

        def refined(rhs):
            first = shifted(rhs)
            return first + shifted(rhs - matrix @ first)

        return Solver(refined, shifted, proof.shift)
    factor = scipy.linalg.lu_factor(matrix, check_finite=False)

    def solve(rhs):
        return scipy.linalg.lu_solve(factor, rhs, check_finite=False)

    return Solver(solve, solve, 0.0)


def _residual(matrix: np.ndarray, x: np.ndarray, rhs: np.ndarray) -> float:
    norm = float(np.linalg.norm(rhs))
    return float(np.linalg.norm(matrix @ x - rhs)) / norm if norm else 0.0


def nearest_zero_pair(matrix: np.ndarray, solver: Solver) -> tuple[float, np.ndarray]:
    """The eigenpair of ``matrix`` nearest its shift (0 up to ``solver.sigma``), by Lanczos on
    (H - sigma I)^{-1}; the value is the Rayleigh quotient of the vector with H itself."""
    p = len(matrix)
    inverse = scipy.sparse.linalg.LinearOperator((p, p), matvec=solver.shifted, dtype=np.float64)
    start = np.random.default_rng(0).standard_normal(p)
    operator = scipy.sparse.linalg.aslinearoperator(matrix)
    _, vectors = scipy.sparse.linalg.eigsh(
        operator, k=1, sigma=solver.sigma, OPinv=inverse, v0=start, tol=1e-12
    )
    vector = vectors[:, 0] / np.linalg.norm(vectors[:, 0])
    return float(vector @ matrix @ vector), vector


def dense_curvature(
    objective: Objective,
    mse: Objective,
    theta: torch.Tensor,
) -> DenseCurvature:
    """The module's numbers at theta for J (``objective``); ``mse``: the in-sample MSE."""
    hessian = dense_hessian_at(objective, theta)
    proof = certify_positive_definite(hessian, count_inertia=False)  # classify counts
    h, positive = hessian.matrix, proof.proves_minimum
    gradient = objective.gradient(theta).cpu().numpy()
    solver = _solver(hessian, proof)
    step = solver.solve(-gradient)
    w = (theta * objective.weight_mask()).cpu().numpy()
    n = len(objective.x)
    tangent = solver.solve(-w / n)
    witness = classify(hessian, proof)
    if witness.witness is None:
        mu, vector = bottom_pair(h, solver, proof.factorised)
    else:  # the witness is the bottom eigenvector already
        mu, vector = witness.witness_value, witness.witness
    bottom_residual = float(np.linalg.norm(h @ vector - mu * vector))
    moved = objective.operator(theta + torch.as_tensor(step, device=theta.device))
    delta = bottom_residual + abs(float(vector @ moved.matvec(vector)) - mu)
    mse_change = float(mse.gradient(theta).cpu().numpy() @ step)
    newton_residual = _residual(h, step, -gradient)
    return DenseCurvature(
        curvature_class=witness.curvature_class,
        proof=proof,
        witness=witness,
        flat=_flat(h, witness, theta, objective),
        negative=witness.below,
        grad_norm=float(np.linalg.norm(gradient)),
        step_norm=float(np.linalg.norm(step)),
        newton_residual=newton_residual,
        mse_change=mse_change,
        bottom=mu,
        bottom_residual=bottom_residual,
        delta=delta,
        data_loss_slope=float(-(objective.lam / n) * (w @ tangent)),
        products=hessian.products + moved.products,
    )


def _flat(h: np.ndarray, witness: ClassWitness, theta: torch.Tensor, objective: Objective) -> str:
    if witness.curvature_class is not PointClass.DEGENERATE:
        return ""
    return flat_directions(
        h, witness.delta, theta.cpu().numpy(), objective.sizes, witness.low
    ).describe()


def bottom_pair(matrix: np.ndarray, solver: Solver, positive: bool) -> tuple[float, np.ndarray]:
    """The bottom eigenpair: shift-invert Lanczos when ``matrix`` is positive definite (its
    eigenvalue nearest 0 is then the bottom), else LAPACK's dense symmetric solver for the
    smallest eigenvalue alone (``eigh``, MRRR on the tridiagonal form: about 5 s at p = 4,180
    on one core, where Lanczos for the smallest of a crowded spectrum took 20-40 s)."""
    if positive:
        return nearest_zero_pair(matrix, solver)
    _, vectors = scipy.linalg.eigh(matrix, subset_by_index=[0, 0], driver="evr", check_finite=False)
    vector = vectors[:, 0] / np.linalg.norm(vectors[:, 0])
    return float(vector @ matrix @ vector), vector


def dense_nearest_zero(objective: Objective, theta: torch.Tensor) -> float:
    """The eigenvalue of H(theta) nearest 0 (shift-invert with H's Cholesky factor, or its LU
    factors where H is not positive definite): on a fold's approach, the one that crosses 0
    there. No class is claimed, so no certificate or inertia is computed."""
    return nearest_zero_eigenvalue(dense_hessian_at(objective, theta).matrix)


def nearest_zero_eigenvalue(matrix: np.ndarray) -> float:
    """``dense_nearest_zero`` of a symmetric (p, p) matrix. Where LU meets an exactly zero pivot
    (the matrix singular in floating point, as at a fold point of a small network),
    shift-invert has nothing to invert: every eigenvalue by LAPACK instead."""
    try:
        solve = cholesky_solver(scipy.linalg.cho_factor(matrix, check_finite=False))
    except np.linalg.LinAlgError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)  # checked just below
            lu = scipy.linalg.lu_factor(matrix, check_finite=False)
        if not np.all(np.diag(lu[0])):
            values = scipy.linalg.eigvalsh(matrix, check_finite=False)
            return float(values[np.argmin(np.abs(values))])

        def solve(rhs):
            return scipy.linalg.lu_solve(lu, rhs, check_finite=False)

    return nearest_zero_pair(matrix, Solver(solve, solve, 0.0))[0]
