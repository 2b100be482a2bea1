"""The flow operator of a weighted directed graph (direction x normalisation), and the flow shares it gives.

One implementation for every reader of the flows: the ``flow_vote`` and ``label_propagation`` baselines and the
NYC DataModule's flow-share features (``data.flow_shares``). Pure torch / PyG, so the DataModule may use it.

Convention: an edge ``i -> j`` with weight ``w`` is ``A[i, j] = w`` (NYC: work ZIP -> home ZIP, ``w`` commuters).
The operator ``M`` is returned as PyG edges (``edge_index[0]`` sends, ``edge_index[1]`` gathers), so that
``out[i] = sum_j M[i, j] x[j]`` is one ``propagate``/``scatter`` along them:

* ``direction="out"``: ``M = A``; each node reads the nodes its edges point to (NYC: a work ZIP reads the home
  ZIPs of its workers, "work -> home").
* ``direction="in"``: ``M = A^T``; each node reads the nodes whose edges point to it (NYC: a home ZIP reads the work
  ZIPs of its residents, "home -> work"; raw counts then point almost every ZIP at Manhattan).
* ``direction="symmetric"``: ``M = N(A) + N(A^T)``, each direction normalised on its own (``N`` below) and then
  added, so that neither direction outweighs the other by its scale (NYC: both readings vote).

Normalisation of ``M``: ``raw`` (counts), ``row`` (``M[i, j] / sum_j M[i, j]``: the share of node ``i``'s flows
that go to ``j``), ``column`` (``M[i, j] / sum_i M[i, j]``: the share of ``j``'s flows that come from ``i``, so a
node with huge flows, e.g. Manhattan's job centres, does not outvote the others). Self-flows are dropped: they say
nothing about a node's neighbours, and would let a labelled node vote for its own label.
"""

import torch
from torch_geometric.utils import coalesce, one_hot, remove_self_loops, scatter

DIRECTIONS: tuple[str, ...] = ("out", "in", "symmetric")
NORMALIZATIONS: tuple[str, ...] = ("raw", "row", "column")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r}: must be one of {', '.join(choices)}.")


def flow_operator(edge_index: torch.Tensor, edge_weight: torch.Tensor | None, num_nodes: int,
                  direction: str = "out", normalization: str = "column") -> tuple[torch.Tensor, torch.Tensor]:
    """The operator ``M`` as PyG edges ``[2, E']`` (sender, gatherer) and their weights ``[E']`` (see the module)."""
    check_choice("direction", direction, DIRECTIONS)
    check_choice("normalization", normalization, NORMALIZATIONS)
    if direction == "symmetric":  # each direction normalised on its own, then added
        parts = [flow_operator(edge_index, edge_weight, num_nodes, d, normalization) for d in ("out", "in")]
        return coalesce(torch.cat([p[0] for p in parts], dim=1), torch.cat([p[1] for p in parts]), num_nodes,
                        reduce="sum")
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), device=edge_index.device)
    edge_index, edge_weight = remove_self_loops(edge_index, edge_weight.float())
    if direction == "out":  # gatherer i = source of i -> j: flip so that edge_index[1] is the gatherer
        edge_index = edge_index.flip(0)
    if normalization != "raw":  # row: divide by the gatherer's total; column: by the sender's total
        by = edge_index[1] if normalization == "row" else edge_index[0]
        total = scatter(edge_weight, by, dim=0, dim_size=num_nodes, reduce="sum")  # [N]
        edge_weight = edge_weight / total[by]
    return edge_index, edge_weight


def flow_votes(edge_index: torch.Tensor, edge_weight: torch.Tensor | None, y_train: torch.Tensor,
               num_classes: int, direction: str = "out", normalization: str = "column") -> torch.Tensor:
    """``[N, C]``: each node's share of its (operator-weighted) flows to the labelled nodes of each class.

    Only ``y_train`` is read: nodes marked ``-1`` (unlabelled, held out) send nothing. A node without flows to a
    labelled node gets a row of zeros.
    """
    index, weight = flow_operator(edge_index, edge_weight, y_train.numel(), direction, normalization)
    labels = one_hot(y_train.clamp_min(0), num_classes) * (y_train >= 0).unsqueeze(1)  # [N, C], held out: 0
    votes = scatter(weight.unsqueeze(1) * labels[index[0]], index[1], dim=0, dim_size=y_train.numel(),
                    reduce="sum")  # [N, C]
    return votes / votes.sum(dim=1, keepdim=True).clamp_min(torch.finfo(votes.dtype).tiny)
