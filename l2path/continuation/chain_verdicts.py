"""Each step of a converged chain judged by pseudo-arclength continuation between its points.

From the chain's earlier point of the step (a converged critical point of J at its lambda), the
branch through it is followed (``arclength.follow_arclength``, tau = ln lambda_sub) towards the
later point's lambda, through any turning point, with the bottom eigenvalue mu of H at every
accepted point (Lanczos: mu is a Rayleigh quotient, so mu < 0 proves negative curvature).

The verdict, the first that applies:

- **not followed**: a point of the step is not converged (no claim);
- **branch lost**: the corrector failed before the later lambda (no claim, never a fold);
- **fold jump**: t_tau changed sign inside the step: the earlier point's branch turns back at
  a located lambda* (``Fold``: bisection in arclength, mu^2 = k |lambda* - lambda| fit), so
  the chain's polish had to leave it;
- **saddle branch**: the branch reached the later lambda, but mu < 0 at some point on the way;
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

import numpy as np
import torch

from ..curvature.polish import Polish, polish
from ..curvature.spectrum import lanczos_extreme
from ..objective import Objective
from .arclength import ArcBranch, ArclengthSettings, NetworkFamily, follow_arclength
from .chain_records import ChainPoint, ChainStep, StepVerdictKind
from .study import SubsetProblem


@dataclass(frozen=True)
class VerdictSettings:
    arclength: ArclengthSettings
    polish: Polish  # re-converges the branch at exactly the later lambda
    same_point_tol: float = 1e-4  # same point within same_point_tol * (1 + ||theta||)
    eig_tol: float = 1e-10
    eig_steps: int = 1000


def slope_integral(branch: ArcBranch, mask: np.ndarray, n: int) -> float:
    """Trapezoid integral, in lambda_sub, of the predicted dL/dlambda_sub at the branch's
    accepted points (see the module)."""
    slopes = [-(p.theta * mask) @ p.theta_per_tau() / n for p in branch.points]
    lams = [p.lam for p in branch.points]
    return float(
        sum((b - a) * (sa + sb) / 2 for a, b, sa, sb in zip(lams, lams[1:], slopes, slopes[1:]))
    )


def arrival(
    base: Objective, branch: ArcBranch, lam_sub_end: float, settings: VerdictSettings
) -> torch.Tensor:
    """The branch's point at exactly lam_sub_end: the last two arclength points interpolated
    linearly in tau, then polished at lam_sub_end (one or two Newton steps from there)."""
    a, b = branch.points[-2], branch.points[-1]
    tau_end = math.log(lam_sub_end)
    weight = (tau_end - a.tau) / (b.tau - a.tau)
    guess = torch.as_tensor((1 - weight) * a.theta + weight * b.theta, device=base.x.device)
    return polish(base.at(lam_sub_end), guess, settings.polish).theta


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
    base = subset.at(earlier.lam)
    family = NetworkFamily(base)
    mask = base.weight_mask().cpu().numpy()

    def bottom(theta: np.ndarray, tau: float) -> float:
        op = base.at(math.exp(tau)).operator(torch.as_tensor(theta, device=subset.x.device))
        pairs = lanczos_extreme(op, 1, "SA", settings.eig_tol, settings.eig_steps)
        return float(pairs.values[0])

    branch = follow_arclength(
        family,
        earlier_theta.cpu().numpy(),
        math.log(earlier.lam_sub),
        math.log(later.lam_sub),
        settings.arclength,
        bottom,
    )
    arc_points = len(branch.points)
    if branch.folds:
        fold = branch.folds[0]
        return replace(
            step,
            verdict=StepVerdictKind.FOLD_JUMP,
            fold_lambda=fold.lam / subset.ratio,
            arc_points=arc_points,
            reason=f"t_tau {fold.tangent_tau_before:.3g} -> {fold.tangent_tau_after:.3g}",
        )
    if not branch.reached_end:
        return replace(
            step,
            verdict=StepVerdictKind.BRANCH_LOST,
            arc_points=arc_points,
            reason=branch.lost or "no end in max_points",
        )
    end = arrival(base, branch, later.lam_sub, settings)
    mus = [p.bottom for p in branch.points]
    if min(mus) < 0:
        return replace(
            step,
            verdict=StepVerdictKind.SADDLE_BRANCH,
            arc_points=arc_points,
            reason=f"bottom eigenvalue {min(mus):.3g} on the way",
        )
    distance = float((end - later_theta).norm())
    if distance > settings.same_point_tol * (1 + float(later_theta.norm())):
        return replace(
            step,
            verdict=StepVerdictKind.BRANCH_SWITCH,
            arc_points=arc_points,
            reason=f"the branch arrives {distance:.3g} from the chain's point",
        )
    first, last = (torch.as_tensor(p.theta) for p in (branch.points[0], branch.points[-1]))
    realised = float(base.data_loss(last.to(end.device)) - base.data_loss(first.to(end.device)))
    return replace(
        step,
        verdict=StepVerdictKind.ONE_BRANCH,
        arc_points=arc_points,
        lemma_ratio=slope_integral(branch, mask, base.n) / realised if realised else math.nan,
    )
