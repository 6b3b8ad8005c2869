"""The subset problem in the span of its images: an exact reduction that makes the dense
inertia proof affordable.

**The reduction.** The first layer sees an image x only through W_1 x. Let Q (d x m,
orthonormal columns, m = min(n_sub, d)) come from the reduced QR of X^T (X: the n_sub images,
(n_sub, d)), so every image lies in range(Q) and x = Q Q^T x. Split each row of W_1 along
range(Q) and its orthogonal complement: W_1 = V Q^T + W_1 (I - Q Q^T) with V = W_1 Q (h x m).
Then W_1 x = V (Q^T x) and ||W_1||_F^2 = ||V||_F^2 + ||W_1 (I - Q Q^T)||_F^2, so

    J(theta) = J~(theta~) + (lambda / 2n) ||W_1 (I - Q Q^T)||_F^2,

where J~ is the same objective of the network [m, h, ...] on the images x~ = Q^T x, with
theta~ = (V, W_2, ..., biases). The two terms share no parameter, so in the orthonormal basis
(Q, Q_perp) of each row of W_1 the Hessian is block diagonal:

    H = diag(H~, (lambda/n) I_{h (d - m)}).

Hence (Sylvester): H has the inertia of H~ plus h (d - m) eigenvalues equal to lambda/n > 0, and
lambda_min(H) = min(lambda_min(H~), lambda/n). A critical point of J has W_1 (I - Q Q^T) = 0
(that block's gradient is (lambda/n) times it), so the critical points of J and of J~ are the
same points, and ``expand`` / ``reduce`` map between them exactly.

At the default n_sub = 256 and [784, 30, 10]: p~ = 30 * 256 + 340 = 8,020 parameters against
p = 23,860: a dense H~ of 0.5 GB, factorised in seconds (docs/benchmarks.md). With
n_sub >= d the reduction is the identity (m = d).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .subset import SubsetProblem
from ..model.costs import get_cost
from ..objective import Objective


@dataclass(frozen=True)
class SpanBasis:
    """Q of the module (d x m, float64) and the layer sizes of the full network."""

    basis: torch.Tensor
    sizes: list[int]

    @property
    def reduced_sizes(self) -> list[int]:
        return [self.basis.shape[1], *self.sizes[1:]]

    @property
    def complement_count(self) -> int:
        """h (d - m): the eigenvalues lambda/n that the reduction sets aside."""
        return self.sizes[1] * (self.sizes[0] - self.basis.shape[1])

    def _first_layer(self, theta: torch.Tensor, inputs: int) -> tuple[torch.Tensor, torch.Tensor]:
        count = self.sizes[1] * inputs
        return theta[:count].reshape(self.sizes[1], inputs), theta[count:]

    def reduce(self, theta: torch.Tensor) -> torch.Tensor:
        """theta -> theta~ (V = W_1 Q; every other entry unchanged)."""
        w1, rest = self._first_layer(theta, self.sizes[0])
        return torch.cat([(w1 @ self.basis).reshape(-1), rest])

    def expand(self, reduced: torch.Tensor) -> torch.Tensor:
        """theta~ -> theta with W_1 = V Q^T (no component outside the images' span)."""
        v, rest = self._first_layer(reduced, self.basis.shape[1])
        return torch.cat([(v @ self.basis.T).reshape(-1), rest])

    def complement_norm(self, theta: torch.Tensor) -> float:
        """||W_1 (I - Q Q^T)||_F: 0 at every critical point of J."""
        w1, _ = self._first_layer(theta, self.sizes[0])
        return float((w1 - (w1 @ self.basis) @ self.basis.T).norm())


def span_basis(subset: SubsetProblem) -> SpanBasis:
    """Q from the reduced QR of the subset's images, X^T = Q R (the identity when n_sub >= d)."""
    d = subset.sizes[0]
    x = subset.x
    if len(x) >= d:
        return SpanBasis(torch.eye(d, dtype=torch.float64, device=x.device), subset.sizes)
    q, _ = torch.linalg.qr(x.T, mode="reduced")
    return SpanBasis(q, subset.sizes)


class ReducedSubset(SubsetProblem):
    """J~ of the module: the subset's images in the span's coordinates (x~ = Q^T x), the same
    labels, cost and lambda scaling."""

    def __init__(self, subset: SubsetProblem, basis: SpanBasis):
        self.sizes, self.cost, self.ratio = basis.reduced_sizes, subset.cost, subset.ratio
        self.x, self.y = subset.x @ basis.basis, subset.y
        self.mse = Objective(self.sizes, self.x, self.y, get_cost("quadratic"), 0.0)


def reduced_subset(subset: SubsetProblem, basis: SpanBasis) -> ReducedSubset:
    return ReducedSubset(subset, basis)
