"""The continuation stage's set-up rules: the device, the subset's size, the chains it follows
and the SGD points it starts from."""

from __future__ import annotations

import pytest
import torch

from l2path.config import load_params
from l2path.continuation import setup
from l2path.schedules import upward_chains

from conftest import REPO
from study_setup import point_record

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_n_sub_is_the_cpu_problem_on_the_cpu_and_on_cuda_the_gpu_setting_or_every_image():
    config = load_params(REPO / "params.yaml").continuation
    assert setup.subset_size(config, CPU, 50_000) == config.n_sub
    assert config.n_sub_gpu is None and setup.subset_size(config, CUDA, 50_000) == 50_000
    gpu = config.model_copy(update={"n_sub_gpu": 5000})
    assert setup.subset_size(gpu, CUDA, 50_000) == 5000
    assert setup.subset_size(gpu, CPU, 50_000) == config.n_sub


def test_the_device_is_the_cpu_when_asked_and_cuda_without_a_gpu_fails():
    assert setup.pick_device("cpu") == CPU
    assert setup.pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            setup.pick_device("cuda")


def test_the_continuation_follows_the_warm_chains_that_run_up_the_grid():
    assert upward_chains() == ["ascending"]


class _Flat:
    """Stands in for an Objective: theta is the net itself."""

    def flat(self, net):
        return net


def test_chain_points_are_one_seeds_upward_chain_up_to_lambda_end_not_diverged(monkeypatch):
    study = [
        point_record(f"{s}/seed{seed}/lambda0{i}", lam, diverged=(i == 1 and seed == 1))
        for s in ("ascending", "descending", "cold")
        for seed in (0, 1)
        for i, lam in enumerate([1.0, 2.0, 4.0])
    ]
    monkeypatch.setattr(
        setup, "load_model", lambda path, dtype: (torch.tensor([len(path)], dtype=dtype), None)
    )
    points = setup.chain_points(study, _Flat(), 1, 2.0 * (1 + 1e-13), CPU)
    assert [(p.seed, p.lam) for p in points] == [(1, 1.0)]  # 2.0 diverged, 4.0 beyond the end
    points = setup.chain_points(study, _Flat(), 0, 4.0, CPU)
    assert [p.lam for p in points] == [1.0, 2.0, 4.0] and points[0].theta.dtype == torch.float64
