"""Command line shared by the stage flows: ``python -m flows.<stage> [--params FILE]``."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from l2path.config import ParamsError, load_params

from .environment import quiet_telemetry, short_log_lines


def run_stage(flow_fn: Callable, argv: list[str] | None = None) -> None:
    """Validate params first (a bad key fails in a second, before Prefect starts), then run
    the flow."""
    quiet_telemetry()  # before Prefect starts its temporary server
    short_log_lines()
    parser = argparse.ArgumentParser(
        prog=f"python -m flows.{flow_fn.name}", description=flow_fn.description
    )
    parser.add_argument(
        "--params", default="params.yaml", help="params file (default: params.yaml)"
    )
    args = parser.parse_args(argv)
    try:
        load_params(args.params)
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    flow_fn(params_file=args.params)
