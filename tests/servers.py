"""Real servers started by tests: on loopback, logged to a file, stopped with their process
group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
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
