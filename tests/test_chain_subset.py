"""The converged chains' problem: J on the first n_sub images with lambda/n of the study, the
device rule, and the polish settings read from params.yaml."""

from __future__ import annotations

import pytest
import torch

from l2path.chain.subset import SubsetProblem, pick_device, polish_from
from l2path.config import load_params

from conftest import REPO
from test_hessian import SIZES, small_problem

CPU = torch.device("cpu")


def test_the_device_is_the_cpu_when_asked_and_cuda_without_a_gpu_fails():
    assert pick_device("cpu") == CPU
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            pick_device("cuda")


def test_n_sub_beyond_the_training_set_is_refused_before_any_work():
    problem = small_problem(lam=0.1)
    with pytest.raises(ValueError, match="chain.n_sub = 41"):
        SubsetProblem(SIZES, problem.x, problem.y, "quadratic", n_full=40, n_sub=41)


def test_the_penalty_per_image_is_the_studys():
    """J_sub(lambda) - J_sub(0) = (lambda n_sub / n) / (2 n_sub) ||w||^2 = lambda ||w||^2 / 2n,
    the study's penalty, on the first n_sub images only."""
    problem = small_problem(lam=0.1)
    n_full, n_sub, lam = 4 * len(problem.x), len(problem.x) // 2, 0.7
    subset = SubsetProblem(SIZES, problem.x, problem.y, "quadratic", n_full, n_sub)
    theta = torch.randn(
        problem.size, dtype=torch.float64, generator=torch.Generator().manual_seed(3)
    )
    w = theta * problem.weight_mask()
    penalty = subset.at(lam).value(theta) - subset.at(0.0).value(theta)
    assert float(penalty) == pytest.approx(lam * float(w @ w) / (2 * n_full), rel=1e-12)
    # the data term is the mean over the first n_sub images
    first = problem.at(0.0)
    half = type(first)(SIZES, problem.x[:n_sub], problem.y[:n_sub], first.cost, 0.0)
    assert float(subset.at(0.0).value(theta)) == pytest.approx(float(half.value(theta)), rel=1e-12)


def test_the_polish_settings_are_the_chain_params():
    config = load_params(REPO / "params.yaml").chain
    settings = polish_from(config)
    assert (settings.tol, settings.lbfgs_iterations, settings.newton_iterations) == (
        config.grad_tol,
        config.lbfgs_iterations,
        config.newton_iterations,
    )
