"""The weight-decay dynamics against independent references: autograd gradients, the exact
decay of a layer that receives no gradient, and hand-made trajectories."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from l2path.config import Dynamics
from l2path.model.costs import get_cost
from l2path.data.dataset import Dataset, make_split
from l2path.train.metrics import data_gradients
from l2path.dynamics import (gradient_moments, mean_batch_gradient_norms, run_dynamics, sampled_batches,
                             second_order_factor, theory_factors, theory_table)
from l2path.curvature.hessian import Objective
from l2path.model.init import init_stack

from conftest import REPO, synthetic_dataset

SIZES = [784, 6, 10]


def config(**changes) -> Dynamics:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())["dynamics"]
    raw.update(epochs=3, seeds=[0, 1], gradient_batches=3, batch_size=10)
    raw["model"].update(sizes=changes.pop("sizes", SIZES), **changes.pop("model", {}))
    raw.update(changes)
    return Dynamics.model_validate(raw)


def autograd_weight_gradients(net, x, y, cost_name, k):
    """dL/dW per layer of model k, by autograd on the flat parameters (L = mean cost)."""
    objective = Objective(SIZES, x, y, get_cost(cost_name), 0.0)
    gradient = objective.gradient(objective.flat(net, k))
    sizes = [o * i for i, o in zip(SIZES[:-1], SIZES[1:])]
    return [g.reshape(o, i) for g, i, o in zip(torch.split(gradient[:sum(sizes)], sizes), SIZES[:-1], SIZES[1:])]


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
def test_full_batch_data_gradients_equal_autograd(cost):
    data = synthetic_dataset(n_train=45)
    net = init_stack(SIZES, ["large", "default"], [0, 1], torch.float64)
    ours, _ = data_gradients(net, data.train.x, data.train.y, get_cost(cost), chunk=16)
    for k in range(2):
        for mine, reference in zip(ours, autograd_weight_gradients(net, data.train.x, data.train.y, cost, k)):
            assert torch.allclose(mine[k], reference, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
def test_expected_squared_batch_gradient_is_the_mean_over_every_batch_of_autograd(cost):
    """Every one of the C(9, 3) = 84 batches of m = 3 among n = 9 samples, by autograd."""
    data = synthetic_dataset(n_train=9)
    net = init_stack(SIZES, ["large", "default"], [0, 1], torch.float64)
    gradients, expected = gradient_moments(net, data.train.x, data.train.y, get_cost(cost), m=3, chunk=4)
    batches = [list(rows) for rows in itertools.combinations(range(9), 3)]
    for k in range(2):
        full = autograd_weight_gradients(net, data.train.x, data.train.y, cost, k)
        squares = [[float(g.square().sum()) for g in
                    autograd_weight_gradients(net, data.train.x[rows], data.train.y[rows], cost, k)] for rows in batches]
        for layer in range(2):
            assert torch.allclose(gradients[layer][k], full[layer], rtol=1e-10, atol=1e-14)
            assert float(expected[layer][k]) == pytest.approx(np.mean([row[layer] for row in squares]), rel=1e-10)


def test_mean_batch_gradient_norm_is_the_mean_of_autograd_norms():
    data = synthetic_dataset(n_train=40)
    net = init_stack(SIZES, ["default"], [3], torch.float64)
    batches = sampled_batches(seed=0, epoch=0, n=40, m=5, count=4)
    assert batches.shape == (4, 5) and all(len(set(row)) == 5 for row in batches)
    ours = mean_batch_gradient_norms(net, data.train.x, data.train.y, get_cost("cross_entropy"), batches)
    for layer in range(2):
        norms = [autograd_weight_gradients(net, data.train.x[rows], data.train.y[rows], "cross_entropy", 0)[layer]
                 .norm() for rows in batches]
        assert float(ours[layer][0]) == pytest.approx(float(np.mean(norms)), rel=1e-10)


def zero_input_data(n_train: int) -> Dataset:
    """Blank images: the first layer's weight gradient delta x^T is exactly zero."""
    rng = np.random.default_rng(0)
    def split(count):
        return make_split(np.zeros((count, 784)), rng.integers(0, 10, count), torch.float64)
    return Dataset(split(n_train), split(10), split(10))


def test_a_layer_without_gradient_decays_exactly_as_the_theory():
    """n = 45, m = 10: ceil(45/10) = 5 decay steps per epoch (the last mini-batch has 5
    images and is still one step), so the factor is (1 - eta*lambda/n)^5 per epoch."""
    settings = config(epochs=4, lambdas=[5.0, 0.0], eta=0.5)
    data = zero_input_data(45)
    frame = run_dynamics(settings, data).epochs
    exact = (1 - 0.5 * 5.0 / 45) ** 5
    assert theory_factors(0.5, 5.0, 45, 10) == (pytest.approx(exact, rel=1e-15), pytest.approx(math.exp(-0.25)))
    decayed = frame[frame["lambda"] == 5.0]
    for (_, _), part in decayed.groupby(["init", "seed"]):
        l2 = part.sort_values("epoch")["layer1_l2"].to_numpy()
        assert np.allclose(l2[1:] / l2[:-1], exact, rtol=1e-12, atol=0)
        assert (part["layer1_data_term"] == 0).all() and (part["layer1_radial_ratio"] == 0).all()
    control = frame[frame["lambda"] == 0.0]
    assert control.groupby(["init", "seed"])["layer1_l2"].nunique().eq(1).all()  # no decay, no gradient
    theory = theory_table(frame, settings, 45)
    first = theory[theory["layer"] == 1]
    assert np.allclose(first["measured_factor"], exact, rtol=1e-12)
    assert (first["small_epochs"] == 4 * 2).all()  # every epoch of both seeds
    assert first["tail_off_epoch"].isna().all() and (first["l2_change_control"] == 1).all()


def test_the_second_order_factor_matches_simulated_noisy_decay_where_the_first_order_misses():
    """W' = d W - eta g_B with g_B = beta W + noise (iid normal, p = 100,000 weights), one epoch
    of 1,000 steps: the simulated shrink of ||W|| against the prediction from the share r and
    the mini-batch term eta^2 E||g_B||^2 / ||W||^2 at the epoch's two ends."""
    eta, lam, n, m = 0.1, 5.0, 5_000, 5
    steps, p, r = math.ceil(n / m), 100_000, 0.3
    beta = r * lam / n
    generator = torch.Generator().manual_seed(0)
    w = torch.randn(p, generator=generator, dtype=torch.float64)
    sigma = math.sqrt(5e-5) * float(w.norm()) / (eta * math.sqrt(p))  # noise term 5e-5 per step at the start
    start = w.clone()
    for _ in range(steps):
        g = beta * w + sigma * torch.randn(p, generator=generator, dtype=torch.float64)
        w = (1 - eta * lam / n) * w - eta * g
    measured = float(w.norm() / start.norm())
    noise_term = [eta ** 2 * (beta ** 2 * float(v.norm()) ** 2 + p * sigma ** 2) / float(v.norm()) ** 2 for v in (start, w)]
    predicted = second_order_factor(eta, lam, n, m, np.array([r]), np.array([np.mean(noise_term)]))
    first_order = theory_factors(eta, lam, n, m)[0] ** (1 + r)
    assert predicted == pytest.approx(measured, rel=1e-3)
    assert abs(first_order / measured - 1) > 0.01  # the mini-batch term lifts the factor by about 2.5%


def test_theory_table_on_a_hand_made_trajectory():
    """Decay at the theory rate for two epochs with negligible gradient, then a slower shrink
    (0.99 per epoch): the measured factor is the theory's and the tail-off is epoch 3."""
    settings = config(sizes=[784, 10], inits=["large"], lambdas=[5.0], seeds=[0, 1], epochs=4,
                      small_gradient_ratio=0.1, tail_off_fraction=0.5)
    n = 50_000
    f, _ = theory_factors(settings.eta, 5.0, n, settings.batch_size)
    l2 = np.array([1.0, f, f * f, f * f * 0.99, f * f * 0.99 ** 2]) * 80
    rows = [{"init": "large", "seed": seed, "lambda": 5.0, "epoch": e, "layer1_l2": l2[e], "layer1_rms": l2[e] / 88.5,
             "layer1_ratio": 0.05 if e <= 2 else 3.0, "layer1_radial_ratio": 0.01 if e <= 2 else -1.5,
             "layer1_batch_ratio": 0.5, "layer1_batch_term_rms": 0.0, "layer1_radial_ratio_quadratic": -0.5,
             "layer1_saturation_mean_dsigma": 0.2 - 0.01 * e, "layer1_saturation_share_z4": 0.1 * e,
             "output_error": 1.0 - 0.1 * e, "layer1_var": 0.5, "validation_accuracy": 0.9}
            for seed in (0, 1) for e in range(5)]
    theory = theory_table(pd.DataFrame(rows), settings, n).iloc[0]
    assert theory["measured_factor"] == pytest.approx(f, rel=1e-12) and theory["small_epochs"] == 4
    assert theory["tail_off_epoch"] == 3 and theory["tail_off_rms"] == pytest.approx(l2[2] / 88.5)
    assert theory["decay_dominated_epochs"] == 2  # epochs 1 and 2 end with ratio < 1
    assert theory["outward_epochs"] == 2  # epochs 3 and 4: the data term pushes outward 1.5x the decay
    assert theory["radial_ratio_small"] == pytest.approx(0.01)
    assert theory["theory_factor_with_gradient"] == pytest.approx(f ** 1.01, rel=1e-12)
    # no mini-batch term: the second order differs from the first by O(s (eta lambda / n)^2) only
    assert theory["second_order_factor"] == pytest.approx(f ** 1.01, rel=1e-6)
    assert math.isnan(theory["second_order_share_of_gap"])  # the measured factor is the theory's: no gap
    assert theory["saturation_mean_dsigma_start"] == 0.2 and theory["saturation_share_z4_end"] == pytest.approx(0.4)
    assert theory["output_error_end"] == pytest.approx(0.6) and theory["radial_ratio_quadratic_median"] == -0.5
    assert theory["shrink_rate_end"] == pytest.approx(math.log(0.99) / math.log(f))
    assert theory["var_end"] == 0.5 and theory["reported_variance"] == settings.reported_variances[0]
    assert theory["l2_change"] == pytest.approx(l2[-1] / l2[0])
    assert theory["inv_sqrt_n_weights"] == pytest.approx(1 / math.sqrt(7840))
    assert theory["epochs_to_inv_sqrt_n_weights"] == pytest.approx(math.log(80 / 88.5 * math.sqrt(7840)) / -math.log(f))


def test_dynamics_params_are_validated():
    with pytest.raises(ValueError, match="at least one lambda must be > 0"):
        config(lambdas=[0.0])
    with pytest.raises(ValueError, match="unique"):
        config(inits=["large", "large"])
