"""Opening and closing a stage: checks, its MLflow run, lineage in and out.

``open_stage`` is what every stage does around its work:

1. telemetry off, log lines cut short; the stage's deps, params and outputs read from
   dvc.yaml (``dvcfile``);
2. before any work: inputs written by earlier stages must exist, every output's directory
   must take a file, and a configured tracking server must answer;
3. the stage's MLflow run is opened with lineage tags (``lineage``), the stage's DVC params
   as MLflow params, the prepared data as a dataset input where the stage reads it, and
   ``l2path.upstream.<stage>`` tags naming the runs that wrote its inputs (found by the
   md5 of the files it reads, ``_upstream``); its URL is the stage's first log line;
4. on success the stage's own lineage file is written (its run id and execution id), its
   file outputs are logged as artifacts and their md5s as ``dvc.out.<path>`` tags, and its
   wall time (``stage_seconds``, plus what the task put in ``StageRun.timings``) goes to the
   run and to ``timings/<stage>.json``. Neither lineage nor timings files are DVC outputs:
   both change on every run, and dvc.lock must not. A failed stage ends its run FAILED,
   with the error recorded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from prefect import get_run_logger
from prefect.exceptions import MissingContextError
from prefect.runtime import flow_run

from l2path import atomic
from l2path.atomic import OutputWriteError
from l2path.config import Params
from l2path.data.split import file_md5

from . import lineage, timings, tracking
from .dvcfile import StageFiles, producers, stage_files
from .environment import quiet_telemetry, short_log_lines
from .project import project_root

ARTIFACT_LIMIT_BYTES = 20 * 2**20  # larger outputs (the prepared data) stay in DVC's cache only


class MissingInputError(FileNotFoundError):
    """A stage's input is missing: an earlier stage has not run."""


@dataclass(frozen=True)
class LineageRecord:
    """A stage run as its lineage file records it (``<paths.lineage_dir>/<stage>.json``)."""

    stage: str
    run_id: str
    experiment_id: str
    run_name: str
    execution_id: str


def lineage_path(params: Params, stage: str) -> Path:
    return Path(params.paths.lineage_dir) / f"{stage}.json"


def read_lineage(params: Params, stage: str) -> LineageRecord | None:
    """The recorded run of ``stage``; None if the stage has not written its lineage file."""
    path = project_root() / lineage_path(params, stage)
    try:
        return LineageRecord(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


@dataclass(frozen=True)
class StageRun:
    """An open stage: its params, MLflow run, execution and the upstream runs it reads."""

    params: Params
    stage: str
    run_id: str
    experiment_id: str
    run_name: str
    execution_id: str
    tags: dict[str, str]
    upstream: dict[str, LineageRecord] = field(default_factory=dict)
    timings: dict[str, object] = field(
        default_factory=dict
    )  # wall times the task measured (edge.timings)

    def child_tags(self, kind: str) -> dict[str, str]:
        """Lineage tags of a child run (``study.point``, ``hessian.point``, ``dynamics.model``)."""
        return {**self.tags, "l2path.stage": f"{self.stage}.{kind}", "l2path.level": "child"}


def require_inputs(files: StageFiles, params: Params) -> None:
    """Inputs that earlier stages write must exist."""
    root, writers = project_root(), producers(params, project_root())
    missing = {
        dep: writers[dep] for dep in files.deps if dep in writers and not (root / dep).exists()
    }
    if missing:
        stages = sorted(set(missing.values()))
        raise MissingInputError(
            f"missing input(s) {sorted(missing)}: run the {', '.join(stages)} stage(s) first "
            f"(dvc repro {' '.join(stages)})"
        )


def require_writable(outputs: tuple[str, ...]) -> None:
    """Fail before any work when an output's directory does not take a new file (read-only,
    not a directory, ...). An output path with a suffix is a file (its directory is
    checked), one without is a directory. A full disk shows up later, at the write itself
    (``l2path.atomic``), which leaves the previous version in place."""
    for output in outputs:
        path = project_root() / output
        directory = path.parent if path.suffix else path
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=directory, prefix=".write-probe."):
                pass
        except OSError as exc:
            raise OutputWriteError(
                f"output directory {directory} is not writable ({exc}): "
                f"cannot write {output}; nothing was started"
            ) from None


def stage_params(params: Params, keys: tuple[str, ...]) -> dict[str, object]:
    """The stage's DVC params (sections or dotted keys), flattened to dotted MLflow params."""
    raw = params.model_dump(by_alias=True)
    flat: dict[str, object] = {}

    def walk(prefix: str, node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}", value)
        else:
            flat[prefix] = node

    for key in keys:
        node = raw
        for part in key.split("."):
            node = node[part]
        walk(key, node)
    return flat


def _upstream(stage: str, files: StageFiles, params: Params) -> dict[str, LineageRecord]:
    """The runs that wrote this stage's inputs: for each stage that writes one of its deps
    (dvc.yaml's graph), the run whose ``dvc.out.<path>`` tag holds the md5 that file has
    now. That is the run its lineage file names when the file is still that run's output;
    otherwise (outputs checked out from another experiment, a lineage file from another
    run) the store is searched by content. An input no run of this store wrote (outputs
    pulled from a DVC remote into a fresh clone) has no upstream run."""
    root, writers = project_root(), producers(params, project_root())
    read_from: dict[str, str] = {}
    for dep in files.deps:
        if writers.get(dep, stage) != stage and (root / dep).is_file():
            read_from.setdefault(writers[dep], dep)
    found = {}
    for name, path in read_from.items():
        md5 = file_md5(root / path)
        record = read_lineage(params, name)
        if record is not None and tracking.run_wrote(record.run_id, path, md5):
            found[name] = record
        elif (run := tracking.run_that_wrote(params.study.name, name, path, md5)) is not None:
            found[name] = LineageRecord(
                name,
                run.info.run_id,
                run.info.experiment_id,
                run.info.run_name,
                run.data.tags.get("l2path.execution_id", ""),
            )
    return found


def output_tags(outputs: tuple[str, ...]) -> dict[str, str]:
    """``dvc.out.<path>``: the md5 of each file output (as DVC computes a file's). A later
    reader of that file finds the runs that wrote it by content, the same on every re-run,
    where a run id would change (``tasks.report.mlflow_links``)."""
    return {
        f"dvc.out.{output}": file_md5(project_root() / output)
        for output in outputs
        if (project_root() / output).is_file()
    }


def run_location(ui: str | None, experiment: str, run_id: str) -> str:
    """Where a user opens the run: on a tracking server, its page there (the server serves
    the UI); on the local store, its path and the exact ``mlflow ui`` command, then the
    page that command serves (``report.mlflow_ui``). A bare URL to a UI nobody started would
    only give a connection error."""
    uri = tracking.tracking_uri()
    if uri.startswith(("http://", "https://")):
        return tracking.run_url(uri, experiment, run_id)
    where = f"run {run_id} in {uri.removeprefix('sqlite:///')}"
    if ui is None:
        return where
    host, _, port = urllib.parse.urlsplit(ui).netloc.rpartition(":")
    return (
        f"{where}; to browse it: mlflow ui --backend-store-uri {uri} --host {host or '127.0.0.1'}"
        f" --port {port or 5000}, then {tracking.run_url(ui, experiment, run_id)}"
    )


def _announce(params: Params, stage: str, run_id: str, experiment: str) -> None:
    """Where to open the stage's run (``run_location``), as the stage's first log line."""
    where = run_location(params.report.mlflow_ui, experiment, run_id)
    try:
        logger = get_run_logger()
    except MissingContextError:  # called outside a Prefect flow (tests, a notebook)
        logger = logging.getLogger(__name__)
    logger.info("stage %s: MLflow %s", stage, where)


def _log_outputs(run_id: str, outputs: tuple[str, ...]) -> None:
    """Each file output under ARTIFACT_LIMIT_BYTES, under its directory's path. Directories
    are logged by the runs of their items (points, models) or by their stage's task."""
    for output in outputs:
        path = project_root() / output
        if path.is_file() and path.stat().st_size <= ARTIFACT_LIMIT_BYTES:
            tracking.log_artifact(run_id, path, Path(output).parent.as_posix() or None)


@contextlib.contextmanager
def open_stage(
    params: Params, stage: str, execution_id: str | None = None, run_name: str | None = None
) -> Iterator[StageRun]:
    """Check, open the stage's MLflow run, yield the open stage; record its lineage on success."""
    quiet_telemetry()
    short_log_lines()
    files = stage_files(stage, params, project_root())
    require_inputs(files, params)
    require_writable(files.outputs)
    tracking.require_reachable()
    prefect_run = flow_run.id
    execution = lineage.execution_id(execution_id, prefect_run)
    upstream = _upstream(stage, files, params)
    tags = {
        **lineage.lineage_tags(project_root(), stage, prefect_run, execution),
        "l2path.level": "stage",  # the stage-runs filter (tracking.STAGE_RUNS_FILTER)
        **{f"l2path.upstream.{name}": record.run_id for name, record in upstream.items()},
    }
    name = run_name or stage
    clock = time.perf_counter()
    with tracking.stage_run(
        params.study.name, name, stage_params(params, files.params), tags
    ) as run_id:
        run = StageRun(
            params, stage, run_id, tracking.experiment_of(run_id), name, execution, tags, upstream
        )
        _announce(params, stage, run_id, run.experiment_id)
        if params.paths.prepared in files.deps:
            tracking.log_dataset(
                run_id,
                params.paths.prepared,
                "mnist-nielsen-split",
                digest=file_md5(params.paths.prepared),
                context="training",
            )
        yield run
        record = LineageRecord(stage, run_id, run.experiment_id, name, execution)
        atomic.write_json(lineage_path(params, stage), asdict(record))
        _log_outputs(run_id, files.outputs)
        tracking.set_tags(run_id, output_tags(files.outputs))
        tracking.describe_children(run_id, run.experiment_id)
        seconds = time.perf_counter() - clock
        tracking.log_metrics(run_id, {"stage_seconds": seconds})
        timings.write(stage, run_id, seconds, run.timings)
