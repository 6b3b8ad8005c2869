"""Real servers started by tests: on loopback, logged to a file, stopped with their process
group."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command, cwd, env, log: Path) -> subprocess.Popen:
    """Run ``command`` in its own process group, output to ``log``."""
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it if it has not ended within 30 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def wait_until_healthy(url: str, process: subprocess.Popen, log: Path, timeout_s: float) -> None:
    """Poll ``url`` until it answers (``wait_until``)."""
    wait_until(lambda: urllib.request.urlopen(url, timeout=2).read(), url, process, log, timeout_s)


def wait_until(probe, where: str, process: subprocess.Popen, log: Path, timeout_s: float) -> None:
    """Call ``probe`` until it raises no OSError; fail the test with the server's log if the
    server exits or ``probe`` still fails after ``timeout_s`` (the server is then killed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            probe()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop(process)
                pytest.fail(f"server at {where} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)


def prefect_server_command(port: int) -> list[str]:
    """`prefect server start` of this venv on 127.0.0.1:``port``."""
    prefect = str(Path(sys.executable).parent / "prefect")
    return [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)]


class SharedPrefectServer:
    """One `prefect server start` on loopback for every project command a test runs, started
    on first use and stopped at the end of the session (``conftest.stop_shared_servers``).

    Without ``PREFECT_API_URL`` every flow process starts a temporary server of its own
    (11-14 s on a busy 2-core machine, docs/testing.md); a test about that behaviour asks
    ``tool_env`` for no shared server."""

    def __init__(self):
        self.process: subprocess.Popen | None = None
        self.home: Path | None = None
        self.url: str | None = None

    def api_url(self) -> str:
        if self.process is None or self.process.poll() is not None:
            self._start()
        return self.url

    def _start(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="l2path-prefect-"))
        port = free_port()
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        env.pop("PREFECT_API_URL", None)
        log = self.home / "server.log"
        self.process = start(
            prefect_server_command(port),
            self.home,
            env,
            log,
        )
        self.url = f"http://127.0.0.1:{port}/api"
        wait_until_healthy(f"{self.url}/health", self.process, log, timeout_s=180)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None


SHARED_PREFECT = SharedPrefectServer()
