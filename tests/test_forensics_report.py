"""The forensic report as it goes into a case record: JSON-safe, ordered, never raising on bad files."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import ExifTags, Image, PngImagePlugin

from core.forensics import LIMITS, VIEW_LIMITS, VIEW_NAMES, forensic_report, headline
from core.forensics.html import forensics_html


def _png_from_a_generator() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Software] = "Adobe Photoshop 25.0"
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a face\nSteps: 20, Sampler: Euler a")
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(buffer, "PNG", pnginfo=info, exif=exif)
    return buffer.getvalue()


def test_image_report_is_json_safe_and_most_telling_first():
    report = forensic_report(_png_from_a_generator(), "image")
    assert json.loads(json.dumps(report)) == report
    assert [f["kind"] for f in report["flags"]] == ["generator", "editor", "camera"]
    assert report["provenance"]["status"] == "none"
    assert set(report["views"]) == set(VIEW_NAMES) and report["limits"] == f"{LIMITS} {VIEW_LIMITS}"
    assert len(report["sha256"]) == 64 and report["tracks"] == []
    assert headline(report) == "No Content Credentials; 3 flags (1 generator, 1 editor, 1 camera)."


@pytest.mark.parametrize("kind", ["image", "video"])
@pytest.mark.parametrize("data", [b"", b"garbage", b"\x89PNG\r\n\x1a\n" + bytes(64)])
def test_bad_files_give_notes_never_exceptions(kind, data):
    report = forensic_report(data, kind)
    json.dumps(report)
    assert report["metadata"]["notes"]


def test_truncated_file_is_not_called_a_damaged_manifest():
    report = forensic_report(b"\xff\xd8\xff\xe0 truncated", "image")
    assert report["provenance"]["status"] == "unreadable"
    assert "could not be read" in report["metadata"]["notes"][0]


def test_unknown_kind_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="'image' or 'video'"):
        forensic_report(b"", "audio")


def test_html_fragment_escapes_file_text_and_lists_flags_and_tracks():
    exif = Image.Exif()
    exif[ExifTags.Base.Software] = "GIMP <script>alert(1)</script>"
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(buffer, "JPEG", exif=exif)
    report = forensic_report(buffer.getvalue(), "image")
    report["tracks"] = [{"track": 0, "frames": 2, "judged": 1, "first_time": 0.0, "last_time": 1.0, "centre_shift_mean": 0.1,
                         "score_mean": 0.2, "score_std": 0.0, "score_max": 0.2, "notes": []}]
    html = forensics_html(report)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert html.startswith("<div") and "<h4>Flags" in html and "<h4>Face tracks" in html
    assert LIMITS in html


def test_html_fragment_tolerates_a_partial_record():
    html = forensics_html({"provenance": {"status": "none"}, "flags": [{"kind": "editor", "field": "f", "value": "v", "meaning": "m"}]})
    assert "1 flag (1 editor)" in html and "<td>editor</td>" in html
