"""Flow vote: each node takes the class with the largest share of its flows to the labelled nodes."""

from typing import ClassVar

import torch
from torch import nn

import zoo.checks as checks
from zoo.nets.layers.flow_operator import DIRECTIONS, NORMALIZATIONS, check_choice, flow_votes
from zoo.nets.scores import ScoreTemperature


class FlowVote(nn.Module):
    """Scores ``[N, C]`` = each node's share of its flows to the training nodes of each class (one step, no weights).

    Reads the edges and the TRAINING labels only (``y_train``: -1 for every validation/test node); the operator is
    :func:`~zoo.nets.layers.flow_operator.flow_operator` (direction x normalisation). ``raw`` and ``row`` give the same
    votes (a row's scale does not change its argmax); ``column`` differs. Only a temperature is trained.

    Args:
        num_classes: Number of classes.
        direction: ``out`` (NYC: work ZIP -> its workers' home ZIPs), ``in`` (home -> work) or ``symmetric``.
        normalization: ``raw``, ``row`` or ``column`` shares.
    """

    input_kinds: ClassVar[tuple[str, ...]] = ("graph",)
    uses_edges: ClassVar[bool] = True
    needs: ClassVar[tuple[str, ...]] = ("edge_weight", "y_train")  # flows: weighted edges

    def __init__(self, num_classes: int, direction: str = "out", normalization: str = "column") -> None:
        super().__init__()
        checks.integer("num_classes", num_classes)
        check_choice("model.net.direction", direction, DIRECTIONS)
        check_choice("model.net.normalization", normalization, NORMALIZATIONS)
        self.num_classes, self.direction, self.normalization = num_classes, direction, normalization
        self.scale = ScoreTemperature()

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None,
                y_train: torch.Tensor) -> torch.Tensor:
        # edge_index: [2, E], y_train: [N] (-1: not a training node) -> logits [N, num_classes]
        votes = flow_votes(edge_index, edge_weight, y_train, self.num_classes, self.direction, self.normalization)
        return self.scale(votes)
