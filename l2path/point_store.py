"""On-disk state of the lambda study: one checkpoint and one record per finished point.

Layout under the store's root (a DVC output that persists between runs, for resume)::

    <key>.pt            weights at the end of the SGD phase (``checkpoint.save_model``)
    <key>.sgd.json      the SGD phase's record, until the point is finished
    <key>.polished.pt   weights after the float64 polish, when the point was polished
    <key>.json          the point's record, written last: its presence means "finished"

``key`` is ``Point.key`` (``ascending/seed0/lambda03``). A record carries the point's
fingerprint (a hash of everything that determines its numbers); a record whose
fingerprint differs from the current one is stale and the point is trained again.
"""
from __future__ import annotations

import json
from pathlib import Path

from . import atomic
from .checkpoint import save_model
from .network import StackedMLP


class PointStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def checkpoint_path(self, key: str, polished: bool = False) -> Path:
        return self.root / f"{key}{'.polished' if polished else ''}.pt"

    def record_path(self, key: str, phase: str = "final") -> Path:
        return self.root / (f"{key}.json" if phase == "final" else f"{key}.{phase}.json")

    def load(self, key: str, fingerprint: str, phase: str = "final") -> dict | None:
        """The point's record of ``phase`` ("final" or "sgd"), or None if it is missing,
        stale or lacks a checkpoint."""
        path = self.record_path(key, phase)
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if record.get("fingerprint") != fingerprint:
            return None
        needed = [record["checkpoint"]] + ([record["polished_checkpoint"]] if record.get("polished_checkpoint") else [])
        return record if all(Path(p).is_file() for p in needed) else None

    def save(self, record: dict, sgd_net: StackedMLP | None = None, polished_net: StackedMLP | None = None,
             phase: str = "final") -> None:
        """Write the given checkpoint(s), then the record (each atomically).

        Saving the final record removes the SGD phase's record, which it supersedes.
        """
        meta = {"key": record["key"], "fingerprint": record["fingerprint"]}
        if sgd_net is not None:
            save_model(sgd_net, 0, record["checkpoint"], {**meta, "phase": "sgd"})
        if polished_net is not None:
            save_model(polished_net, 0, record["polished_checkpoint"], {**meta, "phase": "polished"})
        if phase == "final":
            self.update(record)
            self.record_path(record["key"], "sgd").unlink(missing_ok=True)
        else:
            atomic.write_json(self.record_path(record["key"], phase), record)

    def update(self, record: dict) -> None:
        """Rewrite a finished point's record (e.g. to add its MLflow run id)."""
        atomic.write_json(self.record_path(record["key"]), record)

    def prune(self, keep: set[str]) -> list[Path]:
        """Delete the files of points not in ``keep`` (left by an earlier grid or schedule)."""
        removed = []
        for path in sorted(self.root.rglob("*")):
            if path.is_file():
                key = path.relative_to(self.root).as_posix().split(".")[0]
                if key not in keep:
                    path.unlink()
                    removed.append(path)
        for directory in sorted(self.root.rglob("*"), reverse=True):  # deepest first
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
        return removed
