"""Validated params: every section of params.yaml as a pydantic model.

Unknown keys are rejected, and every error names the key (``train.lambda``) and what
is allowed, before any data is read or any run is opened.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

N_PIXELS, N_CLASSES = 784, 10


class ParamsError(ValueError):
    """params.yaml is missing, unreadable or invalid; the message names each bad key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Paths(Section):
    """Where each stage reads and writes, relative to the repository root (dvc.yaml uses them)."""

    raw_dir: str
    prepared: str
    manifest: str
    train_checkpoint: str
    train_metrics: str
    train_epochs: str


class Study(Section):
    name: str = Field(min_length=1)


class Runtime(Section):
    threads: int = Field(ge=1)


class Data(Section):
    mirror: str | None = None
    public_mirrors: list[str]
    timeout_s: float = Field(gt=0)
    n_validation: int = Field(ge=1, le=59_999)


class Train(Section):
    sizes: list[int]
    cost: Literal["quadratic", "cross_entropy"]
    init: Literal["large", "default"]
    eta: float = Field(gt=0)
    lam: float = Field(ge=0, alias="lambda")
    batch_size: int = Field(ge=1)
    epochs: int = Field(ge=1)
    seed: int = Field(ge=0)
    dtype: Literal["float32", "float64"]
    n_train: int | None = Field(default=None, ge=1)

    @field_validator("sizes")
    @classmethod
    def _mnist_shape(cls, sizes: list[int]) -> list[int]:
        if len(sizes) < 2 or sizes[0] != N_PIXELS or sizes[-1] != N_CLASSES:
            raise ValueError(f"must start with {N_PIXELS} and end with {N_CLASSES}, e.g. [784, 30, 10]")
        if any(size < 1 for size in sizes):
            raise ValueError("every layer needs at least one unit")
        return sizes


class Params(Section):
    paths: Paths
    study: Study
    runtime: Runtime
    data: Data
    train: Train


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (not a param of this section)"
    got = f" (got {error['input']!r})" if "input" in error and error["type"] not in ("missing", "model_type") else ""
    return f"{key}: {message}{got}"


def parse_params(raw: dict) -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = "\n".join(f"  - {_describe(e)}" for e in exc.errors())
        raise ParamsError(f"invalid params:\n{problems}") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; raises ParamsError naming every bad key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ParamsError(f"cannot read {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    return parse_params(raw)
