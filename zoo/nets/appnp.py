"""APPNP (Gasteiger et al., 2019): an MLP predicts, personalised PageRank propagates (PyG ``APPNP``)."""

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import APPNP as APPNPPropagation
from torch_geometric.nn.models import MLP

import zoo.checks as checks


class APPNP(nn.Module):
    """Dropout on the input, PyG's ``MLP`` to class logits per node, then ``K`` steps of PyG's ``APPNP``
    propagation ``H <- (1 - alpha) Â H + alpha H0`` over the normalised adjacency (edge weights used when present).

    Args:
        in_features: Node feature width.
        num_classes: Number of classes.
        hidden_channels: Width of the MLP's hidden layers.
        num_layers: Number of MLP layers.
        dropout: Dropout probability on the input and between the MLP's layers.
        K: Propagation steps.
        alpha: Teleport (restart) probability of the personalised PageRank.
        cached: Cache the normalised adjacency (only for one fixed full-batch graph).
    """

    input_kinds: ClassVar[tuple[str, ...]] = ("graph",)
    uses_edges: ClassVar[bool] = True

    def __init__(self, in_features: int, num_classes: int, hidden_channels: int = 64, num_layers: int = 2,
                 dropout: float = 0.5, K: int = 10, alpha: float = 0.1, cached: bool = False) -> None:  # noqa: N803
        super().__init__()
        for name, value in (("in_features", in_features), ("num_classes", num_classes),
                            ("hidden_channels", hidden_channels), ("num_layers", num_layers)):
            checks.integer(name, value)
        self.dropout = checks.fraction("dropout", dropout)
        checks.integer("K", K, low=0)
        checks.number("alpha", alpha, 0, 1)
        self.mlp = MLP(in_channels=in_features, hidden_channels=hidden_channels, out_channels=num_classes,
                       num_layers=num_layers, dropout=dropout, norm=None)
        self.propagation = APPNPPropagation(K, alpha, cached=cached)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
                ) -> torch.Tensor:
        # x: [N, in_features] -> per-node logits [N, num_classes] -> propagated logits [N, num_classes]
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.propagation(self.mlp(x), edge_index, edge_weight)
