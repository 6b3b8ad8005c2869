"""THE polish: a point moved to a critical point (towards a minimum) of J_lambda, in float64:
L-BFGS while far, then trust-region Newton-CG. ``problem`` is an ``objective.Objective``
(``value``, ``gradient``, ``value_and_gradient``, ``operator``); theta is its flat vector.
The result is typed (``Polished``): the point, ||grad J|| there, ``converged`` (||grad J|| <=
``Polish.tol``), the iterations of each phase and the Hessian-vector products spent.

Used by the continuation (``Polish`` from its params section, ``continuation``), the escape
test (``curvature.escape``) and the lambda study's optional polish (``study_polish``).

**Trust-region Newton-CG** (Steihaug 1983; Toint 1981; Nocedal and Wright, Numerical
Optimization, algorithms 4.1 and 7.2). At theta with gradient g and Hessian H (products only),
the step s approximately minimises the model m(s) = g.s + s.H s / 2 over ||s|| <= radius by
conjugate gradients from s = 0, stopping

- when the residual ||H s + g|| <= forcing * ||g||, forcing = min(0.5, sqrt(||g||)) (the
  inexact-Newton condition that keeps the local convergence superlinear);
- on a direction of non-positive curvature p.H p <= 0, or when s would leave the region: the
  step then goes to the boundary along p (so a saddle is left along negative curvature);
- after ``cg_iterations`` products.

The step is taken when rho = (J(theta) - J(theta + s)) / (m(0) - m(s)) > 0.1; the radius is
quartered when rho < 0.25 and doubled when rho > 0.75 and the step reached the boundary.
Near a minimum, J's decrease g.H^{-1}g / 2 falls below what float64 resolves in J (a few ulps of
|J| times the number of summed terms); there the step is taken when it lowers ||grad J|| instead.

Newton-CG handles what stalled damped Newton-MINRES on the network's J: an indefinite or
nearly singular H, where the exact Newton step is huge along near-flat directions. L-BFGS
goes first because a far start (an SGD point, ||grad J|| ~ 1e-2) needs many cheap steps
before the quadratic model is worth its products.

**The study's polish** (params ``lambda_study.polish``; also the hessian stage's escape,
``hessian.escape_max_iter``): ``study_polish(grad_tol, max_iter)`` sets tol = lbfgs_tol =
grad_tol and lbfgs_iterations = max_iter: L-BFGS runs up to max_iter iterations towards
||grad J||_2 <= grad_tol (its own test, ||grad J||_inf <= grad_tol / sqrt(p), implies it), and
trust-region Newton-CG finishes to grad_tol when L-BFGS stops short (at most
``newton_iterations`` = 100 outer steps of at most 500 products each, the defaults). The point is
*critical* when the final ||grad J|| <= grad_tol. ``continue_from`` only says which weights the
next point of a chain starts from; it is not a setting of the polish.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import torch


@dataclass(frozen=True)
class Polish:
    """Settings of ``polish``: where to stop and how much to spend."""

    tol: float = 1e-10  # converged when ||grad J|| <= tol
    lbfgs_tol: float = 1e-6  # L-BFGS hands over to Newton-CG at this ||grad J||
    lbfgs_iterations: int = 2000
    newton_iterations: int = 100  # outer (trust-region) iterations
    cg_iterations: int = 500  # Hessian-vector products per inner solve
    initial_radius: float = 1.0


@dataclass(frozen=True)
class Polished:
    """What ``polish`` returns."""

    theta: torch.Tensor  # the polished point, (p,) float64
    grad_norm: float  # ||grad J||_2 there
    converged: bool  # grad_norm <= Polish.tol
    lbfgs_iterations: int
    newton_iterations: int
    products: int  # Hessian-vector products spent by Newton-CG


def study_polish(grad_tol: float, max_iter: int) -> Polish:
    """The settings of the lambda study's polish (see the module): L-BFGS for at most
    ``max_iter`` iterations, then Newton-CG, both to ||grad J|| <= ``grad_tol``."""
    return Polish(tol=grad_tol, lbfgs_tol=grad_tol, lbfgs_iterations=max_iter)


def lbfgs(problem, theta: torch.Tensor, tol: float, iterations: int) -> tuple[torch.Tensor, int]:
    """scipy's L-BFGS-B on J from theta until ||grad J||_inf <= tol (towards a minimum)."""
    if iterations <= 0:
        return theta, 0

    def value_and_gradient(vector: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = problem.value_and_gradient(torch.as_tensor(vector, device=theta.device))
        return float(value), gradient.cpu().numpy()

    result = scipy.optimize.minimize(
        value_and_gradient,
        theta.cpu().numpy(),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": iterations, "gtol": tol, "ftol": 1e-16, "maxcor": 20},
    )
    return torch.as_tensor(result.x, device=theta.device), int(result.nit)


@dataclass(frozen=True)
class _Step:
    step: np.ndarray
    model_decrease: float  # m(0) - m(s) > 0
    on_boundary: bool


def _to_boundary(s: np.ndarray, p: np.ndarray, radius: float) -> np.ndarray:
    """s + tau p with tau >= 0 and ||s + tau p|| = radius."""
    a, b, c = p @ p, 2 * (s @ p), s @ s - radius**2
    tau = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    return s + tau * p


def steihaug(op, gradient: np.ndarray, radius: float, forcing: float, iterations: int) -> _Step:
    """Approximate minimiser of g.s + s.H s / 2 over ||s|| <= radius (see the module)."""
    s = np.zeros_like(gradient)
    r = gradient.copy()  # residual H s + g
    p = -r
    target = forcing * np.linalg.norm(gradient)
    on_boundary = False
    for _ in range(iterations):
        hp = op.matvec(p)
        curvature = p @ hp
        if curvature <= 0:
            s, on_boundary = _to_boundary(s, p, radius), True
            break
        alpha = (r @ r) / curvature
        if np.linalg.norm(s + alpha * p) >= radius:
            s, on_boundary = _to_boundary(s, p, radius), True
            break
        s = s + alpha * p
        r_next = r + alpha * hp
        if np.linalg.norm(r_next) <= target:
            break
        p = -r_next + ((r_next @ r_next) / (r @ r)) * p
        r = r_next
    model_decrease = -(gradient @ s + 0.5 * (s @ op.matvec(s)))
    return _Step(s, model_decrease, on_boundary)


def trust_region_newton(
    problem, theta: torch.Tensor, settings: Polish
) -> tuple[torch.Tensor, float, int, int]:
    """Newton-CG in a trust region from theta: (theta, ||grad J||, iterations, products)."""
    value = float(problem.value(theta))
    gradient = problem.gradient(theta).cpu().numpy()
    norm = float(np.linalg.norm(gradient))
    radius, products, iteration = settings.initial_radius, 0, 0
    for iteration in range(1, settings.newton_iterations + 1):
        if norm <= settings.tol:
            return theta, norm, iteration - 1, products
        op = problem.operator(theta)
        step = steihaug(op, gradient, radius, min(0.5, math.sqrt(norm)), settings.cg_iterations)
        products += op.products
        trial = theta + torch.as_tensor(step.step, device=theta.device)
        trial_value = float(problem.value(trial))
        trial_gradient = problem.gradient(trial).cpu().numpy()
        trial_norm = float(np.linalg.norm(trial_gradient))
        resolvable = step.model_decrease > 1e-12 * max(abs(value), 1e-300)
        if resolvable:
            rho = (value - trial_value) / step.model_decrease
            accept = rho > 0.1
            if rho < 0.25:
                radius /= 4
            elif rho > 0.75 and step.on_boundary:
                radius *= 2
        else:  # J's change is below its rounding: judge the step by the gradient
            accept = trial_norm < norm
            radius = radius if accept else radius / 4
        if accept:
            theta, value, gradient, norm = trial, trial_value, trial_gradient, trial_norm
        if radius < 1e-14 * (1 + float(theta.norm())):
            break
    return theta, norm, iteration, products


def polish(problem, theta: torch.Tensor, settings: Polish = Polish()) -> Polished:
    """A minimum of J near theta: L-BFGS to ``lbfgs_tol``, then trust-region Newton-CG to
    ``tol``."""
    norm = float(problem.gradient(theta).norm())
    lbfgs_iterations = 0
    if norm > settings.lbfgs_tol:
        theta, lbfgs_iterations = lbfgs(
            problem, theta, settings.lbfgs_tol / math.sqrt(theta.numel()), settings.lbfgs_iterations
        )
    theta, norm, newton_iterations, products = trust_region_newton(problem, theta, settings)
    return Polished(
        theta, norm, norm <= settings.tol, lbfgs_iterations, newton_iterations, products
    )
