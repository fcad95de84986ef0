"""Test-session rules and fixtures shared by every test file.

REQUIRE_ALL_TESTS=1 (set by .ci/run) turns a skip into a failure: in CI every optional backend
(PostgreSQL, Chromium, ...) must be present, so nothing passes by being skipped.
Media fixtures are generated here from scikit-image's public-domain astronaut photo.
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image
from skimage import data

from core.analyze import Engine, load_engine


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("REQUIRE_ALL_TESTS") == "1" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, but REQUIRE_ALL_TESTS=1 forbids skipping: {report.longrepr}"


@pytest.fixture(autouse=True, scope="session")
def private_data_dir(tmp_path_factory):
    """No test may touch the user's real case store: point the default data folder at a temp dir."""
    previous = os.environ.get("DEEPFAKE_DATA_DIR")
    os.environ["DEEPFAKE_DATA_DIR"] = str(tmp_path_factory.mktemp("deepfake-data"))
    os.environ.pop("DEEPFAKE_DB_URL", None)
    yield
    if previous is None:
        os.environ.pop("DEEPFAKE_DATA_DIR", None)
    else:
        os.environ["DEEPFAKE_DATA_DIR"] = previous


# ---------------------------------------------------------------------------------------------
# Media fixtures, all generated here from scikit-image's public-domain astronaut photo, and the
# shared engine (loaded once per session).
# ---------------------------------------------------------------------------------------------
FPS = 10


def encode_image(rgb: np.ndarray, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt)
    return buf.getvalue()


def encode_video(frames: list[np.ndarray], fmt: str = "mp4", codec: str = "mpeg4", fps: int = FPS) -> bytes:
    """Encode RGB frames in memory with PyAV."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return buf.getvalue()


def garbage_video(codec: str = "h264", frames: int = 20) -> bytes:
    """A well-formed Matroska file whose video packets are random bytes: it opens, it cannot be decoded."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            packet = av.Packet(rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
            packet.stream, packet.time_base, packet.pts, packet.dts = stream, Fraction(1, FPS), i, i
            container.mux(packet)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header (valid CRC) declares width x height but whose data is a few bytes:
    a decompression-bomb test that allocates nothing."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# name -> (upload file name, content from the astronaut JPEG, words the user-facing message contains)
BAD_IMAGES = {
    "zero-byte": ("empty.jpg", lambda jpeg: b"", "empty"),
    "truncated-jpeg": ("cut.jpg", lambda jpeg: jpeg[: len(jpeg) // 2], "truncated"),
    "text-renamed": ("notes.jpg", lambda jpeg: b"Meeting notes, not a picture.\n" * 20, "not a JPEG"),
    "20000x20000": ("bomb.png", lambda jpeg: png_header_only(20000, 20000), "too large"),
}


@pytest.fixture(params=sorted(BAD_IMAGES))
def bad_image(request, astronaut_jpeg) -> tuple[str, bytes, str]:
    """(file name, content, expected words) for each bad image named in the issue."""
    name, build, words = BAD_IMAGES[request.param]
    return name, build(astronaut_jpeg), words


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="session")
def astronaut_jpeg(astronaut) -> bytes:
    return encode_image(astronaut)


@pytest.fixture(scope="session")
def two_faces(astronaut) -> np.ndarray:
    """240 x 480: the astronaut's head and its mirror image side by side (two faces of ~90 px)."""
    head = astronaut[0:240, 103:343]
    return np.ascontiguousarray(np.concatenate([head, head[:, ::-1]], axis=1))


@pytest.fixture(scope="session")
def two_face_video(two_faces) -> bytes:
    """2 s at 10 fps, MPEG-4 in MP4; the faces drift a pixel per frame so frames differ."""
    return encode_video([np.roll(two_faces, shift=i, axis=1) for i in range(2 * FPS)])


@pytest.fixture(scope="session")
def one_frame_video(two_faces) -> bytes:
    return encode_video([two_faces])


@pytest.fixture(scope="session")
def no_face_rgb() -> np.ndarray:
    """Smooth gradients and flat rectangles: nothing a face detector should fire on."""
    y, x = np.mgrid[0:200, 0:300]
    rgb = np.stack([x * 255 // 300, y * 255 // 200, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    rgb[40:120, 60:140] = (200, 40, 40)
    rgb[100:180, 180:260] = (30, 160, 220)
    return rgb


@pytest.fixture(scope="session")
def no_face_png(no_face_rgb) -> bytes:
    return encode_image(no_face_rgb, "PNG")


@pytest.fixture(scope="session")
def engine() -> Engine:
    return load_engine()
