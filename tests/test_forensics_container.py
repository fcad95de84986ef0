"""Video container facts on small MP4s written here with PyAV."""
from __future__ import annotations

import io
import json

import av
import numpy as np

from core.forensics.container import video_metadata

LATITUDE = "+12.3456+065.4321/"


def _mp4(tags: dict[str, str], audio_seconds: float = 0.0) -> bytes:
    """Two seconds of 64 × 64 x264 video at 10 fps, with container tags and optional silence."""
    buffer = io.BytesIO()
    # use_metadata_tags writes any key, as phones write their com.apple.quicktime.* tags
    with av.open(buffer, "w", format="mp4", options={"movflags": "use_metadata_tags"}) as container:
        container.metadata.update(tags)
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        audio = container.add_stream("aac", rate=16000) if audio_seconds else None
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 10, np.uint8), format="rgb24")
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if audio is not None:
            samples = av.AudioFrame.from_ndarray(np.zeros((1, int(16000 * audio_seconds)), np.float32), format="fltp", layout="mono")
            samples.sample_rate, samples.pts = 16000, 0
            container.mux(audio.encode(samples))
            container.mux(audio.encode())
    return buffer.getvalue()


def _fields(meta: dict, kind: str) -> set[str]:
    return {f["field"] for f in meta["flags"] if f["kind"] == kind}


def test_ffmpeg_written_file_shows_reencode_hints():
    meta = video_metadata(_mp4({"comment": "made with FaceFusion", "creation_time": "2024-01-01T00:00:00Z"}))
    assert meta["format"].startswith("mov,mp4")
    assert meta["tags"]["encoder"].startswith("Lavf")
    assert meta["encoder_signatures"] == ["x264"]
    assert meta["streams"][0]["codec"] == "h264" and meta["streams"][0]["handler"] == "VideoHandler"
    assert _fields(meta, "reencode") == {"container tag 'encoder'", "stream handler names", "bitstream"}
    assert _fields(meta, "face_tool") == {"container tag 'comment'"}
    assert _fields(meta, "camera") == {"make / model tags"}


def test_location_is_reported_as_present_only():
    meta = video_metadata(_mp4({"location": LATITUDE}))
    assert meta["location_present"] is True
    assert "12.3456" not in json.dumps(meta)


def test_phone_tags_are_read_and_clear_the_camera_flag():
    meta = video_metadata(_mp4({"com.apple.quicktime.make": "Apple", "com.apple.quicktime.model": "iPhone 15"}))
    assert meta["camera"] == {"make": "Apple", "model": "iPhone 15"}
    assert not _fields(meta, "camera")


def test_audio_much_shorter_than_video_is_flagged():
    meta = video_metadata(_mp4({}, audio_seconds=0.5))
    assert _fields(meta, "container") == {"stream durations"}


def test_zero_creation_time_is_flagged():
    meta = video_metadata(_mp4({"creation_time": "1970-01-01T00:00:00Z"}))
    assert "container creation_time" in _fields(meta, "dates")


def test_broken_container_gives_a_note():
    good = _mp4({})
    for data in (b"garbage", b"\x00\x00\x00\x18ftypisom" + bytes(100), good[: len(good) // 2]):
        meta = video_metadata(data)
        json.dumps(meta)
        assert meta["format"] is None and meta["flags"] == []
        assert "could not be read" in meta["notes"][0]
