"""The one place that talks to MLflow.

Store: ``$MLFLOW_TRACKING_URI`` if set (e.g. an ``mlflow server``), else a SQLite
database ``sqlite:///<repo>/mlruns/mlflow.db`` (absolute path) with artifacts under
``<repo>/mlruns/artifacts``. Every call names its run id explicitly (MlflowClient),
never MLflow's thread-local active run, so tasks on worker threads log to the right run.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator, Mapping

from mlflow import MlflowClient
from mlflow.data.meta_dataset import MetaDataset
from mlflow.data.sources import LocalArtifactDatasetSource
from mlflow.entities import DatasetInput, InputTag, Metric, Param, Run, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_PARENT_RUN_ID

from . import relocation
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
            f"MLflow tracking server {uri} is unreachable ({getattr(exc, 'reason', exc)}): "
            "start it "
            "(docs/tracking.md) or unset MLFLOW_TRACKING_URI to use the local store"
        ) from None


def client() -> MlflowClient:
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        store = Path(uri.removeprefix("sqlite:///")).parent
        store.mkdir(parents=True, exist_ok=True)
        if not os.environ.get("MLFLOW_TRACKING_URI"):  # the project's own store: its layout is ours
            _adopt_once(store)
    return MlflowClient(tracking_uri=uri)


@functools.lru_cache(maxsize=None)
def _adopt_once(store: Path) -> int:
    """A store copied or moved here is pointed at its own artifacts (``edge.relocation``)."""
    return relocation.adopt(store)


# Opens the experiment in the MLflow 3 UI's model-training view, not the GenAI one.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def experiment_id(mlflow: MlflowClient, name: str) -> str:
    """Id of the study's experiment, created (with artifacts under mlruns/artifacts) if new,
    and tagged as a model-training experiment."""
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        if existing.tags.get("mlflow.experimentKind") != EXPERIMENT_KIND["mlflow.experimentKind"]:
            for key, value in EXPERIMENT_KIND.items():
                mlflow.set_experiment_tag(existing.experiment_id, key, value)
        return existing.experiment_id
    location = None
    if tracking_uri().startswith("sqlite:"):
        location = (store_dir() / "artifacts").as_uri()
    try:
        return mlflow.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
    except Exception:  # another process created it first
        found = mlflow.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _param_value(value) -> str:
    return "null" if value is None else str(value)


@contextlib.contextmanager
def stage_run(
    study: str,
    run_name: str,
    params: Mapping[str, object],
    tags: Mapping[str, str],
    parent_run_id: str | None = None,
    start_time: float | None = None,
    end_time: float | None = None,
) -> Iterator[str]:
    """Open a run for one stage (or one item of it), yield its id, and end it FINISHED or
    FAILED. ``start_time``/``end_time`` (seconds since the epoch): when the work it records
    really ran, for an item logged after the fact (a study point is logged once trained).
    A failure is recorded on the run: its error as tag ``l2path.error`` and, with the
    traceback, as the run's description (``mlflow.note.content``), which the UI shows."""
    mlflow = client()
    all_tags = dict(tags)
    if parent_run_id:
        all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
    run = mlflow.create_run(
        experiment_id(mlflow, study),
        run_name=run_name,
        tags=all_tags,
        start_time=None if start_time is None else int(start_time * 1000),
    )
    run_id = run.info.run_id
    try:
        mlflow.log_batch(run_id, params=[Param(k, _param_value(v)) for k, v in params.items()])
        yield run_id
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"
        trace = "".join(traceback.format_exception(exc))[-20000:]
        mlflow.log_batch(
            run_id,
            tags=[
                RunTag("l2path.error", message[:5000]),
                RunTag("mlflow.note.content", f"**FAILED**: {message}\n\n```\n{trace}\n```"),
            ],
        )
        mlflow.set_terminated(run_id, "FAILED")
        raise
    mlflow.set_terminated(
        run_id, "FINISHED", end_time=None if end_time is None else int(end_time * 1000)
    )


def set_tags(run_id: str, tags: Mapping[str, str]) -> None:
    client().log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def log_params(run_id: str, params: Mapping[str, object]) -> None:
    """Params that a stage learns while it runs (a param cannot change once logged)."""
    client().log_batch(run_id, params=[Param(k, _param_value(v)) for k, v in params.items()])


def log_history(
    run_id: str,
    history: list[Mapping[str, float]],
    step_key: str = "epoch",
    model_id: str | None = None,
) -> None:
    """Log many steps' numeric records in as few batched calls as MLflow allows (linked to
    the LoggedModel ``model_id`` if given, ``logged_model``)."""
    now = int(time.time() * 1000)
    metrics = [
        Metric(key, float(value), now, int(record[step_key]), model_id=model_id)
        for record in history
        for key, value in record.items()
        if key != step_key and isinstance(value, (int, float))
    ]
    mlflow = client()
    for start in range(0, len(metrics), _BATCH):
        mlflow.log_batch(run_id, metrics=metrics[start : start + _BATCH])


def log_metrics(
    run_id: str, values: Mapping[str, float], step: int = 0, model_id: str | None = None
) -> None:
    """Log one step's record of metrics in batched calls."""
    log_history(run_id, [{**values, "_step": step}], step_key="_step", model_id=model_id)


@contextlib.contextmanager
def logged_model(
    run_id: str,
    name: str,
    checkpoint: str | Path,
    params: Mapping[str, object],
    tags: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """A checkpoint as an MLflow 3 LoggedModel of the run's experiment (the UI's Models tab).

    Yields the model id: metrics the caller logs on the run with ``model_id=`` inside the
    block are the model's metrics (no second copy in the run's history). Then the weights
    file becomes the model's artifact and the model is READY (FAILED if the block raised).
    ``params`` and ``tags`` are the model's. ``name`` is made valid for MLflow (a decimal
    point becomes ``p``; ``/``, ``:``, ``%`` and quotes become ``-``)."""
    mlflow = client()
    experiment = mlflow.get_run(run_id).info.experiment_id
    model = mlflow.create_logged_model(
        experiment,
        name=model_name(name),
        source_run_id=run_id,
        model_type="l2path-checkpoint",
        params={k: _param_value(v) for k, v in params.items()},
        tags=dict(tags or {}),
    )
    try:
        yield model.model_id
        with tempfile.TemporaryDirectory() as staging:
            shutil.copy2(checkpoint, staging)  # log_model_artifacts takes a directory
            mlflow.log_model_artifacts(model.model_id, staging)
    except BaseException:
        mlflow.finalize_logged_model(model.model_id, "FAILED")
        raise
    mlflow.finalize_logged_model(model.model_id, "READY")


def model_name(text: str) -> str:
    """``text`` as a valid LoggedModel name (``ascending/seed0/lambda0.5`` ->
    ``ascending-seed0-lambda0p5``)."""
    return re.sub(r"[/:%\"']", "-", text.replace(".", "p"))


def log_artifact(run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
    client().log_artifact(run_id, str(path), artifact_path)


def log_dataset(run_id: str, path: str | Path, name: str, digest: str, context: str) -> None:
    """Record the data file as a run input whose digest is its DVC md5."""
    dataset = MetaDataset(
        LocalArtifactDatasetSource(Path(path).resolve().as_uri()), name=name, digest=digest
    )
    entity = DatasetInput(
        dataset._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)]
    )
    client().log_inputs(run_id, datasets=[entity])


def log_artifacts(run_id: str, directory: str | Path, artifact_path: str | None = None) -> None:
    client().log_artifacts(run_id, str(directory), artifact_path)


def _run_or_none(run_id: str) -> Run | None:
    """The run, or None if this store does not hold it (a run id from another store)."""
    try:
        return client().get_run(run_id)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def run_exists(run_id: str) -> bool:
    """Whether this store holds the run (outputs restored from DVC may name runs of another
    store)."""
    return _run_or_none(run_id) is not None


def experiment_of(run_id: str) -> str:
    """The experiment id of a run."""
    return client().get_run(run_id).info.experiment_id


# MLflow 3.17's UI picks its GenAI or model-training view from this URL parameter, else from
# the browser's storage (key mlflow.workflowType), else GenAI: the experiment's kind tag does
# not choose it. Every link of ours names the training view.
TRAINING_VIEW = "workflowType=machine_learning"


def run_url(ui: str, experiment_id: str, run_id: str) -> str:
    """The run's page in the MLflow UI served at ``ui`` (e.g. http://127.0.0.1:5000), in
    the model-training view."""
    return f"{experiment_url(ui, experiment_id)}/runs/{run_id}?{TRAINING_VIEW}"


def experiment_url(ui: str, experiment_id: str) -> str:
    """The experiment's root (add a page and ``TRAINING_VIEW``; ``runs_url`` is its runs)."""
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}"


def runs_url(ui: str, experiment_id: str) -> str:
    """The experiment's runs table in the model-training view."""
    return f"{experiment_url(ui, experiment_id)}/runs?{TRAINING_VIEW}"


def wrote_filter(stage: str, path: str, md5: str) -> str:
    """The search filter of the runs of ``stage`` that wrote ``path`` with this md5 (their
    ``dvc.out.<path>`` tag, set by ``edge.stage``)."""
    return f"tags.`l2path.stage` = '{stage}' and tags.`dvc.out.{path}` = '{md5}'"


# The stage runs only (their point, control and model runs are "child"): MLflow's search
# takes no IN on tags, hence a tag of its own.
STAGE_RUNS_FILTER = "tags.`l2path.level` = 'stage'"


def stage_runs_url(ui: str, experiment_id: str) -> str:
    """The runs table listing only the stage runs, newest first, in the training view: the
    point and model runs (hundreds) would otherwise push them behind "Load more"."""
    return search_url(ui, experiment_id, STAGE_RUNS_FILTER)


def search_url(ui: str, experiment_id: str, filter_string: str) -> str:
    """The experiment's runs in the MLflow UI, filtered (the UI reads ``searchFilter`` from the
    URL)."""
    return f"{runs_url(ui, experiment_id)}&searchFilter={urllib.parse.quote(filter_string)}"


def describe_children(run_id: str, experiment_id: str) -> int:
    """Give a stage run with children a description (the run page shows it) that links them:
    the experiment's runs filtered by ``tags.mlflow.parentRunId``, where the UI nests them
    under the stage run (the unfiltered list shows a few hundred point runs first). A
    relative link, so it works wherever the UI is served. Returns the number of children."""
    children = client().search_runs(
        [experiment_id], f"tags.mlflow.parentRunId = '{run_id}'", max_results=50000
    )
    if children:
        link = f"#/experiments/{experiment_id}/runs?searchFilter=" + urllib.parse.quote(
            f"tags.mlflow.parentRunId = '{run_id}'"
        )
        set_tags(
            run_id,
            {
                "mlflow.note.content": f"[{len(children)} child runs]({link}): open them, "
                "then expand this run's row"
            },
        )
    return len(children)


def run_wrote(run_id: str, path: str, md5: str) -> bool:
    """Whether this store's run ``run_id`` wrote ``path`` with this md5."""
    run = _run_or_none(run_id)
    return run is not None and run.data.tags.get(f"dvc.out.{path}") == md5


def run_that_wrote(study: str, stage: str, path: str, md5: str) -> Run | None:
    """The newest FINISHED run of ``stage`` that wrote ``path`` with this md5, if the store has
    one."""
    mlflow = client()
    experiment = mlflow.get_experiment_by_name(study)
    if experiment is None:
        return None
    runs = mlflow.search_runs(
        [experiment.experiment_id],
        f"{wrote_filter(stage, path, md5)} and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None
