"""The stacked SGD trainer against an independent per-example implementation (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from l2path.model.costs import get_cost
from l2path.model.init import epoch_order, init_stack
from l2path.train import delayed
from l2path.train.sgd import SGDSettings, train_sgd

from nielsen_reference import update_mini_batch

SIZES = [784, 7, 5, 10]


def reference_train(net, data, cost, eta, lam, seed, m, epochs, k=0):
    """Run the per-example reference on model k of ``net`` with the trainer's batch order."""
    weights = [w[k].numpy().copy() for w in net.weights]
    biases = [b[k].numpy().copy() for b in net.biases]
    x, y = data.train.x.numpy(), data.train.y.numpy()
    n = len(x)
    for epoch in range(epochs):
        order = epoch_order(seed, epoch, n)
        for start in range(0, n, m):
            batch = order[start : start + m]
            weights, biases = update_mini_batch(
                weights, biases, x[batch], y[batch], eta, lam, n, cost
            )
    return weights, biases


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
@pytest.mark.parametrize("init", ["large", "default"])
def test_matches_per_example_update_rule(tiny_data, cost, init):
    # 60 samples with m = 7: a smaller last batch every epoch is included.
    eta, lam, seed, m, epochs = 0.5, 5.0, 3, 7, 2
    net = init_stack(SIZES, [init], [seed], torch.float64)
    start = net.clone()
    settings = SGDSettings(eta=[eta], lam=[lam], seeds=[seed], batch_size=m, epochs=epochs)
    train_sgd(net, tiny_data.train.x, tiny_data.train.y, get_cost(cost), settings)
    ref_w, ref_b = reference_train(start, tiny_data, cost, eta, lam, seed, m, epochs)
    for ours, theirs in zip(net.weights + net.biases, ref_w + ref_b):
        assert np.abs(ours[0].numpy() - theirs).max() < 1e-12
    # and training really moved the weights
    assert (net.weights[0] - start.weights[0]).abs().max() > 1e-3


@pytest.mark.parametrize("chunk_steps", [1, 3, 16])
def test_delayed_first_layer_chunks_match_per_example_update_rule(
    tiny_data, monkeypatch, chunk_steps
):
    """The first layer's updates delayed over chunks of 1, 3 or 16 mini-batches (the whole
    epoch of 9 in one chunk) give the sequential steps of the reference, in float64."""
    monkeypatch.setattr(delayed, "CHUNK_STEPS", chunk_steps)
    eta, lam, seed, m = 0.5, 5.0, 3, 7
    net = init_stack(SIZES, ["default"], [seed], torch.float64)
    start = net.clone()
    train_sgd(
        net,
        tiny_data.train.x,
        tiny_data.train.y,
        get_cost("quadratic"),
        SGDSettings(eta=[eta], lam=[lam], seeds=[seed], batch_size=m, epochs=2),
    )
    ref_w, ref_b = reference_train(start, tiny_data, "quadratic", eta, lam, seed, m, 2)
    for ours, theirs in zip(net.weights + net.biases, ref_w + ref_b):
        assert np.abs(ours[0].numpy() - theirs).max() < 1e-12


def test_decay_alone_shrinks_weights_by_closed_form(tiny_data):
    """With zero inputs/targets matching outputs, only decay acts on the first layer."""
    data = tiny_data
    x = torch.zeros_like(data.train.x)  # no gradient reaches the first layer's weights
    eta, lam, m = 0.1, 5.0, 10
    net = init_stack(SIZES, ["large"], [0], torch.float64)
    w0 = net.weights[0].clone()
    settings = SGDSettings(eta=[eta], lam=[lam], seeds=[0], batch_size=m, epochs=1)
    train_sgd(net, x, data.train.y, get_cost("quadratic"), settings)
    n = len(x)
    factor = (1 - eta * lam / n) ** (n // m)
    assert torch.allclose(net.weights[0], w0 * factor, rtol=0, atol=1e-14)


@pytest.mark.parametrize(
    "order_seeds", [[0, 1, 2], [7, 7, 7]], ids=["own-batches", "shared-batches"]
)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_stack_equals_models_trained_alone(tiny_data, order_seeds, optimizer):
    """Both paths of the engine: each model with its own mini-batch order (batched
    products) and one order shared by the stack (one wide first-layer product)."""
    etas, lams, seeds = [0.5, 0.1, 1.0], [0.0, 5.0, 0.25], [0, 1, 2]
    inits = ["default", "large", "default"]
    cost = get_cost("cross_entropy")
    stacked = init_stack(SIZES, inits, seeds, torch.float64)
    train_sgd(
        stacked,
        tiny_data.train.x,
        tiny_data.train.y,
        cost,
        SGDSettings(
            eta=etas, lam=lams, seeds=order_seeds, batch_size=10, epochs=3, optimizer=optimizer
        ),
    )
    for k in range(3):
        alone = init_stack(SIZES, [inits[k]], [seeds[k]], torch.float64)
        train_sgd(
            alone,
            tiny_data.train.x,
            tiny_data.train.y,
            cost,
            SGDSettings(
                eta=[etas[k]],
                lam=[lams[k]],
                seeds=[order_seeds[k]],
                batch_size=10,
                epochs=3,
                optimizer=optimizer,
            ),
        )
        for a, b in zip(alone.weights + alone.biases, stacked.weights + stacked.biases):
            assert torch.allclose(a[0], b[k], rtol=0, atol=1e-12)


def test_float32_tracks_float64(tiny_data):
    cost = get_cost("cross_entropy")
    settings = SGDSettings(eta=[0.5], lam=[5.0], seeds=[1], batch_size=10, epochs=2)
    nets = {}
    for dtype in (torch.float32, torch.float64):
        net = init_stack(SIZES, ["default"], [1], dtype)
        x, y = tiny_data.train.x.to(dtype), tiny_data.train.y.to(dtype)
        nets[dtype] = train_sgd(net, x, y, cost, settings).net
    diff = (nets[torch.float32].weights[0].double() - nets[torch.float64].weights[0]).abs().max()
    assert diff < 1e-4


def test_divergence_is_reported_and_stops(tiny_data):
    net = init_stack(SIZES, ["large"], [0], torch.float64)
    # A huge decay factor (1 - eta*lambda/n) < -1 makes the weights blow up.
    settings = SGDSettings(eta=[1e3], lam=[1e3], seeds=[0], batch_size=10, epochs=200)
    outcome = train_sgd(net, tiny_data.train.x, tiny_data.train.y, get_cost("quadratic"), settings)
    assert outcome.diverged == [True]
    assert outcome.epochs_run < 200


def test_callback_can_stop_training(tiny_data):
    seen = []

    def stop_after_two(epoch, net):
        seen.append(epoch)
        return epoch == 2

    net = init_stack(SIZES, ["default"], [0], torch.float64)
    settings = SGDSettings(eta=[0.1], lam=[0.0], seeds=[0], batch_size=10, epochs=10)
    outcome = train_sgd(
        net,
        tiny_data.train.x,
        tiny_data.train.y,
        get_cost("quadratic"),
        settings,
        callbacks=[stop_after_two],
    )
    assert seen == [1, 2] and outcome.epochs_run == 2


def test_same_seed_same_weights_different_seed_different(tiny_data):
    cost = get_cost("quadratic")

    def trained(seed):
        net = init_stack(SIZES, ["default"], [seed], torch.float64)
        settings = SGDSettings(eta=[0.3], lam=[1.0], seeds=[seed], batch_size=8, epochs=2)
        return train_sgd(net, tiny_data.train.x, tiny_data.train.y, cost, settings).net

    a, b, c = trained(4), trained(4), trained(5)
    assert all(torch.equal(p, q) for p, q in zip(a.weights, b.weights))
    assert not torch.equal(a.weights[0], c.weights[0])


def test_per_model_stop_freezes_only_that_model_and_matches_alone(tiny_data):
    """Models stopped at different epochs inside a stack equal each model trained alone
    for its own number of epochs."""
    cost = get_cost("quadratic")
    seeds, stop_at = [0, 1, 2], [1, 3, 2]

    def stop_per_model(epoch, net):
        return [epoch >= s for s in stop_at]

    stacked = init_stack(SIZES, ["default"] * 3, seeds, torch.float64)
    outcome = train_sgd(
        stacked,
        tiny_data.train.x,
        tiny_data.train.y,
        cost,
        SGDSettings(eta=[0.5] * 3, lam=[1.0] * 3, seeds=seeds, batch_size=10, epochs=10),
        callbacks=[stop_per_model],
    )
    assert outcome.model_epochs == stop_at and outcome.epochs_run == 3
    for k in range(3):
        alone = init_stack(SIZES, ["default"], [seeds[k]], torch.float64)
        train_sgd(
            alone,
            tiny_data.train.x,
            tiny_data.train.y,
            cost,
            SGDSettings(eta=[0.5], lam=[1.0], seeds=[seeds[k]], batch_size=10, epochs=stop_at[k]),
        )
        for a, b in zip(alone.weights + alone.biases, stacked.weights + stacked.biases):
            assert torch.allclose(a[0], b[k], rtol=0, atol=1e-12)


def test_diverged_model_does_not_stop_the_others(tiny_data):
    cost = get_cost("quadratic")
    net = init_stack(SIZES, ["large", "default"], [0, 1], torch.float64)
    # model 0's decay factor 1 - eta*lambda/n = -16665.7 overflows float64 within 13 epochs
    settings = SGDSettings(eta=[1e3, 0.1], lam=[1e3, 0.0], seeds=[0, 1], batch_size=10, epochs=20)
    outcome = train_sgd(net, tiny_data.train.x, tiny_data.train.y, cost, settings)
    assert outcome.diverged == [True, False]
    assert outcome.model_epochs[1] == 20 and outcome.model_epochs[0] < 20
    assert torch.isfinite(net.weights[0][1]).all()


def test_adam_matches_torch_optim_adam_with_coupled_l2(tiny_data):
    """Our Adam equals torch.optim.Adam on autograd gradients of (1/m) sum C_x, with
    weight_decay = lambda/n on the weights only, same batches, float64."""
    eta, lam, seed, m, epochs = 0.01, 5.0, 2, 8, 2
    cost = get_cost("cross_entropy")
    net = init_stack(SIZES, ["default"], [seed], torch.float64)
    start = net.clone()
    train_sgd(
        net,
        tiny_data.train.x,
        tiny_data.train.y,
        cost,
        SGDSettings(
            eta=[eta], lam=[lam], seeds=[seed], batch_size=m, epochs=epochs, optimizer="adam"
        ),
    )

    x, y = tiny_data.train.x, tiny_data.train.y
    n = len(x)
    weights = [w[0].clone().requires_grad_() for w in start.weights]
    biases = [b[0].clone().requires_grad_() for b in start.biases]
    optimiser = torch.optim.Adam(
        [{"params": weights, "weight_decay": lam / n}, {"params": biases, "weight_decay": 0.0}],
        lr=eta,
    )
    for epoch in range(epochs):
        order = epoch_order(seed, epoch, n)
        for begin in range(0, n, m):
            batch = order[begin : begin + m]
            a = x[batch]
            for w, b in zip(weights, biases):
                z = a @ w.T + b
                a = torch.sigmoid(z)
            yb = y[batch]
            loss = (
                (yb * torch.nn.functional.softplus(-z) + (1 - yb) * torch.nn.functional.softplus(z))
                .sum(1)
                .mean()
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    for ours, theirs in zip(net.weights + net.biases, weights + biases):
        assert torch.allclose(ours[0], theirs.detach(), rtol=0, atol=1e-12)
    assert (net.weights[0] - start.weights[0]).abs().max() > 1e-3


def test_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="allowed: \\['sgd', 'adam'\\]"):
        SGDSettings(eta=[0.1], lam=[0.0], seeds=[0], batch_size=1, epochs=1, optimizer="rmsprop")


def zero_input_stack(n: int, dtype: torch.dtype, seed: int = 0):
    """n MNIST-shaped samples with zero pixels: no data gradient reaches the first layer."""
    x = torch.zeros(n, 784, dtype=dtype)
    y = torch.nn.functional.one_hot(torch.arange(n) % 10, 10).to(dtype)
    return x, y


@pytest.mark.parametrize("lam", [2.0**-8, 2.0**-7, 2.0**15])
def test_decay_is_exact_in_float32(lam):
    """With no data gradient, the first layer shrinks by exactly (1 - eta*lambda/n)^steps (to
    1e-12 relative) in a float32 run. eta*lambda/n is the study's (eta = 0.5, n = 50,000)
    scaled to n = 5,000: 3.9e-8 at 2^-8, below float32's spacing under 1 (6e-8), and 0.33 at
    2^15."""
    n, m, eta = 5_000, 100, 0.05
    x, y = zero_input_stack(n, torch.float32)
    net = init_stack(SIZES, ["default"], [0], torch.float32)
    w0 = net.weights[0][0].to(torch.float64)
    outcome = train_sgd(
        net,
        x,
        y,
        get_cost("quadratic"),
        SGDSettings(eta=[eta], lam=[lam], seeds=[0], batch_size=m, epochs=1),
    )
    factor = (1 - eta * lam / n) ** (n // m)  # float64, outside the engine
    exact = outcome.exact_weights[0][0]
    assert torch.allclose(exact, w0 * factor, rtol=1e-12, atol=0)
    assert torch.allclose(
        net.weights[0][0].to(torch.float64), w0 * factor, rtol=2**-23, atol=0
    )  # rounded once
    if lam < 1:  # what float32 arithmetic alone would have kept: no decay at all
        assert float(torch.tensor(1 - eta * lam / n, dtype=torch.float32)) in (1.0, 1 - 2**-24)
        assert (exact != w0).all()


def test_neighbouring_small_lambdas_give_different_weights_in_float32():
    """lambda = 2^-8 and 2^-7 round to the same float32 decay factor (the old engine trained
    them as one problem); with the exact decay their weights differ, by about the decay."""
    n, eta = 5_000, 0.05
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.random((n, 784)), dtype=torch.float32)
    y = torch.nn.functional.one_hot(torch.as_tensor(rng.integers(0, 10, n)), 10).to(torch.float32)
    lams = [2.0**-8, 2.0**-7]
    assert torch.tensor(1 - eta * lams[0] / n, dtype=torch.float32) == torch.tensor(
        1 - eta * lams[1] / n, dtype=torch.float32
    )
    net = init_stack(SIZES, ["default"] * 2, [0, 0], torch.float32)
    train_sgd(
        net,
        x,
        y,
        get_cost("quadratic"),
        SGDSettings(eta=[eta] * 2, lam=lams, seeds=[0, 0], batch_size=10, epochs=1),
    )
    first, second = net.weights[0][0], net.weights[0][1]
    assert not torch.equal(first, second)
    # the extra decay of 2^-8 over 500 steps: about 500 * 3.9e-8 = 2e-5 of the weights
    ratio = float((first - second).norm() / first.norm())
    assert 0.5 * 500 * eta * lams[0] / n < ratio < 2 * 500 * eta * lams[0] / n


def test_a_decay_factor_of_zero_is_refused():
    x, y = zero_input_stack(10, torch.float64)
    net = init_stack(SIZES, ["default"], [0], torch.float64)
    with pytest.raises(ValueError, match="nearly\\) zero"):
        train_sgd(
            net,
            x,
            y,
            get_cost("quadratic"),
            SGDSettings(eta=[1.0], lam=[10.0], seeds=[0], batch_size=5, epochs=1),
        )
