"""Following a branch of critical points of J_lambda in lambda: predictor, corrector, folds.

The branch is the solution set of grad J_lambda(theta) = 0, J_lambda = L + (lambda/2n) ||w||^2.
From a converged point (theta, lambda) one step to lambda' = lambda e^h (a step h in log lambda):

- **predictor**: theta_pred = theta + (lambda' - lambda) dtheta/dlambda, the tangent solving
  H dtheta/dlambda = -w/n (``curvature.certificate.branch_tangent``), which also predicts
  dL/dlambda = (lambda/n^2) w^T H^{-1} w;
- **corrector**: trust-region Newton-CG (``curvature.polish``) at lambda' from the prediction, at
  most ``corrector_iterations`` steps, its first region as large as the jump allowed below;
  the start point is polished in full (L-BFGS, then Newton-CG);
- **acceptance**: the corrector converged, the new point is a minimum like the old one
  (bottom Ritz value > 0), and it stayed near the prediction,
  ||theta' - theta_pred|| <= jump_tol * ||theta_pred - theta|| + 1e-8 (1 + ||theta||): on a
  smooth branch the predictor's error is O(h^2) against a step of O(h), so the ratio falls as
  h halves; where the branch ends it does not.

The branch is followed up or down in lambda (h < 0 going down). A failed step is retried
with h halved, down to ``min_step`` (log 2^(1/8) by default). When even that fails the branch
ends: a fold lies between lambda and lambda e^(+-min_step), located to within that factor
(the halvings are a bisection on log lambda), and the corrector's answer there, if it
converged far from the prediction, is the point the branch jumps to.

Every accepted step records the predicted and the realised dL/dlambda (the lemma, checked),
the bottom Ritz value with its residual, the distance from the prediction, and the barrier
of J_lambda' on the segment from the previous point (none: the same branch, no basin crossed).

The problem is an ``objective.Objective`` (J_lambda on fixed data); anything with its
``lam``, ``n``, ``at``, ``value``, ``value_and_gradient``, ``gradient``, ``operator``,
``weight_mask`` and ``data_loss`` will do (the tests follow a one-weight quartic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..curvature.spectrum import lanczos_extreme
from ..objective import Objective
from ..curvature.certificate import solve
from ..curvature.polish import Polish, polish, trust_region_newton


@dataclass(frozen=True)
class Settings:
    polish: Polish = (
        Polish()
    )  # the corrector: L-BFGS, then trust-region Newton-CG to ||grad J|| <= polish.tol
    min_step: float = math.log(2) / 8
    corrector_iterations: int = (
        20  # trust-region steps from a prediction: on a smooth branch a few suffice
    )
    jump_tol: float = 1.0  # the corrector may move at most this share of the predictor's step
    eig_tol: float = 1e-10  # bottom Ritz pair converged at residual <= eig_tol * |top Ritz value|
    eig_steps: int = 1000  # at 1e-8 and 300 steps, bottoms of ~1e-9 stayed within their residual
    minres_iterations: int = (
        2000  # products per tangent solve (H is nearly singular at small lambda/n)
    )


@dataclass(frozen=True)
class BranchPoint:
    lam: float
    theta: np.ndarray
    data_loss: float
    grad_norm: float
    bottom: float  # bottom Ritz value of H
    bottom_residual: float
    predicted_slope: float  # dL/dlambda from the tangent at the previous point
    realised_slope: float  # (L' - L) / (lambda' - lambda)
    jump: float  # ||theta - theta_pred||
    barrier: float = (
        math.nan
    )  # J_lambda' on the segment from the previous point: its rise above the ends

    @property
    def same_branch(self) -> bool:
        """No barrier between this point and the previous one (rounding aside)."""
        return not self.barrier > 0


@dataclass
class Branch:
    points: list[BranchPoint] = field(default_factory=list)
    fold: tuple[float, float] | None = (
        None  # (low, high), high = low e^min_step: the end of the branch lies between
    )
    jumped_to: np.ndarray | None = None  # where the corrector went beyond the fold, if it converged
    fold_evidence: str = ""  # why the smallest step failed: no convergence, a jump, or bottom <= 0


def correct(
    problem: Objective, theta: torch.Tensor, settings: Settings, radius: float
) -> tuple[torch.Tensor, float] | None:
    """A minimum of J at ``problem``'s lambda near the prediction theta: trust-region Newton-CG
    whose first region has the given radius (no L-BFGS: its first step has unit length,
    which can carry the point into another basin); None if it does not converge."""
    polish_settings = replace(
        settings.polish, initial_radius=radius, newton_iterations=settings.corrector_iterations
    )
    theta, norm, _, _ = trust_region_newton(problem, theta, polish_settings)
    return (theta, norm) if norm <= settings.polish.tol else None


def bottom_pair(problem: Objective, theta: torch.Tensor, settings: Settings) -> tuple[float, float]:
    pairs = lanczos_extreme(problem.operator(theta), 1, "SA", settings.eig_tol, settings.eig_steps)
    return float(pairs.values[0]), float(pairs.residuals[0])


def segment_barrier(
    problem: Objective, start: torch.Tensor, end: torch.Tensor, samples: int = 11
) -> float:
    """max J on the segment (1 - t) start + t end, t on ``samples`` equally spaced points,
    above the larger of its two ends; 0 when J stays below the ends, up to rounding (1e-12 |J|)."""
    values = [
        float(problem.value((1 - t) * start + t * end)) for t in np.linspace(0.0, 1.0, samples)
    ]
    rise = max(values[1:-1], default=-math.inf) - max(values[0], values[-1])
    return rise if rise > 1e-12 * max(abs(v) for v in values) else 0.0


def tangent(
    problem: Objective, theta: torch.Tensor, settings: "Settings"
) -> tuple[torch.Tensor, float]:
    """dtheta/dlambda and the predicted dL/dlambda = -(lambda/n) w . dtheta/dlambda."""
    w = (theta * problem.weight_mask()).cpu().numpy()
    direction, _ = solve(
        problem.operator(theta), -w / problem.n, rtol=1e-12, maxiter=settings.minres_iterations
    )
    return torch.as_tensor(direction, device=theta.device), float(
        -(problem.lam / problem.n) * (w @ direction)
    )


@dataclass(frozen=True)
class Known:
    """What is already known of a converged start point (saves a Lanczos run and a tangent
    solve when the caller has certified it): its bottom Ritz pair and its tangent."""

    bottom: float
    bottom_residual: float
    direction: torch.Tensor  # dtheta/dlambda
    slope: float  # predicted dL/dlambda


def follow(
    problem: Objective,
    theta: torch.Tensor,
    lam_end: float,
    step: float,
    settings: Settings = Settings(),
    known: Known | None = None,
) -> Branch:
    """Follow the branch of minima through theta (a minimum of J at problem.lam) up or down to
    lam_end with steps of at most ``step`` in log lambda (see the module)."""
    start = polish(problem, theta, settings.polish)
    if not start.converged:
        raise ValueError(
            f"no critical point near the start at lambda = {problem.lam:g} "
            f"(||grad J|| = {start.grad_norm:.3g} after the polish)"
        )
    theta, norm = start.theta, start.grad_norm
    bottom, residual = (
        (known.bottom, known.bottom_residual) if known else bottom_pair(problem, theta, settings)
    )
    if bottom <= 0:
        raise ValueError(
            f"the start at lambda = {problem.lam:g} is not a minimum "
            f"(bottom Ritz value {bottom:.3g})"
        )
    loss = float(problem.data_loss(theta))
    branch = Branch(
        [
            BranchPoint(
                problem.lam,
                theta.cpu().numpy(),
                loss,
                norm,
                bottom,
                residual,
                math.nan,
                math.nan,
                0.0,
            )
        ]
    )
    sign = 1.0 if lam_end >= problem.lam else -1.0  # up or down in lambda

    def remaining() -> float:  # what is left to lam_end, in log lambda
        return sign * math.log(lam_end / problem.lam)

    h = step
    direction, slope = (
        (known.direction, known.slope) if known else tangent(problem, theta, settings)
    )
    while remaining() > 1e-12:
        h = min(h, remaining())
        target = problem.at(problem.lam * math.exp(sign * h))
        predicted = theta + (target.lam - problem.lam) * direction
        allowed = settings.jump_tol * float((predicted - theta).norm()) + 1e-8 * (
            1 + float(theta.norm())
        )
        corrected = correct(target, predicted, settings, allowed)
        accepted, failure = (
            None,
            f"the corrector did not converge in {settings.corrector_iterations} steps",
        )
        if corrected is not None:
            jump = float((corrected[0] - predicted).norm())
            failure = (
                f"the corrector converged {jump:.3g} from the prediction (allowed {allowed:.3g})"
            )
        if corrected is not None and jump <= allowed:
            new_theta, new_norm = corrected  # the Lanczos run only for a point near the prediction
            new_bottom, new_residual = bottom_pair(target, new_theta, settings)
            failure = f"the corrected point's bottom Ritz value is {new_bottom:.3g} <= 0"
            if new_bottom > 0:
                accepted = (new_theta, new_norm, jump, new_bottom, new_residual)
        if accepted is None:
            if h > settings.min_step * (1 + 1e-9):
                h = max(h / 2, settings.min_step)
                continue
            branch.fold, branch.fold_evidence = tuple(sorted((problem.lam, target.lam))), failure
            branch.jumped_to = corrected[0].cpu().numpy() if corrected is not None else None
            return branch
        new_theta, new_norm, jump, bottom, residual = accepted
        new_loss = float(target.data_loss(new_theta))
        branch.points.append(
            BranchPoint(
                target.lam,
                new_theta.cpu().numpy(),
                new_loss,
                new_norm,
                bottom,
                residual,
                slope,
                (new_loss - loss) / (target.lam - problem.lam),
                jump,
                segment_barrier(target, theta, new_theta),
            )
        )
        problem, theta, loss = target, new_theta, new_loss
        h = min(step, 2 * h)
        if remaining() > 1e-12:
            direction, slope = tangent(problem, theta, settings)
    return branch
