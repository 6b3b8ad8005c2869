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
from l2path.dynamics.cost_test import cost_table
from l2path.dynamics.equilibrium import level_epoch, slopes
from l2path.dynamics.plan import Model, model_epochs
from l2path.dynamics.records import epoch_records, gradient_moments
from l2path.dynamics.tail_off import crossing
from l2path.dynamics.theory import second_order_factor, theory_factors, theory_table
from l2path.dynamics.tables import plot_tables
from l2path.dynamics.training import jobs, run_dynamics
from l2path.train.metrics import split_losses
from l2path.objective import Objective
from l2path.model.init import init_stack

from conftest import REPO, synthetic_dataset

SIZES = [784, 6, 10]


def config(**changes) -> Dynamics:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())["dynamics"]
    raw.update(
        epochs=3,
        question_epochs=3,
        seeds=[0, 1],
        batch_size=10,
        book=None,
        sweep=None,
        workers=1,
        other_cost=None,
    )
    raw["model"].update(
        {"sizes": changes.pop("sizes", SIZES), "dtype": "float64", **changes.pop("model", {})}
    )
    raw.update(changes)
    return Dynamics.model_validate(raw)


def autograd_weight_gradients(net, x, y, cost_name, k):
    """dL/dW per layer of model k, by autograd on the flat parameters (L = mean cost)."""
    objective = Objective(SIZES, x, y, get_cost(cost_name), 0.0)
    gradient = objective.gradient(objective.flat(net, k))
    sizes = [o * i for i, o in zip(SIZES[:-1], SIZES[1:])]
    return [
        g.reshape(o, i)
        for g, i, o in zip(torch.split(gradient[: sum(sizes)], sizes), SIZES[:-1], SIZES[1:])
    ]


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
def test_full_batch_data_gradients_equal_autograd(cost):
    data = synthetic_dataset(n_train=45)
    net = init_stack(SIZES, ["large", "default"], [0, 1], torch.float64)
    ours, _ = data_gradients(net, data.train.x, data.train.y, get_cost(cost), chunk=16)
    for k in range(2):
        for mine, reference in zip(
            ours, autograd_weight_gradients(net, data.train.x, data.train.y, cost, k)
        ):
            assert torch.allclose(mine[k], reference, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
def test_expected_squared_batch_gradient_is_the_mean_over_every_batch_of_autograd(cost):
    """Every one of the C(9, 3) = 84 batches of m = 3 among n = 9 samples, by autograd."""
    data = synthetic_dataset(n_train=9)
    net = init_stack(SIZES, ["large", "default"], [0, 1], torch.float64)
    gradients, expected = gradient_moments(net, data, get_cost(cost), m=3, chunk=4)
    batches = [list(rows) for rows in itertools.combinations(range(9), 3)]
    for k in range(2):
        full = autograd_weight_gradients(net, data.train.x, data.train.y, cost, k)
        squares = [
            [
                float(g.square().sum())
                for g in autograd_weight_gradients(
                    net, data.train.x[rows], data.train.y[rows], cost, k
                )
            ]
            for rows in batches
        ]
        for layer in range(2):
            assert torch.allclose(gradients[layer][k], full[layer], rtol=1e-10, atol=1e-14)
            assert float(expected[layer][k]) == pytest.approx(
                np.mean([row[layer] for row in squares]), rel=1e-10
            )


def test_epoch_records_equal_direct_computations():
    """n = 23 in chunks of 7, the quadratic cost on the first 11: the gradient terms against
    autograd, the saturation and output error against a plain forward pass per model."""
    data = synthetic_dataset(n_train=23)
    net = init_stack(SIZES, ["large", "default"], [0, 1], torch.float64)
    eta, lam, n = [0.1, 0.5], [5.0, 1.0], 23
    records = epoch_records(
        net, data, get_cost("cross_entropy"), eta, lam, batch_size=4, quadratic_images=11, chunk=7
    )
    losses = split_losses(net, data.train, get_cost("cross_entropy"))
    _, expected = gradient_moments(net, data, get_cost("cross_entropy"), m=4)
    x, y = data.train.x, data.train.y
    for k, record in enumerate(records):
        assert record["data_loss"] == pytest.approx(float(losses["loss"][k]), rel=1e-12)
        hidden = torch.sigmoid(x @ net.weights[0][k].T + net.biases[0][k])
        output = torch.sigmoid(hidden @ net.weights[1][k].T + net.biases[1][k])
        assert record["output_error"] == pytest.approx(
            float((output - y).norm(dim=1).mean()), rel=1e-12
        )
        full = autograd_weight_gradients(net, x, y, "cross_entropy", k)
        quadratic = autograd_weight_gradients(net, x[:11], y[:11], "quadratic", k)
        pre_activations = (
            x @ net.weights[0][k].T + net.biases[0][k],
            hidden @ net.weights[1][k].T + net.biases[1][k],
        )
        for layer, (a, z) in enumerate(zip((hidden, output), pre_activations)):
            name, w = f"layer{layer + 1}", net.weights[layer][k]
            decay = eta[k] * lam[k] / n * float(w.norm())
            assert record[f"{name}_saturation_mean_dsigma"] == pytest.approx(
                float((a * (1 - a)).mean()), rel=1e-12
            )
            assert record[f"{name}_saturation_share_z4"] == pytest.approx(
                float((z.abs() > 4).double().mean())
            )
            assert record[f"{name}_data_term"] == pytest.approx(
                eta[k] * float(full[layer].norm()), rel=1e-10
            )
            assert record[f"{name}_radial_ratio"] == pytest.approx(
                eta[k] * float((full[layer] * w).sum() / w.norm()) / decay, rel=1e-10
            )
            assert record[f"{name}_radial_ratio_quadratic"] == pytest.approx(
                eta[k] * float((quadratic[layer] * w).sum() / w.norm()) / decay, rel=1e-10
            )
            assert record[f"{name}_batch_term_rms"] == pytest.approx(
                eta[k] * math.sqrt(float(expected[layer][k])), rel=1e-12
            )


def zero_input_data(n_train: int) -> Dataset:
    """Blank images: the first layer's weight gradient delta x^T is exactly zero."""
    rng = np.random.default_rng(0)

    def split(count):
        return make_split(np.zeros((count, 784)), rng.integers(0, 10, count), torch.float64)

    return Dataset(split(n_train), split(10), split(10))


def test_a_layer_without_gradient_decays_exactly_as_the_theory():
    """n = 45, m = 10: ceil(45/10) = 5 decay steps per epoch (the last mini-batch has 5
    images and is still one step), so the factor is (1 - eta*lambda/n)^5 per epoch."""
    settings = config(epochs=4, question_epochs=4, lambdas=[5.0, 0.0], eta=0.5)
    data = zero_input_data(45)
    frame = run_dynamics(settings, data).epochs
    exact = (1 - 0.5 * 5.0 / 45) ** 5
    assert theory_factors(0.5, 5.0, 45, 10) == (
        pytest.approx(exact, rel=1e-15),
        pytest.approx(math.exp(-0.25)),
    )
    decayed = frame[frame["lambda"] == 5.0]
    for (_, _), part in decayed.groupby(["init", "seed"]):
        l2 = part.sort_values("epoch")["layer1_l2"].to_numpy()
        assert np.allclose(l2[1:] / l2[:-1], exact, rtol=1e-12, atol=0)
        assert (part["layer1_data_term"] == 0).all() and (part["layer1_radial_ratio"] == 0).all()
    control = frame[frame["lambda"] == 0.0]
    assert (
        control.groupby(["init", "seed"])["layer1_l2"].nunique().eq(1).all()
    )  # no decay, no gradient
    theory = theory_table(frame, settings, 45)
    first = theory[theory["layer"] == 1]
    assert np.allclose(first["measured_factor"], exact, rtol=1e-12)
    assert (first["small_epochs"] == 4 * 2).all()  # every epoch of both seeds
    assert first["tail_off_epoch"].isna().all() and (first["l2_change_question_control"] == 1).all()


def test_the_second_order_factor_matches_simulated_noisy_decay_where_the_first_order_misses():
    """W' = d W - eta g_B with g_B = beta W + noise (iid normal, p = 100,000 weights), one epoch
    of 1,000 steps: the simulated shrink of ||W|| against the prediction from the share r and
    the mini-batch term eta^2 E||g_B||^2 / ||W||^2 at the epoch's two ends."""
    eta, lam, n, m = 0.1, 5.0, 5_000, 5
    steps, p, r = math.ceil(n / m), 100_000, 0.3
    beta = r * lam / n
    generator = torch.Generator().manual_seed(0)
    w = torch.randn(p, generator=generator, dtype=torch.float64)
    sigma = (
        math.sqrt(5e-5) * float(w.norm()) / (eta * math.sqrt(p))
    )  # noise term 5e-5 per step at the start
    start = w.clone()
    for _ in range(steps):
        g = beta * w + sigma * torch.randn(p, generator=generator, dtype=torch.float64)
        w = (1 - eta * lam / n) * w - eta * g
    measured = float(w.norm() / start.norm())
    noise_term = [
        eta**2 * (beta**2 * float(v.norm()) ** 2 + p * sigma**2) / float(v.norm()) ** 2
        for v in (start, w)
    ]
    predicted = second_order_factor(eta, lam, n, m, np.array([r]), np.array([np.mean(noise_term)]))
    first_order = theory_factors(eta, lam, n, m)[0] ** (1 + r)
    assert predicted == pytest.approx(measured, rel=1e-3)
    assert (
        abs(first_order / measured - 1) > 0.01
    )  # the mini-batch term lifts the factor by about 2.5%


def test_theory_table_on_a_hand_made_trajectory():
    """Decay at the theory rate for two epochs with negligible gradient, then a slower shrink
    (0.99 per epoch): the measured factor is the theory's; with a one-epoch trend the rate
    falls from 1 to ln 0.99 / ln f between epochs 2 and 3, so it crosses 1/2 at
    2 + (1 - 1/2) / (1 - ln 0.99 / ln f), where the RMS is interpolated in log."""
    settings = config(
        sizes=[784, 10],
        inits=["large"],
        lambdas=[5.0],
        seeds=[0, 1],
        epochs=4,
        question_epochs=4,
        small_gradient_ratio=0.1,
        tail_off_fraction=0.5,
        trend_epochs=1,
    )
    n = 50_000
    f, _ = theory_factors(settings.eta, 5.0, n, settings.batch_size)
    l2 = np.array([1.0, f, f * f, f * f * 0.99, f * f * 0.99**2]) * 80
    rows = [
        {
            "init": "large",
            "seed": seed,
            "eta": settings.eta,
            "lambda": 5.0,
            "cost": settings.model.cost,
            "epoch": e,
            "layer1_l2": l2[e],
            "layer1_rms": l2[e] / 88.5,
            "layer1_ratio": 0.05 if e <= 2 else 3.0,
            "layer1_radial_ratio": 0.01 if e <= 2 else -1.5,
            "layer1_batch_ratio": 0.5,
            "layer1_batch_term_rms": 0.0,
            "layer1_radial_ratio_quadratic": -0.5,
            "layer1_saturation_mean_dsigma": 0.2 - 0.01 * e,
            "layer1_saturation_share_z4": 0.1 * e,
            "output_error": 1.0 - 0.1 * e,
            "layer1_var": 0.5,
            "validation_accuracy": 0.9,
        }
        for seed in (0, 1)
        for e in range(5)
    ]
    longer = {
        **rows[4],
        "epoch": 5,
        "layer1_l2": 1.0,
        "layer1_rms": 1.0,
    }  # seed 0 ran on: only epochs both ran count
    theory = theory_table(pd.DataFrame(rows + [longer]), settings, n).iloc[0]
    assert theory["epochs"] == 4 and theory["rms_end"] == pytest.approx(l2[4] / 88.5)
    assert theory["measured_factor"] == pytest.approx(f, rel=1e-12) and theory["small_epochs"] == 4
    slow = math.log(0.99) / math.log(f)
    crossed = 2 + 0.5 / (1 - slow)
    assert theory["tail_off_epoch"] == pytest.approx(crossed) and theory["tail_off_seeds"] == 2
    assert theory["tail_off_epoch_min"] == pytest.approx(crossed) == theory["tail_off_epoch_max"]
    assert theory["tail_off_rms"] == pytest.approx(l2[2] / 88.5 * 0.99 ** (crossed - 2))
    assert theory["equilibrium_rate"] == pytest.approx(slow) and not theory["equilibrium_levelled"]
    assert (
        theory["equilibrium_radial_ratio"] == -1.5
        and theory["equilibrium_balance_radial_ratio"] == -1
    )
    assert theory["decay_dominated_epochs"] == 2  # epochs 1 and 2 end with ratio < 1
    assert (
        theory["outward_epochs"] == 2
    )  # epochs 3 and 4: the data term pushes outward 1.5x the decay
    assert theory["radial_ratio_small"] == pytest.approx(0.01)
    assert theory["theory_factor_with_gradient"] == pytest.approx(f**1.01, rel=1e-12)
    # no mini-batch term: the second order differs from the first by O(s (eta lambda / n)^2) only
    assert theory["second_order_factor"] == pytest.approx(f**1.01, rel=1e-6)
    assert math.isnan(
        theory["second_order_share_of_gap"]
    )  # the measured factor is the theory's: no gap
    assert theory["saturation_mean_dsigma_start"] == 0.2 and theory[
        "saturation_share_z4_end"
    ] == pytest.approx(0.4)
    assert (
        theory["output_error_end"] == pytest.approx(0.6)
        and theory["radial_ratio_quadratic_median"] == -0.5
    )
    assert theory["shrink_rate_end"] == pytest.approx(slow)
    assert (
        theory["var_question"] == 0.5
        and theory["reported_variance"] == settings.reported_variances[0]
    )
    assert theory["l2_change_question"] == pytest.approx(l2[-1] / l2[0])
    assert math.isnan(theory["l2_change_question_control"])  # no control in this table
    assert theory["inv_sqrt_n_weights"] == pytest.approx(1 / math.sqrt(7840))
    assert theory["epochs_to_inv_sqrt_n_weights"] == pytest.approx(
        math.log(80 / 88.5 * math.sqrt(7840)) / -math.log(f)
    )


def test_a_trend_that_never_reaches_the_fraction_has_no_tail_off():
    epochs = pd.RangeIndex(1, 6)
    assert math.isnan(
        crossing(pd.Series([0.3, 0.2, 0.4, 0.1, 0.0], index=epochs), 0.5)
    )  # never decaying
    assert math.isnan(
        crossing(pd.Series([1.0, 0.9, 0.8, 0.7, 0.6], index=epochs), 0.5)
    )  # still decaying
    assert crossing(pd.Series([0.2, 1.0, 0.6, 0.4, 0.1], index=epochs), 0.5) == pytest.approx(3.5)


def test_the_equilibrium_slope_is_the_power_law_exponent_over_levelled_lambdas():
    """RMS = 0.3 lambda^(-1/2) at lambda = 1, 2, 4, 8 (levelled) and an off-law lambda = 16 that
    has not levelled off: the slope is -1/2 with zero error, the unlevelled point left out."""
    lambdas = [1.0, 2.0, 4.0, 8.0, 16.0]
    theory = pd.DataFrame(
        [
            {
                "eta": 0.5,
                "init": "large",
                "layer": 1,
                "lambda": lam,
                "equilibrium_rms": 0.3 * lam**-0.5 if lam < 16 else 5.0,
                "equilibrium_levelled": lam < 16,
            }
            for lam in lambdas
        ]
    )
    row = slopes(theory).iloc[0]
    assert row["equilibrium_slope"] == pytest.approx(-0.5, abs=1e-12)
    assert (
        row["equilibrium_slope_se"] == pytest.approx(0.0, abs=1e-12)
        and row["equilibrium_lambdas"] == "1 2 4 8"
    )


def test_each_model_is_trained_once_for_its_longest_setting():
    settings = config(
        inits=["large"],
        seeds=[0, 1],
        lambdas=[5.0, 0.0],
        eta=0.1,
        epochs=6,
        question_epochs=2,
        book={"eta": 0.5, "epochs": 3, "lambdas": [5.0]},
        sweep={"eta": 0.5, "epochs": 4, "lambdas": [1.0, 5.0], "seeds": [0]},
    )
    assert model_epochs(settings) == {
        Model("large", 0, 0.1, 5.0): 6,
        Model("large", 0, 0.1, 0.0): 2,
        Model("large", 1, 0.1, 5.0): 6,
        Model("large", 1, 0.1, 0.0): 2,
        Model("large", 0, 0.5, 5.0): 4,
        Model("large", 1, 0.5, 5.0): 3,
        Model("large", 0, 0.5, 1.0): 4,
    }


def test_every_model_records_its_own_epochs_and_equals_training_it_alone():
    """A stack of a 3-epoch model and a 1-epoch control: each has its own rows, and the long
    model's weights equal the same model trained in a stack of its own."""
    data = synthetic_dataset(n_train=40)
    settings = config(
        inits=["default"], seeds=[0], lambdas=[5.0, 0.0], eta=0.5, epochs=3, question_epochs=1
    )
    result = run_dynamics(settings, data)
    assert result.epochs.groupby("lambda")["epoch"].max().to_dict() == {0.0: 1, 5.0: 3}
    alone = run_dynamics(
        config(inits=["default"], seeds=[0], lambdas=[5.0], eta=0.5, epochs=3, question_epochs=1),
        data,
    )
    for mine, reference in zip(
        result.final[Model("default", 0, 0.5, 5.0)].weights,
        alone.final[Model("default", 0, 0.5, 5.0)].weights,
    ):
        assert torch.allclose(mine, reference, rtol=1e-12, atol=1e-15)


def test_float32_training_follows_the_float64_trajectory():
    """The stage trains in float32 with the exact decay: over 5 epochs on 2,000 images at the
    book's eta = 0.5, lambda = 5 (40x the default's decay per step), every recorded layer norm
    stays within 3e-5 (relative) of the float64 run, and so does every per-epoch shrink factor:
    a seventieth of the decay gap the stage reads off them (measured 0.9534 against 0.9512).
    How close float32 stays depends on the CPU's kernels: layer 2 differed by 1.2e-6 on an
    earlier machine and by 1.7e-5 on the 2-core Xeon of 2026-12-05."""
    data32, data64 = (
        synthetic_dataset(n_train=2000, n_eval=50, dtype=dtype)
        for dtype in (torch.float32, torch.float64)
    )
    runs = [
        run_dynamics(
            config(
                sizes=[784, 30, 10],
                model={"dtype": dtype},
                inits=["large", "default"],
                seeds=[0],
                lambdas=[5.0],
                eta=0.5,
                epochs=5,
                question_epochs=5,
            ),
            data,
        ).epochs
        for dtype, data in (("float32", data32), ("float64", data64))
    ]
    for layer in ("layer1", "layer2"):
        single, double = (
            run.sort_values(["init", "epoch"])[f"{layer}_l2"].to_numpy() for run in runs
        )
        assert np.allclose(single, double, rtol=3e-5, atol=0)
        assert np.allclose(single[1:] / single[:-1], double[1:] / double[:-1], rtol=3e-5, atol=0)


def test_dynamics_params_are_validated():
    with pytest.raises(ValueError, match="at least one lambda must be > 0"):
        config(lambdas=[0.0])
    with pytest.raises(ValueError, match="unique"):
        config(inits=["large", "large"])
    with pytest.raises(ValueError, match=r"question_epochs \(5\) must be <= epochs \(3\)"):
        config(question_epochs=5)
    with pytest.raises(ValueError, match="must be > 0"):
        config(sweep={"eta": 0.5, "epochs": 2, "lambdas": [0.0, 1.0]})


def test_stacks_in_worker_processes_give_the_same_table_and_weights():
    """Two spawned workers (one torch thread each) against one process: the same rows in the
    same order and the same final weights, the light epochs without gradient terms."""
    data = synthetic_dataset(n_train=40)
    changes = dict(
        inits=["large", "default"],
        seeds=[0, 1],
        lambdas=[5.0, 0.0],
        eta=0.5,
        epochs=4,
        question_epochs=1,
        gradient_every=3,
        trend_epochs=1,
        book={"eta": 0.1, "epochs": 2, "lambdas": [1.0]},
    )
    alone, parallel = (run_dynamics(config(workers=workers, **changes), data) for workers in (1, 2))
    columns = [c for c in alone.epochs.columns if c != "seconds"]
    pd.testing.assert_frame_equal(alone.epochs[columns], parallel.epochs[columns], rtol=1e-12)
    for model, net in alone.final.items():
        for mine, theirs in zip(net.weights, parallel.final[model].weights):
            assert torch.allclose(mine, theirs, rtol=1e-12, atol=1e-15)
    decayed = alone.epochs[(alone.epochs["eta"] == 0.5) & (alone.epochs["lambda"] == 5.0)]
    light = decayed.groupby("epoch")["layer1_radial_ratio"].apply(lambda v: v.isna().all())
    assert light.to_dict() == {
        0: False,
        1: False,
        2: True,
        3: False,
        4: False,
    }  # epoch 2: weights only
    control = alone.epochs[alone.epochs["lambda"] == 0.0]
    assert control.groupby("epoch")["train_accuracy"].apply(lambda v: v.isna().all()).to_dict() == {
        0: False,
        1: True,
    }


def test_the_other_cost_retrains_the_questions_decayed_models_for_its_epochs():
    settings = config(
        inits=["large", "default"],
        seeds=[0, 1],
        lambdas=[5.0, 0.0],
        eta=0.1,
        epochs=6,
        question_epochs=2,
        other_cost="quadratic",
    )
    planned = model_epochs(settings)
    other = {model: e for model, e in planned.items() if model.cost}
    assert other == {
        Model(init, seed, 0.1, 5.0, "quadratic"): 2
        for init in ("large", "default")
        for seed in (0, 1)
    }
    # a stack holds one cost: its models share the seed's mini-batch order and one cost
    for models, _ in jobs(settings):
        assert len({(m.seed, m.eta, m.cost) for m in models}) == 1


def test_an_other_cost_model_equals_the_stage_trained_with_that_cost():
    """The quadratic twin of a cross-entropy run has the weights of the stage run with the
    quadratic cost (train_sgd's quadratic path is checked against network2 in test_sgd), and
    adding it leaves the cross-entropy model unchanged."""
    data = synthetic_dataset(n_train=40)
    common = dict(inits=["large"], seeds=[0], lambdas=[5.0], eta=0.5, epochs=2, question_epochs=2)
    both = run_dynamics(config(other_cost="quadratic", **common), data)
    alone = {
        cost: run_dynamics(config(model={"cost": cost}, **common), data)
        for cost in ("quadratic", "cross_entropy")
    }
    pairs = [
        (
            Model("large", 0, 0.5, 5.0, "quadratic"),
            alone["quadratic"].final[Model("large", 0, 0.5, 5.0)],
        ),
        (Model("large", 0, 0.5, 5.0), alone["cross_entropy"].final[Model("large", 0, 0.5, 5.0)]),
    ]
    for model, reference in pairs:
        for mine, theirs in zip(both.final[model].weights, reference.weights):
            assert torch.equal(mine, theirs)
    assert sorted(both.epochs["cost"].unique()) == ["cross_entropy", "quadratic"]


def test_cost_table_reads_each_costs_norm_change_by_hand():
    """Two seeds, two costs, one layer: layer 1 grows x2 and x3 under cross-entropy and
    shrinks x0.5 under the quadratic cost; r is -2 then -1.5 under cross-entropy."""
    settings = config(
        sizes=[784, 10],
        inits=["large"],
        seeds=[0, 1],
        lambdas=[5.0, 0.0],
        eta=0.1,
        epochs=2,
        question_epochs=2,
        other_cost="quadratic",
    )
    ends = {("cross_entropy", 0): 2.0, ("cross_entropy", 1): 3.0}
    rows = []
    for cost, seed, epoch in itertools.product(("cross_entropy", "quadratic"), (0, 1), (0, 1, 2)):
        end = ends.get((cost, seed), 0.5)
        rows.append(
            {
                "init": "large",
                "seed": seed,
                "eta": 0.1,
                "lambda": 5.0,
                "cost": cost,
                "epoch": epoch,
                "layer1_l2": 4.0 * end ** (epoch / 2),
                "layer1_radial_ratio": (-2.0 if epoch == 1 else -1.5)
                if cost == "cross_entropy"
                else 0.5,
                "validation_accuracy": 0.9 if cost == "cross_entropy" else 0.8,
            }
        )
    table = cost_table(pd.DataFrame(rows), settings).set_index("cost")
    assert table.loc["cross_entropy", "l2_change"] == pytest.approx(2.5)
    assert table.loc["cross_entropy", "l2_change_min"] == pytest.approx(2.0)
    assert table.loc["cross_entropy", "l2_change_max"] == pytest.approx(3.0)
    assert bool(table.loc["cross_entropy", "grows_every_seed"])
    assert table.loc["cross_entropy", "radial_ratio_median"] == pytest.approx(-1.75)
    assert table.loc["cross_entropy", "outward_epochs"] == 2.0
    assert table.loc["quadratic", "l2_change"] == pytest.approx(0.5)
    assert not bool(table.loc["quadratic", "grows_every_seed"])
    assert table.loc["quadratic", "outward_epochs"] == 0.0
    assert table.loc["quadratic", "validation_accuracy"] == pytest.approx(0.8)
    # without the other cost's rows there is no comparison
    alone = pd.DataFrame([row for row in rows if row["cost"] == "cross_entropy"])
    assert cost_table(alone, settings).empty


def test_level_epoch_extrapolates_a_geometric_approach():
    """trend = 0.4 exp(-0.05 t) reaches 0.1 at t = ln 4 / 0.05 = 27.73; a rising or
    sign-changing trend has no level-off epoch."""
    epochs = np.arange(30, 41, dtype=float)
    falling = pd.Series(0.4 * np.exp(-0.05 * epochs), index=epochs)
    assert level_epoch(falling, 0.1) == pytest.approx(math.log(4) / 0.05, rel=1e-9)
    assert level_epoch(-falling, 0.1) == pytest.approx(math.log(4) / 0.05, rel=1e-9)
    assert math.isnan(level_epoch(pd.Series(0.2 * np.exp(0.01 * epochs), index=epochs), 0.1))
    assert math.isnan(level_epoch(pd.Series(np.linspace(0.2, -0.2, 11), index=epochs), 0.1))
