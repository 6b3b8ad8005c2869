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
- **crevasses**: minima at one lambda distinct by J (values more than ``SAME_J`` apart,
  relative); permuted hidden units give the same J, so they count once. Their MSE spread
  is the largest difference of in-sample MSE among them.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

from .records import ChainDirection, ChainPoint

SAME_J = 1e-8  # relative: two minima whose J differ by less are one (J is exact to ~1e-14)


@dataclass(frozen=True)
class MinimaAtLambda:
    lam: float
    minima: int  # distinct by J
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


def distinct(values: list[float]) -> list[int]:
    """Indices of ``values`` that start a new group of equal values (relative ``SAME_J``), in
    increasing order of value."""
    order = sorted(range(len(values)), key=values.__getitem__)
    kept: list[int] = []
    for k in order:
        if not kept or values[k] - values[kept[-1]] > SAME_J * abs(values[kept[-1]]):
            kept.append(k)
    return kept


def minima_by_lambda(points: list[ChainPoint]) -> list[MinimaAtLambda]:
    """Per lambda with any minimum found, in increasing lambda (see the module)."""
    found = sorted((p for p in points if p.minimum_found), key=lambda p: p.lam)
    rows = []
    for lam, group in groupby(found, key=lambda p: p.lam):
        at = list(group)
        kept = [at[k] for k in distinct([p.objective for p in at])]
        mses = [p.mse for p in kept]
        rows.append(
            MinimaAtLambda(
                lam,
                len(kept),
                kept[0].objective,
                kept[0].mse,
                kept[0].direction,
                max(mses) - min(mses),
            )
        )
    return rows


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
