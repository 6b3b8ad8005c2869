"""Curvature analysis of one point of the lambda study, and the two probes of its landscape.

- ``analyse_point``: extreme eigenvalues of H = Hessian of J_lambda (k largest and k
  smallest by plain Lanczos, each end stopping once its k pairs converge, with residuals),
  SLQ density (index estimate = fraction of eigenvalues below -saddle_rel_tol * |lambda_max|)
  and a Hutchinson trace, then
  the *critical* rule ``classes.classify_by_gradient`` with the point's full-data gradient norm.
- ``escape``: at a saddle, the one escape test (``curvature.escape``) along the most negative
  eigenvector v (unit): a step alpha = sqrt(2 * drop / |lambda_min|), for which the quadratic
  model predicts J to fall by ``drop`` = drop_fraction * J(theta), in both directions, each
  side polished (L-BFGS, then Newton-CG) and compared with a control polish of theta; the
  rows record how far J_lambda and the in-sample MSE fell.
- ``interpolate``: data loss L and penalty R on the segment theta(t) = (1-t) a + t b, so
  J_lambda(t) = L(t) + lambda R(t) can be drawn for both lambdas of a chain step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..config import Hessian
from ..objective import Objective
from .classes import classify_by_gradient
from .escape import escape as run_escape
from .polish import study_polish
from .spectrum import hutchinson_trace, lanczos_extreme, slq_density


@dataclass(frozen=True)
class CurvatureSettings:
    k: int = 5  # eigenvalues at each end
    eig_tol: float = 1e-6  # Ritz residual tolerance, relative to |lambda_max|
    lanczos_steps: int = (
        150  # most Lanczos steps per end (the bottom, crowded near zero, is the hard end)
    )
    slq_probes: int = 3
    slq_steps: int = 30
    trace_probes: int = 10
    saddle_rel_tol: float = 1e-4  # saddle when lambda_min < -saddle_rel_tol * |lambda_max|
    seed: int = 0

    @classmethod
    def from_params(cls, hessian: Hessian) -> "CurvatureSettings":
        """The settings named in the ``hessian`` params section (the rest keep their defaults)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in hessian.model_dump().items() if key in names})


def analyse_point(
    objective: Objective,
    theta: torch.Tensor,
    grad_norm: float,
    grad_tol: float,
    settings: CurvatureSettings,
) -> tuple[dict, dict]:
    """(row of numbers, spectrum arrays) for one point; the row counts the HVPs used."""
    op = objective.operator(theta)
    top = lanczos_extreme(
        op, settings.k, "LA", settings.eig_tol, settings.lanczos_steps, seed=settings.seed
    )
    lam_max = float(top.values[-1])
    bottom = lanczos_extreme(
        op,
        settings.k,
        "SA",
        settings.eig_tol,
        settings.lanczos_steps,
        abs(lam_max),
        seed=settings.seed,
    )
    lam_min = float(bottom.values[0]) if len(bottom.values) else float("nan")
    density = slq_density(op, settings.slq_probes, settings.slq_steps, seed=settings.seed)
    # eigenvalues below -saddle_rel_tol * |lambda_max|: a spectrum crowded at zero would make
    # the plain sign of near-zero Ritz nodes a coin toss
    index, index_error = density.fraction_below(-settings.saddle_rel_tol * abs(lam_max))
    trace, trace_error = hutchinson_trace(op, settings.trace_probes, seed=settings.seed + 1)
    row = {
        "lambda_max": lam_max,
        "lambda_min": lam_min,
        "lambda_max_residual": float(top.residuals[-1]),
        "lambda_min_residual": float(bottom.residuals[0]) if len(bottom.values) else float("nan"),
        "top_converged": int(top.converged.sum()),
        "bottom_converged": int(bottom.converged.sum()),
        "index_estimate": index,
        "index_stderr": index_error,
        "trace": trace,
        "trace_stderr": trace_error,
        "slq_probes": settings.slq_probes,
        "trace_probes": settings.trace_probes,
        "class": classify_by_gradient(
            grad_norm, grad_tol, lam_min, lam_max, settings.saddle_rel_tol
        ),
        "hvps": op.products,
        "n_curvature": len(objective.x),
    }
    spectrum = {
        "top_values": top.values,
        "top_residuals": top.residuals,
        "bottom_values": bottom.values,
        "bottom_residuals": bottom.residuals,
        "slq_nodes": density.nodes,
        "slq_weights": density.weights,
        "min_vector": bottom.vectors[:, 0] if len(bottom.values) else np.zeros(objective.size),
    }
    return row, spectrum


def escape(
    objective: Objective,
    theta: torch.Tensor,
    direction: np.ndarray,
    lam_min: float,
    mse: Callable,
    grad_tol: float,
    max_iter: int,
    drop_fraction: float = 1e-3,
) -> list[dict]:
    """The escape test (``curvature.escape``) along ``direction`` (the bottom eigenvector found
    by ``analyse_point``, eigenvalue ``lam_min``), polished by ``polish.study_polish(grad_tol,
    max_iter)``: one row per sign of the step. ``mse(net)`` gives the in-sample MSE; ``lower``
    says whether that side ends below the control polish of theta itself."""
    start_value = float(objective.value(theta))
    start_mse = mse(objective.network(theta))
    result = run_escape(
        objective,
        theta,
        study_polish(grad_tol, max_iter),
        drop=drop_fraction,
        bottom=(lam_min, direction),
    )
    return [
        {
            "sign": sign,
            "alpha": result.alpha,
            "objective_before": start_value,
            "objective_after": after,
            "objective_drop": start_value - after,
            "mse_before": start_mse,
            "mse_after": mse(objective.network(end)),
            "grad_norm_after": grad_norm,
            "lower": bool(result.below_control(after)),
        }
        for sign, after, grad_norm, end in zip(
            (1.0, -1.0), result.objectives, result.grad_norms, result.ends
        )
    ]


def interpolate(
    objective: Objective, theta_a: torch.Tensor, theta_b: torch.Tensor, ts: np.ndarray
) -> list[dict]:
    """L(t) and R(t) on theta(t) = (1 - t) theta_a + t theta_b."""
    out = []
    for t in ts:
        theta = (1 - t) * theta_a + t * theta_b
        with torch.no_grad():
            out.append(
                {
                    "t": float(t),
                    "data_loss": float(objective.data_loss(theta)),
                    "penalty": float(objective.penalty(theta)),
                }
            )
    return out
