"""J_lambda of one model on a fixed data set, as a function of a flat parameter vector theta:
value, gradient and Hessian-vector products, in float64. The one definition of the objective
used by the polish, the Hessian analysis, the certificate, the escape test and the branch code
(the SGD engine, ``train.sgd``, keeps its own explicit backprop for speed; tests/test_objective.py
holds the two gradients equal).

**Objective** (docs/science.md), on data (x_i, y_i), i = 1..n, n = ``len(x)`` = ``Objective.n``:

    J_lambda(theta) = L(theta) + lambda R(theta),
    L(theta) = (1/n) sum_i C(x_i, y_i; theta)        (``data_loss``; C the cost per image)
    R(theta) = (1/2n) sum_weights w^2                 (``penalty``; biases are not penalised)

**lambda/n convention**: lambda is Nielsen's, so the penalty's weight per image is lambda/n and
the gradient of the penalty is (lambda/n) w. The same lambda means less decay on more data;
a problem on a subset of n_sub images matches the study's per-image decay at lambda n_sub / n.

**theta layout** (p = ``size`` entries): theta = [W_1.ravel(), ..., W_L.ravel(), b_1, ..., b_L],
W_l of shape (n_out, n_in) row-major, then the biases: the first ``n_weights`` entries are the
weights. **Weight mask** m (``weight_mask``, shape (p,)): 1 on those entries, 0 on the biases, so

    grad J = grad L + (lambda/n) m * theta,    H = H_L + (lambda/n) diag(m).

Derivatives by torch.func (``hvp``: reverse-over-reverse, about two gradients' cost, measured
faster here than forward-over-reverse) or, for many products at one theta, by
``CountingOperator`` (one double-backward graph, then one backward pass per product). The data
are processed in chunks of ``chunk`` images, so memory does not grow with n.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg
import torch
from torch.func import grad, vjp

from .model.costs import Cost
from .model.network import StackedMLP


class Objective:
    """J_lambda of a network of layer ``sizes`` on (x, y) (x: (n, sizes[0]), y: (n, sizes[-1]))
    with ``cost``, at ``lam`` (see the module)."""

    def __init__(
        self,
        sizes: list[int],
        x: torch.Tensor,
        y: torch.Tensor,
        cost: Cost,
        lam: float,
        chunk: int = 10_000,
    ):
        self.sizes, self.cost, self.lam, self.chunk = list(sizes), cost, float(lam), chunk
        self.x, self.y = x.to(torch.float64), y.to(torch.float64)
        self.n = len(self.x)  # the n of lambda / 2n
        self.shapes = [(o, i) for i, o in zip(sizes[:-1], sizes[1:])] + [(o,) for o in sizes[1:]]
        self.n_weights = sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
        self.size = self.n_weights + sum(sizes[1:])

    def at(self, lam: float) -> "Objective":
        """The same data, cost and chunk at another lambda (the data are shared, not copied)."""
        return type(self)(self.sizes, self.x, self.y, self.cost, lam, self.chunk)

    # --- parameters ------------------------------------------------------------------------

    def flat(self, net: StackedMLP, k: int = 0) -> torch.Tensor:
        """theta of model k of a stack, float64."""
        return torch.cat([p[k].reshape(-1) for p in net.weights + net.biases]).to(torch.float64)

    def unflat(self, theta: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        params, start = [], 0
        for shape in self.shapes:
            count = int(np.prod(shape))
            params.append(theta[start : start + count].reshape(shape))
            start += count
        layers = len(self.sizes) - 1
        return params[:layers], params[layers:]

    def network(self, theta: torch.Tensor) -> StackedMLP:
        """theta as a stack of one model (a copy)."""
        weights, biases = self.unflat(theta.detach().clone())
        return StackedMLP([w.unsqueeze(0) for w in weights], [b.unsqueeze(0) for b in biases])

    def weight_mask(self) -> torch.Tensor:
        """1 on weight coordinates, 0 on biases: the L2 term's Hessian is (lambda/n) diag(mask)."""
        mask = torch.zeros(self.size, dtype=torch.float64, device=self.x.device)
        mask[: self.n_weights] = 1
        return mask

    # --- J and its derivatives ---------------------------------------------------------------

    def data_loss(self, theta: torch.Tensor) -> torch.Tensor:
        """(1/n) sum_x C_x."""
        weights, biases = self.unflat(theta)
        total = theta.new_zeros(())
        for start in range(0, len(self.x), self.chunk):
            a = self.x[start : start + self.chunk]
            for w, b in zip(weights, biases):
                z = a @ w.T + b
                a = torch.sigmoid(z)
            total = total + self.cost.per_sample(z, a, self.y[start : start + self.chunk]).sum()
        return total / len(self.x)

    def penalty(self, theta: torch.Tensor) -> torch.Tensor:
        """R = (1/2n) sum_weights w^2."""
        return theta[: self.n_weights].square().sum() / (2 * len(self.x))

    def value(self, theta: torch.Tensor) -> torch.Tensor:
        return self.data_loss(theta) + self.lam * self.penalty(theta)

    def gradient(self, theta: torch.Tensor) -> torch.Tensor:
        return self.value_and_gradient(theta)[1]

    def value_and_gradient(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(J, grad J) from one forward pass (L-BFGS asks for both at every point), by plain
        autograd: the same operations as torch.func's ``grad_and_value``, without its
        per-call transform overhead (2.05 ms against 1.22 ms per call on the chain's
        128-image problem, where the arithmetic is tiny)."""
        leaf = theta.detach().requires_grad_()
        with torch.enable_grad():
            value = self.value(leaf)
            (gradient,) = torch.autograd.grad(value, leaf)
        return value.detach(), gradient

    def hvp(self, theta: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
        """H(theta) @ vector = d/dtheta (grad J(theta) . vector) (H is symmetric)."""
        return vjp(grad(self.value), theta)[1](vector.to(torch.float64))[0]

    def operator(self, theta: torch.Tensor) -> "CountingOperator":
        return CountingOperator(self, theta.detach().to(torch.float64))


class CountingOperator(scipy.sparse.linalg.LinearOperator):
    """H(theta) as a scipy LinearOperator on float64 vectors, counting its products.

    The gradient's autograd graph is built once (double backward); each product is then
    one backward pass through it, H v = d(grad J . v)/dtheta: about one gradient's cost
    instead of two for ``Objective.hvp``. The graph holds the activations of the data.
    """

    def __init__(self, objective: Objective, theta: torch.Tensor):
        super().__init__(dtype=np.float64, shape=(objective.size, objective.size))
        self.objective, self.products = objective, 0
        self.theta = theta.detach().clone().requires_grad_()
        with torch.enable_grad():
            (self._grad,) = torch.autograd.grad(
                objective.value(self.theta), self.theta, create_graph=True
            )

    def _matvec(self, vector: np.ndarray) -> np.ndarray:
        self.products += 1
        v = torch.as_tensor(
            np.ascontiguousarray(vector, dtype=np.float64).reshape(-1), device=self.theta.device
        )
        (product,) = torch.autograd.grad(self._grad, self.theta, grad_outputs=v, retain_graph=True)
        return product.cpu().numpy()

    def _rmatvec(self, vector: np.ndarray) -> np.ndarray:  # symmetric
        return self._matvec(vector)
