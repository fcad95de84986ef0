"""The "Forensic context" sections on the analyze pages, run with Streamlit's AppTest."""
from __future__ import annotations

import io
from pathlib import Path

from PIL import ExifTags, Image
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
