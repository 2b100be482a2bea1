"""Graph isomorphism network (Xu et al., 2019): PyG's ``GIN`` (``GINConv`` layers with 2-layer MLPs)."""

from torch_geometric.nn.models import GIN as PyGGIN

from zoo.nets.basic_gnn import BasicGNNNet


class GIN(BasicGNNNet):
    """Dropout on the input, then PyG's ``GIN``: each layer is an MLP of ``(1 + eps) x_i + sum of neighbours``.

    Edge weights are not read.

    Args:
        in_features: Node feature width.
        num_classes: Number of classes.
        hidden_channels: Width of the hidden layers (and of each layer's MLP).
        num_layers: Number of GINConv layers.
        dropout: Dropout probability on the input and between layers.
        train_eps: Learn ``eps`` (else fixed at 0).
    """

    pyg_model = PyGGIN

    def __init__(self, in_features: int, num_classes: int, hidden_channels: int = 64, num_layers: int = 2,
                 dropout: float = 0.5, train_eps: bool = False) -> None:
        super().__init__(in_features, num_classes, hidden_channels, num_layers, dropout, train_eps=train_eps)
