"""A chain point settled where a user's training settles: polished, and off every proved saddle.

The polish (``curvature.polish``: L-BFGS, then trust-region Newton-CG) converges to whatever
critical point is near; Newton does not tell minima from saddles. A user trains by minimising,
and SGD leaves strict saddles, so a point the dense Hessian proves a saddle
(``chain.witness``: a unit vector v with v^T H v < -delta) is left along v:
``curvature.escape`` polishes theta + a v and theta - a v, a = sqrt(2 drop |J| / |mu|) (the
step the quadratic model says lowers J by drop |J|), and the lower end is kept when it lies
below the unperturbed control by more than rounding. Repeat until the point is a proved minimum,
or degenerate with no eigenvalue below -delta, or ``max_escapes`` escapes are spent (the point
then stays a proved saddle, and the tables say so). A polish that did not converge claims no
critical point, so nothing is escaped from it.

Cost per point: one polish and one dense curvature (``chain.dense``), plus per escape three
polishes and one more dense curvature.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..curvature.classes import PointClass
from ..curvature.escape import escape
from ..curvature.polish import Polish, Polished, polish
from ..objective import Objective
from .dense import DenseCurvature, dense_curvature


@dataclass(frozen=True)
class Settled:
    polished: Polished  # the last polish: the point's theta, gradient and iterations
    curvature: DenseCurvature  # at polished.theta
    escapes: int  # saddles left along their witness
    objective_before_escapes: float  # J at the first polished point


def settle(
    problem: Objective,
    mse: Objective,
    theta: torch.Tensor,
    settings: Polish,
    max_escapes: int,
    drop: float = 1e-3,
) -> Settled:
    """Polish J (``problem``) from theta, then escape proved saddles (see the module); ``mse``
    is the in-sample MSE the curvature's certificate numbers are taken on."""
    polished = polish(problem, theta, settings)
    curvature = dense_curvature(problem, mse, polished.theta)
    first = float(problem.value(polished.theta))
    escapes = 0
    while (
        polished.converged
        and curvature.curvature_class is PointClass.SADDLE
        and escapes < max_escapes
    ):
        witness = curvature.witness
        tried = escape(
            problem,
            polished.theta,
            settings,
            drop=drop,
            bottom=(witness.witness_value, witness.witness),
        )
        best = min(range(2), key=lambda k: tried.objectives[k])
        if not tried.below_control(tried.objectives[best]):
            break  # no descent along the witness: keep the saddle, counted as one
        polished = polish(problem, tried.ends[best], settings)  # its Polished record
        curvature = dense_curvature(problem, mse, polished.theta)
        escapes += 1
    return Settled(polished, curvature, escapes, first)
