"""Stage ``report``: every stage's tables as an HTML report and a Markdown summary."""
from __future__ import annotations

from prefect import flow, get_run_logger

from l2path.config import load_params
from tasks import tracking
from tasks.report import make_report
from tasks.stage import require_inputs, tracked_stage


@flow(name="report", description="The report that answers both questions, from the stages' tables.")
def report(params_file: str = "params.yaml", execution_id: str | None = None) -> dict:
    params = load_params(params_file)
    paths = params.paths
    require_inputs(paths.study_results, paths.monotonicity_table, paths.monotonicity_metrics,
                   hint="run the study stage first (dvc repro study)")
    with tracked_stage(params, "report", {"report.mlflow_ui": params.report.mlflow_ui,
                                          "report.densities": params.report.densities}, execution_id) as run_id:
        built, _ = make_report(params)
        tracking.log_artifacts(run_id, paths.report_dir, "report")
        tracking.log_metrics(run_id, {k: float(v) for k, v in built.numbers.items() if v is not None})
        study_run = tracking.latest_stage_run(params.study.name, "study")
        if study_run:  # the report belongs with the study it describes
            tracking.log_artifacts(study_run, paths.report_dir, "report")
        get_run_logger().info("report written to %s/index.html", paths.report_dir)
    return built.numbers


if __name__ == "__main__":
    from flows.cli import run_stage

    run_stage(report)
