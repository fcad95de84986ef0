"""68-point landmarks for the cached crops, so blend masks can follow a face's real outline.

Five YuNet points only give ellipses and a hull guessed around them; real swaps and splices follow
the jaw, the brows and each part's own shape. `python -m core.train.dense --cache CACHE` runs
dlib's 68-point shape predictor (Debian `libdlib-data`, pip `dlib-bin`; training only) on every
cached crop, starting from a box placed on YuNet's five points, and writes `SOURCE.dense.npy`
beside `SOURCE.npz`. Where dlib's eyes, nose tip or mouth corners land more than half an eye
distance from YuNet's, the row is NaN and that crop keeps its five-point masks.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

PREDICTOR = Path("/usr/share/dlib/shape_predictor_68_face_landmarks.dat")
MAX_DISAGREEMENT = 0.5  # in eye distances: beyond it dlib has found something else
BOX_SCALE = 2.0  # dlib's box side in mean(eye distance, eye-to-mouth distance), measured on the cache


def _box(five: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the box dlib's predictor expects for this face."""
    eye_dist = np.linalg.norm(five[1] - five[0])
    eye_mouth = np.linalg.norm(five[3:].mean(0) - five[:2].mean(0))
    side = BOX_SCALE * (eye_dist + eye_mouth) / 2
    cx, cy = (five[:2].mean(0) + five[3:].mean(0)) / 2 - [0, 0.05 * side]
    return int(cx - side / 2), int(cy - side / 2), int(cx + side / 2), int(cy + side / 2)


def five_points(dense: np.ndarray) -> np.ndarray:
    """The 68 points reduced to YuNet's five: eye centres (image left first), nose tip, mouth corners."""
    return np.stack([dense[36:42].mean(0), dense[42:48].mean(0), dense[30], dense[48], dense[54]])


def dense_landmarks(crop: np.ndarray, five: np.ndarray, predict: Callable) -> np.ndarray:
    """(68, 2) float32 landmarks of the face in `crop`, from `predict(crop, box)`; NaN where they
    disagree with `five`."""
    dense = np.asarray(predict(crop, _box(five)), np.float32)
    eye_dist = float(np.linalg.norm(five[1] - five[0])) or 1.0
    if np.linalg.norm(five_points(dense) - five, axis=1).max() > MAX_DISAGREEMENT * eye_dist:
        dense[:] = np.nan
    return dense


def build(cache: Path, predictor_path: Path = PREDICTOR) -> None:
    try:
        import dlib
    except ImportError as exc:
        raise SystemExit("dlib is missing: pip install -r requirements-train.txt") from exc
    if not predictor_path.exists():
        raise SystemExit(f"{predictor_path} is missing: apt-get install libdlib-data, or give --predictor")
    predictor = dlib.shape_predictor(str(predictor_path))

    def predict(crop: np.ndarray, box: tuple[int, int, int, int]) -> list[tuple[int, int]]:
        return [(p.x, p.y) for p in predictor(np.ascontiguousarray(crop), dlib.rectangle(*box)).parts()]

    for source in sorted(cache.glob("*.npz")):
        target = source.with_suffix(".dense.npy")
        if target.exists():
            continue
        with np.load(source) as z:
            crops, fives = z["crops"], z["landmarks"]
        dense = np.stack([dense_landmarks(c, f, predict) for c, f in tqdm(zip(crops, fives), total=len(crops), desc=source.stem)])
        np.save(target, dense)
        print(f"{source.stem}: {np.isfinite(dense[:, 0, 0]).mean():.1%} of {len(dense)} crops with 68 points -> {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="crop cache of core.train.cache")
    parser.add_argument("--predictor", type=Path, default=PREDICTOR, help="dlib's shape_predictor_68_face_landmarks.dat")
    args = parser.parse_args()
    build(args.cache, args.predictor)


if __name__ == "__main__":
    main()
