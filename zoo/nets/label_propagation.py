"""Label propagation (Zhu & Ghahramani 2002) with PyG's ``LabelPropagation`` over the flow operator."""

from typing import ClassVar

import torch
from torch import nn
from torch_geometric.nn.models import LabelPropagation as PyGLabelPropagation
from torch_geometric.utils import one_hot

import zoo.checks as checks
from zoo.nets.layers.flow_operator import DIRECTIONS, NORMALIZATIONS, check_choice, flow_operator
from zoo.nets.scores import ScoreTemperature


class LabelPropagation(nn.Module):
    """``Y' = alpha M Y + (1 - alpha) Y0`` for ``num_layers`` steps, clamped to [0, 1]; ``Y0`` = one-hot TRAINING labels.

    ``M`` is :func:`~zoo.nets.layers.flow_operator.flow_operator` (direction x normalisation); the propagation is PyG's
    ``LabelPropagation`` (which reads the given edge weights as they are). Reads the edges and ``y_train`` only
    (-1 for every validation/test node). Only a temperature is trained.

    Args:
        num_classes: Number of classes.
        direction: ``out`` (NYC: work ZIP -> its workers' home ZIPs), ``in`` (home -> work) or ``symmetric``.
        normalization: ``raw``, ``row`` or ``column`` shares.
        num_layers: Propagation steps.
        alpha: Weight of the propagated scores against the training labels.
    """

    input_kinds: ClassVar[tuple[str, ...]] = ("graph",)
    uses_edges: ClassVar[bool] = True
    needs: ClassVar[tuple[str, ...]] = ("y_train",)

    def __init__(self, num_classes: int, direction: str = "out", normalization: str = "row", num_layers: int = 10,
                 alpha: float = 0.9) -> None:
        super().__init__()
        checks.integer("num_classes", num_classes)
        check_choice("model.net.direction", direction, DIRECTIONS)
        check_choice("model.net.normalization", normalization, NORMALIZATIONS)
        checks.integer("num_layers", num_layers)
        checks.number("alpha", alpha, 0, 1)
        self.num_classes, self.direction, self.normalization = num_classes, direction, normalization
        self.propagation = PyGLabelPropagation(num_layers, alpha)
        self.scale = ScoreTemperature()

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None,
                y_train: torch.Tensor) -> torch.Tensor:
        # edge_index: [2, E], y_train: [N] (-1: not a training node) -> logits [N, num_classes]
        index, weight = flow_operator(edge_index, edge_weight, y_train.numel(), self.direction, self.normalization)
        labels = one_hot(y_train.clamp_min(0), self.num_classes)  # [N, C]; rows of held-out nodes are masked out
        scores = self.propagation(labels, index, mask=y_train >= 0, edge_weight=weight)  # [N, C]
        return self.scale(scores)
