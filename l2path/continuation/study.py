"""Certified continuation tied to the SGD study: polish its ascending points, follow the branch
of minima through each judged step, and give every non-monotone ascending step a curvature verdict.

**The problem** (docs/science.md, "Certified continuation"): J on the first ``n_sub`` training
images with lambda_sub = lambda * n_sub / n, so that lambda/n, the penalty's weight per image,
is the study's. Every number of this module belongs to that problem; the SGD changes it judges
belong to the full training set.

Per chain seed s, with the study's grid lambda_0 < lambda_1 < ...:

- **polished points** P(lambda_i): the SGD point of seed s at lambda_i, polished
  (``corrector.polish``) and certified (``certificate.certify``);
- **the branch of a judged step** lambda_k -> lambda_k+1: from P(lambda_k), when it is a
  certified minimum, followed to lambda_k+1 (``branch.follow``). It ends at a fold, or reaches
  B(lambda_k+1), certified in turn; P(lambda_k+1) is *on the branch* when
  ||P - B|| <= same_point_tol * (1 + ||B||). The chain's first step starts the continuation at
  the chain's first point; each later step restarts it at the SGD point it judges, because SGD's
  points need not lie on one branch (measured: 25.6 apart at n_sub = 1000);
- **the verdict** (first that applies):
  *saddle branch*         P(lambda_k) a certified saddle whose tangent predicts dL/dlambda < 0;
  *undecided*             P(lambda_k) not a certified minimum (the reason is given);
  *branch jump*, fold     the branch from P(lambda_k) ends at a fold in (lambda_k, lambda_k+1],
                          bracketed within a factor e^min_step;
  *one branch of minima*  the branch reaches lambda_k+1 at a certified minimum and P(lambda_k+1)
                          is on it: the lemma says L cannot fall (``lemma_holds`` checks it);
  *branch jump*, switch   the branch reaches lambda_k+1 at a certified minimum, and P(lambda_k+1)
                          is a certified minimum off it with a lower data loss: SGD moved to
                          another branch of minima, and that lowered the loss;
  *undecided*             otherwise, with the reason.

``drop_reproduced`` says whether the polished pair shows the drop at all (the SGD points are
not critical points, and the subset is not the full training set).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..curvature.hessian import Objective
from ..model.costs import get_cost
from .branch import Branch, NetworkProblem, Settings, follow, tangent
from .certificate import certify
from .corrector import Polish, polish

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


def _describe(problem: NetworkProblem, mse: Objective, theta: torch.Tensor, smallest_change: float,
              config: Continuation) -> dict:
    """Certificate, losses and the tangent's predicted dL/dlambda (per unit of the study's lambda)."""
    c = certify(problem.objective, mse, theta, smallest_change, config.fraction, config.branch.eig_tol,
                config.branch.eig_steps)
    _, slope = tangent(problem, theta, config.branch)
    return {"grad_norm": c.grad_norm, "newton_step_norm": c.step_norm, "newton_residual": c.newton_residual,
            "newton_mse_change": c.mse_change, "certified": c.certified, "bottom": c.bottom,
            "bottom_residual": c.bottom_residual, "delta": c.delta, "class": c.curvature_class,
            "predicted_dL_dlambda": slope, "data_loss": float(problem.data_loss(theta)),
            "mse": float(mse.value(theta)), "objective": float(problem.value(theta)),
            "weight_l2": float((theta * problem.weight_mask()).norm()), "hvps": c.products}


def _branch_rows(seed: int, lam_from: float, branch: Branch, ratio: float) -> list[dict]:
    return [{"seed": seed, "step_from": lam_from, "lambda": p.lam / ratio, "lambda_sub": p.lam, "data_loss": p.data_loss,
             "grad_norm": p.grad_norm, "bottom": p.bottom, "bottom_residual": p.bottom_residual,
             "predicted_dL_dlambda_sub": p.predicted_slope, "realised_dL_dlambda_sub": p.realised_slope,
             "jump": p.jump} for p in branch.points]


def run_seed(subset: SubsetProblem, points: list[SGDPoint], steps: list[Step], config: Continuation,
             smallest_change: float, out: ContinuationResults, log=lambda message: None) -> None:
    """Polished points, the branch through each judged step and its verdict, for one chain seed
    (see the module)."""
    points = sorted(points, key=lambda p: p.lam)
    seed = points[0].seed
    polished: dict[float, tuple[torch.Tensor, dict]] = {}
    for point in points:
        problem = subset.at(point.lam)
        result = polish(problem, point.theta, config.branch.polish)
        row = {"seed": seed, "lambda": point.lam, "lambda_sub": problem.lam, "kind": "polished",
               "converged": result.converged, "lbfgs_iterations": result.lbfgs_iterations,
               "newton_iterations": result.newton_iterations,
               **_describe(problem, subset.mse, result.theta, smallest_change, config)}
        polished[point.lam] = (result.theta, row)
        out.thetas[(seed, point.lam, "polished")] = result.theta.cpu().numpy()
        out.points.append(row)
        log(f"seed {seed} lambda {point.lam:g}: polished ||grad J|| {row['grad_norm']:.2e}, {row['class']}, "
            f"certified {row['certified']}")
    for step in sorted((s for s in steps if s.seed == seed and s.lam_from in polished and s.lam_to in polished),
                       key=lambda s: s.lam_from):
        evidence = _follow_step(subset, step, polished, config, smallest_change, out, log)
        out.steps.append({"seed": seed, "lambda_from": step.lam_from, "lambda_to": step.lam_to,
                          "sgd_mse_change": step.change, **judge_step(step, polished, evidence)})


def _follow_step(subset: SubsetProblem, step: Step, polished: dict, config: Continuation, smallest_change: float,
                 out: ContinuationResults, log) -> dict:
    """The branch through the step's polished start, followed to its lambda_to: where it ends
    (a fold) or the branch point there, certified, and whether the polished end point is on it."""
    theta, start = polished[step.lam_from]
    seed = step.seed
    if not _certified_minimum(start):
        return {"followed": False}
    branch = follow(subset.at(step.lam_from), theta, step.lam_to * subset.ratio, config.step, config.branch)
    out.branch.extend(_branch_rows(seed, step.lam_from, branch, subset.ratio))
    if branch.fold is not None:
        low, high = (f / subset.ratio for f in branch.fold)
        out.folds.append({"seed": seed, "lambda_low": low, "lambda_high": high, "jumped": branch.jumped_to is not None,
                          "reason": "fold", "evidence": branch.fold_evidence, "bottom_before": branch.points[-1].bottom,
                          "bottom_residual_before": branch.points[-1].bottom_residual})
        log(f"seed {seed} step {step.lam_from:g} -> {step.lam_to:g}: fold in ({low:.4g}, {high:.4g})")
        return {"followed": True, "fold_low": low, "fold_high": high, "fold_evidence": branch.fold_evidence,
                "bottom_before_fold": branch.points[-1].bottom}
    end_theta = torch.as_tensor(branch.points[-1].theta, device=subset.x.device)
    problem = subset.at(step.lam_to)
    row = {"seed": seed, "lambda": step.lam_to, "lambda_sub": problem.lam, "kind": "branch",
           "step_from": step.lam_from, "converged": True, **_describe(problem, subset.mse, end_theta, smallest_change, config)}
    distance = float((polished[step.lam_to][0] - end_theta).norm())
    row["distance_to_polished"] = distance
    out.points.append(row)
    out.thetas[(seed, step.lam_to, row["kind"])] = end_theta.cpu().numpy()
    on_branch = distance <= config.same_point_tol * (1 + float(end_theta.norm()))
    log(f"seed {seed} step {step.lam_from:g} -> {step.lam_to:g}: branch end {row['class']}, certified "
        f"{row['certified']}, polished end point {'on' if on_branch else 'off'} it (distance {distance:.3g})")
    return {"followed": True, "branch_end": row, "end_on_branch": on_branch,
            "branch_data_loss_change": row["data_loss"] - start["data_loss"]}


def _certified_minimum(row: dict) -> bool:
    return bool(row["converged"] and row["certified"] and row["class"] == "minimum")


def judge_step(step: Step, polished: dict, evidence: dict) -> dict:
    """The first verdict that applies (see the module), with the evidence behind it."""
    start, end = polished[step.lam_from][1], polished[step.lam_to][1]
    branch_end = evidence.get("branch_end")
    row = {"start_class": start["class"], "start_certified": start["certified"],
           "end_class": end["class"], "end_certified": end["certified"],
           "start_predicted_dL_dlambda": start["predicted_dL_dlambda"],
           "polished_mse_change": end["mse"] - start["mse"],
           "polished_data_loss_change": end["data_loss"] - start["data_loss"],
           "drop_reproduced": end["mse"] < start["mse"],  # does the subset problem's polished pair show the drop?
           "followed": evidence["followed"],
           "fold_low": evidence.get("fold_low", math.nan), "fold_high": evidence.get("fold_high", math.nan),
           "fold_evidence": evidence.get("fold_evidence", ""),
           "bottom_before_fold": evidence.get("bottom_before_fold", math.nan),
           "branch_end_class": branch_end["class"] if branch_end else "",
           "branch_end_certified": bool(branch_end and branch_end["certified"]),
           "branch_data_loss_change": evidence.get("branch_data_loss_change", math.nan),
           "end_on_branch": bool(evidence.get("end_on_branch")),
           "end_distance_to_branch": branch_end["distance_to_polished"] if branch_end else math.nan,
           "jump_kind": "", "lemma_holds": math.nan, "reason": ""}
    if start["certified"] and start["class"] == "saddle" and start["predicted_dL_dlambda"] < 0:
        return {**row, "curvature_verdict": "saddle branch"}
    if not _certified_minimum(start):
        return {**row, "curvature_verdict": "undecided", "reason": _why_not_judged("start", start)}
    if evidence.get("fold_low") is not None:
        return {**row, "curvature_verdict": "branch jump", "jump_kind": "fold"}
    if not _certified_minimum(branch_end):
        return {**row, "curvature_verdict": "undecided", "reason": _why_not_judged("branch end", branch_end)}
    if row["end_on_branch"]:
        return {**row, "curvature_verdict": "one branch of minima",
                "lemma_holds": row["branch_data_loss_change"] >= 0}
    if not _certified_minimum(end):
        return {**row, "curvature_verdict": "undecided", "reason": _why_not_judged("end", end)}
    if end["data_loss"] >= branch_end["data_loss"]:
        return {**row, "curvature_verdict": "undecided",
                "reason": (f"the polished end point is a minimum off the branch, but its data loss is not below the "
                           f"branch's ({end['data_loss']:.6g} >= {branch_end['data_loss']:.6g}): the switch lowers nothing")}
    return {**row, "curvature_verdict": "branch jump", "jump_kind": "switch",
            "lemma_holds": row["branch_data_loss_change"] >= 0}


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
    folds = sum(1 for f in results.folds if f["reason"] == "fold")  # the other rows say why a branch did not start
    return {"n_sub": n_sub, "points": len(results.points), "certified_points": len(certified), "folds": folds,
            "nonmonotone_steps": len(results.steps), "undecided": verdicts.count("undecided"),
            "drops_reproduced": sum(bool(s["drop_reproduced"]) for s in results.steps),
            "classes": counts, "verdicts": {v.replace(" ", "_"): verdicts.count(v) for v in VERDICTS}}



def settings_from(config) -> Continuation:
    """``Continuation`` from the params section ``continuation`` (``config.Continuation``)."""
    polish_settings = Polish(tol=config.grad_tol, lbfgs_tol=config.lbfgs_tol, lbfgs_iterations=config.lbfgs_iterations,
                             newton_iterations=config.newton_iterations, cg_iterations=config.cg_iterations)
    branch = Settings(polish=polish_settings, min_step=config.min_step_log2 * math.log(2), jump_tol=config.jump_tol,
                      eig_tol=config.eig_tol, eig_steps=config.eig_steps,
                      corrector_iterations=config.corrector_iterations, minres_iterations=config.minres_iterations)
    return Continuation(config.n_sub, config.step_log2 * math.log(2), branch, config.fraction, config.same_point_tol)
