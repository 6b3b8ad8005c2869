"""Stage ``continuation``: certified branches of minima through the ascending chains, folds, and a
curvature verdict for every non-monotone step; then the converged chains on their own objective
(every point proved by inertia, every step judged by pseudo-arclength)."""

from __future__ import annotations

from prefect import flow

from edge.stage import open_stage
from l2path.config import load_params
from tasks.continuation import continue_branches, converged_chains


@flow(
    name="continuation",
    description="Certified continuation in lambda: branches, folds, curvature verdicts.",
)
def continuation(params_file: str = "params.yaml", execution_id: str | None = None) -> dict:
    params = load_params(params_file)
    with open_stage(params, "continuation", execution_id) as stage:
        branches = continue_branches(params, stage)
        return {**branches, "chain": converged_chains(params, stage)}


if __name__ == "__main__":
    from edge.cli import run_stage

    run_stage(continuation)
