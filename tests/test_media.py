"""core.media: type sniffing, safe image decoding, limits, video probing and uniform frame sampling."""
import io
import os
import struct
import subprocess
import sys
from fractions import Fraction

import av
import numpy as np
import pytest
from conftest import encode_image, encode_video, garbage_video
from PIL import Image

from core.media import (
    Limits, MediaError, container_name, limits_from_env, decode_image, probe_video, sample_frames, sample_times, sniff_kind,
)


@pytest.mark.parametrize("head, kind", [
    (b"\xff\xd8\xff\xe0\0\x10JFIF", "image"),
    (b"\x89PNG\r\n\x1a\n\0\0", "image"),
    (b"BM6\0\0\0\0\0", "image"),
    (b"RIFF\0\0\0\0WEBPVP8 ", "image"),
    (b"RIFF\0\0\0\0AVI LIST", "video"),
    (b"\0\0\0\x20ftypisom", "video"),
    (b"\x1a\x45\xdf\xa3\x01\0\0\0", "video"),
    (b"hello, plain text", None),
    (b"", None),
])
def test_sniff_kind_reads_content_not_names(head, kind):
    assert sniff_kind(head) == kind


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP"])
def test_decode_every_supported_image_format(astronaut, fmt):
    rgb = decode_image(encode_image(astronaut, fmt))
    assert rgb.shape == astronaut.shape and rgb.dtype == np.uint8


def test_decode_applies_exif_orientation(astronaut):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    buf = io.BytesIO()
    Image.fromarray(astronaut[:, :300]).save(buf, "JPEG", exif=exif)
    assert decode_image(buf.getvalue()).shape == (300, 512, 3)


def test_bad_images_raise_a_message_for_the_user(bad_image):
    _, content, words = bad_image
    with pytest.raises(MediaError, match=words):
        decode_image(content)


def test_byte_limit(astronaut_jpeg):
    with pytest.raises(MediaError, match="the limit is"):
        decode_image(astronaut_jpeg, Limits(max_bytes=1024))


def test_pixel_limit_is_checked_before_decoding(astronaut_jpeg):
    with pytest.raises(MediaError, match="512 × 512"):
        decode_image(astronaut_jpeg, Limits(max_pixels=100_000))


def test_probe_reports_media_facts(two_face_video):
    info = probe_video(two_face_video)
    assert (info.width, info.height, info.codec) == (480, 240, "mpeg4")
    assert info.fps == pytest.approx(10) and info.duration == pytest.approx(2.0, abs=0.1)
    assert info.frame_count == 20 and info.container == "mp4"


@pytest.mark.parametrize("fmt, codec, name", [
    ("mov", "mpeg4", "mov"), ("avi", "mpeg4", "avi"), ("matroska", "mpeg4", "mkv"), ("webm", "libvpx-vp9", "webm"),
])
def test_other_containers_are_sniffed_and_probed(two_faces, fmt, codec, name):
    data = encode_video([two_faces] * 5, fmt, codec)
    assert sniff_kind(data[:16]) == "video"
    info = probe_video(data)
    assert info.width == 480 and info.container == name == container_name(data[:64])


@pytest.mark.parametrize("fmt, codec", [("avi", "mpeg4"), ("matroska", "mpeg4"), ("webm", "libvpx-vp9")])
def test_sampling_picks_the_same_frames_in_every_container(two_faces, fmt, codec):
    moving = [np.roll(two_faces, shift=8 * i, axis=1) for i in range(20)]
    reference = [(f.index, f.rgb) for f in sample_frames(encode_video(moving), 6)]
    sampled = [(f.index, f.rgb) for f in sample_frames(encode_video(moving, fmt, codec), 6)]
    assert [i for i, _ in sampled] == [i for i, _ in reference] == [2, 5, 8, 12, 15, 18]  # first frame at or after each target
    for index, rgb in sampled:  # the pixels are that frame's: of all source frames, it is the closest
        distance = [np.abs(rgb.astype(int) - frame.astype(int)).mean() for frame in moving]
        assert int(np.argmin(distance)) == index


def test_one_frame_video_is_refused(one_frame_video):
    with pytest.raises(MediaError, match="fewer than two frames"):
        probe_video(one_frame_video)


def test_undecodable_stream_is_refused():
    data = garbage_video()
    probe_video(data)  # the container itself is valid
    with pytest.raises(MediaError, match="could not be decoded") as caught:
        list(sample_frames(data, 8))
    message = str(caught.value)
    assert "Errno" not in message and "ffmpeg -i input" in message  # what to do, not FFmpeg's wording


def test_unopenable_video_message_says_what_to_do():
    with pytest.raises(MediaError, match="could not be opened") as caught:
        probe_video(b"\0\0\0\x20ftypisom" + b"\xff" * 200)
    assert "Errno" not in str(caught.value) and "H.264 MP4" in str(caught.value)


def test_duration_limit(two_face_video):
    with pytest.raises(MediaError, match="the limit is"):
        probe_video(two_face_video, Limits(max_video_seconds=1.0))


def test_image_is_not_a_video(astronaut_jpeg):
    with pytest.raises(MediaError, match="not an MP4"):
        probe_video(astronaut_jpeg)


def test_sample_times_are_centred_in_equal_slices():
    assert sample_times(10.0, 5) == pytest.approx([1, 3, 5, 7, 9])
    assert sample_times(3.0, 0) == pytest.approx([1.5])


def test_sampled_frames_cover_the_whole_video_uniformly(two_face_video):
    frames = list(sample_frames(two_face_video, 8))
    times = np.array([f.time for f in frames])
    assert len(frames) == 8
    assert times[0] < 2.0 / 8 and times[-1] > 2.0 - 2.0 / 8
    assert np.allclose(np.diff(times), 0.25, atol=0.1 + 1e-9)  # one frame period of slack
    assert all(f.rgb.shape == (240, 480, 3) for f in frames)


def test_asking_for_more_frames_than_exist_repeats_none(two_face_video):
    frames = list(sample_frames(two_face_video, 64))
    indices = [f.index for f in frames]
    assert len(indices) == len(set(indices)) <= 20


@pytest.mark.parametrize("value, minutes", [("45", 45), (" 7.5 ", 7.5), ("", 30), ("abc", 30), ("-1", 30), ("0", 30), ("nan", 30), ("inf", 30)])
def test_the_longest_video_comes_from_the_environment_when_it_is_a_positive_number(value, minutes):
    assert limits_from_env({"DEEPFAKE_MAX_VIDEO_MINUTES": value}).max_video_seconds == minutes * 60
    assert limits_from_env({}) == Limits()


def test_the_command_line_tools_default_limits_follow_the_environment():
    env = {**os.environ, "DEEPFAKE_MAX_VIDEO_MINUTES": "45"}
    code = "from core.media import DEFAULT_LIMITS; print(DEFAULT_LIMITS.max_video_seconds)"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip() == "2700.0"


def test_a_still_gif_is_an_image_and_an_animated_one_is_refused():
    frames = [Image.fromarray(np.full((16, 16, 3), v, np.uint8)) for v in (40, 200)]
    still, animated = io.BytesIO(), io.BytesIO()
    frames[0].save(still, "GIF")
    frames[0].save(animated, "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert sniff_kind(still.getvalue()[:16]) == "image" and decode_image(still.getvalue()).shape == (16, 16, 3)
    with pytest.raises(MediaError, match=r"animated image \(2 frames\)\. Convert it to a video"):
        decode_image(animated.getvalue())


def test_a_codec_without_a_decoder_is_a_message_and_its_container_facts_still_read(two_faces):
    from core.forensics.container import video_metadata

    avi = encode_video([two_faces] * 6, "avi", "mpeg4")
    unknown = avi.replace(b"FMP4", b"ZZZZ")  # the FourCC FFmpeg maps to a decoder
    assert avi.count(b"FMP4") >= 1
    for read in (probe_video, lambda data: list(sample_frames(data, 2))):
        with pytest.raises(MediaError, match="codec is not one this tool can decode"):
            read(unknown)
    assert video_metadata(unknown)["streams"][0]["codec"] == "unknown (no decoder)"


def _jpeg_with_exif(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """A 32 x 16 JPEG whose EXIF block (big-endian TIFF, one IFD) holds `entries` (tag, type, count, value)."""
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", len(entries))
    for tag, kind, count, value in entries:
        tiff += struct.pack(">HHI", tag, kind, count) + value.ljust(4, b"\x00")
    tiff += b"\x00\x00\x00\x00"
    buffer = io.BytesIO()
    Image.new("RGB", (32, 16), (90, 90, 90)).save(buffer, "JPEG")
    app1 = b"Exif\x00\x00" + tiff
    return buffer.getvalue()[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + buffer.getvalue()[2:]


def test_a_damaged_exif_tag_still_gives_the_upright_pixels():
    # Orientation 6 (turn 90 degrees) beside an XResolution, a RATIONAL, stored as the text "abc"
    data = _jpeg_with_exif([(0x0112, 3, 1, struct.pack(">H", 6)), (0x011A, 2, 4, b"abc\x00")])
    assert decode_image(data).shape == (32, 16, 3)


def test_an_exif_block_too_damaged_to_read_leaves_the_pixels_as_stored():
    buffer = io.BytesIO()
    Image.new("RGB", (80, 40)).save(buffer, "PNG", exif=b"ZZ\x00*\x00\x00\x00\x08\x00\x00")  # no TIFF header
    assert decode_image(buffer.getvalue()).shape == (40, 80, 3)


@pytest.mark.parametrize("trailer", [b"!", b","])
def test_a_gif_with_a_damaged_trailer_is_a_message(trailer):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buffer, "GIF")
    data = buffer.getvalue()
    assert data.endswith(b";")
    with pytest.raises(MediaError, match="truncated or corrupt") as caught:
        decode_image(data[:-1] + trailer)
    assert str(caught.value).endswith("save it again in an image editor.")  # the decoder's own words go to the log


def _h264(width: int, height: int, count: int) -> bytes:
    """A raw H.264 stream of `count` grey frames."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "threads": "1"}
        for i in range(count):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.full((height, width, 3), 20 * i, np.uint8), format="rgb24")))
        out.mux(stream.encode())
    return buffer.getvalue()


def test_a_stream_growing_past_the_size_limit_after_its_header_is_refused():
    stream = _h264(64, 48, 10) + _h264(256, 192, 10)  # the header says 64 x 48
    out = io.BytesIO()
    with av.open(io.BytesIO(stream), format="h264") as src, av.open(out, "w", format="matroska") as dst:
        copy = dst.add_stream_from_template(src.streams.video[0])
        for k, packet in enumerate(p for p in src.demux(src.streams.video[0]) if p.size):
            packet.pts = packet.dts = k * 100
            packet.time_base, packet.stream = Fraction(1, 1000), copy
            dst.mux(packet)
    limits = Limits(max_video_pixels=128 * 96)
    assert probe_video(out.getvalue(), limits).width == 64
    with pytest.raises(MediaError, match="A frame of the video is 256 × 192, larger than its header said"):
        list(sample_frames(out.getvalue(), 4, limits))


def test_a_multi_picture_jpeg_is_a_still_photo():
    primary, helper = (Image.fromarray(np.full((16, 24, 3), v, np.uint8)) for v in (90, 10))
    buffer = io.BytesIO()
    primary.save(buffer, "MPO", save_all=True, append_images=[helper])  # as Ultra HDR gain-map photos are stored
    assert Image.open(io.BytesIO(buffer.getvalue())).format == "MPO"
    assert abs(int(decode_image(buffer.getvalue()).mean()) - 90) <= 2  # the primary picture


def test_16_bit_grey_keeps_its_tones():
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (4, 1))
    buffer = io.BytesIO()
    Image.fromarray(ramp).save(buffer, "PNG")
    rgb = decode_image(buffer.getvalue())
    assert rgb.shape == (4, 256, 3) and rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255
    assert len(np.unique(rgb)) > 200 and (np.diff(rgb[0, :, 0].astype(int)) >= 0).all()  # a ramp, not black and white



def _write(fmt: str, frames: list[np.ndarray], *, rotation: int = 0, audio_s: float = 0.0, pts: list[int] | None = None,
           options: dict | None = None) -> bytes:
    """A 10 fps video written with PyAV: a display rotation (as phones write), a silent audio track
    of `audio_s` seconds, frame times in milliseconds, or muxer options."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt, options=options or {}) as container:
        video = container.add_stream("mpeg4", rate=10)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt, video.codec_context.time_base = "yuv420p", Fraction(1, 1000)
        if rotation:
            video.set_display_rotation(rotation)
        sound = container.add_stream("pcm_s16le", rate=8000, layout="mono") if audio_s else None
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = (pts[i] if pts else i * 100), Fraction(1, 1000)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if sound is not None:
            silence = av.AudioFrame.from_ndarray(np.zeros((1, int(audio_s * 8000)), np.int16), format="s16", layout="mono")
            silence.sample_rate, silence.pts = 8000, 0
            container.mux(sound.encode(silence))
            container.mux(sound.encode())
    return buf.getvalue()


def _steps(n: int = 20, size: int = 64) -> list[np.ndarray]:
    """Frames of one grey level each, n ≤ 31."""
    return [np.full((size, size, 3), 5 + 8 * i, np.uint8) for i in range(n)]


@pytest.mark.parametrize("fmt", ["mp4", "matroska"])  # Matroska: its length is read from the packets first
def test_a_phone_video_is_turned_upright(fmt):
    upright = np.zeros((48, 96, 3), np.uint8)
    upright[:, :48] = 255  # white on the left
    stored = np.ascontiguousarray(np.rot90(upright, 1))  # portrait storage, turned back on display
    data = _write(fmt, [stored] * 10, rotation=-90)
    info = probe_video(data)
    assert (info.width, info.height, info.rotation) == (96, 48, 270)
    frame = next(sample_frames(data, 4)).rgb
    assert frame.shape == (48, 96, 3) and frame[:, :40].mean() > 200 > 50 > frame[:, 56:].mean()


def test_a_longer_audio_track_neither_stretches_the_video_nor_repeats_its_last_frame():
    data = _write("matroska", _steps(), audio_s=6.0)  # 2 s of video
    assert probe_video(data).duration == pytest.approx(2.0, abs=0.15)
    times = [f.time for f in sample_frames(data, 8)]
    assert len(times) == 8 == len(set(times)) and times[-1] > 1.5


def test_a_stream_without_a_duration_is_measured_from_its_packets():
    data = _write("matroska", _steps(), options={"live": "1"})  # as a browser's recorder or a live stream writes
    assert av.open(io.BytesIO(data)).duration is None
    info = probe_video(data)
    assert info.frame_count == 20 and info.duration == pytest.approx(2.0, abs=0.15)
    assert len(list(sample_frames(data, 8))) == 8


def test_a_pause_in_a_variable_rate_video_gives_its_frame_once():
    data = _write("mp4", _steps(), pts=[i * 100 for i in range(10)] + [5000 + i * 100 for i in range(10)])
    times = [round(f.time, 2) for f in sample_frames(data, 16)]  # 5 targets fall inside the 4 s pause
    assert len(times) == len(set(times)) and 5.0 in times


def test_damaged_packets_in_the_middle_are_skipped():
    clean = _write("matroska", _steps(30))
    buf, rng = io.BytesIO(), np.random.default_rng(0)
    with av.open(io.BytesIO(clean)) as source, av.open(buf, "w", format="matroska") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        for i, packet in enumerate(source.demux(video=0)):
            if packet.size == 0:
                continue
            if 12 <= i < 15:  # three packets of noise in the middle
                broken = av.Packet(rng.integers(0, 256, packet.size, dtype=np.uint8).tobytes())
                broken.pts, broken.dts, broken.time_base = packet.pts, packet.dts, packet.time_base
                packet = broken
            packet.stream = stream
            out.mux(packet)
    frames = list(sample_frames(buf.getvalue(), 10))
    assert len(frames) >= 8 and frames[-1].time > 2.5
