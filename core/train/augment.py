"""Augmentations applied identically to a real face and its pseudo-fake twin, so quality is never the cue."""
from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np

from core.faces import CROP_MARGIN

__all__ = ["degrade", "h264", "CODEC_CRF", "inference_crop", "tilted", "tight_frame", "glasses", "skin_smoothing", "generator_traces", "upsampling_chain", "native_chain", "colour_cast", "photo_look", "seen_small", "SMALL_SIDES"]


def degrade(img: np.ndarray, seed: int) -> np.ndarray:
    """Random down-scaling, blur, noise, JPEG 30–100 or codec-like blocking; the same seed gives
    the same degradation, so a pair shares it exactly."""
    rng = np.random.default_rng(seed)
    out = img
    size = img.shape[0]
    if rng.random() < 0.4:
        small = max(24, int(size * rng.uniform(0.25, 0.9)))
        down = cv2.resize(out, (small, small), interpolation=cv2.INTER_AREA)
        out = cv2.resize(down, (size, size), interpolation=[cv2.INTER_LINEAR, cv2.INTER_CUBIC][rng.integers(2)])
    if rng.random() < 0.25:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.4, 1.5))
    if rng.random() < 0.2:
        noise = rng.normal(0, rng.uniform(1, 6), out.shape)
        out = np.clip(out + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.15:  # codec-like blocking: coarse JPEG of a half-resolution copy
        half = cv2.resize(out, (size // 2, size // 2), interpolation=cv2.INTER_AREA)
        out = cv2.resize(_jpeg(half, int(rng.integers(15, 40))), (size, size))
    if rng.random() < 0.65:
        out = _jpeg(out, int(rng.integers(30, 101)))
    return out


CODEC_CRF = (26, 40)  # H.264 CRFs of re-shared video: platforms and messengers sit around 28-35


def h264(img: np.ndarray, crf: int, scale: float = 1.0) -> np.ndarray:
    """`img` (even sides) encoded as one H.264 intra frame by libx264 at `crf` and decoded again: the
    integer transform, deblocking and intra prediction of real re-encoded video, which `degrade`'s
    JPEG blocking only approximates. With `scale` below 1 it is encoded at that share of its size and
    enlarged back, as a re-shared clip's face is: encoded small by the platform, enlarged by the crop."""
    height, width = img.shape[:2]
    if scale < 1.0:
        small = [max(32, 2 * round(side * scale / 2)) for side in (width, height)]
        coded = h264(cv2.resize(img, small, interpolation=cv2.INTER_AREA), crf)
        return cv2.resize(coded, (width, height), interpolation=cv2.INTER_LINEAR)
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"crf": str(crf), "preset": "veryfast", "tune": "zerolatency"}
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
    frame.pts = 0
    decoder = av.CodecContext.create("h264", "r")
    decoded = [f for packet in [*encoder.encode(frame), *encoder.encode(None)] for f in decoder.decode(packet)]
    return decoded[-1].to_ndarray(format="rgb24") if decoded else img


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else img


def inference_crop(img: np.ndarray, cache_margin: float, size: int, rng: np.random.Generator, flip: bool, angle: float = 0.0) -> np.ndarray:
    """Re-crop a cached wide crop at the app's margin, with a little scale and shift jitter, turned
    `angle` degrees about the face's centre (a head tilted as in the photo)."""
    full = img.shape[0]
    side = full * CROP_MARGIN / cache_margin * rng.uniform(0.92, 1.12)
    cx, cy = full / 2 + rng.uniform(-0.04, 0.04, 2) * side
    cos, sin = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    # the face's centre to the crop's; written so that angle 0 gives the float32 matrix of earlier runs, bit for bit
    matrix = np.array([[cos * size / side, sin * size / side, size / 2 - (cx * cos + cy * sin) * size / side],
                       [-sin * size / side, cos * size / side, size / 2 - (cy * cos - cx * sin) * size / side]], np.float32)
    out = cv2.warpAffine(img, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return out[:, ::-1].copy() if flip else out


def tilted(img: np.ndarray, seed: int) -> np.ndarray:
    """The picture turned 8 to 18 degrees either way about its centre, as a head tilted in a real photo is.
    The corners it turns in are mirrored from the picture: replicated edges would streak there, a
    difference its upright original does not have."""
    rng = np.random.default_rng(seed)
    height, width = img.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), rng.uniform(8, 18) * rng.choice([-1, 1]), 1.0)
    return cv2.warpAffine(img, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)


def tight_frame(img: np.ndarray, cache_margin: float, rng: np.random.Generator) -> np.ndarray:
    """A photo cut close around the face, as face-crop data sets and profile pictures are: each
    side (80 %) ends near the face box (left and right from 15 % of the box's longest side inside
    it, as faces are narrower than tall, to 20 % outside; top and bottom from 5 % inside to 25 %
    outside); past it the edge pixels are replicated, as `crop_face` does past an image's edge."""
    full = img.shape[0]
    box = full / cache_margin  # the face box's longest side; the cached crop is centred on it
    room = (full - box) / 2
    ranges = [(-0.15, 0.2), (-0.05, 0.25)] * 2  # left, top, right, bottom
    reach = [rng.uniform(*r) * box if rng.random() < 0.8 else room for r in ranges]
    x0, y0 = (int(round(max(0.0, room - r))) for r in reach[:2])
    x1, y1 = (int(round(min(full, full - room + r))) for r in reach[2:])
    return cv2.copyMakeBorder(img[y0:y1, x0:x1], y0, full - y1, x0, full - x1, cv2.BORDER_REPLICATE)


def glasses(img: np.ndarray, landmarks: np.ndarray, seed: int) -> np.ndarray:
    """Spectacles drawn around both eyes (frames, bridge, temples, sometimes tinted lenses): drawn
    identically on a real face and its twin, so frame edges around the eyes, which look like the
    boundary of an eye blend, are never the cue. Tried on dev's one real-video false positive (a man
    with glasses): it stayed high, so this is an option, not in the recipe (docs/training-log.md)."""
    rng = np.random.default_rng(seed)
    out = img.copy()
    right, left = landmarks[0].astype(np.float64), landmarks[1].astype(np.float64)
    across = left - right
    dist = float(np.linalg.norm(across)) or img.shape[0] / 4
    unit = across / dist
    angle = float(np.degrees(np.arctan2(across[1], across[0])))
    axes = (int(dist * rng.uniform(0.36, 0.46)), int(dist * rng.uniform(0.25, 0.36)))
    colour = tuple(int(v) for v in (rng.integers(0, 90, 3) if rng.random() < 0.85 else rng.integers(0, 256, 3)))
    thick = int(rng.integers(1, max(2, int(dist / 12))))
    centres = [eye + np.array([0.0, 0.08 * dist]) for eye in (right, left)]
    if rng.random() < 0.3:  # tinted lenses
        tint = out.copy()
        for c in centres:
            cv2.ellipse(tint, _point(c), axes, angle, 0, 360, colour, -1, cv2.LINE_AA)
        out = cv2.addWeighted(out, 1 - (a := rng.uniform(0.1, 0.35)), tint, a, 0)
    for c in centres:
        cv2.ellipse(out, _point(c), axes, angle, 0, 360, colour, thick, cv2.LINE_AA)
    edge = unit * axes[0]
    cv2.line(out, _point(centres[0] + edge), _point(centres[1] - edge), colour, thick, cv2.LINE_AA)
    for c, side in ((centres[0], -1), (centres[1], 1)):
        cv2.line(out, _point(c + side * edge), _point(c + side * edge * 1.9), colour, thick, cv2.LINE_AA)
    return out


def skin_smoothing(img: np.ndarray, seed: int) -> np.ndarray:
    """A phone beauty filter: edge-preserving smoothing over skin-coloured pixels, applied alike to a
    real face and its twin. Such filters are common in selfie and phone video, and smoothing alone
    is a cue for the shipped blend branch (`python -m core.train.validate`: smoothed against untouched
    held-out reals, AUC 0.597), which reads a smooth face region as pasted in."""
    rng = np.random.default_rng(seed)
    out = img
    for _ in range(int(rng.integers(1, 3))):
        out = cv2.bilateralFilter(out, int(rng.integers(5, 10)), rng.uniform(20, 60), rng.uniform(4, 10))
    ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)
    skin = ((ycc[..., 1] > 133) & (ycc[..., 1] < 178) & (ycc[..., 2] > 75) & (ycc[..., 2] < 130)).astype(np.float32)
    skin = cv2.GaussianBlur(skin, (0, 0), 3)[..., None] * rng.uniform(0.6, 1.0)
    return np.clip(img * (1 - skin) + out * skin, 0, 255).astype(np.uint8)


def _point(xy: np.ndarray) -> tuple[int, int]:
    return int(round(xy[0])), int(round(xy[1]))


def generator_traces(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Simulated generator up-sampling traces on a real face: zero-insertion (transposed
    convolution) up-sampling, which leaves checkerboard spectral peaks, or a faint periodic grid."""
    size = img.shape[0]
    out = img.astype(np.float32)
    if rng.random() < 0.6:
        half = cv2.resize(out, (size // 2, size // 2), interpolation=cv2.INTER_AREA)
        up = np.zeros_like(out)
        up[::2, ::2] = half[: (size + 1) // 2, : (size + 1) // 2]
        kernel = np.outer([0.5, 1.0, 0.5], [0.5, 1.0, 0.5]).astype(np.float32) * rng.uniform(0.9, 1.1)
        out = cv2.filter2D(up, -1, kernel)
    else:
        period = float(rng.choice([2, 4, 8]))
        ys, xs = np.mgrid[0:size, 0:size]
        grid = np.cos(2 * np.pi * xs / period) * np.cos(2 * np.pi * ys / period)
        out = out + rng.uniform(1.5, 4.0) * grid[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


CHAIN_RMS = (1.0, 4.0)  # grey levels (RMS) of the up-sampling trace added to a face


def upsampling_chain(img: np.ndarray, rng: np.random.Generator, rms: tuple[float, float] = CHAIN_RMS) -> np.ndarray:
    """A generator decoder's up-sampling without a generator: the face's coarse content (1/2 to 1/8 of
    its side) brought back up by doublings, each nearest-neighbour or zero-insertion (transposed
    convolution) and then a random 3 x 3 filter, as GAN and diffusion (VAE) decoders up-sample. Only
    the difference from a plain interpolation of the same coarse content is added to the face, at a
    strength drawn from `rms`, so the fake keeps all its fine detail: a softer fake would teach "soft =
    generated" (as `generator_traces` does by halving the face), which small and video faces then trip."""
    size = img.shape[0]
    doublings = int(rng.integers(1, 4))
    face = img.astype(np.float32)
    coarse = cv2.resize(face, (max(4, round(size / 2**doublings)),) * 2, interpolation=cv2.INTER_AREA)
    chain = coarse
    for _ in range(doublings):
        chain = _doubled(chain, rng)
    chain = cv2.resize(chain, (size, size), interpolation=cv2.INTER_LINEAR)
    trace = chain - cv2.resize(coarse, (size, size), interpolation=cv2.INTER_LINEAR)
    # a few grey levels, as faint as a generator's own traces: strong enough to see, never the whole picture
    strength = rng.uniform(*rms) / max(float(np.sqrt(np.mean(trace**2))), 1e-6)
    return np.clip(face + strength * trace, 0, 255).astype(np.uint8)


NATIVE_SCALE = (1.5, 4.0)  # a generator's own resolution, as a multiple of the crop's
NATIVE_RMS = (3.0, 10.0)  # grey levels (RMS) of the trace there, before it is area-reduced with the face


def native_chain(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The up-sampling chain at a generator's own resolution: the face enlarged NATIVE_SCALE times,
    chained there, and only the trace area-reduced back onto the face, as a face generated at 512 to
    1024 px and shared smaller carries it. Trained on these traces alone, with no GAN face, two runs
    scored unseen StyleGAN2 faces (300 px copies of 1024 px ones) at AUC 0.77 and 0.61, against 0.63
    with the chain at the crop's own size: no clear gain (docs/training-log.md)."""
    size = img.shape[0]
    side = int(size * rng.uniform(*NATIVE_SCALE)) // 8 * 8
    big = cv2.resize(img, (side, side), interpolation=cv2.INTER_CUBIC)
    trace = upsampling_chain(big, rng, NATIVE_RMS).astype(np.float32) - big.astype(np.float32)
    return np.clip(img + cv2.resize(trace, (size, size), interpolation=cv2.INTER_AREA), 0, 255).astype(np.uint8)


def _doubled(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One up-sampling layer: nearest-neighbour or zero-insertion doubling, then a bilinear-like 3 x 3
    filter perturbed at random (a learned filter is never exactly balanced between the four phases)."""
    h, w = img.shape[:2]
    kernel = np.outer([0.5, 1.0, 0.5], [0.5, 1.0, 0.5]).astype(np.float32) * rng.uniform(0.7, 1.3, (3, 3)).astype(np.float32)
    if rng.random() < 0.5:
        return cv2.filter2D(cv2.resize(img, (2 * w, 2 * h), interpolation=cv2.INTER_NEAREST), -1, kernel / kernel.sum())
    up = np.zeros((2 * h, 2 * w, *img.shape[2:]), np.float32)
    up[::2, ::2] = img
    return cv2.filter2D(up, -1, kernel * (4.0 / kernel.sum()))


def colour_cast(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random colour rendering: grey (15 %), or a hue turn of up to ±24 degrees, a saturation scale
    and per-channel gains (white balance). For the synthetic branch, drawn for reals and fakes alike:
    the branch shipped until 2026-12-04 called a warm film scan (the astronaut photo) GAN at 0.998 and the same photo
    0.07 with its hue turned 40 degrees, so a generator's colour palette was a cue; other generators
    and colour-graded photos do not share it."""
    if rng.random() < 0.15:
        return np.repeat(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-17, 17)) % 256  # hue in 256 steps: ±17 is about ±24 degrees
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.6, 1.4), 0, 255)
    out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB_FULL).astype(np.float32)
    return np.clip(out * rng.uniform(0.85, 1.15, 3), 0, 255).astype(np.uint8)


def photo_look(img: np.ndarray, seed: int) -> np.ndarray:
    """A photo's edited look: a colour rendering (`colour_cast`), a tone curve (gamma and contrast)
    and, half the time, a vignette; applied alike to a real face and its twin. Graded, contrasty or
    vignetted real photos are common (stock and social photos), and the training reals are mostly
    plain: the look must not read as a manipulation."""
    rng = np.random.default_rng(seed)
    out = colour_cast(img, rng)
    x = np.linspace(0.0, 1.0, 256) ** rng.uniform(0.75, 1.35)
    curve = np.clip(0.5 + (x - 0.5) * rng.uniform(0.8, 1.35), 0.0, 1.0)
    out = cv2.LUT(out, (curve * 255).astype(np.uint8))
    if rng.random() < 0.5:
        height, width = out.shape[:2]
        y, x = np.ogrid[-1:1:height * 1j, -1:1:width * 1j]
        falloff = 1.0 - rng.uniform(0.1, 0.4) * (x * x + y * y) / 2
        out = np.clip(out * falloff[..., None], 0, 255).astype(np.uint8)
    return out


SMALL_SIDES = (52, 150)  # crop sides of faces from about 40 px (the smallest judged) to just under the input size


def seen_small(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The crop as the app sees a small face: area-averaged down to a side in SMALL_SIDES and enlarged
    back linearly (`crop_face`). Enlarging leaves smooth interpolation that the synthetic branch read
    as a generator's up-sampling: held-out real faces seen at 73 px scored higher than at full size
    in every case (docs/training-log.md)."""
    size = img.shape[0]
    side = int(rng.integers(SMALL_SIDES[0], min(SMALL_SIDES[1], size - 1) + 1))
    small = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
