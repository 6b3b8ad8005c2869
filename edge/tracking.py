"""The one place that talks to MLflow.

Store: ``$MLFLOW_TRACKING_URI`` if set (e.g. an ``mlflow server``), else a SQLite
database ``sqlite:///<repo>/mlruns/mlflow.db`` (absolute path) with artifacts under
``<repo>/mlruns/artifacts``. Every call names its run id explicitly (MlflowClient),
never MLflow's thread-local active run, so tasks on worker threads log to the right run.
"""
from __future__ import annotations

import contextlib
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Mapping

from mlflow import MlflowClient
from mlflow.data.meta_dataset import MetaDataset
from mlflow.data.sources import LocalArtifactDatasetSource
from mlflow.entities import DatasetInput, InputTag, Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_PARENT_RUN_ID

from .project import persistent_root

_BATCH = 1000  # MLflow's log_batch limit on metrics per call


def store_dir() -> Path:
    return persistent_root() / "mlruns"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{store_dir() / 'mlflow.db'}"


class TrackingUnavailable(RuntimeError):
    """The MLflow tracking server named by MLFLOW_TRACKING_URI does not answer."""


def require_reachable(timeout_s: float = 5.0) -> None:
    """Fail fast, with the URI in the message, when the tracking server is down: MLflow's
    own client would retry for minutes, and only after the stage's work had started."""
    uri = tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s) as answer:
            answer.read()
    except (urllib.error.URLError, OSError) as exc:
        raise TrackingUnavailable(
            f"MLflow tracking server {uri} is unreachable ({getattr(exc, 'reason', exc)}): start it "
            "(docs/tracking.md) or unset MLFLOW_TRACKING_URI to use the local store") from None


def client() -> MlflowClient:
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri)


def experiment_id(mlflow: MlflowClient, name: str) -> str:
    """Id of the study's experiment, created (with artifacts under mlruns/artifacts) if new."""
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = None
    if tracking_uri().startswith("sqlite:"):
        location = (store_dir() / "artifacts").as_uri()
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except Exception:  # another process created it first
        found = mlflow.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _param_value(value) -> str:
    return "null" if value is None else str(value)


@contextlib.contextmanager
def stage_run(study: str, run_name: str, params: Mapping[str, object], tags: Mapping[str, str],
              parent_run_id: str | None = None) -> Iterator[str]:
    """Open a run for one stage, yield its id, and end it FINISHED or FAILED."""
    mlflow = client()
    all_tags = dict(tags)
    if parent_run_id:
        all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
    run = mlflow.create_run(experiment_id(mlflow, study), run_name=run_name, tags=all_tags)
    run_id = run.info.run_id
    try:
        mlflow.log_batch(run_id, params=[Param(k, _param_value(v)) for k, v in params.items()])
        yield run_id
    except BaseException as exc:
        mlflow.set_tag(run_id, "l2path.error", f"{type(exc).__name__}: {exc}"[:5000])
        mlflow.set_terminated(run_id, "FAILED")
        raise
    mlflow.set_terminated(run_id, "FINISHED")


def log_params(run_id: str, params: Mapping[str, object]) -> None:
    """Params that a stage learns while it runs (a param cannot change once logged)."""
    client().log_batch(run_id, params=[Param(k, _param_value(v)) for k, v in params.items()])


def log_history(run_id: str, history: list[Mapping[str, float]], step_key: str = "epoch") -> None:
    """Log many steps' numeric records in as few batched calls as MLflow allows."""
    now = int(time.time() * 1000)
    metrics = [Metric(key, float(value), now, int(record[step_key]))
               for record in history for key, value in record.items()
               if key != step_key and isinstance(value, (int, float))]
    mlflow = client()
    for start in range(0, len(metrics), _BATCH):
        mlflow.log_batch(run_id, metrics=metrics[start:start + _BATCH])


def log_metrics(run_id: str, values: Mapping[str, float], step: int = 0) -> None:
    """Log one step's record of metrics in batched calls."""
    log_history(run_id, [{**values, "_step": step}], step_key="_step")


def log_artifact(run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
    client().log_artifact(run_id, str(path), artifact_path)


def log_dataset(run_id: str, path: str | Path, name: str, digest: str, context: str) -> None:
    """Record the data file as a run input whose digest is its DVC md5."""
    dataset = MetaDataset(LocalArtifactDatasetSource(Path(path).resolve().as_uri()), name=name, digest=digest)
    entity = DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])
    client().log_inputs(run_id, datasets=[entity])


def log_artifacts(run_id: str, directory: str | Path, artifact_path: str | None = None) -> None:
    client().log_artifacts(run_id, str(directory), artifact_path)


def run_exists(run_id: str) -> bool:
    """Whether this store holds the run (outputs restored from DVC may name runs of another store)."""
    try:
        client().get_run(run_id)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True


def experiment_of(run_id: str) -> str:
    """The experiment id of a run."""
    return client().get_run(run_id).info.experiment_id


def run_url(ui: str, experiment_id: str, run_id: str) -> str:
    """The run's page in the MLflow UI served at ``ui`` (e.g. http://127.0.0.1:5000)."""
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
