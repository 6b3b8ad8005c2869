"""Tasks of the ``prepare`` stage: obtain verified MNIST files, build Nielsen's split."""
from __future__ import annotations

import os

from prefect import task
from prefect.cache_policies import NO_CACHE

from l2path.config import Params
from l2path.mnist_files import fetch_mnist
from l2path.split import prepare_split

MIRROR_ENV = "MNIST_MIRROR"


def mnist_sources(params: Params) -> list[str]:
    """Sources in order: $MNIST_MIRROR, data.mirror, then data.public_mirrors."""
    chosen = [os.environ.get(MIRROR_ENV), params.data.mirror]
    return [s for s in chosen if s] + list(params.data.public_mirrors)


@task(name="fetch-mnist", cache_policy=NO_CACHE)
def fetch_raw(params: Params) -> list[str]:
    paths = fetch_mnist(params.paths.raw_dir, mnist_sources(params), timeout=params.data.timeout_s)
    return [str(p) for p in paths.values()]


@task(name="build-split", cache_policy=NO_CACHE)
def build_split(params: Params) -> dict:
    return prepare_split(params.paths.raw_dir, params.paths.prepared, params.paths.manifest,
                         n_validation=params.data.n_validation)
