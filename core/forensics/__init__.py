"""Forensic context beside the detector's call: provenance (C2PA), metadata flags, image forensics
views and, for videos, face-track consistency.

`forensic_report(data, kind, result)` gathers the cheap parts into one JSON-safe dict for the case
record and the exported report; the pixel views are computed on demand with `compute_view`.
See docs/forensics.md for how to read each part and what it cannot show.
"""
from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np

from core.forensics.container import video_metadata
from core.forensics.ela import ELA_GUIDANCE, ELA_TITLE, error_level
from core.forensics.metadata import image_metadata
from core.forensics.noise import NOISE_GUIDANCE, NOISE_TITLE, noise_residual
from core.forensics.provenance import read_credentials
from core.forensics.spectrum import SPECTRUM_GUIDANCE, SPECTRUM_TITLE, face_region, spectrum
from core.forensics.tracks import track_flags, track_summary
from core.forensics.view import View

__all__ = [
    "forensic_report", "headline", "compute_view", "VIEW_NAMES", "VIEW_TITLES", "VIEW_GUIDANCE", "View", "FORENSICS_VERSION", "LIMITS", "VIEW_LIMITS",
]

FORENSICS_VERSION = 1
LIMITS = (
    "Metadata and Content Credentials are easy to strip and metadata is easy to forge: a flag is a lead to "
    "check, and no flag is not a clean bill."
)
VIEW_LIMITS = (  # images only: videos have no views
    "The views show compression, grain and frequency patterns for a person to compare; they give no score and "
    "cannot tell an innocent edit from a manipulation."
)
# Most telling first: the order flags are listed in.
_KIND_ORDER = ("provenance", "generator", "face_tool", "track", "dates", "reencode", "container", "editor", "camera")
_SPECTRUM_MAX_SIDE = 1024  # whole-image fallback: a centre crop, never a resize


def _centre_square(rgb: np.ndarray) -> np.ndarray:
    side = min(*rgb.shape[:2], _SPECTRUM_MAX_SIDE)
    y0, x0 = (rgb.shape[0] - side) // 2, (rgb.shape[1] - side) // 2
    return rgb[y0 : y0 + side, x0 : x0 + side]


Box = tuple[float, float, float, float]  # x, y, width, height, as in FaceResult.box
ViewFn = Callable[[np.ndarray, Box | None], View]
_VIEWS: dict[str, tuple[ViewFn, str, str]] = {  # name: (view, title, guidance)
    "ela": (lambda rgb, box: error_level(rgb), ELA_TITLE, ELA_GUIDANCE),
    "spectrum": (lambda rgb, box: spectrum(face_region(rgb, box) if box else _centre_square(rgb)), SPECTRUM_TITLE, SPECTRUM_GUIDANCE),
    "noise": (lambda rgb, box: noise_residual(rgb), NOISE_TITLE, NOISE_GUIDANCE),
}
VIEW_NAMES = tuple(_VIEWS)
VIEW_TITLES = {name: title for name, (_, title, _) in _VIEWS.items()}
VIEW_GUIDANCE = {name: guidance for name, (_, _, guidance) in _VIEWS.items()}


def compute_view(name: str, rgb: np.ndarray, box: Box | None = None) -> View:
    """One view by name ("ela", "spectrum", "noise") of a decoded RGB image; `box` (x, y, w, h)
    picks the face the spectrum looks at (the centre of the image without one)."""
    if name not in _VIEWS:
        raise ValueError(f"Unknown forensic view {name!r}; choose one of {', '.join(VIEW_NAMES)}.")
    return _VIEWS[name][0](rgb, box)


def forensic_report(data: bytes, kind: str, result: object | None = None) -> dict:
    """Provenance, metadata and (videos, with an AnalysisResult or its dict) face-track consistency
    of one file, with every flag gathered, most telling first. JSON-safe; never raises on bad files."""
    if kind not in ("image", "video"):
        raise ValueError(f"kind must be 'image' or 'video', not {kind!r}.")
    provenance = read_credentials(data)
    metadata = image_metadata(data) if kind == "image" else video_metadata(data)
    tracks = track_summary(result) if kind == "video" and result is not None else []
    flags = provenance.pop("flags") + metadata.pop("flags") + track_flags(tracks)
    flags.sort(key=lambda f: _KIND_ORDER.index(f["kind"]) if f["kind"] in _KIND_ORDER else len(_KIND_ORDER))
    return {
        "version": FORENSICS_VERSION,
        "kind": kind,
        "sha256": hashlib.sha256(data).hexdigest(),
        "provenance": provenance,
        "metadata": metadata,
        "tracks": tracks,
        "flags": flags,
        "views": dict(VIEW_GUIDANCE) if kind == "image" else {},
        "limits": f"{LIMITS} {VIEW_LIMITS}" if kind == "image" else LIMITS,
    }


def headline(report: dict) -> str:
    """One line for a page or a report: credentials status and how many flags of which kind."""
    status = {"present": "Content Credentials present", "none": "no Content Credentials",
              "error": "damaged Content Credentials", "unsupported": "Content Credentials not checkable in this format",
              "unreadable": "Content Credentials not checkable (file damaged)",
              "unavailable": "Content Credentials not checked"}.get(report["provenance"].get("status"), "Content Credentials unknown")
    kinds = [f["kind"] for f in report["flags"]]
    if not kinds:
        return f"{status[0].upper()}{status[1:]}; no metadata flags."
    counted = ", ".join(f"{kinds.count(k)} {k.replace('_', ' ')}" for k in dict.fromkeys(kinds))
    return f"{status[0].upper()}{status[1:]}; {len(kinds)} flag{'s' if len(kinds) != 1 else ''} ({counted})."
