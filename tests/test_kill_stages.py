"""Kill -9 in the middle of a stage (the flow and its temporary Prefect server), re-run it:
it completes with the same results as an uninterrupted run, and nothing half-written is
left among its outputs. (The study stage has its own, finer test: test_study_flow.py.)"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from l2path.checkpoint import load_model

from repo_copy import copy_repo, tool_env
from study_setup import write_synthetic_split

SMALL = {"train.n_train": 300, "train.epochs": 6, "train.dtype": "float64",
         "dynamics.n_train": 300, "dynamics.epochs": 6, "dynamics.seeds": [0, 1], "dynamics.gradient_batches": 5}
# what the stage prints once it is under way, and what it writes
STAGES = {
    "train": ("epoch 2/", ["plots/train_epochs.csv"], ["models/train/model.pt"]),
    "dynamics": ("seed 0 epoch 2", ["results/dynamics.csv", "results/dynamics_theory.csv"],
                 [f"models/dynamics/{init}_seed{seed}_lambda{lam}.pt" for init in ("large", "default")
                  for seed in (0, 1) for lam in ("5", "0")]),
}


def stage_copy(tmp_path, name):
    root = copy_repo(tmp_path / name, SMALL)
    write_synthetic_split(root / "data/prepared/mnist.npz", n_train=300, n_eval=100)
    (tmp_path / f"{name}-home" / "prefect").mkdir(parents=True)
    return root, tool_env(root, tmp_path / f"{name}-home")


def run(stage, root, env):
    out = subprocess.run([sys.executable, "-m", f"flows.{stage}"], cwd=root, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def kill_when_under_way(stage, root, env, marker):
    process = subprocess.Popen([sys.executable, "-m", f"flows.{stage}"], cwd=root, env=env, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
    return [pd.read_csv(root / p).drop(columns=["seconds"], errors="ignore") for p in paths]


@pytest.mark.integration
@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_killed_with_sigkill_then_rerun_matches(stage, tmp_path):
    marker, tables, checkpoints = STAGES[stage]
    whole, whole_env = stage_copy(tmp_path, "whole")
    run(stage, whole, whole_env)
    killed, killed_env = stage_copy(tmp_path, "killed")
    kill_when_under_way(stage, killed, killed_env, marker)
    run(stage, killed, killed_env)
    for ours, reference in zip(tables_without_timings(killed, tables), tables_without_timings(whole, tables)):
        pd.testing.assert_frame_equal(ours, reference)
    for path in checkpoints:
        ours, _ = load_model(killed / path)
        reference, _ = load_model(whole / path)
        assert all(torch.equal(a, b) for a, b in zip(ours.weights + ours.biases, reference.weights + reference.biases))
    leftovers = [p for d in ("models", "results", "plots", "metrics") for p in (killed / d).rglob("*.tmp")]
    assert not leftovers
