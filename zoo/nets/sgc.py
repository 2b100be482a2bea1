"""Simplified graph convolution (Wu et al., 2019): PyG's ``SGConv``, a linear layer on ``Â^K X``."""

from typing import ClassVar

import torch
from torch import nn
from torch_geometric.nn import SGConv

import zoo.checks as checks


class SGC(nn.Module):
    """PyG's ``SGConv``: ``K`` steps of the normalised adjacency (no nonlinearity), then one linear layer to the
    class logits. Edge weights are used when present.

    Args:
        in_features: Node feature width.
        num_classes: Number of classes.
        K: Propagation steps.
        cached: Cache ``Â^K X`` (only for one fixed full-batch graph).
    """

    input_kinds: ClassVar[tuple[str, ...]] = ("graph",)
    uses_edges: ClassVar[bool] = True

    def __init__(self, in_features: int, num_classes: int, K: int = 2, cached: bool = False) -> None:  # noqa: N803
        super().__init__()
        checks.integer("in_features", in_features)
        checks.integer("num_classes", num_classes)
        checks.integer("K", K, low=0)
        self.conv = SGConv(in_features, num_classes, K=K, cached=cached)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
                ) -> torch.Tensor:
        # x: [N, in_features] -> logits [N, num_classes]
        return self.conv(x, edge_index, edge_weight)
