"""Fixed class scores as logits, with one learned temperature: for rule-based baselines trained like any model."""

import torch
from torch import nn


class ScoreTemperature(nn.Module):
    """``logits = exp(t) * scores`` with one learned ``t`` (0 at the start).

    A positive scale never changes which class scores highest, so a rule's predictions are the rule's whatever the
    training does; learning ``t`` only calibrates the probabilities (and the cross-entropy) and gives the optimizer
    and the checkpoint something to hold.
    """

    def __init__(self) -> None:
        super().__init__()
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        # scores: [N, C] -> logits [N, C]
        return scores * self.log_temperature.exp()
