"""The plan of the lambda study: its chains, its points and each point's fingerprint.

A point's *fingerprint* is a hash of everything that determines its numbers: the model
spec and initialiser, the SGD settings, the training-set size and the data's md5, the
point's key and lambda, its parent's fingerprint, which of the parent's weights it starts
from, and its polish settings if it is polished. A stored point whose fingerprint differs
from the plan's is stale (``store.PointStore.load`` rejects it) and is trained again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Sequence

from ..config import LambdaStudy
from .grid import lambda_grid
from .schedules import Point, controls, plan


def study_chains(config: LambdaStudy) -> list[list[Point]]:
    """Every chain of the study, in plan order (``schedules.plan`` on the study's grid)."""
    grid = lambda_grid(config.grid.lambda_start, config.grid.factor, config.grid.lambda_max)
    return plan(config.schedules, config.chain_seeds, config.cold_seeds, grid)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class StudyPlan:
    """The chains to train (all of the study's, or a shard's: ``chain_ids``), with fingerprints."""

    config: LambdaStudy
    chains: list[list[Point]]
    n_train: int
    data_md5: str
    points: dict[str, Point] = field(init=False, repr=False)  # every chain point by key
    controls: dict[str, Point] = field(init=False, repr=False)  # chain point key -> its control
    _fingerprints: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.points = {p.key: p for chain in self.chains for p in chain}
        self.controls = controls(self.chains) if self.config.controls else {}

    @classmethod
    def build(
        cls,
        config: LambdaStudy,
        n_train: int,
        data_md5: str,
        chain_ids: Sequence[int] | None = None,
    ) -> "StudyPlan":
        every_chain = study_chains(config)
        chains = every_chain if chain_ids is None else [every_chain[i] for i in chain_ids]
        return cls(config, chains, n_train, data_md5)

    def is_polished(self, point: Point) -> bool:
        return point.schedule in self.config.polish.schedules

    def starts_from_polished(self, point: Point) -> bool:
        """Whether a warm-started point starts from its parent's polished weights."""
        parent = self.points.get(point.parent) if point.parent else None
        return (
            parent is not None
            and self.is_polished(parent)
            and self.config.polish.continue_from == "polished"
        )

    def fingerprint(self, point: Point) -> str:
        if point.key not in self._fingerprints:
            config = self.config
            parent = self.points[point.parent] if point.parent else None
            recipe = {
                "model": {**config.model.model_dump(), "init": config.init},
                "sgd": config.sgd.model_dump(),
                "control_of": self.fingerprint(self.points[point.control_of])
                if point.control_of
                else None,
                "n_train": self.n_train,
                "data_md5": self.data_md5,
                "key": point.key,
                "lambda": point.lam,
                "parent": self.fingerprint(parent) if parent else None,
                "start_from": config.polish.continue_from
                if parent and self.is_polished(parent)
                else "sgd",
                "polish": (
                    {"grad_tol": config.polish.grad_tol, "max_iter": config.polish.max_iter}
                    if self.is_polished(point)
                    else None
                ),
            }
            self._fingerprints[point.key] = _digest(recipe)
        return self._fingerprints[point.key]
