"""MobileNetV2's feature extractor (Sandler et al., CVPR 2018), built without importing torchvision,
and EfficientNet-Lite0's (Tan & Le, ICML 2019, the "Lite" variant: no squeeze-excite, ReLU6), which
stacks the same inverted residuals with 3x3 or 5x5 depthwise kernels.

The modules, their order and the state-dict keys are those of
`torchvision.models.mobilenet_v2().features`, so the shipped weights and torchvision's ImageNet
checkpoint load unchanged (tests/test_bench.py compares the two). Importing torchvision costs about
1 s and 190 MB at start-up (its ops pull in torch._dynamo), which inference does not need.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["mobilenet_v2_features", "efficientnet_lite0_features", "ResidualStem", "with_residual_input", "LAST_CHANNEL"]

FIRST_CHANNEL = 32
LAST_CHANNEL = 1280
# expansion t, output channels c, repeats n, stride of the first repeat s (the paper's Table 2)
SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
# EfficientNet-Lite0: the same four numbers plus the depthwise kernel k (the paper's Table 1)
LITE0_SETTING = ((1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3), (6, 112, 3, 1, 5), (6, 192, 4, 2, 5), (6, 320, 1, 1, 3))


# Three fixed high-pass kernels of the spatial rich model (Fridrich & Kodovsky, 2012), as Zhou et al.
# (CVPR 2018) feed them to a manipulation detector: second order, fifth order ("KV") and first order.
SRM_KERNELS = (
    ((0, 0, 0, 0, 0), (0, -1, 2, -1, 0), (0, 2, -4, 2, 0), (0, -1, 2, -1, 0), (0, 0, 0, 0, 0)),
    ((-1, 2, -2, 2, -1), (2, -6, 8, -6, 2), (-2, 8, -12, 8, -2), (2, -6, 8, -6, 2), (-1, 2, -2, 2, -1)),
    ((0, 0, 0, 0, 0), (0, 0, 0, 0, 0), (0, 1, -2, 1, 0), (0, 0, 0, 0, 0), (0, 0, 0, 0, 0)),
)
SRM_SCALE = (4.0, 12.0, 2.0)
RESIDUAL_CLIP = 3.0  # grey levels (0-255): the rich model's truncation keeps noise, not edges


def conv_bn_relu6(inp: int, out: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    conv = nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise k x k, project (1x1, linear); a skip connection when shapes allow."""

    def __init__(self, inp: int, out: int, stride: int, expand: int, kernel: int = 3) -> None:
        super().__init__()
        hidden = inp * expand
        layers = [conv_bn_relu6(inp, hidden, kernel=1)] if expand != 1 else []
        layers += [
            conv_bn_relu6(hidden, hidden, kernel, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out, 1, bias=False),
            nn.BatchNorm2d(out),
        ]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and inp == out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


def mobilenet_v2_features() -> nn.Sequential:
    """The 19 feature stages, initialised as torchvision does (Kaiming fan-out, unit batch norm)."""
    return _features(tuple((*row, 3) for row in SETTING))


def efficientnet_lite0_features() -> nn.Sequential:
    """Stem, 16 inverted residuals, 1x1 head: the 18 stages, in the order of the ImageNet checkpoint's
    tensors (`load_in_order` maps that checkpoint's names onto these)."""
    return _features(LITE0_SETTING)


def load_in_order(features: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a checkpoint whose tensors come in this module's order under other names, shape-checked."""
    own = features.state_dict()
    if len(own) != len(state) or any(a.shape != b.shape for a, b in zip(own.values(), state.values())):
        raise ValueError("checkpoint does not match the architecture tensor for tensor")
    features.load_state_dict(dict(zip(own, state.values())))


def _features(setting) -> nn.Sequential:
    layers: list[nn.Module] = [conv_bn_relu6(3, FIRST_CHANNEL, stride=2)]
    inp = FIRST_CHANNEL
    for expand, out, repeats, stride, kernel in setting:
        for i in range(repeats):
            layers.append(InvertedResidual(inp, out, stride if i == 0 else 1, expand, kernel))
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


class ResidualStem(nn.Sequential):
    """The stem (conv, batch norm, ReLU6) also fed three noise residuals of the image's grey level
    (mean of R, G, B), through a convolution of its own. A region pasted from another photo or retouched carries another
    noise history; RGB input leaves that implicit, behind the face's appearance. The residual
    convolution starts at zero (the stem first acts exactly as before) and is a separate parameter so
    training can give it its own learning rate; `merge` joins the two convolutions for inference."""

    def __init__(self, stem: nn.Sequential, mean: tuple, std: tuple) -> None:
        super().__init__(*stem)
        conv = stem[0]
        self.residual = nn.Conv2d(len(SRM_KERNELS), conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=False)
        nn.init.zeros_(self.residual.weight)
        kernels = torch.tensor(SRM_KERNELS, dtype=torch.float32) / torch.tensor(SRM_SCALE).view(-1, 1, 1)
        self.register_buffer("kernels", kernels.unsqueeze(1), persistent=False)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def residuals(self, x: torch.Tensor) -> torch.Tensor:
        grey = ((x * self.std + self.mean) * 255.0).mean(dim=1, keepdim=True)
        res = nn.functional.conv2d(nn.functional.pad(grey, (2, 2, 2, 2), mode="replicate"), self.kernels)
        return res.clamp(-RESIDUAL_CLIP, RESIDUAL_CLIP) / RESIDUAL_CLIP

    def merge(self) -> None:
        """One convolution over image and residuals (batch norm can then fold into it)."""
        if self.residual is None:
            return
        conv = self[0]
        wide = nn.Conv2d(conv.in_channels + self.residual.in_channels, conv.out_channels, conv.kernel_size,
                         conv.stride, conv.padding, bias=False).train(self.training)
        with torch.no_grad():
            wide.weight.copy_(torch.cat([conv.weight, self.residual.weight], dim=1))
        self[0], self.residual = wide, None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.residual is None:
            y = self[0](torch.cat([x, self.residuals(x)], dim=1))
        else:
            y = self[0](x) + self.residual(self.residuals(x))
        return self[2](self[1](y))


def with_residual_input(features: nn.Sequential, mean: tuple, std: tuple) -> nn.Sequential:
    """The same features with a stem that also takes noise residuals (ResidualStem)."""
    features[0] = ResidualStem(features[0], mean, std)
    return features
