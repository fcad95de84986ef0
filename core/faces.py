"""Face detection (YuNet) and the crop policy shared by training and inference."""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

__all__ = ["Face", "FaceDetector", "crop_face", "crop_outside", "MIN_FACE_PX", "CROP_MARGIN", "UPRIGHT_SCORE", "TURN_MARGIN"]

YUNET_PATH = Path(__file__).resolve().parent.parent / "weights" / "yunet" / "face_detection_yunet_2026may.onnx"
YUNET_SHA256 = "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0"
DETECT_MAX_SIDE = 640  # YuNet input is resized so its longest side is at most this
MIN_FACE_PX = 40  # faces with a shorter box side are boxed but not scored
# Two cells of YuNet's coarsest stride (32): thinner inputs have returned the previous image's box
# (seen at 1 and 32 px); the padded retry in `detect` still finds faces in small images.
MIN_DETECT_SIDE = 64
CROP_MARGIN = 1.3  # crop side = margin * longest box side: whole head plus some background
# A photo whose orientation tag was stripped may lie sideways or upside down, and YuNet still finds
# many such faces (its landmarks then read as upright), which the model, trained upright, scores high.
# Measured on dev photos in quarter turns (docs/evaluation.md, "Turned photos"): 83 % of upright faces
# score at least UPRIGHT_SCORE and 0-6 % of turned ones; judged on a copy of ORIENT_SIDE px, a turn beat
# the photo as it was by TURN_MARGIN on 1 of 813 upright photos, on 95 % of quarter-turned, 65 % of upside-down;
# a smaller gain is reported as a hint (`turn_hint`), not taken.
UPRIGHT_SCORE = 0.9
TURN_MARGIN = 0.05
ORIENT_SIDE = 320
SAME_FACE_IOU = 0.3  # a box found as the photo is and one found turned, overlapping this much, are one face


@dataclass
class Face:
    """One detected face in image pixel coordinates."""

    box: tuple[float, float, float, float]  # x, y, width, height
    score: float
    landmarks: np.ndarray = field(repr=False)  # 5 x 2: right eye, left eye, nose, mouth right, mouth left
    turns: int = 0  # quarter turns counter-clockwise (np.rot90) that make the face upright
    turn_hint: int = 0  # a quarter turn that found faces a little more surely, too little to be taken

    @property
    def size(self) -> float:
        return min(self.box[2], self.box[3])

    @property
    def too_small(self) -> bool:
        return self.size < MIN_FACE_PX


def _verified_model_path() -> str:
    digest = hashlib.sha256(YUNET_PATH.read_bytes()).hexdigest()
    if digest != YUNET_SHA256:
        raise RuntimeError(f"{YUNET_PATH} has sha256 {digest}, expected {YUNET_SHA256}: restore the file from git")
    return str(YUNET_PATH)


class FaceDetector:
    """YuNet wrapper; one instance may be shared by threads (calls are serialized)."""

    def __init__(self, score_threshold: float = 0.7, max_side: int = DETECT_MAX_SIDE) -> None:
        self.max_side = max_side
        self._net = cv2.FaceDetectorYN.create(_verified_model_path(), "", (320, 320), score_threshold, 0.3, 5000)
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Every face in an RGB uint8 image, largest first; retries on a padded copy for tight crops."""
        faces = self._detect_once(rgb)
        if not faces:  # padded at detection size: padding the full image costs the square of its longest side
            small, scale = self._shrunk(rgb)
            pad = max(small.shape[:2]) // 4
            padded = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
            faces = [_shift(f, -pad, scale, rgb.shape) for f in self._detect_once(padded)]
        return sorted(faces, key=lambda f: -f.box[2] * f.box[3])

    def detect_upright(self, rgb: np.ndarray) -> list[Face]:
        """`detect` for a photo that may lie turned: unless a face is found surely, the photo is tried in
        quarter turns, and the faces of a turn that finds one clearly better come back in this image's
        coordinates with `turns` set, so that their crops are upright. A face found as the photo is
        stays unless a turned face on the same spot scores higher (a photo may hold both)."""
        faces = self.detect(rgb)
        if faces and max(f.score for f in faces) >= UPRIGHT_SCORE:
            return faces
        turns, gain = self._best_turn(rgb)
        if gain < TURN_MARGIN:  # a turn a little surer than the photo as it is: said, not taken
            return [replace(face, turn_hint=turns) for face in faces] if gain > 0 else faces
        turned = [_unturned(face, turns, rgb.shape) for face in self.detect(np.ascontiguousarray(np.rot90(rgb, turns)))]
        kept = [face for face in faces if all(_iou(face, t) < SAME_FACE_IOU or face.score > t.score for t in turned)]
        turned = [t for t in turned if all(_iou(face, t) < SAME_FACE_IOU or t.score >= face.score for face in faces)]
        return sorted(kept + turned, key=lambda f: -f.box[2] * f.box[3])

    def _best_turn(self, rgb: np.ndarray) -> tuple[int, float]:
        """The quarter turn whose best face scores highest, and by how much it beats the photo as it is."""
        small, _ = self._shrunk(rgb, ORIENT_SIDE)
        best = [max((f.score for f in self._detect_once(np.ascontiguousarray(np.rot90(small, k)))), default=0.0)
                for k in range(4)]
        k = int(np.argmax(best[1:])) + 1
        return k, best[k] - best[0]

    def _shrunk(self, rgb: np.ndarray, side: int | None = None) -> tuple[np.ndarray, float]:
        """The image with its longest side at most `side` (default `max_side`), and the scale applied."""
        h, w = rgb.shape[:2]
        scale = min(1.0, (side or self.max_side) / max(h, w))
        if scale == 1.0:
            return rgb, scale
        return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA), scale

    def _detect_once(self, rgb: np.ndarray) -> list[Face]:
        small, scale = self._shrunk(rgb)
        if min(small.shape[:2]) < MIN_DETECT_SIDE:
            return []
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        with self._lock:
            self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, rows = self._net.detect(bgr)
        if rows is None:
            return []
        faces = []
        for row in rows:
            if not np.all(np.isfinite(row[:15])):  # YuNet sometimes returns inf / NaN boxes
                continue
            vals = row[:14] / scale
            x, y, bw, bh = (float(v) for v in vals[:4])
            if bw <= 1 or bh <= 1:
                continue
            faces.append(Face((x, y, bw, bh), float(row[14]), vals[4:14].reshape(5, 2).astype(np.float32)))
        return faces


def _shift(face: Face, offset: int, scale: float, shape: tuple[int, ...]) -> Face:
    """Move a face found on a padded copy shrunk by `scale` back into the original frame, clipped to it."""
    x, y, w, h = face.box
    x, y, w, h = (x + offset) / scale, (y + offset) / scale, w / scale, h / scale
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(shape[1]), x + w), min(float(shape[0]), y + h)
    return Face((x0, y0, max(1.0, x1 - x0), max(1.0, y1 - y0)), face.score, (face.landmarks + offset) / scale)


def _iou(a: Face, b: Face) -> float:
    (ax, ay, aw, ah), (bx, by, bw, bh) = a.box, b.box
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / max(aw * ah + bw * bh - w * h, 1e-9)


def _unturned(face: Face, turns: int, shape: tuple[int, ...]) -> Face:
    """A face found on np.rot90(image, turns), in the image's own coordinates."""
    h, w = shape[:2]
    undo = {1: lambda p: np.stack([w - p[:, 1], p[:, 0]], 1), 2: lambda p: np.stack([w - p[:, 0], h - p[:, 1]], 1),
            3: lambda p: np.stack([p[:, 1], h - p[:, 0]], 1)}[turns]
    x, y, bw, bh = face.box
    corners = undo(np.array([[x, y], [x + bw, y + bh]], np.float64))
    (x0, y0), (x1, y1) = corners.min(0), corners.max(0)
    return Face((float(x0), float(y0), float(x1 - x0), float(y1 - y0)), face.score,
                undo(face.landmarks.astype(np.float64)).astype(np.float32), turns)


def crop_box(face: Face, margin: float = CROP_MARGIN) -> tuple[int, int, int]:
    """Square crop (x0, y0, side) centred on the face box."""
    x, y, w, h = face.box
    side = max(2, int(round(max(w, h) * margin)))
    cx, cy = x + w / 2, y + h / 2
    return int(round(cx - side / 2)), int(round(cy - side / 2)), side


def crop_outside(shape: tuple[int, ...], face: Face, size: int, margin: float = CROP_MARGIN) -> np.ndarray | None:
    """Where `crop_face`'s crop lies outside the image (filled there by repeating its edge), as a size x
    size bool mask; None when the crop lies wholly inside."""
    x0, y0, side = crop_box(face, margin)
    h, w = shape[:2]
    if x0 >= 0 and y0 >= 0 and x0 + side <= w and y0 + side <= h:
        return None
    centres = (np.arange(size) + 0.5) * side / size  # the crop's pixel centres, in image pixels from its corner
    inside_x, inside_y = (0 <= x0 + centres) & (x0 + centres < w), (0 <= y0 + centres) & (y0 + centres < h)
    outside = ~(inside_y[:, None] & inside_x[None, :])
    return np.ascontiguousarray(np.rot90(outside, face.turns)) if face.turns else outside


def crop_face(rgb: np.ndarray, face: Face, size: int, margin: float = CROP_MARGIN) -> np.ndarray:
    """Square face crop resized to size x size; context comes from the image, edges are replicated, never black."""
    x0, y0, side = crop_box(face, margin)
    h, w = rgb.shape[:2]
    pads = (max(0, -y0), max(0, y0 + side - h), max(0, -x0), max(0, x0 + side - w))
    window = rgb[max(0, y0) : min(h, y0 + side), max(0, x0) : min(w, x0 + side)]
    if any(pads):
        window = cv2.copyMakeBorder(window, *pads, cv2.BORDER_REPLICATE)
    if face.turns:  # the window is square and centred on the face: turning it turns the face upright
        window = np.ascontiguousarray(np.rot90(window, face.turns))
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(window, (size, size), interpolation=interp)
