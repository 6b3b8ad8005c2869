"""On-disk state of the lambda study: one checkpoint and one record per finished point.

Layout under the store's root (a DVC output that persists between runs, for resume)::

    <key>.pt            weights at the end of the SGD phase (``model.checkpoint.save_model``)
    <key>.sgd.json      the SGD phase's record (``records.SGDPhase``), until the point is finished
    <key>.polished.pt   weights after the float64 polish, when the point was polished
    <key>.json          the point's record (``records.PointRecord``), written last: its
                        presence means "finished"

``key`` is ``Point.key`` (``ascending/seed0/lambda03``). A record carries the point's
fingerprint (``planner.StudyPlan.fingerprint``); a record whose fingerprint differs from the
current one is stale and the point is trained again. Every file is written atomically.

What a run of a point was (``records.RUN_FIELDS``: execution, MLflow run ids, wall times)
is kept under a second root, ``runs_root`` (not tracked by DVC), as ``<key>.json`` and
``<key>.sgd.json`` with the fingerprint they belong to. The DVC-tracked root then holds
the same bytes on every run of the same inputs. A point whose run file is missing (outputs
restored by ``dvc pull`` into another clone) loads with empty run fields: it has not been
logged to this clone's MLflow store yet.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import atomic
from ..model.checkpoint import save_model
from ..model.network import StackedMLP
from .records import PointRecord, SGDPhase


class PointStore:
    def __init__(self, root: str | Path, runs_root: str | Path | None = None):
        self.root = Path(root)
        self.runs_root = (
            Path(runs_root)
            if runs_root is not None
            else self.root.with_name(self.root.name + ".runs")
        )

    @classmethod
    def of_study(cls, paths) -> "PointStore":
        """The study's store (``paths``: ``config.Paths``); its run files beside the lineage
        files, which DVC does not track."""
        return cls(paths.study_dir, Path(paths.lineage_dir) / "study_points")

    def checkpoint_path(self, key: str, polished: bool = False) -> Path:
        return self.root / f"{key}{'.polished' if polished else ''}.pt"

    def record_path(self, key: str, phase: str = "final") -> Path:
        return self.root / (f"{key}.json" if phase == "final" else f"{key}.{phase}.json")

    def run_path(self, key: str, phase: str = "final") -> Path:
        return self.runs_root / self.record_path(key, phase).relative_to(self.root)

    @staticmethod
    def _json(path: Path, fingerprint: str) -> dict | None:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return raw if raw.get("fingerprint") == fingerprint else None

    def _read(self, key: str, fingerprint: str, phase: str) -> dict | None:
        """The record with its run fields merged in (none if its run file is missing or stale)."""
        raw = self._json(self.record_path(key, phase), fingerprint)
        if raw is None:
            return None
        return {**raw, **(self._json(self.run_path(key, phase), fingerprint) or {})}

    def _write_run(self, key: str, phase: str, fingerprint: str, fields: dict) -> None:
        atomic.write_json(self.run_path(key, phase), {"fingerprint": fingerprint, **fields})

    def load(self, key: str, fingerprint: str) -> PointRecord | None:
        """The finished point's record, or None if it is missing, stale or lacks a checkpoint."""
        raw = self._read(key, fingerprint, "final")
        if raw is None:
            return None
        record = PointRecord.from_json(raw)
        needed = [record.checkpoint] + (
            [record.polished_checkpoint] if record.polished_checkpoint else []
        )
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
        save_model(
            net,
            0,
            phase.checkpoint,
            {"key": phase.key, "fingerprint": phase.fingerprint, "phase": "sgd"},
        )
        self._write_run(phase.key, "sgd", phase.fingerprint, {"train_seconds": phase.train_seconds})
        atomic.write_json(self.record_path(phase.key, "sgd"), phase.to_json())

    def save(self, record: PointRecord, polished_net: StackedMLP | None = None) -> None:
        """The polished checkpoint (if any), then the final record, which supersedes the SGD
        phase's."""
        if polished_net is not None:
            save_model(
                polished_net,
                0,
                record.polished_checkpoint,
                {"key": record.key, "fingerprint": record.fingerprint, "phase": "polished"},
            )
        self.update(record)
        atomic.write_json(self.record_path(record.key), record.content_json())
        self.record_path(record.key, "sgd").unlink(missing_ok=True)
        self.run_path(record.key, "sgd").unlink(missing_ok=True)

    def update(self, record: PointRecord) -> None:
        """Rewrite a finished point's run fields (e.g. to add its tracking run id); what the
        point is does not change."""
        self._write_run(record.key, "final", record.fingerprint, record.run_fields())

    def run_ids(self) -> dict[str, str]:
        """Point key -> the MLflow run that logged it, for every point this clone has logged."""
        found = {}
        for path in sorted(self.runs_root.rglob("*.json")) if self.runs_root.is_dir() else []:
            key, _, phase = path.relative_to(self.runs_root).as_posix().partition(".")
            run_id = json.loads(path.read_text()).get("mlflow_run_id") if phase == "json" else None
            if run_id:
                found[key] = run_id
        return found

    def prune(self, keep: set[str]) -> list[Path]:
        """Delete the files of points not in ``keep`` (left by an earlier grid or schedule)."""
        removed = []
        for root in (self.root, self.runs_root):
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    key = path.relative_to(root).as_posix().split(".")[0]
                    if key not in keep:
                        path.unlink()
                        removed.append(path)
            for directory in sorted(root.rglob("*"), reverse=True):  # deepest first
                if directory.is_dir() and not any(directory.iterdir()):
                    directory.rmdir()
        return removed
