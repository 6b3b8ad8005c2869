"""Adding a schedule touches one module: a toy schedule registered in ``l2path.schedules`` is
rendered by the report (its heading and words in the page, its colour in the figure) with no
edit to the report."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from matplotlib.image import imread

from l2path.config import load_params
from l2path.monotonicity import MonotonicitySummary
from l2path.report import figures
from l2path.report.html import ReportInputs, build_report
from l2path.schedules import SCHEDULES, Schedule, register
from l2path.verdicts import VerdictSummary

from conftest import REPO

LAMBDAS = [0.25, 0.5, 1.0, 2.0]
WARM = Schedule(
    "toy",
    -1,
    True,
    "λ continuation, toy",
    "tab:purple",
    words="Along the toy chains (λ halving from point to point)",
    fall="the in-sample MSE rose as λ fell",
)
COLD = Schedule("toy_cold", 0, False, "toy cold starts", "tab:purple")


@pytest.fixture(params=[WARM, COLD], ids=["warm", "cold"])
def toy(request):
    register(request.param)
    yield request.param
    SCHEDULES.pop(request.param.name)


def _counts(steps: int, decreases: int) -> dict:
    return {
        "steps": steps,
        "decreases": decreases,
        "decreases_beyond_noise": decreases,
        "decreases_between_critical": 0,
        "largest_decrease": 0.01,
        "total_decrease": 0.01,
        "runs": decreases,
        "longest_run": decreases,
        "runs_beyond_noise": decreases,
        "largest_drop_any_pair": 0.01,
        "paths_with_drop_beyond_noise": decreases,
    }


def inputs_with(names: list[str]) -> ReportInputs:
    """A study of two seeds per schedule on four lambdas; the MSE of each schedule falls once,
    beyond noise, from its second to its third lambda."""
    rng = np.random.default_rng(0)
    points, steps = [], []
    for name in names:
        for seed in (0, 1):
            mse = [0.10, 0.12, 0.11, 0.20]
            for index, lam in enumerate(LAMBDAS):
                points.append(
                    {
                        "key": f"{name}/seed{seed}/lambda{index:02d}",
                        "schedule": name,
                        "seed": seed,
                        "lambda": lam,
                        "train_mse": mse[index] + 1e-3 * seed,
                        "objective": mse[index] + 0.01 * lam,
                        "data_loss": mse[index],
                        "test_accuracy": 0.9 - mse[index],
                        "weight_l2": 10 / (1 + lam),
                        "critical": False,
                        "grad_norm": float(rng.uniform(1e-3, 1e-2)),
                    }
                )
            for index in range(len(LAMBDAS) - 1):
                fell = index == 1
                steps.append(
                    {
                        "schedule": name,
                        "seed": seed,
                        "metric": "train_mse",
                        "lambda_from": LAMBDAS[index],
                        "lambda_to": LAMBDAS[index + 1],
                        "decrease": fell,
                        "beyond_noise": fell,
                    }
                )
    counts = {
        name: {metric: _counts(6, 2) for metric in ("train_mse", "data_loss", "objective")}
        for name in names
    }
    verdicts = {
        name: {
            "nonmonotone_steps": 2,
            "continued_optimisation": 1,
            "within_noise": 0,
            "beyond_noise_unexplained": 1,
        }
        for name in names
    }
    return ReportInputs(
        study=pd.DataFrame(points),
        steps=pd.DataFrame(steps),
        monotonicity=MonotonicitySummary.from_json(counts),
        verdicts=VerdictSummary.from_json(verdicts),
        verdict_steps=None,
        hessian=None,
        saddle_steps=None,
        escapes=None,
        interpolation=None,
        spectra={},
        dynamics_plots={},
        theory=None,
        dynamics_config=load_params(REPO / "params.yaml").dynamics,
        provenance={"schedules": names},
    )


def _has_colour(png: bytes, colour: str) -> bool:
    pixels = imread(io.BytesIO(png))[..., :3]
    return bool((np.abs(pixels - np.array(to_rgb(colour))).max(axis=-1) < 0.02).any())


def test_a_registered_toy_schedule_is_rendered_by_the_report(toy):
    inputs = inputs_with(["ascending", toy.name])
    report = build_report(inputs)
    assert f"<h3>{toy.label}</h3>" in report.html
    opening = (toy.words or toy.name) + ", " + (toy.fall or "the MSE fell") + " at 2 of 6 steps"
    assert opening in report.html and opening in report.markdown
    # the toy's own sentence opens the answer only if it is a chain (warm) schedule
    answer = report.html.split('<p id="lemma">')[0]
    assert (opening in answer) == toy.warm
    numbers = report.numbers.to_json()
    assert numbers[f"{toy.name}_mse_decreases"] == 2 and numbers[f"{toy.name}_within_noise"] == 0

    # the figure draws it in its colour, as chains or as a cold band, with its name
    assert _has_colour(report.figures["path_mse.png"], toy.colour)
    without = inputs_with(["ascending"])
    assert not _has_colour(
        figures.png(figures.path_figure(without.study, without.steps, "train_mse")), toy.colour
    )
    ax = figures.path_figure(inputs.study, inputs.steps, "train_mse").axes[0]
    handles, labels = ax.get_legend_handles_labels()
    label = toy.name if toy.warm else f"{toy.name} (seed mean, min–max)"
    assert to_rgb(handles[labels.index(label)].get_color()) == to_rgb(toy.colour)
    chains = [line for line in ax.get_lines() if to_rgb(line.get_color()) == to_rgb(toy.colour)]
    assert len(chains) == (2 if toy.warm else 1)  # one line per seed, or the seed mean
