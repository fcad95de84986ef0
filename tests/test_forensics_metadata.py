"""Image metadata: EXIF, XMP and PNG text written here with Pillow, flags, privacy, bad input."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import ExifTags, Image, PngImagePlugin

from core.forensics.metadata import image_metadata
from core.forensics.xmp import MAX_XMP_BYTES, parse_xmp

PIXELS = Image.fromarray(np.full((32, 32, 3), 120, np.uint8))
XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
    'xmp:CreatorTool="GIMP 2.10" xmp:CreateDate="2023-01-01T10:00:00+01:00">'
    '<Iptc4xmpExt:DigitalSourceType rdf:resource="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"/>'
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
)


def _save(fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    PIXELS.save(buffer, fmt, **params)
    return buffer.getvalue()


def _kinds(meta: dict) -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = {}
    for item in meta["flags"]:
        kinds.setdefault(item["kind"], set()).add(item["field"])
    return kinds


def _photoshop_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Model] = "EOS R5"
    exif[ExifTags.Base.Software] = "Adobe Photoshop 25.0 (Windows)"
    exif[ExifTags.Base.DateTime] = "2024:05:01 12:00:00"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2024:03:01 09:30:00"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", (12.0, 34.0, 56.78)
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", (65.0, 43.0, 21.09)
    return exif


def test_exif_camera_software_dates_and_gps_presence():
    meta = image_metadata(_save("JPEG", exif=_photoshop_exif()))
    assert meta["format"] == "JPEG"
    assert meta["exif"]["make"] == "Canon" and meta["exif"]["model"] == "EOS R5"
    assert meta["exif"]["datetime_original"] == "2024:03:01 09:30:00"
    assert meta["gps_present"] is True
    kinds = _kinds(meta)
    assert kinds["editor"] == {"EXIF Software"}
    assert kinds["dates"] == {"EXIF DateTimeOriginal / EXIF DateTime"}  # saved two months after capture
    assert "camera" not in kinds  # make and model are there


def test_gps_coordinates_never_leave_the_file():
    text = json.dumps(image_metadata(_save("JPEG", exif=_photoshop_exif())))
    assert "56.78" not in text and "21.09" not in text and "GPSLatitude" not in text


def test_png_parameters_chunk_is_a_generator_flag():
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "portrait of a man\nSteps: 30, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1")
    meta = image_metadata(_save("PNG", pnginfo=info))
    assert meta["text"]["parameters"].startswith("portrait of a man")
    generator = [f for f in meta["flags"] if f["kind"] == "generator"]
    assert [f["field"] for f in generator] == ["text chunk 'parameters'"]
    assert "AUTOMATIC1111" in generator[0]["meaning"]
    assert _kinds(meta)["camera"] == {"format"}  # a PNG without camera data is noted


def test_sd_settings_in_exif_user_comment():
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.UserComment] = b"UNICODE\x00" + "a cat\nSteps: 20, Sampler: Euler a, Seed: 5".encode("utf-16-be")
    meta = image_metadata(_save("JPEG", exif=exif))
    assert meta["exif"]["user_comment"].startswith("a cat")
    assert "EXIF UserComment" in _kinds(meta)["generator"]


def test_xmp_creator_tool_and_ai_source_type():
    meta = image_metadata(_save("JPEG", xmp=XMP.encode()))
    assert meta["xmp"]["creator_tool"] == "GIMP 2.10"
    assert meta["xmp"]["digital_source_type"].endswith("trainedAlgorithmicMedia")
    kinds = _kinds(meta)
    assert kinds["editor"] == {"XMP CreatorTool"}
    assert kinds["generator"] == {"XMP DigitalSourceType"}
    assert kinds["camera"] == {"EXIF Make / Model / DateTimeOriginal"}


def test_known_names_are_flagged_by_kind():
    for software, kind in [("Midjourney v6", "generator"), ("DALL·E 3", "generator"), ("FaceApp", "face_tool"),
                           ("GIMP 2.10", "editor"), ("Canon EOS firmware 1.2", None)]:
        exif = Image.Exif()
        exif[ExifTags.Base.Software] = software
        found = {f["kind"] for f in image_metadata(_save("JPEG", exif=exif))["flags"] if f["field"] == "EXIF Software"}
        assert found == ({kind} if kind else set()), software


def test_huge_xmp_is_not_parsed():
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP.replace("GIMP 2.10", "G" * (MAX_XMP_BYTES + 10)))
    meta = image_metadata(_save("PNG", pnginfo=info))
    assert meta["xmp"] == {}
    assert any("not parsed" in note for note in meta["notes"])


BOMB = '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><x>&b;</x>'


@pytest.mark.parametrize("packet", [('<?xml version="1.0"?>' + BOMB).encode(), ('<?xml version="1.0" encoding="UTF-16"?>' + BOMB).encode("utf-16"),
                                    BOMB.encode("utf-16-be"), ('<?xml version="1.0"?>\n<!DOCTYPE x>' + "<x>plain</x>").encode()],
                         ids=["utf-8", "utf-16 with BOM", "utf-16-be bare", "doctype without entities"])
def test_a_dtd_is_refused_in_any_encoding(packet):
    fields, notes = parse_xmp(packet)
    assert fields == {} and "refused" in notes[0]


def test_a_utf16_packet_without_a_dtd_is_read():
    fields, notes = parse_xmp('<?xml version="1.0" encoding="UTF-16"?><x a="1">text</x>'.encode("utf-16"))
    assert (fields, notes) == ({"x": ["text"], "a": ["1"]}, [])


@pytest.mark.parametrize("xmp", [b"<x:xmpmeta><unclosed>", b'<?xml version="1.0" encoding="x-nonexistent"?><a>hi</a>'],
                         ids=["unclosed", "unknown encoding"])
def test_malformed_xmp_gives_a_note(xmp):
    meta = image_metadata(_save("JPEG", xmp=xmp))
    assert meta["xmp"] == {}
    assert any("not well-formed" in note for note in meta["notes"])


def test_malformed_exif_gives_a_note_not_a_crash():
    jpeg = _save("JPEG")
    garbage = b"Exif\x00\x00MM\x00\x2a\xff\xff\xff\xf0" + bytes(range(40))
    segment = b"\xff\xe1" + (len(garbage) + 2).to_bytes(2, "big") + garbage
    meta = image_metadata(jpeg[:2] + segment + jpeg[2:])
    assert meta["format"] == "JPEG"
    assert meta["exif"] == {}
    assert meta["notes"]  # Pillow's complaint is passed on as a note
    json.dumps(meta)


def test_oversized_compressed_text_chunk_gives_a_note():
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "A" * (3 << 20), zip=True)  # over Pillow's decompression cap
    meta = image_metadata(_save("PNG", pnginfo=info))
    assert meta["format"] is None
    assert "could not be read" in meta["notes"][0]


def test_not_an_image_gives_a_note():
    meta = image_metadata(b"not an image at all")
    assert meta["format"] is None and meta["flags"] == []
    assert "could not be read" in meta["notes"][0]
