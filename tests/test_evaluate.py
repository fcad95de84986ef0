"""`python -m core.evaluate` on a tiny generated folder, plus its pure parts (discovery, limits, splits)."""
import csv
import io
import json
import re
from dataclasses import fields
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image
from skimage.data import astronaut

from core import evaluate
from core.evaluate import Entry, ItemRow

FRAMES = 4
DOCS = Path(__file__).resolve().parent.parent / "docs" / "evaluation.md"


def _jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def _video(path: Path, rgb: np.ndarray, frames: int = 12) -> None:
    """A short H.264 clip: the image panned a few pixels per frame."""
    small = cv2.resize(rgb, (320, 320), interpolation=cv2.INTER_AREA)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = 320, 320, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(small, 2 * i, axis=1), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def build_folder(root: Path) -> dict[str, int]:
    """real/astro (3 photos + 1 without a face), real/clips (1 video), fake/blurred and fake/tinted
    (2 each, one of them a truncated JPEG), and a text file that is not media. Returns counts."""
    rgb = astronaut()
    face = (slice(30, 230), slice(140, 330))
    blurred = rgb.copy()
    blurred[face] = cv2.GaussianBlur(rgb[face], (0, 0), 4)
    tinted = rgb.copy()
    tinted[face] = np.clip(rgb[face].astype(int) + (25, -10, -10), 0, 255).astype(np.uint8)
    gx, gy = np.meshgrid(np.linspace(0, 255, 300), np.linspace(0, 255, 200))
    gradient = np.dstack([gx, gy, np.full_like(gx, 128.0)]).astype(np.uint8)
    files = {
        "real/astro/a.png": _png(rgb),
        "real/astro/b_small.jpg": _jpeg(cv2.resize(rgb, (330, 330), interpolation=cv2.INTER_AREA), 80),
        "real/astro/c_flip.jpg": _jpeg(rgb[:, ::-1].copy()),
        "real/astro/noface.png": _png(gradient),
        "fake/blurred/a.jpg": _jpeg(blurred),
        "fake/blurred/broken.jpg": _jpeg(blurred)[:300],
        "fake/tinted/a.jpg": _jpeg(tinted),
        "fake/tinted/b.png": _png(tinted[:, ::-1].copy()),
        "real/README.txt": b"notes about the data, not media\n",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "real/clips").mkdir(parents=True)
    _video(root / "real/clips/talk.mp4", rgb)
    return {"media": len(files), "skipped": 1}  # the text file is skipped, the video is added


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    counts = build_folder(root)
    out = tmp_path_factory.mktemp("out")
    code = evaluate.main([str(root), "--out", str(out), "--frames", str(FRAMES), "--bootstrap", "50", "--baseline"])
    report = json.loads((out / "report.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    with (out / "items.csv").open(newline="") as fh:
        items = {row["path"]: row for row in csv.DictReader(fh)}
    return code, out, report, items, counts


def test_run_writes_every_file(run):
    code, out, *_ = run
    assert code == 0
    for name in ("report.json", "report.md", "items.csv"):
        assert (out / name).stat().st_size > 0
    for name in ("roc.png", "reliability.png"):
        with Image.open(out / name) as img:
            assert img.format == "PNG" and img.width > 300


def test_report_top_level_schema(run):
    _, _, report, _, counts = run
    assert report["schema"] == evaluate.SCHEMA
    assert set(report) == {"schema", "created", "command", "code_commit", "data_dir", "weights", "settings", "scoring",
                           "totals", "splits", "real_sources", "firmness", "errors", "skipped", "files"}
    assert report["command"].startswith("python -m core.evaluate ")
    assert {"version", "trained", "thresholds"} <= set(report["weights"])
    assert report["totals"]["items"] == counts["media"]
    assert report["settings"]["frames"] == FRAMES and report["settings"]["baseline"] == "ours"


def test_splits_per_method_kind_and_pooled(run):
    _, _, report, _, _ = run
    splits = {s["id"]: s for s in report["splits"]}
    assert list(splits) == ["image/blurred", "image/tinted", "image/all", "video/all", "all/all"]
    image = splits["image/all"]
    assert image["counts"]["real"] == {"items": 4, "errors": 0, "faces_found": 3, "no_face": 1}
    assert image["counts"]["fake"]["errors"] == 1
    assert (image["n_real"], image["n_fake"]) == (3, 3)
    assert set(image["metrics"]) == {"auc", "ap", "eer", "accuracy", "tpr", "fpr", "brier", "ece"}
    assert 0.0 <= image["metrics"]["auc"]["value"] <= 1.0
    assert image["metrics_no_face_at_midpoint"]["n_real"] == 4  # the no-face photo is kept there
    assert set(image["branch_auc"]) == {"blend", "synthetic"}
    assert splits["image/tinted"]["n_fake"] == 2 and splits["image/tinted"]["n_real"] == 3
    video = splits["video/all"]
    assert video["n_fake"] == 0 and video["metrics"]["auc"]["value"] is None  # one class: n/a, not a crash
    assert video["metrics"]["fpr"]["value"] is not None
    assert "baseline" in image and set(image["baseline"]["metrics"]) == set(image["metrics"])


def test_items_csv_has_every_file_and_the_failure(run):
    _, _, report, items, counts = run
    assert len(items) == counts["media"]
    assert list(next(iter(items.values()))) == [f.name for f in fields(ItemRow)]
    broken = items["fake/blurred/broken.jpg"]
    assert broken["error"].startswith("MediaError") and broken["score"] == ""
    assert report["errors"] == [{"path": "fake/blurred/broken.jpg", "reason": broken["error"]}]
    noface = items["real/astro/noface.png"]
    assert noface["verdict"] == "NO FACE" and noface["score"] == "" and noface["whole_image"] != ""
    video = items["real/clips/talk.mp4"]
    assert video["kind"] == "video" and int(video["frames_sampled"]) == FRAMES
    assert int(items["real/astro/a.png"]["faces_found"]) >= 1
    assert report["skipped"] == ["real/README.txt"]


def test_real_source_table(run):
    _, _, report, _, _ = run
    rows = {(r["kind"], r["source"]): r for r in report["real_sources"]}
    assert set(rows) == {("image", "astro"), ("video", "clips")}
    astro = rows[("image", "astro")]
    assert (astro["items"], astro["no_face"]) == (4, 1)
    assert 0.0 <= astro["fpr"]["value"] <= 1.0


def test_firmness_table_counts_each_call_and_its_mistakes(run):
    _, out, report, items, _ = run
    table = {(r["call"], r["firm"]): r for r in report["firmness"]}
    assert set(table) == {(call, firm) for call in ("FAKE", "REAL") for firm in (True, False)}
    ranged = [r for r in items.values() if r["kind"] == "image" and r["range_low"]]
    assert ranged and all(float(r["range_low"]) <= float(r["score"]) <= float(r["range_high"]) for r in ranged)
    calls = sum(1 for r in ranged if r["verdict"] in ("FAKE", "REAL"))
    assert sum(r["items"] for r in table.values()) == calls
    assert "## Firm and fragile calls (images)" in (out / "report.md").read_text()


def test_firmness_table_from_rows():
    thresholds = {"real": 0.3, "fake": 0.65}
    rows = [ItemRow("a", "fake", "m", "image", score=0.9, verdict="FAKE", range_low=0.7, range_high=0.95),
            ItemRow("b", "real", "r", "image", score=0.8, verdict="FAKE", range_low=0.5, range_high=0.85),
            ItemRow("c", "fake", "m", "image", score=0.2, verdict="REAL", range_low=0.1, range_high=0.4),
            ItemRow("d", "real", "r", "video", score=0.9, verdict="FAKE")]  # videos are not re-cropped
    table = {(r["call"], r["firm"]): (r["items"], r["wrong"]) for r in evaluate.firmness_table(rows, thresholds)}
    assert table == {("FAKE", True): (1, 0), ("FAKE", False): (1, 1), ("REAL", True): (0, 0), ("REAL", False): (1, 1)}


def test_markdown_is_plain_tables(run):
    _, out, report, _, _ = run
    text = (out / "report.md").read_text()
    assert text.startswith("# Evaluation report")
    assert "broken.jpg" in text and "image/tinted" in text and "False positives per real source" in text
    assert not re.search(r"(?<!\\)<[a-zA-Z/]", text)  # no HTML tag


def test_every_report_key_is_documented(run):
    _, _, report, items, _ = run
    documented = set(re.findall(r"`([a-z_]+)`", DOCS.read_text()))
    split = report["splits"][0]
    keys = set(report) | set(split) | set(split["counts"]["real"]) | set(report["real_sources"][0]) | set(next(iter(items.values())))
    assert keys - documented == set()


def _entry(rel: str, group: str) -> Entry:
    return Entry(Path(rel), rel, rel.split("/")[0], group, "image")


def test_limit_spreads_over_groups():
    entries = [_entry(f"fake/m{g}/{i}.jpg", f"m{g}") for g in range(3) for i in range(5)] + [_entry("real/r/0.jpg", "r")]
    kept = evaluate.limit_per_class(entries, 4)
    assert [e.group for e in kept] == ["r", "m0", "m1", "m2", "m0"]
    assert evaluate.limit_per_class(entries, None) == entries


def test_discover_groups_and_skips(tmp_path):
    (tmp_path / "fake/gan/deep").mkdir(parents=True)
    (tmp_path / "real").mkdir()
    (tmp_path / "fake/gan/deep/x.bin").write_bytes(b"\x89PNG\r\n\x1a\n....")  # sniffed by content
    (tmp_path / "real/top.jpg").write_bytes(b"garbage")  # kept by extension, fails later
    (tmp_path / "real/.hidden.jpg").write_bytes(b"\xff\xd8\xff")
    entries, skipped = evaluate.discover(tmp_path)
    assert [(e.rel, e.label, e.group, e.kind) for e in entries] == [
        ("real/top.jpg", "real", "unsorted", "image"), ("fake/gan/deep/x.bin", "fake", "gan", "image")]
    assert skipped == ["real/.hidden.jpg"]


def test_discover_refuses_a_folder_without_real_or_fake(tmp_path):
    with pytest.raises(SystemExit, match="neither real/ nor fake/"):
        evaluate.discover(tmp_path)


def test_build_splits_without_videos():
    rows = [ItemRow("r.jpg", "real", "src", "image"), ItemRow("f.jpg", "fake", "gan", "image")]
    assert [(k, m, len(rs)) for k, m, rs in evaluate.build_splits(rows)] == [("image", "gan", 2), ("image", "all", 2)]
