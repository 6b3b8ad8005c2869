"""The points of the lambda study and the chains that order them.

A point is one model trained at one lambda: (schedule, seed, grid index). Its weights
start from a fresh initialisation (seed) or, in a continuation chain, from the final
weights of the chain's previous point (its ``parent``).

The schedules are ``Schedule`` objects in the registry ``SCHEDULES`` (``l2path.schedules``,
re-exported here; a test may ``register`` another); the three of the study:

- ``ascending``:  lambda_0 < lambda_1 < ...; stage i starts from stage i-1. The chain may
  end early (the study stops a chain up the grid when its weights have collapsed).
- ``descending``: the same grid from the top down ("graduated optimization"); the first
  stage starts from a fresh initialisation.
- ``cold``:       every lambda from a fresh initialisation, one chain of one point each.

A *control* is the same-lambda twin of a warm-started chain point: when stage k+1 starts
from theta_k at lambda_{k+1}, its control continues theta_k at lambda_k for the same number
of epochs, in the same stack. The two differ only in lambda, so the control measures how
much of a step's change is continued optimisation (``controls``).
"""

from __future__ import annotations

from dataclasses import dataclass

# The registry lives in l2path/schedules.py (config validates names against it, and config must
# not import the study package, which imports config); it is re-exported here.
from ..schedules import SCHEDULES, Schedule, chained, cold, register, schedule

__all__ = [
    "SCHEDULES",
    "Point",
    "Schedule",
    "chain",
    "chained",
    "cold",
    "controls",
    "plan",
    "register",
    "schedule",
]


@dataclass(frozen=True)
class Point:
    schedule: str
    seed: int  # initialisation seed of the chain (or of the cold start)
    grid_index: int  # position of lambda in the ascending grid
    lam: float
    parent: str | None  # key of the point whose weights this one starts from; None = fresh
    control_of: str | None = None  # for a control: the key of the chain point it is the twin of

    @property
    def key(self) -> str:
        """A name that is also a relative path: ``ascending/seed0/lambda03``, and for the control
        of that point's step ``ascending/seed0/control03`` (trained at its parent's lambda)."""
        kind = "control" if self.control_of else "lambda"
        return f"{self.schedule}/seed{self.seed}/{kind}{self.grid_index:02d}"


def chain(name: str, seed: int, grid: list[float]) -> list[Point]:
    """The points of one continuation chain, in the order they are trained."""
    if not schedule(name).warm:
        raise ValueError(f"{name!r} is not a continuation schedule")
    points: list[Point] = []
    for index in schedule(name).order(len(grid)):
        parent = points[-1].key if points else None
        points.append(Point(name, seed, index, grid[index], parent))
    return points


def controls(chains: list[list[Point]]) -> dict[str, Point]:
    """The control of every warm-started chain point, by that point's key: same schedule,
    seed and grid index, the parent's lambda, started from the parent's weights."""
    lams = {p.key: p.lam for chain in chains for p in chain}
    return {
        p.key: Point(p.schedule, p.seed, p.grid_index, lams[p.parent], p.parent, control_of=p.key)
        for chain in chains
        for p in chain
        if p.parent is not None
    }


def plan(
    schedules: list[str], chain_seeds: list[int], cold_seeds: list[int], grid: list[float]
) -> list[list[Point]]:
    """Every chain of the study; a chain's points must be trained in order, chains are independent.

    Continuation chains come first (they are the critical path), in registry order, then the
    cold starts, ordered by lambda and seed.
    """
    unknown = set(schedules) - set(SCHEDULES)
    if unknown:
        raise ValueError(f"unknown schedule(s) {sorted(unknown)}; allowed: {list(SCHEDULES)}")
    chains = [
        chain(name, seed, grid) for name in chained() if name in schedules for seed in chain_seeds
    ]
    chains += [
        [Point(name, seed, index, lam, None)]
        for name in cold()
        if name in schedules
        for index, lam in enumerate(grid)
        for seed in cold_seeds
    ]
    return chains
