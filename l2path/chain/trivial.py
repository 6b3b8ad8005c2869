"""The trivial critical point w = 0 of a [d, h, o] network and the lambda above which it is a
(degenerate) minimum.

At w = 0 (every weight zero) with the output biases b_2 optimal (mean over the data of dC/db_2
= 0), the hidden units see no input and feed no output, so theta = (0, b_1, b_2) is a critical
point of J_lambda for every lambda and every hidden bias b_1. There, with the data loss's
Hessian L'' and S = its (b_2, b_2) block (positive definite):

- the hidden biases' rows of H are exactly zero: flat directions (biases are not decayed);
- W_1-W_1 vanishes (W_2 = 0 cuts every path from W_1 to the output), and so does W_1-b;
- W_2 acts on the output exactly as b_2 scaled by the constant hidden activity s = sigmoid(b_1):
  the (W_2, W_2) block is (s s^T) kron S and the (W_2, b_2) block s kron S, so the Schur
  complement of S removes the W_2-W_2 term entirely.

So H (without the flat rows) is positive semi-definite iff

    (lambda/n) I + B  >= 0,   B = L''_ww - L''_wb S^-1 L''_bw = [[0, C], [C^T, 0]],

C the W_1-W_2 cross block, whose eigenvalues are +-sigma(C): w = 0 is a degenerate minimum
(flat only along b_1) for lambda/n > sigma_max(C) and a saddle below,

    lambda_c / n = -lambda_min(B) = sigma_max(C).

A problem on n_sub images at lambda_sub = lambda n_sub / n has the study's lambda/n, so in the
study's lambda, lambda_c = -n_study lambda_min(B). theta's layout is ``objective``'s: weights,
then b_1, then b_2 (the last ``outputs`` entries).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from ..objective import Objective
from .hessian import dense_hessian_at


def effective_weight_block(
    hessian: np.ndarray, weight_mask: np.ndarray, lam_over_n: float, outputs: int
) -> np.ndarray:
    """B of the module from the dense Hessian of J_lambda (``hessian``, (p, p)) at w = 0: the data
    loss's weight block, the output biases (the last ``outputs`` coordinates) eliminated by
    their Schur complement."""
    weights = np.flatnonzero(weight_mask)
    biases = np.arange(len(hessian) - outputs, len(hessian))
    ww = hessian[np.ix_(weights, weights)].copy()
    ww[np.diag_indices(len(weights))] -= lam_over_n
    wb = hessian[np.ix_(weights, biases)]
    bb = hessian[np.ix_(biases, biases)]
    return ww - wb @ scipy.linalg.solve(bb, wb.T, assume_a="pos")


def trivial_threshold(
    hessian: np.ndarray, weight_mask: np.ndarray, lam_over_n: float, outputs: int, n_study: int
) -> float:
    """lambda_c = -n_study lambda_min(B) of the module, from the dense H of J_lambda at a point
    with w = 0 (any lambda: B does not depend on it)."""
    block = effective_weight_block(hessian, weight_mask, lam_over_n, outputs)
    bottom = float(scipy.linalg.eigh(block, eigvals_only=True, subset_by_index=[0, 0])[0])
    return -n_study * bottom


def trivial_point(theta: torch.Tensor, objective: Objective) -> torch.Tensor:
    """The trivial critical point near theta: every weight 0, the hidden biases b_1 kept (they are
    flat there), the output biases optimal, sigmoid(b_2) = the mean label y-bar (the stationarity
    of both costs at w = 0: (sigmoid(b_2) - y-bar) sigmoid'(b_2) = 0 and sigmoid(b_2) - y-bar = 0),
    so b_2 = logit(y-bar). ``objective``: the problem whose labels and layout theta has."""
    mean = objective.y.mean(dim=0).to(theta)
    if bool(((mean <= 0) | (mean >= 1)).any()):
        raise ValueError(
            "the trivial point needs every output's mean label strictly between 0 and 1 "
            f"(got {mean.tolist()}): the subset lacks a class"
        )
    point = theta.clone()
    point[: objective.n_weights] = 0.0
    point[-len(mean) :] = torch.log(mean / (1 - mean))
    return point


def threshold_at(objective: Objective, point: torch.Tensor, n_study: int) -> float:
    """lambda_c (the study's lambda) of the trivial point ``point`` of ``objective`` (J_lambda on
    the subset, whose lambda/n is the study's) from its dense Hessian."""
    hessian = dense_hessian_at(objective, point).matrix
    n_sub = len(objective.x)
    mask = objective.weight_mask().cpu().numpy().astype(bool)
    return trivial_threshold(hessian, mask, objective.lam / n_sub, objective.sizes[-1], n_study)
