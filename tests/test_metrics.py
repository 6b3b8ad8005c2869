"""Objective, losses and weight statistics against per-sample references in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from l2path.model.costs import get_cost
from l2path.model.init import init_stack
from l2path.objective import Objective
from l2path.train.metrics import evaluate, gradient_norms, layer_statistics

from conftest import synthetic_dataset
from nielsen_reference import sigmoid, total_cost

SIZES = [784, 6, 10]


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
def test_objective_matches_reference(tiny_data, cost):
    lams = [0.0, 5.0]
    net = init_stack(SIZES, ["default", "large"], [0, 1], torch.float64)
    records = evaluate(net, tiny_data, get_cost(cost), lams)
    x, y = tiny_data.train.x.numpy(), tiny_data.train.y.numpy()
    for k, lam in enumerate(lams):
        weights = [w[k].numpy() for w in net.weights]
        biases = [b[k].numpy() for b in net.biases]
        expected_objective = total_cost(weights, biases, x, y, lam, cost)
        expected_loss = total_cost(weights, biases, x, y, 0.0, cost)
        assert records[k]["objective"] == pytest.approx(expected_objective, rel=1e-12)
        assert records[k]["data_loss"] == pytest.approx(expected_loss, rel=1e-12)
        # in-sample MSE is the quadratic cost whatever the training cost
        assert records[k]["train_mse"] == pytest.approx(
            total_cost(weights, biases, x, y, 0.0, "quadratic"), rel=1e-12
        )


def test_accuracy_and_test_mse(tiny_data):
    net = init_stack(SIZES, ["default"], [2], torch.float64)
    record = evaluate(net, tiny_data, get_cost("quadratic"), [0.0])[0]
    a = tiny_data.test.x.numpy()
    for w, b in zip(net.weights, net.biases):
        a = sigmoid(a @ w[0].numpy().T + b[0].numpy())
    labels = tiny_data.test.labels.numpy()
    assert record["test_accuracy"] == pytest.approx(np.mean(a.argmax(1) == labels))
    assert record["test_mse"] == pytest.approx(
        np.mean(0.5 * ((a - tiny_data.test.y.numpy()) ** 2).sum(1)), rel=1e-12
    )


def test_layer_statistics_against_numpy():
    net = init_stack(SIZES, ["large"], [3], torch.float64)
    stats = layer_statistics(net)
    for layer, w in enumerate(net.weights, start=1):
        flat = w[0].numpy().ravel()
        assert stats[f"layer{layer}_weight_sum"][0] == pytest.approx(flat.sum())
        assert stats[f"layer{layer}_weight_l1"][0] == pytest.approx(np.abs(flat).sum())
        assert stats[f"layer{layer}_weight_l2"][0] == pytest.approx(np.linalg.norm(flat))
        assert stats[f"layer{layer}_weight_var"][0] == pytest.approx(flat.var())
        assert stats[f"layer{layer}_weight_rms"][0] == pytest.approx(np.sqrt(np.mean(flat**2)))


def test_initialisers_have_stated_scale():
    big = init_stack([784, 300, 10], ["large", "default"], [0, 0], torch.float64)
    assert big.weights[0][0].std() == pytest.approx(1.0, rel=0.02)
    assert big.weights[0][1].std() == pytest.approx(1 / np.sqrt(784), rel=0.02)
    assert big.biases[0][1].std() == pytest.approx(1.0, rel=0.2)


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
def test_stacked_gradient_norms_equal_autograd_norms_model_by_model(cost):
    """One stacked pass gives each model's ||grad J_lambda|| (weights with their decay term,
    biases without), as autograd on that model's flat parameters does, in float64."""
    sizes, lams = [784, 6, 10], [0.0, 5.0, 2.0**-8]
    data = synthetic_dataset(n_train=45)
    net = init_stack(sizes, ["large", "default", "default"], [0, 1, 2], torch.float64)
    x, y = data.train.x.to(torch.float64), data.train.y.to(torch.float64)
    ours = gradient_norms(net, x, y, get_cost(cost), lams)
    for k, lam in enumerate(lams):
        objective = Objective(sizes, x, y, get_cost(cost), lam)
        reference = objective.gradient(objective.flat(net, k)).norm()
        assert float(ours[k]) == pytest.approx(float(reference), rel=1e-10)
