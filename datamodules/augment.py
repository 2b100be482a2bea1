"""Training-time augmentation of a whole image batch on its device, with new random parameters per sample.

torchvision's v2 transforms accept a batch ``[B, C, H, W]`` but draw ONE parameter set per call, so a batch
would be shifted or erased all alike. These transforms draw a parameter set per sample and apply them all at
once with tensor operations (no per-sample Python, no host round trip), so they cost a few kernels a batch on
a GPU. They take float images in ``[0, 1]`` with a black background (``0`` fills what moves in), take the same
arguments as their torchvision namesakes, and chain with ``torchvision.transforms.v2.Compose``.
"""

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.checks import number, shown


def _pair(name: str, value: Any, low: float, high: float = math.inf, *, open_low: bool = False) -> tuple[float, float]:
    """Two numbers ``(a, b)``, each in the range, ``a <= b`` unless the pair is per axis (see callers)."""
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"{name}={shown(value)}: must be a list of two numbers")
    return tuple(number(f"{name}[{i}]", v, low, high, open_low=open_low) for i, v in enumerate(value))


def _range(name: str, value: Any, low: float, high: float = math.inf, *, open_low: bool = False) -> tuple[float, float]:
    """``[min, max]``: two numbers in the range, the first not above the second."""
    lo, hi = _pair(name, value, low, high, open_low=open_low)
    if lo > hi:
        raise ValueError(f"{name}=[{lo:g}, {hi:g}]: must be [min, max] with min <= max")
    return lo, hi


def _uniform(n: int, low: float, high: float, like: torch.Tensor) -> torch.Tensor:
    """``n`` draws from U(low, high) on ``like``'s device (the global, seeded generator of that device)."""
    return torch.empty(n, device=like.device, dtype=like.dtype).uniform_(low, high)


class PerSampleAffine(nn.Module):
    """Random rotation, scale and translation per sample (bilinear; pixels that move in are 0).

    Args:
        degrees: Rotation angle drawn from ``[-degrees, degrees]``, in ``[0, 180]``.
        translate: Largest shift as a fraction of the width (x) and height (y), each in ``[0, 1]``.
        scale: Zoom factor drawn from ``[scale[0], scale[1]]``, both > 0.
    """

    def __init__(
        self, degrees: float = 0.0, translate: Sequence[float] = (0.0, 0.0), scale: Sequence[float] = (1.0, 1.0)
    ) -> None:
        super().__init__()
        self.degrees = float(number("degrees", degrees, 0, 180))
        self.translate = _pair("translate", translate, 0, 1)  # a fraction of the width and of the height
        self.scale = _range("scale", scale, 0, open_low=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, C, H, W]; theta [B, 2, 3] maps each output pixel to where it is read from, in [-1, 1] coordinates.
        b = x.shape[0]
        angle = _uniform(b, -self.degrees, self.degrees, x) * (math.pi / 180)
        zoom = _uniform(b, *self.scale, x)
        # A shift of a fraction f of the size is 2f in [-1, 1] coordinates; the grid reads from -shift.
        shift = torch.stack([_uniform(b, -2 * t, 2 * t, x) for t in self.translate], dim=1)  # [B, 2]
        cos, sin = angle.cos() / zoom, angle.sin() / zoom
        theta = torch.stack([torch.stack([cos, -sin, -shift[:, 0]], 1), torch.stack([sin, cos, -shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # [B, H, W, 2]
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class PerSampleHorizontalFlip(nn.Module):
    """Mirror each sample left-right with probability ``p`` (in ``[0, 1]``)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = number("p", p, 0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, C, H, W]; flip: [B, 1, 1, 1]
        flip = (_uniform(x.shape[0], 0, 1, x) < self.p).view(-1, 1, 1, 1)
        return torch.where(flip, x.flip(-1), x)


class PerSampleErasing(nn.Module):
    """With probability ``p`` per sample, set a random rectangle to ``value`` (Zhong et al. 2020).

    Args:
        p: Probability that a sample gets a rectangle, in ``[0, 1]``.
        scale: Rectangle area as a fraction of the image, drawn from this range (within ``(0, 1]``).
        ratio: Rectangle aspect ratio (height / width), drawn log-uniformly from this range (both > 0).
        value: Fill value.
    """

    def __init__(
        self, p: float = 0.5, scale: Sequence[float] = (0.02, 0.33), ratio: Sequence[float] = (0.3, 3.3),
        value: float = 0.0,
    ) -> None:
        super().__init__()
        self.p = number("p", p, 0, 1)
        self.scale = _range("scale", scale, 0, 1, open_low=True)  # a fraction of the image's area
        self.ratio = _range("ratio", ratio, 0, open_low=True)
        self.value = number("value", value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, C, H, W]; per sample a rectangle [top, top + h) x [left, left + w), clipped to the image.
        b, _, height, width = x.shape
        area = _uniform(b, *self.scale, x) * height * width
        aspect = _uniform(b, math.log(self.ratio[0]), math.log(self.ratio[1]), x).exp()
        h = (area * aspect).sqrt().round().clamp(1, height)
        w = (area / aspect).sqrt().round().clamp(1, width)
        top = (_uniform(b, 0, 1, x) * (height - h + 1)).floor()
        left = (_uniform(b, 0, 1, x) * (width - w + 1)).floor()
        rows = torch.arange(height, device=x.device, dtype=x.dtype).view(1, -1, 1)  # [1, H, 1]
        cols = torch.arange(width, device=x.device, dtype=x.dtype).view(1, 1, -1)  # [1, 1, W]
        inside = ((rows >= top.view(-1, 1, 1)) & (rows < (top + h).view(-1, 1, 1))
                  & (cols >= left.view(-1, 1, 1)) & (cols < (left + w).view(-1, 1, 1)))  # [B, H, W]
        erase = inside & (_uniform(b, 0, 1, x) < self.p).view(-1, 1, 1)
        return x.masked_fill(erase.unsqueeze(1), self.value)
