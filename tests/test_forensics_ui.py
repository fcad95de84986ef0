"""The "Forensic context" sections on the analyze pages, run with Streamlit's AppTest."""
from __future__ import annotations

import io
from pathlib import Path

from PIL import ExifTags, Image
from PIL.PngImagePlugin import PngInfo
from streamlit.testing.v1 import AppTest

TIMEOUT = 120  # first run loads the detector
PAGES = Path(__file__).resolve().parent.parent / "pages"
SOFTWARE = "Adobe Photoshop 25.0 [link](http://example.invalid/x.png)"


def _photoshopped(rgb) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Software] = SOFTWARE
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def _upload(page: str, name: str, data: bytes, mime: str) -> AppTest:
    app = AppTest.from_file(str(PAGES / page), default_timeout=TIMEOUT)
    app.run()
    app.file_uploader[0].set_value((name, data, mime))
    app.run()
    assert not app.exception
    return app


def test_image_page_shows_flags_escaped_and_every_view(two_faces):
    app = _upload("analyze_image.py", "face.jpg", _photoshopped(two_faces), "image/jpeg")
    assert "Forensic context" in [h.value for h in app.subheader]
    markdown = "\n".join(m.value for m in app.markdown)
    assert "No Content Credentials" in markdown
    assert "**editor**" in markdown
    assert f"`{SOFTWARE}`" in markdown  # file text is shown in a code span: it never becomes a live link
    images_before = len(app.get("image"))
    for toggle in app.toggle:
        if toggle.key.startswith("forensic-view-"):
            toggle.set_value(True)
    app.run()
    assert not app.exception
    assert len(app.get("image")) == images_before + 3
    assert any("up-sampling" in c.value for c in app.caption)  # the spectrum's guidance is beside it


def test_video_page_shows_container_flags_and_tracks(two_face_video):
    app = _upload("analyze_video.py", "clip.mp4", two_face_video, "video/mp4")
    assert "Forensic context" in [h.value for h in app.subheader]
    markdown = "\n".join(m.value for m in app.markdown)
    assert "**reencode**" in markdown  # PyAV writes through FFmpeg's libavformat
    assert "Face tracks across sampled frames" in markdown


def test_a_metadata_value_cannot_break_out_of_its_code_span(two_faces):
    payload = "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1\n\n![](https://attacker.example/beacon.png)\n\n[open](https://attacker.example/x)"
    info = PngInfo()
    info.add_text("parameters", payload)
    buffer = io.BytesIO()
    Image.fromarray(two_faces).save(buffer, "PNG", pnginfo=info)
    app = _upload("analyze_image.py", "face.png", buffer.getvalue(), "image/png")
    (line,) = [m.value for m in app.markdown if "parameters" in m.value]
    shown = line.split("`")
    assert len(shown) == 3 and "attacker.example/beacon.png" in shown[1]  # all of it inside the one code span
    assert "\n\n" not in shown[1]


def test_values_stored_before_cleaning_are_shown_on_one_line_too():
    from core.ui.forensics import _code_span

    assert _code_span("Steps: 20\n\n![](https://x.example/b.png)\t`x`") == "`Steps: 20 ![](https://x.example/b.png) 'x'`"
