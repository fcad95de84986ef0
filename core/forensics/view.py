"""What every image forensics view returns: a map, a picture of it, how to read it, a few numbers."""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = ["View", "luminance", "to_uint8", "fit"]


@dataclass(frozen=True)
class View:
    name: str
    values: np.ndarray = field(repr=False)  # float32 map in the view's own units, for measuring
    image: np.ndarray = field(repr=False)  # uint8 picture of the map, for showing
    guidance: str  # one line: how to read it and what it cannot show
    stats: dict[str, float] = field(default_factory=dict)  # for measuring; keys are code names
    reading: str = ""  # the same numbers in words, for the analyst


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma as float32, the channel JPEG compresses hardest."""
    return rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def to_uint8(values: np.ndarray, top: float) -> np.ndarray:
    """Scale 0..top to 0..255 and clip; `top` is chosen by each view (fixed or a percentile)."""
    return np.clip(values * (255.0 / max(top, 1e-6)), 0, 255).astype(np.uint8)


def fit(image: np.ndarray, max_side: int) -> np.ndarray:
    """A display copy no longer than `max_side` (area-averaged), so caches of large images stay small."""
    scale = max_side / max(image.shape[:2])
    if scale >= 1:
        return image
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
