"""Multi-layer perceptron."""

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn


class MLP(nn.Module):
    """Linear/ReLU/dropout stack on the flattened input.

    Args:
        in_features: Size of one flattened input.
        num_classes: Number of classes.
        hidden_sizes: Width of each hidden layer (empty: logistic regression).
        dropout: Dropout probability before each hidden layer's output is used.
    """

    input_kinds: ClassVar[tuple[str, ...]] = ("image", "graph")

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden_sizes: Sequence[int] = (256, 128, 64),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, ...] -> [B, in_features] -> logits [B, num_classes]
        return self.layers(x.flatten(1))
