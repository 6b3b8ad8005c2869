"""A chain point's curvature from its dense Hessian (the span-reduced problem's H~, ``chain.span``):
the inertia proof, and the certificate's numbers by direct solves instead of Krylov iterations.

With H assembled (``chain.hessian``) and symmetrised:

- **class** (``curvature.inertia.certify_positive_definite``): Cholesky of H - eps I with a
  stated rounding bound proves lambda_min(H) > 0 (*minimum*, proof ``inertia``); when it breaks
  down, LDL^T counts the negative eigenvalues (*saddle* when there are any, else *degenerate*);
- **Newton step** s = -H^{-1} g and **branch tangent** H t = -w/n: solves with H's Cholesky
  factor (when H is positive definite) or its LU factors (otherwise), residuals explicit;
- **bottom pair** (mu, v): Lanczos on H^{-1} (shift-invert at 0, ``eigsh``), so the eigenvalue
  nearest 0 converges in a few solves; with a proved positive definite H that is the bottom. Its
  residual r = ||H v - mu v|| is explicit, and delta = r + |v.H(theta + s)v - mu| as in
  ``curvature.certificate``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse.linalg
import torch

from ..curvature.certificate import NEWTON_RESIDUAL
from ..curvature.classes import PointClass
from ..curvature.inertia import DefinitenessCertificate, DenseHessian, certify_positive_definite
from ..objective import Objective
from .hessian import dense_hessian_at


@dataclass(frozen=True)
class DenseCurvature:
    """Everything a chain point's row says about H at theta."""

    curvature_class: PointClass
    proof: DefinitenessCertificate
    negative: int  # eigenvalues < 0 counted by LDL^T (0 when Cholesky proved H > 0)
    grad_norm: float
    step_norm: float
    newton_residual: float
    mse_change: float  # grad M . s
    certified: bool  # |mse_change| < fraction * smallest_change, residual <= NEWTON_RESIDUAL
    bottom: float  # mu
    bottom_residual: float
    delta: float
    data_loss_slope: float  # the lemma's (lambda/n^2) w^T H^-1 w
    products: int


def _solver(hessian: DenseHessian, proof: DefinitenessCertificate):
    """x = H^{-1} b: by Cholesky when H - eps I factorised (H is then positive definite), else
    by LU. (The certificate keeps no factor, so H is factorised once more here.)"""
    matrix = hessian.matrix
    if proof.factorised:
        factor = scipy.linalg.cho_factor(matrix, check_finite=False)
        return lambda rhs: scipy.linalg.cho_solve(factor, rhs, check_finite=False)
    factor = scipy.linalg.lu_factor(matrix, check_finite=False)
    return lambda rhs: scipy.linalg.lu_solve(factor, rhs, check_finite=False)


def _residual(matrix: np.ndarray, x: np.ndarray, rhs: np.ndarray) -> float:
    norm = float(np.linalg.norm(rhs))
    return float(np.linalg.norm(matrix @ x - rhs)) / norm if norm else 0.0


def nearest_zero_pair(matrix: np.ndarray, solve) -> tuple[float, np.ndarray]:
    """The eigenpair of ``matrix`` nearest 0, by Lanczos on its inverse (``solve``)."""
    p = len(matrix)
    inverse = scipy.sparse.linalg.LinearOperator((p, p), matvec=solve, dtype=np.float64)
    start = np.random.default_rng(0).standard_normal(p)
    operator = scipy.sparse.linalg.aslinearoperator(matrix)
    values, vectors = scipy.sparse.linalg.eigsh(
        operator, k=1, sigma=0.0, OPinv=inverse, v0=start, tol=1e-12
    )
    vector = vectors[:, 0] / np.linalg.norm(vectors[:, 0])
    return float(vector @ matrix @ vector), vector


def dense_curvature(
    objective: Objective,
    mse: Objective,
    theta: torch.Tensor,
    smallest_change: float,
    fraction: float,
) -> DenseCurvature:
    """The module's numbers at theta for J (``objective``); ``mse``: the in-sample MSE."""
    hessian = dense_hessian_at(objective, theta)
    proof = certify_positive_definite(hessian)
    h, positive = hessian.matrix, proof.proves_minimum
    gradient = objective.gradient(theta).cpu().numpy()
    solve = _solver(hessian, proof)
    step = solve(-gradient)
    w = (theta * objective.weight_mask()).cpu().numpy()
    n = len(objective.x)
    tangent = solve(-w / n)
    mu, vector = bottom_pair(h, solve, proof.factorised)
    bottom_residual = float(np.linalg.norm(h @ vector - mu * vector))
    moved = objective.operator(theta + torch.as_tensor(step, device=theta.device))
    delta = bottom_residual + abs(float(vector @ moved.matvec(vector)) - mu)
    mse_change = float(mse.gradient(theta).cpu().numpy() @ step)
    newton_residual = _residual(h, step, -gradient)
    negative = 0 if proof.inertia is None else proof.inertia.negative
    if positive:
        curvature_class = PointClass.MINIMUM
    elif negative > 0:
        curvature_class = PointClass.SADDLE
    else:
        curvature_class = PointClass.DEGENERATE
    return DenseCurvature(
        curvature_class=curvature_class,
        proof=proof,
        negative=negative,
        grad_norm=float(np.linalg.norm(gradient)),
        step_norm=float(np.linalg.norm(step)),
        newton_residual=newton_residual,
        mse_change=mse_change,
        certified=abs(mse_change) < fraction * smallest_change
        and newton_residual <= NEWTON_RESIDUAL,
        bottom=mu,
        bottom_residual=bottom_residual,
        delta=delta,
        data_loss_slope=float(-(objective.lam / n) * (w @ tangent)),
        products=hessian.products + moved.products,
    )


def bottom_pair(matrix: np.ndarray, solve, positive: bool) -> tuple[float, np.ndarray]:
    """The bottom eigenpair: shift-invert Lanczos when ``matrix`` is positive definite (its
    eigenvalue nearest 0 is then the bottom), else a dense ``eigh`` of the lowest one."""
    if positive:
        return nearest_zero_pair(matrix, solve)
    values, vectors = scipy.linalg.eigh(matrix, subset_by_index=[0, 0])
    return float(values[0]), vectors[:, 0]


def dense_bottom(objective: Objective, theta: torch.Tensor) -> float:
    """lambda_min of H(theta) from its dense matrix (as in ``dense_curvature``)."""
    hessian = dense_hessian_at(objective, theta)
    proof = certify_positive_definite(hessian)
    solve = _solver(hessian, proof) if proof.factorised else None
    return bottom_pair(hessian.matrix, solve, proof.factorised)[0]
