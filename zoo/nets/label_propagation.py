"""Label propagation (Zhu & Ghahramani 2002; Zhou et al. 2004) with PyG's ``LabelPropagation`` over the flow operator."""

from typing import ClassVar

import torch
from torch import nn
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.nn.models import LabelPropagation as PyGLabelPropagation
from torch_geometric.utils import one_hot

import zoo.checks as checks
from zoo.nets.layers.flow_operator import DIRECTIONS, NORMALIZATIONS, check_choice, flow_operator
from zoo.nets.scores import ScoreTemperature

# The operator's normalisations: the flow operator's shares, or ``symmetric``: D^-1/2 M D^-1/2 (Zhou et al. 2004).
LP_NORMALIZATIONS: tuple[str, ...] = (*NORMALIZATIONS, "symmetric")


class LabelPropagation(nn.Module):
    """``Y' = alpha M Y + (1 - alpha) Y0`` for ``num_layers`` steps; ``Y0`` = one-hot TRAINING labels.

    ``M`` is :func:`~zoo.nets.layers.flow_operator.flow_operator` (direction x normalisation); the propagation is PyG's
    ``LabelPropagation`` (which reads the given edge weights as they are). With ``raw``, ``row`` or ``column``
    shares each step is clamped to [0, 1] (PyG's default). ``symmetric`` is Zhou et al.'s normalised operator
    ``D^-1/2 M D^-1/2`` (PyG's ``gcn_norm`` without self-loops, ``M`` the raw operator of ``direction``, ``D`` its
    gatherers' degrees), iterated without the clamp: its rows may sum to more than 1, and the unclamped steps
    approach Zhou et al.'s closed form ``(1 - alpha) (I - alpha M')^-1 Y0`` as ``num_layers`` grows.
    ``fix_labels``: after each step the training nodes get their one-hot labels back (Zhu et al. 2003's clamping;
    with ``row`` shares and ``alpha=1`` the steps approach their harmonic solution). Reads the
    edges and ``y_train`` only (-1 for every validation/test node). Only a temperature is trained.

    Args:
        num_classes: Number of classes.
        direction: ``out`` (NYC: work ZIP -> its workers' home ZIPs), ``in`` (home -> work) or ``symmetric``.
        normalization: ``raw``, ``row`` or ``column`` shares, or ``symmetric`` (``D^-1/2 M D^-1/2``).
        num_layers: Propagation steps.
        alpha: Weight of the propagated scores against the training labels.
        fix_labels: Give the training nodes their labels back after each step.
    """

    input_kinds: ClassVar[tuple[str, ...]] = ("graph",)
    uses_edges: ClassVar[bool] = True
    needs: ClassVar[tuple[str, ...]] = ("y_train",)

    def __init__(self, num_classes: int, direction: str = "out", normalization: str = "row", num_layers: int = 10,
                 alpha: float = 0.9, fix_labels: bool = False) -> None:
        super().__init__()
        checks.integer("num_classes", num_classes)
        check_choice("model.net.direction", direction, DIRECTIONS)
        check_choice("model.net.normalization", normalization, LP_NORMALIZATIONS)
        checks.integer("num_layers", num_layers)
        checks.number("alpha", alpha, 0, 1)
        if not isinstance(fix_labels, bool):
            raise ValueError(f"fix_labels={fix_labels!r}: must be true or false.")
        self.num_classes, self.direction, self.normalization = num_classes, direction, normalization
        self.fix_labels = fix_labels
        self.propagation = PyGLabelPropagation(num_layers, alpha)
        self.scale = ScoreTemperature()

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None,
                y_train: torch.Tensor) -> torch.Tensor:
        # edge_index: [2, E], y_train: [N] (-1: not a training node) -> logits [N, num_classes]
        n, symmetric = y_train.numel(), self.normalization == "symmetric"
        index, weight = flow_operator(edge_index, edge_weight, n, self.direction, "raw" if symmetric else self.normalization)
        if symmetric:
            index, weight = gcn_norm(index, weight, n, add_self_loops=False)
        labels = one_hot(y_train.clamp_min(0), self.num_classes)  # [N, C]; rows of held-out nodes are masked out
        known = y_train >= 0

        def post_step(scores: torch.Tensor) -> torch.Tensor:  # [N, C] after each step
            if not symmetric:
                scores = scores.clamp_(0.0, 1.0)
            if self.fix_labels:
                scores[known] = labels[known]
            return scores

        scores = self.propagation(labels, index, mask=known, edge_weight=weight, post_step=post_step)  # [N, C]
        return self.scale(scores)
