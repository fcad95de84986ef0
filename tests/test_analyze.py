"""core.analyze and core.explain: the pipeline on an image and a video, aggregation, verdicts, Grad-CAM."""
import dataclasses
import hashlib
import io
import json
import threading

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from core.analyze import (BLEND_VIDEO_NOTE, _fake_calls, FIRMNESS_FACES, PREVIEW_SIDE, RECROPS, SCREEN_NOTE, SMALL_FACE_PX, SYNTHETIC_VIDEO_NOTE, TRANSPARENT_NOTE, FaceResult, FrameResult, aggregate_frames, analyze_image,
                          analyze_image_bytes, analyze_video, branch_scores_of, confidence_text, decide, fragile_threshold,
                          frame_preview, score_text, video_score_text)
from core.explain import gradcam, overlay
from core.faces import CROP_MARGIN, crop_face
from core.model import WEIGHTS_DIR, BranchConfig, Detector, create_branch, to_tensor

LABELS = {"REAL", "FAKE", "INCONCLUSIVE", "NO FACE"}


def check_scores(scores: dict[str, float], branches) -> None:
    assert set(scores) == {*branches, "fused"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert scores["fused"] == max(scores[n] for n in branches)


def test_image_analysis(engine, astronaut_jpeg):
    result = analyze_image_bytes(engine, astronaut_jpeg)
    assert result.kind == "image" and result.sha256 == hashlib.sha256(astronaut_jpeg).hexdigest()
    (face,) = result.faces
    check_scores(face.scores, engine.detector.branches)
    assert face.crop.shape == (engine.detector.input_size,) * 2 + (3,)
    assert result.verdict.label in LABELS - {"NO FACE"} and result.verdict.family in engine.detector.branches
    assert result.model_trained is engine.detector.trained is True  # the untrained path: test_decide_never_presents_untrained_scores_as_findings
    assert result.verdict.confidence is not None
    assert {"decode_s", "detect_s", "model_s", "total_s"} <= set(result.timings)
    text = json.dumps(result.to_dict())
    assert "crop" not in text and result.sha256 in text


def test_a_photo_lying_on_its_side_is_scored_upright_and_says_so(engine, astronaut):
    upright = analyze_image(engine, astronaut)
    turned = analyze_image(engine, np.ascontiguousarray(np.rot90(astronaut, 1)))
    assert turned.verdict.score == upright.verdict.score
    assert any("a quarter turn to the right" in note for note in turned.notes)
    assert not any("turned upright" in note for note in upright.notes)


def test_a_turn_too_uncertain_to_take_is_said(engine, astronaut, monkeypatch):
    from core.faces import FaceDetector
    monkeypatch.setattr(FaceDetector, "detect_upright", lambda self, rgb: [
        dataclasses.replace(f, turn_hint=2) for f in self.detect(rgb)])
    assert any("a half turn would set them upright" in note for note in analyze_image(engine, astronaut).notes)


def test_a_picture_as_tall_as_a_phone_screen_says_what_a_screenshot_does(engine, astronaut):
    screen = np.full((1200, 560, 3), 30, np.uint8)  # 2.14 : 1, as phone screens
    screen[300:812, 24:536] = astronaut
    assert SCREEN_NOTE in analyze_image(engine, screen).notes
    assert SCREEN_NOTE not in analyze_image(engine, astronaut).notes


def _png_with_alpha(rgb: np.ndarray, alpha: np.ndarray | None) -> bytes:
    buf = io.BytesIO()
    (Image.fromarray(rgb) if alpha is None else Image.fromarray(np.dstack([rgb, alpha]))).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("alpha, noted", [(0, True), (100, True), (255, False), (None, False)])
def test_an_image_whose_face_is_transparent_says_its_scores_are_about_hidden_pixels(engine, astronaut, alpha, noted):
    """A PNG whose alpha hides the face (every viewer shows it blank) is analyzed on the colours under it: say so."""
    mask = None if alpha is None else np.full(astronaut.shape[:2], alpha, np.uint8)
    notes = analyze_image_bytes(engine, _png_with_alpha(astronaut, mask)).notes
    assert any(n == TRANSPARENT_NOTE.format(share=1.0, where="the faces") for n in notes) is noted


def test_a_cut_out_portrait_with_a_transparent_background_gets_no_hidden_pixels_note(engine, astronaut):
    opaque = analyze_image_bytes(engine, _png_with_alpha(astronaut, None))
    x, y, w, h = (int(v) for v in opaque.faces[0].box)
    alpha = np.zeros(astronaut.shape[:2], np.uint8)  # most of the picture transparent, the face visible
    alpha[y : y + h, x : x + w] = 255
    cut_out = analyze_image_bytes(engine, _png_with_alpha(astronaut, alpha))
    assert not any("transparent" in n for n in cut_out.notes) and cut_out.verdict.score == pytest.approx(opaque.verdict.score)


def test_no_face_image_gets_labelled_whole_image_scores(engine, no_face_png):
    result = analyze_image_bytes(engine, no_face_png)
    assert result.faces == [] and result.verdict.label == "NO FACE" and result.verdict.score is None
    check_scores(result.whole_image, engine.detector.branches)
    assert any("closer-cropped copy" in note for note in result.notes)


def test_video_analysis(engine, two_face_video):
    calls = []
    result = analyze_video(engine, two_face_video, 8, progress=lambda f, text: calls.append(f))
    assert result.kind == "video" and len(result.frames) == 8 == result.media["frames_sampled"]
    assert calls[-1] == pytest.approx(1.0)
    assert all(len(frame.faces) == 2 for frame in result.frames)
    tracks = [{face.track for face in frame.faces} for frame in result.frames]
    assert all(t == tracks[0] for t in tracks) and len(tracks[0]) == 2  # same two people throughout
    for face in result.faces:
        check_scores(face.scores, engine.detector.branches)
    times = [frame.time for frame in result.frames]
    assert times == sorted(times)
    assert result.verdict.label in LABELS - {"NO FACE"}
    check_scores(result.branch_scores, engine.detector.branches)


def frame(index: int, *faces: dict[str, float] | None) -> FrameResult:
    """A scored frame: one FaceResult per dict of branch scores (None: a face too small to judge)."""
    scored = [None if s is None else {**s, "fused": max(s.values())} for s in faces]
    return FrameResult(index, float(index), [FaceResult((0, 0, 10, 10), 0.9, s is None, scores=s) for s in scored])


def test_video_fuses_after_aggregating_each_branch():
    # branches take turns being high: each frame's max is 0.8, yet neither branch is high over the video
    frames = [frame(i, {"blend": 0.8 if i % 2 else 0.2, "synthetic": 0.2 if i % 2 else 0.8}) for i in range(10)]
    scores = branch_scores_of(frames, ("blend", "synthetic"), aggregate_frames)
    assert scores == {"blend": pytest.approx(0.5), "synthetic": pytest.approx(0.5), "fused": pytest.approx(0.5)}
    assert aggregate_frames(f.score for f in frames) == pytest.approx(0.8)  # what a per-frame fusion would give


def test_branch_scores_take_the_most_suspicious_face_and_skip_unjudged_frames():
    frames = [frame(0, {"blend": 0.1, "synthetic": 0.3}, {"blend": 0.7, "synthetic": 0.2}, None), frame(1, None), frame(2)]
    assert branch_scores_of(frames, ("blend", "synthetic"), lambda values: values[0]) == {"blend": 0.7, "synthetic": 0.3, "fused": 0.7}
    assert branch_scores_of([frame(0, None)], ("blend",), aggregate_frames) == {}


def test_aggregate_frames_is_a_trimmed_mean_of_frame_maxima():
    assert aggregate_frames([None, None]) is None
    assert aggregate_frames([0.4]) == pytest.approx(0.4)
    # one odd frame at each end is dropped: neither convicts nor clears the video
    assert aggregate_frames([0.2] * 8 + [1.0, 0.0]) == pytest.approx(0.2)
    assert aggregate_frames([0.2, None, 0.6]) == pytest.approx(0.4)


THRESHOLDS = {"real": 0.3, "fake": 0.7}


@pytest.mark.parametrize("score, label, confidence", [
    (0.9, "FAKE", 0.9), (0.7, "FAKE", 0.7), (0.1, "REAL", 0.9), (0.3, "REAL", 0.7), (0.5, "INCONCLUSIVE", 0.5),
    (0.6, "INCONCLUSIVE", 0.6),
])
def test_decide_with_trained_weights(score, label, confidence):
    verdict = decide(score, "blend", THRESHOLDS, trained=True)
    assert (verdict.label, verdict.family) == (label, "blend")
    assert verdict.confidence == pytest.approx(confidence)


def test_decide_never_presents_untrained_scores_as_findings():
    verdict = decide(0.99, "synthetic", THRESHOLDS, trained=False)
    assert verdict.label == "INCONCLUSIVE" and verdict.confidence is None and "untrained" in verdict.reason
    (said,) = score_text("image", verdict.label, verdict.score, verdict.confidence)
    assert "untrained" in said and "between" not in said  # 0.99 is not between the thresholds


def test_decide_without_face():
    assert decide(None, None, THRESHOLDS, trained=True).label == "NO FACE"


@pytest.fixture(scope="module")
def crops(engine, two_faces) -> list[np.ndarray]:
    """The two model-sized face crops of the two-face image."""
    return [face.crop for face in analyze_image(engine, two_faces).faces]


@pytest.fixture(scope="module")
def random_detector(crops) -> Detector:
    """A detector with seeded random weights, its batch-norm statistics set on the test crops and a
    head that votes "fake" for every feature, so Grad-CAM maps are not trivially zero (freshly
    initialised or untrained shipped weights can give empty maps)."""
    torch.manual_seed(0)
    branch = create_branch("mobilenet_v2")
    config = BranchConfig("blend", "mobilenet_v2", "unused.pt", 160)
    for module in branch.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 1.0  # running statistics = those of the one batch below
    branch.train()
    with torch.no_grad():
        branch(to_tensor(crops, config))
    branch.head[1].weight.data.abs_()
    return Detector({"thresholds": THRESHOLDS}, {"blend": branch}, {"blend": config})


def test_gradcam_shape_range_and_input_untouched(random_detector, crops):
    crop = crops[0]
    before = crop.copy()
    params = [p.detach().clone() for p in random_detector.branches["blend"].parameters()]
    heat = gradcam(random_detector, crop, "blend")
    assert heat.shape == crop.shape[:2] and heat.dtype == np.float32
    assert heat.min() >= 0.0 and heat.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(crop, before)
    for p, old in zip(random_detector.branches["blend"].parameters(), params):
        assert p.grad is None and torch.equal(p, old)
    blended = overlay(crop, heat)
    assert blended.shape == crop.shape and blended.dtype == np.uint8
    outside = np.zeros(crop.shape[:2], bool)
    outside[:20] = True  # a band past the photo's edge
    hatched = overlay(crop, heat, outside=outside)
    np.testing.assert_array_equal(hatched[20:], blended[20:])
    assert set(np.unique(hatched[:20])) == {90, 200}  # grey stripes only


def test_gradcam_is_thread_safe(random_detector, crops):
    """Two threads on the shared model get exactly the maps of sequential calls."""
    expected = [gradcam(random_detector, c, "blend") for c in crops]
    assert not np.array_equal(expected[0], expected[1])  # the two faces differ, so a mix-up would show
    got: dict[tuple[int, int], np.ndarray] = {}

    def work(worker: int) -> None:
        for rep in range(5):
            i = (worker + rep) % len(crops)
            got[(worker, rep)] = gradcam(random_detector, crops[i], "blend")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (worker, rep), heat in got.items():
        np.testing.assert_allclose(heat, expected[(worker + rep) % len(crops)], atol=1e-5)


def test_gradcam_on_every_shipped_branch(engine, crops):
    for name in engine.detector.branches:
        heat = gradcam(engine.detector, crops[0], name)
        assert heat.shape == crops[0].shape[:2] and heat.min() >= 0.0
        # a real map: normalized to its peak and not flat (an all-zero map would also stay in [0, 1])
        assert heat.max() == pytest.approx(1.0) and heat.std() > 0.05 and (heat > 0.5).mean() < 0.5


@pytest.mark.parametrize("probability, text", [
    (0.998, "over 99%"), (0.991, "over 99%"), (0.99, "99%"), (0.5, "50%"), (0.01, "1%"), (0.004, "under 1%"), (0.0, "under 1%"),
])
def test_confidence_is_never_shown_as_certainty(probability, text):
    assert confidence_text(probability) == text


@pytest.mark.parametrize("score, cautioned", [(0.9, True), (0.5, True), (0.05, False)])
def test_small_faces_not_called_real_carry_a_caution(engine, monkeypatch, score, cautioned):
    """Enlarged small faces score higher on the shipped detector, so a FAKE or INCONCLUSIVE on them says so."""
    from skimage import data

    names = [*engine.detector.branches, "fused"]
    monkeypatch.setattr(engine.detector, "score", lambda crops, batch_size=None: {n: np.full(len(crops), score, np.float32) for n in names})
    astronaut = data.astronaut()
    big = analyze_image(engine, astronaut)
    small = analyze_image(engine, cv2.resize(astronaut, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    assert min(big.faces[0].box[2:]) >= SMALL_FACE_PX > min(small.faces[0].box[2:])
    assert big.verdict.label == small.verdict.label != "NO FACE"
    small_notes = [n for n in small.notes if "small" in n]
    assert not [n for n in big.notes if "small" in n]
    assert bool(small_notes) is cautioned


@pytest.mark.parametrize("blend, synthetic, note", [(0.1, 0.9, SYNTHETIC_VIDEO_NOTE), (0.1, 0.5, SYNTHETIC_VIDEO_NOTE),
                                                   (0.9, 0.1, BLEND_VIDEO_NOTE), (0.5, 0.1, BLEND_VIDEO_NOTE), (0.05, 0.1, None)])
def test_video_verdicts_not_called_real_say_how_their_branch_runs_on_real_video(engine, monkeypatch, two_face_video, astronaut,
                                                                                blend, synthetic, note):
    """Both branches run high on real video (model card), so a FAKE or INCONCLUSIVE says which and how; images do not."""
    values = {"blend": blend, "synthetic": synthetic, "fused": max(blend, synthetic)}
    monkeypatch.setattr(engine.detector, "score", lambda crops, batch_size=None: {n: np.full(len(crops), v, np.float32) for n, v in values.items()})
    video = analyze_video(engine, two_face_video, 4)
    assert video.verdict.family == ("synthetic" if synthetic > blend else "blend")
    assert [n for n in video.notes if n in (SYNTHETIC_VIDEO_NOTE, BLEND_VIDEO_NOTE)] == ([note] if note else [])
    assert not {SYNTHETIC_VIDEO_NOTE, BLEND_VIDEO_NOTE} & set(analyze_image(engine, astronaut).notes)


@pytest.mark.parametrize("first, again, noted", [(0.9, 0.5, True), (0.9, 0.8, False), (0.1, 0.4, False), (0.1, 0.2, False)])
def test_a_fake_call_that_a_re_crop_moves_under_its_threshold_is_called_fragile(engine, monkeypatch, astronaut, first, again, noted):
    """The first scoring decides the verdict; the re-crops (core.analyze.RECROPS) only say how firm it is.
    Fragile REAL calls (0.1 -> 0.4) are counted by the evaluation but carry no note: two in three are fragile."""
    calls = []

    def score(crops, batch_size=None):
        calls.append(len(crops))
        value = first if len(calls) == 1 else again
        return {n: np.full(len(crops), value, np.float32) for n in [*engine.detector.branches, "fused"]}

    monkeypatch.setattr(engine.detector, "score", score)
    result = analyze_image(engine, astronaut)
    assert calls == [1, len(RECROPS)] and result.verdict.score == pytest.approx(first)
    assert result.faces[0].score_range == pytest.approx(sorted([first, again])) == result.score_range
    notes = [n for n in result.notes if n.startswith("Fragile call")]
    assert bool(notes) is noted
    if noted:
        assert f"FAKE threshold {engine.detector.thresholds['fake']:.3f}" in notes[0]
        shipped = {r["firm"]: r for r in json.loads((WEIGHTS_DIR / "eval" / "report.json").read_text())["firmness"] if r["call"] == "FAKE"}
        assert f"firm ones: {shipped[False]['wrong']} of {shipped[False]['items']} (" in notes[0]  # the dev record shipped with the weights
        assert f" against {shipped[True]['wrong']} of {shipped[True]['items']} (" in notes[0]
        assert _fake_calls(WEIGHTS_DIR, "other-weights") == {}  # an evaluation of other weights is not quoted
        monkeypatch.setattr(engine, "fake_calls", {})  # weights without their evaluation: the sentence without figures
        calls.clear()
        assert any(n.startswith("Fragile call") and "firm ones (evaluation report" in n for n in analyze_image(engine, astronaut).notes)


def test_fragile_threshold_applies_to_firm_labels_only():
    thresholds = {"real": 0.3, "fake": 0.65}
    assert fragile_threshold("FAKE", [0.6, 0.9], thresholds) == 0.65 and fragile_threshold("FAKE", [0.7, 0.9], thresholds) is None
    assert fragile_threshold("REAL", [0.1, 0.35], thresholds) == 0.3 and fragile_threshold("REAL", [0.1, 0.2], thresholds) is None
    assert fragile_threshold("INCONCLUSIVE", [0.1, 0.9], thresholds) is None and fragile_threshold("FAKE", None, thresholds) is None


def test_re_crops_are_model_sized_and_differ_from_the_crop(engine, astronaut):
    from core.analyze import _recrops

    face = engine.faces.detect(astronaut)[0]
    size = engine.detector.input_size
    crops = _recrops(astronaut, face, size)
    plain = crop_face(astronaut, face, size, CROP_MARGIN)
    assert len(crops) == len(RECROPS) and all(c.shape == (size, size, 3) and c.dtype == np.uint8 for c in crops)
    assert np.array_equal(crops[0], plain[:, ::-1]) and not any(np.array_equal(c, plain) for c in crops)


def test_video_frames_keep_a_small_preview_on_request_that_is_never_serialized(engine, two_face_video):
    result = analyze_video(engine, two_face_video, 4, previews=True)
    preview = cv2.imdecode(np.frombuffer(result.frames[0].preview, np.uint8), cv2.IMREAD_COLOR)
    assert preview.shape[1] == result.media["width"] and result.frames[0].preview_scale == 1.0  # small clip: full size
    assert "preview" not in json.dumps(result.to_dict())
    assert analyze_video(engine, two_face_video, 4).frames[0].preview is None  # batch, evaluation: no previews
    wide, scale = frame_preview(np.zeros((1080, 1920, 3), np.uint8))
    assert cv2.imdecode(np.frombuffer(wide, np.uint8), cv2.IMREAD_COLOR).shape == (360, PREVIEW_SIDE, 3) and scale == 1 / 3


@pytest.mark.parametrize("frames, says", [(1, "over the 1 frame with"), (9, "too few to leave out"),
                                          (32, "leaving out the 3 highest and 3 lowest")])
def test_the_video_score_is_explained_as_computed(frames, says):
    assert says in video_score_text(frames)


def test_only_the_most_suspicious_faces_are_re_cropped(engine, monkeypatch, astronaut):
    crowd = np.tile(astronaut, (3, 4, 1))  # twelve faces
    calls = []

    def score(crops, batch_size=None):
        calls.append(len(crops))
        values = np.linspace(0.1, 0.9, len(crops), dtype=np.float32)
        return {n: values for n in [*engine.detector.branches, "fused"]}

    monkeypatch.setattr(engine.detector, "score", score)
    result = analyze_image(engine, crowd)
    judged = [f for f in result.faces if f.scores]
    assert len(judged) > FIRMNESS_FACES and calls[1] == FIRMNESS_FACES * len(RECROPS)
    ranged = sorted((f for f in judged if f.score_range), key=lambda f: -f.scores["fused"])
    assert len(ranged) == FIRMNESS_FACES and ranged[-1].scores["fused"] >= max(f.scores["fused"] for f in judged if not f.score_range)
