"""A throw-away OpenSSH server on 127.0.0.1 for the networked DVC remote's round trip.

Debian's ``openssh-server`` (.ci/run installs it) runs from a config of its own in a
temporary folder: a fresh host key, one client key (the only one authorised), key login
only, SFTP for DVC. The client trusts exactly that host key (``known_hosts`` in the
test's HOME), as a colleague's machine would after the first login.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from servers import free_port, start, wait_until

SSHD = "/usr/sbin/sshd"


@dataclass
class SSHServer:
    port: int
    user: str
    keyfile: Path  # the client's private key
    known_hosts_line: str  # "[127.0.0.1]:PORT <host key>"
    process: subprocess.Popen

    def url(self, path: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{path}"


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def start_sshd(root: Path) -> SSHServer:
    """sshd on a free loopback port; fails the test (under CI) or skips it when Debian's
    openssh-server is not installed."""
    if not (Path(SSHD).exists() and shutil.which("ssh-keygen")):
        message = f"no {SSHD}: apt-get install openssh-server (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    host_public = _keygen(root / "host_key")
    client_public = _keygen(root / "client_key")
    (root / "authorized_keys").write_text(client_public + "\n")
    port = free_port()
    (root / "sshd_config").write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"Port {port}",
                f"HostKey {root / 'host_key'}",
                f"PidFile {root / 'sshd.pid'}",
                f"AuthorizedKeysFile {root / 'authorized_keys'}",
                "StrictModes no",  # the keys sit in a temporary folder
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
    process = start(
        [SSHD, "-D", "-e", "-f", str(root / "sshd_config")], root, None, root / "sshd.log"
    )
    wait_until(
        lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close(),
        f"127.0.0.1:{port}",
        process,
        root / "sshd.log",
        timeout_s=30,
    )
    return SSHServer(
        port,
        getpass.getuser(),
        root / "client_key",
        f"[127.0.0.1]:{port} {' '.join(host_public.split()[:2])}",
        process,
    )
