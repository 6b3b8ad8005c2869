"""The lambda study on small synthetic data: schedules, warm starts, stacking, resume,
divergence and the polish certificate, each checked against an independent computation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import l2path.study.points as points

from l2path.model.checkpoint import load_model
from l2path.model.costs import get_cost
from l2path.study.grid import lambda_grid
from l2path.train.plateau import PlateauRule
from l2path.study.progress import Progress
from l2path.study.records import PointRecord
from l2path.study.schedules import plan
from l2path.study.store import PointStore
from l2path.train.sgd import SGDSettings, train_sgd

from study_setup import run_small, small_config, small_data, small_plan


def comparable(record: PointRecord) -> PointRecord:
    """A record without wall times, run labels and (tmp-dir dependent) absolute paths."""
    return record.replace(
        train_seconds=0.0,
        polish_seconds=0.0,
        execution="",
        mlflow_run_id=None,
        checkpoint="",
        polished_checkpoint=None,
        parent_checkpoint=None,
    )


def test_plan_orders_each_schedule():
    grid = [1.0, 2.0, 4.0]
    chains = plan(["ascending", "descending", "cold"], [0, 5], [1, 2], grid)
    keys = [[p.key for p in chain] for chain in chains]
    assert keys[0] == [
        "ascending/seed0/lambda00",
        "ascending/seed0/lambda01",
        "ascending/seed0/lambda02",
    ]
    assert keys[2] == [
        "descending/seed0/lambda02",
        "descending/seed0/lambda01",
        "descending/seed0/lambda00",
    ]
    assert [p.parent for p in chains[2]] == [
        None,
        "descending/seed0/lambda02",
        "descending/seed0/lambda01",
    ]
    cold = chains[4:]
    assert len(cold) == 6 and all(len(c) == 1 and c[0].parent is None for c in cold)
    with pytest.raises(ValueError, match="unknown schedule"):
        plan(["sideways"], [0], [0], grid)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    return run_small(root / "points"), small_data()


def test_every_schedule_runs_and_chains_warm_start(study):
    runner, _ = study
    records = {r.key: r for r in runner.results()}
    grid = lambda_grid(0.5, 2.0, 8.0)
    cold = [k for k in records if k.startswith("cold/")]
    assert len(cold) == 3 * len(grid)
    descending = [records[f"descending/seed1/lambda{i:02d}"] for i in reversed(range(len(grid)))]
    assert descending[0].start == "fresh" and descending[0].parent_checkpoint is None
    for earlier, later in zip(descending, descending[1:]):
        assert later.start == "warm" and later.parent_checkpoint == earlier.checkpoint
    ascending = [r for k, r in records.items() if k.startswith("ascending/seed0/")]
    assert ascending[0].lam == 0.5
    assert all(b.parent == a.key for a, b in zip(ascending, ascending[1:]))
    last = ascending[-1]
    assert last.lam == 8.0 or last.collapsed  # a chain ends at lambda_max or at collapse


def test_stacked_points_equal_each_point_trained_alone(study):
    """Retrain points from their recorded start with K = 1 and the recorded epochs: same weights.
    The first point of each chain also equals the cold start with the same seed and lambda."""
    runner, data = study
    config, cost = small_config(), get_cost("quadratic")
    records = {r.key: r for r in runner.results()}
    for key in ["ascending/seed1/lambda01", "descending/seed0/lambda03", "cold/seed2/lambda02"]:
        record = records[key]
        if record.parent_checkpoint:
            net, _ = load_model(record.parent_checkpoint, torch.float64)
        else:
            from l2path.model.init import init_stack

            net = init_stack(config.model.sizes, [config.init], [record.seed], torch.float64)
        settings = SGDSettings(
            eta=[config.sgd.eta],
            lam=[record.lam],
            seeds=[config.sgd.order_seed],
            batch_size=config.sgd.batch_size,
            epochs=record.best_epoch,
        )  # the reported iterate
        train_sgd(net, data.train.x, data.train.y, cost, settings)
        saved, _ = load_model(record.checkpoint)
        for a, b in zip(net.weights + net.biases, saved.weights + saved.biases):
            assert torch.allclose(a, b, rtol=0, atol=1e-12), key
    for top in ("ascending/seed0/lambda00", "descending/seed1/lambda04"):
        _, seed, index = top.split("/")
        twin = load_model(records[f"cold/{seed}/{index}"].checkpoint)[0]
        mine = load_model(records[top].checkpoint)[0]
        assert all(
            torch.allclose(a, b, rtol=0, atol=1e-12) for a, b in zip(mine.weights, twin.weights)
        )


def test_every_warm_chain_point_has_a_same_lambda_control(study):
    """The control of a step k -> k+1 continues theta_k at lambda_k, for as many epochs as the
    point at lambda_{k+1}; retrained alone from the parent's checkpoint it gives the same
    weights."""
    runner, data = study
    points = {r.key: r for r in runner.results()}
    controls = {r.control_of: r for r in runner.control_results()}
    warm = [r for r in points.values() if r.parent is not None]
    assert warm and set(controls) == {r.key for r in warm}
    for point in warm:
        control, parent = controls[point.key], points[point.parent]
        assert (
            control.lam == parent.lam and control.parent == point.parent and control.start == "warm"
        )
        assert control.parent_checkpoint == point.parent_checkpoint == parent.checkpoint
        assert control.epochs == point.epochs or control.diverged or point.diverged
    config, cost = small_config(), get_cost("quadratic")
    for control in [controls[warm[0].key], controls[warm[-1].key]]:
        net, _ = load_model(control.parent_checkpoint, torch.float64)
        train_sgd(
            net,
            data.train.x,
            data.train.y,
            cost,
            SGDSettings(
                eta=[config.sgd.eta],
                lam=[control.lam],
                seeds=[config.sgd.order_seed],
                batch_size=config.sgd.batch_size,
                epochs=control.best_epoch,
            ),
        )
        saved, _ = load_model(control.checkpoint)
        assert all(
            torch.allclose(a, b, rtol=0, atol=1e-12) for a, b in zip(net.weights, saved.weights)
        )


def test_sgd_phase_stops_by_plateau_or_max_epochs(study):
    runner, _ = study
    config = small_config()
    rule = PlateauRule(
        config.sgd.patience,
        config.sgd.rel_tol,
        config.sgd.min_epochs,
        config.sgd.window,
        config.sgd.noise_sds,
    )
    assert config.sgd.window > 1  # the smoothed rule is the one tested
    for record in runner.results():
        objectives = [h.objective for h in record.history]
        assert len(objectives) == record.epochs
        stopped_early = record.epochs < config.sgd.max_epochs
        assert rule.has_plateaued(objectives) or not stopped_early
        assert not any(rule.has_plateaued(objectives[:e]) for e in range(1, len(objectives)))
        # the reported iterate is the best epoch's, and its noise is the sd over the last window
        # epochs
        assert record.best_epoch == 1 + min(range(len(objectives)), key=objectives.__getitem__)
        assert record.sgd.objective == objectives[record.best_epoch - 1]
        tail = objectives[-config.sgd.window :]
        assert record.objective_sd == pytest.approx(float(np.std(tail, ddof=1)), rel=1e-12)
    assert any(
        r.best_epoch < r.epochs for r in runner.results()
    )  # the last epoch is not always the best


def test_polish_certificate_is_an_independent_gradient_norm(study):
    """The recorded gradient norm equals autograd's ||grad J_lambda|| of the saved float64
    weights; critical iff it is under the tolerance; polished points improve J."""
    runner, data = study
    config = small_config()
    x, y = data.train.x, data.train.y
    n = len(x)
    polished = [r for r in runner.results() if r.polished]
    assert polished and {r.schedule for r in polished} == {"ascending"}
    for record in polished[:3]:
        net, _ = load_model(record.polished_checkpoint, torch.float64)
        params = [p.clone().requires_grad_() for p in net.weights + net.biases]
        a = x
        for w, b in zip(params[: len(net.weights)], params[len(net.weights) :]):
            a = torch.sigmoid(a @ w[0].T + b[0])
        objective = 0.5 * (a - y).square().sum() / n + record.lam / (2 * n) * sum(
            w.square().sum() for w in params[: len(net.weights)]
        )
        grads = torch.autograd.grad(objective, params)
        objective = objective.detach()
        norm = float(torch.sqrt(sum(g.square().sum() for g in grads)))
        assert norm == pytest.approx(record.grad_norm, rel=1e-6, abs=1e-12)
        assert record.final.objective == pytest.approx(objective.item(), rel=1e-10)
        assert record.critical == (norm <= config.polish.grad_tol)
        assert record.final.objective <= record.sgd.objective + 1e-12
    assert any(r.critical for r in polished)


def test_chain_continues_from_polished_weights_when_asked(tmp_path):
    config = small_config(
        **{"polish.continue_from": "polished", "schedules": ["ascending"], "chain_seeds": [0]}
    )
    records = run_small(tmp_path / "points", config).results()
    assert len(records) >= 2
    assert records[1].parent_checkpoint == records[0].polished_checkpoint


class Killed(Exception):
    """Stands in for kill -9 (the subprocess test in test_study_flow.py sends the real one)."""


def kill_on_call(monkeypatch, function: str, call: int) -> None:
    """Make ``l2path.study.points.<function>`` raise Killed on its ``call``-th call."""
    original = getattr(points, function)
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise Killed(f"{function} call {call}")
        return original(*args, **kwargs)

    monkeypatch.setattr(points, function, wrapper)


@pytest.mark.parametrize(
    "method, call",
    [("sgd_phase", 2), ("finish_point", 5), ("finish_point", 25)],
    ids=["during-sgd-of-round-2", "while-finishing-round-1", "while-finishing-late"],
)
def test_killed_study_resumes_and_matches_uninterrupted_exactly(
    study, tmp_path, monkeypatch, method, call
):
    """Finished points are not retrained (their records keep the first run's label), and the
    results equal the uninterrupted run's bit for bit (rounds are rebuilt identically)."""
    full, _ = study
    store = tmp_path / "points"
    with monkeypatch.context() as patch:
        kill_on_call(patch, method, call)
        with pytest.raises(Killed):
            run_small(store, label="first")
    finished_before = {
        p.relative_to(store) for p in store.rglob("*.json") if not p.name.endswith(".sgd.json")
    }
    assert Progress.resume(small_plan(), PointStore(store)).resumed == len(finished_before) > 0
    resumed = run_small(store, label="second")
    everything = resumed.results() + resumed.control_results()
    first_label = {r.key for r in everything if r.execution == "first"}
    assert len(first_label) == len(finished_before)
    assert [comparable(r) for r in everything] == [
        comparable(r) for r in full.results() + full.control_results()
    ]
    assert not list(store.rglob("*.sgd.json"))


def test_changed_params_make_finished_points_stale(study, tmp_path):
    store = PointStore(tmp_path / "points")
    first = run_small(store.root)
    finished = len(first.results()) + len(first.control_results())
    same = Progress.resume(small_plan(), store)
    assert same.resumed == finished and same.next_round() == []
    for changed in ({"sgd.eta": 0.4}, {"init": "large"}):
        assert Progress.resume(small_plan(small_config(**changed)), store).resumed == 0
    assert Progress.resume(small_plan(data_md5="another-md5"), store).resumed == 0
    assert Progress.resume(small_plan(n_train=59), store).resumed == 0


def test_divergence_is_recorded_and_ends_only_its_chain(tmp_path):
    """eta * lambda / n > 2 makes the decay factor 1 - eta*lambda/n < -1: the weights blow up
    (here at lambda >= 2, n = 60, eta = 100) until float32 overflows."""
    config = small_config(
        **{
            "sgd.eta": 100.0,
            "sgd.batch_size": 1,
            "model.dtype": "float32",
            "collapse_ratio": 1e-12,
            "polish.schedules": [],
            "cold_seeds": [0],
        }
    )
    runner = run_small(tmp_path / "points", config)
    records = runner.results()
    diverged = [r for r in records if r.diverged]
    assert diverged and all("diverged" in r.message and not r.critical for r in diverged)
    for seed in (0, 1):
        chain = [r for r in records if r.key.startswith(f"ascending/seed{seed}/")]
        assert chain[-1].diverged and not any(r.diverged for r in chain[:-1])
        assert 100.0 * chain[-1].lam / 60 > 2
    descending = [r for r in records if r.schedule == "descending"]
    assert [r.diverged for r in descending] == [True, True]  # each chain stopped at its first point
    cold = [r for r in records if r.schedule == "cold"]
    assert len(cold) == len(lambda_grid(0.5, 2.0, 8.0))  # every cold start ran despite divergence
    assert any(not r.diverged for r in cold)
    saved = json.loads((tmp_path / "points" / f"{diverged[0].key}.json").read_text())
    assert saved["diverged"] is True
