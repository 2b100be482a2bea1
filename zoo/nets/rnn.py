"""Recurrent classifier that reads an image row by row."""

from typing import ClassVar, Literal

import torch
from torch import nn

import zoo.checks as checks

_CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class RNN(nn.Module):
    """Reads each image as a sequence of rows and classifies from the last hidden state.

    Args:
        input_size: Features per step (image width).
        num_classes: Number of classes.
        cell: Recurrent cell: ``rnn`` (tanh), ``gru`` or ``lstm``.
        hidden_size: Hidden units per layer.
        num_layers: Stacked recurrent layers.
        dropout: Dropout between stacked layers and before the head.
    """

    input_kinds: ClassVar[tuple[str, ...]] = ("image",)

    def __init__(
        self,
        input_size: int,
        num_classes: int,
        cell: Literal["rnn", "gru", "lstm"] = "rnn",
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"model.net.cell={cell!r} is not a recurrent cell; use one of {sorted(_CELLS)}.")
        for name, value in (("input_size", input_size), ("num_classes", num_classes), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            checks.integer(name, value)
        checks.fraction("dropout", dropout)
        self.rnn = _CELLS[cell](
            input_size, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, C, H, W] -> rows [B, C*H, W]: one step per image row
        rows = x.flatten(1, -2)
        out, _ = self.rnn(rows)  # [B, steps, hidden]
        # last hidden state of the top layer [B, hidden] -> logits [B, num_classes]
        return self.head(self.dropout(out[:, -1]))
