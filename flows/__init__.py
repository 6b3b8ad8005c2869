"""Prefect flows, one per DVC stage, each runnable as ``python -m flows.<stage>``."""
import tasks  # noqa: F401  (sets telemetry-off defaults before Prefect is imported)
