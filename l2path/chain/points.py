"""The converged warm-started chain: the user's question asked of critical points, on the one
objective the points are judged on.

**The problem** is the subset problem (``subset.SubsetProblem``): J on the first
n_sub training images with lambda_sub = lambda * n_sub / n, so lambda/n is the study's.

**The chain** (per seed and direction) is the warm-started chain a user runs by hand, but
converged: point 0 is settled (``chain.settle``: polished, and off every proved saddle) at the
chain's first lambda from its start, and point k+1 is settled at the next lambda from point k.
*Cold* points are no chain: each is settled from the same fresh initialisation. Ascending and
cold, the run ends after the first point whose ||w|| < collapse_ratio * ||w of point 0|| (the
weights have gone to the trivial branch, as in the SGD study); otherwise at the grid's end.

**Each point** (``describe``) gets, from its dense Hessian (``chain.dense``; the problem is
span-reduced, ``chain.span``, so H is small enough to factorise), the inertia proof of its
class, the Newton-step certificate, the bottom eigenpair, the lemma's slope
dL/dlambda_sub = (lambda_sub/n^2) w^T H^-1 w, and its losses on the subset.

**The evidence** is the in-sample MSE of the subset along the chain: ``chain_steps`` takes
each pair of neighbours in lambda order, and a step whose MSE falls as lambda rises is a drop.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..curvature.classes import PointClass
from ..curvature.polish import Polish, Polished
from .dense import DenseCurvature
from .records import ChainDirection, ChainPoint, ChainStep, ClassProof
from .settle import settle
from .subset import SubsetProblem


@dataclass(frozen=True)
class ChainSettings:
    polish: Polish
    collapse_ratio: float  # ascending: ends after ||w|| < collapse_ratio * ||w_0||
    fraction: float = 0.01  # the certificate's share of the smallest change judged
    max_escapes: int = 4  # saddles left per point (``chain.settle``)


@dataclass(frozen=True)
class Link:
    """One polished point of a chain, before it is described."""

    lam: float  # the study's lambda
    theta: torch.Tensor
    polished: Polished
    curvature: DenseCurvature  # at theta
    escapes: int
    objective_before_escapes: float
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
    """Settle J at lams[0] from ``start``, then each next lambda from the previous point (cold:
    from ``start`` again; see the module); ``lams`` in the chain's order."""
    links: list[Link] = []
    theta, first_norm = start, math.nan
    for lam in lams:
        problem = subset.at(lam)
        clock = time.perf_counter()
        origin = start if direction is ChainDirection.COLD else theta
        s = settle(problem, subset.mse, origin, settings.polish, settings.max_escapes)
        result = s.polished
        links.append(
            Link(
                lam,
                result.theta,
                result,
                s.curvature,
                s.escapes,
                s.objective_before_escapes,
                time.perf_counter() - clock,
            )
        )
        theta = result.theta
        norm = weight_norm(problem, theta)
        first_norm = norm if math.isnan(first_norm) else first_norm
        log(
            f"{direction.value} chain, lambda {lam:g}: ||grad J|| {result.grad_norm:.2e}, "
            f"||w|| {norm:.4g}, {s.curvature.curvature_class.value}, {s.escapes} escapes"
        )
        collapses = direction is not ChainDirection.DOWN
        if collapses and norm < settings.collapse_ratio * first_norm:
            break
    return links


def describe(
    subset: SubsetProblem,
    seed: int,
    direction: ChainDirection,
    index: int,
    link: Link,
    previous: torch.Tensor | None,
    smallest_change: float,
    settings: ChainSettings,
) -> ChainPoint:
    """A chain point's row (see the module; the curvature from the dense H, ``chain.dense``).
    ``previous``: the chain's point before it."""
    problem = subset.at(link.lam)
    c = link.curvature
    curvature_class, proof = c.curvature_class, ClassProof.INERTIA
    if not link.polished.converged:
        curvature_class, proof = PointClass.NOT_CRITICAL, ClassProof.NONE
    lower = c.proof.lower_bound
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
        certified=c.certifies(smallest_change, settings.fraction),
        bottom=c.bottom,
        bottom_residual=c.bottom_residual,
        delta=c.delta,
        curvature_class=curvature_class,
        class_proof=proof,
        inertia_lower_bound=None if math.isnan(lower) else lower,
        inertia_negative=c.negative,
        class_margin=c.witness.delta,
        saddle_witness=c.witness.witness_value,
        flat_eigenvalues=c.witness.flat,
        flat_directions=c.flat,
        predicted_dL_dlambda=c.data_loss_slope,
        data_loss=float(problem.data_loss(link.theta)),
        mse=float(subset.mse.value(link.theta)),
        objective=float(problem.value(link.theta)),
        weight_l2=weight_norm(problem, link.theta),
        distance_from_previous=distance,
        hvps=c.products + link.polished.products,
        escapes=link.escapes,
        objective_before_escapes=link.objective_before_escapes,
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
