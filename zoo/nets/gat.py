"""Graph attention network (Veličković et al., 2018): PyG's ``GAT`` (``GATConv`` layers)."""

from torch_geometric.nn.models import GAT as PyGGAT

from zoo.nets.basic_gnn import BasicGNNNet


class GAT(BasicGNNNet):
    """Dropout on the input, then PyG's ``GAT``: multi-head GATConv layers (heads concatenated), ELU, dropout,
    and a last GATConv whose heads are averaged into the class logits. Edge weights are not read.

    Args:
        in_features: Node feature width.
        num_classes: Number of classes.
        hidden_channels: Width of each attention head in the hidden layers (a layer is ``heads x`` as wide).
        num_layers: Number of GATConv layers.
        heads: Attention heads per layer.
        dropout: Dropout probability on the input, between layers and on the attention coefficients.
        v2: GATv2Conv (Brody et al., 2022) instead of GATConv.
    """

    pyg_model = PyGGAT

    def __init__(self, in_features: int, num_classes: int, hidden_channels: int = 8, num_layers: int = 2,
                 heads: int = 8, dropout: float = 0.6, v2: bool = False) -> None:
        super().__init__(in_features, num_classes, hidden_channels * heads, num_layers, dropout, heads=heads,
                         v2=v2, act="elu")
