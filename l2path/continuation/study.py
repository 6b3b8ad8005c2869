"""Certified continuation tied to the SGD study: polish its ascending points, follow the branch
of minima through each judged step, and give every non-monotone ascending step a curvature
verdict. Its rows are the typed records of ``records``; ``setup`` builds its inputs from the
params and the study's tables.

**The problem** (docs/science.md, "Certified continuation"): J on the first ``n_sub`` training
images with lambda_sub = lambda * n_sub / n, so that lambda/n, the penalty's weight per image,
is the study's. Every number of this module belongs to that problem; the SGD changes it judges
belong to the full training set.

Per chain seed s, with the study's grid lambda_0 < lambda_1 < ...:

- **polished points** P(lambda_i): the SGD point of seed s at lambda_i, polished
  (``curvature.polish``) and certified (``curvature.certificate``). The points, then the steps,
  are independent of each other, so ``run`` spreads them over workers whatever their seed;
- **the branches of a judged step** lambda_k -> lambda_k+1: *up* from P(lambda_k), when it is a
  certified minimum, to lambda_k+1 (``branch.follow``); it ends at a fold, or reaches
  B(lambda_k+1), certified in turn. When that leaves the step undecided and P(lambda_k+1) is a
  certified minimum, *down* from P(lambda_k+1) to lambda_k the same way. A polished point is
  *on* a branch when ||P - B|| <= same_point_tol * (1 + ||B||). Each step restarts at its own
  SGD points, because SGD's points need not lie on one branch (measured: 25.6 apart at
  n_sub = 1000);
- **the verdict** (first that applies; ``judge_step``, from the ``BranchEvidence`` of each
  branch, its words ``records.Verdict``):
  *saddle branch*         P(lambda_k) a certified saddle whose tangent predicts dL/dlambda < 0;
  *branch jump*, fold     the branch up from P(lambda_k) ends at a fold in (lambda_k, lambda_k+1),
                          or the branch down from P(lambda_k+1) does (the end's branch of minima
                          is born there, so the start cannot be on it), bracketed within a
                          factor e^min_step; ``fold_side`` says which;
  *one branch of minima*  a branch reaches the other lambda at a certified minimum and the other
                          polished point is on it: the lemma says L cannot fall
                          (``lemma_holds`` checks it);
  *branch jump*, switch   the branch up reaches lambda_k+1 at a certified minimum, and
                          P(lambda_k+1) is a certified minimum off it: SGD moved to another
                          branch of minima (where H is nonsingular the branch through a point
                          is unique, so a point off it is on another); ``switch_lowers`` says
                          whether the move lowered the data loss, which is what a drop would need;
  *undecided*             otherwise, with the reason (a point that is not a certified minimum).

At a certified saddle among the polished points, the escape test (``curvature.escape``) says whether

leaving along negative curvature ends lower than an unperturbed control polish.

``drop_reproduced`` says whether the polished pair shows the drop at all (the SGD points are
not critical points, and the subset is not the full training set).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from ..curvature.certificate import certify
from ..curvature.classes import PointClass
from ..curvature.escape import escape
from ..curvature.polish import Polish, polish
from ..model.costs import get_cost
from ..objective import Objective
from .branch import Branch, Known, Settings, follow, tangent
from .records import (
    BranchStep,
    CertifiedClasses,
    ContinuationPoint,
    ContinuationSummary,
    Direction,
    Fold,
    FoldSide,
    JumpCounts,
    JumpKind,
    PointKind,
    StepVerdict,
    Verdict,
    VerdictCounts,
)


@dataclass(frozen=True)
class Continuation:
    """What the stage runs (``params.yaml`` section ``continuation``)."""

    n_sub: int
    step: float  # largest step in log lambda
    branch: Settings  # corrector, smallest step, jump tolerance, Lanczos settings
    # certified: the Newton step changes the MSE by < fraction * the smallest judged change
    fraction: float = 0.01
    same_point_tol: float = 1e-4


@dataclass(frozen=True)
class SGDPoint:
    seed: int
    lam: float  # the study's lambda (full training set)
    theta: torch.Tensor  # float64, ``Objective.flat`` order


@dataclass(frozen=True)
class Step:
    seed: int
    lam_from: float
    lam_to: float
    change: float  # the SGD study's in-sample MSE change (< 0)


@dataclass
class ContinuationResults:
    """The stage's four tables, filled by ``run`` (by workers, in any order: ``ordered``)."""

    points: list[ContinuationPoint] = field(default_factory=list)  # certified or not
    branch: list[BranchStep] = field(default_factory=list)  # every accepted continuation step
    folds: list[Fold] = field(default_factory=list)
    steps: list[StepVerdict] = field(default_factory=list)  # one per non-monotone step
    thetas: dict = field(default_factory=dict)  # (seed, lambda, kind) -> the point's theta (numpy)

    def ordered(self) -> ContinuationResults:
        """The tables in a fixed order, whatever order the workers finished in."""
        return ContinuationResults(
            points=sorted(
                self.points,
                key=lambda p: (
                    p.seed,
                    p.lam,
                    p.kind.value,
                    p.step_from if p.step_from is not None else 0,
                ),
            ),
            branch=sorted(
                self.branch, key=lambda b: (b.seed, b.lam, b.step_from, b.direction.value)
            ),
            folds=sorted(
                self.folds, key=lambda f: (f.seed, f.lambda_low, f.step_from, f.direction.value)
            ),
            steps=sorted(self.steps, key=lambda s: (s.seed, s.lambda_from)),
            thetas=self.thetas,
        )


class SubsetProblem:
    """J on the first n_sub images with lambda scaled by n_sub / n (see the module)."""

    def __init__(
        self, sizes: list[int], x: torch.Tensor, y: torch.Tensor, cost: str, n_full: int, n_sub: int
    ):
        if not 0 < n_sub <= len(x):
            raise ValueError(
                f"continuation.n_sub = {n_sub} must be in 1..{len(x)} (the training images)"
            )
        self.sizes, self.cost, self.ratio = list(sizes), get_cost(cost), n_sub / n_full
        self.x, self.y = x[:n_sub].to(torch.float64), y[:n_sub].to(torch.float64)
        self.mse = Objective(self.sizes, self.x, self.y, get_cost("quadratic"), 0.0)

    def at(self, lam: float) -> Objective:
        """The problem whose lambda corresponds to the study's ``lam``."""
        return Objective(self.sizes, self.x, self.y, self.cost, lam * self.ratio)


@dataclass
class PolishedPoint:
    """A polished or branch point: its row of the points table and its branch tangent."""

    theta: torch.Tensor
    row: ContinuationPoint
    direction: torch.Tensor  # the tangent dtheta/dlambda_sub at theta

    def known(self) -> Known:
        return Known(
            self.row.bottom, self.row.bottom_residual, self.direction, self.row.predicted_dL_dlambda
        )


@dataclass(frozen=True)
class FoldBracket:
    """Where a followed branch ended: a fold between two of the study's lambdas."""

    low: float
    high: float
    evidence: str  # why the smallest step failed
    bottom_before: float  # the bottom Ritz value at the branch's last point


@dataclass(frozen=True)
class BranchEnd:
    """A followed branch's point at the step's other lambda."""

    point: ContinuationPoint  # certified in turn
    other_on_branch: bool  # the other polished point lies on this branch
    data_loss_change: float  # along the branch, from lambda_from to lambda_to


@dataclass(frozen=True)
class BranchEvidence:
    """What following the branch through one end of a step found: nothing (not followed), a
    fold before the other lambda, or the branch's point there."""

    fold: FoldBracket | None = None
    end: BranchEnd | None = None

    def __post_init__(self) -> None:
        if self.fold is not None and self.end is not None:
            raise ValueError(
                "a followed branch ends at a fold or reaches the other lambda, not both"
            )

    @property
    def followed(self) -> bool:
        return self.fold is not None or self.end is not None


NOT_FOLLOWED = BranchEvidence()


def _describe(
    problem: Objective,
    mse: Objective,
    theta: torch.Tensor,
    smallest_change: float,
    config: Continuation,
) -> tuple[dict, torch.Tensor]:
    """Certificate, losses and the tangent's predicted dL/dlambda_sub (per unit of the subset
    problem's lambda), as ``ContinuationPoint`` fields, with the tangent itself."""
    c = certify(
        problem,
        mse,
        theta,
        smallest_change,
        config.fraction,
        config.branch.eig_tol,
        config.branch.eig_steps,
    )
    direction, slope = tangent(problem, theta, config.branch)
    return dict(
        grad_norm=c.grad_norm,
        newton_step_norm=c.step_norm,
        newton_residual=c.newton_residual,
        newton_mse_change=c.mse_change,
        certified=c.certified,
        bottom=c.bottom,
        bottom_residual=c.bottom_residual,
        delta=c.delta,
        curvature_class=c.curvature_class,
        predicted_dL_dlambda=slope,
        data_loss=float(problem.data_loss(theta)),
        mse=float(mse.value(theta)),
        objective=float(problem.value(theta)),
        weight_l2=float((theta * problem.weight_mask()).norm()),
        hvps=c.products,
    ), direction


def _branch_steps(
    seed: int, lam_from: float, direction: Direction, branch: Branch, ratio: float
) -> list[BranchStep]:
    return [
        BranchStep(
            seed=seed,
            step_from=lam_from,
            direction=direction,
            lam=p.lam / ratio,
            lam_sub=p.lam,
            data_loss=p.data_loss,
            grad_norm=p.grad_norm,
            bottom=p.bottom,
            bottom_residual=p.bottom_residual,
            predicted_dL_dlambda_sub=p.predicted_slope,
            realised_dL_dlambda_sub=p.realised_slope,
            jump=p.jump,
            barrier=p.barrier,
            same_branch=p.same_branch,
        )
        for p in branch.points
    ]


def run(
    subset: SubsetProblem,
    points: list[SGDPoint],
    steps: list[Step],
    config: Continuation,
    smallest_change: float,
    out: ContinuationResults,
    log=lambda message: None,
    map_=map,
) -> None:
    """Polish and certify every point, then follow the branches of every judged step whose two
    ends are among the points and give it its verdict (see the module). ``map_`` runs the
    independent pieces: a thread pool's ``map`` spreads them over workers, whatever their seed."""
    keys = [(p.seed, p.lam) for p in points]
    polished = dict(
        zip(
            keys, map_(lambda p: polish_point(subset, p, config, smallest_change, out, log), points)
        )
    )
    judged = [
        s for s in steps if (s.seed, s.lam_from) in polished and (s.seed, s.lam_to) in polished
    ]
    list(
        map_(
            lambda s: judge(
                subset,
                s,
                polished[(s.seed, s.lam_from)],
                polished[(s.seed, s.lam_to)],
                config,
                smallest_change,
                out,
                log,
            ),
            judged,
        )
    )


def polish_point(
    subset: SubsetProblem,
    point: SGDPoint,
    config: Continuation,
    smallest_change: float,
    out: ContinuationResults,
    log,
) -> PolishedPoint:
    """The SGD point polished, certified and, at a certified saddle, tested for escape."""
    problem = subset.at(point.lam)
    result = polish(problem, point.theta, config.branch.polish)
    described, direction = _describe(problem, subset.mse, result.theta, smallest_change, config)
    row = ContinuationPoint(
        seed=point.seed,
        lam=point.lam,
        lam_sub=problem.lam,
        kind=PointKind.POLISHED,
        converged=result.converged,
        lbfgs_iterations=result.lbfgs_iterations,
        newton_iterations=result.newton_iterations,
        **described,
    )
    row = escape_test(problem, result.theta, row, config)
    out.thetas[(point.seed, point.lam, PointKind.POLISHED.value)] = result.theta.cpu().numpy()
    out.points.append(row)
    log(
        f"seed {point.seed} lambda {point.lam:g}: polished ||grad J|| {row.grad_norm:.2e}, "
        f"{row.curvature_class}, certified {row.certified}"
    )
    return PolishedPoint(result.theta, row, direction)


def escape_test(
    problem: Objective, theta: torch.Tensor, point: ContinuationPoint, config: Continuation
) -> ContinuationPoint:
    """``point`` with the escape test (``escape``) at a certified saddle; unchanged elsewhere."""
    if not (point.certified and point.curvature_class is PointClass.SADDLE):
        return point
    result = escape(
        problem, theta, config.branch.polish, config.branch.eig_tol, config.branch.eig_steps
    )
    return replace(
        point,
        escape_alpha=result.alpha,
        escape_control_objective=result.control_objective,
        escape_objective=min(result.objectives),
        escape_lowers=result.lowers,
    )


def judge(
    subset: SubsetProblem,
    step: Step,
    start: PolishedPoint,
    end: PolishedPoint,
    config: Continuation,
    smallest_change: float,
    out: ContinuationResults,
    log,
) -> None:
    """Follow the step's branches, up from its start and, where that leaves it undecided, down
    from its end; append its verdict to ``out.steps``."""
    up = (
        _follow(subset, step, start, end, Direction.UP, config, smallest_change, out, log)
        if start.row.certified_minimum
        else NOT_FOLLOWED
    )
    down = NOT_FOLLOWED
    first = judge_step(step, start.row, end.row, up, down)
    if first.curvature_verdict is Verdict.UNDECIDED and end.row.certified_minimum:
        down = _follow(subset, step, end, start, Direction.DOWN, config, smallest_change, out, log)
    out.steps.append(judge_step(step, start.row, end.row, up, down))


def _follow(
    subset: SubsetProblem,
    step: Step,
    origin: PolishedPoint,
    other: PolishedPoint,
    direction: Direction,
    config: Continuation,
    smallest_change: float,
    out: ContinuationResults,
    log,
) -> BranchEvidence:
    """The branch through one polished end of the step (``origin``: the start going up, the end
    going down) followed to the step's other lambda: where it ends (a fold), or its point there,
    certified, and whether the other polished point is on it."""
    seed, up = step.seed, direction is Direction.UP
    lam_origin, lam_target = (step.lam_from, step.lam_to) if up else (step.lam_to, step.lam_from)
    branch = follow(
        subset.at(lam_origin),
        origin.theta,
        lam_target * subset.ratio,
        config.step,
        config.branch,
        origin.known(),
    )
    out.branch.extend(_branch_steps(seed, step.lam_from, direction, branch, subset.ratio))
    name = (
        f"seed {seed} step {step.lam_from:g} -> {step.lam_to:g}, {direction.value} from lambda "
        f"{lam_origin:g}"
    )
    last = branch.points[-1]
    if branch.fold is not None:
        low, high = (f / subset.ratio for f in branch.fold)
        out.folds.append(
            Fold(
                seed=seed,
                step_from=step.lam_from,
                direction=direction,
                lambda_low=low,
                lambda_high=high,
                jumped=branch.jumped_to is not None,
                reason="fold",
                evidence=branch.fold_evidence,
                bottom_before=last.bottom,
                bottom_residual_before=last.bottom_residual,
            )
        )
        log(f"{name}: fold in ({low:.4g}, {high:.4g})")
        return BranchEvidence(fold=FoldBracket(low, high, branch.fold_evidence, last.bottom))
    end_theta = torch.as_tensor(last.theta, device=subset.x.device)
    problem = subset.at(lam_target)
    described, _ = _describe(problem, subset.mse, end_theta, smallest_change, config)
    distance = float((other.theta - end_theta).norm())
    row = ContinuationPoint(
        seed=seed,
        lam=lam_target,
        lam_sub=problem.lam,
        kind=direction.point_kind,
        step_from=step.lam_from,
        converged=True,
        **described,
        distance_to_polished=distance,
    )
    out.points.append(row)
    out.thetas[(seed, lam_target, row.kind.value)] = end_theta.cpu().numpy()
    on_branch = distance <= config.same_point_tol * (1 + float(end_theta.norm()))
    log(
        f"{name}: branch point {row.curvature_class}, certified {row.certified}, the polished "
        f"point {'on' if on_branch else 'off'} it (distance {distance:.3g})"
    )
    change = row.data_loss - origin.row.data_loss
    return BranchEvidence(end=BranchEnd(row, on_branch, change if up else -change))


@dataclass(frozen=True)
class _Side:
    """A branch's columns of the steps table."""

    followed: bool
    end_class: str  # "" where the branch did not reach the other lambda
    end_certified: bool
    data_loss_change: float
    other_on_branch: bool
    distance_to_other: float

    @classmethod
    def of(cls, evidence: BranchEvidence) -> _Side:
        end = evidence.end
        if end is None:
            return cls(evidence.followed, "", False, math.nan, False, math.nan)
        return cls(
            True,
            end.point.curvature_class,
            end.point.certified,
            end.data_loss_change,
            end.other_on_branch,
            end.point.distance_to_polished,
        )


def judge_step(
    step: Step,
    start: ContinuationPoint,
    end: ContinuationPoint,
    up: BranchEvidence,
    down: BranchEvidence,
) -> StepVerdict:
    """The first verdict that applies (see the module), with the evidence behind it: ``start``
    and ``end`` are the polished points, ``up`` and ``down`` what following the branch from the
    start up and from the end down found (``NOT_FOLLOWED`` when it was not followed)."""
    u, d = _Side.of(up), _Side.of(down)
    row = StepVerdict(
        seed=step.seed,
        lambda_from=step.lam_from,
        lambda_to=step.lam_to,
        sgd_mse_change=step.change,
        start_class=start.curvature_class,
        start_certified=start.certified,
        end_class=end.curvature_class,
        end_certified=end.certified,
        start_predicted_dL_dlambda=start.predicted_dL_dlambda,
        polished_mse_change=end.mse - start.mse,
        polished_data_loss_change=end.data_loss - start.data_loss,
        # does the subset problem's polished pair show the drop?
        drop_reproduced=end.mse < start.mse,
        up_followed=u.followed,
        up_end_class=u.end_class,
        up_end_certified=u.end_certified,
        up_data_loss_change=u.data_loss_change,
        up_other_on_branch=u.other_on_branch,
        up_distance_to_other=u.distance_to_other,
        down_followed=d.followed,
        down_end_class=d.end_class,
        down_end_certified=d.end_certified,
        down_data_loss_change=d.data_loss_change,
        down_other_on_branch=d.other_on_branch,
        down_distance_to_other=d.distance_to_other,
        fold_side=FoldSide.NONE,
        fold_low=math.nan,
        fold_high=math.nan,
        fold_evidence="",
        bottom_before_fold=math.nan,
        jump_kind=JumpKind.NONE,
        switch_lowers=None,
        lemma_holds=None,
        reason="",
        curvature_verdict=Verdict.UNDECIDED,
    )
    if (
        start.certified
        and start.curvature_class is PointClass.SADDLE
        and start.predicted_dL_dlambda < 0
    ):
        return replace(row, curvature_verdict=Verdict.SADDLE_BRANCH)
    for side, evidence in ((FoldSide.UP, up), (FoldSide.DOWN, down)):
        if evidence.fold is not None:
            fold = evidence.fold
            return replace(
                row,
                curvature_verdict=Verdict.BRANCH_JUMP,
                jump_kind=JumpKind.FOLD,
                fold_side=side,
                fold_low=fold.low,
                fold_high=fold.high,
                fold_evidence=fold.evidence,
                bottom_before_fold=fold.bottom_before,
            )
        if (
            evidence.end is not None
            and evidence.end.other_on_branch
            and evidence.end.point.certified_minimum
        ):
            return replace(
                row,
                curvature_verdict=Verdict.ONE_BRANCH,
                lemma_holds=evidence.end.data_loss_change >= 0,
            )
    if up.end is not None and up.end.point.certified_minimum and end.certified_minimum:
        # the end is off the start's branch, which goes on to lambda_to
        return replace(
            row,
            curvature_verdict=Verdict.BRANCH_JUMP,
            jump_kind=JumpKind.SWITCH,
            switch_lowers=end.data_loss < up.end.point.data_loss,
            lemma_holds=up.end.data_loss_change >= 0,
        )
    return replace(row, reason=_why_undecided(start, end, up, down))


def _why_undecided(
    start: ContinuationPoint, end: ContinuationPoint, up: BranchEvidence, down: BranchEvidence
) -> str:
    if not start.certified_minimum and not end.certified_minimum:
        return f"{_why_not_judged('start', start)}; {_why_not_judged('end', end)}"
    for name, evidence in (("up", up), ("down", down)):
        # a fold would have made the step a branch jump: a followed branch here reached its end
        if evidence.end is not None and not evidence.end.point.certified_minimum:
            return _why_not_judged(f"branch {name}'s end", evidence.end.point)
    if not start.certified_minimum:
        return f"{_why_not_judged('start', start)}, and the start is off the end's branch of minima"
    return f"{_why_not_judged('end', end)}, and the end is off the start's branch of minima"


def _why_not_judged(name: str, point: ContinuationPoint) -> str:
    if not point.converged:
        return (
            f"the polish of the {name} point did not converge (||grad J|| = {point.grad_norm:.2e})"
        )
    if not point.certified:
        return (
            f"the {name} point is not certified (Newton step changes the MSE by "
            f"{point.newton_mse_change:.2e}, residual {point.newton_residual:.1e})"
        )
    if point.curvature_class is PointClass.DEGENERATE:
        return (
            f"the {name} point is degenerate (bottom {point.bottom:.2e}, delta {point.delta:.1e})"
        )
    return f"the {name} point is a certified saddle whose predicted dL/dlambda is not negative"


def summary(results: ContinuationResults, n_sub: int) -> ContinuationSummary:
    """metrics/continuation.json."""
    certified = [p for p in results.points if p.certified]
    verdicts = [s.curvature_verdict for s in results.steps]
    switches = [s for s in results.steps if s.jump_kind is JumpKind.SWITCH]
    escapes = [p for p in results.points if p.escape_lowers is not None]
    return ContinuationSummary(
        n_sub=n_sub,
        points=len(results.points),
        certified_points=len(certified),
        folds=sum(1 for f in results.folds if f.reason == "fold"),
        nonmonotone_steps=len(results.steps),
        undecided=verdicts.count(Verdict.UNDECIDED),
        drops_reproduced=sum(1 for s in results.steps if s.drop_reproduced),
        escapes=len(escapes),
        escapes_lowering=sum(1 for p in escapes if p.escape_lowers),
        branch_steps=sum(1 for b in results.branch if not math.isnan(b.barrier)),
        branch_steps_across_a_barrier=sum(1 for b in results.branch if b.barrier > 0),
        classes=CertifiedClasses.count(p.curvature_class for p in certified),
        verdicts=VerdictCounts.count(verdicts),
        jumps=JumpCounts(
            fold=sum(1 for s in results.steps if s.jump_kind is JumpKind.FOLD),
            switch=len(switches),
            switch_lowering=sum(1 for s in switches if s.switch_lowers),
        ),
    )


def settings_from(config) -> Continuation:
    """``Continuation`` from the params section ``continuation`` (``config.Continuation``)."""
    polish_settings = Polish(
        tol=config.grad_tol,
        lbfgs_tol=config.lbfgs_tol,
        lbfgs_iterations=config.lbfgs_iterations,
        newton_iterations=config.newton_iterations,
        cg_iterations=config.cg_iterations,
    )
    branch = Settings(
        polish=polish_settings,
        min_step=config.min_step_log2 * math.log(2),
        jump_tol=config.jump_tol,
        eig_tol=config.eig_tol,
        eig_steps=config.eig_steps,
        corrector_iterations=config.corrector_iterations,
        minres_iterations=config.minres_iterations,
    )
    return Continuation(
        config.n_sub, config.step_log2 * math.log(2), branch, config.fraction, config.same_point_tol
    )
