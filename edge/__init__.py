"""The edge of the project: the one place that talks to MLflow (``tracking``), collects
lineage (``lineage``), reads dvc.yaml (``dvcfile``), opens and closes a stage
(``stage``), and picks where the study's shards run (``scale_out``). Importing it has no
side effects."""
