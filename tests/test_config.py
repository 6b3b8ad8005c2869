"""Params validation: every bad value fails at load, naming the key and what is allowed."""

from __future__ import annotations

import copy

import pytest
import yaml

from l2path.config import ParamsError, load_params, parse_params

from conftest import REPO
from repo_copy import set_dotted


@pytest.fixture
def raw():
    return yaml.safe_load((REPO / "params.yaml").read_text())


def error_for(raw) -> str:
    with pytest.raises(ParamsError) as info:
        parse_params(raw)
    return str(info.value)


def test_repository_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert params.train.model.sizes[0] == 784 and params.train.lam >= 0
    models = [params.train.model, params.lambda_study.model, params.dynamics.model]
    assert len({type(model) for model in models}) == 1  # one model spec, used by every stage


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("lambda", -1.0, "train.lambda: Input should be greater than or equal to 0 (got -1.0)"),
        ("eta", 0.0, "train.eta: Input should be greater than 0"),
        ("eta", -0.5, "train.eta: Input should be greater than 0 (got -0.5)"),
        ("batch_size", 0, "train.batch_size: Input should be greater than or equal to 1 (got 0)"),
        ("model.sizes", [784, 30, 9], "train.model.sizes: must start with 784 and end with 10"),
        ("model.sizes", [100, 30, 10], "train.model.sizes: must start with 784 and end with 10"),
        (
            "model.cost",
            "hinge",
            "train.model.cost: Input should be 'quadratic' or 'cross_entropy' (got 'hinge')",
        ),
        ("init", "xavier", "train.init: Input should be 'large' or 'default' (got 'xavier')"),
        ("model.dtype", "float16", "train.model.dtype: Input should be 'float32' or 'float64'"),
    ],
)
def test_bad_train_values(raw, key, value, expected):
    bad = copy.deepcopy(raw)
    set_dotted(bad["train"], key, value)
    assert expected in error_for(bad)


def test_unknown_and_missing_keys(raw):
    bad = copy.deepcopy(raw)
    bad["train"]["lamda"] = 1.0
    del bad["train"]["epochs"]
    bad["extra_section"] = {}
    message = error_for(bad)
    assert "train.lamda: unknown key" in message
    assert "train.epochs: Field required" in message
    assert "extra_section: unknown key" in message


def test_every_problem_reported_at_once(raw):
    bad = copy.deepcopy(raw)
    bad["train"]["lambda"] = -1
    bad["data"]["timeout_s"] = 0
    message = error_for(bad)
    assert "train.lambda" in message and "data.timeout_s" in message


def test_unreadable_file(tmp_path):
    with pytest.raises(ParamsError, match="cannot read"):
        load_params(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ParamsError, match="expected a mapping"):
        load_params(tmp_path / "list.yaml")


@pytest.mark.parametrize(
    "path, value, expected",
    [
        (
            "schedules",
            ["ascending", "sideways"],
            "lambda_study.schedules.1: unknown schedule 'sideways'; allowed: ['ascending', "
            "'descending', 'cold'] (got 'sideways')",
        ),
        ("schedules", [], "lambda_study.schedules: List should have at least 1 item"),
        ("chain_seeds", [0, 0], "lambda_study.chain_seeds: entries must be unique"),
        ("cold_seeds", [-1], "lambda_study.cold_seeds: seeds must be >= 0"),
        (
            "collapse_ratio",
            1.5,
            "lambda_study.collapse_ratio: Input should be less than 1 (got 1.5)",
        ),
        ("grid.factor", 1.0, "lambda_study.grid.factor: Input should be greater than 1 (got 1.0)"),
        (
            "grid.lambda_max",
            0.001,
            "lambda_study.grid: lambda_max (0.001) must be >= lambda_start (0.00390625)",
        ),
        (
            "sgd.optimizer",
            "rmsprop",
            "lambda_study.sgd.optimizer: Input should be 'sgd' or 'adam' (got 'rmsprop')",
        ),
        (
            "polish.continue_from",
            "best",
            "lambda_study.polish.continue_from: Input should be 'sgd' or 'polished'",
        ),
        ("model.sizes", [784, 10], None),
        ("model.sizes", [100, 10], "lambda_study.model.sizes: must start with 784 and end with 10"),
    ],
)
def test_bad_lambda_study_values(raw, path, value, expected):
    bad = copy.deepcopy(raw)
    set_dotted(bad, f"lambda_study.{path}", value)
    if expected is None:
        parse_params(bad)  # a valid change: no error
    else:
        assert expected in error_for(bad)


def mappings(tree: dict, prefix: str = ""):
    """Every section and sub-section of params.yaml, as (dotted path, mapping)."""
    for key, value in tree.items():
        if isinstance(value, dict):
            yield f"{prefix}{key}", value
            yield from mappings(value, f"{prefix}{key}.")


def test_every_section_rejects_unknown_keys(raw):
    sections = [path for path, _ in mappings(raw)]
    assert {
        "paths",
        "runtime",
        "data",
        "train",
        "lambda_study.sgd",
        "hessian",
        "chain",
        "dynamics",
        "report",
        "scale_out",
    } <= set(sections)
    bad = copy.deepcopy(raw)
    for path, mapping in mappings(bad):
        mapping["not_a_key"] = 1
    message = error_for(bad)
    for path in sections:
        assert f"{path}.not_a_key: unknown key" in message


@pytest.mark.parametrize(
    "path, value, expected",
    [
        (
            "scale_out.executor",
            "ray",
            "scale_out.executor: Input should be 'local' or 'dask' (got 'ray')",
        ),
        (
            "scale_out.local_workers",
            0,
            "scale_out.local_workers: Input should be greater than or equal to 1",
        ),
        (
            "scale_out.dask_address",
            "tcp://10.0.0.5:8786",
            "scale_out: dask_address is set but executor is not 'dask'",
        ),
        (
            "lambda_study.shards",
            0,
            "lambda_study.shards: Input should be greater than or equal to 1 (got 0)",
        ),
    ],
)
def test_bad_scale_out_values(raw, path, value, expected):
    bad = copy.deepcopy(raw)
    set_dotted(bad, path, value)
    assert expected in error_for(bad)
