"""Face X-ray supervision (Li et al., CVPR 2020) for the blend branch, during training only.

Besides real / fake, the network must draw where a face was blended: the blending boundary
`4 M (1 - M)` of the twin's blend mask M, all zero for a real face. A model that has to point at a
seam should not call a face fake for how it looks overall (smooth, soft, shallow focus), which is
how the plain classifier loses real faces to the fake side; measured, it did not change that
(docs/training-log.md). A small decoder reads the backbone's stride-8 and stride-16 feature maps;
it is dropped at export, so inference is unchanged.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from core.model import Branch

__all__ = ["XrayNet", "boundary", "xray_loss"]

DECODER_WIDTH = 32


def _taps(features: nn.Sequential, size: int) -> tuple[int, int, list[int]]:
    """Indices of the last layers at stride 8 and 16, and their channel counts (one dry run)."""
    last, channels = {}, {}
    x = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        for index, layer in enumerate(features):
            x = layer(x)
            stride = size // x.shape[-1]
            if stride in (8, 16):
                last[stride], channels[stride] = index, x.shape[1]
    return last[8], last[16], [channels[8], channels[16]]


class XrayNet(nn.Module):
    """A branch plus a boundary decoder; forward gives (logits, boundary logits at stride 8)."""

    def __init__(self, branch: Branch, size: int) -> None:
        super().__init__()
        self.branch = branch
        was_training = branch.training
        self.tap8, self.tap16, (c8, c16) = _taps(branch.features.eval(), size)
        branch.train(was_training)
        self.lateral8 = nn.Conv2d(c8, DECODER_WIDTH, 1)
        self.lateral16 = nn.Conv2d(c16, DECODER_WIDTH, 1)
        self.out = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(DECODER_WIDTH, DECODER_WIDTH, 3, padding=1),
                                 nn.ReLU(inplace=True), nn.Conv2d(DECODER_WIDTH, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        taps = {}
        for index, layer in enumerate(self.branch.features):
            x = layer(x)
            if index in (self.tap8, self.tap16):
                taps[index] = x
        f8, f16 = taps[self.tap8], taps[self.tap16]
        merged = self.lateral8(f8) + F.interpolate(self.lateral16(f16), size=f8.shape[-2:], mode="nearest")
        return self.branch.forward_head(x), self.out(merged).squeeze(1)


def boundary(masks: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Face X-ray's target: `4 M (1 - M)` of blend masks (N x H x W), averaged down to `shape`."""
    return F.adaptive_avg_pool2d((4 * masks * (1 - masks)).unsqueeze(1), shape).squeeze(1)


def xray_loss(boundary_logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Pixel-wise BCE between the predicted boundary and the masks' boundary."""
    target = boundary(masks, tuple(boundary_logits.shape[-2:]))
    return F.binary_cross_entropy_with_logits(boundary_logits, target)
