"""Stage ``continuation``: the converged warm-started chains on their own objective (every point
proved by inertia, every step judged by pseudo-arclength continuation, folds located)."""

from __future__ import annotations

from prefect import flow

from edge.stage import open_stage
from l2path.config import load_params
from tasks.continuation import converged_chains


@flow(
    name="continuation",
    description="Converged chains in lambda: proved classes, folds, step verdicts.",
)
def continuation(params_file: str = "params.yaml", execution_id: str | None = None) -> dict:
    params = load_params(params_file)
    with open_stage(params, "continuation", execution_id) as stage:
        return converged_chains(params, stage)


if __name__ == "__main__":
    from edge.cli import run_stage

    run_stage(continuation)
