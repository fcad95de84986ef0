"""Image metadata: EXIF, XMP, PNG text chunks and JPEG comments, with flags for tell-tale fields.

Only facts are kept, never pixels; GPS is reported as present or absent, never as coordinates
(uploads are private, and a location is not needed to judge a face).
"""
from __future__ import annotations

import io
import re
import warnings

from PIL import ExifTags, Image

from core.forensics.flags import PARSE_ERRORS, clean, date_flags, flag, software_flags, source_type_flags
from core.forensics.xmp import xmp_fields

__all__ = ["image_metadata", "GENERATOR_TEXT_KEYS"]

# PNG text chunk keys that generator front-ends write, with who writes them.
GENERATOR_TEXT_KEYS = {
    "parameters": "Stable Diffusion web UIs (AUTOMATIC1111, Forge) store the prompt and sampler settings here",
    "prompt": "ComfyUI stores its node graph and prompt here",
    "workflow": "ComfyUI stores its workflow here",
    "invokeai_metadata": "InvokeAI stores its generation settings here",
    "sd-metadata": "InvokeAI stores its generation settings here",
    "dream": "older InvokeAI versions store the prompt here",
}
# The settings line those tools write, also found in JPEG/WebP EXIF UserComment.
_SD_SETTINGS = re.compile(r"Steps: \d+.*(Sampler|CFG scale|Seed):", re.IGNORECASE | re.DOTALL)
_XMP_TEXT_KEYS = ("XML:com.adobe.xmp", "xmp")
_TEXT_PREVIEW = 300

_EXIF_BASE = {"make": ExifTags.Base.Make, "model": ExifTags.Base.Model, "software": ExifTags.Base.Software,
              "datetime": ExifTags.Base.DateTime, "host_computer": ExifTags.Base.HostComputer}
_EXIF_SUB = {"datetime_original": ExifTags.Base.DateTimeOriginal, "datetime_digitized": ExifTags.Base.DateTimeDigitized,
             "lens": ExifTags.Base.LensModel, "user_comment": ExifTags.Base.UserComment}
_CAMERA_FORMATS = ("JPEG", "MPO", "HEIF", "TIFF")  # formats a camera or phone writes directly


def image_metadata(data: bytes) -> dict:
    """Format, EXIF, XMP, text chunks, GPS presence, flags and notes of an image file."""
    out: dict = {"format": None, "exif": {}, "xmp": {}, "text": {}, "gps_present": False, "flags": [], "notes": []}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            img = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, *PARSE_ERRORS) as exc:
            out["notes"].append(f"The image container could not be read, so no metadata is shown ({clean(exc)}).")
            return out
        out["format"] = img.format
        _read_exif(img, out)
        _read_text(img, out)
        _read_xmp(img, out)
    out["notes"] += [f"Metadata warning: {clean(w.message)}" for w in caught]
    out["flags"] = _flags(out)
    return out


def _read_exif(img: Image.Image, out: dict) -> None:
    try:
        exif = img.getexif()
        sub = exif.get_ifd(ExifTags.IFD.Exif)
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except PARSE_ERRORS as exc:
        out["notes"].append(f"EXIF block is malformed and was skipped ({clean(exc)}).")
        return
    fields = {name: exif.get(tag) for name, tag in _EXIF_BASE.items()}
    fields |= {name: sub.get(tag) for name, tag in _EXIF_SUB.items()}
    out["exif"] = {name: clean(_user_comment(v) if name == "user_comment" else v, _TEXT_PREVIEW)
                   for name, v in fields.items() if v not in (None, "", b"")}
    out["gps_present"] = any(k in gps for k in (ExifTags.GPS.GPSLatitude, ExifTags.GPS.GPSLongitude))


def _user_comment(value: object) -> object:
    """EXIF UserComment starts with an 8-byte charset code (ASCII, UNICODE, JIS or zeros)."""
    if isinstance(value, bytes) and len(value) >= 8:
        encoding = "utf-16-be" if value.startswith(b"UNICODE") else "utf-8"
        return value[8:].decode(encoding, "replace").strip("\x00 ")
    return value


def _read_text(img: Image.Image, out: dict) -> None:
    """PNG tEXt/iTXt/zTXt chunks before the pixel data, and JPEG COM comments; XMP is parsed
    separately. (`img.text` would decode every pixel to reach chunks after them.)"""
    chunks = {k: v for k, v in img.info.items() if isinstance(v, str)} if img.format == "PNG" else {}
    if "comment" in img.info:
        chunks["comment"] = img.info["comment"]
    out["text"] = {clean(k, 80): clean(v, _TEXT_PREVIEW) for k, v in chunks.items() if k not in _XMP_TEXT_KEYS}


def _read_xmp(img: Image.Image, out: dict) -> None:
    packet = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp")
    if not packet:
        return
    fields, notes = xmp_fields(packet.encode("utf-8", "replace") if isinstance(packet, str) else packet)
    out["xmp"] = fields
    out["notes"] += notes
    out["gps_present"] = out["gps_present"] or bool(fields.get("gps_present"))


def _flags(out: dict) -> list[dict]:
    exif, xmp, text = out["exif"], out["xmp"], out["text"]
    found: list[dict] = []
    software = [("EXIF Software", exif.get("software")), ("EXIF Make", exif.get("make")), ("XMP CreatorTool", xmp.get("creator_tool"))]
    software += [("XMP History softwareAgent", agent) for agent in xmp.get("history_agents", [])]
    software += [(f"text chunk '{key}'", value) for key, value in text.items()]
    for field, value in software:
        if value:
            found += software_flags(field, value)
    if xmp.get("digital_source_type"):
        found += source_type_flags("XMP DigitalSourceType", xmp["digital_source_type"])
    for key, value in text.items():
        if key.lower() in GENERATOR_TEXT_KEYS:
            found.append(flag("generator", f"text chunk '{key}'", value, f"{GENERATOR_TEXT_KEYS[key.lower()]}; "
                              "a photo from a camera never has it, but anyone can add or remove it."))
    if _SD_SETTINGS.search(exif.get("user_comment", "")):
        found.append(flag("generator", "EXIF UserComment", exif["user_comment"], "Holds a Stable Diffusion settings "
                          "line (Steps, Sampler, CFG scale, Seed), as generator front-ends write it."))
    found += _camera_flags(out)
    if exif.get("datetime_original"):
        found += date_flags(("EXIF DateTimeOriginal", exif["datetime_original"]), ("EXIF DateTime", exif.get("datetime")), 60)
        found += date_flags(("EXIF DateTimeOriginal", exif["datetime_original"]), ("XMP CreateDate", xmp.get("create_date")), 86400)
    return _unique(found)


def _camera_flags(out: dict) -> list[dict]:
    exif, xmp = out["exif"], out["xmp"]
    has_camera = any(exif.get(k) for k in ("make", "model", "datetime_original")) or any(xmp.get(k) for k in ("make", "model"))
    if out["format"] in _CAMERA_FORMATS and not has_camera:
        return [flag("camera", "EXIF Make / Model / DateTimeOriginal", "absent", "No camera make, model or capture time. "
                     "Usual for screenshots, social-media and messenger re-uploads and generated images; cameras and "
                     "phones write them. Absence alone proves nothing.")]
    if out["format"] == "PNG" and not has_camera:
        return [flag("camera", "format", "PNG without camera data", "Cameras and phones rarely save PNG; screenshots, "
                     "editors and image generators do. Proves nothing alone.")]
    return []


def _unique(found: list[dict]) -> list[dict]:
    """One flag per (kind, field, meaning): the same tool named twice in one field is one hint."""
    seen, kept = set(), []
    for item in found:
        key = (item["kind"], item["field"], item["meaning"])
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept
