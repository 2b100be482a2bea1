"""GraphSAGE (Hamilton et al., 2017): PyG's ``GraphSAGE`` (``SAGEConv`` layers), full batch."""

from torch_geometric.nn.models import GraphSAGE as PyGGraphSAGE

from zoo.nets.basic_gnn import BasicGNNNet


class GraphSAGE(BasicGNNNet):
    """Dropout on the input, then PyG's ``GraphSAGE`` (SAGEConv / ReLU / dropout ... SAGEConv to the logits).

    Each layer adds a node's own transformed features to an aggregate of its neighbours'. Edge weights are not read.

    Args:
        in_features: Node feature width.
        num_classes: Number of classes.
        hidden_channels: Width of the hidden layers.
        num_layers: Number of SAGEConv layers.
        dropout: Dropout probability on the input and between layers.
        aggr: Neighbour aggregation: ``mean``, ``max``, ``sum``.
    """

    pyg_model = PyGGraphSAGE

    def __init__(self, in_features: int, num_classes: int, hidden_channels: int = 64, num_layers: int = 2,
                 dropout: float = 0.5, aggr: str = "mean") -> None:
        super().__init__(in_features, num_classes, hidden_channels, num_layers, dropout, aggr=aggr)
