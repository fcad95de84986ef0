"""2-D frequency spectrum of a face region at native resolution, where up-sampling leaves peaks."""
from __future__ import annotations

import cv2
import numpy as np

from core.forensics.view import View, luminance, to_uint8

__all__ = ["spectrum", "face_region", "SPECTRUM_GUIDANCE", "MIN_SPECTRUM_SIDE"]

MIN_SPECTRUM_SIDE = 32
_HIGH_BAND = 0.25  # fraction of the Nyquist radius below which content, not artifacts, dominates
SPECTRUM_TITLE = "Frequency spectrum"
SPECTRUM_GUIDANCE = (
    "Centre = coarse shapes, edges = finest detail. Isolated bright dots in a regular grid away from the centre "
    "can come from the up-sampling layers of GANs and diffusion decoders; resizing, JPEG blocks (dots at 1/8 "
    "spacings), screens photographed and patterned fabric make them too, and a clean spectrum proves nothing."
)


def face_region(rgb: np.ndarray, box: tuple[float, float, float, float], margin: float = 1.2) -> np.ndarray:
    """Square crop around a face box (x, y, width, height) at native resolution, clipped to the image:
    resizing to the model's input size would blur the very peaks the spectrum looks for."""
    x, y, w, h = box
    side = margin * max(w, h)
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = max(0, int(round(cx - side / 2))), max(0, int(round(cy - side / 2)))
    x1, y1 = min(rgb.shape[1], int(round(cx + side / 2))), min(rgb.shape[0], int(round(cy + side / 2)))
    return rgb[y0:y1, x0:x1]


def spectrum(rgb: np.ndarray) -> View:
    """Log-magnitude spectrum of the luma (Hann-windowed so the crop's borders add no cross), with
    the strongest isolated high-frequency peak: its height over the local median (log units) and
    its frequency in cycles per pixel."""
    luma = luminance(rgb)
    h, w = luma.shape
    if min(h, w) < MIN_SPECTRUM_SIDE:
        raise ValueError(f"The region is {w} × {h} px; a spectrum needs at least {MIN_SPECTRUM_SIDE} px a side. "
                         "Pick a larger face or use the whole image.")
    window = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    transform = np.fft.fftshift(np.fft.fft2((luma - luma.mean()) * window))
    values = np.log1p(np.abs(transform)).astype(np.float32)
    fy, fx = np.fft.fftshift(np.fft.fftfreq(h)), np.fft.fftshift(np.fft.fftfreq(w))
    band = np.hypot(fy[:, None], fx[None, :]) > _HIGH_BAND * 0.5
    residual = np.where(band, values - cv2.medianBlur(values, 5), -np.inf)
    iy, ix = np.unravel_index(int(np.argmax(residual)), residual.shape)
    stats = {"peak_contrast": round(float(residual[iy, ix]), 3),
             "peak_fx": round(abs(float(fx[ix])), 4), "peak_fy": round(abs(float(fy[iy])), 4)}
    low = float(values.min())
    image = to_uint8(values - low, float(values.max()) - low)
    return View(SPECTRUM_TITLE, values, image, SPECTRUM_GUIDANCE, stats, _peak_reading(stats))


def _period(cycles_per_px: float) -> str:
    """Periods in pixels read better than frequencies: 0.25 cycles/px is a pattern every 4 px."""
    return f"every {1 / cycles_per_px:.1f} px" if cycles_per_px > 0 else "none"


def _peak_reading(stats: dict[str, float]) -> str:
    return (f"Strongest isolated peak stands {stats['peak_contrast']:.2f} (log units) above its neighbours; "
            f"its pattern repeats across: {_period(stats['peak_fx'])}, down: {_period(stats['peak_fy'])}. "
            "A number to compare between faces, not a threshold.")
