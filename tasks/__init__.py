"""Prefect tasks, one per unit of work of a stage; each owns its stage's logging (through
``edge``)."""
