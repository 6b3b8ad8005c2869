"""The continuation stage's typed rows: one type per table it writes and one for its metrics
(``rows.Row``: ``to_row``/``from_row``, ``to_json``/``from_json``, unknown and missing keys
refused). The stage's computation (``study``) makes them; the report reads them back.

| type | file |
|---|---|
| ``ContinuationPoint`` | ``results/continuation_points.csv`` (polished and branch points) |
| ``BranchStep`` | ``results/continuation_branch.csv`` |
| ``Fold`` | ``results/continuation_folds.csv`` |
| ``StepVerdict`` | ``results/continuation_steps.csv`` |
| ``ContinuationSummary`` | ``metrics/continuation.json`` |

The words of the tables (point kinds, verdicts, jump kinds, fold sides, directions) are the
enums below, the one place they are spelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterable, Mapping

from ..curvature.classes import PointClass
from ..rows import Row, column


class PointKind(str, Enum):
    """Which point a row of the points table is."""

    POLISHED = "polished"  # an SGD point, polished and certified
    BRANCH_UP = "branch up"  # the end of the branch followed up from a step's start
    BRANCH_DOWN = "branch down"  # the end of the branch followed down from a step's end


class Direction(str, Enum):
    """Which way a branch was followed in lambda."""

    UP = "up"
    DOWN = "down"

    @property
    def point_kind(self) -> PointKind:
        """The kind of the point where a branch followed this way reaches the other lambda."""
        return PointKind.BRANCH_UP if self is Direction.UP else PointKind.BRANCH_DOWN


class Verdict(str, Enum):
    """A non-monotone step's curvature verdict (``study``'s docstring says when each applies)."""

    SADDLE_BRANCH = "saddle branch"
    BRANCH_JUMP = "branch jump"
    ONE_BRANCH = "one branch of minima"
    UNDECIDED = "undecided"


class JumpKind(str, Enum):
    """How a branch jump happened ("" when the verdict is not a jump)."""

    NONE = ""
    FOLD = "fold"
    SWITCH = "switch"


class FoldSide(str, Enum):
    """Which branch met the fold ("" when none did)."""

    NONE = ""
    UP = "up from the start"
    DOWN = "down from the end"


_POLISHED_ONLY = (
    "lbfgs_iterations",
    "newton_iterations",
    "escape_alpha",
    "escape_control_objective",
    "escape_objective",
    "escape_lowers",
)
_BRANCH_ONLY = ("step_from", "distance_to_polished")


@dataclass(frozen=True, kw_only=True)
class ContinuationPoint(Row):
    """A row of the points table: a polished SGD point, or the point where a step's branch
    reaches the step's other lambda, with its certificate (``certificate.certify``), its
    tangent's predicted dL/dlambda_sub and its losses on the subset problem. A polished point
    has its polish's iterations and the escape test (None: not a certified saddle); a branch
    point has the step it belongs to and its distance to the polished point there."""

    seed: int
    lam: float = column("lambda")  # the study's lambda
    lam_sub: float = column("lambda_sub")  # the subset problem's lambda
    kind: PointKind
    step_from: float | None = None  # branch points: the lambda_from of their step
    converged: bool
    lbfgs_iterations: int | None = None
    newton_iterations: int | None = None
    grad_norm: float
    newton_step_norm: float
    newton_residual: float
    newton_mse_change: float
    certified: bool
    bottom: float
    bottom_residual: float
    delta: float
    curvature_class: PointClass = column("class")  # the certificate's: minimum, saddle, degenerate
    predicted_dL_dlambda: float
    data_loss: float
    mse: float
    objective: float
    weight_l2: float
    hvps: int
    escape_alpha: float | None = None
    escape_control_objective: float | None = None
    escape_objective: float | None = None
    escape_lowers: bool | None = None
    distance_to_polished: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        polished = self.kind is PointKind.POLISHED
        wrong = [name for name in _BRANCH_ONLY if (getattr(self, name) is None) == (not polished)]
        wrong += [
            name
            for name in ("lbfgs_iterations", "newton_iterations")
            if (getattr(self, name) is None) == polished
        ]
        if not polished:
            wrong += [name for name in _POLISHED_ONLY[2:] if getattr(self, name) is not None]
        if wrong:
            raise ValueError(f"a {self.kind.value!r} point cannot have {wrong} set (or unset)")

    @property
    def certified_minimum(self) -> bool:
        """A converged, certified minimum: the only point a branch of minima is followed from."""
        return self.converged and self.certified and self.curvature_class is PointClass.MINIMUM

    def row_columns(self) -> tuple[str, ...]:
        other = _BRANCH_ONLY if self.kind is PointKind.POLISHED else _POLISHED_ONLY
        return tuple(c for c in self.columns() if c not in other)

    @classmethod
    def blank_columns(cls, row: Mapping[str, Any]) -> tuple[tuple[str, ...], frozenset[str]]:
        # the table holds both kinds, so a row has the other kind's columns, empty
        other = _BRANCH_ONLY if row.get("kind") == PointKind.POLISHED.value else _POLISHED_ONLY
        return tuple(c for c in cls.columns() if c not in other), frozenset(other)


@dataclass(frozen=True, kw_only=True)
class BranchStep(Row):
    """A row of the branch table: one accepted point of a followed branch (``branch.follow``),
    with the predicted and realised dL/dlambda_sub of the step that reached it."""

    seed: int
    step_from: float  # the lambda_from of the judged step
    direction: Direction
    lam: float = column("lambda")
    lam_sub: float = column("lambda_sub")
    data_loss: float
    grad_norm: float
    bottom: float
    bottom_residual: float
    predicted_dL_dlambda_sub: float
    realised_dL_dlambda_sub: float
    jump: float  # distance from the prediction
    barrier: float  # NaN at the branch's first point
    same_branch: bool


@dataclass(frozen=True, kw_only=True)
class Fold(Row):
    """A row of the folds table: where a followed branch ended, bracketed in lambda."""

    seed: int
    step_from: float
    direction: Direction
    lambda_low: float
    lambda_high: float
    jumped: bool  # the corrector converged beyond the fold
    reason: str  # "fold"
    evidence: str  # why the smallest step failed
    bottom_before: float
    bottom_residual_before: float


@dataclass(frozen=True, kw_only=True)
class StepVerdict(Row):
    """A row of the steps table: one non-monotone ascending step, what its polished ends and
    its branches (up from the start, down from the end) showed, and its verdict."""

    seed: int
    lambda_from: float
    lambda_to: float
    sgd_mse_change: float
    start_class: PointClass
    start_certified: bool
    end_class: PointClass

    end_certified: bool
    start_predicted_dL_dlambda: float
    polished_mse_change: float
    polished_data_loss_change: float
    drop_reproduced: bool
    up_followed: bool
    up_end_class: str  # "" where the branch did not reach lambda_to
    up_end_certified: bool
    up_data_loss_change: float
    up_other_on_branch: bool
    up_distance_to_other: float
    down_followed: bool
    down_end_class: str
    down_end_certified: bool
    down_data_loss_change: float
    down_other_on_branch: bool
    down_distance_to_other: float
    fold_side: FoldSide
    fold_low: float
    fold_high: float
    fold_evidence: str
    bottom_before_fold: float
    jump_kind: JumpKind
    switch_lowers: bool | None  # switch jumps only
    lemma_holds: bool | None  # where a branch of minima joins the two lambdas
    reason: str  # why undecided
    curvature_verdict: Verdict


@dataclass(frozen=True, kw_only=True)
class CertifiedClasses(Row):
    """Certified points per class."""

    minimum: int
    saddle: int
    degenerate: int

    @classmethod
    def count(cls, classes: Iterable[PointClass]) -> CertifiedClasses:
        classes = list(classes)
        return cls(
            minimum=classes.count(PointClass.MINIMUM),
            saddle=classes.count(PointClass.SADDLE),
            degenerate=classes.count(PointClass.DEGENERATE),
        )


@dataclass(frozen=True, kw_only=True)
class VerdictCounts(Row):
    """Non-monotone steps per verdict."""

    saddle_branch: int
    branch_jump: int
    one_branch_of_minima: int
    undecided: int

    @classmethod
    def count(cls, verdicts: Iterable[Verdict]) -> VerdictCounts:
        verdicts = list(verdicts)
        return cls(**{name: verdicts.count(v) for v, name in _VERDICT_FIELDS.items()})

    def of(self, verdict: Verdict) -> int:
        return getattr(self, _VERDICT_FIELDS[verdict])


_VERDICT_FIELDS = {
    Verdict.SADDLE_BRANCH: "saddle_branch",
    Verdict.BRANCH_JUMP: "branch_jump",
    Verdict.ONE_BRANCH: "one_branch_of_minima",
    Verdict.UNDECIDED: "undecided",
}


@dataclass(frozen=True, kw_only=True)
class JumpCounts(Row):
    """Branch jumps per kind, and the switches that lowered the data loss."""

    fold: int
    switch: int
    switch_lowering: int


@dataclass(frozen=True, kw_only=True)
class ContinuationSummary(Row):
    """``metrics/continuation.json``: the counts of the stage's tables."""

    n_sub: int
    points: int
    certified_points: int
    folds: int
    nonmonotone_steps: int
    undecided: int
    drops_reproduced: int
    escapes: int
    escapes_lowering: int
    branch_steps: int  # accepted steps (points after a branch's first)
    branch_steps_across_a_barrier: int
    classes: CertifiedClasses
    verdicts: VerdictCounts
    jumps: JumpCounts
