"""Small convolutional network."""

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

import zoo.checks as checks


class CNN(nn.Module):
    """Conv blocks (``convs_per_block`` x [conv, optional batch norm, ReLU], 2x2 max-pool), then a dropout/linear head.

    Args:
        in_channels: Channels of the input image.
        height: Input height in pixels.
        width: Input width in pixels.
        num_classes: Number of classes.
        channels: Output channels of each conv block.
        kernel_size: Convolution kernel size ("same" padding).
        convs_per_block: Convolutions before each pooling (2: VGG-style blocks).
        batch_norm: Add batch normalisation after each convolution.
        hidden: Width of the hidden linear layer of the head (0: none).
        dropout: Dropout probability in the head.
        channels_last: Run the convolutions in channels-last memory layout (NHWC), which cuDNN's fastest
            kernels use on tensor-core GPUs, with mixed precision especially; the same numbers either way.
    """

    input_kinds: ClassVar[tuple[str, ...]] = ("image",)

    def __init__(
        self,
        in_channels: int,
        height: int,
        width: int,
        num_classes: int,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        convs_per_block: int = 1,
        batch_norm: bool = True,
        hidden: int = 128,
        dropout: float = 0.25,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("height", height), ("width", width),
                            ("num_classes", num_classes), ("kernel_size", kernel_size),
                            ("convs_per_block", convs_per_block)):
            checks.integer(name, value)
        checks.sizes("channels", channels)
        checks.integer("hidden", hidden, low=0, note=" (0: no hidden layer)")
        checks.fraction("dropout", dropout)
        blocks: list[nn.Module] = []
        c_in = in_channels
        for c_out in channels:
            for _ in range(convs_per_block):
                blocks.append(nn.Conv2d(c_in, c_out, kernel_size, padding="same", bias=not batch_norm))
                if batch_norm:
                    blocks.append(nn.BatchNorm2d(c_out))
                blocks.append(nn.ReLU())
                c_in = c_out
            blocks.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        self.features = nn.Sequential(*blocks)
        self.channels_last = channels_last
        if channels_last:
            self.features.to(memory_format=torch.channels_last)
        flat = c_in * height * width
        head: list[nn.Module] = [nn.Flatten(), nn.Dropout(dropout)]
        if hidden:
            head += [nn.Linear(flat, hidden), nn.ReLU(), nn.Dropout(dropout)]
            flat = hidden
        head.append(nn.Linear(flat, num_classes))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, C, H, W] -> features [B, C', H / 2^k, W / 2^k] -> logits [B, num_classes]
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.head(self.features(x))
