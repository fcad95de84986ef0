"""Flags: tell-tale metadata fields, worded for a reader, and the text cleaning every parser shares.

A flag is a plain dict {"kind", "field", "value", "meaning"} so it goes into the case record as is.
Flags are hints to check, never findings: each `meaning` says what else produces the same field.
"""
from __future__ import annotations

import re
import struct
from datetime import datetime

__all__ = [
    "PARSE_ERRORS", "AI_SOURCE_TYPES", "clean", "flag", "software_flags", "source_type_flags",
    "parse_date", "date_flags",
]

# What third-party parsers raise on malformed metadata. Untrusted input must end in a note, not a
# crash, so the forensic readers catch these (and only these) around each parser call.
PARSE_ERRORS = (OSError, ValueError, SyntaxError, struct.error, KeyError, IndexError, TypeError, ZeroDivisionError, EOFError)

# IPTC digital source types that declare machine generation (used by C2PA actions and XMP).
AI_SOURCE_TYPES = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia", "compositeSynthetic")

_MEANING = {
    "generator": "Names an AI image or video generator. Strong hint of synthetic content, but a field can be "
    "copied, faked or left over from one generated layer in an otherwise real picture.",
    "face_tool": "Names a face-swap or face-editing tool. Such tools also do harmless retouching.",
    "editor": "The file was saved by an image or video editor. Editing (crop, exposure, export) is ordinary "
    "and says nothing about faces by itself.",
}

# (pattern, kind, label); matched case-insensitively against software, creator and text fields.
_SOFTWARE_HINTS = [
    (r"stable[\s_-]?diffusion|\bsdxl\b|automatic1111|comfyui|invokeai|novelai|\bfooocus\b", "generator", "Stable Diffusion family"),
    (r"midjourney", "generator", "Midjourney"),
    (r"\bdall[\s·.\-_?]?e\b", "generator", "DALL·E"),
    (r"\bopenai\b|chatgpt|\bgpt-4o\b|\bsora\b", "generator", "OpenAI"),
    (r"\bfirefly\b", "generator", "Adobe Firefly"),
    (r"\bimagen\b|\bgemini\b", "generator", "Google Imagen / Gemini"),
    (r"black forest labs|\bflux\.1\b", "generator", "FLUX"),
    (r"leonardo\.?ai|\bideogram\b|dreamstudio|stability\.?ai|\bcraiyon\b|\brunwayml\b|\bpika\b", "generator", "AI generator"),
    (r"deepfacelab|\bfaceswap\b|facefusion|\broop\b", "face_tool", "face-swap tool"),
    (r"faceapp|facetune|\breface\b|\bmeitu\b|beautyplus", "face_tool", "face-editing app"),
    (r"photoshop|\bgimp\b|lightroom|affinity photo|pixelmator|paint\.net|snapseed|\bcanva\b|\bkrita\b|photopea|picsart",
     "editor", "image editor"),
    (r"premiere|final cut|davinci resolve|after effects|capcut|imovie|\bkdenlive\b|shotcut", "editor", "video editor"),
]
_HINTS = [(re.compile(p, re.IGNORECASE), kind, label) for p, kind, label in _SOFTWARE_HINTS]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")  # line breaks and tabs too: a value is shown on one line


def clean(value: object, limit: int = 200) -> str:
    """Printable, one-line, length-capped text from any metadata value (bytes, tuples, odd encodings)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = _CONTROL.sub(" ", str(value)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def flag(kind: str, field: str, value: object, meaning: str) -> dict:
    return {"kind": kind, "field": field, "value": clean(value), "meaning": meaning}


def software_flags(field: str, value: object) -> list[dict]:
    """Flags for known generator, face-tool and editor names found in one metadata value."""
    text = clean(value, 4000)
    found = []
    for pattern, kind, label in _HINTS:
        if pattern.search(text):
            found.append(flag(kind, field, text, f"{label}: {_MEANING[kind]}"))
    return found


def source_type_flags(field: str, value: object) -> list[dict]:
    """A flag when an IPTC digital source type declares AI generation."""
    text = clean(value, 500)
    if any(text.endswith(t) or f"/{t}" in text for t in AI_SOURCE_TYPES):
        return [flag("generator", field, text, "The file's own metadata declares it as made or altered by a "
                     "generative AI model (IPTC digital source type). It can be removed, but is rarely added falsely.")]
    return []


def parse_date(value: object) -> datetime | None:
    """EXIF 'YYYY:MM:DD HH:MM:SS' or ISO 8601 (XMP, MP4) as a naive datetime; None if unreadable.
    Time zones are dropped: callers compare with a tolerance that covers them."""
    text = clean(value, 64).replace("Z", "")
    text = re.sub(r"[+-]\d\d:?\d\d$", "", text) if "T" in text else text
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text[:26], fmt)
        except ValueError:
            continue
    return None


def date_flags(captured: tuple[str, object], saved: tuple[str, object], tolerance_s: float) -> list[dict]:
    """Compare a capture date with a later save or creation date given as (field name, value)."""
    first, second = parse_date(captured[1]), parse_date(saved[1])
    if first is None or second is None:
        return []
    delta = (second - first).total_seconds()
    fields = f"{captured[0]} / {saved[0]}"
    value = f"{clean(captured[1])} / {clean(saved[1])}"
    if delta < -tolerance_s:
        return [flag("dates", fields, value, "The later date field is earlier than the capture date: the clocks "
                     "disagree, so one was set by hand or rewritten by software.")]
    if delta > tolerance_s:
        return [flag("dates", fields, value, f"Saved again {_span(delta)} after capture: consistent with editing "
                     "or export (also with ordinary copying tools that rewrite the date).")]
    return []


def _span(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"
