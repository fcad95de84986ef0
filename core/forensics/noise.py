"""Noise residual: the image minus a median-filtered copy of itself, i.e. the fine grain."""
from __future__ import annotations

import cv2
import numpy as np

from core.forensics.view import View, luminance, to_uint8

__all__ = ["noise_residual", "NOISE_GUIDANCE"]

NOISE_TITLE = "Noise residual"
NOISE_GUIDANCE = (
    "Brighter = more fine grain. Sensor noise is usually even across a photo, so a face or region much "
    "smoother or grainier than similar areas nearby (e.g. pasted from another source) stands out. Edges are "
    "always bright; compression, denoising, beauty filters and smooth skin also change the grain."
)


def noise_residual(rgb: np.ndarray) -> View:
    """|luma - median3(luma)|, shown with its 99th percentile as white."""
    luma = luminance(rgb)
    values = np.abs(luma - cv2.medianBlur(luma, 3))
    top = float(np.percentile(values, 99))
    stats = {"median": round(float(np.median(values)), 3), "p99": round(top, 3)}
    reading = (f"Typical grain {stats['median']:.2f} grey levels; one pixel in a hundred above {stats['p99']:.1f} "
               "(shown white).")
    return View(NOISE_TITLE, values, to_uint8(values, top), NOISE_GUIDANCE, stats, reading)
