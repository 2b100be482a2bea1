"""One wrapper for PyG's ``BasicGNN`` models (GCN, GAT, GraphSAGE, GIN): input dropout, then the PyG model."""

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn.models.basic_gnn import BasicGNN

import zoo.checks as checks


class BasicGNNNet(nn.Module):
    """Dropout on the input features, then a PyG ``BasicGNN`` (conv / act / dropout ... conv to the logits).

    Subclasses set ``pyg_model`` (e.g. ``torch_geometric.nn.models.GAT``) and pass its own settings up.
    Edge weights reach the convolutions that take them (``pyg_model.supports_edge_weight``: GCN); the others
    (GAT, GraphSAGE, GIN) read the graph unweighted.

    Args:
        in_features: Node feature width.
        num_classes: Number of classes.
        hidden_channels: Width of the hidden layers.
        num_layers: Number of message-passing layers.
        dropout: Dropout probability on the input and between layers.
        **conv_kwargs: Settings of ``pyg_model`` and its convolution (e.g. ``heads``, ``act``, ``cached``).
    """

    input_kinds: ClassVar[tuple[str, ...]] = ("graph",)
    uses_edges: ClassVar[bool] = True
    pyg_model: ClassVar[type[BasicGNN]]

    def __init__(self, in_features: int, num_classes: int, hidden_channels: int, num_layers: int, dropout: float,
                 **conv_kwargs: Any) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("num_classes", num_classes),
                            ("hidden_channels", hidden_channels), ("num_layers", num_layers)):
            checks.integer(name, value)
        self.dropout = checks.fraction("dropout", dropout)
        self.gnn = self.pyg_model(in_features, hidden_channels, num_layers, out_channels=num_classes,
                                  dropout=dropout, **conv_kwargs)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
                ) -> torch.Tensor:
        # x: [N, in_features] -> logits [N, num_classes]
        x = F.dropout(x, p=self.dropout, training=self.training)
        if not self.gnn.supports_edge_weight:
            edge_weight = None  # BasicGNN would drop it too; said here, not left implicit
        return self.gnn(x, edge_index, edge_weight=edge_weight)
