"""core.reshare: the re-shared copies `python -m core.evaluate --reshare` scores instead of the originals."""
from __future__ import annotations

import csv
import json
import tempfile

import av
import numpy as np
import pytest
from skimage.data import astronaut

from core import evaluate
from core.media import decode_image, sniff_kind
from core.reshare import Reshare, parse_reshare, reshare_image, reshare_video
from test_evaluate import _png, _video, build_folder


def test_a_spec_is_read_and_checked():
    assert parse_reshare("scale=0.5, jpeg=60,crf=32") == Reshare(0.5, 60, 32)
    assert parse_reshare("jpeg=75") == Reshare(1.0, 75, 23)
    for bad, message in [("scale=2", "between"), ("jpeg=high", "needs a number"), ("blur=1", "unknown"), ("", "at least one")]:
        with pytest.raises(ValueError, match=message):
            parse_reshare(bad)


def test_a_photo_is_scaled_and_recompressed():
    rgb = astronaut()
    copy = reshare_image(_png(rgb), Reshare(0.5, 40))
    assert sniff_kind(copy[:16]) == "image" and copy[:3] == b"\xff\xd8\xff"  # a JPEG
    shrunk = decode_image(copy)
    assert shrunk.shape == (256, 256, 3)
    assert 1.0 < np.abs(shrunk.astype(int) - rgb[::2, ::2].astype(int)).mean() < 20  # the same picture, with losses
    assert len(reshare_image(_png(rgb), Reshare(0.5, 90))) > len(copy)
    lossless = decode_image(reshare_image(_png(rgb), Reshare()))  # neither scaled nor JPEG: pixels kept
    np.testing.assert_array_equal(lossless, rgb)
    turned = decode_image(reshare_image(_png(rgb[:, :300]), parse_reshare("turn=1")))  # no orientation tag to undo it
    np.testing.assert_array_equal(turned, np.rot90(rgb[:, :300]))


def test_a_video_is_scaled_to_even_sides_and_reencoded(tmp_path):
    _video(tmp_path / "clip.mp4", astronaut(), frames=12)
    sizes = {}
    for crf in (10, 45):
        out = reshare_video(tmp_path / "clip.mp4", tmp_path / f"crf{crf}.mp4", Reshare(scale=0.33, crf=crf))
        with av.open(str(out)) as container:
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(stream))
            assert (stream.codec_context.name, stream.width, stream.height, frames) == ("h264", 106, 106, 12)
        sizes[crf] = out.stat().st_size
    assert sizes[45] < sizes[10]


def test_evaluate_scores_the_reshared_copies_and_leaves_no_copy(tmp_path, monkeypatch):
    build_folder(tmp_path / "data")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    for name, extra in (("plain", []), ("shared", ["--reshare", "scale=0.8,jpeg=50,crf=35"])):
        evaluate.main([str(tmp_path / "data"), "--out", str(tmp_path / name), "--frames", "2", "--bootstrap", "20", *extra])
    report = json.loads((tmp_path / "shared" / "report.json").read_text())
    assert report["settings"]["reshare"] == "scale=0.8,jpeg=50,crf=35"
    assert "re-shared first" in (tmp_path / "shared" / "report.md").read_text()
    rows = {}
    for name in ("plain", "shared"):
        with (tmp_path / name / "items.csv").open(newline="") as fh:
            rows[name] = {r["path"]: r for r in csv.DictReader(fh)}
    assert rows["shared"].keys() == rows["plain"].keys()  # paired by path, as core.compare reads them
    scored = [p for p, r in rows["plain"].items() if r["score"] and rows["shared"][p]["score"]]
    assert "real/clips/talk.mp4" in scored and len(scored) >= 5
    assert any(rows["plain"][p]["score"] != rows["shared"][p]["score"] for p in scored)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_long_video_keeps_every_frame_and_its_timing(tmp_path):
    """The encoder once refused frames without timestamps after its first few hundred."""
    with av.open(str(tmp_path / "long.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(330):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.full((64, 64, 3), i % 250, np.uint8), format="rgb24")))
        container.mux(stream.encode())
    out = reshare_video(tmp_path / "long.mp4", tmp_path / "copy.mp4", Reshare(crf=30))
    with av.open(str(tmp_path / "long.mp4")) as before, av.open(str(out)) as after:
        assert sum(1 for _ in after.decode(video=0)) == 330
        assert abs(after.duration - before.duration) < 0.05 * before.duration
