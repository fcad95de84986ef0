"""Video container facts (PyAV): encoder tags, creation times, handler names, stream durations,
phone make and model, with hints of re-encoding. Location tags are reported as present, never
as coordinates."""
from __future__ import annotations

import io
import re

import av

from core.forensics.flags import PARSE_ERRORS, clean, date_flags, flag, software_flags

__all__ = ["video_metadata", "ENCODER_SIGNATURES"]

# Strings encoders leave in the bitstream itself (H.264/H.265 SEI): software encoding, not a phone chip.
ENCODER_SIGNATURES = {b"x264 - core": "x264", b"x265 (build": "x265"}
_SIGNATURE_SCAN_BYTES = 4 << 20  # the settings string sits in the first frames
_FFMPEG_HANDLERS = ("VideoHandler", "SoundHandler")
_CAMERA_TAGS = {
    "make": ("com.apple.quicktime.make", "make"),
    "model": ("com.apple.quicktime.model", "model"),
    "software": ("com.apple.quicktime.software", "software", "com.android.version"),
}
_LOCATION = re.compile(r"location|gps|xyz", re.IGNORECASE)
_SOFTWARE_FIELDS = ("encoder", "software", "comment", "title", "description", "artist", "com.apple.quicktime.software")
_ZERO_DATES = ("1904-01-01", "1970-01-01")  # MP4 and Unix epochs: the writer left the field at 0


def video_metadata(data: bytes) -> dict:
    """Container format, tags, per-stream facts, camera tags, flags and notes of a video file."""
    out: dict = {"format": None, "duration": None, "tags": {}, "streams": [], "camera": {}, "location_present": False,
                 "encoder_signatures": [], "flags": [], "notes": []}
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            out["format"] = container.format.name
            if out["format"].endswith("_pipe") or out["format"] == "image2":
                out["notes"].append("This is a still image, not a video container: analyze it as an image.")
                return out
            out["duration"] = round(container.duration / av.time_base, 3) if container.duration else None
            tags = dict(container.metadata)
            out["streams"] = [_stream(s) for s in container.streams if s.type in ("video", "audio")]
    except (av.error.FFmpegError, *PARSE_ERRORS) as exc:
        out["notes"].append(f"The video container could not be read, so no container facts are shown ({clean(exc)}).")
        return out
    out["location_present"] = any(_LOCATION.search(k) for k in tags)
    out["tags"] = {clean(k, 80): clean(v) for k, v in tags.items() if not _LOCATION.search(k)}
    out["camera"] = {name: value for name, keys in _CAMERA_TAGS.items() if (value := _first(tags, keys))}
    head = data[:_SIGNATURE_SCAN_BYTES]
    out["encoder_signatures"] = [name for sig, name in ENCODER_SIGNATURES.items() if sig in head]
    out["flags"] = _flags(out)
    return out


def _first(tags: dict, keys: tuple[str, ...]) -> str | None:
    return next((clean(tags[k]) for k in keys if tags.get(k)), None)


def _stream(stream: av.stream.Stream) -> dict:
    duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
    tags = {clean(k, 80): clean(v) for k, v in stream.metadata.items() if not _LOCATION.search(k)}
    codec = stream.codec_context.name if stream.codec_context else "unknown (no decoder)"
    return {"type": stream.type, "codec": codec, "duration": round(duration, 3) if duration else None,
            "handler": tags.get("handler_name"), "encoder": tags.get("encoder"), "creation_time": tags.get("creation_time"),
            "vendor": tags.get("vendor_id")}


def _flags(out: dict) -> list[dict]:
    tags, streams = out["tags"], out["streams"]
    found: list[dict] = []
    for field in _SOFTWARE_FIELDS:
        if tags.get(field):
            found += software_flags(f"container tag '{field}'", tags[field])
    found += _reencode_flags(out)
    found += _duration_flags(out)
    created = tags.get("creation_time")
    if created and created.startswith(_ZERO_DATES):
        found.append(flag("dates", "container creation_time", created, "The creation time is the format's zero date: "
                          "the writing tool did not set it (common for converters and editors, rare for phones)."))
    for stream in streams:
        if created and stream["creation_time"]:
            found += date_flags(("container creation_time", created), (f"{stream['type']} stream creation_time", stream["creation_time"]), 60)
    if not out["camera"]:
        found.append(flag("camera", "make / model tags", "absent", "No phone or camera make and model tags. Phones "
                          "usually write them; editors, converters, screen recorders and upload pipelines usually drop them."))
    return found


def _reencode_flags(out: dict) -> list[dict]:
    tags, streams = out["tags"], out["streams"]
    found = []
    if tags.get("encoder", "").startswith("Lavf"):
        found.append(flag("reencode", "container tag 'encoder'", tags["encoder"], "Written by FFmpeg's libavformat: "
                          "the file was converted, remuxed or re-encoded by FFmpeg or a tool built on it (editors, "
                          "converters, many upload pipelines), not saved straight by a phone or camera."))
    for stream in streams:
        if (stream["encoder"] or "").startswith("Lavc"):
            found.append(flag("reencode", f"{stream['type']} stream encoder", stream["encoder"], "Encoded by FFmpeg's "
                              "libavcodec: the pixels were re-encoded by software after capture."))
    handlers = [s["handler"] for s in streams if s["handler"] in _FFMPEG_HANDLERS]
    if handlers:
        found.append(flag("reencode", "stream handler names", ", ".join(handlers), "FFmpeg's default handler names: "
                          "the file was last written by FFmpeg or a tool built on it."))
    for name in out["encoder_signatures"]:
        found.append(flag("reencode", "bitstream", f"{name} settings string", f"Encoded by the {name} software encoder "
                          "(phones use hardware encoders that leave no such string): re-encoded or exported by software."))
    return found


def _duration_flags(out: dict) -> list[dict]:
    durations = {s["type"]: s["duration"] for s in out["streams"] if s["duration"]}
    if "video" in durations and "audio" in durations:
        video, audio = durations["video"], durations["audio"]
        if abs(video - audio) > max(0.5, 0.05 * max(video, audio)):
            return [flag("container", "stream durations", f"video {video:.2f} s / audio {audio:.2f} s", "Audio and "
                         "video tracks have different lengths: common after editing, cutting or joining clips; some "
                         "recorders and live-stream captures do it too.")]
    return []
