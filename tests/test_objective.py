"""The one objective (``l2path.objective.Objective``) against the SGD engine's explicit backprop,
and ``Objective.at`` against a dense float64 Hessian."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from l2path.model.costs import get_cost
from l2path.model.init import init_stack
from l2path.objective import Objective
from l2path.train.metrics import data_gradients, gradient_norms

from test_hessian import SIZES, dense_hessian, small_problem

LAMS = [0.0, 0.7, 5.0]  # one model per lambda, stacked as the study stacks them


def random_data(n: int = 37, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs in [0, 1] and one-hot targets, float64; n not a multiple of the chunk."""
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(rng.random((n, SIZES[0])))
    y = torch.nn.functional.one_hot(torch.as_tensor(rng.integers(0, SIZES[-1], n)), SIZES[-1])
    return x, y.to(torch.float64)


def backprop_gradient(net, k: int, x, y, cost, lam: float) -> torch.Tensor:
    """grad J_lambda of model k by the SGD engine's backprop (``train.sgd.backprop`` through
    ``train.metrics.data_gradients``) plus the decay (lambda/n) w, in theta's layout."""
    weights, biases = data_gradients(net, x, y, cost, chunk=10)
    decayed = [g[k] + (lam / len(x)) * w[k] for g, w in zip(weights, net.weights)]
    return torch.cat([g.reshape(-1) for g in decayed + [b[k] for b in biases]])


@pytest.mark.parametrize("cost_name", ["quadratic", "cross_entropy"])
def test_backprop_gradient_equals_the_objectives_gradient_in_float64(cost_name):
    cost = get_cost(cost_name)
    x, y = random_data()
    net = init_stack(SIZES, ["large"] * 3, [0, 1, 2], torch.float64)
    norms = gradient_norms(net, x, y, cost, LAMS)
    for k, lam in enumerate(LAMS):
        objective = Objective(SIZES, x, y, cost, lam, chunk=16)
        theta = objective.flat(net, k)
        ours = objective.gradient(theta)
        reference = backprop_gradient(net, k, x, y, cost, lam)
        assert float((ours - reference).norm()) <= 1e-12 * float(reference.norm())
        with torch.no_grad():  # L-BFGS's pair, also where the caller turned autograd off
            value, gradient = objective.value_and_gradient(theta)
        assert float((gradient - reference).norm()) <= 1e-12 * float(reference.norm())
        assert float(value) == float(objective.value(theta))
        assert not value.requires_grad and not gradient.requires_grad
        assert float(norms[k]) == pytest.approx(float(ours.norm()), rel=1e-12)


def test_at_shifts_the_hessian_by_the_lambda_change_over_n_on_the_weights():
    """H_lambda' - H_lambda = ((lambda' - lambda)/n) diag(mask): the data-loss Hessian is the
    same computation at both lambdas, so only the penalty's term differs."""
    objective = small_problem("cross_entropy", lam=0.5)
    moved = objective.at(3.5)
    assert (moved.lam, moved.n, moved.cost, moved.chunk) == (3.5, objective.n, objective.cost, 16)
    assert moved.x is objective.x and moved.y is objective.y  # the data are shared
    assert objective.lam == 0.5  # the original is unchanged
    theta = objective.flat(init_stack(SIZES, ["large"], [1], torch.float64))
    shift = dense_hessian(moved, theta) - dense_hessian(objective, theta)
    expected = torch.diag(objective.weight_mask()) * (3.5 - 0.5) / objective.n
    assert torch.allclose(shift, expected, rtol=0, atol=1e-12)
    assert objective.n == len(objective.x) == 40
