"""The numerical package imports no orchestration or tracking library."""
from __future__ import annotations

import ast
import subprocess
import sys

from conftest import REPO

FORBIDDEN = {"prefect", "mlflow", "dvc"}


def test_no_forbidden_import_statements():
    for path in (REPO / "l2path").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


def test_importing_every_module_loads_none_of_them():
    modules = [p.stem for p in (REPO / "l2path").glob("*.py") if p.stem != "__init__"]
    code = ("import sys, importlib\n"
            f"for m in {modules!r}: importlib.import_module('l2path.' + m)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FORBIDDEN)!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
