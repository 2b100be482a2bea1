"""The data's own prior guess per node as the prediction (NYC: ``initialFeat``, the nearest borough centroid)."""

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

import zoo.checks as checks
from zoo.nets.scores import ScoreTemperature


class Prior(nn.Module):
    """Predicts ``initial_feat``, the class the data guesses for each node without any label (argmax of a one-hot).

    Reads no features, edges or labels; only a learned temperature (see :class:`ScoreTemperature`) is trained.

    Args:
        num_classes: Number of classes.
    """

    input_kinds: ClassVar[tuple[str, ...]] = ("graph",)
    needs: ClassVar[tuple[str, ...]] = ("initial_feat",)

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = checks.integer("num_classes", num_classes)
        self.scale = ScoreTemperature()

    def forward(self, x: torch.Tensor, initial_feat: torch.Tensor) -> torch.Tensor:
        # initial_feat: [N] class index -> logits [N, num_classes]
        return self.scale(F.one_hot(initial_feat, self.num_classes).float())
