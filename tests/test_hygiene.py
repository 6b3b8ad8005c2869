"""No secrets in the repository, and every server the project starts or documents listens
on 127.0.0.1 unless a user says otherwise."""

from __future__ import annotations

import re
import subprocess

import yaml

from conftest import REPO

# Shapes of real credentials: cloud keys, private keys, tokens, and passwords given inline.
SECRET_PATTERNS = {
    "AWS access key": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"),
    "inline password": re.compile(
        r"(?i)\b(password|passwd|secret|api_key|token)\s*[:=]\s*['\"][^'\"\s]{6,}['\"]"
    ),
    "credentials in a URL": re.compile(r"[a-z+]+://[^/\s:@`]+:(?!password@)[^/\s@`]+@"),
}
# A command line that starts a server (at a line's start, or after `&&` or `nohup`).
SERVER_COMMAND = re.compile(
    r"(?m)(?:^|&&|nohup)\s*"
    r"(?:mlflow (?:server|ui)|prefect server start|dask (?:scheduler|worker)"
    r"|python -m edge\.tracking_server)\b[^\n]*"
)


def tracked_text_files():
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, names):
        path = REPO / name
        if path.is_file() and path.stat().st_size < 2_000_000:
            try:
                yield name, path.read_text()
            except UnicodeDecodeError:
                continue


def test_patterns_catch_what_they_should():
    assert SECRET_PATTERNS["AWS access key"].search("key AKIAIOSFODNN7EXAMPLE here")
    assert SECRET_PATTERNS["inline password"].search('password = "hunter22"')
    assert SECRET_PATTERNS["credentials in a URL"].search("postgresql://alice:s3cr3t@db:5432/x")
    assert not SECRET_PATTERNS["credentials in a URL"].search(
        "postgresql://user:password@dbhost:5432/mlflow"
    )


def test_no_secrets_in_tracked_files():
    found = [
        (name, label)
        for name, text in tracked_text_files()
        if name != "tests/test_hygiene.py"
        for label, pattern in SECRET_PATTERNS.items()
        if pattern.search(text)
    ]
    assert not found


def test_every_server_command_binds_loopback():
    commands = [
        (name, match.group(0))
        for name, text in tracked_text_files()
        if name.endswith((".md", ".yaml", ".sh")) or name.startswith(".ci/")
        for match in SERVER_COMMAND.finditer(text)
    ]
    assert commands, "the README documents how to start the servers"
    unbound = [(name, command) for name, command in commands if "--host 127.0.0.1" not in command]
    assert not unbound, unbound


def test_local_dask_cluster_and_tests_use_loopback():
    source = (REPO / "edge/scale_out.py").read_text()
    assert '"host": "127.0.0.1"' in source and '"dashboard_address": None' in source
    servers = (
        (REPO / "tests/servers.py").read_text()
        + (REPO / "tests/test_deployment.py").read_text()
        + (REPO / "tests/test_mlflow_server.py").read_text()
    )
    assert "0.0.0.0" not in servers and len(re.findall(r'"--host",\s*"127\.0\.0\.1"', servers)) >= 2
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert params["scale_out"]["dask_address"] is None and params["report"]["mlflow_ui"].startswith(
        "http://127.0.0.1"
    )


def test_the_repository_names_nothing_outside_itself():
    """Docs, code and params point at no file beside the checkout (the MNIST mirror is an
    environment variable); only CI's script knows where CI keeps its mirror."""
    outside = [
        name
        for name, text in tracked_text_files()
        if name not in (".ci/run", "tests/test_hygiene.py")
        and ("../shared" in text or "DESIGN.md" in text)
    ]
    assert not outside
