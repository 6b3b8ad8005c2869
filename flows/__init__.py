"""Prefect flows, one per DVC stage, each runnable as ``python -m flows.<stage>``."""
