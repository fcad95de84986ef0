"""The shipped detector: loads, is trained and calibrated, and scores fixtures sensibly."""
import json

import cv2
import numpy as np
import pytest

from core.analyze import analyze_image
from core.faces import CROP_MARGIN
from core.model import WEIGHTS_DIR, load_detector
from core.train.cache import CACHE_MARGIN, _largest_face
from core.train.sbi import self_blend


def test_shipped_weights_are_trained_small_and_described():
    meta = json.loads((WEIGHTS_DIR / "detector.json").read_text())
    detector = load_detector()
    assert detector.trained, "weights/ must hold trained branches"
    assert 0 < meta["thresholds"]["real"] <= meta["thresholds"]["fake"] < 1
    for name, branch in meta["branches"].items():
        assert (WEIGHTS_DIR / branch["file"]).stat().st_size < 25 * 2**20
        assert branch["calib_a"] != 1.0 or branch["calib_b"] != 0.0, f"{name} is not calibrated"
    assert meta["training"] and meta["training_data"]


@pytest.mark.xfail(strict=True, reason="known failure (weights/MODEL_CARD.md): the synthetic branch scores this 1984 "
                   "film scan as generated; strict, so the suite flags the day a model fixes it")
def test_real_photo_is_not_called_fake(engine, astronaut):
    result = analyze_image(engine, astronaut)
    assert result.verdict.label != "FAKE"
    assert result.branch_scores["fused"] < engine.detector.thresholds["fake"]


def test_self_blended_faces_score_higher_than_their_sources(engine, astronaut):
    """The blend branch must rank pseudo-fakes of a face it never saw above the face itself."""
    wide, landmarks = _largest_face(astronaut)
    size = engine.detector.input_size
    centre = wide.shape[0] * (1 - CROP_MARGIN / CACHE_MARGIN) / 2
    side = wide.shape[0] * CROP_MARGIN / CACHE_MARGIN

    def model_crop(img):  # the inference crop (margin 1.3) out of the wider cached crop
        window = img[int(centre) : int(centre + side), int(centre) : int(centre + side)]
        return cv2.resize(window, (size, size), interpolation=cv2.INTER_AREA)

    rng = np.random.default_rng(0)
    fakes = [model_crop(self_blend(wide, landmarks, rng, part="face")[0]) for _ in range(8)]
    scores = engine.detector.score([model_crop(wide), *fakes])["blend"]
    assert np.mean(scores[1:] > scores[0]) >= 0.75, f"source {scores[0]:.3f}, fakes {np.round(scores[1:], 3)}"
