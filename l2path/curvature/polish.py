"""Full-batch float64 polish of J_lambda and the critical-point certificate.

J_lambda(w) = (1/n) sum_x C_x(w) + (lambda / 2n) sum_weights w^2 (biases not decayed),
minimised over all weights and biases of one model by scipy's L-BFGS-B from the given
point. The point is *certified* as an approximate critical point when the Euclidean
norm of the full gradient of J_lambda is at most ``grad_tol``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize
import torch

from ..model.costs import Cost
from ..model.network import StackedMLP
from ..train.sgd import backprop


def objective_and_gradient(net: StackedMLP, x: torch.Tensor, y: torch.Tensor, cost: Cost,
                           lam: float) -> tuple[float, list[torch.Tensor]]:
    """J_lambda of a one-model stack and its gradient, as (value, [dW per layer] + [db per layer])."""
    n = len(x)
    _, z = net.forward(x)
    value = cost.per_sample(z, torch.sigmoid(z), y).sum() / n
    value = value + lam / (2 * n) * sum(w.square().sum() for w in net.weights)
    layers = len(net.weights)
    grads: list[torch.Tensor | None] = [None] * (2 * layers)
    scale = torch.full((1, 1, 1), 1.0 / n, dtype=net.dtype)
    for layer, delta, a_in in backprop(net, x.unsqueeze(0), y.unsqueeze(0), cost, scale):
        grads[layer] = torch.bmm(delta.transpose(1, 2), a_in) + (lam / n) * net.weights[layer]
        grads[layers + layer] = delta.sum(1)
    return float(value), grads


def _flatten(tensors: list[torch.Tensor]) -> np.ndarray:
    return torch.cat([t.reshape(-1) for t in tensors]).numpy().astype(np.float64)


def _unflatten(vector: np.ndarray, like: list[torch.Tensor]) -> list[torch.Tensor]:
    out, start = [], 0
    for t in like:
        out.append(torch.as_tensor(vector[start:start + t.numel()]).reshape(t.shape).clone())
        start += t.numel()
    return out


@dataclass
class PolishResult:
    net: StackedMLP          # the polished model (float64, a stack of one)
    objective: float         # J_lambda at the polished point
    grad_norm: float         # ||grad J_lambda||_2 there
    certified: bool          # grad_norm <= grad_tol
    iterations: int
    start_objective: float
    start_grad_norm: float


def polish(net: StackedMLP, x: torch.Tensor, y: torch.Tensor, cost: Cost, lam: float,
           grad_tol: float = 1e-5, max_iter: int = 500) -> PolishResult:
    """Polish model 0 of ``net`` (not modified) in float64 on the full data (x, y)."""
    model = net.model(0).to(torch.float64)
    x, y = x.to(torch.float64), y.to(torch.float64)
    params = model.weights + model.biases
    layers = len(model.weights)

    def fun(vector: np.ndarray) -> tuple[float, np.ndarray]:
        tensors = _unflatten(vector, params)
        value, grads = objective_and_gradient(StackedMLP(tensors[:layers], tensors[layers:]), x, y, cost, lam)
        return value, _flatten(grads)

    start = _flatten(params)
    start_value, start_grad = fun(start)
    result = scipy.optimize.minimize(fun, start, jac=True, method="L-BFGS-B",
                                     options={"maxiter": max_iter, "gtol": grad_tol / 10, "ftol": 0.0})
    value, grad = fun(result.x)
    tensors = _unflatten(result.x, params)
    grad_norm = float(np.linalg.norm(grad))
    return PolishResult(StackedMLP(tensors[:layers], tensors[layers:]), value, grad_norm,
                        grad_norm <= grad_tol, int(result.nit), start_value, float(np.linalg.norm(start_grad)))
