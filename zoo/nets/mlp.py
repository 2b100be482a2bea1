"""Multi-layer perceptron."""

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

import zoo.checks as checks


class MLP(nn.Module):
    """Linear/ReLU/dropout stack on the flattened input.

    Args:
        in_features: Size of one flattened input.
        num_classes: Number of classes.
        hidden_sizes: Width of each hidden layer (at least one: without hidden layers it is model=logreg).
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
        checks.integer("in_features", in_features)
        checks.integer("num_classes", num_classes)
        checks.sizes("hidden_sizes", hidden_sizes, " (a network without hidden layers is model=logreg)")
        checks.fraction("dropout", dropout)
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
