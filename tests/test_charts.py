"""core.charts: figures drawn from hand-made results (no model), and the click-to-frame parser."""
import numpy as np
import pytest

from core.analyze import AnalysisResult, FaceResult, FrameResult, Verdict
from core.charts import (
    TOO_SMALL_COLOUR, ZONE_COLOURS, draw_faces, face_scores_figure, picked_frame, ranked_faces, timeline_figure, zone,
)

THRESHOLDS = {"real": 0.35, "fake": 0.65}


def face(fused: float | None, x: float = 10, size: float = 60) -> FaceResult:
    if fused is None:
        return FaceResult((x, 10, 20, 20), 0.9, True)
    scores = {"blend": fused, "synthetic": fused / 2, "fused": fused}
    return FaceResult((x, 10, size, size), 0.9, False, scores)


def result(frames: list[FrameResult]) -> AnalysisResult:
    return AnalysisResult(
        "video", "ab" * 32, {}, frames, Verdict("INCONCLUSIVE", 0.5, 0.5, "blend", "test"),
        {"blend": 0.5, "synthetic": 0.25, "fused": 0.5}, "test", True, THRESHOLDS, {},
    )


@pytest.mark.parametrize("score, expected", [(0.65, "FAKE"), (0.9, "FAKE"), (0.35, "REAL"), (0.0, "REAL"), (0.5, "INCONCLUSIVE")])
def test_zone_matches_inclusive_thresholds(score, expected):
    assert zone(score, THRESHOLDS) == expected


def test_ranked_faces_most_suspicious_first_then_too_small():
    frame = FrameResult(0, 0.0, [face(0.2), face(None), face(0.9), face(0.5)])
    assert [i for i, _ in ranked_faces(frame)] == [2, 3, 0, 1]


def test_face_scores_figure_bars_band_and_thresholds():
    frame = FrameResult(0, 0.0, [face(0.2), face(None), face(0.9)])
    fig = face_scores_figure(result([frame]), frame)
    bars = fig.data[0]
    assert list(bars.x) == ["Face 3", "Face 1"] and list(bars.y) == [0.9, 0.2]
    assert list(bars.marker.color) == [ZONE_COLOURS["FAKE"], ZONE_COLOURS["REAL"]]
    assert {trace.name for trace in fig.data[1:]} == {"blend branch", "synthetic branch"}
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert [(r.y0, r.y1) for r in rects] == [(0.35, 0.65)]
    lines = sorted(s.y0 for s in fig.layout.shapes if s.type == "line")
    assert lines == [0.35, 0.65]


def test_timeline_carries_positions_and_marks_frames_without_faces():
    frames = [FrameResult(i * 5, i * 0.5, [face(s)] if s is not None else []) for i, s in enumerate([0.3, None, 0.8])]
    fig = timeline_figure(result(frames), selected=2)
    main = fig.data[0]
    assert list(main.customdata) == [0, 1, 2] and list(main.x) == [0.0, 0.5, 1.0]
    assert list(main.y) == [0.3, None, 0.8] and main.connectgaps is False  # no score is not a score of 0
    (empty,) = [t for t in fig.data if (t.name or "").startswith("no face judged")]
    assert list(empty.customdata) == [1] and list(empty.y) == [0.0] and empty.marker.symbol == "x"
    zones = [t for t in fig.data if (t.name or "").startswith("frame score, ")]
    assert [t.marker.color for t in zones] == list(ZONE_COLOURS.values()) and not main.showlegend  # a key per zone
    lines = [t for t in fig.data if (t.name or "").endswith(" branch")]
    assert lines and all(t.hoverinfo == "skip" and t.customdata is None for t in lines)  # clicks and hovers go to the frame points
    assert main.text[2] == "t = 1.00 s: 0.800<br>blend 0.800<br>synthetic 0.400" and main.text[1].endswith("no face judged")
    assert any(s.type == "line" and s.x0 == 1.0 for s in fig.layout.shapes)  # the selected frame


@pytest.mark.parametrize("points, expected", [
    ([{"customdata": [3], "x": 1.5}], 3), ([{"customdata": 4}], 4), ([{"x": 1.0}, {"customdata": [2]}], 2),
    ([], None), ([{"x": 1.0}], None),
])
def test_picked_frame(points, expected):
    assert picked_frame(points) == expected


def test_draw_faces_boxes_every_face_on_a_copy():
    rgb = np.zeros((200, 300, 3), np.uint8)
    frame = FrameResult(0, 0.0, [face(0.9, x=20), face(None, x=200)])
    out = draw_faces(rgb, frame, THRESHOLDS)
    assert rgb.max() == 0 and out.shape == rgb.shape
    colours = {tuple(int(ZONE_COLOURS["FAKE"][i : i + 2], 16) for i in (1, 3, 5)),
               tuple(int(TOO_SMALL_COLOUR[i : i + 2], 16) for i in (1, 3, 5))}
    found = {tuple(p) for p in out.reshape(-1, 3)}
    assert colours <= found


def test_draw_faces_shrinks_large_images():
    out = draw_faces(np.zeros((1000, 4000, 3), np.uint8), FrameResult(0, 0.0, [face(0.1, size=400)]), THRESHOLDS, max_side=1600)
    assert out.shape == (400, 1600, 3)


def test_a_face_number_is_never_wider_than_its_box():
    """Many small faces side by side: each number stays over its own box instead of running into the next."""
    many = FrameResult(0, 0.0, [FaceResult((20.0, 60.0, 24.0, 24.0), 0.9, True)] * 12)  # labelled "12"
    blue = tuple(int(TOO_SMALL_COLOUR[i : i + 2], 16) for i in (1, 3, 5))
    out = draw_faces(np.zeros((120, 120, 3), np.uint8), many, THRESHOLDS)
    columns = np.where((out[:58] == blue).all(axis=2).any(axis=0))[0]  # the label's pixels, above the box
    assert columns.size and columns.min() >= 20 and columns.max() < 20 + 24 + 4
