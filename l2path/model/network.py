"""A stack of K independent sigmoid MLPs (Nielsen's network), K = 1 being one model.

Shapes: ``weights[l]`` is (K, n_out, n_in) and ``biases[l]`` is (K, n_out), Nielsen's
orientation (a_out = sigmoid(W a_in + b)). Every unit, the output layer included, is a
sigmoid. Inputs are either shared by all models, shape (n, n_in), or per model,
shape (K, n, n_in); the activations of every later layer are (K, n, n_units).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64}  # params' names of the precisions


# MKL's sgemm runs at ~55 instead of ~85 GFLOP/s here when a product's width is not a multiple
# of 16
_COLUMN_BLOCK = 16


def wide_product(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """a @ w^T, (n, n_in) @ (n_in, N): the first layer of a stack, N = K * n_out. ``w`` is
    padded with zero rows to a multiple of 16 (same values, a faster product) and the
    result is a view of the first N columns, (n, N) with row stride the padded width."""
    columns = w.shape[0]
    padding = -columns % _COLUMN_BLOCK
    if padding:
        w = torch.cat([w, w.new_zeros(padding, w.shape[1])])
    return torch.mm(a, w.t())[:, :columns]


@dataclass
class StackedMLP:
    weights: list[torch.Tensor]
    biases: list[torch.Tensor]

    @property
    def sizes(self) -> list[int]:
        return [self.weights[0].shape[2]] + [w.shape[1] for w in self.weights]

    @property
    def n_models(self) -> int:
        return self.weights[0].shape[0]

    @property
    def dtype(self) -> torch.dtype:
        return self.weights[0].dtype

    def forward(
        self, x: torch.Tensor, scales: list[torch.Tensor] | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Activations of every layer (the input first, as given) and the output pre-activation z_L.

        A shared input (n, n_in) goes through the first layer as one matrix product with all
        K models' weights side by side, (n, n_in) @ (n_in, K * n_out): far faster than K
        thin products. Later activations are (K, n, n_units).

        With ``scales`` (one (K, 1, 1) tensor per layer, in the network's dtype) the weights
        of layer l are scales[l] * weights[l]: z = scales[l] * (a W^T) + b (``train.scaled``).
        """
        activations, a, z = [x], x, None
        for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
            if a.dim() == 2:
                k, n_out, n_in = w.shape
                z = (
                    wide_product(a, w.reshape(k * n_out, n_in))
                    .view(len(a), k, n_out)
                    .transpose(0, 1)
                )
                z = (z if scales is None else z * scales[layer]) + b.unsqueeze(1)
            elif (
                scales is None
            ):  # z^T = W a^T: a is often a transposed view, and this product reads it in place
                z = torch.baddbmm(b.unsqueeze(2), w, a.transpose(1, 2)).transpose(1, 2)
            else:
                z = (
                    torch.bmm(w, a.transpose(1, 2))
                    .mul_(scales[layer])
                    .add_(b.unsqueeze(2))
                    .transpose(1, 2)
                )
            a = torch.sigmoid(z)
            activations.append(a)
        return activations, z

    def model(self, k: int) -> "StackedMLP":
        """Model k alone, as a stack of one (a copy)."""
        return StackedMLP(
            [w[k : k + 1].clone() for w in self.weights],
            [b[k : k + 1].clone() for b in self.biases],
        )

    def select(self, idx: torch.Tensor) -> "StackedMLP":
        """The models at positions ``idx`` (a 1-D index tensor), as a new stack (copies)."""
        return StackedMLP([w[idx] for w in self.weights], [b[idx] for b in self.biases])

    def assign(self, idx: torch.Tensor, part: "StackedMLP") -> None:
        """Overwrite the models at positions ``idx`` with the models of ``part``, in place."""
        for mine, theirs in zip(self.weights + self.biases, part.weights + part.biases):
            mine[idx] = theirs

    def clone(self) -> "StackedMLP":
        return StackedMLP([w.clone() for w in self.weights], [b.clone() for b in self.biases])

    def to(self, dtype: torch.dtype) -> "StackedMLP":
        return StackedMLP([w.to(dtype) for w in self.weights], [b.to(dtype) for b in self.biases])

    def is_finite(self) -> torch.Tensor:
        """(K,) bool: every weight and bias of model k is finite."""
        finite = torch.ones(self.n_models, dtype=torch.bool)
        for p in self.weights + self.biases:
            finite &= torch.isfinite(p.reshape(self.n_models, -1)).all(1)
        return finite

    @staticmethod
    def stack(models: list["StackedMLP"]) -> "StackedMLP":
        """Concatenate stacks along the model axis."""
        layers = range(len(models[0].weights))
        return StackedMLP(
            [torch.cat([m.weights[l] for m in models]) for l in layers],
            [torch.cat([m.biases[l] for m in models]) for l in layers],
        )
