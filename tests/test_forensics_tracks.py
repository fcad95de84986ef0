"""Face-track consistency on a synthetic video result: one steady face, one jumpy and swinging."""
from __future__ import annotations

import json

import pytest

from core.analyze import AnalysisResult, FaceResult, FrameResult, Verdict, assign_tracks
from core.forensics import forensic_report
from core.forensics.tracks import track_flags, track_summary


def _result() -> AnalysisResult:
    """Track 0 drifts 10 px a frame with a steady score; track 1 jumps 80 px and swings 0.1 ↔ 0.9;
    track 2 appears once."""
    frames = []
    for i in range(4):
        faces = [
            FaceResult((100.0 + 10 * i, 50.0, 100.0, 100.0), 0.9, False, {"fused": 0.30}, track=0),
            FaceResult((400.0 + 80 * (i % 2), 60.0, 50.0, 50.0), 0.8, False, {"fused": 0.9 if i % 2 else 0.1}, track=1),
        ]
        if i == 3:
            faces.append(FaceResult((10.0, 10.0, 8.0, 8.0), 0.7, True, None, track=2))
        frames.append(FrameResult(i * 10, i * 0.5, faces))
    verdict = Verdict("INCONCLUSIVE", 0.5, None, "blend", "test")
    return AnalysisResult("video", "0" * 64, {}, frames, verdict, {}, "test", False, {"real": 0.3, "fake": 0.7}, {})


def test_steady_track_has_small_jitter_and_no_notes():
    steady = track_summary(_result())[0]
    assert steady["frames"] == 4 and steady["judged"] == 4
    assert steady["centre_shift_mean"] == pytest.approx(0.1)  # 10 px on a 100 px face
    assert steady["size_change_mean"] == 0.0
    assert steady["score_mean"] == pytest.approx(0.3) and steady["score_std"] == 0.0
    assert (steady["first_time"], steady["last_time"]) == (0.0, 1.5)
    assert steady["notes"] == []


def test_jumping_swinging_track_is_noted_and_flagged():
    tracks = track_summary(_result())
    jumpy = tracks[1]
    assert jumpy["centre_shift_mean"] == pytest.approx(1.6)  # 80 px on a 50 px face
    assert jumpy["score_std"] == pytest.approx(0.4) and jumpy["score_max"] == pytest.approx(0.9)
    assert len(jumpy["notes"]) == 2
    flags = track_flags(tracks)
    assert [f["field"] for f in flags] == ["person 2", "person 2"]  # numbered from 1, as the pages do
    assert [f["value"] for f in flags] == ["the box moves 1.60 face widths between samples on average",
                                           "the score varies by ±0.40 (standard deviation)"]


def test_one_flag_per_finding_however_many_people_it_concerns():
    jumpy = {"track": 0, "frames": 3, "judged": 0, "centre_shift_mean": 0.9, "score_std": None}
    tracks = [{**jumpy, "track": i, "centre_shift_mean": 0.6 + i / 100} for i in range(11)]
    (only,) = track_flags(tracks)
    assert only["field"] == "persons 1, 2, 3, 4, 5, 6, 7, 8 and 3 more"
    assert only["value"] == "the box moves 0.70 face widths between samples on average (the most)"


def test_single_sighting_and_unjudged_face_give_empty_stats():
    lone = track_summary(_result())[2]
    assert lone["frames"] == 1 and lone["judged"] == 0
    assert lone["score_mean"] is None and lone["centre_shift_mean"] is None
    assert lone["notes"] == ["Seen in one sampled frame only: no consistency to measure."]


def test_result_object_and_its_dict_give_the_same_summary():
    result = _result()
    assert track_summary(result) == track_summary(json.loads(json.dumps(result.to_dict())))


def test_video_report_carries_tracks_and_their_flags():
    report = forensic_report(b"not a video", "video", _result())
    assert len(report["tracks"]) == 3
    assert {f["kind"] for f in report["flags"]} == {"track"}
    assert "could not be read" in report["metadata"]["notes"][0]
    json.dumps(report)


def _frames(*boxes_per_frame: list[tuple[float, float, float]]) -> list[FrameResult]:
    """Frames of square faces given as (x, y, width)."""
    return [FrameResult(i, i * 2.0, [FaceResult((x, y, w, w), 0.9, False, {"fused": 0.5}) for x, y, w in boxes])
            for i, boxes in enumerate(boxes_per_frame)]


def _tracks(frames: list[FrameResult]) -> list[list[int]]:
    assign_tracks(frames)
    return [[face.track for face in frame.faces] for frame in frames]


def test_a_lone_face_is_one_person_however_far_it_moves_between_samples():
    assert _tracks(_frames([(0, 0, 100)], [(600, 300, 110)], [(50, 40, 60)])) == [[0], [0], [0]]


def test_two_people_keep_their_tracks_when_listed_in_another_order():
    frames = _frames([(0, 0, 100), (500, 0, 100)], [(520, 10, 100), (20, 5, 100)], [(40, 0, 100), (540, 0, 100)])
    assert _tracks(frames) == [[0, 1], [1, 0], [0, 1]]


def test_a_face_missed_for_a_few_samples_continues_its_track():
    frames = _frames([(0, 0, 100), (500, 0, 100)], [(10, 0, 100)], [(20, 0, 100)], [(30, 0, 100), (510, 0, 100)])
    assert _tracks(frames) == [[0, 1], [0], [0], [0, 1]]


def test_beside_someone_else_a_far_or_resized_face_starts_a_new_track():
    frames = _frames([(0, 0, 100), (500, 0, 100)], [(0, 0, 100), (500, 300, 100)], [(0, 0, 100), (500, 300, 300)])
    assert _tracks(frames) == [[0, 1], [0, 2], [0, 3]]
