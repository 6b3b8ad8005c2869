"""What every stage does around its work: lineage tags and one MLflow run."""
from __future__ import annotations

import contextlib
from typing import Iterator

from prefect.runtime import flow_run

from l2path.config import Params

from . import lineage, tracking
from .project import project_root


class MissingInputError(FileNotFoundError):
    """A stage's input is missing: an earlier stage has not run."""


def require_inputs(*paths: str, hint: str) -> None:
    missing = [p for p in paths if not (project_root() / p).exists()]
    if missing:
        raise MissingInputError(f"missing input(s) {missing}: {hint}")


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
    tracking server stops the stage here, before any work."""
    tracking.require_reachable()
    tags = stage_tags(stage, execution_id)
    with tracking.stage_run(params.study.name, run_name or stage, logged_params, tags,
                            parent_run_id=parent_run_id) as mlflow_run_id:
        yield mlflow_run_id
