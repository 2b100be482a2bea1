"""Graph convolutional network (Kipf & Welling, 2017): PyG's ``GCN`` (``GCNConv`` layers)."""

from torch_geometric.nn.models import GCN as PyGGCN

from zoo.nets.basic_gnn import BasicGNNNet


class GCN(BasicGNNNet):
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

    pyg_model = PyGGCN

    def __init__(self, in_features: int, num_classes: int, hidden_channels: int = 16, num_layers: int = 2,
                 dropout: float = 0.5, cached: bool = False) -> None:
        super().__init__(in_features, num_classes, hidden_channels, num_layers, dropout, cached=cached)
