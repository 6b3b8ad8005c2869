"""Stage ``report``: every stage's tables as an HTML report and a Markdown summary."""

from __future__ import annotations

from prefect import flow

from edge.stage import open_stage
from l2path.config import load_params
from tasks.report import make_report


@flow(name="report", description="The report that answers both questions, from the stages' tables.")
def report(params_file: str = "params.yaml", execution_id: str | None = None) -> dict:
    params = load_params(params_file)
    with open_stage(params, "report", execution_id) as stage:
        return make_report(params, stage)


if __name__ == "__main__":
    from edge.cli import run_stage

    run_stage(report)
