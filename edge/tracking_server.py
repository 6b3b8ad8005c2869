"""One command for a shared MLflow tracking server with served artifacts:

    python -m edge.tracking_server [--host 127.0.0.1] [--port 5000] [--data DIR]

runs ``mlflow server`` with a SQLite backend ``DIR/server.db`` and the artifacts under
``DIR/artifacts`` (default DIR: ``mlruns/server`` of this checkout), served by the server
itself: runs record ``mlflow-artifacts:/`` URIs, and clients upload and download through
the server, so a checkpoint opens from any clone or machine that reaches it, wherever the
clone that logged it has moved. Point the stages at it with the one setting
``MLFLOW_TRACKING_URI=http://HOST:PORT`` (``edge.tracking``). 127.0.0.1 is the safe default;
a team binds a private interface (docs/sharing.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .environment import quiet_telemetry
from .project import persistent_root


def server_command(host: str, port: int, data: Path) -> list[str]:
    """The ``mlflow server`` command line for a store in ``data`` (absolute)."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{data / 'server.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        str(data / "artifacts"),
        "--workers",
        "1",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m edge.tracking_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port (5000)")
    parser.add_argument(
        "--data", type=Path, default=None, help="store folder (default: mlruns/server)"
    )
    args = parser.parse_args(argv)
    data = (args.data or persistent_root() / "mlruns" / "server").resolve()
    data.mkdir(parents=True, exist_ok=True)
    quiet_telemetry()
    print(
        f"MLflow tracking server on http://{args.host}:{args.port} (store {data}); point the "
        f"stages at it with: export MLFLOW_TRACKING_URI=http://{args.host}:{args.port}",
        file=sys.stderr,
        flush=True,
    )
    command = server_command(args.host, args.port, data)
    os.execv(command[0], command)  # the server in this process: Ctrl-C or a signal stops it


if __name__ == "__main__":
    main()
