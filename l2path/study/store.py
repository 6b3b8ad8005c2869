"""On-disk state of the lambda study: one checkpoint and one record per finished point.

Layout under the store's root (a DVC output that persists between runs, for resume)::

    <key>.pt            weights at the end of the SGD phase (``model.checkpoint.save_model``)
    <key>.sgd.json      the SGD phase's record (``records.SGDPhase``), until the point is finished
    <key>.polished.pt   weights after the float64 polish, when the point was polished
    <key>.json          the point's record (``records.PointRecord``), written last: its presence means "finished"

``key`` is ``Point.key`` (``ascending/seed0/lambda03``). A record carries the point's
fingerprint (``planner.StudyPlan.fingerprint``); a record whose fingerprint differs from the
current one is stale and the point is trained again. Every file is written atomically.
"""
from __future__ import annotations

import json
from pathlib import Path

from .. import atomic
from ..model.checkpoint import save_model
from ..model.network import StackedMLP
from .records import PointRecord, SGDPhase


class PointStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def checkpoint_path(self, key: str, polished: bool = False) -> Path:
        return self.root / f"{key}{'.polished' if polished else ''}.pt"

    def record_path(self, key: str, phase: str = "final") -> Path:
        return self.root / (f"{key}.json" if phase == "final" else f"{key}.{phase}.json")

    def _read(self, key: str, fingerprint: str, phase: str) -> dict | None:
        try:
            raw = json.loads(self.record_path(key, phase).read_text())
        except (OSError, ValueError):
            return None
        return raw if raw.get("fingerprint") == fingerprint else None

    def load(self, key: str, fingerprint: str) -> PointRecord | None:
        """The finished point's record, or None if it is missing, stale or lacks a checkpoint."""
        raw = self._read(key, fingerprint, "final")
        if raw is None:
            return None
        record = PointRecord.from_json(raw)
        needed = [record.checkpoint] + ([record.polished_checkpoint] if record.polished_checkpoint else [])
        return record if all(Path(p).is_file() for p in needed) else None

    def load_phase(self, key: str, fingerprint: str) -> SGDPhase | None:
        """The saved SGD phase of a point not yet finished, or None."""
        raw = self._read(key, fingerprint, "sgd")
        if raw is None:
            return None
        phase = SGDPhase.from_json(raw)
        return phase if Path(phase.checkpoint).is_file() else None

    def save_phase(self, phase: SGDPhase, net: StackedMLP) -> None:
        """The SGD checkpoint, then the phase record."""
        save_model(net, 0, phase.checkpoint, {"key": phase.key, "fingerprint": phase.fingerprint, "phase": "sgd"})
        atomic.write_json(self.record_path(phase.key, "sgd"), phase.to_json())

    def save(self, record: PointRecord, polished_net: StackedMLP | None = None) -> None:
        """The polished checkpoint (if any), then the final record, which supersedes the SGD phase's."""
        if polished_net is not None:
            save_model(polished_net, 0, record.polished_checkpoint,
                       {"key": record.key, "fingerprint": record.fingerprint, "phase": "polished"})
        self.update(record)
        self.record_path(record.key, "sgd").unlink(missing_ok=True)

    def update(self, record: PointRecord) -> None:
        """Rewrite a finished point's record (e.g. to add its tracking run id)."""
        atomic.write_json(self.record_path(record.key), record.to_json())

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
