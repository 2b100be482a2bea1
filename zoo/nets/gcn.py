"""Graph convolutional network (Kipf & Welling, 2017) from PyG's ``GCNConv`` layers."""

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn.models import GCN as PyGGCN


class GCN(nn.Module):
    """Dropout on the input, then PyG's ``GCN`` (GCNConv / ReLU / dropout ... GCNConv to the class logits).

    Defaults are the paper's: 2 layers, 16 hidden units, dropout 0.5 (also on the input features).
    Edge weights, when the graph has them, weight the normalised adjacency (``gcn_norm``).

    Args:
        in_features: Node feature width.
        num_classes: Number of classes.
        hidden_channels: Width of the hidden layers.
        num_layers: Number of GCNConv layers.
        dropout: Dropout probability on the input and between layers.
        cached: Cache the normalised adjacency (only for one fixed full-batch graph).
    """

    input_kinds: ClassVar[tuple[str, ...]] = ("graph",)
    uses_edges: ClassVar[bool] = True

    def __init__(self, in_features: int, num_classes: int, hidden_channels: int = 16, num_layers: int = 2,
                 dropout: float = 0.5, cached: bool = False) -> None:
        super().__init__()
        self.dropout = dropout
        self.gcn = PyGGCN(in_features, hidden_channels, num_layers, out_channels=num_classes, dropout=dropout,
                          cached=cached)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
                ) -> torch.Tensor:
        # x: [N, in_features] -> logits [N, num_classes]
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.gcn(x, edge_index, edge_weight=edge_weight)
