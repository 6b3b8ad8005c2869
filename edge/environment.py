"""The process environment a stage runs in, set when a stage starts (never on import)."""
from __future__ import annotations

import os

# These machines (and many labs') have no internet: every tool's telemetry stays off.
TELEMETRY_OFF = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
                 "DVC_NO_ANALYTICS": "1"}


def quiet_telemetry() -> None:
    """Turn telemetry off for this process and its children, unless the user chose otherwise."""
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)
