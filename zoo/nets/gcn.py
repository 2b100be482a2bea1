"""Graph convolutional network (Kipf & Welling, 2017): PyG's ``GCN`` (``GCNConv`` layers)."""

import torch
from torch_geometric.nn.models import GCN as PyGGCN

import zoo.checks as checks
from zoo.nets.basic_gnn import BasicGNNNet
from zoo.transforms.share_operator import SHARE_OPERATORS, share_operator

OPERATORS: tuple[str, ...] = ("gcn", *SHARE_OPERATORS)


class GCN(BasicGNNNet):
    """Dropout on the input, then PyG's ``GCN`` (GCNConv / ReLU / dropout ... GCNConv to the class logits).

    Defaults are the paper's: 2 layers, 16 hidden units, dropout 0.5 (also on the input features), and its operator
    (``operator=gcn``: PyG's ``gcn_norm`` of the edges as given, self-loops of weight 1; edge weights, when the graph
    has them, weight it). ``operator=row`` or ``sym`` propagates over a share-normalised undirected operator with
    weighted self-loops instead (:mod:`zoo.transforms.share_operator`: for weighted graphs of counts, e.g. NYC's
    commuter flows), computed once per graph when ``cached`` and given to the convolutions as it is.

    Args:
        in_features: Node feature width.
        num_classes: Number of classes.
        hidden_channels: Width of the hidden layers.
        num_layers: Number of GCNConv layers.
        dropout: Dropout probability on the input and between layers.
        cached: Cache the normalised adjacency (only for one fixed full-batch graph).
        operator: ``gcn`` (the paper's), ``row`` or ``sym`` (share-normalised, see above).
        self_loop_weight: ``row``/``sym``: a node's self-loop weight relative to the total of its edges.
    """

    pyg_model = PyGGCN

    def __init__(self, in_features: int, num_classes: int, hidden_channels: int = 16, num_layers: int = 2,
                 dropout: float = 0.5, cached: bool = False, operator: str = "gcn",
                 self_loop_weight: float = 1.0) -> None:
        checks.choice("operator", operator, OPERATORS)
        checks.number("self_loop_weight", self_loop_weight, 0, open_low=True)
        super().__init__(in_features, num_classes, hidden_channels, num_layers, dropout, cached=cached,
                         normalize=operator == "gcn")
        self.operator, self.self_loop_weight, self.cached = operator, self_loop_weight, cached
        self._operator: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
                ) -> torch.Tensor:
        # x: [N, in_features] -> logits [N, num_classes]
        if self.operator != "gcn":
            if self._operator is None or not self.cached:
                self._operator = share_operator(edge_index, edge_weight, x.size(0), self.operator,
                                                self.self_loop_weight)
            edge_index, edge_weight = self._operator
        return super().forward(x, edge_index, edge_weight)
