"""Atomic file writes: write to a temporary file in the same directory, then rename.

A reader (or DVC) never sees a half-written output, and a crash, a full disk or a
read-only directory leaves the previous version of the file in place.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pandas as pd


class OutputWriteError(OSError):
    """An output could not be written (read-only or full file system, ...); its previous
    version, if any, is unchanged and no temporary file is left."""


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success.

    On an exception the temporary file is removed and ``target`` is left untouched; an
    OSError (no space, read-only, ...) comes back as an OutputWriteError naming ``target``.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputWriteError(f"cannot write {target}: {exc}") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputWriteError):
            raise OutputWriteError(
                f"cannot write {target}: {exc}; its previous version is unchanged"
            ) from exc
        raise


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging directory beside ``target``; on success it replaces ``target``
    as a whole (two renames). On an exception the staging directory is removed and
    ``target`` is untouched; an OSError comes back as an OutputWriteError naming ``target``.
    """
    target = Path(target)
    staging, old = target.with_name(f".{target.name}.tmp"), target.with_name(f".{target.name}.old")
    shutil.rmtree(staging, ignore_errors=True)  # left by a killed run
    try:
        staging.mkdir(parents=True)
        yield staging
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        staging.rename(target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputWriteError):
            raise OutputWriteError(
                f"cannot write {target}: {exc}; its previous version is unchanged"
            ) from exc
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_csv(target: str | os.PathLike, frame: pd.DataFrame) -> None:
    """The table as CSV, without the index."""
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False)


def write_json(target: str | os.PathLike, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=True) + "\n")
