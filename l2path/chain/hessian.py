"""Many Hessian-vector products at one theta in one batched backward pass.

``BatchedOperator`` is ``objective.CountingOperator`` (the gradient's graph built once) whose
``matmat`` computes H V for a block of columns with ``is_grads_batched`` (vmap over the
backward pass) instead of one pass per column: the same products, with the per-pass overhead
paid once per block. Assembling the dense H~ of the span-reduced problem
(``chain.span``, 4,180 parameters at n_sub = 128) takes 1.2 s instead of several.
"""

from __future__ import annotations

import numpy as np
import torch

from ..curvature.inertia import DenseHessian, dense_hessian
from ..objective import CountingOperator, Objective


class BatchedOperator(CountingOperator):
    def _matmat(self, block: np.ndarray) -> np.ndarray:
        self.products += block.shape[1]
        vectors = torch.as_tensor(
            np.ascontiguousarray(np.asarray(block, dtype=np.float64).T), device=self.theta.device
        )
        (products,) = torch.autograd.grad(
            self._grad, self.theta, grad_outputs=vectors, retain_graph=True, is_grads_batched=True
        )
        return products.T.cpu().numpy()


def dense_hessian_at(objective: Objective, theta: torch.Tensor, block: int = 64) -> DenseHessian:
    """H(theta) as a dense float64 matrix (``curvature.inertia.dense_hessian``), batched."""
    return dense_hessian(BatchedOperator(objective, theta.detach().to(torch.float64)), block)
