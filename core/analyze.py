"""The pipeline: one call per medium, returning a plain result object every layer consumes."""
from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np
import torch

from core import code_version
from core.faces import CROP_MARGIN, MIN_FACE_PX, Face, FaceDetector, crop_face, crop_outside
from core.media import (
    DEFAULT_LIMITS, Limits, MediaError, SampledFrame, decode_image, probe_video, read_ahead, sample_frames, hidden_pixels,
)
from core.model import SCORE_BATCH, WEIGHTS_DIR, Detector, load_detector

__all__ = [
    "Engine", "FaceResult", "FrameResult", "Verdict", "AnalysisResult", "load_engine",
    "analyze_image", "analyze_image_bytes", "analyze_video", "aggregate_frames", "branch_scores_of", "decide",
    "DEFAULT_VIDEO_FRAMES", "SMALL_FACE_PX", "SYNTHETIC_VIDEO_NOTE", "BLEND_VIDEO_NOTE", "TRANSPARENT_NOTE", "RECROPS", "FIRMNESS_FACES", "fragile_threshold",
    "video_score_text", "score_text", "frame_preview", "file_digest", "assign_tracks", "THREADS_ENV", "torch_threads", "confidence_text",
]

DEFAULT_VIDEO_FRAMES = 32
PREVIEW_SIDE = 640  # long side of the frame previews a video result keeps
FRAME_TRIM = 0.1  # share of a video's frame scores left out at each end before averaging
SMALL_FACE_PX = 80  # judged faces below this (shorter box side) are enlarged a lot to the model's input
SMALL_FACE_NOTE = (
    f"The judged faces are small (under {SMALL_FACE_PX} px) and were enlarged for the model, which then sees less of the detail "
    "it reads; enlarged real faces score a little higher on its blend branch (6 in 10 held-out real faces shown at about 73 px "
    "score above their full-size score; model card, known failure modes). Weigh the verdict with care and look for a larger copy."
)
# Measured with `python -m core.evaluate` on dev: the shipped synthetic branch and ten retrained ones
# (docs/training-log.md, 2026-12-04) each put real clips d0 and d13 at or above 95.5 % of real photos.
SYNTHETIC_VIDEO_NOTE = (
    "The synthetic-face branch drove this video's score, and that branch runs high on real video: every synthetic branch "
    "trained so far scored two of the five real dev clips above at least 95 % of the real dev photos (model card, known "
    "failure modes). It learnt from still portraits; weigh a FAKE here with care and look at the blend branch and the frames."
)
# Measured with `python -m core.evaluate` on dev, as filmed and `--reshare scale=0.5,jpeg=50,crf=35` (model card).
BLEND_VIDEO_NOTE = (
    "The blend branch drove this video's score, and that branch runs high on real video, most of all on re-encoded copies: "
    "of the five real dev clips, it put one above the FAKE threshold as filmed and three after a platform-like re-share "
    "(half size, H.264 at CRF 35; model card, known failure modes). If this is a shared copy, look for the original before "
    "concluding."
)
# The firmness check of an image (docs/evaluation.md): each judged face scored again mirrored, and framed
# 10 % tighter and 15 % looser, as (margin factor, mirrored).
RECROPS = ((1.0, True), (0.9, False), (1.15, False))
FIRMNESS_FACES = 8  # the most suspicious faces re-cropped: a crowd photo does not pay three passes per face
# Only FAKE calls get the note: on dev fragile FAKE calls were wrong about four times as often as firm
# ones, fragile REAL calls only twice as often, and two REAL calls in three are fragile (evaluation report).
FRAGILE_NOTE = (
    "Fragile call: mirrored, or framed a little tighter or looser, this image scores from {low:.3f} to {high:.3f}, across the "
    "FAKE threshold {threshold:.3f}. On the dev split such FAKE calls were wrong several times as often as firm ones{record} "
    "(evaluation report, \"Firm and fragile calls\"); weigh this one with care."
)
FRAGILE_RECORD = ": {fragile[wrong]} of {fragile[items]} ({fragile_share:.0%}) against {firm[wrong]} of {firm[items]} ({firm_share:.0%})"


TRANSPARENT_SHARE = 0.5  # at least this share of the faces (of the image, without faces) transparent gets TRANSPARENT_NOTE
TRANSPARENT_NOTE = (
    "{share:.0%} of {where} is transparent: a viewer shows the background there, while the detector read the colours "
    "stored under the transparency, which nobody sees. The result is about those hidden pixels, not about the picture "
    "people see."
)


def video_score_text(judged_frames: int) -> str:
    """How the frames made a video's score, in words, as `aggregate_frames` does it for this many frames."""
    cut = int(judged_frames * FRAME_TRIM)
    if cut:
        how = (f"averages over the {judged_frames} frames with a judged face, leaving out the {cut} highest and {cut} "
               "lowest, so one odd frame neither convicts nor clears the video")
    else:
        how = (f"averages over the {judged_frames} frame{'s' if judged_frames != 1 else ''} with a judged face (too few "
               "to leave out the highest and lowest, as longer samples do)")
    return (f"How a video is scored: each branch takes the most suspicious face of every sampled frame and {how}; the "
            "stronger branch gives the score. The timeline shows which frames stand out.")


def score_text(kind: str, label: str, score: float | None, confidence: float | None) -> list[str]:
    """A verdict's numbers in words, one number a sentence, for the page and the report. Calibration
    was fitted on dev photos; dev has five real clips, so a video's percentage is not called calibrated."""
    if score is None:
        return []
    if confidence is None:  # untrained weights: every call is INCONCLUSIVE, whatever the score
        return [f"Manipulation score {score:.3f}, which means nothing here: the weights are untrained."]
    if label == "INCONCLUSIVE":
        lean = "neither way" if round(score, 2) == 0.5 else ("towards FAKE" if score > 0.5 else "towards REAL")
        return [f"Too close to call: manipulation score {score:.3f}, between the REAL and FAKE thresholds (it leans {lean})."]
    how = "calibrated on photos" if kind == "image" else "calibrated on photos, not on video"
    return [f"{confidence_text(confidence)} confidence in this label ({how}).",
            f"Manipulation score {score:.3f}, the higher of the two branches."]


Progress = Callable[[float, str], None]


@dataclass
class Engine:
    """What analysis needs: the detector and the face finder, loaded once and shared."""

    detector: Detector
    faces: FaceDetector
    fake_calls: dict[str, dict] = field(default_factory=dict)  # "firm" / "fragile": items and wrong, from the shipped evaluation


def _fake_calls(weights_dir: Path, version: str) -> dict[str, dict]:
    """How FAKE calls fared on dev, firm and fragile, from the evaluation shipped with the weights
    (`eval/report.json`); empty when it is missing, unreadable or of other weights (`version`)."""
    try:
        report = json.loads((weights_dir / "eval" / "report.json").read_text())
        if report["weights"]["version"] != version:
            return {}
        return {("firm" if r["firm"] else "fragile"): {"items": int(r["items"]), "wrong": int(r["wrong"])}
                for r in report["firmness"] if r["call"] == "FAKE"}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


THREADS_ENV = "DEEPFAKE_TORCH_THREADS"


def torch_threads(threads: int | None = None) -> int:
    """PyTorch's intra-op threads: the argument, else $DEEPFAKE_TORCH_THREADS, else 1. One thread per
    analysis measured fastest on a shared 2-core host, where several spinning threads starve each
    other (compare with `python -m core.bench --threads 2`)."""
    value = threads if threads is not None else os.environ.get(THREADS_ENV, "1")
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"{THREADS_ENV} must be a whole number of threads, 1 or more; got {value!r}")
    return count


def load_engine(weights_dir: Path | str = WEIGHTS_DIR, threads: int | None = None) -> Engine:
    """Load the detector and the face finder, set PyTorch's thread count (`torch_threads`), and run
    one dummy face through both branches so the first user does not pay PyTorch's lazy initialisation."""
    torch.set_num_threads(torch_threads(threads))
    detector = load_detector(weights_dir)
    engine = Engine(detector, FaceDetector(), _fake_calls(Path(weights_dir), detector.version))
    size = engine.detector.input_size
    engine.detector.score([np.zeros((size, size, 3), np.uint8)])
    return engine


@dataclass
class FaceResult:
    box: tuple[float, float, float, float]  # x, y, width, height in frame pixels
    detection_score: float
    too_small: bool
    scores: dict[str, float] | None = None  # per branch and "fused"; None when too small to judge
    track: int | None = None  # same person across video frames
    score_range: list[float] | None = None  # [lowest, highest] fused score over RECROPS and itself (images)
    crop: np.ndarray | None = field(default=None, repr=False)  # model input, kept for Grad-CAM, never serialized
    outside: np.ndarray | None = field(default=None, repr=False)  # where the crop lies outside the frame, never serialized


@dataclass
class FrameResult:
    index: int
    time: float
    faces: list[FaceResult]
    preview: bytes | None = field(default=None, repr=False)  # video, on request: the frame as a small JPEG, never serialized
    preview_scale: float = 1.0  # preview pixels per frame pixel, to draw the boxes on it

    @property
    def score(self) -> float | None:
        """The most suspicious judged face in the frame."""
        judged = [f.scores["fused"] for f in self.faces if f.scores]
        return max(judged) if judged else None


@dataclass
class Verdict:
    label: str  # REAL, FAKE, INCONCLUSIVE or NO FACE
    score: float | None  # calibrated probability of manipulation (fused)
    confidence: float | None  # calibrated probability of the stated label
    family: str | None  # which branch drove the score: "blend" or "synthetic"
    reason: str


def confidence_text(probability: float) -> str:
    """A calibrated probability as a percentage, never "100%" or "0%": a calibration fitted on a few
    hundred dev files cannot back certainty, and a saturated score on unfamiliar media (a 1984 film
    scan that a synthetic branch called generated at 0.998) must not read as proof."""
    if probability > 0.99:
        return "over 99%"
    if probability < 0.01:
        return "under 1%"
    return f"{probability:.0%}"


@dataclass
class AnalysisResult:
    kind: str  # "image" or "video"
    sha256: str
    media: dict
    frames: list[FrameResult]
    verdict: Verdict
    branch_scores: dict[str, float]  # aggregated per branch
    model_version: str
    model_trained: bool
    thresholds: dict[str, float]
    timings: dict[str, float]
    whole_image: dict[str, float] | None = None  # scores of the whole image when no face was found
    notes: list[str] = field(default_factory=list)
    score_range: list[float] | None = None  # [lowest, highest] fused image score over RECROPS (images)
    code_version: str = field(default_factory=code_version)  # the release and git commit that made it

    @property
    def judged_frames(self) -> int:
        """Sampled frames with at least one judged face: what a video's score averages over."""
        return sum(1 for frame in self.frames if frame.score is not None)

    @property
    def faces(self) -> list[FaceResult]:
        return [face for frame in self.frames for face in frame.faces]

    def to_dict(self) -> dict:
        """JSON-safe dictionary without pixel data."""

        def strip(obj):
            if isinstance(obj, dict):
                return {k: strip(v) for k, v in obj.items() if k not in ("crop", "outside", "preview", "preview_scale")}
            if isinstance(obj, list):
                return [strip(v) for v in obj]
            if isinstance(obj, (np.floating, np.integer)):
                return obj.item()
            return obj

        return strip(asdict(self))


def aggregate_frames(frame_scores: Iterable[float | None], trim: float = FRAME_TRIM) -> float | None:
    """One branch's video score: per frame the most suspicious face, then a mean over frames with the
    top and bottom `trim` fraction dropped, so one odd frame neither convicts nor clears a video."""
    values = np.sort([s for s in frame_scores if s is not None])
    if values.size == 0:
        return None
    cut = int(values.size * trim)
    kept = values[cut : values.size - cut] if values.size - 2 * cut > 0 else values
    return float(kept.mean())


def decide(score: float | None, family: str | None, thresholds: dict[str, float], trained: bool) -> Verdict:
    """Map a calibrated score to REAL / FAKE / INCONCLUSIVE with the inconclusive band in between."""
    if score is None:
        return Verdict("NO FACE", None, None, None, f"Nothing to judge: not a single face of at least {MIN_FACE_PX} px across was found.")
    if not trained:
        return Verdict("INCONCLUSIVE", score, None, family, "The shipped weights are untrained: this score is not a finding.")
    if score >= thresholds["fake"]:
        return Verdict("FAKE", score, score, family, f"Score at or above the FAKE threshold {thresholds['fake']:.3f}.")
    if score <= thresholds["real"]:
        return Verdict("REAL", score, 1.0 - score, family, f"Score at or below the REAL threshold {thresholds['real']:.3f}.")
    band = f"{thresholds['real']:.3f}–{thresholds['fake']:.3f}"
    return Verdict("INCONCLUSIVE", score, max(score, 1.0 - score), family, f"Score inside the inconclusive band {band}.")


def frame_preview(rgb: np.ndarray, side: int = PREVIEW_SIDE) -> tuple[bytes, float]:
    """A sampled frame as a JPEG at most `side` px long, and its scale, for the page to show beside its
    faces: some 25 KB a frame, where the decoded frame would hold megabytes for the whole session."""
    scale = min(1.0, side / max(rgb.shape[:2]))
    small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    jpeg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
    return jpeg, small.shape[1] / rgb.shape[1]


def _crop_faces(engine: Engine, frame: SampledFrame, faces: list[Face]) -> FrameResult:
    """Boxes of every face and model-sized crops of the judgeable ones; the frame itself is dropped."""
    size = engine.detector.input_size
    row = []
    for face in faces:
        item = FaceResult(tuple(round(v, 1) for v in face.box), round(face.score, 3), face.too_small)
        if not face.too_small:
            item.crop = crop_face(frame.rgb, face, size, CROP_MARGIN)
            item.outside = crop_outside(frame.rgb.shape, face, size, CROP_MARGIN)
        row.append(item)
    return FrameResult(frame.index, round(frame.time, 3), row)


def _score_faces(engine: Engine, frames: list[FrameResult]) -> None:
    """Score every cropped face of every frame in one batch."""
    _score(engine, [face for frame in frames for face in frame.faces if face.crop is not None])


def _score(engine: Engine, faces: list[FaceResult]) -> None:
    probs = engine.detector.score([face.crop for face in faces], batch_size=SCORE_BATCH)
    for i, face in enumerate(faces):
        face.scores = {name: round(float(p[i]), 4) for name, p in probs.items()}


def branch_scores_of(frames: list[FrameResult], branches: Iterable[str], per_frame: Callable) -> dict[str, float]:
    """Each branch's score over faces and frames (`per_frame` reduces the per-frame maxima), then
    the fused score: the strongest branch. Fusing after aggregating matters for video: a per-frame
    max of two noisy branches would lift every real video a little; for one image both agree."""
    scores = {}
    for name in branches:
        value = per_frame([max((f.scores[name] for f in fr.faces if f.scores), default=None) for fr in frames])
        if value is not None:
            scores[name] = round(value, 4)
    if scores:
        scores["fused"] = max(scores.values())
    return scores


def _summarize(engine: Engine, frames: list[FrameResult], per_frame: Callable) -> tuple[Verdict, dict[str, float]]:
    scores = branch_scores_of(frames, engine.detector.branches, per_frame)
    family = max(engine.detector.branches, key=lambda n: scores.get(n, -1.0)) if scores else None
    return decide(scores.get("fused"), family, engine.detector.thresholds, engine.detector.trained), scores


def _whole_image(engine: Engine, rgb: np.ndarray) -> dict[str, float]:
    """Scores of the centred square of the whole image, for images without a detectable face."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    crop = cv2.resize(rgb[y0 : y0 + side, x0 : x0 + side], (engine.detector.input_size,) * 2, interpolation=cv2.INTER_AREA)
    return {name: round(float(p[0]), 4) for name, p in engine.detector.score([crop]).items()}


def _base(engine: Engine, kind: str, sha256: str, media: dict, frames, verdict, scores, timings) -> AnalysisResult:
    det = engine.detector
    result = AnalysisResult(kind, sha256, media, frames, verdict, scores, det.version, det.trained, det.thresholds, timings)
    sides = [min(f.box[2:]) for frame in frames for f in frame.faces if f.scores]
    if verdict.label in ("FAKE", "INCONCLUSIVE") and sides and float(np.median(sides)) < SMALL_FACE_PX:
        result.notes.append(SMALL_FACE_NOTE)
    if kind == "video" and verdict.label in ("FAKE", "INCONCLUSIVE") and verdict.family:
        result.notes.append(SYNTHETIC_VIDEO_NOTE if verdict.family == "synthetic" else BLEND_VIDEO_NOTE)
    return result


def _recrops(rgb: np.ndarray, face: Face, size: int) -> list[np.ndarray]:
    crops = []
    for margin, mirrored in RECROPS:
        crop = crop_face(rgb, face, size, CROP_MARGIN * margin)
        crops.append(crop[:, ::-1].copy() if mirrored else crop)
    return crops


def _score_ranges(engine: Engine, rgb: np.ndarray, faces: list[Face], result: AnalysisResult) -> None:
    """How firm an image's scores are: each judged face's fused score over RECROPS and itself, and the
    image's (its most suspicious face under each re-crop). A small shift moving a score across a
    threshold marks a call that the exact framing decided."""
    judged = [(face, item) for face, item in zip(faces, result.frames[0].faces) if item.scores]
    if not judged:
        return
    judged = sorted(judged, key=lambda pair: -pair[1].scores["fused"])[:FIRMNESS_FACES]
    crops = [crop for face, _ in judged for crop in _recrops(rgb, face, engine.detector.input_size)]
    again = engine.detector.score(crops)["fused"].reshape(len(judged), len(RECROPS))
    fused = np.column_stack([[item.scores["fused"] for _, item in judged], again])
    for (_, item), row in zip(judged, fused):
        item.score_range = [round(float(row.min()), 4), round(float(row.max()), 4)]
    image = fused.max(axis=0)  # faces left out never score above the ones re-cropped
    result.score_range = [round(float(image.min()), 4), round(float(image.max()), 4)]


def _fragile_record(engine: Engine) -> str:
    """The dev record of fragile against firm FAKE calls, for FRAGILE_NOTE ("" when not known)."""
    firm, fragile = (engine.fake_calls.get(kind, {}) for kind in ("firm", "fragile"))
    if not (firm.get("items") and fragile.get("items")):
        return ""
    return FRAGILE_RECORD.format(firm=firm, fragile=fragile, firm_share=firm["wrong"] / firm["items"],
                                 fragile_share=fragile["wrong"] / fragile["items"])


def fragile_threshold(label: str, score_range: list[float] | None, thresholds: dict[str, float]) -> float | None:
    """The threshold a FAKE or REAL call crosses when its image is re-framed or mirrored (None: the call is firm)."""
    if not score_range:
        return None
    low, high = score_range
    if label == "FAKE" and low < thresholds["fake"]:
        return thresholds["fake"]
    if label == "REAL" and high > thresholds["real"]:
        return thresholds["real"]
    return None


TURNED_NOTE = ("{which} lie turned in this photo, and no orientation tag says so (upload pipelines often strip it): "
               "they were found and scored turned upright ({turn}). Boxes are drawn on the photo as it is.")
TURN_WORDS = {1: "a quarter turn to the left", 2: "a half turn", 3: "a quarter turn to the right"}
TURN_HINT_NOTE = ("The faces may lie turned in this photo ({turn} would set them upright): the face finder was a little "
                  "surer of them turned, too little to turn them itself. The detector, trained on upright faces, scores "
                  "turned faces high: if they lie turned, turn the photo upright and analyze it again.")


SCREEN_ASPECT = 1.8  # height / width: phone screens are 2 to 2.2, photos 1.5 at most, upright 16:9 video 1.78
SCREEN_NOTE = ("This picture is as tall as a phone screen: if it is a screenshot, the photo inside it was resampled to the "
               "screen, which wears away the traces the detector reads (in a QA test, a generated face pasted into a "
               "screenshot dropped from FAKE to INCONCLUSIVE). Analyze the original picture if you can find it.")


def _turn_notes(faces: list[Face]) -> list[str]:
    """What `FaceDetector.detect_upright` did, or only suspected, about faces lying turned."""
    turned = [face for face in faces if face.turns]
    if turned:
        which = "The faces" if len(turned) == len(faces) else f"{len(turned)} of the {len(faces)} faces"
        return [TURNED_NOTE.format(which=which, turn=TURN_WORDS[turned[0].turns])]
    if faces and faces[0].turn_hint:
        return [TURN_HINT_NOTE.format(turn=TURN_WORDS[faces[0].turn_hint])]
    return []


def analyze_image(engine: Engine, rgb: np.ndarray, sha256: str = "") -> AnalysisResult:
    """Find, crop and score every face of an RGB uint8 image."""
    t0 = time.perf_counter()
    faces = engine.faces.detect_upright(rgb)
    t1 = time.perf_counter()
    frames = [_crop_faces(engine, SampledFrame(0, 0.0, rgb), faces)]
    _score_faces(engine, frames)
    t2 = time.perf_counter()
    verdict, scores = _summarize(engine, frames, lambda values: values[0])
    media = {"width": int(rgb.shape[1]), "height": int(rgb.shape[0])}
    result = _base(engine, "image", sha256, media, frames, verdict, scores, {"detect_s": t1 - t0, "model_s": t2 - t1})
    t3 = time.perf_counter()
    _score_ranges(engine, rgb, faces, result)
    result.timings["firmness_s"] = time.perf_counter() - t3
    if verdict.label == "FAKE" and fragile_threshold("FAKE", result.score_range, engine.detector.thresholds) is not None:
        low, high = result.score_range
        result.notes.append(FRAGILE_NOTE.format(low=low, high=high, threshold=engine.detector.thresholds["fake"], record=_fragile_record(engine)))
    result.notes += _turn_notes(faces)
    if faces and rgb.shape[0] >= SCREEN_ASPECT * rgb.shape[1]:
        result.notes.append(SCREEN_NOTE)
    if not faces:
        result.whole_image = _whole_image(engine, rgb)
        result.notes.append("If the picture does show a person, the face finder missed the face, at any size. It finds "
                            "faces seen from the front or partly from the side and not largely covered; a very small face "
                            "may be found in a larger or closer-cropped copy, while a large face it misses (strong make-up "
                            "or light, a mask, a profile) this tool cannot judge.")
    elif verdict.label == "NO FACE":
        result.notes.append("Every face found is too small to judge (shorter side under the minimum size).")
    return result


def _hidden_share(hidden: np.ndarray, result: AnalysisResult) -> float:
    """Share of the found faces' boxes (of the whole image when none was found) that is transparent:
    a cut-out portrait, its background transparent, shows its face and gets no note."""
    if not result.faces:
        return float(hidden.mean())
    inside = np.zeros_like(hidden)
    for face in result.faces:
        x, y, w, h = (int(round(v)) for v in face.box)
        inside[max(0, y) : y + h, max(0, x) : x + w] = True
    return float(hidden[inside].mean()) if inside.any() else 0.0


def analyze_image_bytes(engine: Engine, data: bytes, limits: Limits = DEFAULT_LIMITS) -> AnalysisResult:
    t0 = time.perf_counter()
    rgb = decode_image(data, limits)
    decode_s = time.perf_counter() - t0
    result = analyze_image(engine, rgb, hashlib.sha256(data).hexdigest())
    result.media["bytes"] = len(data)
    hidden = hidden_pixels(data)
    if hidden is not None and (share := _hidden_share(hidden, result)) >= TRANSPARENT_SHARE:
        result.notes.append(TRANSPARENT_NOTE.format(share=share, where="the faces" if result.faces else "this image"))
    result.timings = {"decode_s": decode_s, **result.timings}
    result.timings["total_s"] = time.perf_counter() - t0
    return result


def analyze_video(
    engine: Engine,
    source: bytes | str | Path,
    frame_count: int = DEFAULT_VIDEO_FRAMES,
    progress: Progress | None = None,
    limits: Limits = DEFAULT_LIMITS,
    previews: bool = False,
) -> AnalysisResult:
    """Sample `frame_count` frames uniformly over the whole video, score every face, aggregate; with
    `previews`, keep each sampled frame as a small JPEG (`frame_preview`) for a page to show."""
    t0 = time.perf_counter()
    info = probe_video(source, limits)
    timings = {"decode_s": 0.0, "detect_s": 0.0, "model_s": 0.0}  # decode_s: waiting for decoded frames
    frames: list[FrameResult] = []
    unscored: list[FaceResult] = []
    planned = min(frame_count, info.frame_count)  # sample_frames never asks for more frames than exist
    clock = time.perf_counter()
    with closing(read_ahead(sample_frames(source, frame_count, limits, info))) as decoded:  # stops the thread on any error
        for i, frame in enumerate(decoded):
            t_decoded = time.perf_counter()
            timings["decode_s"] += t_decoded - clock
            frames.append(_crop_faces(engine, frame, engine.faces.detect(frame.rgb)))
            if previews:
                frames[-1].preview, frames[-1].preview_scale = frame_preview(frame.rgb)
            unscored += [face for face in frames[-1].faces if face.crop is not None]
            t_detected = time.perf_counter()
            timings["detect_s"] += t_detected - t_decoded
            while len(unscored) >= SCORE_BATCH:  # whole batches as frames arrive: the same batches and scores as one call
                _score(engine, unscored[:SCORE_BATCH])
                del unscored[:SCORE_BATCH]
            clock = time.perf_counter()
            timings["model_s"] += clock - t_detected
            if progress:
                progress(min(1.0, (i + 1) / planned), f"Frame {i + 1} of {planned}")
    if not frames:
        raise MediaError("No frame of the video could be decoded; the file may be corrupt or its codec unsupported.")
    _score(engine, unscored)
    timings["model_s"] += time.perf_counter() - clock
    timings["total_s"] = time.perf_counter() - t0
    assign_tracks(frames)
    verdict, scores = _summarize(engine, frames, aggregate_frames)
    digest, size = file_digest(source)
    media = {**asdict(info), "bytes": size, "frames_requested": frame_count, "frames_sampled": len(frames)}
    result = _base(engine, "video", digest, media, frames, verdict, scores, timings)
    if verdict.label == "NO FACE":
        result.notes.append(f"All {len(frames)} sampled frames were searched. If the video does show a person, sample more "
                            "frames, or use a copy where faces are larger.")
    return result


def file_digest(source: bytes | str | Path) -> tuple[str, int]:
    """sha256 and size in bytes, streaming files from disk."""
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest(), len(source)
    digest = hashlib.sha256()
    with open(source, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest(), Path(source).stat().st_size


TRACK_GAP = 3  # samples a face may be missing (a turn, a detector miss) and still continue its track
TRACK_RESIZE = 2.0  # between two faces of one track the box width changes less than this factor


def _track_distance(face: FaceResult, old: FaceResult) -> float:
    """Centre shift in box widths (of the larger box)."""
    (x, y, w, h), (ox, oy, ow, oh) = face.box, old.box
    return float(np.hypot(x + w / 2 - ox - ow / 2, y + h / 2 - oy - oh / 2) / max(w, ow, 1.0))


def _resized(face: FaceResult, old: FaceResult) -> bool:
    return max(face.box[2], old.box[2]) > TRACK_RESIZE * max(min(face.box[2], old.box[2]), 1.0)


def assign_tracks(frames: list[FrameResult], max_shift: float = 0.75) -> None:
    """Tracker over sampled frames. A face continues a track seen in the last TRACK_GAP samples, closest
    pairs first, when its centre moved under `max_shift` box widths and its size changed less than
    TRACK_RESIZE times; otherwise it starts a new track. A lone face continues a lone track however far
    it moved: samples of a long video are seconds apart, and one person moving is the common case (a
    cut to someone else is then one track, whose jumping box the track flags report)."""
    last: dict[int, tuple[int, FaceResult]] = {}  # track -> (sample number, its latest face)
    for i, frame in enumerate(frames):
        live = {track: face for track, (seen, face) in last.items() if i - seen <= TRACK_GAP}
        lone = len(frame.faces) == 1 and len(live) == 1
        pairs = sorted((_track_distance(face, old), k, track) for k, face in enumerate(frame.faces)
                       for track, old in live.items())
        matched: set[int] = set()
        for distance, k, track in pairs:
            face = frame.faces[k]
            if k in matched or track not in live:
                continue
            if lone or (distance < max_shift and not _resized(face, live[track])):
                face.track = track
                matched.add(k)
                del live[track]
        for k, face in enumerate(frame.faces):
            if k not in matched:
                face.track = len(last)
            last[face.track] = (i, face)
