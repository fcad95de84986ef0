"""From an analysis to a stored case and back: thumbnail, heatmap evidence, saving, rebuilding.

The app, the batch page and the CLI all save through `record`, so a case holds the same things
whoever made it. `stored_result` rebuilds the `AnalysisResult` of a stored case (without pixels),
so charts and pages show a case again without re-running the model.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from core.analyze import (
    DEFAULT_VIDEO_FRAMES, AnalysisResult, Engine, FaceResult, FrameResult, Progress, Verdict, analyze_image_bytes,
    analyze_video,
)
from core.cases import CaseStore, Heatmap, Saved
from core.explain import gradcam, overlay
from core.forensics import forensic_report
from core.media import DEFAULT_LIMITS, Limits, MediaError, check_size, decode_image, sample_frames, sniff_kind
from core.model import Detector

__all__ = [
    "THUMBNAIL_SIDE", "HEATMAPS_KEPT", "Evidence", "thumbnail_jpeg", "thumbnail_of", "face_heatmaps", "evidence",
    "known_case", "record", "scan_bytes", "stored_result",
]

THUMBNAIL_SIDE = 320  # px, longest side: enough to recognise the file, not a copy of it
HEATMAPS_KEPT = 4  # most suspicious faces whose crop and Grad-CAM are kept (PNG, ~100 KB each)


def thumbnail_jpeg(rgb: np.ndarray, side: int = THUMBNAIL_SIDE, quality: int = 80) -> bytes:
    img = Image.fromarray(rgb)
    img.thumbnail((side, side))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def thumbnail_of(kind: str, source: bytes | Path, limits: Limits = DEFAULT_LIMITS) -> bytes | None:
    """A small JPEG of the image, or of the video's middle frame; None if it cannot be decoded."""
    try:
        if kind == "image":
            data = source if isinstance(source, bytes) else Path(source).read_bytes()
            return thumbnail_jpeg(decode_image(data, limits))
        frame = next(sample_frames(source, 1, limits), None)
        return thumbnail_jpeg(frame.rgb) if frame is not None else None
    except MediaError:
        return None


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _one_per_person_first(faces: list[tuple[int, int, FaceResult]]) -> list[tuple[int, int, FaceResult]]:
    """Ranked faces reordered so that each person (video track) shows up once before anyone twice."""
    seen: set = set()
    first, rest = [], []
    for item in faces:
        person = item[2].track if item[2].track is not None else item[:2]
        (rest if person in seen else first).append(item)
        seen.add(person)
    return first + rest


def face_heatmaps(detector: Detector, result: AnalysisResult, limit: int = HEATMAPS_KEPT) -> list[Heatmap]:
    """Grad-CAM of the `limit` most suspicious judged faces (still holding their crops; every person
    once before anyone twice), each for the branch that scored it highest. The crop is kept
    lossless: re-scoring it gives the same score."""
    faces = [
        (frame.index, i, face) for frame in result.frames for i, face in enumerate(frame.faces)
        if face.scores and face.crop is not None
    ]
    faces.sort(key=lambda item: -item[2].scores["fused"])
    kept = []
    for frame_index, i, face in _one_per_person_first(faces)[:limit]:
        branch = max(detector.branches, key=lambda name: face.scores[name])
        heat = overlay(face.crop, gradcam(detector, face.crop, branch), outside=face.outside)
        kept.append(Heatmap(frame_index, i, branch, face.scores["fused"], _png(face.crop), _png(heat)))
    return kept


@dataclass(frozen=True)
class Evidence:
    """What a case keeps beside its scores; `vars(evidence)` are the matching `CaseStore.save` arguments."""

    thumbnail: bytes | None
    heatmaps: list[Heatmap]
    forensics: dict


def evidence(detector: Detector, result: AnalysisResult, data: bytes, limits: Limits = DEFAULT_LIMITS,
             forensics: dict | None = None) -> Evidence:
    """The thumbnail, Grad-CAM heatmaps and forensic report of an analyzed file (`forensics`, when
    already computed, is used as it is). One place, so a case holds the same whoever makes it:
    the app, the CLI or a Dask worker."""
    return Evidence(
        thumbnail_of(result.kind, data, limits),
        face_heatmaps(detector, result),
        forensics if forensics is not None else forensic_report(data, result.kind, result),
    )


def known_case(store: CaseStore, sha256: str, analyst: str, batch_id: int | None = None) -> Saved | None:
    """The stored case of this file, added to the batch; None when the file is new to the store."""
    existing = store.find(sha256)
    if existing is None:
        return None
    if batch_id is not None:
        store.add_to_batch(batch_id, existing.id, analyst)
        existing = store.get(existing.id)
    return Saved(existing, created=False)


def record(
    store: CaseStore,
    engine: Engine,
    result: AnalysisResult,
    source: bytes | Path,
    file_name: str,
    analyst: str,
    *,
    batch_id: int | None = None,
    keep_media: bool = False,
    forensics: dict | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Saved:
    """Save an analysis as a case with its thumbnail, heatmaps and forensic context (`forensics`,
    computed here unless given); the original file only if `keep_media`. A file already stored
    comes back as its existing case (added to the batch), without computing anything."""
    existing = known_case(store, result.sha256, analyst, batch_id)
    if existing is not None:
        return existing
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    found = evidence(engine.detector, result, data, limits, forensics)
    return store.save(result, file_name, analyst, **vars(found), media=data if keep_media else None, batch_id=batch_id)


def scan_bytes(
    store: CaseStore,
    engine: Callable[[], Engine],
    data: bytes,
    file_name: str,
    analyst: str,
    *,
    batch_id: int | None = None,
    frames: int = DEFAULT_VIDEO_FRAMES,
    keep_media: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> Saved:
    """A file's case: the stored one when its sha256 is known (nothing is analyzed), else the file is
    analyzed and recorded. `engine` is called only when the model is needed. Raises MediaError."""
    existing = known_case(store, hashlib.sha256(data).hexdigest(), analyst, batch_id)
    if existing is not None:
        return existing
    check_size(len(data), limits)  # an empty file is said to be empty, not of an unknown type
    kind = sniff_kind(data[:16])
    if kind is None:
        raise MediaError("Not a supported image or video (the file's content was checked, not its name).")
    model = engine()
    if kind == "image":
        result = analyze_image_bytes(model, data, limits)
    else:
        result = analyze_video(model, data, frames, progress, limits)
    return record(store, model, result, data, file_name, analyst, batch_id=batch_id, keep_media=keep_media, limits=limits)


def _known(cls, data: dict) -> dict:
    """The keys of `data` that are fields of the dataclass `cls` (results saved by a newer tool may hold more)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def stored_result(data: dict) -> AnalysisResult:
    """The `AnalysisResult` of a stored case's `result` dict; face crops are not stored (None)."""
    frames = [
        FrameResult(frame["index"], frame["time"], [
            FaceResult(**{**_known(FaceResult, face), "box": tuple(face["box"]), "crop": None}) for face in frame["faces"]
        ])
        for frame in data["frames"]
    ]
    fields_ = _known(AnalysisResult, data)
    return AnalysisResult(**{**fields_, "frames": frames, "verdict": Verdict(**_known(Verdict, data["verdict"]))})
