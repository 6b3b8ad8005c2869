"""The float64 polish: its gradient against autograd, and the certificate it issues."""
from __future__ import annotations

import torch

from l2path.model.costs import get_cost
from l2path.model.init import init_stack
from l2path.curvature.polish import objective_and_gradient, polish

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


def test_gradient_matches_autograd_and_value_matches_reference(tiny_data):
    lam = 3.0
    for cost in ("quadratic", "cross_entropy"):
        net = init_stack(SIZES, ["default"], [0], torch.float64)
        x, y = tiny_data.train.x, tiny_data.train.y
        value, grads = objective_and_gradient(net, x, y, get_cost(cost), lam)
        weights = [w[0].clone().requires_grad_() for w in net.weights]
        biases = [b[0].clone().requires_grad_() for b in net.biases]
        reference = autograd_objective(weights, biases, x, y, lam, cost)
        reference.backward()
        assert abs(value - float(reference.detach())) < 1e-12
        assert abs(value - total_cost([w.detach().numpy() for w in weights], [b.detach().numpy() for b in biases],
                                      x.numpy(), y.numpy(), lam, cost)) < 1e-12
        for ours, theirs in zip(grads, [w.grad for w in weights] + [b.grad for b in biases]):
            assert torch.allclose(ours[0], theirs, rtol=0, atol=1e-13)


def test_polish_certifies_a_critical_point_and_lowers_the_objective(tiny_data):
    # lambda large enough that J is well conditioned on 60 samples
    net = init_stack(SIZES, ["default"], [1], torch.float64)
    cost = get_cost("quadratic")
    result = polish(net, tiny_data.train.x, tiny_data.train.y, cost, lam=20.0, grad_tol=1e-7, max_iter=5000)
    assert result.certified and result.grad_norm <= 1e-7
    assert result.objective < result.start_objective
    # the certificate is recomputed independently of the optimiser
    _, grads = objective_and_gradient(result.net, tiny_data.train.x, tiny_data.train.y, cost, 20.0)
    assert torch.cat([g.reshape(-1) for g in grads]).norm() <= 1e-7
    # the input model is untouched
    assert torch.equal(net.weights[0], init_stack(SIZES, ["default"], [1], torch.float64).weights[0])


def test_too_few_iterations_is_not_certified(tiny_data):
    net = init_stack(SIZES, ["large"], [2], torch.float64)
    result = polish(net, tiny_data.train.x, tiny_data.train.y, get_cost("cross_entropy"), lam=0.1,
                    grad_tol=1e-12, max_iter=2)
    assert not result.certified and result.iterations <= 2
