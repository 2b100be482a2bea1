"""Graph attention network (Veličković et al., 2018): PyG's ``GAT`` (``GATConv`` layers)."""

from typing import Any

from torch import nn
from torch_geometric.nn.models import GAT as PyGGAT

import zoo.checks as checks
from zoo.nets.basic_gnn import BasicGNNNet


class _GATOutputHeads(PyGGAT):
    """PyG's ``GAT`` whose last layer (to the logits) may have its own number of heads (``output_heads``)."""

    def init_conv(self, in_channels: int | tuple[int, int], out_channels: int, output_heads: int | None = None,
                  **kwargs: Any) -> nn.Module:
        if output_heads is not None and getattr(self, "_is_conv_to_out", False):
            kwargs["heads"] = output_heads
        return super().init_conv(in_channels, out_channels, **kwargs)


class GAT(BasicGNNNet):
    """Dropout on the input, then PyG's ``GAT``: multi-head GATConv layers (heads concatenated), ELU, dropout,
    and a last GATConv whose ``output_heads`` heads are averaged into the class logits. Edge weights are not read.

    Args:
        in_features: Node feature width.
        num_classes: Number of classes.
        hidden_channels: Width of each attention head in the hidden layers (a layer is ``heads x`` as wide).
        num_layers: Number of GATConv layers.
        heads: Attention heads per hidden layer.
        output_heads: Attention heads of the last layer, averaged (null: ``heads``; the paper's Cora model uses 1).
        dropout: Dropout probability on the input, between layers and on the attention coefficients.
        v2: GATv2Conv (Brody et al., 2022) instead of GATConv.
    """

    pyg_model = _GATOutputHeads

    def __init__(self, in_features: int, num_classes: int, hidden_channels: int = 8, num_layers: int = 2,
                 heads: int = 8, output_heads: int | None = None, dropout: float = 0.6, v2: bool = False) -> None:
        checks.integer("hidden_channels", hidden_channels)  # before the product below (a layer's width)
        checks.integer("heads", heads)
        if output_heads is not None:
            checks.integer("output_heads", output_heads)
        super().__init__(in_features, num_classes, hidden_channels * heads, num_layers, dropout, heads=heads,
                         output_heads=output_heads, v2=v2, act="elu")
