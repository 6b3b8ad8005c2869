"""The generality sweep: converged chains over a profile's seeds x hidden widths x n_sub
(``l2path.sweep``), table results/sweep_<name>.csv.

    python -m flows.sweep [sweeps/generality.yaml] [--params params.yaml]
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> None:
    """Validate the profile and the params first (a bad one fails in a second, before Prefect
    starts), then run the flow and print the table's path."""
    from edge.environment import quiet_telemetry, short_log_lines
    from l2path.config import ParamsError

    quiet_telemetry()
    short_log_lines()
    parser = argparse.ArgumentParser(prog="python -m flows.sweep", description=sweep.description)
    parser.add_argument("profile", nargs="?", default="sweeps/generality.yaml")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    try:
        load_profile(args.profile)
        load_params(args.params)
    except (ParamsError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(sweep(profile_file=args.profile, params_file=args.params))


if __name__ == "__main__":
    main()
