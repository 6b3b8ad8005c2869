"""Certificates of critical points of J_lambda, from Hessian-vector products (float64).

At theta, with g = grad J_lambda and H its Hessian (``objective.CountingOperator``):

- **Newton step** s = -H^{-1} g, by MINRES (safe for an indefinite H); ``newton_step``
  reports the relative residual ||H s + g|| / ||g||.
- **Certified** for judging changes of the in-sample MSE M of size >= Delta: moving to the
  Newton point would change M by less than ``fraction`` * Delta, to first order
  |grad M . s| < fraction * Delta, with s solved to a relative residual <= 1e-3 (s is then
  the exact Newton step of a gradient within 0.1% of g). A tighter relative residual cannot
  be asked for at a polished point: with ||g|| ~ 1e-13 the products' own rounding is of
  the order of 1e-6 ||g||.
- **Bottom eigenpair** (mu, v) by Lanczos, with its explicit residual r = ||H v - mu v||.
  mu is a Rayleigh quotient, so lambda_min <= mu; and H has an eigenvalue within r of mu.
  With delta = r + |v.H(theta + s)v - mu| (the residual plus how far the bottom curvature
  moves between theta and the Newton point, one more gradient graph and one product):

      saddle         mu < -delta        (negative curvature at theta, whatever r)
      minimum        mu - r > delta     (if (mu, v) is the bottom pair: Lanczos from a random
                                         start finds the extreme eigenvalues first)
      degenerate     otherwise (inconclusive)

- **Branch tangent**: along a branch of critical points grad L + (lambda/n) w = 0, w the
  weights (zero on the biases). Differentiating in lambda, H dtheta/dlambda = -w/n, so

      dL/dlambda = grad L . dtheta/dlambda = (lambda/n^2) w^T H^{-1} w,

  the lemma's quantity: >= 0 on a branch of minima, and it can be < 0 only where H is
  indefinite.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse.linalg
import torch

from ..objective import Objective
from .classes import PointClass, classify_bottom
from .spectrum import lanczos_extreme

NEWTON_RESIDUAL = 1e-3  # the largest relative residual of a certified point's Newton step


@dataclass(frozen=True)
class NewtonStep:
    step: np.ndarray  # s, (p,)
    residual: float  # ||H s + g|| / ||g||
    products: int  # Hessian-vector products spent


def solve(op, rhs: np.ndarray, rtol: float, maxiter: int | None = None) -> tuple[np.ndarray, float]:
    """x with H x = rhs by MINRES, and the relative residual ||H x - rhs|| / ||rhs||."""
    x, _ = scipy.sparse.linalg.minres(op, rhs, rtol=rtol, maxiter=maxiter)
    norm = float(np.linalg.norm(rhs))
    residual = float(np.linalg.norm(op.matvec(x) - rhs)) / norm if norm else 0.0
    return x, residual


def newton_step(
    op, gradient: np.ndarray, rtol: float = 1e-10, maxiter: int | None = 2000
) -> NewtonStep:
    """s = -H^{-1} g (op: H as a LinearOperator counting its ``products``)."""
    before = op.products
    step, residual = solve(op, -gradient, rtol, maxiter)
    return NewtonStep(step, residual, op.products - before)


@dataclass(frozen=True)
class Tangent:
    direction: np.ndarray  # dtheta/dlambda, (p,)
    data_loss_slope: float  # predicted dL/dlambda = (lambda/n^2) w^T H^{-1} w
    residual: float  # of the linear solve


def branch_tangent(objective: Objective, op, rtol: float = 1e-10) -> Tangent:
    """The tangent of the branch of critical points through op's theta (``op.theta``)."""
    n = len(objective.x)
    w = (op.theta.detach() * objective.weight_mask()).cpu().numpy()
    direction, residual = solve(op, -w / n, rtol)
    return Tangent(direction, float(-(objective.lam / n) * (w @ direction)), residual)


@dataclass(frozen=True)
class Certificate:
    grad_norm: float
    step_norm: float
    newton_residual: float
    mse_change: float  # grad M . s: what the Newton step would change the in-sample MSE by
    certified: bool  # |mse_change| < fraction * the smallest change being judged
    bottom: float  # mu
    bottom_residual: float  # r
    delta: float
    curvature_class: PointClass  # the certified rule's: one of classes.CERTIFIED_CLASSES
    products: int


def certify(
    objective: Objective,
    mse: Objective,
    theta: torch.Tensor,
    smallest_change: float,
    fraction: float = 0.01,
    eig_tol: float = 1e-8,
    max_steps: int = 300,
) -> Certificate:
    """The certificate of theta for J_lambda (``objective``); ``mse`` is the in-sample MSE as an
    Objective (quadratic cost, lambda = 0) on the same data."""
    op = objective.operator(theta)
    gradient = objective.gradient(theta).cpu().numpy()
    newton = newton_step(op, gradient)
    bottom = lanczos_extreme(op, 1, "SA", eig_tol, max_steps)
    mu, vector, residual = float(bottom.values[0]), bottom.vectors[:, 0], float(bottom.residuals[0])
    moved = objective.operator(theta + torch.as_tensor(newton.step, device=theta.device))
    delta = residual + abs(float(vector @ moved.matvec(vector)) - mu)
    mse_change = float(mse.gradient(theta).cpu().numpy() @ newton.step)
    return Certificate(
        grad_norm=float(np.linalg.norm(gradient)),
        step_norm=float(np.linalg.norm(newton.step)),
        newton_residual=newton.residual,
        mse_change=mse_change,
        certified=abs(mse_change) < fraction * smallest_change
        and newton.residual <= NEWTON_RESIDUAL,
        bottom=mu,
        bottom_residual=residual,
        delta=delta,
        curvature_class=classify_bottom(mu, residual, delta),
        products=op.products + moved.products,
    )
