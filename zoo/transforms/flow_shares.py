"""The flow operator of a weighted directed graph (direction x normalisation), and the flow shares it gives.

One implementation for every reader of the flows: the ``flow_vote`` and ``label_propagation`` baselines (through
:mod:`zoo.nets.layers.flow_operator`) and the NYC DataModule's flow-share features (``data.flow_shares``, the
:class:`FlowShares` transform). Pure torch / PyG and no other Zoo module, so the data and the nets may both use it.

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

from collections.abc import Sequence

import torch
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform
from torch_geometric.utils import coalesce, one_hot, remove_self_loops, scatter

__all__ = ["DIRECTIONS", "NORMALIZATIONS", "FlowShares", "check_choice", "flow_operator", "flow_votes"]

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


class FlowShares(BaseTransform):
    r"""Appends each node's flow shares to the labelled nodes of each class to ``data.x`` (``[N, C]`` per direction).

    One block of :func:`flow_votes` per direction in ``directions`` (with ``normalization``), in that order. The
    labels read are ``data[labels]``, ``-1`` on every node whose label may not be read (it sends nothing): by
    default ``y_train``, the training labels (``datamodules.graph.train_labels``), so no validation or test label
    enters the features. With ``cat=True`` the blocks are appended to an existing ``data.x``; without one (or with
    ``cat=False``) they become ``data.x``.

    Args:
        num_classes: Number of classes ``C`` (columns per direction).
        directions: Operators, each of ``out``, ``in`` or ``symmetric`` (see the module).
        normalization: ``raw``, ``row`` or ``column`` (see the module).
        labels: Attribute holding the labels to read (``[N]``, ``-1`` where unknown).
        cat: Concatenate to the existing node features instead of replacing them.
    """

    def __init__(self, num_classes: int, directions: Sequence[str] = ("out", "in"), normalization: str = "column",
                 labels: str = "y_train", cat: bool = True) -> None:
        if not directions:
            raise ValueError("FlowShares needs at least one direction (out, in, symmetric).")
        for i, direction in enumerate(directions):
            check_choice(f"directions[{i}]", direction, DIRECTIONS)
        check_choice("normalization", normalization, NORMALIZATIONS)
        self.num_classes, self.directions, self.normalization = num_classes, tuple(directions), normalization
        self.labels, self.cat = labels, cat

    def forward(self, data: Data) -> Data:
        if self.labels not in data:
            raise ValueError(f"FlowShares reads data.{self.labels} (the labels it may read, -1 elsewhere); the graph "
                             f"has no such attribute.")
        blocks = [flow_votes(data.edge_index, data.get("edge_weight"), data[self.labels], self.num_classes, direction,
                             self.normalization) for direction in self.directions]
        x = data.get("x")
        if x is not None and self.cat:
            blocks = [x.view(-1, 1) if x.dim() == 1 else x, *blocks]
        data.x = torch.cat(blocks, dim=-1)
        return data

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.num_classes}, directions={list(self.directions)}, "
                f"normalization={self.normalization!r}, labels={self.labels!r})")
