"""The seed-style reference pipeline: Haar, largest face, every 5th frame, mean of probabilities."""
from __future__ import annotations

import tempfile

import numpy as np
import pytest

from core.baseline import (
    FRAME_STRIDE, BaselineEngine, baseline_decode, baseline_image, baseline_video, largest_face, load_baseline,
)
from core.bench import compose, jpeg_bytes, make_clip
from core.media import MediaError


@pytest.fixture(scope="module", params=["resnet50", "ours"])
def seed(request) -> BaselineEngine:
    return load_baseline(classifier=request.param)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """1 s, 30 frames of 320 x 240 H.264 with one face."""
    return make_clip(tmp_path_factory.mktemp("clip") / "face.mp4", 1.0, 320, 240, keyint=15)


def test_unknown_classifier_names_the_choices():
    with pytest.raises(ValueError, match="resnet50"):
        load_baseline(classifier="vgg")


def test_input_sizes_follow_the_classifier(seed):
    assert seed.input_size == (224 if seed.classifier == "resnet50" else 160)


def test_image_with_a_face_gets_a_probability(seed):
    score = baseline_image(seed, baseline_decode(jpeg_bytes(compose(640, 480))))
    assert score is not None and 0.0 <= score <= 1.0


def test_image_without_a_face_gets_none(seed):
    assert baseline_image(seed, np.full((240, 320, 3), 128, np.uint8)) is None


def test_largest_face_wins(seed):
    canvas = np.full((480, 960, 3), 128, np.uint8)
    canvas[:240, :320], canvas[:, 320:] = compose(320, 240), compose(640, 480)  # faces of ~45 and ~90 px
    face = largest_face(seed, canvas)
    assert face is not None and face.box[0] >= 320


def test_undecodable_image_is_a_media_error():
    with pytest.raises(MediaError, match="decode"):
        baseline_decode(b"not an image at all")


def test_every_fifth_frame_is_scored_and_averaged(clip):
    calls: list[int] = []
    base = load_baseline(classifier="resnet50")

    def score(crop: np.ndarray) -> float:
        calls.append(crop.shape[0])
        return len(calls) / 10  # 0.1, 0.2, ...

    counting = BaselineEngine(base.classifier, base.cascade, base.input_size, score)
    result = baseline_video(counting, clip)
    assert len(calls) == 30 // FRAME_STRIDE
    assert calls == [224] * len(calls)
    assert result == pytest.approx(np.mean([(i + 1) / 10 for i in range(len(calls))]))


def test_video_bytes_use_a_temporary_file_that_is_removed(seed, clip, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    score = baseline_video(seed, clip.read_bytes())
    assert score is not None and 0.0 <= score <= 1.0
    assert list(tmp_path.iterdir()) == []


def test_garbage_video_is_a_media_error(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(MediaError, match="could not open"):
        baseline_video(load_baseline(), b"\x00" * 1000)
    assert list(tmp_path.iterdir()) == []
