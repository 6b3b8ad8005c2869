"""l2path: pure numerics for the L2-regularisation path study on MNIST.

Subpackages by concept: ``data`` (MNIST files, Nielsen's split), ``model`` (the network,
initialisers, costs, checkpoints), ``train`` (SGD, metrics, the stop rule), ``study`` (the
lambda study: plan, typed records, rounds, store, loop), ``curvature`` (Hessian, spectra,
saddles, polish), ``report`` (figures, answers, HTML); ``dynamics`` and ``monotonicity``.

Imports torch, numpy, scipy, pandas, matplotlib (Agg only), pydantic and PyYAML (params),
threadpoolctl: never Prefect, MLflow or DVC (a test enforces it). Those live at the edge,
in ``edge/``, ``tasks/`` and ``flows/``.
"""
