"""An independent float64 numpy implementation of Nielsen's network2 SGD step.

Written per example, the way network2.py does it (backprop one sample at a time, sum
the gradients over the mini-batch, then apply the L2-regularised update), to serve as
an oracle for the vectorised, stacked trainer.
"""

from __future__ import annotations

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def backprop(weights, biases, x, y, cost):
    """Gradients of C_x for one sample x (n_in,), y (n_out,)."""
    activation, activations, zs = x, [x], []
    for w, b in zip(weights, biases):
        z = w @ activation + b
        zs.append(z)
        activation = sigmoid(z)
        activations.append(activation)
    a = activations[-1]
    if cost == "cross_entropy":
        delta = a - y
    else:
        delta = (a - y) * a * (1 - a)
    grad_w = [None] * len(weights)
    grad_b = [None] * len(biases)
    grad_w[-1] = np.outer(delta, activations[-2])
    grad_b[-1] = delta
    for layer in range(2, len(weights) + 1):
        sp = sigmoid(zs[-layer]) * (1 - sigmoid(zs[-layer]))
        delta = (weights[-layer + 1].T @ delta) * sp
        grad_w[-layer] = np.outer(delta, activations[-layer - 1])
        grad_b[-layer] = delta
    return grad_w, grad_b


def update_mini_batch(weights, biases, xs, ys, eta, lmbda, n, cost):
    """network2's update: w -> (1 - eta*lmbda/n) w - (eta/m) sum grad_w;
    b -> b - (eta/m) sum grad_b."""
    sum_w = [np.zeros_like(w) for w in weights]
    sum_b = [np.zeros_like(b) for b in biases]
    for x, y in zip(xs, ys):
        gw, gb = backprop(weights, biases, x, y, cost)
        sum_w = [s + g for s, g in zip(sum_w, gw)]
        sum_b = [s + g for s, g in zip(sum_b, gb)]
    m = len(xs)
    weights = [(1 - eta * lmbda / n) * w - (eta / m) * s for w, s in zip(weights, sum_w)]
    biases = [b - (eta / m) * s for b, s in zip(biases, sum_b)]
    return weights, biases


def total_cost(weights, biases, xs, ys, lmbda, cost):
    """J = (1/n) sum_x C_x + (lmbda / 2n) sum w^2, evaluated one sample at a time."""
    total = 0.0
    for x, y in zip(xs, ys):
        a = x
        for w, b in zip(weights, biases):
            a = sigmoid(w @ a + b)
        if cost == "cross_entropy":
            total += float(np.sum(-y * np.log(a) - (1 - y) * np.log(1 - a)))
        else:
            total += 0.5 * float(np.sum((a - y) ** 2))
    n = len(xs)
    return total / n + lmbda / (2 * n) * sum(float(np.sum(w**2)) for w in weights)
