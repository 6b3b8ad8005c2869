"""The generality sweep: its profile refuses bad input by name, a case is the stage's ascending
converged chain on the case's network (parameter count in closed form, drops recounted from
the points' MSE), and the Prefect flow writes the table and one MLflow run per case."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from mlflow import MlflowClient

from l2path.chain.records import ChainDirection, StepVerdictKind
from l2path.chain.stage import run_seed
from l2path.config import Params
from l2path.model.init import init_stack
from l2path.rows import read_rows
from l2path.sweep import (
    SweepCase,
    SweepRow,
    case_plan,
    cases,
    check_subsets,
    load_profile,
    run_case,
)

from l2path.study.grid import lambda_grid

from conftest import REPO, synthetic_dataset
from repo_copy import set_dotted

SMALL = {
    "lambda_study.grid.lambda_start": 0.5,
    "lambda_study.grid.lambda_max": 4.0,
    "lambda_study.model.n_train": None,
    "chain.workers": 1,
}


def small_raw() -> dict:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for dotted, value in SMALL.items():
        set_dotted(raw, dotted, value)
    return raw


def write_profile(path, **fields) -> str:
    profile = {"name": "tiny", "seeds": [0], "hidden": [3, 4], "n_sub": [8], "workers": 2}
    path.write_text(yaml.safe_dump({**profile, **fields}))
    return str(path)


def test_cases_are_every_combination_cheapest_first(tmp_path):
    profile = load_profile(write_profile(tmp_path / "p.yaml", seeds=[1, 0], n_sub=[16, 8]))
    assert [(c.n_sub, c.hidden, c.seed) for c in cases(profile)] == [
        (8, 3, 1),
        (8, 3, 0),
        (8, 4, 1),
        (8, 4, 0),
        (16, 3, 1),
        (16, 3, 0),
        (16, 4, 1),
        (16, 4, 0),
    ]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"widths": [3]}, "widths"),
        ({"hidden": [3, 3]}, "hidden must be distinct"),
        ({"n_sub": [0]}, "n_sub must be distinct and positive"),
        ({"name": "Bad Name"}, "name"),
        ({"seeds": []}, "seeds"),
    ],
)
def test_a_bad_profile_is_refused_naming_the_file_and_the_key(tmp_path, fields, message):
    path = write_profile(tmp_path / "bad.yaml", **fields)
    with pytest.raises(ValueError, match=message) as info:
        load_profile(path)
    assert "bad.yaml" in str(info.value)
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_profile(tmp_path / "missing.yaml")


def test_a_case_is_the_stage_chain_on_its_network_from_the_fresh_initialisation():
    params = Params.model_validate(small_raw())
    data = synthetic_dataset(n_train=60)
    case = SweepCase(seed=1, hidden=3, n_sub=8)
    plan = case_plan(params, case, data)
    # span reduction of [784, h, 10] on m < 784 images: h*m + h + 10*h + 10 parameters
    assert plan.subset.mse.size == 3 * (8 + 11) + 10
    # the start is the study's initialiser at the case's seed, its first layer projected on
    # the span of the 8 images (P = X^+ X), the rest unchanged
    fresh = init_stack([784, 3, 10], [params.lambda_study.init], [1], torch.float64)
    start = plan.basis.expand(plan.starts[1]).numpy()
    images = data.train.x[:8].numpy()
    projection = np.linalg.pinv(images) @ images
    first = fresh.weights[0][0].numpy()
    rest = np.concatenate(
        [fresh.weights[1][0].numpy().ravel(), *(b[0].numpy() for b in fresh.biases)]
    )
    np.testing.assert_allclose(start[: 3 * 784], (first @ projection).ravel(), atol=1e-10)
    np.testing.assert_allclose(start[3 * 784 :], rest, atol=1e-12)

    assert plan.directions == (ChainDirection.UP,) and not plan.cold_starts
    results = run_seed(plan, 1, lambda message: None)
    points, steps = results.points, results.steps
    row = run_case(params, case, data)
    mse = [p.mse for p in points]
    assert [p.lam for p in points] == [0.5, 1.0, 2.0, 4.0][: len(points)]
    assert all(p.converged and p.direction is ChainDirection.UP for p in points)
    assert (row.points, row.steps, row.parameters) == (len(points), len(points) - 1, 67)
    assert row.drops == sum(b < a for a, b in zip(mse, mse[1:]))
    assert row.drops_at_fold == sum(
        s.drop and s.verdict is StepVerdictKind.FOLD_JUMP for s in steps
    )
    verdicts = (
        row.one_branch_of_minima
        + row.fold_jumps
        + row.saddle_branches
        + row.branch_switches
        + row.branches_lost
    )
    assert verdicts == row.steps and row.drops_on_one_branch_of_minima == 0
    assert row.last_lambda == points[-1].lam and row.seconds > 0
    assert row.degenerate_points == sum(p.degenerate for p in points)


@pytest.mark.parametrize("factor", [2.0, 3.0, 4.0])
def test_the_sweep_and_the_stage_run_on_the_study_grid(factor):
    """One lambda grid (``study.grid.lambda_grid``): with factor 3 from 2^-8 the last power
    below 2^15 is 3^15 / 2^8 = 56,050 > lambda_max when the count is rounded, not floored."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    set_dotted(raw, "lambda_study.grid.factor", factor)
    params = Params.model_validate(raw)
    grid = params.lambda_study.grid
    plan = case_plan(params, SweepCase(seed=0, hidden=3, n_sub=8), synthetic_dataset(n_train=60))
    assert plan.grid == lambda_grid(grid.lambda_start, grid.factor, grid.lambda_max)
    assert max(plan.grid) <= grid.lambda_max < max(plan.grid) * factor


def write_prepared(path, n_train=60, n_eval=20, seed=0) -> None:
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, count in (("train", n_train), ("validation", n_eval), ("test", n_eval)):
        arrays[f"x_{name}"] = rng.random((count, 784)).astype(np.float32)
        arrays[f"y_{name}"] = rng.integers(0, 10, count)
    path.parent.mkdir(parents=True)
    np.savez(path, **arrays)


def test_the_sweep_flow_writes_its_table_and_a_run_per_case(tmp_path, monkeypatch, prefect_api):
    from flows.sweep import sweep

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    raw = small_raw()
    write_prepared(tmp_path / raw["paths"]["prepared"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    profile = write_profile(tmp_path / "tiny.yaml")
    table = sweep(profile_file=profile, params_file="params.yaml")
    rows = read_rows(table, SweepRow)
    assert table == "results/sweep_tiny.csv"
    assert [(r.seed, r.hidden, r.n_sub) for r in rows] == [(0, 3, 8), (0, 4, 8)]
    assert [r.parameters for r in rows] == [3 * 19 + 10, 4 * 19 + 10]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("l2-weight-decay").experiment_id])
    (parent,) = [r for r in runs if r.info.run_name == "sweep tiny"]
    children = {r.info.run_name: r for r in runs if r is not parent}
    assert set(children) == {"seed0_hidden3_nsub8", "seed0_hidden4_nsub8"}
    for child, row in zip(children.values(), rows):
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
    assert children["seed0_hidden4_nsub8"].data.metrics["steps"] == rows[1].steps
    assert parent.data.params["hidden"] == "[3, 4]"


def test_the_command_refuses_a_bad_profile_before_prefect_starts(tmp_path, capsys):
    from flows.sweep import main

    with pytest.raises(SystemExit) as info:
        main([write_profile(tmp_path / "bad.yaml", hidden=[0])])
    assert info.value.code == 2
    assert "bad.yaml" in capsys.readouterr().err


def test_an_n_sub_beyond_the_training_set_is_refused_before_any_case(tmp_path):
    profile = load_profile(write_profile(tmp_path / "big.yaml", n_sub=[8, 100]))
    with pytest.raises(ValueError, match=r"n_sub \[100\] exceed the 60 training images"):
        check_subsets(profile, 60)
    check_subsets(profile, 100)
