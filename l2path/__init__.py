"""l2path: pure numerics for the L2-regularisation path study on MNIST.

Only torch, numpy and scipy (plus pydantic for params) are imported here: no Prefect,
MLflow or DVC. Those live at the edge, in ``tasks/`` and ``flows/``.
"""
