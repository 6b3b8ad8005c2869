"""Certified continuation tied to the SGD study: polish its ascending points, follow the branch
of minima through each judged step, and give every non-monotone ascending step a curvature verdict.

**The problem** (docs/science.md, "Certified continuation"): J on the first ``n_sub`` training
images with lambda_sub = lambda * n_sub / n, so that lambda/n, the penalty's weight per image,
is the study's. Every number of this module belongs to that problem; the SGD changes it judges
belong to the full training set.

Per chain seed s, with the study's grid lambda_0 < lambda_1 < ...:

- **polished points** P(lambda_i): the SGD point of seed s at lambda_i, polished
  (``corrector.polish``) and certified (``certificate.certify``). The points, then the steps,
  are independent of each other, so ``run`` spreads them over workers whatever their seed;
- **the branches of a judged step** lambda_k -> lambda_k+1: *up* from P(lambda_k), when it is a
  certified minimum, to lambda_k+1 (``branch.follow``); it ends at a fold, or reaches
  B(lambda_k+1), certified in turn. When that leaves the step undecided and P(lambda_k+1) is a
  certified minimum, *down* from P(lambda_k+1) to lambda_k the same way. A polished point is
  *on* a branch when ||P - B|| <= same_point_tol * (1 + ||B||). Each step restarts at its own
  SGD points, because SGD's points need not lie on one branch (measured: 25.6 apart at
  n_sub = 1000);
- **the verdict** (first that applies):
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
                          is unique, so a point off it is on another); ``switch_lowers`` says whether the move lowered the
                          data loss, which is what a drop would need;
  *undecided*             otherwise, with the reason (a point that is not a certified minimum).

At a certified saddle among the polished points, the escape test (``escape``) says whether
leaving along negative curvature ends lower than an unperturbed control polish.

``drop_reproduced`` says whether the polished pair shows the drop at all (the SGD points are
not critical points, and the subset is not the full training set).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..curvature.hessian import Objective
from ..model.costs import get_cost
from .branch import Branch, Known, NetworkProblem, Settings, follow, tangent
from .certificate import certify
from .corrector import Polish, polish
from .escape import escape

VERDICTS = ("saddle branch", "branch jump", "one branch of minima", "undecided")


@dataclass(frozen=True)
class Continuation:
    """What the stage runs (``params.yaml`` section ``continuation``)."""

    n_sub: int
    step: float               # largest step in log lambda
    branch: Settings           # corrector, smallest step, jump tolerance, Lanczos settings
    fraction: float = 0.01     # certified: the Newton step changes the MSE by < fraction * smallest judged change
    same_point_tol: float = 1e-4


@dataclass(frozen=True)
class SGDPoint:
    seed: int
    lam: float                 # the study's lambda (full training set)
    theta: torch.Tensor        # float64, ``Objective.flat`` order


@dataclass(frozen=True)
class Step:
    seed: int
    lam_from: float
    lam_to: float
    change: float              # the SGD study's in-sample MSE change (< 0)


@dataclass
class ContinuationResults:
    points: list[dict] = field(default_factory=list)   # polished and branch points, certified or not
    branch: list[dict] = field(default_factory=list)   # every accepted continuation step (predicted and realised slope)
    folds: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)    # one row per non-monotone step, with its verdict
    thetas: dict = field(default_factory=dict)          # (seed, lambda, kind) -> the point's parameters (numpy)


class SubsetProblem:
    """J on the first n_sub images with lambda scaled by n_sub / n (see the module)."""

    def __init__(self, sizes: list[int], x: torch.Tensor, y: torch.Tensor, cost: str, n_full: int, n_sub: int):
        if not 0 < n_sub <= len(x):
            raise ValueError(f"continuation.n_sub = {n_sub} must be in 1..{len(x)} (the training images)")
        self.sizes, self.cost, self.ratio = list(sizes), get_cost(cost), n_sub / n_full
        self.x, self.y = x[:n_sub].to(torch.float64), y[:n_sub].to(torch.float64)
        self.mse = Objective(self.sizes, self.x, self.y, get_cost("quadratic"), 0.0)

    def at(self, lam: float) -> NetworkProblem:
        """The problem whose lambda corresponds to the study's ``lam``."""
        return NetworkProblem(Objective(self.sizes, self.x, self.y, self.cost, lam * self.ratio))


@dataclass
class PolishedPoint:
    """A polished or branch point with its certificate row and its branch tangent."""

    theta: torch.Tensor
    row: dict                  # its row of the points table (``_describe``)
    direction: torch.Tensor    # the tangent dtheta/dlambda_sub at theta

    def known(self) -> Known:
        return Known(self.row["bottom"], self.row["bottom_residual"], self.direction, self.row["predicted_dL_dlambda"])


def _describe(problem: NetworkProblem, mse: Objective, theta: torch.Tensor, smallest_change: float,
              config: Continuation) -> tuple[dict, torch.Tensor]:
    """Certificate, losses and the tangent's predicted dL/dlambda_sub (per unit of the subset
    problem's lambda), with the tangent itself."""
    c = certify(problem.objective, mse, theta, smallest_change, config.fraction, config.branch.eig_tol,
                config.branch.eig_steps)
    direction, slope = tangent(problem, theta, config.branch)
    return {"grad_norm": c.grad_norm, "newton_step_norm": c.step_norm, "newton_residual": c.newton_residual,
            "newton_mse_change": c.mse_change, "certified": c.certified, "bottom": c.bottom,
            "bottom_residual": c.bottom_residual, "delta": c.delta, "class": c.curvature_class,
            "predicted_dL_dlambda": slope, "data_loss": float(problem.data_loss(theta)),
            "mse": float(mse.value(theta)), "objective": float(problem.value(theta)),
            "weight_l2": float((theta * problem.weight_mask()).norm()), "hvps": c.products}, direction


def _branch_rows(seed: int, lam_from: float, direction: str, branch: Branch, ratio: float) -> list[dict]:
    return [{"seed": seed, "step_from": lam_from, "direction": direction, "lambda": p.lam / ratio, "lambda_sub": p.lam,
             "data_loss": p.data_loss, "grad_norm": p.grad_norm, "bottom": p.bottom,
             "bottom_residual": p.bottom_residual, "predicted_dL_dlambda_sub": p.predicted_slope,
             "realised_dL_dlambda_sub": p.realised_slope, "jump": p.jump, "barrier": p.barrier,
             "same_branch": p.same_branch} for p in branch.points]


NOT_FOLLOWED = {"followed": False}


def run(subset: SubsetProblem, points: list[SGDPoint], steps: list[Step], config: Continuation,
        smallest_change: float, out: ContinuationResults, log=lambda message: None, map_=map) -> None:
    """Polish and certify every point, then follow the branches of every judged step whose two
    ends are among the points and give it its verdict (see the module). ``map_`` runs the
    independent pieces: a thread pool's ``map`` spreads them over workers, whatever their seed."""
    keys = [(p.seed, p.lam) for p in points]
    polished = dict(zip(keys, map_(lambda p: polish_point(subset, p, config, smallest_change, out, log), points)))
    judged = [s for s in steps if (s.seed, s.lam_from) in polished and (s.seed, s.lam_to) in polished]
    list(map_(lambda s: judge(subset, s, polished[(s.seed, s.lam_from)], polished[(s.seed, s.lam_to)], config,
                              smallest_change, out, log), judged))


def polish_point(subset: SubsetProblem, point: SGDPoint, config: Continuation, smallest_change: float,
                 out: ContinuationResults, log) -> PolishedPoint:
    """The SGD point polished, certified and, at a certified saddle, tested for escape."""
    problem = subset.at(point.lam)
    result = polish(problem, point.theta, config.branch.polish)
    described, direction = _describe(problem, subset.mse, result.theta, smallest_change, config)
    row = {"seed": point.seed, "lambda": point.lam, "lambda_sub": problem.lam, "kind": "polished",
           "converged": result.converged, "lbfgs_iterations": result.lbfgs_iterations,
           "newton_iterations": result.newton_iterations, **described}
    row.update(escape_columns(problem, result.theta, row, config))
    out.thetas[(point.seed, point.lam, "polished")] = result.theta.cpu().numpy()
    out.points.append(row)
    log(f"seed {point.seed} lambda {point.lam:g}: polished ||grad J|| {row['grad_norm']:.2e}, {row['class']}, "
        f"certified {row['certified']}")
    return PolishedPoint(result.theta, row, direction)


def escape_columns(problem: NetworkProblem, theta: torch.Tensor, row: dict, config: Continuation) -> dict:
    """The escape test (``escape``) at a certified saddle; NaN elsewhere."""
    if not (row["certified"] and row["class"] == "saddle"):
        return {"escape_alpha": math.nan, "escape_control_objective": math.nan, "escape_objective": math.nan,
                "escape_lowers": math.nan}
    result = escape(problem, theta, config.branch.polish, config.branch.eig_tol, config.branch.eig_steps)
    return {"escape_alpha": result.alpha, "escape_control_objective": result.control_objective,
            "escape_objective": min(result.objectives), "escape_lowers": result.lowers}


def judge(subset: SubsetProblem, step: Step, start: PolishedPoint, end: PolishedPoint, config: Continuation,
          smallest_change: float, out: ContinuationResults, log) -> None:
    """Follow the step's branches, up from its start and, where that leaves it undecided, down
    from its end; append its verdict to ``out.steps``."""
    up = (_follow(subset, step, start, end, "up", config, smallest_change, out, log)
          if _certified_minimum(start.row) else NOT_FOLLOWED)
    down = NOT_FOLLOWED
    if judge_step(start.row, end.row, up, down)["curvature_verdict"] == "undecided" and _certified_minimum(end.row):
        down = _follow(subset, step, end, start, "down", config, smallest_change, out, log)
    out.steps.append({"seed": step.seed, "lambda_from": step.lam_from, "lambda_to": step.lam_to,
                      "sgd_mse_change": step.change, **judge_step(start.row, end.row, up, down)})


def _follow(subset: SubsetProblem, step: Step, origin: PolishedPoint, other: PolishedPoint, direction: str,
            config: Continuation, smallest_change: float, out: ContinuationResults, log) -> dict:
    """The branch through one polished end of the step (``origin``: the start going up, the end
    going down) followed to the step's other lambda: where it ends (a fold), or its point there,
    certified, and whether the other polished point is on it."""
    seed = step.seed
    lam_origin, lam_target = (step.lam_from, step.lam_to) if direction == "up" else (step.lam_to, step.lam_from)
    branch = follow(subset.at(lam_origin), origin.theta, lam_target * subset.ratio, config.step, config.branch,
                    origin.known())
    out.branch.extend(_branch_rows(seed, step.lam_from, direction, branch, subset.ratio))
    name = f"seed {seed} step {step.lam_from:g} -> {step.lam_to:g}, {direction} from lambda {lam_origin:g}"
    if branch.fold is not None:
        low, high = (f / subset.ratio for f in branch.fold)
        out.folds.append({"seed": seed, "step_from": step.lam_from, "direction": direction, "lambda_low": low,
                          "lambda_high": high, "jumped": branch.jumped_to is not None, "reason": "fold",
                          "evidence": branch.fold_evidence, "bottom_before": branch.points[-1].bottom,
                          "bottom_residual_before": branch.points[-1].bottom_residual})
        log(f"{name}: fold in ({low:.4g}, {high:.4g})")
        return {"followed": True, "fold_low": low, "fold_high": high, "fold_evidence": branch.fold_evidence,
                "bottom_before_fold": branch.points[-1].bottom}
    end_theta = torch.as_tensor(branch.points[-1].theta, device=subset.x.device)
    problem = subset.at(lam_target)
    described, _ = _describe(problem, subset.mse, end_theta, smallest_change, config)
    distance = float((other.theta - end_theta).norm())
    row = {"seed": seed, "lambda": lam_target, "lambda_sub": problem.lam, "kind": f"branch {direction}",
           "step_from": step.lam_from, "converged": True, **described, "distance_to_polished": distance}
    out.points.append(row)
    out.thetas[(seed, lam_target, row["kind"])] = end_theta.cpu().numpy()
    on_branch = distance <= config.same_point_tol * (1 + float(end_theta.norm()))
    log(f"{name}: branch point {row['class']}, certified {row['certified']}, the polished point "
        f"{'on' if on_branch else 'off'} it (distance {distance:.3g})")
    change = row["data_loss"] - origin.row["data_loss"]
    return {"followed": True, "branch_end": row, "other_on_branch": on_branch,
            "branch_data_loss_change": change if direction == "up" else -change}  # from lambda_from to lambda_to


def _certified_minimum(row: dict | None) -> bool:
    return bool(row and row["converged"] and row["certified"] and row["class"] == "minimum")


def _branch_columns(prefix: str, evidence: dict) -> dict:
    end = evidence.get("branch_end")
    return {f"{prefix}followed": evidence["followed"],
            f"{prefix}end_class": end["class"] if end else "",
            f"{prefix}end_certified": bool(end and end["certified"]),
            f"{prefix}data_loss_change": evidence.get("branch_data_loss_change", math.nan),
            f"{prefix}other_on_branch": bool(evidence.get("other_on_branch")),
            f"{prefix}distance_to_other": end["distance_to_polished"] if end else math.nan}


def judge_step(start: dict, end: dict, up: dict, down: dict) -> dict:
    """The first verdict that applies (see the module), with the evidence behind it: ``start``
    and ``end`` are the polished points' rows, ``up`` and ``down`` what following the branch
    from the start up and from the end down found (``NOT_FOLLOWED`` when it was not followed)."""
    row = {"start_class": start["class"], "start_certified": start["certified"],
           "end_class": end["class"], "end_certified": end["certified"],
           "start_predicted_dL_dlambda": start["predicted_dL_dlambda"],
           "polished_mse_change": end["mse"] - start["mse"],
           "polished_data_loss_change": end["data_loss"] - start["data_loss"],
           "drop_reproduced": end["mse"] < start["mse"],  # does the subset problem's polished pair show the drop?
           **_branch_columns("up_", up), **_branch_columns("down_", down),
           "fold_side": "", "fold_low": math.nan, "fold_high": math.nan, "fold_evidence": "",
           "bottom_before_fold": math.nan, "jump_kind": "", "switch_lowers": math.nan, "lemma_holds": math.nan,
           "reason": ""}
    if start["certified"] and start["class"] == "saddle" and start["predicted_dL_dlambda"] < 0:
        return {**row, "curvature_verdict": "saddle branch"}
    for side, evidence in (("up from the start", up), ("down from the end", down)):
        if "fold_low" in evidence:
            return {**row, "curvature_verdict": "branch jump", "jump_kind": "fold", "fold_side": side,
                    **{k: evidence[k] for k in ("fold_low", "fold_high", "fold_evidence", "bottom_before_fold")}}
        if evidence.get("other_on_branch") and _certified_minimum(evidence["branch_end"]):
            return {**row, "curvature_verdict": "one branch of minima",
                    "lemma_holds": evidence["branch_data_loss_change"] >= 0}
    up_end = up.get("branch_end")
    if _certified_minimum(up_end) and _certified_minimum(end):  # off the start's branch, which goes on
        return {**row, "curvature_verdict": "branch jump", "jump_kind": "switch",
                "switch_lowers": end["data_loss"] < up_end["data_loss"],
                "lemma_holds": up["branch_data_loss_change"] >= 0}
    return {**row, "curvature_verdict": "undecided", "reason": _why_undecided(start, end, up, down)}


def _why_undecided(start: dict, end: dict, up: dict, down: dict) -> str:
    if not _certified_minimum(start) and not _certified_minimum(end):
        return f"{_why_not_judged('start', start)}; {_why_not_judged('end', end)}"
    for name, evidence in (("up", up), ("down", down)):
        if evidence["followed"] and not _certified_minimum(evidence["branch_end"]):
            return _why_not_judged(f"branch {name}'s end", evidence["branch_end"])
    if not _certified_minimum(start):
        return f"{_why_not_judged('start', start)}, and the start is off the end's branch of minima"
    return f"{_why_not_judged('end', end)}, and the end is off the start's branch of minima"


def _why_not_judged(name: str, row: dict) -> str:
    if not row["converged"]:
        return f"the polish of the {name} point did not converge (||grad J|| = {row['grad_norm']:.2e})"
    if not row["certified"]:
        return (f"the {name} point is not certified (Newton step changes the MSE by "
                f"{row['newton_mse_change']:.2e}, residual {row['newton_residual']:.1e})")
    if row["class"] == "degenerate":
        return f"the {name} point is degenerate (bottom {row['bottom']:.2e}, delta {row['delta']:.1e})"
    return f"the {name} point is a certified saddle whose predicted dL/dlambda is not negative"


def summary(results: ContinuationResults, n_sub: int) -> dict:
    """metrics/continuation.json."""
    certified = [p for p in results.points if p["certified"]]
    verdicts = [s["curvature_verdict"] for s in results.steps]
    counts = {c: sum(1 for p in certified if p["class"] == c) for c in ("minimum", "saddle", "degenerate")}
    switches = [s for s in results.steps if s["jump_kind"] == "switch"]
    escapes = [p for p in results.points if p.get("escape_lowers") in (True, False)]
    return {"n_sub": n_sub, "points": len(results.points), "certified_points": len(certified),
            "folds": sum(1 for f in results.folds if f["reason"] == "fold"),
            "nonmonotone_steps": len(results.steps), "undecided": verdicts.count("undecided"),
            "drops_reproduced": sum(bool(s["drop_reproduced"]) for s in results.steps),
            "escapes": len(escapes), "escapes_lowering": sum(bool(p["escape_lowers"]) for p in escapes),
            "branch_steps": sum(1 for b in results.branch if not math.isnan(b["barrier"])),
            "branch_steps_across_a_barrier": sum(1 for b in results.branch if b["barrier"] > 0),
            "classes": counts, "verdicts": {v.replace(" ", "_"): verdicts.count(v) for v in VERDICTS},
            "jumps": {"fold": sum(1 for s in results.steps if s["jump_kind"] == "fold"), "switch": len(switches),
                      "switch_lowering": sum(bool(s["switch_lowers"]) for s in switches)}}


def settings_from(config) -> Continuation:
    """``Continuation`` from the params section ``continuation`` (``config.Continuation``)."""
    polish_settings = Polish(tol=config.grad_tol, lbfgs_tol=config.lbfgs_tol, lbfgs_iterations=config.lbfgs_iterations,
                             newton_iterations=config.newton_iterations, cg_iterations=config.cg_iterations)
    branch = Settings(polish=polish_settings, min_step=config.min_step_log2 * math.log(2), jump_tol=config.jump_tol,
                      eig_tol=config.eig_tol, eig_steps=config.eig_steps,
                      corrector_iterations=config.corrector_iterations, minres_iterations=config.minres_iterations)
    return Continuation(config.n_sub, config.step_log2 * math.log(2), branch, config.fraction, config.same_point_tol)
