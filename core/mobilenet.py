"""MobileNetV2's feature extractor (Sandler et al., CVPR 2018), built without importing torchvision.

The modules, their order and the state-dict keys are those of
`torchvision.models.mobilenet_v2().features`, so the shipped weights and torchvision's ImageNet
checkpoint load unchanged (tests/test_bench.py compares the two). Importing torchvision costs about
1 s and 190 MB at start-up (its ops pull in torch._dynamo), which inference does not need.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["mobilenet_v2_features", "LAST_CHANNEL"]

FIRST_CHANNEL = 32
LAST_CHANNEL = 1280
# expansion t, output channels c, repeats n, stride of the first repeat s (the paper's Table 2)
SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def conv_bn_relu6(inp: int, out: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    conv = nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise 3x3, project (1x1, linear); a skip connection when shapes allow."""

    def __init__(self, inp: int, out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = inp * expand
        layers = [conv_bn_relu6(inp, hidden, kernel=1)] if expand != 1 else []
        layers += [
            conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out, 1, bias=False),
            nn.BatchNorm2d(out),
        ]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and inp == out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


def mobilenet_v2_features() -> nn.Sequential:
    """The 19 feature stages, initialised as torchvision does (Kaiming fan-out, unit batch norm)."""
    layers: list[nn.Module] = [conv_bn_relu6(3, FIRST_CHANNEL, stride=2)]
    inp = FIRST_CHANNEL
    for expand, out, repeats, stride in SETTING:
        for i in range(repeats):
            layers.append(InvertedResidual(inp, out, stride if i == 0 else 1, expand))
            inp = out
    layers.append(conv_bn_relu6(inp, LAST_CHANNEL, kernel=1))
    features = nn.Sequential(*layers)
    for module in features.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return features
