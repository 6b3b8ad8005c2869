"""Deploy the study's Prefect deployments (prefect.yaml) from this checkout:

    python -m flows.deploy [--nightly on|off] [--cron "0 3 * * *"] [--timezone UTC]

It runs ``prefect --no-prompt deploy --all`` with the values prefect.yaml reads from the
environment: ``L2PATH_ROOT`` (this checkout: the worker runs the flows here),
``L2PATH_NIGHTLY`` (whether the study's schedule is active), ``L2PATH_CRON`` and
``L2PATH_TIMEZONE``. Re-running it with other values updates the deployments in place.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from prefect.client.schemas.schedules import CronSchedule


def deploy_env(root: Path, nightly: bool, cron: str, timezone: str) -> dict[str, str]:
    """The environment prefect.yaml's ``{{ $L2PATH_... }}`` placeholders are filled from."""
    return {
        "L2PATH_ROOT": str(root),
        "L2PATH_NIGHTLY": "true" if nightly else "false",
        "L2PATH_CRON": cron,
        "L2PATH_TIMEZONE": timezone,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.deploy", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--nightly",
        choices=("on", "off"),
        default="off",
        help="whether the study's schedule is active (default: off, the schedule is paused)",
    )
    parser.add_argument(
        "--cron", default="0 3 * * *", help="when the study runs (default: 0 3 * * *)"
    )
    parser.add_argument("--timezone", default="UTC", help="the cron's time zone (default: UTC)")
    args = parser.parse_args(argv)
    try:  # the schedule Prefect will build, checked before anything is deployed
        CronSchedule(cron=args.cron, timezone=args.timezone)
    except ValueError as exc:
        parser.error(f"invalid --cron {args.cron!r} / --timezone {args.timezone!r}: {exc}")
    root = Path.cwd().resolve()
    if not (root / "prefect.yaml").is_file():
        parser.error(f"no prefect.yaml in {root}: run from the repository root")
    prefect = shutil.which("prefect") or str(Path(sys.executable).parent / "prefect")
    env = {**os.environ, **deploy_env(root, args.nightly == "on", args.cron, args.timezone)}
    return subprocess.run([prefect, "--no-prompt", "deploy", "--all"], cwd=root, env=env).returncode


if __name__ == "__main__":
    raise SystemExit(main())
