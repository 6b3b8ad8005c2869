"""The shape of the code (docs/architecture.md): layers import only downwards, no two
folders of the numerical package depend on each other, no task leans on another task, and
every line fits in 100 characters (ruff, configured in pyproject.toml)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

LAYERS = ("flows", "tasks", "edge", "l2path")  # top to bottom


def imported_modules(path: Path) -> set[str]:
    """Dotted names a file imports, relative imports resolved against its package."""
    package = path.relative_to(REPO).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join((*base, node.module)) if node.module else ".".join(base)
            found.add(module)
            # `from . import x` and `from .pkg import mod` may name modules, not attributes
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def unit_of(module: str) -> str | None:
    """The folder (or top-level module) of l2path a dotted name belongs to: ``l2path.study``
    for ``l2path.study.records``, ``l2path.monotonicity`` for that module."""
    parts = module.split(".")
    if parts[0] != "l2path" or len(parts) < 2:
        return None
    unit = ".".join(parts[:2])
    folder = REPO / "l2path" / parts[1]
    if folder.is_dir() or (REPO / "l2path" / f"{parts[1]}.py").is_file():
        return unit
    return None


def unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in (REPO / "l2path").rglob("*.py"):
        rel = path.relative_to(REPO).with_suffix("").parts
        source = unit_of(".".join(rel))
        if source is None:
            continue
        targets = {unit_of(m) for m in imported_modules(path)} - {None, source}
        graph.setdefault(source, set()).update(targets)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [node, nxt] if nxt in path else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [node])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [])):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}})
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_two_parts_of_the_numerical_package_import_each_other():
    graph = unit_graph()
    assert "l2path.study" in graph and "l2path.curvature" in graph["l2path.landscape"]
    assert find_cycle(graph) is None, f"import cycle between parts of l2path: {find_cycle(graph)}"


def test_layers_import_only_downwards():
    for index, layer in enumerate(LAYERS):
        above = set(LAYERS[:index])
        for path in (REPO / layer).rglob("*.py"):
            upward = {m for m in imported_modules(path) if m.split(".")[0] in above}
            assert not upward, f"{path.relative_to(REPO)} imports a layer above it: {upward}"


def test_no_task_imports_another_task():
    for path in (REPO / "tasks").glob("*.py"):
        if path.name == "__init__.py":
            continue
        siblings = {
            m
            for m in imported_modules(path)
            if m.startswith("tasks.") and m != f"tasks.{path.stem}"
        }
        assert not siblings, f"tasks/{path.name} imports {siblings}"


def ruff(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.fail("ruff is not installed: bash setup.sh installs the test extra")
    return subprocess.run([exe, *args], cwd=REPO, capture_output=True, text=True)


def test_code_is_formatted_and_lines_fit_in_100_characters():
    checked = ruff("check", ".")
    assert checked.returncode == 0, checked.stdout[-3000:]
    formatted = ruff("format", "--check", ".")
    assert formatted.returncode == 0, formatted.stdout[-3000:]
