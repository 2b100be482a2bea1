"""Share-normalised propagation operators of a weighted graph, for convolutions that read a given operator.

A GCN averages each node's neighbourhood with the operator it is given. On a weighted directed graph of counts
(NYC: commuters from a work ZIP to a home ZIP) PyG's ``gcn_norm`` on the edges as stored normalises by in-degree,
adds self-loops of weight 1 (a tiny share of a row of thousands of commuters) and lets a few nodes with one huge
edge dominate every neighbourhood. The operators here treat the flows as one undirected weighted graph
``W = A + A^T`` (self-flows dropped) with degree ``D = rowsum(W)``, and add a self-loop of weight ``w D``: the node
itself weighs ``w`` times all of its neighbours together, whatever the scale of its counts.

* ``row``: ``D'^-1 (W + w D)`` with ``D' = (1 + w) D``: row shares, each row sums to 1 (a weighted mean of the node
  and its neighbours; its own share is ``w / (1 + w)``).
* ``sym``: ``D'^-1/2 (W + w D) D'^-1/2``: the symmetric normalisation (PyG's ``gcn_norm`` without further
  self-loops) of the same matrix.

Returned as PyG edges (``edge_index[0]`` sends, ``edge_index[1]`` gathers) and weights, for a convolution run with
``normalize=False``. A node without any edge keeps only its self-loop (weight 1).
"""

import torch
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import add_remaining_self_loops, remove_self_loops, scatter, to_undirected

__all__ = ["SHARE_OPERATORS", "share_operator"]

SHARE_OPERATORS: tuple[str, ...] = ("row", "sym")


def share_operator(edge_index: torch.Tensor, edge_weight: torch.Tensor | None, num_nodes: int,
                   operator: str = "sym", self_loop_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``row`` or ``sym`` operator (see the module) as edges ``[2, E']`` and weights ``[E']``.

    Args:
        edge_index: Edges ``[2, E]`` (either direction; they are symmetrised).
        edge_weight: Weights ``[E]`` (e.g. counts), or None for an unweighted graph.
        num_nodes: Number of nodes.
        operator: ``row`` or ``sym``.
        self_loop_weight: ``w``: the weight of a node's self-loop relative to the total of its edges (> 0).
    """
    if operator not in SHARE_OPERATORS:
        raise ValueError(f"operator={operator!r}: must be one of {', '.join(SHARE_OPERATORS)}.")
    if not self_loop_weight > 0:
        raise ValueError(f"self_loop_weight={self_loop_weight}: must be > 0 (the node's own weight in its mean).")
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), device=edge_index.device)
    if edge_weight.numel() and bool((edge_weight < 0).any()):
        raise ValueError("share_operator needs non-negative edge weights (counts or shares).")
    edge_index, edge_weight = remove_self_loops(edge_index, edge_weight.float())
    edge_index, edge_weight = to_undirected(edge_index, edge_weight, num_nodes, reduce="sum")  # W = A + A^T
    degree = scatter(edge_weight, edge_index[1], dim=0, dim_size=num_nodes, reduce="sum")  # [N]
    loops = self_loop_weight * torch.where(degree > 0, degree, torch.ones_like(degree))  # isolated: weight w
    edge_index, edge_weight = add_remaining_self_loops(edge_index, edge_weight, fill_value=loops,
                                                       num_nodes=num_nodes)  # W + w D
    if operator == "sym":
        return gcn_norm(edge_index, edge_weight, num_nodes, add_self_loops=False)
    total = scatter(edge_weight, edge_index[1], dim=0, dim_size=num_nodes, reduce="sum")  # (1 + w) D
    return edge_index, edge_weight / total[edge_index[1]]
