"""What sharing does to a file, simulated: down-scaling, JPEG for photos, H.264 at a high CRF for video,
and photos turned as when a pipeline strips their orientation tag.

Fact-checkers mostly get media that went through a platform or a messenger. `python -m core.evaluate
DATA --reshare scale=0.5,jpeg=60,crf=32` scores such copies of every file instead of the originals, so
the detector's false positives on re-encoded or resized real media are measured, not guessed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from core.media import decode_image

__all__ = ["Reshare", "parse_reshare", "reshare_image", "reshare_video"]


@dataclass(frozen=True)
class Reshare:
    scale: float = 1.0  # side length factor, both media kinds
    jpeg: int | None = None  # photo quality; None keeps the pixels lossless (PNG)
    crf: int = 23  # H.264 constant rate factor for video (x264's default 23; platforms go higher)
    turn: int = 0  # photos: quarter turns to the left, as a photo whose orientation tag a pipeline stripped

    def describe(self) -> str:
        return (f"scale={self.scale:g}," + (f"jpeg={self.jpeg}," if self.jpeg else "") + f"crf={self.crf}"
                + (f",turn={self.turn}" if self.turn else ""))


_RANGES = {"scale": (0.05, 1.0), "jpeg": (1, 100), "crf": (0, 51), "turn": (0, 3)}


def parse_reshare(spec: str) -> Reshare:
    """`scale=0.5,jpeg=60,crf=32` (any of them, any order) as a Reshare; ValueError says what is wrong."""
    values: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, text = part.partition("=")
        if name not in _RANGES:
            raise ValueError(f"unknown reshare setting {name!r}; use {', '.join(_RANGES)} (e.g. scale=0.5,jpeg=60,crf=32)")
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{name} needs a number, not {text!r}") from None
        low, high = _RANGES[name]
        if not low <= value <= high:
            raise ValueError(f"{name} must be between {low:g} and {high:g}, not {value:g}")
        values[name] = value if name == "scale" else int(value)
    if not values:
        raise ValueError("give at least one of scale=, jpeg=, crf=, turn=")
    return Reshare(**values)


def _scaled(width: int, height: int, scale: float, even: bool = False) -> tuple[int, int]:
    step = 2 if even else 1  # H.264 in yuv420p needs even sides
    return tuple(max(step, int(round(side * scale / step)) * step) for side in (width, height))


def reshare_image(data: bytes, how: Reshare) -> bytes:
    """The photo decoded as the app decodes it, turned, scaled, and encoded as JPEG (or PNG)."""
    rgb = np.rot90(decode_image(data), how.turn)
    if how.scale < 1:
        rgb = cv2.resize(rgb, _scaled(rgb.shape[1], rgb.shape[0], how.scale), interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, how.jpeg] if how.jpeg else []
    ok, encoded = cv2.imencode(".jpg" if how.jpeg else ".png", bgr, params)
    if not ok:
        raise ValueError("the re-shared copy could not be encoded")
    return encoded.tobytes()


def reshare_video(source: Path, target: Path, how: Reshare) -> Path:
    """The first video stream, every frame scaled and re-encoded to an H.264 MP4 at `target`."""
    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        video = src.streams.video[0]
        width, height = _scaled(video.codec_context.width, video.codec_context.height, how.scale, even=True)
        stream = out.add_stream("libx264", rate=video.average_rate or 25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": str(how.crf)}
        for frame in src.decode(video):
            scaled = frame.reformat(width, height, "yuv420p")
            scaled.pts, scaled.time_base = frame.pts, frame.time_base  # the source's timing (reformat drops it)
            out.mux(stream.encode(scaled))
        out.mux(stream.encode())
    return target
