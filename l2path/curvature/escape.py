"""THE escape test: at a point (a saddle), leave along negative curvature and compare with an
unperturbed control polish.

At a point theta of J_lambda with bottom Ritz pair (mu, v), ||v|| = 1, and ||grad J|| ~ 0,
the quadratic model along v is J(theta + a v) = J(theta) + mu a^2 / 2. The step
a = sqrt(2 * drop * |J(theta)| / |mu|) is the one the model says lowers J by drop * |J|
when mu < 0. Both theta + a v and theta - a v are polished (``curvature.polish.polish``); so is
theta itself, unperturbed, with the same budget: the **control**. The escape *lowers* J when a
perturbed polish ends below the control's J by more than rounding (1e-12 |J|). Without the
control a polish that merely continues downhill from a point that was not quite critical
would count as an escape.

The pair (mu, v) is found by Lanczos on H(theta) unless the caller already has it (``bottom``:
the hessian stage passes the one its curvature analysis found).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .polish import Polish, polish
from .spectrum import lanczos_extreme


@dataclass(frozen=True)
class Escape:
    alpha: float  # the step along the bottom eigenvector
    bottom: float  # mu, the bottom Ritz value it was taken from
    control_objective: float  # J after polishing theta itself
    objectives: tuple[float, float]  # J after polishing theta + alpha v and theta - alpha v
    data_losses: tuple[float, float]  # L there
    grad_norms: tuple[float, float]
    ends: tuple[torch.Tensor, ...] = ()  # the two polished points, (p,) each, in that order

    def below_control(self, objective: float) -> bool:
        """Is J = ``objective`` lower than the control polish's J by more than rounding?"""
        return objective < self.control_objective - 1e-12 * abs(self.control_objective)

    @property
    def lowers(self) -> bool:
        """Does either escape end lower than the control polish?"""
        return self.below_control(min(self.objectives))


def escape(
    problem,
    theta: torch.Tensor,
    settings: Polish,
    eig_tol: float = 1e-10,
    eig_steps: int = 1000,
    drop: float = 1e-3,
    bottom: tuple[float, np.ndarray] | None = None,
) -> Escape:
    """The escape test at theta (see the module); ``problem`` is J_lambda (an ``Objective``);
    ``bottom`` = (mu, v), v of shape (p,) (normalised here), skips the Lanczos run."""
    if bottom is None:
        op = problem.operator(theta)
        pair = lanczos_extreme(op, 1, "SA", eig_tol, eig_steps)
        mu, vector = float(pair.values[0]), torch.as_tensor(pair.vectors[:, 0], device=theta.device)
    else:
        mu = float(bottom[0])
        vector = torch.as_tensor(
            np.asarray(bottom[1]) / np.linalg.norm(bottom[1]), device=theta.device
        )
    value = float(problem.value(theta))
    alpha = math.sqrt(2 * drop * max(abs(value), 1e-300) / max(abs(mu), 1e-300))
    control = polish(problem, theta, settings)
    ends = [polish(problem, theta + sign * alpha * vector, settings) for sign in (1.0, -1.0)]
    return Escape(
        alpha,
        mu,
        float(problem.value(control.theta)),
        tuple(float(problem.value(e.theta)) for e in ends),
        tuple(float(problem.data_loss(e.theta)) for e in ends),
        tuple(e.grad_norm for e in ends),
        tuple(e.theta for e in ends),
    )
