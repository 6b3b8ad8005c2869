"""The schedules of the lambda study, defined once: each a ``Schedule`` in the registry
``SCHEDULES`` (in order ascending, descending, cold), asked by every module that needs one.

Adding a schedule is a ``register`` call here (or in a test): the planner chains it from its
``direction`` and ``warm``, the params accept its name, the monotonicity steps and verdicts
count it, and the report draws it in its ``colour`` under its ``label``. The study's points
and chains are in ``study.schedules``, which re-exports this registry. This module imports
nothing of the project, so the params (``config``) can validate names against it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """One way of ordering the study's points; every module asks this registry about it."""

    name: str  # "ascending": the point keys' first part and the results' schedule column
    direction: int  # +1 up the grid, -1 down, 0 (cold: no chain)
    warm: bool  # each point starts from the previous point's weights
    label: str  # words for the report (its section heading)
    colour: str  # matplotlib colour used in every figure
    # the report's sentence about it: how it opens, and what a decrease of the MSE in lambda
    # order is in the schedule's own direction ("": the report's generic words)
    words: str = ""
    fall: str = ""

    def __post_init__(self) -> None:
        if self.direction not in (-1, 0, 1) or self.warm != (self.direction != 0):
            raise ValueError(
                f"schedule {self.name!r}: a warm schedule runs up (+1) or down (-1) "
                f"the grid, a cold one has direction 0 (got {self.direction}, "
                f"warm={self.warm})"
            )

    def order(self, size: int) -> list[int]:
        """The grid indices of one chain, in training order."""
        return list(range(size)) if self.direction > 0 else list(reversed(range(size)))


SCHEDULES: dict[str, Schedule] = {}


def register(s: Schedule) -> Schedule:
    """Add a schedule to the registry (after those already there); a name is defined once."""
    if SCHEDULES.get(s.name, s) != s:
        raise ValueError(f"schedule {s.name!r} is already registered as {SCHEDULES[s.name]}")
    SCHEDULES[s.name] = s
    return s


def schedule(name: str) -> Schedule:
    try:
        return SCHEDULES[name]
    except KeyError:
        raise KeyError(f"unknown schedule {name!r}; allowed: {list(SCHEDULES)}") from None


def chained() -> list[str]:
    """Names of the warm (chain) schedules, in registry order."""
    return [name for name, s in SCHEDULES.items() if s.warm]


def upward_chains() -> list[str]:
    """The warm schedules that run up the grid: the chains whose steps the continuation judges."""
    return [name for name, s in SCHEDULES.items() if s.warm and s.direction > 0]


def cold() -> list[str]:
    """Names of the cold schedules (every point from a fresh initialisation), in registry order."""
    return [name for name, s in SCHEDULES.items() if not s.warm]


register(
    Schedule(
        "ascending",
        +1,
        True,
        "λ continuation, ascending",
        "tab:blue",
        words="Along the warm-started ascending chains (λ rising from point to point)",
        fall="the in-sample MSE fell as λ rose",
    )
)
register(
    Schedule(
        "descending",
        -1,
        True,
        "λ continuation, descending",
        "tab:orange",
        words="Along the descending chains (λ falling from point to point)",
        fall="the in-sample MSE rose as λ fell",
    )
)
register(
    Schedule(
        "cold",
        0,
        False,
        "cold starts",
        "tab:green",
        words=(
            "Across the cold starts (a fresh initialisation at every λ: independent points, "
            "not a continuation)"
        ),
        fall="the in-sample MSE was lower at the larger of two neighbouring λ",
    )
)
