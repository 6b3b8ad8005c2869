"""Stage ``hessian``: curvature of J_lambda at the study's points; did non-monotone steps start at
saddles?"""

from __future__ import annotations

from prefect import flow

from edge.stage import open_stage
from l2path.config import load_params
from tasks.hessian import analyse_curvature


@flow(
    name="hessian",
    description="Hessian spectra, saddle classification, escapes and interpolations.",
)
def hessian(params_file: str = "params.yaml", execution_id: str | None = None) -> dict:
    params = load_params(params_file)
    with open_stage(params, "hessian", execution_id) as stage:
        return analyse_curvature(params, stage)


if __name__ == "__main__":
    from edge.cli import run_stage

    run_stage(hessian)
