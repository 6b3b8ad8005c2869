"""Where the lambda study's shards run: threads of the stage's process, or Dask workers
through prefect-dask's task runner (a LocalCluster on 127.0.0.1, or an existing
scheduler given by address).

Dask workers run each task inside the Prefect settings serialized with it. A flow that
uses Prefect's temporary server (no PREFECT_API_URL) has no API URL in its settings, so
every worker would start a temporary server of its own and the task runs would be lost
to the flow's server; the runner therefore puts the flow's own API URL in the settings
before it submits anything. MLflow needs nothing of the kind: every child run names the
study run as its parent explicitly.
"""

from __future__ import annotations

import contextlib
from typing import Iterator
from urllib.parse import urlparse

from prefect.context import FlowRunContext
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from l2path.config import ScaleOut

from . import tracking

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class ScaleOutError(RuntimeError):
    """Dask workers could not report to the Prefect API or MLflow store of the flow."""


def _host(url: str) -> str | None:
    return urlparse(url if "://" in url else f"tcp://{url}").hostname


def current_api_url() -> str:
    """The API the running flow reports to (Prefect's temporary server if none is configured)."""
    context = FlowRunContext.get()
    if context is None:
        raise RuntimeError("current_api_url() needs a running flow")
    return str(context.client.api_url)


def check_workers_can_report(dask_address: str | None, api_url: str, tracking_uri: str) -> None:
    """A scheduler on another host has workers that cannot see this machine's loopback
    Prefect server or local MLflow files: fail before any work, naming what to set."""
    if dask_address is None or _host(dask_address) in _LOOPBACK:
        return
    problems = []
    if _host(api_url) in _LOOPBACK:
        problems.append(
            f"the Prefect API {api_url} is on loopback: set PREFECT_API_URL to a server they can "
            "reach"
        )
    if not tracking_uri.startswith(("http://", "https://")):
        problems.append(
            f"the MLflow store {tracking_uri} is a local file: set MLFLOW_TRACKING_URI to a "
            "tracking server they can reach"
        )
    if problems:
        raise ScaleOutError(
            f"Dask workers of {dask_address} cannot report here: " + "; ".join(problems)
        )


def dask_runner(config: ScaleOut) -> DaskTaskRunner:
    if config.dask_address:
        return DaskTaskRunner(address=config.dask_address)
    # Scheduler, workers and nannies on loopback; no dashboard (it would listen on all interfaces).
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": config.local_workers,
            "threads_per_worker": 1,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": None,
        }
    )


@contextlib.contextmanager
def shard_runner(config: ScaleOut, n_shards: int) -> Iterator[TaskRunner]:
    """A started task runner for ``n_shards`` shard tasks; call inside the study flow."""
    if config.executor == "local":
        with ThreadPoolTaskRunner(max_workers=n_shards) as runner:
            yield runner
        return
    api_url = current_api_url()
    check_workers_can_report(config.dask_address, api_url, tracking.tracking_uri())
    with temporary_settings(updates={PREFECT_API_URL: api_url}), dask_runner(config) as runner:
        yield runner
