"""Safe decoding of uploaded media: type sniffing, size / pixel / duration limits, frame sampling.

Everything is decoded from bytes in memory (PyAV reads a file-like object), so an upload never
touches the disk. Every failure becomes a `MediaError` whose message is meant for the user.
"""
from __future__ import annotations

import io
import logging
import math
import os
import queue
import struct
import threading
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, Iterator, TypeVar

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "MediaError", "Limits", "limits_from_env", "VideoInfo", "SampledFrame", "check_size", "sniff_kind", "decode_image",
    "hidden_pixels",
    "probe_video", "sample_frames", "sample_times", "container_name", "read_ahead", "IMAGE_TYPES", "VIDEO_TYPES",
]

log = logging.getLogger(__name__)

IMAGE_TYPES = ("jpg", "jpeg", "png", "webp", "bmp", "gif")  # GIF: a still one; an animated GIF is refused
VIDEO_TYPES = ("mp4", "mov", "avi", "webm", "mkv")


class MediaError(ValueError):
    """A file that cannot be analyzed; the message says why, in words for the user."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 200 * 1024 * 1024  # matches server.maxUploadSize in .streamlit/config.toml
    max_pixels: int = 50_000_000  # larger images are refused before decoding (decompression bombs)
    max_video_seconds: float = 30 * 60
    max_video_pixels: int = 3840 * 2160


MAX_MINUTES_VARIABLE = "DEEPFAKE_MAX_VIDEO_MINUTES"


def limits_from_env(environ=os.environ) -> Limits:
    """The default limits, with the longest video from DEEPFAKE_MAX_VIDEO_MINUTES when that is a
    positive number (anything else is logged and ignored, so a typo cannot stop the tools)."""
    text = environ.get(MAX_MINUTES_VARIABLE, "").strip()
    if not text:
        return Limits()
    try:
        minutes = float(text)
    except ValueError:
        minutes = math.nan
    if not (math.isfinite(minutes) and minutes > 0):
        log.warning("%s=%r is not a positive number of minutes; using %g", MAX_MINUTES_VARIABLE, text,
                    Limits.max_video_seconds / 60)
        return Limits()
    return Limits(max_video_seconds=minutes * 60)


DEFAULT_LIMITS = limits_from_env()  # what the CLI, Dask workers and evaluation use; the app re-reads it per run

_MAGIC = [
    (b"\xff\xd8\xff", "image"), (b"\x89PNG\r\n\x1a\n", "image"), (b"BM", "image"),
    (b"GIF8", "image"), (b"\x1a\x45\xdf\xa3", "video"),  # Matroska / WebM
]


def sniff_kind(head: bytes) -> str | None:
    """'image', 'video' or None from the first bytes of a file; never trusts the file name."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video"
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free"):
        return "video"
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return None


def check_size(n: int, limits: Limits) -> None:
    """MediaError when a file of `n` bytes is empty or over the size limit."""
    if n == 0:
        raise MediaError("The file is empty (0 bytes).")
    if n > limits.max_bytes:
        raise MediaError(f"The file is {n / 2**20:.0f} MB; the limit is {limits.max_bytes / 2**20:.0f} MB.")


# What Pillow raises on damaged files besides its own error (damaged EXIF tags, truncated GIF blocks)
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, EOFError,
                  struct.error)
_ORIENTATION = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
                5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                8: Image.Transpose.ROTATE_90}


def _upright(img: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says. Pillow's exif_transpose also rewrites the EXIF
    block and fails on a damaged tag elsewhere in it; the pixels need only the orientation, and with
    an EXIF block too damaged to give even that, they are used as stored."""
    try:
        ImageOps.exif_transpose(img, in_place=True)  # in place: no copy of an upright image
        return img
    except (*_DECODE_ERRORS, AttributeError):  # the pixels are loaded: only the EXIF block is damaged
        try:
            method = _ORIENTATION.get(img.getexif().get(0x0112))
        except (*_DECODE_ERRORS, AttributeError):
            log.info("EXIF block unreadable; the image is used as stored")
            return img
        return img.transpose(method) if method is not None else img


def _rgb(img: Image.Image) -> np.ndarray:
    """RGB uint8 pixels; 16-bit grey is scaled down (Pillow's convert would clip it to nearly all white)."""
    if img.mode.startswith("I"):  # "I;16*" and "I", as Pillow opens 16-bit grey PNGs
        grey = (np.asarray(img).astype(np.uint32) >> 8).clip(0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    return np.ascontiguousarray(np.asarray(img if img.mode == "RGB" else img.convert("RGB")))


def decode_image(data: bytes, limits: Limits = DEFAULT_LIMITS) -> np.ndarray:
    """RGB uint8 array, EXIF orientation applied; refuses bombs before decoding pixels."""
    check_size(len(data), limits)
    if sniff_kind(data[:16]) != "image":
        raise MediaError("This is not a JPEG, PNG, WebP, BMP or GIF image (the file content does not match).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > limits.max_pixels:
                raise MediaError(
                    f"The image is {w} × {h} pixels ({w * h / 1e6:.0f} MP); the limit is {limits.max_pixels / 1e6:.0f} MP. "
                    "Scale it down (faces keep their detail well below that) and upload it again."
                )
            # scoring an animation's first frame would pass a verdict on one frame of many; a multi-picture
            # JPEG (MPO: Ultra HDR gain maps, stereo and depth photos) is one photo plus helper images
            if getattr(img, "is_animated", False) and img.format != "MPO":
                raise MediaError(f"This is an animated image ({img.n_frames} frames). Convert it to a video (MP4) "
                                 "to analyze its frames; a still image is analyzed as is.")
            img.load()
            return _rgb(_upright(img))
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaError("The image is too large to open safely (too many pixels). Scale it down, for example to 8000 px on "
                         "the long side, and try again.") from None
    except _DECODE_ERRORS as exc:
        log.info("image not decoded: %s", exc)  # the decoder's own words help an operator, not a reader
        raise MediaError("The image could not be decoded; it may be truncated or corrupt. Try the original file, "
                         "or open and save it again in an image editor.") from None


def hidden_pixels(data: bytes) -> np.ndarray | None:
    """Where an image is at least half transparent (a boolean mask, upright as `decode_image` turns it):
    viewers show the background there, while the analysis reads the colour values stored under it.
    None for an image without transparency; call after `decode_image` accepted the bytes (its size
    checks stand)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if "A" not in img.getbands() and "transparency" not in img.info:
                return None
            return np.asarray(_upright(img).convert("RGBA"))[..., 3] < 128
    except _DECODE_ERRORS:
        return None


@dataclass(frozen=True)
class VideoInfo:
    duration: float  # seconds
    fps: float
    width: int
    height: int
    codec: str
    frame_count: int  # estimated from duration and fps when the container does not say
    container: str
    rotation: int = 0  # degrees the stored frames are turned on display (phones film portrait this way); width and height as shown


@dataclass(frozen=True)
class SampledFrame:
    index: int  # frame number (estimated from the timestamp)
    time: float  # seconds
    rgb: np.ndarray


Source = bytes | str | Path


def _open(source: Source) -> av.container.InputContainer:
    target: str | BinaryIO = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        return av.open(target, mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        log.info("av.open failed: %s", exc)  # FFmpeg's wording helps a developer, not the user
        raise MediaError(f"The video could not be opened: the file may be damaged or in a format this tool does not read. {_CONVERT}") from None


_CONVERT = "Converting it to an H.264 MP4 usually helps, for example: ffmpeg -i input -c:v libx264 output.mp4"


def _head(source: Source, size: int = 64) -> bytes:
    if isinstance(source, bytes):
        return source[:size]
    with open(source, "rb") as fh:
        return fh.read(size)


def container_name(head: bytes) -> str | None:
    """One container name from a file's first bytes (FFmpeg only says "mov,mp4,m4a,3gp,3g2,mj2")."""
    if sniff_kind(head) != "video":
        return None
    if head[:4] == b"RIFF":
        return "avi"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm" if b"webm" in head else "mkv"  # the EBML header names its DocType
    if head[4:8] == b"ftyp" and head[8:12] == b"qt  ":
        return "mov"
    return "mp4"


def _info(container: av.container.InputContainer, head: bytes = b"") -> VideoInfo:
    if not container.streams.video:
        raise MediaError("The file has no video stream.")
    stream = container.streams.video[0]
    fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
    if stream.duration is not None and stream.time_base is not None:
        duration, frames = float(stream.duration * stream.time_base), int(stream.frames or 0)
    else:  # Matroska / WebM: the container's duration counts a longer audio track, or is missing when streamed
        duration, frames = _packet_span(container, stream)
    frames = frames or round(duration * fps)
    ctx = stream.codec_context
    if ctx is None:  # FFmpeg knows no decoder for this stream's codec
        raise MediaError(f"The video's codec is not one this tool can decode. {_CONVERT}")
    name = container_name(head) or container.format.name.split(",")[0]
    return VideoInfo(duration, fps, int(ctx.width or 0), int(ctx.height or 0), ctx.name or "unknown", frames, name)


def _packet_span(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> tuple[float, int]:
    """The video stream's own duration and frame count, from its packets' timestamps (demuxed, not
    decoded: a fraction of decoding's cost)."""
    first, end, count = None, None, 0
    try:
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            count += 1
            first = packet.pts if first is None else min(first, packet.pts)
            end = max(end or packet.pts, packet.pts + (packet.duration or 0))
    except av.error.FFmpegError as exc:  # a damaged tail: the span up to it
        log.warning("reading the video's packets stopped: %s", exc)
    if first is None or stream.time_base is None:
        return 0.0, 0
    return float((end - first) * stream.time_base), count


def _first_frame(container: av.container.InputContainer) -> av.VideoFrame | None:
    """The first frame that decodes, from the start (a duration read from the packets has demuxed to
    the end); damaged packets are passed over as `_Reader` does. None when nothing decodes."""
    reader = _Reader(container, container.streams.video[0], 0.0)
    reader.wanted = float("-inf")  # no frame is skipped
    try:
        return next(reader.seek_start(), None)
    except av.error.FFmpegError:  # sampling reports an undecodable video
        return None


def _upright_size(container: av.container.InputContainer, info: VideoInfo) -> VideoInfo:
    """Width and height as the video is shown, and its rotation, which PyAV gives only on decoded
    frames (the display matrix phones write); read from the first frame, after the size checks."""
    frame = _first_frame(container)
    rotation = round(frame.rotation / 90) % 4 * 90 if frame is not None else 0
    if rotation % 180:
        return replace(info, rotation=rotation, width=info.height, height=info.width)
    return replace(info, rotation=rotation)


def probe_video(source: Source, limits: Limits = DEFAULT_LIMITS) -> VideoInfo:
    """Media facts, checked against the limits."""
    if isinstance(source, bytes):
        check_size(len(source), limits)
        if sniff_kind(source[:16]) != "video":
            raise MediaError("This is not an MP4, MOV, AVI, WebM or MKV video (the file content does not match).")
    with _open(source) as container:
        info = _info(container, _head(source))
        _check_video(info, limits)
        return _upright_size(container, info)


def _check_video(info: VideoInfo, limits: Limits) -> None:
    if info.width * info.height > limits.max_video_pixels:
        raise MediaError(f"The video is {info.width} × {info.height}; the limit is 4K (3840 × 2160).")
    if info.duration > limits.max_video_seconds:
        raise MediaError(
            f"The video lasts {_duration(info.duration)}; the limit is {_duration(limits.max_video_seconds)}. Trim it first."
        )
    if info.frame_count < 2 or info.duration <= 0:
        raise MediaError("The video has fewer than two frames: save that frame as an image (a video player or ffmpeg can) and analyze the image.")


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def sample_times(duration: float, count: int) -> list[float]:
    """`count` timestamps at the centres of equal slices of the whole duration."""
    count = max(1, count)
    return [duration * (i + 0.5) / count for i in range(count)]


def sample_frames(source: Source, count: int, limits: Limits = DEFAULT_LIMITS,
                  info: VideoInfo | None = None) -> Iterator[SampledFrame]:
    """The first frame at or after each of `count` uniform timestamps (`sample_times`; half a frame
    of slack), streaming, each turned upright. Between targets the decoder skips frames nothing
    depends on, and it seeks only when the keyframe before the next target is likely past the current
    position. `info`, from `probe_video` of the same source, spares reading the facts again (for
    Matroska, a pass over all its packets)."""
    with _open(source) as container:
        if info is None:
            info = _info(container, _head(source))
            _check_video(info, limits)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threads: H.264 from phones and x264 has one slice per frame
        base = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        try:
            # never more timestamps than frames: extra ones would only repeat frames
            times = sample_times(info.duration, min(count, info.frame_count))
            yield from _decode_at(_Reader(container, stream, base), info, times, limits.max_video_pixels)
        except av.error.FFmpegError as exc:
            log.warning("decoding the video failed: %s", exc)
            raise MediaError(f"The video could not be decoded: its codec may be unsupported or the file damaged. {_CONVERT}") from None


class _Reader:
    """Decoded frames from the current read position. A packet shown before `wanted` (in seconds)
    is decoded with non-reference frames skipped: such a frame is never returned and no other frame
    depends on it. The choice is made per packet, by its timestamp, so it is exact with any B-frame
    order and any number of decoder threads."""

    def __init__(self, container: av.container.InputContainer, stream: av.video.stream.VideoStream, base: float) -> None:
        self.container, self.stream, self.base = container, stream, base
        self.time_base = float(stream.time_base)
        self.wanted = 0.0

    def seek_start(self) -> Iterator[av.VideoFrame]:
        """Frames from the start of the file."""
        self.container.seek(0)
        return self.frames()

    def seek(self, at: float) -> Iterator[av.VideoFrame]:
        """Frames from the keyframe at or before `at` seconds (the decoder is flushed)."""
        self.container.seek(int((self.base + at) / self.time_base), stream=self.stream, backward=True, any_frame=False)
        return self.frames()

    def frames(self) -> Iterator[av.VideoFrame]:
        ctx = self.stream.codec_context
        for packet in self.container.demux(self.stream):
            early = packet.pts is not None and packet.pts * self.time_base - self.base < self.wanted
            ctx.skip_frame = "NONREF" if early else "DEFAULT"
            try:
                decoded = packet.decode()
            except av.error.InvalidDataError:  # a damaged packet: skipped, as players conceal it
                log.warning("skipped a damaged packet of the video")
                continue
            yield from decoded

    def keyframe_before(self, at: float) -> float | None:
        """Time of the indexed keyframe at or before `at` (its decode time, which is never later than
        its display time); None when the container has no index (some Matroska / WebM files)."""
        entries = self.stream.index_entries
        if not len(entries):
            return None
        i = entries.search_timestamp(int((self.base + at) / self.time_base), backward=True)
        return entries[i].timestamp * self.time_base - self.base if i >= 0 else float("-inf")

    def time(self, frame: av.VideoFrame, previous: float, fps: float) -> float:
        return float(frame.pts * self.time_base) - self.base if frame.pts is not None else previous + 1 / fps


class _GopTracker:
    """Without an index: learns the longest keyframe interval seen while decoding, so seeking happens
    only when the keyframe before the next target is likely past the current position (a
    one-keyframe video is then never re-decoded from its start)."""

    def __init__(self, guess: float = 2.0) -> None:
        self.guess = guess  # seconds, used until two consecutive keyframes have been seen
        self.longest: float | None = None
        self.last_key: float | None = None

    def keyframe(self, at: float) -> None:
        if self.last_key is not None and at > self.last_key:
            self.longest = max(self.longest or 0.0, at - self.last_key)
        self.last_key = at

    def seeked(self) -> None:
        self.last_key = None  # the next keyframe does not follow the last one

    def length(self, position: float) -> float:
        still_open = position - self.last_key if self.last_key is not None else 0.0
        return max(self.guess if self.longest is None else self.longest, still_open)


def _keyframe_ahead(reader: _Reader, gop: _GopTracker, target: float, position: float) -> bool:
    """Whether the keyframe before `target` lies after `position`: then seeking to it decodes less
    than going on from here (phone video has a keyframe every 1-2 s, x264's default is 250 frames)."""
    key = reader.keyframe_before(target)
    if key is None:
        return target - position > gop.length(position)
    return key > position


def _decode_at(reader: _Reader, info: VideoInfo, times: list[float], max_pixels: int) -> Iterator[SampledFrame]:
    """The first frame at or after each target, turned upright and converted to RGB; no other frame is
    converted. Each frame is given once: targets inside a pause of a variable-rate video, or past the
    stream's end, would otherwise give one frame several times its weight. Frame sizes are checked
    again: a stream may change resolution after the header the probe read."""
    position, given = -1.0, None  # times of the last decoded and the last given frame
    frames = None
    gop = _GopTracker()
    for target in times:
        reader.wanted = target - 0.5 / info.fps
        if position >= reader.wanted:
            continue  # no frame between the one given for an earlier target and this one
        if frames is None or _keyframe_ahead(reader, gop, target, position):
            frames = reader.seek(target)
            gop.seeked()
        frame = None
        for frame in frames:
            position = reader.time(frame, position, info.fps)
            if frame.key_frame:
                gop.keyframe(position)
            if position >= reader.wanted:
                break
        else:  # the stream ended before this target: its last frame stands for the rest, once
            if frame is not None and position != given:
                yield _sampled(frame, position, info.fps, max_pixels)
            return
        given = position
        yield _sampled(frame, position, info.fps, max_pixels)


def _sampled(frame: av.VideoFrame, position: float, fps: float, max_pixels: int) -> SampledFrame:
    if frame.width * frame.height > max_pixels:
        raise MediaError(f"A frame of the video is {frame.width} × {frame.height}, larger than its header said; "
                         "the limit is 4K (3840 × 2160).")
    rgb = frame.to_ndarray(format="rgb24")
    turns = round(frame.rotation / 90) % 4  # counter-clockwise, as FFmpeg's players turn it
    return SampledFrame(int(round(position * fps)), position, np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb)


T = TypeVar("T")


def read_ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """`items` produced by a background thread at most `depth` ahead of the caller, so decoding
    (FFmpeg runs without the GIL) overlaps face detection and the model. Memory stays bounded;
    an error in the thread is raised here; stopping early stops the thread and closes `items`."""
    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def put(entry: tuple) -> bool:
        while not stop.is_set():  # a timeout, so a caller that stopped reading never blocks the thread
            try:
                ready.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        # the end marker is always sent, so the caller never waits on a thread that died
        error: BaseException | None = RuntimeError("Reading the video stopped unexpectedly.")
        try:
            for item in items:
                if not put((item, None)):
                    return
            error = None
        except Exception as exc:  # noqa: BLE001 - handed over, raised in the caller's thread
            error = exc
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator: releases its container here, in the thread that ran it
            put((end, error))

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = ready.get()
            if item is end:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()
