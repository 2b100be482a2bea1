"""Multinomial logistic regression."""

from typing import ClassVar

import torch
from torch import nn

import zoo.checks as checks


class LogisticRegression(nn.Module):
    """One linear layer on the flattened input; softmax is applied by the loss.

    Args:
        in_features: Size of one flattened input.
        num_classes: Number of classes.
    """

    input_kinds: ClassVar[tuple[str, ...]] = ("image", "graph")

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        checks.integer("in_features", in_features)
        checks.integer("num_classes", num_classes)
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, ...] -> [B, in_features] -> logits [B, num_classes]
        return self.linear(x.flatten(1))
