"""The dense Hessian of a one-hidden-layer network, assembled from closed-form blocks.

For sizes [d, h, o] (``objective``'s layout theta = [W_1, W_2, b_1, b_2]) and one image x:

    z_1 = W_1 x + b_1 (h),  a_1 = s(z_1),  z_2 = W_2 a_1 + b_2 (o),  C = sum_k c(z_2k, y_k),

with s the sigmoid, s' = a_1 (1 - a_1), s'' = s' (1 - 2 a_1). Both costs are sums over output
units, so with r = dC/dz_2 and D = diag(d^2 C / dz_2^2) (o each):

    cross-entropy: r = a_2 - y,  D = a_2 (1 - a_2)
    quadratic:     r = (a_2 - y) s_2,  D = s_2^2 + (a_2 - y) s_2 (1 - 2 a_2),  s_2 = a_2 (1 - a_2)

H_C = J^T D J + sum_k r_k grad^2 z_2k (J = dz_2/dtheta). With M = W_2 diag(s') (o, h),
g = W_2^T r (h) and x~ = [x, 1] (the first layer's weights and bias act through z_1 = W_1 x + b_1):

    (z_1, z_1):  A = M^T D M + diag(g s'')                            (h, h)
    (z_1, W_2):  T[j, k, l] = (M^T D)[j, k] a_1l + [j = l] r_k s'_l    (h, o, h)
    (z_1, b_2):  M^T D                                                (h, o)
    (W_2, W_2):  [k = k'] D_k a_1l a_1l';  (W_2, b_2): [k = k'] D_k a_1l;  (b_2, b_2): D

and each z_1 row carries the factor x~ (e.g. the (W_1, W_1) block is sum_x A ⊗ x x^T). The data
loss's H is the mean over the images; the penalty adds (lambda/n) on the weights' diagonal
(``objective``). The (W_1, W_1) block, (h d)^2 entries summed over n images, is one GEMM of
(n, h^2) by (n, d^2): at n_sub = 128, d = 128 (``chain.span``), about 8 times faster than the
p Hessian-vector products of ``chain.hessian`` (p = 4,180: 0.3 s against 2.2 s on one core).

**Error bound** (``DenseHessian.asymmetry``, the products' error the class margins add:
``chain.witness``): each entry is a mean of n products of a few rounded factors, so its error is
at most gamma_{n+c} times the same mean of |products| (c = ``FACTOR_OPERATIONS``), and by Weyl
the eigenvalues move by at most ||E||_2 <= ||E||_F <= gamma_{n+c} (1/n) sum_x ||H_x^abs||_F, with
||H_x^abs||_F bounded by norms of vectors (``_abs_frobenius``). The assembled matrix is
symmetrised, as the products' one is.
"""

from __future__ import annotations

import numpy as np
import torch

from ..curvature.inertia import DenseHessian, gamma
from ..objective import Objective

FACTOR_OPERATIONS = 32  # rounded operations in one product of the blocks, counted generously


def applies(objective: Objective) -> bool:
    """Whether the closed form covers the objective: one hidden layer, a cost of the module."""
    return len(objective.sizes) == 3 and objective.cost.name in ("cross_entropy", "quadratic")


def _output_derivatives(cost: str, a2: torch.Tensor, y: torch.Tensor):
    """r = dC/dz_2 and the diagonal of d^2 C/dz_2^2, both (n, o)."""
    slope = a2 * (1 - a2)
    if cost == "cross_entropy":
        return a2 - y, slope
    return (a2 - y) * slope, slope.square() + (a2 - y) * slope * (1 - 2 * a2)


def one_hidden_layer_hessian(objective: Objective, theta: torch.Tensor) -> DenseHessian:
    """H(theta) of J (see the module), (p, p) float64, symmetric; ``products`` = 0."""
    if not applies(objective):
        raise ValueError(f"the closed-form Hessian needs sizes [d, h, o]; got {objective.sizes}")
    (w1, w2), (b1, b2) = objective.unflat(theta.detach().to(torch.float64))
    d, h, o = objective.sizes
    x, y, n = objective.x, objective.y, objective.n
    a1 = torch.sigmoid(x @ w1.T + b1)  # (n, h)
    a2 = torch.sigmoid(a1 @ w2.T + b2)  # (n, o)
    r, curv = _output_derivatives(objective.cost.name, a2, y)
    s1 = a1 * (1 - a1)
    s2 = s1 * (1 - 2 * a1)
    m = w2[None] * s1[:, None, :]  # M per image, (n, o, h)
    g = r @ w2  # W_2^T r per image, (n, h)
    mtd = m.transpose(1, 2) * curv[:, None, :]  # M^T D, (n, h, o)
    a = mtd @ m
    a = (a + a.transpose(1, 2)) / 2 + torch.diag_embed(g * s2)  # (n, h, h), exactly symmetric
    t = mtd[:, :, :, None] * a1[:, None, None, :]  # (n, h, o, h)
    idx = torch.arange(h, device=x.device)
    t[:, idx, :, idx] += (r[:, :, None] * s1[:, None, :]).permute(2, 0, 1)  # [j = l] r_k s'_l
    xt = torch.cat([x, torch.ones(n, 1, dtype=x.dtype, device=x.device)], dim=1)  # x~, (n, d+1)

    # every block is divided by n before it is placed (the mean over the images), so the
    # p x p matrix is written once and never swept again
    zz = _kron_sum(a, xt, n)  # (j, a, l, b); a = d is b_1's row
    zw2 = torch.einsum("njkl,na->jakl", t, xt).reshape(h, d + 1, o * h) / n
    zb2 = torch.einsum("njk,na->jak", mtd, xt) / n  # (h, d + 1, o)
    w2w2 = torch.zeros(o, h, o, h, dtype=x.dtype, device=x.device)
    outer = torch.einsum("nk,nl,nm->klm", curv, a1, a1)
    w2w2[range(o), :, range(o), :] = (outer + outer.transpose(1, 2)) / 2 / n
    w2b2 = torch.zeros(o, h, o, dtype=x.dtype, device=x.device)
    w2b2[range(o), :, range(o)] = curv.T @ a1 / n

    p, hd, oh = objective.size, h * d, o * h
    # theta's blocks: W_1, W_2, b_1, b_2
    w1_, w2_, b1_, b2_ = slice(0, hd), slice(hd, hd + oh), slice(hd + oh, p - o), slice(p - o, p)
    full = torch.empty(p, p, dtype=x.dtype, device=x.device)
    full[w1_, w1_].view(h, d, h, d).copy_(zz[:, :d, :, :d])  # one strided pass
    full[w1_, b1_] = zz[:, :d, :, d].reshape(hd, h)
    full[b1_, b1_] = zz[:, d, :, d]
    full[w1_, w2_] = zw2[:, :d].reshape(hd, oh)
    full[b1_, w2_] = zw2[:, d]
    full[w1_, b2_] = zb2[:, :d].reshape(hd, o)
    full[b1_, b2_] = zb2[:, d]
    full[w2_, w2_] = w2w2.reshape(oh, oh)
    full[w2_, b2_] = w2b2.reshape(oh, o)
    full[b2_, b2_] = torch.diag(curv.sum(0) / n)
    for rows, columns in [(b1_, w1_), (w2_, w1_), (w2_, b1_), (b2_, w1_), (b2_, b1_), (b2_, w2_)]:
        full[rows, columns] = full[columns, rows].T
    full.diagonal()[: objective.n_weights] += objective.lam / n
    matrix = full.cpu().numpy()  # symmetric by construction: every block mirrored exactly
    bound = gamma(n + FACTOR_OPERATIONS) * _abs_frobenius(m, curv, r, s1, s2, w2, a1, xt) / n
    return DenseHessian(np.ascontiguousarray(matrix), bound, 0)


def _packed(size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs (i <= j) of range(size) (``triu_indices``), and for every (i, j) the index of
    its pair (min, max) among them, (size, size)."""
    upper = torch.triu_indices(size, size, device=device)
    index = torch.empty(size, size, dtype=torch.long, device=device)
    index[upper[0], upper[1]] = torch.arange(upper.shape[1], device=device)
    index[upper[1], upper[0]] = index[upper[0], upper[1]]
    return upper, index


def _kron_sum(a: torch.Tensor, xt: torch.Tensor, divisor: float = 1.0) -> torch.Tensor:
    """sum_i A_i[j, l] xt_i[a] xt_i[b] / ``divisor`` as (j, a, l, b) for symmetric A_i
    ((n, h, h)) and xt ((n, m)): one GEMM over the images on the pairs j <= l and a <= b only (a
    quarter of the full product's work), divided on those pairs, unpacked, so the result is
    exactly symmetric."""
    n, h, _ = a.shape
    m = xt.shape[1]
    hidden, hidden_index = _packed(h, a.device)
    inputs, input_index = _packed(m, a.device)
    packed = a[:, hidden[0], hidden[1]].T @ (xt[:, inputs[0]] * xt[:, inputs[1]])
    packed /= divisor
    rows = packed[hidden_index.reshape(-1)]  # (h h, pairs of inputs)
    full = rows[:, input_index.reshape(-1)].reshape(h, h, m, m)
    return full.permute(0, 2, 1, 3)


def _abs_frobenius(m, curv, r, s1, s2, w2, a1, xt) -> float:
    """sum over images of a bound on ||H_x^abs||_F (the per-image Hessian with every factor
    replaced by its absolute value): the Gauss-Newton part sum_k |D_k| ||J_k||^2, the (z_1, z_1)
    second-order part || |W_2|^T |r| s'' || ||x~||^2 and twice the (W_2, z_1) part
    ||r|| ||s'|| ||x~||."""
    xx = xt.square().sum(1)  # ||x~||^2, (n,)
    rows = m.square().sum(2) * xx[:, None] + a1.square().sum(1)[:, None] + 1  # ||J_k||^2
    gauss = (curv.abs() * rows).sum(1)
    second = ((r.abs() @ w2.abs()) * s2.abs()).norm(dim=1) * xx
    cross = 2 * r.norm(dim=1) * s1.norm(dim=1) * xx.sqrt()
    return float((gauss + second + cross).sum())
