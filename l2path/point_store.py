"""On-disk state of the lambda study: one checkpoint and one record per finished point.

Layout under the store's root (a DVC output that persists between runs, for resume)::

    <key>.pt            weights at the end of the SGD phase (``checkpoint.save_model``)
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

    def record_path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def load(self, key: str, fingerprint: str) -> dict | None:
        """The finished point's record, or None if it is missing, stale or lacks a checkpoint."""
        path = self.record_path(key)
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if record.get("fingerprint") != fingerprint:
            return None
        needed = [record["checkpoint"]] + ([record["polished_checkpoint"]] if record.get("polished_checkpoint") else [])
        return record if all(Path(p).is_file() for p in needed) else None

    def save(self, record: dict, sgd_net: StackedMLP, polished_net: StackedMLP | None = None) -> None:
        """Write the checkpoint(s), then the record (each atomically)."""
        meta = {"key": record["key"], "lambda": record["lambda"], "fingerprint": record["fingerprint"]}
        save_model(sgd_net, 0, record["checkpoint"], {**meta, "phase": "sgd"})
        if polished_net is not None:
            save_model(polished_net, 0, record["polished_checkpoint"], {**meta, "phase": "polished"})
        self.update(record)

    def update(self, record: dict) -> None:
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
        return removed
