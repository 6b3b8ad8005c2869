"""How far the study has come: finished points, where each chain stands, and the next round.

``Progress.resume`` takes every finished point from the store, chain by chain (a chain's
points are trained in order). A point whose SGD phase was saved but not its final record
(a study killed while finishing a round) is kept as *pending*: the next round finishes
those points alone, so every round is the same as in an uninterrupted run (the width of a
stack changes the rounding of its matrix products).

A chain ends at a diverged point, at a point of a chain up the grid (ascending) whose
weights collapsed (||w|| of the weights the chain goes on from, SGD or polished, below
collapse_ratio * ||w at the chain's fresh initialisation||, judged with the current params so
a changed ratio takes effect on resume), or at its last point.

Controls (``schedules.controls``) ride in the round of their chain point and stop with it.
A control whose point was finished without it (a kill between the two) is an *orphan*: it
trains in the next round for its point's recorded number of epochs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .planner import StudyPlan
from .records import PointRecord, SGDPhase
from .schedules import Point, schedule
from .store import PointStore


def continued_weight_l2(record: PointRecord, continue_from: str) -> float:
    """||w|| of the weights the chain's next point starts from: the polished ones only when
    ``polish.continue_from`` is "polished" (a polish that finds the trivial minimum w = 0 ends
    the chain only if the chain would go on from there)."""
    weights = record.final if continue_from == "polished" and record.polished else record.sgd
    return weights.weight_l2


def is_collapsed(record: PointRecord, collapse_ratio: float, continue_from: str) -> bool:
    """Only a chain up the grid collapses: its lambda keeps rising past the weights' end."""
    return (
        schedule(record.schedule).direction > 0
        and not record.diverged
        and continued_weight_l2(record, continue_from)
        < collapse_ratio * record.chain_start_weight_l2
    )


@dataclass
class Progress:
    plan: StudyPlan
    records: dict[str, PointRecord] = field(default_factory=dict)
    pending: dict[str, SGDPhase] = field(default_factory=dict)
    position: list[int] = field(default_factory=list)
    ended: list[bool] = field(default_factory=list)
    resumed: int = 0  # finished points (controls included) found in the store
    orphans: list[Point] = field(
        default_factory=list
    )  # controls whose chain point finished without them

    def __post_init__(self) -> None:
        self.position = self.position or [0] * len(self.plan.chains)
        self.ended = self.ended or [False] * len(self.plan.chains)

    @classmethod
    def resume(cls, plan: StudyPlan, store: PointStore) -> "Progress":
        progress = cls(plan)
        for c, chain in enumerate(plan.chains):
            while not progress.ended[c] and progress.position[c] < len(chain):
                point = chain[progress.position[c]]
                record = store.load(point.key, plan.fingerprint(point))
                if record is None:
                    phase = store.load_phase(point.key, plan.fingerprint(point))
                    if phase is not None:
                        progress.pending[point.key] = phase
                    break
                progress.accept(record)
                progress.resumed += 1
                progress._resume_control(plan, store, point)
        return progress

    def _resume_control(self, plan: StudyPlan, store: PointStore, point: Point) -> None:
        control = plan.controls.get(point.key)
        if control is None:
            return
        record = store.load(control.key, plan.fingerprint(control))
        phase = None if record else store.load_phase(control.key, plan.fingerprint(control))
        if record is not None:
            self.records[control.key] = record
            self.resumed += 1
        elif phase is not None:
            self.pending[control.key] = phase
        else:
            self.orphans.append(control)

    def _chain_of(self, key: str) -> int:
        return next(
            c
            for c, chain in enumerate(self.plan.chains)
            if not self.ended[c] and chain[self.position[c]].key == key
        )

    def ends_chain(self, record: PointRecord) -> bool:
        config = self.plan.config
        return record.diverged or is_collapsed(
            record, config.collapse_ratio, config.polish.continue_from
        )

    def accept(self, record: PointRecord) -> None:
        """A point of a live chain is finished: the chain moves on (or ends). A control is kept."""
        if record.control_of is not None:
            self.records[record.key] = record
            self.orphans = [o for o in self.orphans if o.key != record.key]
            return
        c = self._chain_of(record.key)
        self.records[record.key] = record
        self.position[c] += 1
        self.ended[c] = self.ends_chain(record) or self.position[c] == len(self.plan.chains[c])

    def update(self, record: PointRecord) -> None:
        """Replace a finished point's record (e.g. once its tracking run id is known)."""
        self.records[record.key] = record

    def next_round(self) -> list[Point]:
        """The points trained side by side next, at most ``stack_width``.

        The next point of every live continuation chain, plus cold starts spread evenly
        over the rounds the chains need (a round's time is mostly per-step overhead, so a
        few more models in it cost little, while a round of cold starts alone would add
        its own time). Pending points, if any, form a round of their own.
        """
        live = [c for c in range(len(self.plan.chains)) if not self.ended[c]]
        batch = [self.plan.chains[c][self.position[c]] for c in live]
        if self.pending:
            controls = [c for c in self.plan.controls.values() if c.key in self.pending]
            return [point for point in batch if point.key in self.pending] + controls
        if self.orphans:
            return list(self.orphans)
        chained = [p for p in batch if schedule(p.schedule).warm]
        cold = [p for p in batch if not schedule(p.schedule).warm]
        rounds_left = max(
            (
                len(self.plan.chains[c]) - self.position[c]
                for c in live
                if schedule(self.plan.chains[c][0].schedule).warm
            ),
            default=0,
        )
        share = math.ceil(len(cold) / rounds_left) if rounds_left else len(cold)
        chosen = chained + cold[:share]
        controls = self.plan.controls
        while (
            len(chosen) > 1
            and len(chosen) + sum(p.key in controls for p in chosen) > self.plan.config.stack_width
        ):
            chosen.pop()  # a point's control rides in its point's round
        return chosen + [controls[p.key] for p in chosen if p.key in controls]

    def results(self) -> list[PointRecord]:
        """Finished points in plan order, ``collapsed`` judged with the current params."""
        ratio, continue_from = (
            self.plan.config.collapse_ratio,
            self.plan.config.polish.continue_from,
        )
        return [
            self.records[p.key].replace(
                collapsed=is_collapsed(self.records[p.key], ratio, continue_from)
            )
            for chain in self.plan.chains
            for p in chain
            if p.key in self.records
        ]

    def control_results(self) -> list[PointRecord]:
        """Finished controls, in the plan order of their chain points."""
        return [self.records[c.key] for c in self.plan.controls.values() if c.key in self.records]

    def parent_record(self, point: Point) -> PointRecord | None:
        return self.records[point.parent] if point.parent else None
