"""What every stage does around its work: lineage tags and one MLflow run."""
from __future__ import annotations

import contextlib
import tempfile
from typing import Iterator

from prefect.runtime import flow_run

from l2path.atomic import OutputWriteError
from l2path.config import Params

from . import lineage, tracking
from .project import project_root


# Each stage's outputs, as keys of the params' ``paths`` section (the same as dvc.yaml's outs).
STAGE_OUTPUTS = {
    "prepare": ("raw_dir", "prepared", "manifest"),
    "train": ("train_checkpoint", "train_metrics", "train_epochs"),
    "study": ("study_dir", "study_results", "monotonicity_table", "monotonicity_metrics"),
    "hessian": ("hessian_table", "spectra_dir", "escapes", "interpolation", "saddle_steps", "hessian_metrics"),
    "dynamics": ("dynamics_dir", "dynamics_epochs", "dynamics_plots_dir", "dynamics_theory", "dynamics_metrics"),
    "report": ("report_dir", "report_metrics"),
}


class MissingInputError(FileNotFoundError):
    """A stage's input is missing: an earlier stage has not run."""


def require_inputs(*paths: str, hint: str) -> None:
    missing = [p for p in paths if not (project_root() / p).exists()]
    if missing:
        raise MissingInputError(f"missing input(s) {missing}: {hint}")


def require_writable(*outputs: str) -> None:
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
            raise OutputWriteError(f"output directory {directory} is not writable ({exc}): "
                                   f"cannot write {output}; nothing was started") from None


def section_params(params: Params, section: str) -> dict:
    """The params of one section as MLflow params (keys as in params.yaml)."""
    return getattr(params, section).model_dump(by_alias=True)


def stage_tags(stage: str, execution_id: str | None = None) -> dict[str, str]:
    """Lineage tags of a run of ``stage`` inside the current Prefect flow run."""
    run_id = flow_run.id
    return lineage.lineage_tags(project_root(), stage, run_id, lineage.execution_id(execution_id, run_id))


@contextlib.contextmanager
def tracked_stage(params: Params, stage: str, logged_params: dict, execution_id: str | None = None,
                  run_name: str | None = None, parent_run_id: str | None = None) -> Iterator[str]:
    """Open the stage's MLflow run with lineage tags; yield its run id. An unreachable
    tracking server or an output directory that takes no file stops the stage here,
    before any work."""
    tracking.require_reachable()
    require_writable(*(getattr(params.paths, key) for key in STAGE_OUTPUTS[stage]))
    tags = stage_tags(stage, execution_id)
    with tracking.stage_run(params.study.name, run_name or stage, logged_params, tags,
                            parent_run_id=parent_run_id) as mlflow_run_id:
        yield mlflow_run_id
