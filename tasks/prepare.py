"""Tasks of the ``prepare`` stage: obtain verified MNIST files, build Nielsen's split."""

from __future__ import annotations

import os

from prefect import task
from prefect.cache_policies import NO_CACHE

from edge import tracking
from edge.stage import StageRun
from l2path.config import Params
from l2path.data.mnist_files import fetch_mnist
from l2path.data.split import prepare_split

MIRROR_ENV = "MNIST_MIRROR"


def mnist_sources(params: Params) -> list[str]:
    """Sources in order: $MNIST_MIRROR, data.mirror, then data.public_mirrors."""
    chosen = [os.environ.get(MIRROR_ENV), params.data.mirror]
    return [s for s in chosen if s] + list(params.data.public_mirrors)


@task(name="fetch-mnist", cache_policy=NO_CACHE)
def fetch_raw(params: Params, stage: StageRun) -> list[str]:
    """The four IDX files, from the first source whose copy verifies; the sources tried are a
    param."""
    sources = mnist_sources(params)
    tracking.log_params(stage.run_id, {"data.sources": sources})
    paths = fetch_mnist(params.paths.raw_dir, sources, timeout=params.data.timeout_s)
    return [str(p) for p in paths.values()]


@task(name="build-split", cache_policy=NO_CACHE)
def build_split(params: Params, stage: StageRun) -> dict:
    """Nielsen's split and its manifest; the prepared file is the run's dataset (digest: its DVC
    md5)."""
    manifest = prepare_split(
        params.paths.raw_dir,
        params.paths.prepared,
        params.paths.manifest,
        n_validation=params.data.n_validation,
    )
    tracking.log_dataset(
        stage.run_id,
        params.paths.prepared,
        "mnist-nielsen-split",
        digest=manifest["prepared_md5"],
        context="prepared",
    )
    tracking.log_metrics(
        stage.run_id, {f"n_{split}": count for split, count in manifest["counts"].items()}
    )

    return manifest
