"""The local MLflow store moves as one directory: ``mlruns/`` (``mlflow.db`` and ``artifacts/``).

MLflow records artifact places as absolute ``file://`` URIs (an experiment's
``artifact_location``, a run's ``artifact_uri``, a logged model's ``artifact_location``),
so a store copied to another machine or a moved checkout would point into a directory
that is not there. The layout is relative: every artifact lives under
``<store>/artifacts``. When a stage opens the store from a new place, ``adopt`` rewrites
the recorded prefix to this place's ``<store>/artifacts`` (docs/sharing.md). A store
behind ``mlflow server`` (``MLFLOW_TRACKING_URI``) never needs this: its artifacts are
served (``mlflow-artifacts:/`` URIs).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

# The tables and columns where MLflow keeps an artifact URI (MLflow 3).
URI_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
)
ARTIFACTS = "artifacts"


def recorded_root(db: sqlite3.Connection) -> str | None:
    """The ``file://.../<store>/artifacts`` URI the store's experiments were made with."""
    for (location,) in db.execute(
        "SELECT artifact_location FROM experiments ORDER BY experiment_id"
    ):
        if (
            location
            and location.startswith("file://")
            and location.rstrip("/").endswith(f"/{ARTIFACTS}")
        ):
            return location.rstrip("/")
    return None


def adopt(store: Path) -> int:
    """Point the store's artifact URIs at ``store/artifacts`` if they name another place;
    returns the number of rows rewritten (0 when the store is where it was made)."""
    database = store / "mlflow.db"
    if not database.is_file():
        return 0
    here = (store.resolve() / ARTIFACTS).as_uri()
    with sqlite3.connect(database, timeout=60) as db:
        there = recorded_root(db)
        if there is None or there == here:
            return 0
        tables = {
            name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        rewritten = 0
        for table, column in URI_COLUMNS:
            if table in tables:  # substr, not LIKE: a path may hold '_' or '%'
                rewritten += db.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                    f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                    (here, len(there) + 1, there, len(there) + 1, there + "/"),
                ).rowcount
        return rewritten
