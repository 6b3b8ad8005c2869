"""Where the project lives: the repository root that relative paths in params.yaml resolve
against."""

from __future__ import annotations

import re
from pathlib import Path

# `dvc exp run --temp` runs stages in a throw-away copy under <repo>/.dvc/tmp/exps/...;
# state that must outlive the experiment (the MLflow store) belongs to the real repo.
_DVC_TEMP_WORKSPACE = re.compile(r"^(?P<repo>.*?)/\.dvc/tmp/exps/")


def project_root() -> Path:
    """The current directory: DVC runs every stage from the repo root, and so must users."""
    return Path.cwd().resolve()


def persistent_root() -> Path:
    """The repository that outlives a ``dvc exp run --temp`` workspace (else project_root())."""
    root = project_root()
    match = _DVC_TEMP_WORKSPACE.match(root.as_posix() + "/")
    return Path(match["repo"]) if match else root
