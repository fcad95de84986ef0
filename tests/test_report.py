"""Exports (JSON, CSV, HTML) and the analysis-to-case bridge (thumbnail, heatmaps, rebuilt result)."""
from __future__ import annotations

import base64
import csv
import dataclasses
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import cases, casework, report
from core.analyze import analyze_image_bytes
from store_fixtures import sample_result, sha

DOCS = Path(__file__).resolve().parent.parent / "docs" / "cases.md"
HOSTILE = '<img src=x onerror="alert(1)">&"quotes"'


@pytest.fixture
def store(tmp_path):
    s = cases.open_store(f"sqlite:///{tmp_path / 'cases.db'}")
    yield s
    s.close()


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def two_cases(store) -> list[cases.Case]:
    """A labelled image case with hostile strings everywhere a user or a file can put text, and a video case."""
    batch = store.create_batch(f"batch {HOSTILE}", f"analyst {HOSTILE}")
    store.log_failure(sha(3), f"broken {HOSTILE}.jpg", "ann", "The image could not be decoded.", batch.id)
    heat = cases.Heatmap(0, 0, "blend", 0.9, _png(np.zeros((8, 8, 3), np.uint8)), _png(np.full((8, 8, 3), 200, np.uint8)))
    forensics = {"version": 1, "provenance": {"status": "none"}, "flags": [
        {"kind": "editor", "field": "Software", "value": f"<script>alert('x')</script>{HOSTILE}", "meaning": "an editor"}
    ], "limits": "flags are hints"}
    image = store.save(sample_result(sha(1)), f"photo {HOSTILE}.jpg", f"analyst {HOSTILE}", thumbnail=b"\xff\xd8thumb",
                       heatmaps=[heat], forensics=forensics, batch_id=batch.id).case
    store.label(image.id, "bob", agreement="disagree", final_verdict="REAL", confidence=0.8)
    store.add_note(image.id, "bob", f"=HYPERLINK(\"http://evil\") {HOSTILE}\nsecond line, with comma")
    video = store.save(sample_result(sha(2), "REAL", 0.1, kind="video", frames=4), "clip.mp4", "ann", batch_id=batch.id).case
    return [store.get(image.id), store.get(video.id)]


def test_json_export_is_complete(two_cases):
    doc = json.loads(report.export_json(two_cases))
    assert doc["schema"] == report.EXPORT_SCHEMA and doc["schema_version"] == report.EXPORT_SCHEMA_VERSION
    assert doc["tool"]["version"] and doc["disclaimer"] == report.DISCLAIMER
    image, video = doc["cases"]
    case = two_cases[0]
    assert image["result"] == case.result and image["sha256"] == case.sha256
    assert image["label"]["final_verdict"] == "REAL" and image["disagrees"] is True
    assert [h["action"] for h in image["history"]] == ["create", "batch", "label", "label", "label", "note"]
    assert base64.b64decode(image["thumbnail_jpeg_base64"]) == case.thumbnail
    assert base64.b64decode(image["heatmaps"][0]["overlay_png_base64"]) == case.heatmaps[0].overlay_png
    assert image["forensics"] == case.forensics and video["kind"] == "video"
    assert len(video["result"]["frames"]) == 4


def _keys(value, prefix=""):
    """Every key path of a JSON document, skipping the contents documented elsewhere."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            if key not in ("result", "forensics", "media", "thresholds"):
                yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)


def test_every_exported_key_is_documented(two_cases, store):
    batch = store.batch(store.batches()[0].id)
    doc = json.loads(report.export_json(two_cases, batch))
    documented = set(re.findall(r"""[`"]([a-z_0-9]+)[`"]""", DOCS.read_text(encoding="utf-8")))
    missing = sorted(set(_keys(doc)) - documented)
    assert not missing, f"document these keys in docs/cases.md: {missing}"


def test_csv_has_one_row_per_case_and_defuses_formulas(two_cases):
    rows = list(csv.DictReader(io.StringIO(report.export_csv(two_cases))))
    assert len(rows) == 2 and tuple(rows[0]) == report.CSV_COLUMNS
    image = rows[0]
    assert image["file_name"] == f"photo {HOSTILE}.jpg"
    assert image["disagrees"] == "True" and image["final_verdict"] == "REAL" and image["faces"] == "1"
    assert "second line, with comma" in image["notes"]  # newlines and commas survive quoting
    assert rows[1]["frames"] == "4"
    assert report.csv_row(two_cases[0])["notes"].startswith("bob: =HYPERLINK")  # not at the cell start
    assert report._spreadsheet_safe("=1+1") == "'=1+1" and report._spreadsheet_safe("-2") == "'-2"
    assert image["cautions"] == rows[1]["cautions"] == ""
    unsure = dataclasses.replace(two_cases[0], verdict="INCONCLUSIVE", confidence=0.65)
    assert report.csv_row(unsure)["confidence"] is None and image["confidence"] == str(two_cases[0].confidence)
    cautioned = dataclasses.replace(two_cases[0], result={**two_cases[0].result, "notes": ["Fragile call: 0.2 to 0.9.", "-Turned."]})
    assert report.csv_row(cautioned)["cautions"] == "Fragile call: 0.2 to 0.9. | -Turned."  # the model's notes beside its confidence


def test_html_escapes_every_user_string(two_cases, store):
    page = report.export_html(two_cases, store.batch(store.batches()[0].id), charts_inline=False)
    assert "<img src=x" not in page and "<script>alert" not in page and 'onerror="alert' not in page
    escaped = 'photo &lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&quot;quotes&quot;.jpg'
    assert escaped in page
    assert "batch &lt;img" in page and "analyst &lt;img" in page and "&lt;script&gt;alert(&#x27;x&#x27;)" in page
    assert "· 2 case(s) · 1 file(s) not analyzed ·" in page and "Files of this batch that could not be analyzed (1)" in page
    assert "<li>broken &lt;img src=x" in page  # the failed file is named, escaped


def test_html_states_what_a_reader_needs(two_cases):
    case = two_cases[0]
    page = report.export_html([case], charts_inline=False)
    for text in (report.DISCLAIMER, case.sha256, case.model_version, "REAL ≤ 0.35", "FAKE ≥ 0.65",
                 f"{report.TOOL_NAME} {report.__version__}", "The analyst disagrees with the model",
                 "Model card (installed detector)", "data:image/png;base64,", "data:image/jpeg;base64,", "Audit trail",
                 "fused, re-framed or mirrored"):
        assert text in page, text
    assert "<td>confidence</td><td></td><td>80%</td>" in page and "label_confidence" not in page  # words, not codes
    installed = report.model_card_summary()["thresholds"]
    assert page.count("REAL ≤ 0.35") == 1 and '{"real"' not in page  # the case's thresholds in words, once
    assert f"<th>Thresholds</th><td>REAL ≤ {installed['real']:.3f}, FAKE ≥ {installed['fake']:.3f}" in page  # the installed model's too
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing fetched from a network


def test_html_says_which_code_made_each_result_and_how_to_run_it_again(two_cases):
    from core import code_version
    image, video = (report.export_html([case], charts_inline=False) for case in two_cases)
    assert f"<th>Code</th><td>{code_version()}</td>" in image and "+" in code_version()
    assert "python -m core.cli scan FILE --db sqlite:///rerun.db --out rerun (with" in image
    assert "--out rerun --frames 4 (with" in video


def test_html_puts_the_analysts_verdict_above_the_models(two_cases):
    page = report.export_html(two_cases, charts_inline=False)
    analyst = page.index("Analyst's final verdict: REAL")
    assert analyst < page.index("Model: FAKE") and "the analyst disagrees with the model" in page[analyst:analyst + 200]
    assert "How a video is scored" in page  # the video case says how its frames make the score
    assert "Face 1: blend branch" in page and "Frame 0, face 1" not in page  # an image has no frames to number
    assert page.count("<th>fused, re-framed or mirrored</th>") == 1 and "0.800 to 0.900" in page  # images only


def test_html_keeps_the_line_breaks_of_a_note(two_cases):
    page = report.export_html(two_cases, charts_inline=False)
    assert "\nsecond line, with comma</td>" in page and "td{white-space:pre-wrap}" in page


def test_html_embeds_plotly_once_for_offline_charts(two_cases):
    page = report.export_html(two_cases)
    assert page.count("Plotly.newPlot") == 3  # image: faces; video: timeline and faces
    assert page.count("<script>") - page.count("Plotly.newPlot") <= 1  # plotly.js itself once
    assert len(page) < 6_000_000  # plotly.js is ~4.8 MB; the rest is small
    small = report.export_html(two_cases, charts_inline=False)
    assert "Plotly" not in small and len(small) < 200_000


def test_model_card_summary(tmp_path):
    assert report.model_card_summary(tmp_path) == {}
    (tmp_path / "detector.json").write_text(json.dumps({
        "version": "v9", "thresholds": {"real": 0.3, "fake": 0.7},
        "branches": {"blend": {"backbone": "mobilenet_v2", "input_size": 160, "trained": True}},
        "training": {"blend": {"branch": "blend", "steps": 3000, "swaps": 0.0, "noisy": 0.5, "seed": 0, "colour": None,
                               "held_out_auc": 0.879296875, "earlier_stages": [{"steps": 2400}, {"steps": 1000}]}},
    }))
    card = report.model_card_summary(tmp_path)
    assert card["version"] == "v9" and card["trained"] is True
    assert card["training"] == {"blend": "steps 3000, noisy 0.5, seed 0, held_out_auc 0.8793; after 2 earlier stage(s)"}


def test_model_card_summary_of_the_shipped_weights_names_each_branch_run():
    training = report.model_card_summary()["training"]
    assert set(training) == {"blend", "synthetic"} and all("held_out_auc" in line for line in training.values())


def test_html_notes_a_model_other_than_the_installed_one(two_cases):
    page = report.export_html(two_cases[:1], model_card={}, charts_inline=False)
    assert "No model card" in page
    other = {**report.model_card_summary(), "version": "newer-model"}
    assert "describes the installed model newer-model" in report.export_html(two_cases[:1], model_card=other, charts_inline=False)


def test_write_exports(tmp_path, two_cases):
    paths = report.write_exports(tmp_path / "out", two_cases, charts_inline=False)
    assert sorted(p.name for p in paths.values()) == ["cases.csv", "cases.json", "report.html"]
    assert json.loads(paths["json"].read_text())["cases"][1]["id"] == two_cases[1].id


def test_stored_result_rebuilds_the_analysis():
    data = sample_result(sha(3), kind="video", frames=3)
    rebuilt = casework.stored_result(data)
    assert json.loads(json.dumps(rebuilt.to_dict())) == data
    assert rebuilt.frames[1].faces[0].crop is None and rebuilt.verdict.label == "FAKE"
    newer = {**data, "added_by_a_newer_tool": 1, "verdict": {**data["verdict"], "extra": 2}}
    assert casework.stored_result(newer).sha256 == data["sha256"]


def test_record_keeps_thumbnail_heatmaps_and_forensics(store, engine, astronaut_jpeg):
    result = analyze_image_bytes(engine, astronaut_jpeg)
    saved = casework.record(store, engine, result, astronaut_jpeg, "astronaut.jpg", "ann")
    case = saved.case
    assert saved.created and not case.has_media
    thumb = Image.open(io.BytesIO(case.thumbnail))
    assert thumb.format == "JPEG" and max(thumb.size) == casework.THUMBNAIL_SIDE
    assert case.forensics["sha256"] == result.sha256
    assert 1 <= len(case.heatmaps) <= casework.HEATMAPS_KEPT
    top = case.heatmaps[0]
    crop = np.asarray(Image.open(io.BytesIO(top.crop_png)))
    assert crop.shape == (engine.detector.input_size,) * 2 + (3,)
    # the stored crop is exactly what was scored: re-scoring it gives the stored score
    assert float(engine.detector.score([crop])["fused"][0]) == pytest.approx(top.score, abs=1e-4)
    again = casework.record(store, engine, result, astronaut_jpeg, "copy.jpg", "bob", batch_id=store.create_batch("b", "bob").id)
    assert not again.created and again.case.id == case.id and [b.name for b in again.case.batches] == ["b"]


def test_record_keeps_the_original_only_when_asked(store, engine, two_face_video):
    from core.analyze import analyze_video

    result = analyze_video(engine, two_face_video, 4)
    case = casework.record(store, engine, result, two_face_video, "clip.mp4", "ann", keep_media=True).case
    assert store.media(case.id) == two_face_video and case.kind == "video"
    track_of = {(fr["index"], i): face["track"] for fr in case.result["frames"] for i, face in enumerate(fr["faces"])}
    assert len({track_of[h.frame_index, h.face_index] for h in case.heatmaps[:2]}) == 2  # both people before a repeat
    assert Image.open(io.BytesIO(case.thumbnail)).format == "JPEG"


def test_scan_bytes_refuses_non_media_without_loading_the_model(store):
    def no_model():
        raise AssertionError("the model must not be loaded for a file that is not media")

    with pytest.raises(casework.MediaError, match="Not a supported image or video"):
        casework.scan_bytes(store, no_model, b"plain text, not a picture", "notes.jpg", "ann")
    with pytest.raises(casework.MediaError, match=r"The file is empty \(0 bytes\)"):  # as the image page says
        casework.scan_bytes(store, no_model, b"", "empty.jpg", "ann")
    assert store.count_cases() == 0


def test_audit_csv_lists_every_entry_and_defuses_formulas():
    from datetime import datetime, timezone

    from core.cases import AuditEntry

    at = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
    entries = [AuditEntry(2, None, "ab" * 32, "Ann", at, "failed", "analysis", None, '=HYPERLINK("x").jpg: not an image'),
               AuditEntry(1, 7, "cd" * 32, "Bob", at, "label", "agreement", None, "agree")]
    rows = list(csv.DictReader(io.StringIO(report.export_audit_csv(entries))))
    assert [(r["case_id"], r["action"], r["analyst"]) for r in rows] == [("", "failed", "Ann"), ("7", "label", "Bob")]
    assert rows[0]["new"].startswith("'=HYPERLINK") and rows[0]["at"].startswith("2026-12-03T12:00")
