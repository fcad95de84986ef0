"""Self-blended pseudo-fakes (Shiohara & Yamasaki, CVPR 2022) with part-wise masks.

A face is blended with a slightly altered copy of itself through a deformed, blurred mask, so the
only evidence is the blending boundary and the statistical mismatch inside it, never identity.
Masks come from YuNet's five landmarks: the whole face hull, or parts (eyes, nose, mouth and
their combinations), because real splices replace parts of a face. Given a crop's 68 dlib points
(`core.train.dense`), each mask follows the face's own outline and parts' shapes instead.

`swap_blend` is the Face X-ray variant (Li et al., CVPR 2020): the source is another person's face,
aligned on the five landmarks and colour-matched only sometimes, as a hurried editor would. It adds
the texture, lighting and skin-tone mismatches of real swaps and splices that a self-blend lacks.

`composite_blend` is a face-part composite: each of several parts (an eye, the other eye, the nose,
the mouth) comes from its own donor, placed by hand, i.e. slightly off in scale, turn and position,
as in manual photo montages and part-wise edits, where a self-blend or a one-donor swap keeps the
face's geometry consistent.

A `poisson` twin is pasted in the gradient domain (`poisson_blend`: Pérez et al., SIGGRAPH 2003),
as a healing brush or a seamless clone does: inside the mask the source's texture, its colour level
pinned to the face all along the edge, so no colour or brightness seam is left; only texture,
sharpness and geometry differ, the sharp, colour-matched edits an alpha blend does not teach.

`renoise` gives a blended region another noise and compression history (grain, a misaligned JPEG
grid, or denoising), as a part pasted from another photo has: the classic splicing cue, which
the colour, brightness and sharpness changes of the altered source do not teach.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import splu

__all__ = ["face_mask", "self_blend", "swap_blend", "composite_blend", "renoise", "poisson_blend", "PARTS", "NOISE_KINDS"]

PARTS = ("face", "eyes", "left_eye", "right_eye", "nose", "mouth", "eyes_nose", "nose_mouth", "eyes_mouth")
_PART_WEIGHTS = np.array([0.45, 0.09, 0.04, 0.04, 0.07, 0.11, 0.07, 0.07, 0.06])
_COMPOSITE_PARTS = ("left_eye", "right_eye", "nose", "mouth")
NOISE_KINDS = ("grain", "jpeg", "denoise")  # renoise: the draw indexes this order, so keep it


def _part_centre(lm: np.ndarray, part: str) -> np.ndarray:
    """Centre of a single part's ellipse (landmarks: right eye, left eye, nose, mouth right, mouth left)."""
    if part == "nose":
        return lm[2] * 0.8 + lm[:2].mean(0) * 0.2
    if part == "mouth":
        return lm[3:].mean(0)
    return lm[{"left_eye": 1, "right_eye": 0}[part]]


def _eye_distance(lm: np.ndarray, size: int) -> float:
    return float(np.linalg.norm(lm[1] - lm[0])) or size / 4


def _ellipse(mask: np.ndarray, centre: np.ndarray, axes: tuple[float, float], angle: float) -> None:
    cv2.ellipse(mask, tuple(int(v) for v in centre), (max(2, int(axes[0])), max(2, int(axes[1]))), angle, 0, 360, 1.0, -1)


def _face_hull(lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Polygon around the face, extrapolated from eyes, nose and mouth, vertices jittered."""
    eyes, mouth = lm[:2].mean(0), lm[3:].mean(0)
    down = mouth - eyes
    across = lm[1] - lm[0]
    pts = [
        eyes - 0.75 * down - 0.55 * across, eyes - 0.85 * down, eyes - 0.75 * down + 0.55 * across,
        lm[1] + 0.45 * across, lm[4] + 0.35 * across + 0.2 * down,
        mouth + 0.75 * down + 0.25 * across, mouth + 0.85 * down, mouth + 0.75 * down - 0.25 * across,
        lm[3] - 0.35 * across + 0.2 * down, lm[0] - 0.45 * across,
    ]
    scale = float(np.linalg.norm(down) + np.linalg.norm(across)) / 2
    return np.array(pts) + rng.normal(0, 0.06 * scale, (len(pts), 2))


def face_mask(landmarks: np.ndarray, size: int, part: str, rng: np.random.Generator, dense: np.ndarray | None = None) -> np.ndarray:
    """Binary float32 mask (size x size) of a face region, before deformation and blur; from the
    68 `dense` points if given, else from the five `landmarks`."""
    if dense is not None:
        return _dense_mask(dense, size, part, rng)
    lm = landmarks
    mask = np.zeros((size, size), np.float32)
    eye_dist = _eye_distance(lm, size)
    angle = float(np.degrees(np.arctan2(*(lm[1] - lm[0])[::-1])))
    jitter = lambda: rng.uniform(0.85, 1.2)  # noqa: E731
    if part == "face":
        cv2.fillPoly(mask, [np.round(_face_hull(lm, rng)).astype(np.int32)], 1.0)
        return mask
    if "eye" in part:
        for eye in [part] if part in ("left_eye", "right_eye") else ["right_eye", "left_eye"]:
            _ellipse(mask, _part_centre(lm, eye), (0.38 * eye_dist * jitter(), 0.24 * eye_dist * jitter()), angle)
    if "nose" in part:
        _ellipse(mask, _part_centre(lm, "nose"), (0.3 * eye_dist * jitter(), 0.45 * eye_dist * jitter()), angle)
    if "mouth" in part:
        width = float(np.linalg.norm(lm[4] - lm[3]))
        _ellipse(mask, _part_centre(lm, "mouth"), (0.75 * width * jitter(), 0.32 * width * jitter()), angle)
    return mask


_DENSE_PARTS = {"left_eye": slice(42, 48), "right_eye": slice(36, 42), "nose": slice(27, 36), "mouth": slice(48, 60)}
_DENSE_GROWTH = {"left_eye": (1.8, 2.8), "right_eye": (1.8, 2.8), "nose": (1.2, 1.6), "mouth": (1.3, 1.8)}  # parts come with skin around them


def _dense_mask(dense: np.ndarray, size: int, part: str, rng: np.random.Generator) -> np.ndarray:
    """Face: the hull of jaw and brows, the brows raised a little into the forehead. Parts: each
    part's hull grown about its centre."""
    mask = np.zeros((size, size), np.float32)
    if part == "face":
        outline = dense[:27].copy()
        brow_height = float(np.linalg.norm(dense[27] - dense[8])) * rng.uniform(0.0, 0.15)
        outline[17:27, 1] -= brow_height
        cv2.fillConvexPoly(mask, np.round(cv2.convexHull(outline)).astype(np.int32), 1.0)
        return mask
    for name in [p for p in _DENSE_PARTS if p in part] + (["left_eye", "right_eye"] if "eyes" in part else []):
        points = dense[_DENSE_PARTS[name]]
        centre = points.mean(0)
        grown = centre + (points - centre) * rng.uniform(*_DENSE_GROWTH[name])
        cv2.fillConvexPoly(mask, np.round(cv2.convexHull(grown)).astype(np.int32), 1.0)
    return mask


def _deform(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Elastic wobble of the mask edge, a random dilation or erosion, then a random blur."""
    size = mask.shape[0]
    grid = rng.normal(0, size * 0.015, (2, 6, 6)).astype(np.float32)
    flow = [cv2.resize(g, (size, size), interpolation=cv2.INTER_CUBIC) for g in grid]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    mask = cv2.remap(mask, xs + flow[0], ys + flow[1], cv2.INTER_LINEAR)
    k = int(rng.integers(1, max(2, size // 40)))
    kernel = np.ones((k, k), np.uint8)
    mask = cv2.dilate(mask, kernel) if rng.random() < 0.5 else cv2.erode(mask, kernel)
    sigma = rng.uniform(0.5, size / 30)
    return np.clip(cv2.GaussianBlur(mask, (0, 0), sigma), 0, 1)


def _alter(img: np.ndarray, rng: np.random.Generator, crisp: bool = False) -> np.ndarray:
    """The source copy: colour, brightness, sharpness or resolution change, and a small shift / scale.
    A `crisp` source is sharpened, never down-scaled, and resampled cubically here (a swap donor's
    alignment warp stays bilinear): pasted parts in real edits are often as sharp as the face, so a
    softer blended region must not be the only cue."""
    out = img.astype(np.float32)
    if rng.random() < 0.7:
        out = out * rng.uniform(0.9, 1.1, 3) + rng.uniform(-14, 14, 3)
    if rng.random() < 0.5:
        out = (out - out.mean()) * rng.uniform(0.85, 1.15) + out.mean() + rng.uniform(-12, 12)
    size = img.shape[0]
    if crisp:
        out = _sharpen(out, rng.uniform(0.3, 1.0))
    elif rng.random() < 0.4:
        small = max(8, int(size * rng.uniform(0.35, 0.8)))
        out = cv2.resize(cv2.resize(out, (small, small), interpolation=cv2.INTER_AREA), (size, size))
    elif rng.random() < 0.4:
        out = _sharpen(out, rng.uniform(0.3, 1.0))
    scale = rng.uniform(0.95, 1.05)
    shift = rng.uniform(-0.03, 0.03, 2) * size
    matrix = np.array([[scale, 0, (1 - scale) * size / 2 + shift[0]], [0, scale, (1 - scale) * size / 2 + shift[1]]], np.float32)
    out = cv2.warpAffine(out, matrix, (size, size), flags=cv2.INTER_CUBIC if crisp else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.clip(out, 0, 255)


def _sharpen(img: np.ndarray, amount: float) -> np.ndarray:
    return img + amount * (img - cv2.GaussianBlur(img, (0, 0), 1.0))


def poisson_blend(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`target` with the region `mask` (bool) solved for the source's gradients, its values fixed
    to the target's just outside the region (the image border stays the target's)."""
    inside = mask.copy()
    inside[[0, -1], :] = inside[:, [0, -1]] = False
    ys, xs = np.nonzero(inside)
    index = np.full(mask.shape, -1)
    index[ys, xs] = np.arange(len(ys))
    src, out = source.astype(np.float64), target.astype(np.float64)
    rhs = 4 * src[ys, xs]
    rows, cols, vals = [np.arange(len(ys))], [np.arange(len(ys))], [np.full(len(ys), 4.0)]
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        ny, nx = ys + dy, xs + dx
        rhs -= src[ny, nx]
        neighbour = index[ny, nx]
        known = neighbour < 0
        rhs[known] += out[ny[known], nx[known]]
        rows.append(np.nonzero(~known)[0])
        cols.append(neighbour[~known])
        vals.append(np.full(len(cols[-1]), -1.0))
    if len(ys):
        system = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(ys),) * 2)
        out[ys, xs] = splu(system.tocsc()).solve(rhs)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _blend(source: np.ndarray, target: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, part: str | None,
           dense: np.ndarray | None = None, poisson: bool = False) -> tuple[np.ndarray, np.ndarray]:
    part = part or str(rng.choice(PARTS, p=_PART_WEIGHTS / _PART_WEIGHTS.sum()))
    mask = _deform(face_mask(landmarks, target.shape[0], part, rng, dense), rng)
    if poisson:
        region = mask > 0.5
        return poisson_blend(source, target, region), region.astype(np.float32)
    mask = mask * float(rng.choice([0.25, 0.5, 0.75, 1.0, 1.0, 1.0]))
    fake = source * mask[..., None] + target.astype(np.float32) * (1 - mask[..., None])
    return np.clip(np.round(fake), 0, 255).astype(np.uint8), mask


def self_blend(img: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, part: str | None = None,
               crisp: bool = False, dense: np.ndarray | None = None, poisson: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(fake, blend mask): uint8 image blended with its altered self, and the per-pixel blend weight."""
    return _blend(_alter(img, rng, crisp), img, landmarks, rng, part, dense, poisson)


def _match_colour(source: np.ndarray, target: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Shift the source's per-channel mean and spread in Lab to the target's, both measured on the
    face box around the landmarks (the background would skew them)."""
    (x0, y0), (x1, y1) = np.clip(landmarks.min(0), 0, None).astype(int), landmarks.max(0).astype(int) + 1
    src, tgt = (cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32) for x in (source, target))
    s_box, t_box = src[y0:y1, x0:x1], tgt[y0:y1, x0:x1]
    out = (src - s_box.mean((0, 1))) / (s_box.std((0, 1)) + 1.0) * t_box.std((0, 1)) + t_box.mean((0, 1))
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB).astype(np.float32)


def swap_blend(img: np.ndarray, landmarks: np.ndarray, donor: np.ndarray, donor_landmarks: np.ndarray, rng: np.random.Generator,
               part: str | None = None, crisp: bool = False, dense: np.ndarray | None = None,
               poisson: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(fake, blend mask): `donor`'s face aligned onto `img` by its landmarks and blended in."""
    source = _aligned(donor, donor_landmarks, landmarks, img.shape[0], rng, crisp=crisp)
    if rng.random() < 0.6:
        source = _match_colour(source, img, landmarks)
    return _blend(source, img, landmarks, rng, part, dense, poisson)


def _aligned(donor: np.ndarray, donor_landmarks: np.ndarray, landmarks: np.ndarray, size: int, rng: np.random.Generator,
             nudge: np.ndarray | None = None, crisp: bool = False) -> np.ndarray:
    """The altered donor warped onto the target's landmarks, then by `nudge` (3 x 3) if given."""
    matrix, _ = cv2.estimateAffinePartial2D(donor_landmarks.astype(np.float32), landmarks.astype(np.float32))
    matrix = np.eye(3)[:2] if matrix is None else matrix
    if nudge is not None:
        matrix = (nudge @ np.vstack([matrix, [0, 0, 1]]))[:2]
    return cv2.warpAffine(_alter(donor, rng, crisp), matrix, (size, size), borderMode=cv2.BORDER_REFLECT)


def _hand_placed(centre: np.ndarray, eye_dist: float, rng: np.random.Generator) -> np.ndarray:
    """A small scale, turn and shift about a part's centre (3 x 3): how far a hand-placed part is off."""
    angle, scale = np.radians(rng.uniform(-6, 6)), rng.uniform(0.88, 1.14)
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    shift = rng.uniform(-0.05, 0.05, 2) * eye_dist
    rotate = np.array([[c, -s], [s, c]])
    return np.vstack([np.hstack([rotate, (centre - rotate @ centre + shift)[:, None]]), [0, 0, 1]])


def composite_blend(img: np.ndarray, landmarks: np.ndarray, donors: list[tuple[np.ndarray, np.ndarray]],
                    rng: np.random.Generator, crisp: bool = False, dense: np.ndarray | None = None,
                    poisson: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(fake, blend mask): one to four single parts, each from a random donor, hand-placed and blended in turn."""
    chosen = [p for p in _COMPOSITE_PARTS if rng.random() < 0.5] or [str(rng.choice(_COMPOSITE_PARTS))]
    eye_dist = _eye_distance(landmarks, img.shape[0])
    fake, union = img, np.zeros(img.shape[:2], np.float32)
    for part in chosen:
        donor, donor_landmarks = donors[int(rng.integers(len(donors)))]
        nudge = _hand_placed(_part_centre(landmarks, part), eye_dist, rng)
        source = _aligned(donor, donor_landmarks, landmarks, img.shape[0], rng, nudge, crisp)
        if rng.random() < 0.8:  # montage editors match colour as a rule
            source = _match_colour(source, img, landmarks)
        fake, mask = _blend(source, fake, landmarks, rng, part, dense, poisson)
        union = np.maximum(union, mask)
    return fake, union


def renoise(fake: np.ndarray, mask: np.ndarray, rng: np.random.Generator, kinds: tuple[str, ...] = NOISE_KINDS) -> np.ndarray:
    """`fake` with its blended region (weighted by `mask`) given another noise history, one of `kinds`:
    sensor-like grain, a JPEG of quality 30–80 on a grid shifted off the image's, or edge-preserving
    denoising."""
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "grain":
        other = fake + rng.normal(0, rng.uniform(2, 7), fake.shape)
    elif kind == "jpeg":
        dy, dx = (int(v) for v in rng.integers(1, 8, 2))
        ok, buf = cv2.imencode(".jpg", np.roll(fake, (dy, dx), axis=(0, 1)), [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 81))])
        other = np.roll(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED), (-dy, -dx), axis=(0, 1)) if ok else fake
    else:
        other = cv2.bilateralFilter(fake, 5, rng.uniform(15, 45), 3)
    out = other.astype(np.float32) * mask[..., None] + fake.astype(np.float32) * (1 - mask[..., None])
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
