"""A seed-style reference pipeline, the yardstick for `core.bench` and `core.evaluate --baseline`.

It does what popular public deepfake-detection repos do: OpenCV's Haar frontal-face cascade on
the full-resolution frame, the largest face only, every 5th frame of a video read one by one with
`cv2.VideoCapture` (every frame is decoded), one forward pass per face, and the plain mean of the
probabilities over frames.

Two classifiers can sit at the end of it, chosen by name:
- "resnet50": torchvision ResNet-50 at 224 px with a one-logit head, randomly initialised (no
  pretrained weights exist offline). Its scores are meaningless; it is the *speed* reference that
  issue 6 specifies ("a ResNet-50-sized CNN at 224 px").
- "ours": our shipped detector (`core.model.load_detector`, fused calibrated probability). With it
  an accuracy comparison isolates the pipeline choices (Haar, largest face, every 5th frame, mean)
  against ours (YuNet, every face, uniform seeking, robust aggregation); it does *not* measure a
  different network.
Both classifiers see the same crop policy as ours (`core.faces.crop_face`, same margin).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
import torch

from core.faces import CROP_MARGIN, Face, crop_face
from core.media import MediaError
from core.model import IMAGENET_MEAN, IMAGENET_STD, WEIGHTS_DIR, load_detector

__all__ = [
    "BaselineEngine", "load_baseline", "baseline_decode", "largest_face", "baseline_image", "video_frames", "baseline_video",
    "CLASSIFIERS", "FRAME_STRIDE",
]

FRAME_STRIDE = 5  # every 5th frame, as in the seed repos
HAAR_FILE = "haarcascade_frontalface_default.xml"

Scorer = Callable[[np.ndarray], float]  # one model-sized RGB crop -> probability of manipulation


@dataclass
class BaselineEngine:
    """The cascade and one classifier; `score` takes one crop of `input_size` pixels."""

    classifier: str
    cascade: cv2.CascadeClassifier
    input_size: int
    score: Scorer


def _resnet50(weights_dir: Path) -> tuple[int, Scorer]:
    from torchvision.models import resnet50

    net = resnet50(weights=None)
    net.fc = torch.nn.Linear(net.fc.in_features, 1)
    net.eval()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def score(crop: np.ndarray) -> float:
        x = torch.from_numpy(crop).permute(2, 0, 1).unsqueeze(0).float().div(255.0)
        with torch.no_grad():
            return float(torch.sigmoid(net((x - mean) / std))[0, 0])

    return 224, score


def _ours(weights_dir: Path) -> tuple[int, Scorer]:
    detector = load_detector(weights_dir)

    def score(crop: np.ndarray) -> float:
        return float(detector.score([crop])["fused"][0])

    return detector.input_size, score


CLASSIFIERS: dict[str, Callable[[Path], tuple[int, Scorer]]] = {"resnet50": _resnet50, "ours": _ours}


def load_baseline(weights_dir: Path | str = WEIGHTS_DIR, classifier: str = "resnet50") -> BaselineEngine:
    """The Haar cascade plus the named classifier ("resnet50": speed reference, "ours": our detector)."""
    if classifier not in CLASSIFIERS:
        raise ValueError(f"unknown baseline classifier {classifier!r}; choose one of {sorted(CLASSIFIERS)}")
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, HAAR_FILE))
    if cascade.empty():
        raise RuntimeError(f"OpenCV's {HAAR_FILE} did not load: install opencv-python-headless 4.x (5.x ships no cascades)")
    size, score = CLASSIFIERS[classifier](Path(weights_dir))
    return BaselineEngine(classifier, cascade, size, score)


def baseline_decode(data: bytes) -> np.ndarray:
    """RGB array of an encoded image the seed way (cv2.imdecode, no limits, no EXIF orientation)."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise MediaError("OpenCV could not decode the image.")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def largest_face(engine: BaselineEngine, rgb: np.ndarray) -> Face | None:
    """The largest Haar box as a Face, on the full-resolution frame with the settings most seed repos copy
    (scale step 1.1, 5 neighbours, 30 px minimum). Issue 6's reference timing (~85 s for the 60 s clip)
    matches them; OpenCV tutorial's step 1.3 would make this step about twice as fast."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    boxes = engine.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(30, 30))
    if len(boxes) == 0:
        return None
    x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
    return Face((float(x), float(y), float(w), float(h)), 1.0, np.zeros((5, 2), np.float32))


def baseline_image(engine: BaselineEngine, rgb: np.ndarray) -> float | None:
    """Probability for the largest Haar face of an RGB uint8 image; None when no face is found."""
    face = largest_face(engine, rgb)
    if face is None:
        return None
    return engine.score(crop_face(rgb, face, engine.input_size, CROP_MARGIN))


def video_frames(path: str) -> Iterator[np.ndarray]:
    """RGB frames of a video file, every one decoded in order (what cv2.VideoCapture offers)."""
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise MediaError("OpenCV could not open the video; it may be corrupt or in an unsupported format.")
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def _video_scores(engine: BaselineEngine, path: str) -> list[float]:
    scores = []
    for i, rgb in enumerate(video_frames(path)):
        if i % FRAME_STRIDE == 0:
            score = baseline_image(engine, rgb)
            if score is not None:
                scores.append(score)
    return scores


def baseline_video(engine: BaselineEngine, source: bytes | str | Path) -> float | None:
    """Mean probability over every 5th frame that has a face; None when none has. Bytes go through
    a private temporary file (cv2.VideoCapture needs a path) that is always removed."""
    if not isinstance(source, bytes):
        scores = _video_scores(engine, str(source))
    else:
        fd, path = tempfile.mkstemp(suffix=".mp4")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(source)
            scores = _video_scores(engine, path)
        finally:
            os.unlink(path)
    return float(np.mean(scores)) if scores else None
