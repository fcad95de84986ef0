"""Grad-CAM (Selvaraju et al., 2017) for one branch of the shared detector.

No hooks are registered: the branch is split into `forward_features` and `forward_head`, and the
gradient of the logit with respect to the feature map comes from `torch.autograd.grad` on a graph
private to the call. The shared model's parameters are frozen, so concurrent calls from several
sessions neither see each other's activations nor write any `.grad`.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from core.model import Detector, to_tensor

__all__ = ["gradcam", "overlay"]


def gradcam(detector: Detector, crop: np.ndarray, branch: str) -> np.ndarray:
    """Heatmap in [0, 1] of the crop's size: where the evidence for "fake" lies."""
    net, cfg = detector.branches[branch], detector.configs[branch]
    x = to_tensor([crop], cfg).requires_grad_(True)
    with torch.enable_grad():
        fmap = net.forward_features(x)
        logit = net.forward_head(fmap)
        (grad,) = torch.autograd.grad(logit.sum(), fmap)
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * fmap).sum(dim=1))[0].detach().numpy()
    cam = cv2.resize(cam, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_CUBIC)
    cam = np.clip(cam, 0, None)
    peak = float(cam.max())
    return (cam / peak).astype(np.float32) if peak > 1e-8 else np.zeros_like(cam, dtype=np.float32)


def overlay(crop: np.ndarray, heat: np.ndarray, alpha: float = 0.45, outside: np.ndarray | None = None) -> np.ndarray:
    """The heatmap as a JET colour layer over the RGB crop; where the crop lies `outside` the photo
    (its repeated edge: heat there is no evidence) hatched in grey."""
    colour = cv2.applyColorMap(np.uint8(255 * heat), cv2.COLORMAP_JET)
    colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)
    shown = np.uint8(np.clip((1 - alpha) * crop + alpha * colour, 0, 255))
    if outside is not None:
        rows, cols = np.indices(outside.shape)
        stripes = (rows + cols) % 8 < 4
        shown[outside] = np.where(stripes[outside, None], 200, 90).astype(np.uint8)
    return shown
