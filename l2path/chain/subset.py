"""The converged chains' problem: J on the first n_sub training images, lambda/n as in the study.

With n the study's training images, the subset's lambda_sub = lambda * n_sub / n, so that
lambda/n, the penalty's weight per image, is the study's (docs/science.md, "The converged
chains"):

    J_sub(theta) = (1/n_sub) sum_{x in subset} C_x + (lambda_sub / 2 n_sub) ||w||^2.

Every number of ``l2path.chain`` belongs to this problem, in float64, on ``device``.
"""

from __future__ import annotations

import torch

from ..curvature.polish import Polish
from ..model.costs import get_cost
from ..objective import Objective


def pick_device(choice: str) -> torch.device:
    """``runtime.device``: auto = CUDA when present, else the CPU; cuda without a GPU fails here."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "runtime.device is 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'"
        )
    return torch.device("cuda" if choice != "cpu" and torch.cuda.is_available() else "cpu")


class SubsetProblem:
    """J on the first n_sub images with lambda scaled by n_sub / n (see the module)."""

    def __init__(
        self, sizes: list[int], x: torch.Tensor, y: torch.Tensor, cost: str, n_full: int, n_sub: int
    ):
        if not 0 < n_sub <= len(x):
            raise ValueError(f"chain.n_sub = {n_sub} must be in 1..{len(x)} (the training images)")
        self.sizes, self.cost, self.ratio = list(sizes), get_cost(cost), n_sub / n_full
        self.x, self.y = x[:n_sub].to(torch.float64), y[:n_sub].to(torch.float64)
        self.mse = Objective(self.sizes, self.x, self.y, get_cost("quadratic"), 0.0)

    def at(self, lam: float) -> Objective:
        """The problem whose lambda corresponds to the study's ``lam``."""
        return Objective(self.sizes, self.x, self.y, self.cost, lam * self.ratio)


def polish_from(config) -> Polish:
    """The chain's polish from the params section ``chain`` (``config.Chain``)."""
    return Polish(
        tol=config.grad_tol,
        lbfgs_tol=config.lbfgs_tol,
        lbfgs_iterations=config.lbfgs_iterations,
        newton_iterations=config.newton_iterations,
        cg_iterations=config.cg_iterations,
    )
