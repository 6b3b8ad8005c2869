"""The whole study in one process: every stage as a subflow, sharing one execution id."""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from flows.continuation import continuation
from flows.dynamics import dynamics
from flows.hessian import hessian
from flows.prepare import prepare
from flows.report import report
from flows.study import study
from flows.train import train


@flow(
    name="pipeline",
    description=(
        "prepare -> train -> study -> hessian -> continuation -> dynamics -> report, "
        "as dvc.yaml chains them."
    ),
)
def pipeline(params_file: str = "params.yaml") -> dict:
    execution = f"prefect-{flow_run.id}"
    manifest = prepare(params_file, execution_id=execution)
    summary = train(params_file, execution_id=execution)
    monotonicity = study(params_file, execution_id=execution)
    curvature = hessian(params_file, execution_id=execution)
    branches = continuation(params_file, execution_id=execution)
    decay = dynamics(params_file, execution_id=execution)
    numbers = report(params_file, execution_id=execution)
    return {
        "prepare": manifest,
        "train": summary,
        "study": monotonicity,
        "hessian": curvature,
        "continuation": branches,
        "dynamics": decay,
        "report": numbers,
    }


if __name__ == "__main__":
    from edge.cli import run_stage

    run_stage(pipeline)
