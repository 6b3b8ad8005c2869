"""Certified continuation tied to the SGD study: polish its ascending points, follow the branch
through them, and give every non-monotone ascending step a curvature verdict.

**The problem** (docs/science.md, "Certified continuation"): J on the first ``n_sub`` training
images with lambda_sub = lambda * n_sub / n, so that lambda/n, the penalty's weight per image,
is the study's. Every number of this module belongs to that problem; the SGD changes it judges
belong to the full training set.

Per chain seed s, with the study's grid lambda_0 < lambda_1 < ... up to ``lambda_end``:

- **polished points** P(lambda_i): the SGD point of seed s at lambda_i, polished
  (``corrector.polish``) and certified (``certificate.certify``);
- **the branch**: from P(lambda_0) (or the first P whose polish converged), followed through
  the grid (``branch.follow``); at a fold the branch continues from the point it jumps to. B(lambda_i), each certified, is compared with
  P(lambda_i): *on the branch* when ||P - B|| <= same_point_tol * (1 + ||B||);
- **the verdict of a non-monotone step** lambda_k -> lambda_k+1 of seed s (first that applies):
  *saddle branch*     P(lambda_k) a certified saddle whose tangent predicts dL/dlambda < 0;
  *branch jump*       a fold of the branch in (lambda_k, lambda_k+1], P(lambda_k) on the branch;
  *one branch of minima*  P(lambda_k) and P(lambda_k+1) certified minima, both on the branch, no
                      fold between (the lemma: L cannot fall; ``lemma_holds`` checks it);
  *undecided*         otherwise, with the reason.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..curvature.hessian import Objective
from ..model.costs import get_cost
from .branch import Branch, NetworkProblem, Settings, follow, tangent
from .certificate import certify
from .corrector import polish

VERDICTS = ("saddle branch", "branch jump", "one branch of minima", "undecided")


@dataclass(frozen=True)
class Continuation:
    """What the continuation runs: the subset size, the largest step in log lambda and the
    branch settings (not yet a DVC stage: the certified-continuation issue)."""

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


def _branch_rows(seed: int, branch: Branch, ratio: float) -> list[dict]:
    return [{"seed": seed, "lambda": p.lam / ratio, "lambda_sub": p.lam, "data_loss": p.data_loss,
             "grad_norm": p.grad_norm, "bottom": p.bottom, "bottom_residual": p.bottom_residual,
             "predicted_dL_dlambda_sub": p.predicted_slope, "realised_dL_dlambda_sub": p.realised_slope,
             "jump": p.jump} for p in branch.points]


def run_seed(subset: SubsetProblem, points: list[SGDPoint], steps: list[Step], config: Continuation,
             smallest_change: float, out: ContinuationResults, log=lambda message: None) -> None:
    """Polished points, the branch and the verdicts of one chain seed (see the module)."""
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

    on_branch = {p.lam: False for p in points}
    converged = [p for p in points if polished[p.lam][1]["converged"]]
    start = converged[0].lam if converged else math.inf
    theta = polished[start][0] if converged else None
    if start != points[0].lam:  # the branch starts at the chain's first polished point that converged
        out.folds.append({"seed": seed, "lambda_low": points[0].lam, "lambda_high": start, "jumped": False,
                          "reason": f"the polish of the chain's first point did not converge "
                                    f"(||grad J|| = {polished[points[0].lam][1]['grad_norm']:.2e}); "
                                    + (f"the branch starts at lambda = {start:g}" if converged else "no branch")})
    on_branch[start] = True
    fold_in: dict[float, dict] = {}
    for before, after in zip(points, points[1:]):
        if theta is None or after.lam <= start:
            continue
        theta, fold = _follow_interval(subset, theta, before.lam, after.lam, config, seed, out)
        if fold is not None:
            fold_in[after.lam] = fold
        if theta is None:
            continue
        problem = subset.at(after.lam)
        row = {"seed": seed, "lambda": after.lam, "lambda_sub": problem.lam, "kind": "branch", "converged": True,
               **_describe(problem, subset.mse, theta, smallest_change, config)}
        out.points.append(row)
        out.thetas[(seed, after.lam, "branch")] = theta.cpu().numpy()
        other = polished[after.lam][0]
        distance = float((other - theta).norm())
        on_branch[after.lam] = distance <= config.same_point_tol * (1 + float(theta.norm()))
        row["distance_to_polished"] = distance
        log(f"seed {seed} lambda {after.lam:g}: branch {row['class']}, certified {row['certified']}, "
            f"polished SGD point {'on' if on_branch[after.lam] else 'off'} it (distance {distance:.3g})")

    for step in (s for s in steps if s.seed == seed):
        out.steps.append({"seed": seed, "lambda_from": step.lam_from, "lambda_to": step.lam_to,
                          "sgd_mse_change": step.change,
                          **_verdict(step, polished, on_branch, fold_in)})


def _follow_interval(subset: SubsetProblem, theta: torch.Tensor, lam: float, lam_end: float,
                     config: Continuation, seed: int, out: ContinuationResults
                     ) -> tuple[torch.Tensor | None, dict | None]:
    """The branch from theta at lam to lam_end, through at most one fold per restart."""
    fold_row = None
    while True:
        try:
            branch = follow(subset.at(lam), theta, lam_end * subset.ratio, config.step, config.branch)
        except ValueError as stopped:  # the start is not a converged minimum: the branch ends here
            out.folds.append({"seed": seed, "lambda_low": lam, "lambda_high": math.nan, "jumped": False,
                              "reason": str(stopped)})
            return None, fold_row
        out.branch.extend(_branch_rows(seed, branch, subset.ratio))
        theta = torch.as_tensor(branch.points[-1].theta, device=subset.x.device)
        if branch.fold is None:
            return theta, fold_row
        low, high = (f / subset.ratio for f in branch.fold)
        row = {"seed": seed, "lambda_low": low, "lambda_high": high, "jumped": branch.jumped_to is not None,
               "reason": "fold", "bottom_before": branch.points[-1].bottom,
               "bottom_residual_before": branch.points[-1].bottom_residual}
        out.folds.append(row)
        fold_row = fold_row or row  # the first: where the branch through the interval's start ends
        if branch.jumped_to is None:
            return None, fold_row
        theta, lam = torch.as_tensor(branch.jumped_to, device=subset.x.device), high


def _verdict(step: Step, polished: dict, on_branch: dict, fold_in: dict) -> dict:
    start, end = polished[step.lam_from][1], polished[step.lam_to][1]
    evidence = {"start_class": start["class"], "start_certified": start["certified"],
                "end_class": end["class"], "end_certified": end["certified"],
                "start_predicted_dL_dlambda": start["predicted_dL_dlambda"],
                "polished_mse_change": end["mse"] - start["mse"],
                "polished_data_loss_change": end["data_loss"] - start["data_loss"],
                "start_on_branch": bool(on_branch.get(step.lam_from)), "end_on_branch": bool(on_branch.get(step.lam_to))}
    fold = fold_in.get(step.lam_to)
    evidence.update({"fold_low": fold["lambda_low"] if fold else math.nan,
                     "fold_high": fold["lambda_high"] if fold else math.nan})
    if start["certified"] and start["class"] == "saddle" and start["predicted_dL_dlambda"] < 0:
        return {**evidence, "curvature_verdict": "saddle branch", "reason": ""}
    if fold is not None and evidence["start_on_branch"]:
        return {**evidence, "curvature_verdict": "branch jump", "reason": ""}
    both_minima = all(p["certified"] and p["class"] == "minimum" for p in (start, end))
    if both_minima and evidence["start_on_branch"] and evidence["end_on_branch"]:
        return {**evidence, "curvature_verdict": "one branch of minima",
                "lemma_holds": evidence["polished_data_loss_change"] >= 0, "reason": ""}
    return {**evidence, "curvature_verdict": "undecided", "reason": _why_undecided(start, end, evidence)}


def _why_undecided(start: dict, end: dict, evidence: dict) -> str:
    for name, row in (("start", start), ("end", end)):
        if not row["converged"]:
            return f"the polish of the {name} point did not converge (||grad J|| = {row['grad_norm']:.2e})"
        if not row["certified"]:
            return (f"the {name} point is not certified (Newton step changes the MSE by "
                    f"{row['newton_mse_change']:.2e}, residual {row['newton_residual']:.1e})")
        if row["class"] == "degenerate":
            return f"the {name} point is degenerate (bottom {row['bottom']:.2e}, delta {row['delta']:.1e})"
    if not (evidence["start_on_branch"] and evidence["end_on_branch"]):
        return "the polished points are on different branches with no fold located between them"
    return "a certified saddle whose predicted dL/dlambda is not negative"


def summary(results: ContinuationResults, n_sub: int) -> dict:
    """metrics/continuation.json."""
    certified = [p for p in results.points if p["certified"]]
    verdicts = [s["curvature_verdict"] for s in results.steps]
    counts = {c: sum(1 for p in certified if p["class"] == c) for c in ("minimum", "saddle", "degenerate")}
    folds = sum(1 for f in results.folds if f["reason"] == "fold")  # the other rows say why a branch did not start
    return {"n_sub": n_sub, "points": len(results.points), "certified_points": len(certified), "folds": folds,
            "nonmonotone_steps": len(results.steps), "undecided": verdicts.count("undecided"),
            "classes": counts, "verdicts": {v.replace(" ", "_"): verdicts.count(v) for v in VERDICTS}}

