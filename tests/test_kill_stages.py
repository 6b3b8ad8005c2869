"""Kill -9 in the middle of a stage (the flow and its temporary Prefect server), re-run it:
it completes with the same results as an uninterrupted run, and nothing half-written is
left among its outputs. Every stage: prepare on the MNIST mirror, train and dynamics on
synthetic data, hessian, continuation and report in a copy of the session's small pipeline.
(The study stage has its own, finer test: test_study_flow.py.)"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from l2path.model.checkpoint import load_model

from repo_copy import copy_repo, tool_env
from study_setup import write_synthetic_split

SMALL = {
    "train.model.n_train": 300,
    "train.epochs": 6,
    "train.model.dtype": "float64",
    "dynamics.model.n_train": 300,
    "dynamics.epochs": 6,
    "dynamics.seeds": [0, 1],
    "dynamics.question_epochs": 3,
    "dynamics.book": None,
    "dynamics.sweep": None,
}
# what the stage prints once it is under way, and what it writes
STAGES = {
    "train": ("epoch 2/", ["plots/train_epochs.csv"], ["models/train/model.pt"]),
    "dynamics": (
        "(1/2) epoch 2/",
        ["results/dynamics.csv", "results/dynamics_theory.csv"],
        [
            f"models/dynamics/{init}_seed{seed}_eta0.1_lambda{lam}.pt"
            for init in ("large", "default")
            for seed in (0, 1)
            for lam in ("5", "0")
        ],
    ),
}


# hessian, continuation and report are killed in a copy of the session's small pipeline
# (``conftest.pipeline_repro``: the real MNIST mirror, PIPELINE_STUDY's params), and compared
# with it. Its study is unpolished, as in params.yaml: polished to minima, its ascending chains
# have no non-monotone step (L rises with lambda along minima), so the hessian stage's
# saddle-step tables would be empty; its chains are one seed's, and a kill lands in the first.
LATE_STAGES = {
    "hessian": (
        "analyse-curvature",
        ["results/hessian.csv", "results/saddle_steps.csv", "results/interpolation.csv"],
    ),
    "continuation": (
        "ascending chain, lambda",
        ["results/chain_points.csv", "results/chain_steps.csv", "results/chains.csv"],
    ),
    "report": ("Beginning flow run", []),
}


def stage_env(tmp_path, name, mirror):
    (tmp_path / f"{name}-home" / "prefect").mkdir(parents=True)
    return tool_env(mirror, tmp_path / f"{name}-home")


def stage_copy(tmp_path, name, overrides=SMALL, mirror=None):
    """A repo copy; with no MNIST mirror, its prepared data are synthetic."""
    root = copy_repo(tmp_path / name, overrides)
    if mirror is None:
        write_synthetic_split(root / "data/prepared/mnist.npz", n_train=300, n_eval=100)
    return root, stage_env(tmp_path, name, mirror or root)


def run(stage, root, env):
    out = subprocess.run(
        [sys.executable, "-m", f"flows.{stage}"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def kill_when_under_way(stage, root, env, marker):
    process = subprocess.Popen(
        [sys.executable, "-m", f"flows.{stage}"],
        cwd=root,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    seen = ""
    for line in process.stdout:
        seen += line
        if marker in line or time.monotonic() > deadline:
            break
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert marker in seen, seen[-3000:]


def tables_without_timings(root, paths):
    """The tables without columns that differ between two runs (wall times, run ids)."""
    tables = [pd.read_csv(root / p) for p in paths]
    return [
        t.drop(columns=[c for c in t.columns if "seconds" in c or "run_id" in c]) for t in tables
    ]


def assert_nothing_half_written(root):
    leftovers = [
        p
        for d in ("data", "models", "results", "plots", "metrics", "reports")
        if (root / d).exists()
        for p in (root / d).rglob("*")
        if p.name.endswith((".tmp", ".old"))
    ]
    leftovers += [p for p in root.glob(".reports.*")]
    assert not leftovers


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.integration
@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_killed_with_sigkill_then_rerun_matches(stage, tmp_path):
    marker, tables, checkpoints = STAGES[stage]
    whole, whole_env = stage_copy(tmp_path, "whole")
    run(stage, whole, whole_env)
    killed, killed_env = stage_copy(tmp_path, "killed")
    kill_when_under_way(stage, killed, killed_env, marker)
    run(stage, killed, killed_env)
    for ours, reference in zip(
        tables_without_timings(killed, tables), tables_without_timings(whole, tables)
    ):
        pd.testing.assert_frame_equal(ours, reference)
    for path in checkpoints:
        ours, _ = load_model(killed / path)
        reference, _ = load_model(whole / path)
        assert all(
            torch.equal(a, b)
            for a, b in zip(ours.weights + ours.biases, reference.weights + reference.biases)
        )
    assert_nothing_half_written(killed)


@pytest.mark.integration
def test_prepare_killed_with_sigkill_then_rerun_matches(mirror, tmp_path):
    whole, whole_env = stage_copy(tmp_path, "whole", overrides=None, mirror=mirror)
    run("prepare", whole, whole_env)
    killed, killed_env = stage_copy(tmp_path, "killed", overrides=None, mirror=mirror)
    kill_when_under_way(
        "prepare", killed, killed_env, "Task run 'fetch-mnist"
    )  # the split is being built
    run("prepare", killed, killed_env)
    for path in [
        "data/prepared/mnist.npz",
        "data/prepared/manifest.json",
        *(p.relative_to(whole).as_posix() for p in (whole / "data/raw").iterdir()),
    ]:
        assert md5(killed / path) == md5(whole / path), path
    assert_nothing_half_written(killed)


@pytest.mark.integration
@pytest.mark.parametrize("stage", sorted(LATE_STAGES))
def test_late_stage_killed_with_sigkill_then_rerun_matches(stage, pipeline_repro, tmp_path):
    marker, tables = LATE_STAGES[stage]
    whole = pipeline_repro.root  # the uninterrupted run, never changed
    killed = pipeline_repro.copy_to(tmp_path / "killed")
    env = stage_env(tmp_path, "killed", killed)
    kill_when_under_way(stage, killed, env, marker)
    run(stage, killed, env)
    for ours, reference in zip(
        tables_without_timings(killed, tables), tables_without_timings(whole, tables)
    ):
        pd.testing.assert_frame_equal(ours, reference)
    if stage == "hessian":
        spectra = sorted(p.relative_to(whole) for p in (whole / "results/spectra").rglob("*.npz"))
        assert spectra and spectra == sorted(
            p.relative_to(killed) for p in (killed / "results/spectra").rglob("*.npz")
        )
    if stage == "report":
        numbers = [
            json.loads((root / "metrics/report.json").read_text()) for root in (killed, whole)
        ]
        assert numbers[0] == numbers[1]
        figures = [
            sorted(p.name for p in (root / "reports/figures").iterdir()) for root in (killed, whole)
        ]
        assert figures[0] == figures[1] and len(figures[0]) >= 5
        assert "<img" in (killed / "reports/index.html").read_text()
    assert_nothing_half_written(killed)
