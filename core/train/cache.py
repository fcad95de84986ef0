"""Detect and crop every training face once, with the app's own detector and crop policy.

`python -m core.train.cache --data ../shared/data --out ../cache` writes one `.npz` per source
with wide crops (CACHE_MARGIN around the face box) and the five landmarks in crop pixels, so
training can re-crop at the inference margin with jitter and build part-wise blend masks.
Exact duplicate files are dropped by sha256.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.faces import CROP_MARGIN, Face, FaceDetector, crop_box, crop_face
from core.media import MediaError, decode_image, sample_frames

CACHE_SIZE = 224  # the inference crop inside it is 224 * 1.3 / 1.6 = 182 px: a training --size above that is up-sampled
CACHE_MARGIN = 1.6
VIDEO_FRAMES_PER_SECOND = 8

SOURCES = {  # name: (folder under DATA, kind)
    "utkface": ("train/real/utkface", "image"),
    "nomask": ("train/real/nomask", "image"),
    "video": ("train/real/video", "video"),
    "gan_real": ("train/gan/real", "image"),
    "gan_fake": ("train/gan/fake", "image"),
}

_detector: FaceDetector | None = None


def _crop(rgb: np.ndarray, face: Face, size: int) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, side = crop_box(face, CACHE_MARGIN)
    landmarks = (face.landmarks - np.array([x0, y0])) * (size / side)
    return crop_face(rgb, face, size, CACHE_MARGIN), landmarks.astype(np.float32)


def _largest_face(rgb: np.ndarray, size: int = CACHE_SIZE) -> tuple[np.ndarray, np.ndarray] | None:
    global _detector
    _detector = _detector or FaceDetector()
    faces = [f for f in _detector.detect(rgb) if not f.too_small]
    return _crop(rgb, faces[0], size) if faces else None


def _image_job(path: Path, size: int) -> list:
    try:
        rgb = decode_image(path.read_bytes())
    except MediaError:
        return []
    found = _largest_face(rgb, size)
    return [(*found, path.name)] if found else []


def _video_job(path: Path, size: int) -> list:
    info_frames = []
    from core.media import probe_video

    info = probe_video(path)
    count = max(2, int(info.duration * VIDEO_FRAMES_PER_SECOND))
    for frame in sample_frames(path, count):
        found = _largest_face(frame.rgb, size)
        if found:
            info_frames.append((*found, path.parent.name + "/" + path.name))
    return info_frames


def _unique(paths: list[Path]) -> list[Path]:
    seen, kept = set(), []
    for path in paths:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            kept.append(path)
    return kept


def build(data: Path, out: Path, workers: int = 2, size: int = CACHE_SIZE) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, (folder, kind) in SOURCES.items():
        target = out / f"{name}.npz"
        if target.exists():
            continue
        suffixes = (".mp4", ".mov", ".avi", ".mkv", ".webm") if kind == "video" else (".jpg", ".jpeg", ".png", ".webp", ".bmp")
        paths = _unique(sorted(p for p in (data / folder).rglob("*") if p.suffix.lower() in suffixes))
        job = _video_job if kind == "video" else _image_job
        rows = []
        with Pool(workers) as pool:
            for found in tqdm(pool.imap(functools.partial(job, size=size), paths, chunksize=8 if kind == "image" else 1), total=len(paths), desc=name):
                rows.extend(found)
        if not rows:
            raise FileNotFoundError(f"{name}: no face found in {data / folder}; is --data the shared data folder (holding train/)?")
        crops, landmarks, groups = zip(*rows)
        np.savez(target, crops=np.stack(crops), landmarks=np.stack(landmarks), groups=np.array(groups))
        print(f"{name}: {len(rows)} faces from {len(paths)} files -> {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="shared data folder (holds train/)")
    parser.add_argument("--out", type=Path, required=True, help="cache folder, outside the repository")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=CACHE_SIZE,
                        help=f"side of the cached crops (default {CACHE_SIZE}); for training at --size S, at least S * {CACHE_MARGIN} / {CROP_MARGIN}")
    args = parser.parse_args()
    build(args.data, args.out, args.workers, args.size)


if __name__ == "__main__":
    main()
