"""Speed and memory as a measured property: `python -m core.bench [--quick] [--json out.json]`.

Every row is timed in this one process (cold start and memory in fresh subprocesses), ours and
the seed-style baseline (`core.baseline`) interleaved round by round, so their ratio holds on a
noisy machine even when the absolute numbers do not. Both run with the same PyTorch thread count
(`--threads`, default as in `core.analyze.load_engine`). Test media is generated here (the
public-domain astronaut photo from scikit-image over a textured, grainy background) in a
temporary folder that is always removed.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np
import torch
from PIL import Image

from core.analyze import DEFAULT_VIDEO_FRAMES, THREADS_ENV, Engine, analyze_image_bytes, analyze_video, load_engine
from core.baseline import (
    BaselineEngine, baseline_decode, baseline_image, baseline_video, largest_face, load_baseline, video_frames,
)
from core.explain import gradcam
from core.faces import CROP_MARGIN, crop_face
from core.media import decode_image, probe_video, sample_frames

__all__ = [
    "Stat", "Row", "Settings", "QUICK", "FULL", "summarize", "rounds", "portrait", "texture", "grains", "add_grain",
    "photo", "compose", "jpeg_bytes", "make_clip", "keyframe_interval", "first_page_seconds", "streamlit_rows",
    "format_table", "machine", "run", "main",
]

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Stat:
    median: float
    p90: float
    n: int


def summarize(values: list[float]) -> Stat:
    """Median and 90th percentile (linear interpolation) of repeated measurements."""
    if not values:
        raise ValueError("no measurements to summarize")
    return Stat(float(np.median(values)), float(np.percentile(values, 90)), len(values))


@dataclass
class Row:
    key: str  # stable identifier, used by the JSON consumers and the tests
    label: str
    unit: str  # "ms", "s", "MB" or "x" (a ratio)
    ours: Stat | None
    baseline: Stat | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """Ours / baseline on medians; below 1 means ours is faster (or smaller)."""
        if self.ours is None or self.baseline is None or self.baseline.median == 0:
            return None
        return self.ours.median / self.baseline.median

    def to_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


@dataclass(frozen=True)
class Settings:
    repeats: int  # image and model rows
    video_repeats: int
    baseline_video_repeats: int
    cold_repeats: int
    video_seconds: float  # the 1280x720 clip
    memory_seconds: float  # the 1920x1080 clip for peak RSS
    batch: int = 32  # faces per batched call (Detector.score splits it into its own batch size)


FULL = Settings(repeats=20, video_repeats=5, baseline_video_repeats=3, cold_repeats=3, video_seconds=60, memory_seconds=600)
QUICK = Settings(repeats=2, video_repeats=1, baseline_video_repeats=1, cold_repeats=1, video_seconds=3, memory_seconds=10)
SCALE = {"ms": 1e3, "s": 1.0, "MB": 1.0, "x": 1.0}  # rows store seconds, MB or plain ratios


# ---------------------------------------------------------------- media

def portrait() -> np.ndarray:
    """Head and shoulders of scikit-image's public-domain astronaut photo (300 x 300 RGB)."""
    from skimage.data import astronaut  # scikit-image is a dev requirement, like the benchmark

    return astronaut()[0:300, 73:373]


def texture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth colour blobs: a background that costs the encoder and decoder something, unlike flat grey."""
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 216, (max(2, height // 24), max(2, width // 24), 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def grains(width: int, height: int, count: int = 4, seed: int = 1) -> np.ndarray:
    """Sensor-like noise fields (int16, one grey value per pixel) to add to a background."""
    return np.random.default_rng(seed).normal(0, 4, (count, height, width, 1)).astype(np.int16)


def add_grain(rgb: np.ndarray, grain: np.ndarray) -> np.ndarray:
    return np.clip(rgb + grain, 0, 255).astype(np.uint8)


def photo(width: int, height: int, faces: int) -> np.ndarray:
    """A still like a camera photo: faces over the textured, grainy background."""
    return compose(width, height, faces, background=add_grain(texture(width, height), grains(width, height, 1)[0]))


def compose(
    width: int, height: int, faces: int = 1, shift: int = 0, face: np.ndarray | None = None,
    background: np.ndarray | None = None,
) -> np.ndarray:
    """RGB canvas (flat grey or `background`) with `faces` portraits side by side, moved `shift` px."""
    face = portrait() if face is None else face
    side = int(min(0.6 * height, 0.95 * width / faces))
    tile = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width, 3), 128, np.uint8) if background is None else background.copy()
    gap = (width - faces * side) // (faces + 1)
    y = (height - side) // 2 + shift // 2
    for i in range(faces):
        x = min(max(0, gap + i * (side + gap) + shift), width - side)
        canvas[y : y + side, x : x + side] = tile
    return canvas


def jpeg_bytes(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _segment_frames(total: int, keyint: int) -> int:
    """Largest divisor of `total` not above `keyint`; `total` itself when no divisor is near keyint."""
    for seg in range(min(keyint, total), 0, -1):
        if total % seg == 0:
            return seg if seg * 2 >= min(keyint, total) else total
    return total


def make_clip(
    path: Path, seconds: float, width: int, height: int, fps: int = 30, faces: int = 1,
    preset: str = "veryfast", keyint: int = 250, textured: bool = True, crf: int = 18,
) -> Path:
    """H.264 MP4 of faces moving a few pixels per frame, over a panning texture with sensor-like grain
    (`textured`) or flat grey. Only one closed-GOP segment is encoded; its packets are repeated with
    shifted timestamps, so a 10-minute 1080p clip takes seconds to make."""
    total = max(2, round(seconds * fps))
    seg = _segment_frames(total, keyint)
    face = portrait()
    pan = 64
    wide = texture(width + pan, height) if textured else None
    grain = grains(width, height) if textured else None
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        gop = f"keyint={seg}:min-keyint={seg}:scenecut=0:open-gop=0"  # one closed GOP per segment
        stream.options = {"preset": preset, "crf": str(crf), "x264-params": gop}
        packets: list[tuple[bytes, int, int, bool, Fraction]] = []

        def keep(encoded) -> None:
            for p in encoded:
                packets.append((bytes(p), p.pts, p.dts, p.is_keyframe, p.time_base))
                out.mux(p)

        for i in range(seg):
            shift = int(round(6 * np.sin(2 * np.pi * i / seg)))
            background = None
            if wide is not None:
                x = int(pan / 2 * (1 + np.sin(2 * np.pi * i / seg)))
                background = add_grain(wide[:, x : x + width], grain[i % len(grain)])
            frame = av.VideoFrame.from_ndarray(compose(width, height, faces, shift, face, background), format="rgb24")
            keep(stream.encode(frame))
        keep(stream.encode())
        for k in range(1, total // seg):
            for data, pts, dts, key, tb in packets:
                offset = round(Fraction(k * seg, fps) / tb)
                packet = av.Packet(data)
                packet.pts, packet.dts, packet.time_base, packet.is_keyframe = pts + offset, dts + offset, tb, key
                packet.stream = stream
                out.mux(packet)
    return path


# ---------------------------------------------------------------- timing

def rounds(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each function, the functions interleaved round by round."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(warmup + repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
    return times


# ---------------------------------------------------------------- image rows

def image_rows(engine: Engine, base: BaselineEngine, settings: Settings) -> list[Row]:
    jpeg = {n: jpeg_bytes(photo(1920, 1080, n)) for n in (1, 5)}
    rgb = {n: decode_image(data) for n, data in jpeg.items()}
    found = {n: len(engine.faces.detect(img)) for n, img in rgb.items()}
    face = engine.faces.detect(rgb[1])[0]
    crop = crop_face(rgb[1], face, engine.detector.input_size, CROP_MARGIN)
    crop_base = crop_face(rgb[1], face, base.input_size, CROP_MARGIN)
    batch = [crop] * settings.batch

    def analyze(n: int, heat: bool) -> Callable[[], object]:
        def call() -> None:
            result = analyze_image_bytes(engine, jpeg[n])
            if heat:
                for item in result.faces:
                    if item.crop is not None:
                        gradcam(engine.detector, item.crop, result.verdict.family or "blend")

        return call

    def seed(n: int) -> Callable[[], object]:
        return lambda: baseline_image(base, baseline_decode(jpeg[n]))

    t = rounds(
        {
            "decode": lambda: decode_image(jpeg[1]),
            "decode_base": lambda: baseline_decode(jpeg[1]),
            "detect1": lambda: engine.faces.detect(rgb[1]),
            "detect1_base": lambda: largest_face(base, rgb[1]),
            "detect5": lambda: engine.faces.detect(rgb[5]),
            "detect5_base": lambda: largest_face(base, rgb[5]),
            "b1": lambda: engine.detector.score([crop]),
            "b1_base": lambda: base.score(crop_base),
            "batched": lambda: engine.detector.score(batch),
            "gradcam": lambda: gradcam(engine.detector, crop, "blend"),
            "a1": analyze(1, False),
            "a1_base": seed(1),
            "a1_heat": analyze(1, True),
            "a5": analyze(5, False),
            "a5_base": seed(5),
            "a5_heat": analyze(5, True),
        },
        settings.repeats,
    )
    per_face = [v / settings.batch for v in t["batched"]]
    s = {name: summarize(v) for name, v in t.items()}
    one, five = f"1920x1080 JPEG, {found[1]} face(s) found", f"1920x1080 JPEG, {found[5]} of 5 faces found"
    return [
        Row("image.decode", "decode 1080p JPEG", "ms", s["decode"], s["decode_base"], "baseline: cv2.imdecode"),
        Row("image.detect_1face", "face detection, 1 face", "ms", s["detect1"], s["detect1_base"], one),
        Row("image.detect_5faces", "face detection, 5 faces", "ms", s["detect5"], s["detect5_base"], five),
        Row("model.forward_b1", "model forward, batch 1", "ms", s["b1"], s["b1_base"],
            "ours: both branches; baseline: ResNet-50 224 px"),
        Row("model.forward_batched", f"model forward, {settings.batch} faces in one call, per face", "ms",
            summarize(per_face), s["b1_base"], "baseline scores one face at a time"),
        Row("gradcam.per_face", "Grad-CAM, one branch, per face", "ms", s["gradcam"], None, "baseline has no heatmap"),
        Row("analyze_image.1face", "analyze_image, 1 face", "ms", s["a1"], s["a1_base"], "decode and firmness check (3 re-crops) included; " + one),
        Row("analyze_image.1face_gradcam", "analyze_image + Grad-CAM, 1 face", "ms", s["a1_heat"], s["a1_base"],
            "baseline without heatmap"),
        Row("analyze_image.5faces", "analyze_image, 5 faces", "ms", s["a5"], s["a5_base"], "baseline: largest face only"),
        Row("analyze_image.5faces_gradcam", "analyze_image + Grad-CAM, 5 faces", "ms", s["a5_heat"], s["a5_base"],
            "baseline without heatmap"),
    ]


# ---------------------------------------------------------------- video rows

def video_rows(engine: Engine, base: BaselineEngine, clip: Path, phone: Path, settings: Settings) -> list[Row]:
    """`clip`: x264's default keyframe interval (250 frames, here 7.5 s), as in FFmpeg-made web and
    deepfake-dataset video: mostly one long decode. `phone`: a keyframe every second, as phones record:
    mostly seeks."""
    parts: dict[str, list[float]] = {"decode_s": [], "detect_s": [], "model_s": []}
    faces = 0

    def ours() -> None:
        nonlocal faces
        result = analyze_video(engine, clip)
        faces = sum(1 for f in result.faces if f.scores)
        for key in parts:
            parts[key].append(result.timings[key])

    t = rounds({"floor": lambda: _drain(sample_frames(clip, DEFAULT_VIDEO_FRAMES)), "ours": ours,
                "phone_floor": lambda: _drain(sample_frames(phone, DEFAULT_VIDEO_FRAMES)),
                "phone": lambda: analyze_video(engine, phone)}, settings.video_repeats)
    for key in parts:
        del parts[key][0]  # the warm-up round
    ratios = [o / f for o, f in zip(t["ours"], t["floor"])]
    tb = rounds({"seed": lambda: baseline_video(base, clip), "seed_floor": lambda: _drain(video_frames(str(clip)))},
                settings.baseline_video_repeats, warmup=0)
    clip_note = (f"{_describe(clip, settings.video_seconds)}, {DEFAULT_VIDEO_FRAMES} frames sampled, "
                 f"{faces} faces scored")
    return [
        Row("video.end_to_end", "analyze_video end to end", "s", summarize(t["ours"]), summarize(tb["seed"]),
            clip_note + "; baseline: every 5th frame"),
        Row("video.decode_seek", "  of which waiting for decoded frames", "s", summarize(parts["decode_s"]), None,
            "result.timings; frames are decoded in a read-ahead thread"),
        Row("video.detect", "  of which face detection + crop", "s", summarize(parts["detect_s"]), None, "result.timings"),
        Row("video.model", "  of which model", "s", summarize(parts["model_s"]), None, "result.timings"),
        Row("video.decode_floor", "decode-only floor (sample_frames)", "s", summarize(t["floor"]),
            summarize(tb["seed_floor"]), "baseline: cv2.VideoCapture decoding every frame"),
        Row("video.ours_over_floor", "end to end / decode-only floor", "x", summarize(ratios), None, "per round"),
        Row("video.phone_end_to_end", "analyze_video end to end, phone-like clip", "s", summarize(t["phone"]), None,
            _describe(phone, settings.video_seconds)),
        Row("video.phone_decode_floor", "decode-only floor, phone-like clip", "s", summarize(t["phone_floor"]), None,
            "sample_frames"),
    ]


def keyframe_interval(path: Path) -> float:
    """Mean seconds between keyframes (packets are read, not decoded)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        keys = sum(1 for packet in container.demux(stream) if packet.size and packet.is_keyframe)
    return probe_video(path).duration / max(1, keys)


def _describe(clip: Path, seconds: float) -> str:
    mbps = clip.stat().st_size * 8 / seconds / 1e6
    return f"{seconds:g} s 1280x720 H.264 30 fps {mbps:.1f} Mbit/s, keyframe every {keyframe_interval(clip):.1f} s"


def _drain(frames) -> None:
    for _ in frames:
        pass


# ---------------------------------------------------------------- subprocess rows

_COLD = """
import json, time
t0 = time.perf_counter()
import {module}
t1 = time.perf_counter()
{module}.{loader}()
print(json.dumps({{"import_s": t1 - t0, "load_s": time.perf_counter() - t1}}))
"""

_MEMORY = """
import json, resource, sys
from pathlib import Path
from core.analyze import analyze_video, load_engine
result = analyze_video(load_engine(), Path(sys.argv[1]).read_bytes())  # bytes, as the app passes an upload
# VmHWM is this process's own peak; ru_maxrss would include the forking parent's RSS on Linux
status = dict(line.split(":", 1) for line in open("/proc/self/status")) if sys.platform == "linux" else {}
peak_kb = int(status["VmHWM"].split()[0]) if "VmHWM" in status else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_mb": peak_kb / 1024, "seconds": result.timings["total_s"], "frames": len(result.frames)}))
"""


def _child(code: str, *args: str, timeout: float = 900) -> dict:
    """Run Python code in a fresh interpreter at the repo root; its last stdout line is JSON."""
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed with code {done.returncode}:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cold_rows(settings: Settings) -> list[Row]:
    ours = [_child(_COLD.format(module="core.analyze", loader="load_engine")) for _ in range(settings.cold_repeats)]
    seed = [_child(_COLD.format(module="core.baseline", loader="load_baseline")) for _ in range(settings.cold_repeats)]
    rows = [
        Row("cold.import", "import (fresh process)", "s", summarize([r["import_s"] for r in ours]),
            summarize([r["import_s"] for r in seed]), "core.analyze vs core.baseline"),
        Row("cold.load_model", "load model (load_engine, warm-up included)", "s", summarize([r["load_s"] for r in ours]),
            summarize([r["load_s"] for r in seed]), "baseline: load_baseline(resnet50)"),
    ]
    return rows + streamlit_rows(settings.cold_repeats)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_BROWSER = r"""
import asyncio, json, sys, time, urllib.error, urllib.request
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from tornado.websocket import websocket_connect

port, deadline = int(sys.argv[1]), time.time() + float(sys.argv[2])


def ok(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


while not (ok(f"http://localhost:{port}/_stcore/health") and ok(f"http://localhost:{port}/")):
    if time.time() > deadline:
        sys.exit(f"streamlit did not answer on port {port} in time")
    time.sleep(0.05)
served = time.time()


async def first_run():
    # what a browser does on its first visit: open the stream, ask for a run, wait until the script ends
    ws = await websocket_connect(f"ws://localhost:{port}/_stcore/stream", subprotocols=["streamlit"])
    request = BackMsg()
    request.rerun_script.query_string = ""
    await ws.write_message(request.SerializeToString(), binary=True)
    while True:
        data = await asyncio.wait_for(ws.read_message(), deadline - time.time())
        if data is None:
            sys.exit("the app closed the connection before its script finished")
        msg = ForwardMsg()
        msg.ParseFromString(data)
        if msg.WhichOneof("type") == "script_finished":
            ws.close()
            if msg.script_finished != ForwardMsg.FINISHED_SUCCESSFULLY:
                sys.exit(f"the app script did not finish cleanly (status {msg.script_finished})")
            return


asyncio.run(first_run())
print(json.dumps({"served_at": served, "rendered_at": time.time()}))
"""


def first_page_seconds(app: Path, timeout: float = 90.0) -> tuple[float, float]:
    """Seconds after `streamlit run` (free port) until the server answers / and /_stcore/health, and
    until the app script's first run has finished for a client that connects like a browser."""
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port), "--server.headless", "true",
           "--browser.gatherUsageStats", "false"]
    started = time.time()  # wall clock: the probe runs in another process
    proc = subprocess.Popen(cmd, cwd=app.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        probe = _child(_BROWSER, str(port), str(timeout), timeout=timeout + 30)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\nrun `{' '.join(cmd)}` to see the app's own messages") from None
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return probe["served_at"] - started, probe["rendered_at"] - started


def streamlit_rows(repeats: int, app: Path = ROOT / "streamlit_app.py") -> list[Row]:
    served_label, rendered_label = "streamlit run -> server answers", "streamlit run -> first page rendered"
    if not app.is_file():
        note = f"skipped: {app.name} does not exist yet"
        return [Row("cold.streamlit_server", served_label, "s", None, None, note),
                Row("cold.streamlit_first_page", rendered_label, "s", None, None, note)]
    times = [first_page_seconds(app) for _ in range(repeats)]
    return [
        Row("cold.streamlit_server", served_label, "s", summarize([t[0] for t in times]), None,
            "/ and /_stcore/health answer 200"),
        Row("cold.streamlit_first_page", rendered_label, "s", summarize([t[1] for t in times]), None,
            "a websocket client asks for the first run, as a browser does; includes loading the engine"),
    ]


def memory_row(workdir: Path, settings: Settings) -> Row:
    clip = make_clip(workdir / "long.mp4", settings.memory_seconds, 1920, 1080, preset="ultrafast", textured=False)
    child = _child(_MEMORY, str(clip))
    note = (f"{settings.memory_seconds:g} s 1920x1080 H.264 clip, {clip.stat().st_size / 2**20:.0f} MB passed as bytes "
            f"like an upload; analysis took {child['seconds']:.1f} s for {child['frames']} frames")
    peak = Stat(child["peak_mb"], child["peak_mb"], 1)
    return Row("memory.peak_rss", "peak RSS, analyze_video on a long 1080p clip", "MB", peak, None, note)


# ---------------------------------------------------------------- report

def _fmt(stat: Stat | None, unit: str) -> tuple[str, str]:
    if stat is None:
        return "-", "-"
    digits = 2 if unit in ("s", "x") else 1 if unit == "ms" else 0
    return f"{stat.median * SCALE[unit]:.{digits}f}", f"{stat.p90 * SCALE[unit]:.{digits}f}"


def format_table(rows: list[Row]) -> str:
    """Plain-text table (also valid Markdown) of every row, ours and baseline, median and p90."""
    head = ["row", "unit", "ours median", "ours p90", "base median", "base p90", "ours/base", "note"]
    body = []
    for row in rows:
        ratio = "-" if row.ratio is None else f"{row.ratio:.3f}"
        body.append([row.label, row.unit, *_fmt(row.ours, row.unit), *_fmt(row.baseline, row.unit), ratio, row.note])
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in [head, *body]]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _cpu_name() -> str:
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _memory_gb() -> float | None:
    info = Path("/proc/meminfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


def machine() -> dict:
    """What the numbers were measured on, including the load average (other work on the machine)."""
    return {
        "cpu": _cpu_name(), "cores": os.cpu_count(), "memory_gb": _memory_gb(), "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(), "torch": torch.__version__, "opencv": cv2.__version__, "av": av.__version__,
        "platform": platform.platform(), "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def run(settings: Settings, log: Callable[[str], None] = print) -> dict:
    """Every benchmark row; media lives in a temporary folder removed at the end."""
    started = time.perf_counter()
    engine = load_engine()
    base = load_baseline(classifier="resnet50")
    info = machine()  # after load_engine, which sets PyTorch's thread count
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        log("image rows ...")
        rows += image_rows(engine, base, settings)
        log("video rows ...")
        clip = make_clip(workdir / "clip.mp4", settings.video_seconds, 1280, 720)
        phone = make_clip(workdir / "phone.mp4", settings.video_seconds, 1280, 720, keyint=30)
        rows += video_rows(engine, base, clip, phone, settings)
        log("cold start rows ...")
        rows += cold_rows(settings)
        log("memory row ...")
        rows.append(memory_row(workdir, settings))
    info["load_average_end"] = os.getloadavg()
    return {"machine": info, "settings": asdict(settings), "seconds": time.perf_counter() - started,
            "rows": [row.to_dict() for row in rows], "table": format_table(rows)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats and short clips (CI): checks the command, not the speed")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--threads", type=int, help=f"PyTorch threads for ours and the baseline, here and in the "
                        f"subprocesses (sets {THREADS_ENV}; default: its value, else 1)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        os.environ[THREADS_ENV] = str(args.threads)
    report = run(QUICK if args.quick else FULL, log=lambda msg: print(msg, file=sys.stderr))
    m = report["machine"]
    print(f"{m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, torch {m['torch']} ({m['torch_threads']} threads), "
          f"load average {m['load_average'][0]:.2f} at start, {m['load_average_end'][0]:.2f} at end, {m['date_utc']}")
    print(report["table"])
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
