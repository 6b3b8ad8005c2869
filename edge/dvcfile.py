"""What dvc.yaml says about a stage: its deps, params and outputs, the one list of them.

dvc.yaml writes paths as ``${paths.<key>}`` (params.yaml's ``paths`` section); they are
resolved here with the params in use, so code never keeps a copy of a stage's outputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from l2path.config import Params

_VARIABLE = re.compile(r"\$\{([\w.]+)\}")


@dataclass(frozen=True)
class StageFiles:
    deps: tuple[str, ...]  # resolved dependency paths, code included
    params: tuple[str, ...]  # params keys or sections the stage depends on
    outputs: tuple[str, ...]  # outs, metrics and plots, resolved


@lru_cache(maxsize=None)
def _stages(dvc_yaml: Path) -> dict:
    return yaml.safe_load(dvc_yaml.read_text())["stages"]


def _entry_path(entry) -> str:
    return next(iter(entry)) if isinstance(entry, dict) else str(entry)


def _resolve(text: str, params: Params) -> str:
    def value(match: re.Match) -> str:
        node = params.model_dump(by_alias=True)
        for part in match.group(1).split("."):
            node = node[part]
        return str(node)

    return _VARIABLE.sub(value, text)


def stage_files(stage: str, params: Params, root: Path) -> StageFiles:
    """The stage's deps, params and outputs as dvc.yaml (under ``root``) declares them."""
    stages = _stages((root / "dvc.yaml").resolve())
    if stage not in stages:
        raise KeyError(f"dvc.yaml has no stage {stage!r} (stages: {sorted(stages)})")
    entry = stages[stage]
    outputs = [_entry_path(e) for kind in ("outs", "metrics", "plots") for e in entry.get(kind, [])]
    return StageFiles(
        deps=tuple(_resolve(_entry_path(d), params) for d in entry.get("deps", [])),
        params=tuple(_entry_path(p) for p in entry.get("params", [])),
        outputs=tuple(_resolve(o, params) for o in outputs),
    )


def producers(params: Params, root: Path) -> dict[str, str]:
    """Output path -> the stage that writes it, for every stage."""
    return {
        output: name
        for name in _stages((root / "dvc.yaml").resolve())
        for output in stage_files(name, params, root).outputs
    }
