"""The lambda study's polish through the one polish (``curvature.polish``, ``study_polish``):
it reaches ||grad J|| <= grad_tol, checked by a gradient written directly with torch ops, and
its L-BFGS phase keeps to max_iter."""

from __future__ import annotations

import torch

from l2path.curvature.polish import Polish, polish, study_polish
from l2path.model.costs import get_cost
from l2path.model.init import init_stack
from l2path.objective import Objective

from nielsen_reference import total_cost

SIZES = [784, 5, 10]


def autograd_objective(weights, biases, x, y, lam, cost):
    """J_lambda written directly with torch ops, differentiated by autograd."""
    a = x
    for w, b in zip(weights, biases):
        z = a @ w.T + b
        a = torch.sigmoid(z)
    if cost == "quadratic":
        data = 0.5 * (a - y).square().sum(1).mean()
    else:
        data = (-(y * torch.log(a)) - (1 - y) * torch.log(1 - a)).sum(1).mean()
    return data + lam / (2 * len(x)) * sum(w.square().sum() for w in weights)


def reference_gradient_norm(net, x, y, lam, cost) -> float:
    weights = [w[0].clone().requires_grad_() for w in net.weights]
    biases = [b[0].clone().requires_grad_() for b in net.biases]
    autograd_objective(weights, biases, x, y, lam, cost).backward()
    return float(torch.cat([p.grad.reshape(-1) for p in weights + biases]).norm())


def test_study_polish_maps_the_params_onto_the_one_polish():
    assert study_polish(1e-4, 2000) == Polish(tol=1e-4, lbfgs_tol=1e-4, lbfgs_iterations=2000)


def test_the_study_polish_reaches_grad_tol_and_lowers_the_objective(tiny_data):
    # lambda large enough that J is well conditioned on 60 samples
    x, y = tiny_data.train.x, tiny_data.train.y
    net = init_stack(SIZES, ["default"], [1], torch.float64)
    objective = Objective(SIZES, x, y, get_cost("quadratic"), 20.0)
    start = objective.flat(net)
    result = polish(objective, start, study_polish(grad_tol=1e-7, max_iter=5000))
    assert result.converged and result.grad_norm <= 1e-7
    polished = objective.network(result.theta)
    assert reference_gradient_norm(polished, x, y, 20.0, "quadratic") <= 1e-7
    weights = [w[0].numpy() for w in polished.weights]
    value = total_cost(
        weights, [b[0].numpy() for b in polished.biases], x.numpy(), y.numpy(), 20.0, "quadratic"
    )
    assert value < float(objective.value(start))
    assert abs(value - float(objective.value(result.theta))) < 1e-12
    assert torch.equal(
        net.weights[0], init_stack(SIZES, ["default"], [1], torch.float64).weights[0]
    )


def test_newton_cg_finishes_where_lbfgs_runs_out_of_iterations(tiny_data):
    x, y = tiny_data.train.x, tiny_data.train.y
    objective = Objective(SIZES, x, y, get_cost("cross_entropy"), 20.0)
    theta = objective.flat(init_stack(SIZES, ["large"], [2], torch.float64))
    result = polish(objective, theta, study_polish(grad_tol=1e-8, max_iter=2))
    assert result.lbfgs_iterations <= 2 and result.newton_iterations > 0
    assert result.converged and result.grad_norm <= 1e-8
    assert (
        reference_gradient_norm(objective.network(result.theta), x, y, 20.0, "cross_entropy")
        <= 1e-8
    )
