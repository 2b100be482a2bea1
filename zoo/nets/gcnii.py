"""GCNII (Chen et al., 2020): a deep stack of PyG ``GCN2Conv`` layers with initial residual and identity mapping."""

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GCN2Conv

import zoo.checks as checks


class GCNII(nn.Module):
    """Linear + ReLU into ``hidden_channels``, ``num_layers`` x (dropout, GCN2Conv, ReLU), dropout, linear to the
    logits, with dropout on the input too (as PyG's ``examples/gcn2_cora.py``). Edge weights are used when present.

    The convolutions and the linear layers take different weight decays: :meth:`param_groups` gives the
    optimizer ``conv_weight_decay`` for the convolutions, the optimizer's own ``weight_decay`` for the rest.

    Args:
        in_features: Node feature width.
        num_classes: Number of classes.
        hidden_channels: Width of every GCN2Conv layer.
        num_layers: Number of GCN2Conv layers.
        alpha: Strength of the initial residual (the first layer's output added back at every layer).
        theta: Identity-mapping strength; layer ``l`` uses ``beta = log(theta / l + 1)``.
        dropout: Dropout probability on the input and before every layer.
        shared_weights: One weight matrix for the propagated and the initial features (GCNII; false: GCNII*).
        conv_weight_decay: Weight decay of the convolutions (null: the optimizer's).
        cached: Cache the normalised adjacency (only for one fixed full-batch graph).
    """

    input_kinds: ClassVar[tuple[str, ...]] = ("graph",)
    uses_edges: ClassVar[bool] = True

    def __init__(self, in_features: int, num_classes: int, hidden_channels: int = 64, num_layers: int = 64,
                 alpha: float = 0.1, theta: float = 0.5, dropout: float = 0.6, shared_weights: bool = True,
                 conv_weight_decay: float | None = None, cached: bool = False) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("num_classes", num_classes),
                            ("hidden_channels", hidden_channels), ("num_layers", num_layers)):
            checks.integer(name, value)
        checks.number("alpha", alpha, 0, 1)
        checks.number("theta", theta, 0)
        checks.fraction("dropout", dropout)
        if conv_weight_decay is not None:
            checks.number("conv_weight_decay", conv_weight_decay, 0)
        self.dropout, self.conv_weight_decay = dropout, conv_weight_decay
        self.lins = nn.ModuleList([nn.Linear(in_features, hidden_channels), nn.Linear(hidden_channels, num_classes)])
        self.convs = nn.ModuleList(
            GCN2Conv(hidden_channels, alpha, theta, layer=i + 1, shared_weights=shared_weights, cached=cached)
            for i in range(num_layers)
        )

    def param_groups(self) -> list[dict[str, Any]]:
        """Optimizer parameter groups: the convolutions (with ``conv_weight_decay``), then the linear layers."""
        convs: dict[str, Any] = {"params": list(self.convs.parameters())}
        if self.conv_weight_decay is not None:
            convs["weight_decay"] = self.conv_weight_decay
        return [convs, {"params": list(self.lins.parameters())}]

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
                ) -> torch.Tensor:
        # x: [N, in_features] -> x0, h: [N, hidden] -> logits [N, num_classes]
        x = F.dropout(x, p=self.dropout, training=self.training)
        h = x0 = self.lins[0](x).relu()
        for conv in self.convs:
            h = F.dropout(h, p=self.dropout, training=self.training)
            h = conv(h, x0, edge_index, edge_weight).relu()
        h = F.dropout(h, p=self.dropout, training=self.training)
        return self.lins[1](h)
