"""The numerical package imports no orchestration or tracking library."""

from __future__ import annotations

import ast
import os
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


def modules_of(package: str) -> list[str]:
    """Dotted names of every module of a top-level package of the repo (subpackages included)."""
    root = REPO / package
    return [
        ".".join((package, *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
        for path in sorted(root.rglob("*.py"))
    ]


def test_importing_every_module_loads_none_of_them():
    modules = modules_of("l2path")
    assert "l2path.study.records" in modules and "l2path.curvature.spectrum" in modules
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FORBIDDEN)!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_imports_have_no_side_effects():
    """Importing every module of the project leaves the environment as it was and selects no
    matplotlib backend (stages set the environment when they start; figures draw with Agg
    through FigureCanvasAgg)."""
    modules = [m for package in ("l2path", "edge", "tasks", "flows") for m in modules_of(package)]
    libraries = [
        "numpy",
        "scipy.sparse.linalg",
        "torch",
        "pandas",
        "threadpoolctl",
        "matplotlib",
        "prefect",
        "mlflow",
        "dvc.repo",
        "psutil",
        "prefect_dask",
    ]
    code = (
        "import os, sys, importlib\n"
        # what libraries do on import is theirs
        f"for m in {libraries!r}: importlib.import_module(m)\n"
        "before = dict(os.environ)\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "changed = sorted(k for k in set(before) | set(os.environ)\n"
        "                 if before.get(k) != os.environ.get(k))\n"
        "print(changed, 'matplotlib.pyplot' in sys.modules)"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("PREFECT_SERVER_ANALYTICS_ENABLED", "MLFLOW_DISABLE_TELEMETRY", "DVC_NO_ANALYTICS")
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip().splitlines()[-1] == "[] False"


def test_no_class_is_over_150_lines():
    for package in ("l2path", "edge", "tasks", "flows"):
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef):
                    assert node.end_lineno - node.lineno < 150, f"{path}: class {node.name}"
