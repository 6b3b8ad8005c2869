"""Nielsen's SGD steps for a stack whose models share every mini-batch, with the first
layer's weight updates delayed over a chunk of T steps.

The weights are held as W_l = s_l V_l (``scaled``). Write r_t = eta/m_t for step t's rate
and d_l for the error of layer l computed with V (not W), so that the true error is
f_l(t) d_l with

    f_L(t) = r_t,   f_{l-1}(t) = f_l(t) s_l(t)          (delta_{l-1} = s_l sigma' (V_l^T delta_l))

and step t is  b_l -= f_l(t) sum_x d_l  and  V_l -= (f_l(t) / s_l(t+1)) d_l^T a_{l-1}.

The first layer dominates the cost ((m, n_in) @ (n_in, K n_1), a thin product run at
half the machine's rate). Its update after step u is -D_u^T X_u with D_u = (f/s') d_1, so
its pre-activation at step t of a chunk that starts from V(0) is exactly

    X_t V(t)^T = X_t V(0)^T - sum_{u<t} (X_t X_u^T) D_u

One wide product X V(0)^T for the whole chunk, its Gram matrix X X^T, a small correction
per step and one update V(T) = V(0) - D^T X per chunk replace 2T thin products; in exact
arithmetic the result is identical to T sequential steps (tests compare with the
per-example reference to 1e-12 in float64). Later layers are small and updated every step.

Shapes: the stack has K models; the first layer's activations are kept as (m, K n_1)
rows (one row per sample, the models side by side), later ones as (K, m, n_l).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..model.costs import Cost
from ..model.network import StackedMLP

CHUNK_STEPS = (
    4  # T: measured fastest at K = 16 on 2 cores (benchmarks/sgd_speed.py, docs/benchmarks.md)
)


@dataclass(frozen=True)
class StepFactors:
    """The per-step coefficients above, as lists indexed [layer][step] in the net's dtype.

    scale[l][t] = s_l(t), (K, 1, 1); for layer 0 (K * n_1,), one entry per column of the
    first layer's rows. bias[l][t] = f_l(t) repeated, (K, 1, m): b_l -= bias @ d_l.
    weight[l][t] = f_l(t) / s_l(t+1), (K, 1, 1).
    """

    scale: list[list[torch.Tensor]]
    bias: list[list[torch.Tensor]]
    weight: list[list[torch.Tensor]]

    @classmethod
    def build(
        cls,
        rates: torch.Tensor,
        before: list[torch.Tensor],
        after_inverse: list[torch.Tensor],
        batch_size: int,
        first_width: int,
        dtype: torch.dtype,
    ) -> "StepFactors":
        """rates: (steps, K) float64, r_t per model; before[l] / after_inverse[l]: (steps, K)
        float64, s_l(t) and 1 / s_l(t+1) (``Scales.advance``)."""
        steps, k = rates.shape
        factor = rates
        scale, bias, weight = [None] * len(before), [None] * len(before), [None] * len(before)
        for layer in reversed(range(len(before))):
            shape = (steps, k, 1, 1)
            scale[layer] = (
                (
                    before[layer].repeat_interleave(first_width, dim=1)
                    if layer == 0
                    else before[layer].view(shape)
                )
                .to(dtype)
                .unbind(0)
            )
            bias[layer] = (
                factor.view(shape).expand(steps, k, 1, batch_size).to(dtype).contiguous().unbind(0)
            )
            weight[layer] = (factor * after_inverse[layer]).view(shape).to(dtype).unbind(0)
            factor = factor * before[layer]
        return cls(scale, bias, weight)


def _sigmoid_backward(grad: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """grad * a * (1 - a) in one pass (a = sigmoid(z)): the derivative through the sigmoid."""
    return torch.ops.aten.sigmoid_backward(grad, a)


@dataclass(frozen=True)
class _Views:
    """The stack's parameters in the layouts the steps use (views: updates land in ``net``)."""

    first: torch.Tensor  # V_1 as (K n_1, n_in)
    first_bias: torch.Tensor  # b_1 as (K, 1, n_1)
    first_bias_row: torch.Tensor  # b_1 as (K n_1,)
    weights: list[torch.Tensor]  # V_l, (K, n_l, n_(l-1)), l >= 2
    transposed: list[torch.Tensor]  # V_l^T views
    biases: list[torch.Tensor]  # b_l as (K, 1, n_l)

    @classmethod
    def of(cls, net: StackedMLP) -> "_Views":
        k, width, n_in = net.weights[0].shape
        later_w, later_b = net.weights[1:], net.biases[1:]
        return cls(
            net.weights[0].view(k * width, n_in),
            net.biases[0].view(k, 1, width),
            net.biases[0].view(-1),
            later_w,
            [w.transpose(1, 2) for w in later_w],
            [b.unsqueeze(1) for b in later_b],
        )


def shared_batch_steps(
    net: StackedMLP,
    x: torch.Tensor,
    y: torch.Tensor,
    rows: torch.Tensor,
    cost: Cost,
    batch_size: int,
    factors: StepFactors,
) -> None:
    """Run the steps over samples ``rows`` of x (n, n_in) / y (n, n_out), mini-batches of
    ``batch_size`` in order (the last may be smaller), on every model of ``net`` in place
    (its weights are the V of W = s V; ``factors`` has one entry per step)."""
    views = _Views.of(net)
    buffers = _ChunkBuffers(x, y, net.n_models * net.sizes[1], CHUNK_STEPS, batch_size)
    for start in range(0, len(rows), buffers.rows):
        chunk_x, chunk_y = buffers.gather(x, y, rows[start : start + buffers.rows])
        _chunk(views, buffers, chunk_x, chunk_y, cost, batch_size, factors, start // batch_size)


class _ChunkBuffers:
    """Memory reused by every chunk: its samples, and the rows of D (the first layer's
    scaled errors, (c, K n_1)) with the views each step writes and reads."""

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, columns: int, chunk_steps: int, batch_size: int
    ):
        self.rows = chunk_steps * batch_size
        self.x = torch.empty(self.rows, x.shape[1], dtype=x.dtype)
        self.y = torch.empty(self.rows, y.shape[1], dtype=y.dtype)
        self.errors = torch.empty(self.rows, columns, dtype=x.dtype)
        starts = range(0, self.rows, batch_size)
        self.earlier = [self.errors[:start] for start in starts]  # D of the chunk's earlier steps
        self.step_rows = [self.errors[start : start + batch_size] for start in starts]

    def gather(
        self, x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The chunk's samples, copied into the buffers (index_select into a small buffer:
        the chunk's products then read it from cache)."""
        c = len(rows)
        torch.index_select(x, 0, rows, out=self.x[:c])
        torch.index_select(y, 0, rows, out=self.y[:c])
        return self.x[:c], self.y[:c]


def _chunk(
    views: _Views,
    buffers: _ChunkBuffers,
    x: torch.Tensor,
    y: torch.Tensor,
    cost: Cost,
    batch_size: int,
    factors: StepFactors,
    first: int,
) -> None:
    """The steps first, first + 1, ... of one chunk: x (c, n_in), y (c, n_out)."""
    k, width = views.first_bias.shape[0], views.first_bias.shape[2]
    pre = (x @ views.first.t()).split(batch_size)  # X_t V(0)^T, (m_t, K n_1) each
    gram = (x @ x.t()).split(batch_size)  # rows of X X^T, (m_t, c) each
    targets = y.split(batch_size)
    for t, z in enumerate(pre):
        step, m = first + t, len(z)
        if t:
            z = torch.addmm(z, gram[t][:, : t * batch_size], buffers.earlier[t], alpha=-1)
        a = (
            torch.addcmul(views.first_bias_row, z, factors.scale[0][step])
            .sigmoid_()
            .view(m, k, width)
            .transpose(0, 1)
        )
        d = _later_layers(views, a, targets[t], cost, factors, step)
        views.first_bias.baddbmm_(_rows(factors.bias[0][step], m), d, alpha=-1)
        out = buffers.step_rows[t] if m == batch_size else buffers.step_rows[t][:m]
        torch.mul(d, factors.weight[0][step], out=out.view(m, k, width).transpose(0, 1))
    views.first.addmm_(buffers.errors[: len(x)].t(), x, alpha=-1)


def _rows(bias_factor: torch.Tensor, m: int) -> torch.Tensor:
    """The (K, 1, m) bias factor of a mini-batch of m samples (the last one may be short)."""
    return bias_factor if bias_factor.shape[2] == m else bias_factor[..., :m]


def _later_layers(
    views: _Views, a1: torch.Tensor, y: torch.Tensor, cost: Cost, factors: StepFactors, step: int
) -> torch.Tensor:
    """Forward from the first layer's activations a1 (K, m, n_1), update every later layer,
    and return the first layer's error d_1 (K, m, n_1) (computed with V, see the module)."""
    activations = [a1]
    for layer, (transposed, bias) in enumerate(zip(views.transposed, views.biases), start=1):
        z = torch.bmm(activations[-1], transposed)
        activations.append(torch.addcmul(bias, z, factors.scale[layer][step]).sigmoid_())
    d = cost.delta(activations[-1], y)
    m = len(y)
    for layer in reversed(range(1, len(activations))):
        w = views.weights[layer - 1]
        back = torch.bmm(d, w)  # before this layer's update
        views.biases[layer - 1].baddbmm_(_rows(factors.bias[layer][step], m), d, alpha=-1)
        w.baddbmm_(
            (d * factors.weight[layer][step]).transpose(1, 2), activations[layer - 1], alpha=-1
        )
        d = _sigmoid_backward(back, activations[layer - 1])
    return d
