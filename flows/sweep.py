"""The generality sweep: converged chains over a profile's seeds x hidden widths x n_sub
(``l2path.sweep``), table results/sweep_<name>.csv.

    python -m flows.sweep [sweeps/generality.yaml] [params.yaml]
"""

from __future__ import annotations

import sys

from prefect import flow

from l2path.config import load_params
from l2path.sweep import load_profile
from tasks.sweep import sweep_cases, table_path


@flow(name="sweep", description="Converged chains over seeds x hidden widths x n_sub.")
def sweep(profile_file: str = "sweeps/generality.yaml", params_file: str = "params.yaml") -> str:
    profile = load_profile(profile_file)  # a bad profile fails here, before any work
    sweep_cases(load_params(params_file), profile)
    return str(table_path(profile))


if __name__ == "__main__":
    print(sweep(*sys.argv[1:3]))
