"""The norm's budget over an epoch (l2path.dynamics.budget) against a simulated process with
a closed-form stationary norm, and on a network against Nielsen's trainer and the exact
step identity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from l2path.dynamics.budget import (
    StepTerms,
    balance,
    closes,
    epoch_budget,
    gap_terms,
    step_through_epoch,
)
from l2path.model.costs import get_cost
from l2path.model.init import epoch_order, init_stack
from l2path.train.sgd import SGDSettings, train_sgd

from conftest import synthetic_dataset


def simulate(a: float, sigma: float, dims: int, eta: float, lam: float, n: int, steps: int):
    """W' = s W - eta g_t with g_t = a W_t + xi_t, xi_t ~ N(0, sigma^2 I) independent of W:
    an AR(1) whose stationary E||W||^2 = eta^2 sigma^2 dims / (1 - c^2), c = s - eta a.
    Starts at that norm; returns the step terms (one model, one layer) and E||W||^2."""
    rng = np.random.default_rng(0)
    s = 1 - eta * lam / n
    c = s - eta * a
    stationary = eta**2 * sigma**2 * dims / (1 - c * c)
    w = rng.standard_normal(dims) * math.sqrt(stationary / dims)
    squares, along, gradient_squares = (np.empty((steps, 1)) for _ in range(3))
    for t in range(steps):
        g = a * w + sigma * rng.standard_normal(dims)
        squares[t], along[t], gradient_squares[t] = w @ w, g @ w, g @ g
        w = s * w - eta * g
    terms = StepTerms([squares], [along], [gradient_squares], [np.array([w @ w])])
    return terms, stationary


def test_the_budget_of_an_ar1_process_against_its_closed_forms():
    """With batch noise independent of W the fresh share r_t averages a n / lambda (the
    gradient's pull a W in decay units); the log-norm's fluctuation term is, to leading
    order, -eta^2 sigma^2 / (d E||W||^2) (J ~ -X^2 / 4 with X's spread from <xi, W>); and the
    identity mean r = b(mean noise) + jensen + drift holds to rounding. At the stationary
    norm the balance's r equals a n / lambda exactly (1 - c^2 = eta^2 sigma^2 dims / E||W||^2)."""
    eta, lam, n, a, sigma, dims = 0.5, 2.0, 1000, 0.004, 0.05, 50
    terms, stationary = simulate(a, sigma, dims, eta, lam, n, steps=200_000)
    budget = {
        key: float(value[0])
        for key, value in epoch_budget(terms, 0, np.array([eta]), np.array([lam]), n).items()
    }
    d, s = eta * lam / n, 1 - eta * lam / n
    closed = a * n / lam  # = 2 here
    noise_at_stationary = eta**2 * (a * a + sigma**2 * dims / stationary)
    assert balance(noise_at_stationary, s, d) == pytest.approx(closed, rel=1e-12)
    assert budget["fresh"] == pytest.approx(closed, rel=0.03)
    assert budget["jensen"] == pytest.approx(-(eta**2) * sigma**2 / (d * stationary), rel=0.1)
    assert budget["fresh"] == pytest.approx(
        budget["fresh_balance"] + budget["jensen"] + budget["drift"], abs=1e-9
    )
    assert budget["log_change"] == pytest.approx(budget["measured_log_change"], abs=1e-9)


def test_a_networks_epoch_steps_like_nielsens_trainer_and_its_budget_is_exact():
    """One epoch stepped through (float64) ends with the norms of train_sgd's epoch in the
    same order (checked against network2 in test_sgd); the sum of the steps' log-norm
    changes equals the measured change, and the gap's parts sum to the gap."""
    data = synthetic_dataset(n_train=60)
    net = init_stack([784, 6, 10], ["large", "default"], [3, 3], torch.float64)
    eta, lam, m, epoch, seed = [0.5, 0.5], [2.0, 20.0], 10, 4, 3
    cost = get_cost("cross_entropy")
    terms, along = step_through_epoch(
        net, data, cost, eta, lam, m, epoch_order(seed, epoch, 60), along_points=3
    )
    reference = net.clone()
    settings = SGDSettings(eta=eta, lam=lam, seeds=[seed, seed], batch_size=m, epochs=epoch + 1)
    train_sgd(reference, data.train.x, data.train.y, cost, settings, start_epoch=epoch)
    for layer, w in enumerate(reference.weights):
        assert terms.end_squares[layer] == pytest.approx(w.square().sum((1, 2)).numpy(), rel=1e-12)
        assert terms.squares[layer].shape == (6, 2) and along[layer].shape == (3, 2)
    for layer_rows in gap_terms(net, data, cost, eta, lam, m, seed, epoch, along_points=3):
        for row in layer_rows:
            assert abs(row["identity_error"]) < 1e-12
            assert sum(closes(row).values()) == pytest.approx(row["gap"], abs=1e-9)
