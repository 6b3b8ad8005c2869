"""Each step of a converged chain judged by pseudo-arclength continuation between its points.

From the chain's earlier point of the step (a converged critical point of J at its lambda), the
branch through it is followed (``arclength.follow_arclength``, tau = ln lambda_sub) towards the
later point's lambda, through any turning point. The bottom eigenvalue mu of H comes from the
dense H (``chain.dense``: the eigenvalue nearest 0, by shift-invert, the one that crosses 0 at
a fold), at every accepted point or, with ``bottom_at_every_point`` off (cheaper), only on a
fold's approach; the two ends' mu come from their chain rows (each proved by inertia
there). Then "mu > 0 all the way" below reads: H is proved positive definite at both ends and
t_tau keeps its sign between them (no fold), so along the followed branch mu could only cross
0 at a branch point, where it would meet another one.

The verdict, the first that applies:

- **not followed**: a point of the step is not converged, or the earlier point is degenerate
  (no claim: an exactly flat direction of H, e.g. a dead unit's bias, makes the bordered
  Jacobian singular, so no unique branch leaves that point and the corrector's solves cannot
  converge);
- **branch lost**: the corrector failed before the later lambda (no claim, never a fold);
- **fold jump**: t_tau changed sign inside the step: the earlier point's branch turns back at
  a located lambda* (``Fold``: bisection in arclength, mu^2 = k |lambda* - lambda| fit), so
  the chain's polish had to leave it;
- **saddle branch**: the branch reached the later lambda, but mu < 0 at a point where it was
  computed;
- **branch switch**: the branch reached the later lambda at a critical point other than the
  chain's (``same_point_tol``): the polish left a branch that goes on;
- **one branch of minima**: the branch reached the chain's next point with mu > 0 all the way:
  by the lemma dL/dlambda = (lambda/n^2) w^T H^-1 w >= 0 there is no drop; checked twice,
  by the sign of the step's change and by ``lemma_ratio``.

**The lemma's check** (``lemma_ratio``): along the branch dL/dlambda_sub = -(1/n) w . dtheta/dtau
(from the arclength tangent, dtheta/dtau = t_theta / t_tau), which at a critical point equals
(lambda/n^2) w^T H^-1 w. Its trapezoid integral over the accepted arclength points, against
the realised change of L between the first and last of them, is ``lemma_ratio`` (1 up to the
trapezoid's O(h^2) error in the arclength steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import torch

from ..curvature.classes import PointClass
from ..curvature.polish import Polish, polish
from ..objective import Objective
from .arclength import (
    ArcBranch,
    ArclengthSettings,
    ArcPoint,
    NetworkFamily,
    follow_arclength,
)
from .dense import dense_nearest_zero
from .records import ChainPoint, ChainStep, StepVerdictKind
from .subset import SubsetProblem


DEGENERATE_START = "the earlier point is degenerate: no unique branch leaves it"


@dataclass(frozen=True)
class VerdictSettings:
    arclength: ArclengthSettings
    polish: Polish  # re-converges the branch at exactly the later lambda
    same_point_tol: float = 1e-4  # same point within same_point_tol * (1 + ||theta||)


class StepProblem(Protocol):
    """What the verdict needs of the problem besides the followed branch (numpy, float64)."""

    def arrive(self, branch: ArcBranch, tau_end: float) -> np.ndarray:
        """The branch's critical point at exactly tau_end."""
        ...

    def data_loss(self, theta: np.ndarray) -> float: ...

    def slope(self, point: ArcPoint) -> float:
        """dL/dlambda predicted by the tangent at an accepted point of the branch."""
        ...


def slope_integral(branch: ArcBranch, problem: StepProblem) -> float:
    """Trapezoid integral, in lambda, of the predicted dL/dlambda at the branch's points."""
    slopes = [problem.slope(p) for p in branch.points]
    lams = [p.lam for p in branch.points]
    return float(
        sum((b - a) * (sa + sb) / 2 for a, b, sa, sb in zip(lams, lams[1:], slopes, slopes[1:]))
    )


def branch_verdict(
    step: ChainStep,
    branch: ArcBranch,
    problem: StepProblem,
    later_theta: np.ndarray,
    tau_end: float,
    same_point_tol: float,
    lam_ratio: float = 1.0,
    end_bottoms: tuple[float, ...] = (),
) -> ChainStep:
    """``step`` with the verdict of the branch followed from its earlier point (see the
    module); ``lam_ratio`` = lambda_sub / lambda turns the fold's lambda into the study's;
    ``end_bottoms``: mu at the step's two points where known from elsewhere (their rows)."""
    arc_points = len(branch.points)
    if branch.folds:
        fold = branch.folds[0]
        return replace(
            step,
            verdict=StepVerdictKind.FOLD_JUMP,
            fold_lambda=fold.lam / lam_ratio,
            fold_lambda_error=fold.lam_error / lam_ratio,
            fold_tangent_before=fold.tangent_tau_before,
            fold_tangent_after=fold.tangent_tau_after,
            fold_bottom=fold.bottom,
            fold_fit_k=fold.fit.k if fold.fit else None,
            fold_fit_residual=fold.fit.residual if fold.fit else None,
            arc_points=arc_points,
        )
    if not branch.reached_end:
        return replace(
            step,
            verdict=StepVerdictKind.BRANCH_LOST,
            arc_points=arc_points,
            reason=branch.lost or "the branch did not reach the step's end in max_points",
        )
    known = [p.bottom for p in branch.points] + list(end_bottoms)
    lowest = min((mu for mu in known if math.isfinite(mu)), default=math.nan)
    if lowest < 0:
        return replace(
            step,
            verdict=StepVerdictKind.SADDLE_BRANCH,
            arc_points=arc_points,
            reason=f"bottom eigenvalue {lowest:.3g} on the way",
        )
    end = problem.arrive(branch, tau_end)
    distance = float(np.linalg.norm(end - later_theta))
    if distance > same_point_tol * (1 + float(np.linalg.norm(later_theta))):
        return replace(
            step,
            verdict=StepVerdictKind.BRANCH_SWITCH,
            arc_points=arc_points,
            reason=f"the branch arrives {distance:.3g} from the chain's point",
        )
    first, last = branch.points[0], branch.points[-1]
    realised = problem.data_loss(last.theta) - problem.data_loss(first.theta)
    return replace(
        step,
        verdict=StepVerdictKind.ONE_BRANCH,
        arc_points=arc_points,
        lemma_ratio=slope_integral(branch, problem) / realised if realised else math.nan,
    )


class NetworkStep:
    """``StepProblem`` of the subset problem's J (``objective.Objective`` at any lambda)."""

    def __init__(self, base: Objective, polish_settings: Polish):
        self.base, self.polish = base, polish_settings
        self.mask = base.weight_mask().cpu().numpy()

    def _tensor(self, theta: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(theta, dtype=torch.float64, device=self.base.x.device)

    def arrive(self, branch: ArcBranch, tau_end: float) -> np.ndarray:
        """The last two points interpolated linearly in tau, polished at exactly tau_end."""
        a, b = branch.points[-2], branch.points[-1]
        weight = (tau_end - a.tau) / (b.tau - a.tau)
        guess = self._tensor((1 - weight) * a.theta + weight * b.theta)
        return polish(self.base.at(math.exp(tau_end)), guess, self.polish).theta.cpu().numpy()

    def data_loss(self, theta: np.ndarray) -> float:
        return float(self.base.data_loss(self._tensor(theta)))

    def slope(self, point: ArcPoint) -> float:
        """dL/dlambda = -(1/n) w . dtheta/dtau at a critical point (see the module)."""
        return float(-(point.theta * self.mask) @ point.theta_per_tau() / self.base.n)


def judge_step(
    subset: SubsetProblem,
    step: ChainStep,
    earlier: ChainPoint,
    earlier_theta: torch.Tensor,
    later: ChainPoint,
    later_theta: torch.Tensor,
    settings: VerdictSettings,
) -> ChainStep:
    """``step`` with its verdict (see the module); ``earlier`` is the chain's point the branch
    is followed from, ``later`` the chain's next point."""
    if not (earlier.converged and later.converged):
        return replace(step, verdict=StepVerdictKind.NOT_FOLLOWED, reason="a point not converged")
    if earlier.curvature_class is PointClass.DEGENERATE:
        return replace(step, verdict=StepVerdictKind.NOT_FOLLOWED, reason=DEGENERATE_START)
    base, device = subset.at(earlier.lam), subset.x.device

    def bottom(theta: np.ndarray, tau: float) -> float:
        return dense_nearest_zero(base.at(math.exp(tau)), torch.as_tensor(theta, device=device))

    tau_end = math.log(later.lam_sub)
    branch = follow_arclength(
        NetworkFamily(base),
        earlier_theta.cpu().numpy(),
        math.log(earlier.lam_sub),
        tau_end,
        replace(settings.arclength, stop_at_fold=True),
        bottom,
    )
    return branch_verdict(
        step,
        branch,
        NetworkStep(base, settings.polish),
        later_theta.cpu().numpy(),
        tau_end,
        settings.same_point_tol,
        subset.ratio,
        (earlier.bottom, later.bottom),
    )
