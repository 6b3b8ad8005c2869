"""The converged warm-started chain: the user's question asked of critical points, on the one
objective the points are judged on.

**The problem** is the continuation's subset problem (``study.SubsetProblem``): J on the first
n_sub training images with lambda_sub = lambda * n_sub / n, so lambda/n is the study's.

**The chain** (per seed and direction) is the warm-started chain a user runs by hand, but
converged: point 0 is the polish (``curvature.polish``) of J at the grid's first lambda (the
largest, descending) started from the study's SGD point there, and point k+1 is the polish of
J at the next lambda started from point k. Ascending, the chain ends after the first point
whose ||w|| < collapse_ratio * ||w of point 0|| (the weights have gone to the trivial branch,
as in the SGD study); otherwise at the grid's end.

**Each point** (``describe``) gets the Newton-step certificate and the bottom Ritz pair
(``curvature.certificate``), the lemma's slope dL/dlambda_sub = (lambda_sub/n^2) w^T H^-1 w
from the branch tangent, and its losses on the subset. Where asked (``inertia``), the dense
Hessian's inertia (``curvature.inertia``) proves the class; elsewhere "minimum" rests on
Lanczos having found the bottom (``ClassProof.LANCZOS``).

**The evidence** is the in-sample MSE of the subset along the chain: ``chain_steps`` takes
each pair of neighbours in lambda order, and a step whose MSE falls as lambda rises is a drop.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..curvature.certificate import branch_tangent, certify
from ..curvature.classes import PointClass
from ..curvature.inertia import certify_positive_definite, dense_hessian
from ..curvature.polish import Polish, Polished, polish
from .chain_records import ChainDirection, ChainPoint, ChainStep, ClassProof
from .study import SubsetProblem


@dataclass(frozen=True)
class ChainSettings:
    polish: Polish
    collapse_ratio: float  # ascending: ends after ||w|| < collapse_ratio * ||w_0||
    fraction: float = 0.01  # the certificate's share of the smallest change judged
    eig_tol: float = 1e-10
    eig_steps: int = 1000


@dataclass(frozen=True)
class Link:
    """One polished point of a chain, before it is described."""

    lam: float  # the study's lambda
    theta: torch.Tensor
    polished: Polished
    seconds: float


def weight_norm(problem, theta: torch.Tensor) -> float:
    return float((theta * problem.weight_mask()).norm())


def run_chain(
    subset: SubsetProblem,
    start: torch.Tensor,
    lams: list[float],
    direction: ChainDirection,
    settings: ChainSettings,
    log=lambda message: None,
) -> list[Link]:
    """Polish J at lams[0] from ``start``, then each next lambda from the previous point (see
    the module); ``lams`` in the chain's order."""
    links: list[Link] = []
    theta, first_norm = start, math.nan
    for lam in lams:
        problem = subset.at(lam)
        clock = time.perf_counter()
        result = polish(problem, theta, settings.polish)
        links.append(Link(lam, result.theta, result, time.perf_counter() - clock))
        theta = result.theta
        norm = weight_norm(problem, theta)
        first_norm = norm if math.isnan(first_norm) else first_norm
        log(
            f"{direction.value} chain, lambda {lam:g}: ||grad J|| {result.grad_norm:.2e}, "
            f"||w|| {norm:.4g}, {result.lbfgs_iterations} + {result.newton_iterations} iterations"
        )
        if direction is ChainDirection.UP and norm < settings.collapse_ratio * first_norm:
            break
    return links


def proved_class(problem, theta: torch.Tensor) -> tuple[PointClass, float, int]:
    """The class from the dense Hessian's inertia: (class, the proved lower bound on
    lambda_min or NaN, the negative eigenvalues counted or 0)."""
    certificate = certify_positive_definite(dense_hessian(problem.operator(theta)))
    if certificate.proves_minimum:
        return PointClass.MINIMUM, certificate.lower_bound, 0
    counts = certificate.inertia
    if counts is not None and counts.negative > 0:
        return PointClass.SADDLE, certificate.lower_bound, counts.negative
    return PointClass.DEGENERATE, certificate.lower_bound, 0 if counts is None else counts.negative


def describe(
    subset: SubsetProblem,
    seed: int,
    direction: ChainDirection,
    index: int,
    link: Link,
    previous: torch.Tensor | None,
    smallest_change: float,
    settings: ChainSettings,
    inertia: bool = False,
) -> ChainPoint:
    """A chain point's row (see the module). ``previous``: the chain's point before it."""
    problem = subset.at(link.lam)
    clock = time.perf_counter()
    c = certify(
        problem,
        subset.mse,
        link.theta,
        smallest_change,
        settings.fraction,
        settings.eig_tol,
        settings.eig_steps,
    )
    op = problem.operator(link.theta)
    slope = branch_tangent(problem, op).data_loss_slope
    curvature_class, proof, lower, negative = c.curvature_class, ClassProof.LANCZOS, None, None
    if not link.polished.converged:
        curvature_class, proof = PointClass.NOT_CRITICAL, ClassProof.NONE
    elif inertia:
        curvature_class, lower, negative = proved_class(problem, link.theta)
        proof = ClassProof.INERTIA
    distance = 0.0 if previous is None else float((link.theta - previous).norm())
    return ChainPoint(
        seed=seed,
        direction=direction,
        index=index,
        lam=link.lam,
        lam_sub=problem.lam,
        converged=link.polished.converged,
        lbfgs_iterations=link.polished.lbfgs_iterations,
        newton_iterations=link.polished.newton_iterations,
        grad_norm=c.grad_norm,
        newton_step_norm=c.step_norm,
        newton_residual=c.newton_residual,
        newton_mse_change=c.mse_change,
        certified=c.certified,
        bottom=c.bottom,
        bottom_residual=c.bottom_residual,
        delta=c.delta,
        curvature_class=curvature_class,
        class_proof=proof,
        inertia_lower_bound=None if lower is None or math.isnan(lower) else lower,
        inertia_negative=negative,
        predicted_dL_dlambda=slope,
        data_loss=float(problem.data_loss(link.theta)),
        mse=float(subset.mse.value(link.theta)),
        objective=float(problem.value(link.theta)),
        weight_l2=weight_norm(problem, link.theta),
        distance_from_previous=distance,
        hvps=c.products + op.products,
        seconds=link.seconds + time.perf_counter() - clock,
    )


def chain_steps(points: list[ChainPoint], thetas: list[torch.Tensor]) -> list[ChainStep]:
    """Every pair of neighbours of one chain (``points`` and their ``thetas`` in chain order),
    in lambda order: change = MSE at the larger lambda - MSE at the smaller."""
    steps = []
    for (a, theta_a), (b, theta_b) in zip(zip(points, thetas), zip(points[1:], thetas[1:])):
        low, high = (a, b) if a.lam < b.lam else (b, a)
        change = high.mse - low.mse
        steps.append(
            ChainStep(
                seed=a.seed,
                direction=a.direction,
                lambda_low=low.lam,
                lambda_high=high.lam,
                mse_low=low.mse,
                mse_high=high.mse,
                change=change,
                drop=bool(change < 0),
                distance=float((theta_b - theta_a).norm()),
            )
        )
    return steps


def smallest_change(changes: list[float], floor: float = 1e-12) -> float:
    """The certificate's scale: the smallest |change| of the chain's steps (at least
    ``floor``, so a step that does not move does not make every point uncertifiable)."""
    sizes = [abs(c) for c in changes if np.isfinite(c)]
    return max(min(sizes, default=1.0), floor)
