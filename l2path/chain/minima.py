"""The question's answers across the converged directions, from the chain points' table.

Only points with no proved negative curvature count (``ChainPoint.minimum_found``: a proved
minimum, or degenerate with no eigenvalue below -delta). All are minima of the same problem
(J on the chain's images at lambda), whichever seed or direction found them.

- **graduated optimisation** (Hazan, Levy and Shalev-Shwartz): at each lambda a seed's
  ascending and descending chains both reached, is the descending (graduated) minimum's J lower
  than the ascending one's by more than rounding (relative ``SAME_J``), and by how much:
  (J_up - J_down) / |J_up|.
- **the best found**: at each lambda the minimum of lowest J; for global minima the in-sample
  MSE is non-decreasing in lambda, so a *drop* of the best found's MSE between neighbouring
  lambdas (beyond rounding) says a better minimum exists at one of them.
- **crevasses**: distinct minima at one lambda: J more than ``SAME_J`` apart (relative), or
  the same J at points more than ``SAME_THETA`` (1 + ||theta||) apart modulo the network's
  symmetries (``chain.alignment``: permuted hidden units and dead units' biases are one
  minimum). Their MSE spread is the largest difference of in-sample MSE among them.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import Callable

import numpy as np

from .alignment import aligned_distance
from .records import ChainDirection, ChainPoint

SAME_J = 1e-8  # relative: two minima whose J differ by less are one (J is exact to ~1e-14)
SAME_THETA = (
    1e-4  # relative to 1 + ||theta||: the chains' same-point tolerance (chain.same_point_tol)
)


@dataclass(frozen=True)
class MinimaAtLambda:
    lam: float
    minima: int  # distinct by J and by aligned distance
    apart_at_same_objective: int  # of those, minima whose J equals another's (same J, apart)
    best_objective: float
    best_mse: float
    best_direction: ChainDirection
    mse_spread: float  # max - min in-sample MSE over the distinct minima


@dataclass(frozen=True)
class GraduatedComparison:
    seed: int
    lam: float
    objective_up: float
    objective_down: float

    @property
    def gain(self) -> float:
        """(J_up - J_down) / |J_up|: > 0 where graduated optimisation found the lower minimum."""
        return (self.objective_up - self.objective_down) / abs(self.objective_up)

    @property
    def lower(self) -> bool:
        return self.gain > SAME_J


def same_objective(a: float, b: float) -> bool:
    return abs(a - b) <= SAME_J * min(abs(a), abs(b))


def distinct(
    values: list[float], same_point: Callable[[int, int], bool] | None = None
) -> list[int]:
    """Indices of ``values`` that are not equal (relative ``SAME_J``) to the value of an earlier
    kept index that ``same_point`` also calls the same (default: any), in increasing value."""
    kept: list[int] = []
    for k in sorted(range(len(values)), key=values.__getitem__):
        if not any(
            same_objective(values[k], values[i]) and (same_point is None or same_point(i, k))
            for i in kept
        ):
            kept.append(k)
    return kept


ThetaOf = Callable[[ChainPoint], np.ndarray]  # a point's theta, (p,)


def minima_by_lambda(
    points: list[ChainPoint], theta_of: ThetaOf | None = None, sizes: list[int] | None = None
) -> list[MinimaAtLambda]:
    """Per lambda with any minimum found, in increasing lambda (see the module); without
    ``theta_of`` (and the network's ``sizes``), distinct by J alone."""
    found = sorted((p for p in points if p.minimum_found), key=lambda p: p.lam)
    rows = []
    for lam, group in groupby(found, key=lambda p: p.lam):
        at = list(group)
        same = None if theta_of is None else _same_point(at, theta_of, sizes)
        kept = [at[k] for k in distinct([p.objective for p in at], same)]
        by_objective = len(distinct([p.objective for p in kept]))
        mses = [p.mse for p in kept]
        rows.append(
            MinimaAtLambda(
                lam,
                len(kept),
                len(kept) - by_objective,
                kept[0].objective,
                kept[0].mse,
                kept[0].direction,
                max(mses) - min(mses),
            )
        )
    return rows


def _same_point(at: list[ChainPoint], theta_of: ThetaOf, sizes) -> Callable[[int, int], bool]:
    thetas = [theta_of(p) for p in at]

    def same(i: int, k: int) -> bool:
        scale = 1 + max(np.linalg.norm(thetas[i]), np.linalg.norm(thetas[k]))
        return aligned_distance(thetas[i], thetas[k], sizes) <= SAME_THETA * scale

    return same


def best_found_drops(rows: list[MinimaAtLambda]) -> int:
    """Neighbouring lambdas of ``rows`` where the best found's MSE fell beyond rounding."""
    return sum(b.best_mse < a.best_mse - SAME_J * abs(a.best_mse) for a, b in zip(rows, rows[1:]))


def graduated(points: list[ChainPoint]) -> list[GraduatedComparison]:
    """Every (seed, lambda) with an ascending and a descending minimum found."""
    up = {
        (p.seed, p.lam): p for p in points if p.direction is ChainDirection.UP and p.minimum_found
    }
    return [
        GraduatedComparison(p.seed, p.lam, up[(p.seed, p.lam)].objective, p.objective)
        for p in points
        if p.direction is ChainDirection.DOWN and p.minimum_found and (p.seed, p.lam) in up
    ]
