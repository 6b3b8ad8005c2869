"""Every stage in dvc.yaml depends on all the project code its command runs, so editing a
module re-runs exactly the stages that import it (found by reading the imports, not by
running them)."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("l2path", "edge", "tasks", "flows")
# Wiring that cannot change what a stage writes: package markers and the edge package
# (the command line, MLflow tracking and lineage tags, project paths, input checks, where
# shards run). Listing these would re-run every stage (the Hessian analysis takes about 20
# minutes) for a logging change.
BOOKKEEPING_FILES = {"flows/__init__.py", "l2path/__init__.py", "tasks/__init__.py"}
BOOKKEEPING_DIRS = ("edge/",)


def is_bookkeeping(path: str) -> bool:
    return path in BOOKKEEPING_FILES or path.startswith(BOOKKEEPING_DIRS)


def module_file(name: str) -> Path | None:
    """The project file of a dotted module name, or None if it is not ours."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Dotted names a file imports (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # "from pkg import module"
    return names


def project_closure(entry: Path) -> set[str]:
    """Repo-relative paths of every project file ``entry`` imports, directly or not."""
    seen, todo = set(), [entry]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_modules(path):
            found = module_file(name)
            if found is not None:
                todo.append(found)
                parts = name.split(".")  # a package's __init__ runs before any of its modules
                todo += [
                    f for f in (module_file(".".join(parts[:i])) for i in range(1, len(parts))) if f
                ]
    return {str(p.relative_to(ROOT)) for p in seen}


def stage_code_deps() -> dict[str, tuple[Path, list[str]]]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    result = {}
    for name, stage in stages.items():
        module = stage["cmd"].split("python -m ", 1)[1].split()[0]
        result[name] = (
            module_file(module),
            [d for d in stage["deps"] if not str(d).startswith("${")],
        )
    return result


def test_every_stage_depends_on_the_code_it_imports():
    for stage, (entry, deps) in stage_code_deps().items():
        needed = {p for p in project_closure(entry) if not is_bookkeeping(p)}
        missing = sorted(
            p for p in needed if not any(p == d or p.startswith(d.rstrip("/") + "/") for d in deps)
        )
        assert not missing, (
            f"stage {stage} imports {missing} but does not list them as deps in dvc.yaml"
        )


def test_bookkeeping_modules_are_not_deps():
    for stage, (_, deps) in stage_code_deps().items():
        listed = sorted(d for d in deps if is_bookkeeping(d) or is_bookkeeping(d.rstrip("/") + "/"))
        assert not listed, f"stage {stage} lists bookkeeping modules {listed}: see BOOKKEEPING"


def test_stage_deps_name_existing_files():
    for stage, (_, deps) in stage_code_deps().items():
        absent = [d for d in deps if not (ROOT / d).exists()]
        assert not absent, f"stage {stage} lists missing deps {absent}"


def test_stages_read_their_outputs_from_dvc_yaml():
    """The outputs a stage checks before it works (and logs after) are dvc.yaml's outs,
    metrics and plots, resolved with params.yaml's paths: there is no second list."""
    import re

    from edge.dvcfile import stage_files
    from l2path.config import load_params

    params = load_params(ROOT / "params.yaml")
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        entries = [
            next(iter(e)) if isinstance(e, dict) else e
            for kind in ("outs", "metrics", "plots")
            for e in stage.get(kind, [])
        ]
        expected = [
            re.sub(r"\$\{paths\.(\w+)\}", lambda m: getattr(params.paths, m.group(1)), e)
            for e in entries
        ]
        assert list(stage_files(name, params, ROOT).outputs) == expected


def test_run_bookkeeping_is_neither_a_dvc_output_nor_a_dependency():
    """Lineage (run ids) and timings change on every run: declared, they would change dvc.lock."""
    text = (ROOT / "dvc.yaml").read_text()
    stages = yaml.safe_load(text)["stages"]
    declared = [
        str(next(iter(e)) if isinstance(e, dict) else e)
        for stage in stages.values()
        for kind in ("deps", "outs", "metrics", "plots")
        for e in stage.get(kind, [])
    ]
    assert not [d for d in declared if "lineage" in d or "timings" in d]


def test_a_stages_upstream_runs_are_those_of_the_stages_writing_its_deps():
    from edge.dvcfile import producers, stage_files
    from l2path.config import load_params

    params = load_params(ROOT / "params.yaml")
    writers = producers(params, ROOT)
    upstream = {
        name: {writers[d] for d in stage_files(name, params, ROOT).deps if d in writers}
        for name in ("hessian", "continuation", "report")
    }
    assert upstream["hessian"] == upstream["continuation"] == {"prepare", "study"}
    assert upstream["report"] == {
        "prepare",
        "train",
        "study",
        "hessian",
        "continuation",
        "dynamics",
    }
