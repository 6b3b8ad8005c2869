"""Wall time of the study stage by where its shards run: one shard, N shards on threads,
N shards on a Dask LocalCluster of N worker processes.

Each configuration runs ``python -m flows.study`` from scratch in a throw-away copy of
this checkout (its files as git lists them, the prepared data linked, not copied), with a
reduced study: the first --n-train training images, the grid 2^-8 .. 2^(--top), at most
--epochs epochs per point, the default schedules and seeds. Prefect's temporary server and
the LocalCluster's start-up are included: they are what a user waits for. Prints a table;
also checks that the configurations with the same number of shards give equal results.

    python benchmarks/study_shards.py [--shards 2] [--n-train 10000] [--top 4] [--epochs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml
from machine import describe  # benchmarks/machine.py: the machine, in one line

REPO = Path(__file__).resolve().parents[1]
VARYING = ["train_seconds", "polish_seconds", "execution", "mlflow_run_id", "parent_mlflow_run_id"]


def checkout_copy(dest: Path, overrides: dict) -> Path:
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, names):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    for dotted, value in overrides.items():
        *sections, key = dotted.split(".")
        node = params
        for section in sections:
            node = node[section]
        node[key] = value
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    prepared = dest / params["paths"]["prepared"]
    prepared.parent.mkdir(parents=True, exist_ok=True)
    prepared.symlink_to(REPO / params["paths"]["prepared"])
    return dest


def run_study(root: Path, home: Path) -> float:
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    for key in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    home.mkdir(parents=True)
    clock = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "flows.study"], cwd=root, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - clock
    if out.returncode != 0:
        raise SystemExit(f"study failed in {root}:\n{out.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--top", type=int, default=4, help="largest lambda is 2^top")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    print(describe(), flush=True)
    if not (REPO / "data/prepared/mnist.npz").exists():
        raise SystemExit("run `dvc repro prepare` first")
    reduced = {
        "lambda_study.model.n_train": args.n_train,
        "lambda_study.grid.lambda_max": 2.0**args.top,
        "lambda_study.sgd.max_epochs": args.epochs,
    }
    configurations = [
        ("1 shard, threads", 1, "local"),
        (f"{args.shards} shards, threads", args.shards, "local"),
        (f"{args.shards} shards, Dask LocalCluster", args.shards, "dask"),
    ]
    rows, tables = [], {}
    with tempfile.TemporaryDirectory(prefix="study-shards-") as tmp:
        for label, shards, executor in configurations:
            root = checkout_copy(
                Path(tmp) / label.replace(" ", "_").replace(",", ""),
                {
                    **reduced,
                    "lambda_study.shards": shards,
                    "scale_out.executor": executor,
                    "scale_out.local_workers": shards,
                },
            )
            seconds = run_study(root, Path(tmp) / f"home-{len(rows)}")
            table = pd.read_csv(root / "results/study.csv")
            tables[label] = table.drop(columns=VARYING)
            rows.append(
                {
                    "configuration": label,
                    "points": len(table),
                    "wall s": round(seconds, 1),
                    "SGD s (sum over points)": round(table["train_seconds"].sum(), 1),
                }
            )
    print(pd.DataFrame(rows).to_string(index=False))
    threads, dask = tables[configurations[1][0]], tables[configurations[2][0]]
    print(f"\n{args.shards} shards: Dask results equal the threaded ones: {threads.equals(dask)}")


if __name__ == "__main__":
    main()
