"""The fast video path (frames decoded in a background thread, faces scored in batches as they come)
returns what the plain path returns: same frames, same boxes, same scores."""
from __future__ import annotations

import threading

import pytest

from core.analyze import _crop_faces, _score_faces, analyze_video
from core.bench import make_clip
from core.media import MediaError, read_ahead, sample_frames, sample_times


def _plain(engine, clip, count: int):
    """The pipeline without read-ahead or batching while decoding: decode all, detect, score once."""
    rows = [_crop_faces(engine, frame, engine.faces.detect(frame.rgb)) for frame in sample_frames(clip, count)]
    _score_faces(engine, rows)
    return rows


@pytest.mark.parametrize("count, faces", [(12, 1), (5, 3)])  # 12 faces: one full batch and a rest
def test_video_results_match_the_plain_path(tmp_path, engine, count, faces):
    clip = make_clip(tmp_path / "c.mp4", 3.0, 640, 360, fps=30, faces=faces, keyint=30)
    fast = analyze_video(engine, clip, count).frames
    plain = _plain(engine, clip, count)
    assert [(f.index, f.time) for f in fast] == [(f.index, round(f.time, 3)) for f in plain]
    assert sum(1 for f in fast for face in f.faces if face.scores) >= count  # the comparison covers scores
    for a, b in zip(fast, plain):
        assert [(x.box, x.detection_score, x.scores) for x in a.faces] == [(y.box, y.detection_score, y.scores) for y in b.faces]


def test_sampled_times_stay_uniform_over_the_whole_clip(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", 3.0, 320, 240, fps=30, keyint=30)
    times = [f.time for f in sample_frames(clip, 7)]
    # the first frame at or after each target, so never more than one frame period after it
    assert all(0 <= t - target + 0.5 / 30 < 1 / 30 for t, target in zip(times, sample_times(3.0, 7), strict=True))


def test_read_ahead_keeps_order_and_raises_errors_in_the_caller():
    def items():
        yield from range(5)
        raise MediaError("broken at 5")

    seen = []
    with pytest.raises(MediaError, match="broken at 5"):
        for item in read_ahead(items(), depth=2):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_stopping_early_stops_the_thread_and_closes_the_source():
    closed = threading.Event()

    def items():
        try:
            yield from range(1000)
        finally:
            closed.set()

    reader = read_ahead(items(), depth=1)
    assert next(reader) == 0
    reader.close()
    assert closed.is_set()
    assert not any(t.name == "read-ahead" and t.is_alive() for t in threading.enumerate())


class ThreadKilled(BaseException):
    """Not an Exception: what an interpreter shutdown or a stray SystemExit looks like to the thread."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_thread_that_dies_ends_the_reader_with_an_error_instead_of_a_hang():
    def items():
        yield 0
        raise ThreadKilled

    reader = read_ahead(items(), depth=2)
    assert next(reader) == 0
    with pytest.raises(RuntimeError, match="stopped unexpectedly"):
        next(reader)
