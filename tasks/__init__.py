"""Prefect tasks: thin wrappers around l2path that pass paths and small records.

``tasks.tracking`` is the one module that talks to MLflow.
"""

import os as _os

# These machines (and many labs') have no internet: keep every tool's telemetry off.
for _key, _value in {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
                     "DVC_NO_ANALYTICS": "1"}.items():
    _os.environ.setdefault(_key, _value)
