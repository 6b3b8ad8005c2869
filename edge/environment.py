"""The process environment a stage runs in, set when a stage starts (never on import)."""

from __future__ import annotations

import logging
import os

# These machines (and many labs') have no internet: every tool's telemetry stays off.
TELEMETRY_OFF = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
}


def quiet_telemetry() -> None:
    """Turn telemetry off for this process and its children, unless the user chose otherwise."""
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)


LOG_LINE_LIMIT = 300  # characters of a log message; a longer one is cut, saying how long it was


class _ShortRecord(logging.LogRecord):
    """A log record whose message is cut at LOG_LINE_LIMIT (tracebacks are formatted apart
    and stay whole): a dict logged by accident must not flood the terminal or Prefect's UI."""

    def getMessage(self) -> str:
        text = super().getMessage()
        if len(text) <= LOG_LINE_LIMIT:
            return text
        return f"{text[: LOG_LINE_LIMIT - 40]} ... [{len(text)} characters, cut]"


def short_log_lines() -> None:
    """Every logger of this process (Prefect's, MLflow's, ours) makes short records."""
    logging.setLogRecordFactory(_ShortRecord)
