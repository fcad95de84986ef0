"""Exports of one case or a batch: JSON (complete, schema in docs/cases.md), CSV (one row per case)
and a self-contained HTML report that opens offline.

The HTML report carries everything inline: thumbnails and heatmaps as base64 images, charts as
Plotly figures with plotly.js embedded once, and a Content-Security-Policy that forbids any network
access. Every string a user or a file provided (file names, notes, names, metadata) is HTML-escaped.
"""
from __future__ import annotations

import base64
import csv
import io
import json
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any, Iterable, Sequence

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from core import __version__, charts
from core.analyze import score_text, video_score_text
from core.cases import FINAL_VERDICTS, AuditEntry, Batch, Case
from core.casework import stored_result
from core.forensics.html import forensics_html
from core.model import METADATA_FILE, WEIGHTS_DIR

__all__ = [
    "TOOL_NAME", "EXPORT_SCHEMA", "EXPORT_SCHEMA_VERSION", "DISCLAIMER", "CSV_COLUMNS", "case_record",
    "export_json", "csv_row", "export_csv", "export_audit_csv", "model_card_summary", "export_html", "write_exports",
]

TOOL_NAME = "deepfake-forensics"
EXPORT_SCHEMA = "deepfake-forensics/cases"
EXPORT_SCHEMA_VERSION = 1
DISCLAIMER = "A score is evidence for a human reviewer, never proof."
LIMITS = (
    "The detector judges faces only. Heavy re-compression, small or profile faces, screen recordings and "
    "generators unlike its training data can fool it either way; manipulations outside faces (background, "
    "audio, context) are not examined. Corroborate with provenance, the source and other forensic checks "
    "before publishing, moderating or accusing anyone."
)
HEATMAP_GUIDE = (
    "Grad-CAM: red marks the regions whose features most raised the branch's 'manipulated' score. It shows "
    "where the evidence lies, not that a region was edited. Grey hatching marks crop area past the picture's edge, "
    "filled by repeating the edge: heat there is no evidence."
)
CSV_COLUMNS = (
    "case_id", "sha256", "file_name", "kind", "size_bytes", "created_at", "created_by", "verdict", "score",
    "confidence", "family", "model_version", "model_trained", "threshold_real", "threshold_fake", "frames",
    "faces", "judged_faces", "agreement", "final_verdict", "label_confidence", "labelled_by", "labelled_at",
    "disagrees", "notes", "batches", "cautions",
)
_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "img-src data:; font-src data:")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode("ascii") if data else None


def _tool() -> dict:
    return {"name": TOOL_NAME, "version": __version__}


def _entry(e: AuditEntry) -> dict:
    return {"at": _iso(e.at), "analyst": e.analyst, "action": e.action, "field": e.field, "old": e.old, "new": e.new}


def case_record(case: Case) -> dict:
    """One case as the JSON export holds it (documented in docs/cases.md)."""
    record = {
        "id": case.id, "sha256": case.sha256, "file_name": case.file_name, "kind": case.kind, "size": case.size,
        "created_at": _iso(case.created_at), "updated_at": _iso(case.updated_at), "created_by": case.created_by,
        "model": {"version": case.model_version, "trained": case.model_trained, "thresholds": case.thresholds},
        "verdict": {"label": case.verdict, "score": case.score, "confidence": case.confidence, "family": case.family},
        "label": {
            "agreement": case.agreement, "final_verdict": case.final_verdict, "confidence": case.label_confidence,
            "by": case.labelled_by, "at": _iso(case.labelled_at),
        },
        "disagrees": case.disagrees,
        "media": case.media,
        "result": case.result,
        "forensics": case.forensics,
        "notes": [{"analyst": n.analyst, "at": _iso(n.created_at), "text": n.text} for n in case.notes],
        "history": [_entry(e) for e in case.history],
        "batches": [{"id": b.id, "name": b.name} for b in case.batches],
        "media_kept": case.has_media,
        "thumbnail_jpeg_base64": _b64(case.thumbnail),
        "heatmaps": [
            {
                "frame_index": h.frame_index, "face_index": h.face_index, "branch": h.branch, "score": h.score,
                "crop_png_base64": _b64(h.crop_png),
                "overlay_png_base64": _b64(h.overlay_png),
            }
            for h in case.heatmaps
        ],
    }
    return record


def _batch_record(batch: Batch | None) -> dict | None:
    if batch is None:
        return None
    return {"id": batch.id, "name": batch.name, "created_at": _iso(batch.created_at), "created_by": batch.created_by,
            "failed_files": [{"at": _iso(f.at), "analyst": f.analyst, "sha256": f.sha256 or None, "file_and_error": f.new}
                             for f in batch.failures]}


def export_json(cases: Sequence[Case], batch: Batch | None = None) -> str:
    """The complete export: every stored field of every case, images as base64."""
    document = {
        "schema": EXPORT_SCHEMA, "schema_version": EXPORT_SCHEMA_VERSION,
        "exported_at": _iso(datetime.now(timezone.utc)), "tool": _tool(), "disclaimer": DISCLAIMER,
        "batch": _batch_record(batch), "cases": [case_record(c) for c in cases],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def _spreadsheet_safe(value: Any) -> Any:
    """Text a spreadsheet would run as a formula (=, +, -, @ first) is prefixed with a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_row(case: Case) -> dict[str, Any]:
    faces = [face for frame in case.result.get("frames", []) for face in frame["faces"]]
    row = {
        "case_id": case.id, "sha256": case.sha256, "file_name": case.file_name, "kind": case.kind,
        "size_bytes": case.size, "created_at": _iso(case.created_at), "created_by": case.created_by,
        "verdict": case.verdict, "score": case.score, "family": case.family,
        # INCONCLUSIVE has no confidence to read in a sheet (JSON keeps the side it leans to, documented there)
        "confidence": None if case.verdict == "INCONCLUSIVE" else case.confidence,
        "model_version": case.model_version, "model_trained": case.model_trained,
        "threshold_real": case.thresholds.get("real"), "threshold_fake": case.thresholds.get("fake"),
        "frames": len(case.result.get("frames", [])), "faces": len(faces),
        "judged_faces": sum(1 for f in faces if f.get("scores")), "agreement": case.agreement,
        "final_verdict": case.final_verdict, "label_confidence": case.label_confidence,
        "labelled_by": case.labelled_by, "labelled_at": _iso(case.labelled_at), "disagrees": case.disagrees,
        "notes": " | ".join(f"{n.analyst}: {n.text}" for n in case.notes),
        "batches": "; ".join(b.name for b in case.batches),
        "cautions": " | ".join(case.result.get("notes", [])),  # the model's notes (a fragile call, a re-shared video...)
    }
    return {k: _spreadsheet_safe(v) for k, v in row.items()}


def export_csv(cases: Iterable[Case]) -> str:
    """One row per case, columns `CSV_COLUMNS`; empty cells for missing values."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for case in cases:
        writer.writerow(csv_row(case))
    return buf.getvalue()


AUDIT_COLUMNS = ["at", "analyst", "action", "case_id", "sha256", "field", "old", "new", "batch_id"]


def export_audit_csv(entries: Iterable[AuditEntry]) -> str:
    """The store's audit trail, one row per change (files that failed have no case_id, and the batch
    they were submitted to as batch_id)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=AUDIT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for e in entries:
        row = {"at": _iso(e.at), "analyst": e.analyst, "action": e.action, "case_id": e.case_id, "sha256": e.sha256,
               "field": e.field, "old": e.old, "new": e.new, "batch_id": e.batch_id}
        writer.writerow({k: _spreadsheet_safe(v) for k, v in row.items()})
    return buf.getvalue()


def model_card_summary(weights_dir: Path = WEIGHTS_DIR) -> dict:
    """The installed detector as `detector.json` describes it; {} when the file is missing."""
    path = Path(weights_dir) / METADATA_FILE
    if not path.is_file():
        return {}
    meta = json.loads(path.read_text(encoding="utf-8"))
    branches = meta.get("branches", {})
    return {
        "version": meta.get("version"), "created": meta.get("created"), "code_commit": meta.get("code_commit"),
        "fusion": meta.get("fusion"), "thresholds": meta.get("thresholds"),
        "trained": bool(branches) and all(b.get("trained") for b in branches.values()),
        "branches": {
            name: {k: b.get(k) for k in ("backbone", "input_size", "trained")} for name, b in branches.items()
        },
        "training": {name: _training_line(run) for name, run in meta.get("training", {}).items() if isinstance(run, dict)},
    }


def _training_line(run: dict) -> str:
    """A training run summary in one line; options left off (0.0 or None) are omitted."""
    kept = [(k, v) for k, v in run.items()
            if k != "branch" and isinstance(v, (str, int, float)) and not (isinstance(v, float) and v == 0.0)]
    line = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in kept)
    earlier = len(run.get("earlier_stages", []))
    return line + (f"; after {earlier} earlier stage(s)" if earlier else "")


# ---------------------------------------------------------------- HTML

_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
padding:0 1rem;color:#1d2330;background:#fff}
h1{margin-bottom:.2rem} h2{border-top:2px solid #d0d5dd;padding-top:1rem;margin-top:2.5rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:13px} td,th{border:1px solid #d0d5dd;padding:3px 7px;
text-align:left;vertical-align:top} td{white-space:pre-wrap} th{background:#f2f4f7} code{font-size:12px;word-break:break-all}
.disclaimer{border:2px solid #b54708;background:#fffaeb;padding:.8rem 1rem;margin:1rem 0;border-radius:6px}
.verdict{padding:.8rem 1rem;border-radius:6px;color:#fff;margin:1rem 0}
.FAKE{background:#b42318}.REAL{background:#067647}.INCONCLUSIVE{background:#b54708}.NOFACE{background:#475467}
.warn{color:#b42318;font-weight:600} .muted{color:#667085;font-size:13px}
.grid{display:flex;flex-wrap:wrap;gap:12px} figure{margin:0} figcaption{font-size:12px;color:#475467;max-width:330px}
img.thumb{max-width:320px;border:1px solid #d0d5dd} img.face{width:160px;height:160px;image-rendering:pixelated}
@media print{h2{page-break-before:always} .chart{page-break-inside:avoid}}
"""


def _e(value: Any) -> str:
    """HTML-escaped text of any value; None shows as a dash."""
    return "–" if value is None else escape(str(value), quote=True)


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "–" if value is None else format(value, fmt)


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _facts(pairs: Iterable[tuple[str, Any]]) -> str:
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs) + "</table>"


def _img(data: bytes, mime: str, alt: str, cls: str) -> str:
    return f'<img class="{cls}" alt="{_e(alt)}" src="data:{mime};base64,{_b64(data)}">'


def _figure_html(fig: go.Figure) -> str:
    fig.update_layout(template="plotly_white", height=330)
    html = fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False, "responsive": True})
    return f'<div class="chart">{html}</div>'


def _charts(case: Case) -> str:
    result = stored_result(case.result)
    if not any(face.scores for face in result.faces):
        return ""
    parts = []
    if result.kind == "video" and len(result.frames) > 1:
        timeline = charts.timeline_figure(result)
        timeline.update_layout(title_text="Score per sampled frame (most suspicious face)")
        parts.append(_figure_html(timeline))
    worst = max(result.frames, key=lambda fr: fr.score if fr.score is not None else -1.0)
    faces = charts.face_scores_figure(result, worst)
    if result.kind == "video":
        faces.update_layout(title_text=f"Faces of the most suspicious frame ({worst.time:.2f} s)")
    parts.append(_figure_html(faces))
    return "".join(parts)


def _analyst_verdict_html(case: Case) -> str:
    """The analyst's final verdict above the model's, as large: a reader must not take the model's call
    for the finding when the analyst reached another."""
    if case.final_verdict is None:
        return ""
    against = " · the analyst disagrees with the model" if case.disagrees else ""
    css = case.final_verdict.replace(" ", "") if case.final_verdict in FINAL_VERDICTS else ""
    return (f"<div class='verdict {css}'><strong style='font-size:1.4em'>Analyst's final verdict: "
            f"{_e(case.final_verdict)}</strong>{against}<br>by {_e(case.labelled_by)}, {_iso(case.labelled_at)}</div>")


def _verdict_html(case: Case) -> str:
    verdict = case.result.get("verdict", {})
    lines = [f"<strong style='font-size:1.4em'>Model: {_e(case.verdict)}</strong>"]
    lines += [_e(text) for text in score_text(case.kind, case.verdict, case.score, case.confidence)]
    lines.append(_e(verdict.get("reason")))
    judged_frames = stored_result(case.result).judged_frames
    if case.kind == "video" and judged_frames:
        lines.append(_e(video_score_text(judged_frames)))
    if case.family:
        lines.append(f"driven by the {_e(case.family)} branch")
    css = case.verdict.replace(" ", "")
    untrained = "" if case.model_trained else (
        "<p class='warn'>The model that produced this case had UNTRAINED weights: its score is not a finding.</p>")
    return f"<div class='verdict {css}'>{'<br>'.join(lines)}</div>{untrained}"


def _label_html(case: Case) -> str:
    if case.agreement is None and case.final_verdict is None:
        return "<p class='muted'>Not labelled by an analyst yet.</p>"
    pairs = [
        ("Agreement with the model", case.agreement), ("Final verdict (analyst)", case.final_verdict),
        ("Analyst confidence", None if case.label_confidence is None else f"{case.label_confidence:.0%}"),
        ("Labelled by", case.labelled_by), ("Labelled at", _iso(case.labelled_at)),
    ]
    flag = "<p class='warn'>The analyst disagrees with the model.</p>" if case.disagrees else ""
    return _facts(pairs) + flag


def _media_facts(case: Case) -> list[tuple[str, Any]]:
    m = case.media
    pairs: list[tuple[str, Any]] = [("Resolution", f"{m.get('width')} × {m.get('height')}")]
    if case.kind == "video":
        pairs += [("Duration", f"{m.get('duration', 0):.2f} s"), ("Frame rate", f"{m.get('fps', 0):.2f} fps"),
                  ("Codec / container", f"{m.get('codec')} / {m.get('container')}"),
                  ("Frames sampled", m.get("frames_sampled"))]
    return pairs


def _faces_table(case: Case, limit: int = 300) -> str:
    rows = []
    branches = [n for n in case.result.get("branch_scores", {}) if n != "fused"]
    for frame in case.result.get("frames", []):
        for i, face in enumerate(frame["faces"]):
            scores = face.get("scores") or {}
            x, y, w, h = face["box"]
            span = face.get("score_range")
            person = None if face.get("track") is None else face["track"] + 1  # numbered as the pages do
            rows.append([frame["index"], f"{frame['time']:.2f}", i + 1, person, f"{w:.0f} × {h:.0f} at ({x:.0f}, {y:.0f})",
                         "too small" if face["too_small"] else _num(scores.get("fused")),
                         *[_num(scores.get(b)) for b in branches], f"{_num(span[0])} to {_num(span[1])}" if span else None])
    if not rows:
        return "<p class='muted'>No face was found.</p>"
    more = f"<p class='muted'>First {limit} of {len(rows)} faces; the JSON export has all.</p>" if len(rows) > limit else ""
    headers = ["frame", "time (s)", "face", "person", "box", "fused", *branches, "fused, re-framed or mirrored"]
    if not any(row[-1] for row in rows):  # videos, and cases saved before the firmness check
        headers, rows = headers[:-1], [row[:-1] for row in rows]
    return _table(headers, rows[:limit]) + more


def _heatmaps_html(case: Case) -> str:
    if not case.heatmaps:
        return ""
    items = []
    for h in case.heatmaps:
        caption = f"{h.where(case.kind)}: {h.branch} branch, fused score {_num(h.score)}"
        items.append(
            f"<figure>{_img(h.crop_png, 'image/png', 'face crop', 'face')}"
            f"{_img(h.overlay_png, 'image/png', 'Grad-CAM overlay', 'face')}<figcaption>{_e(caption)}</figcaption></figure>"
        )
    return f"<h3>Most suspicious faces: crop the model saw, and its heatmap</h3><p class='muted'>{_e(HEATMAP_GUIDE)}</p>" \
           f"<div class='grid'>{''.join(items)}</div>"


def _rerun_command(case: Case) -> str:
    """The command that analyzes the file again as here, given the code and model named above: into a
    store of its own, since a file already in a store is not analyzed again."""
    frames = case.media.get("frames_requested") or case.media.get("frames_sampled")
    return ("python -m core.cli scan FILE --db sqlite:///rerun.db --out rerun"
            + (f" --frames {frames}" if case.kind == "video" and frames else "")
            + " (with that code checked out and that model in weights/, or --weights FOLDER)")


def _case_html(case: Case, current_model: str | None, with_charts: bool) -> str:
    facts = [
        ("SHA-256", case.sha256), ("Size", f"{case.size:,} bytes"), ("Kind", case.kind), *_media_facts(case),
        ("Model version", f"{case.model_version} ({'trained' if case.model_trained else 'UNTRAINED'})"),
        ("Code", case.result.get("code_version") or "not recorded (analyzed before 2026-12-05)"),
        ("To reproduce", _rerun_command(case)),
        ("Thresholds", _thresholds_text(case.thresholds)),
        ("Analyzed", f"{_iso(case.created_at)} by {case.created_by}"),
        ("Batches", ", ".join(b.name for b in case.batches) or None),
    ]
    mismatch = ""
    if current_model and current_model != case.model_version:
        mismatch = (f"<p class='muted'>Analyzed with model {_e(case.model_version)}; the model card at the end "
                    f"describes the installed model {_e(current_model)}.</p>")
    thumb = _img(case.thumbnail, "image/jpeg", "thumbnail", "thumb") if case.thumbnail else ""
    notes = "".join(f"<li>{_e(note)}</li>" for note in case.result.get("notes", []))
    analyst_notes = _table(["at", "analyst", "note"], [(_iso(n.created_at), n.analyst, n.text) for n in case.notes])
    trail = _table(["at", "analyst", "action", "field", "old", "new"],
                   [(_iso(e.at), e.analyst, e.action, *e.in_words()) for e in case.history])
    return "".join([
        f"<section id='case-{case.id}'><h2>Case #{case.id}: {_e(case.file_name)}</h2>",
        _analyst_verdict_html(case), _verdict_html(case), f"<ul>{notes}</ul>" if notes else "", mismatch,
        f"<div class='grid'><div>{_facts(facts)}</div><div>{thumb}</div></div>",
        "<h3>Analyst label</h3>", _label_html(case),
        _charts(case) if with_charts else "", _heatmaps_html(case),
        "<h3>Every face</h3>", _faces_table(case), forensics_html(case.forensics) if case.forensics else "",
        "<h3>Notes</h3>", analyst_notes if case.notes else "<p class='muted'>No notes.</p>",
        "<h3>Audit trail</h3>", trail, "</section>",
    ])


def _summary_html(cases: Sequence[Case]) -> str:
    rows = [
        (c.id, c.file_name, c.verdict, _num(c.score), c.model_version, c.final_verdict, "yes" if c.disagrees else "",
         c.sha256[:16] + "…")
        for c in cases
    ]
    return _table(["case", "file", "model verdict", "score", "model", "analyst verdict", "disagrees", "sha256"], rows)


def _thresholds_text(thresholds: dict | None) -> str | None:
    if not thresholds:
        return None
    return f"REAL ≤ {thresholds['real']:.3f}, FAKE ≥ {thresholds['fake']:.3f}, INCONCLUSIVE in between"


def _model_card_html(card: dict) -> str:
    if not card:
        return "<p class='muted'>No model card (weights/detector.json) was found.</p>"
    facts = [
        ("Version", card["version"]), ("Created", card["created"]), ("Code commit", card["code_commit"]),
        ("Trained", "yes" if card["trained"] else "NO: placeholder weights, scores are not findings"),
        ("Fusion", card["fusion"]), ("Thresholds", _thresholds_text(card["thresholds"])),
        *[(f"Branch {name}", f"{b['backbone']}, {b['input_size']} px, {'trained' if b['trained'] else 'untrained'}")
          for name, b in card["branches"].items()],
        *[(f"Training: {k}", v) for k, v in card["training"].items()],
    ]
    return _facts(facts)


def export_html(cases: Sequence[Case], batch: Batch | None = None, model_card: dict | None = None,
                charts_inline: bool = True) -> str:
    """A self-contained report of the cases; `charts_inline=False` leaves the Plotly charts (and
    the ~4.8 MB of plotly.js) out, for a small file with tables and images only."""
    card = model_card_summary() if model_card is None else model_card
    now = datetime.now(timezone.utc)
    title = f"Batch: {batch.name}" if batch else (f"Case #{cases[0].id}: {cases[0].file_name}" if len(cases) == 1 else "Cases")
    script = f"<script>{get_plotlyjs()}</script>" if charts_inline else ""
    bodies = "".join(_case_html(c, card.get("version"), charts_inline) for c in cases)
    return "".join([
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">",
        f"<title>{_e(title)} · deepfake forensics report</title><style>{_STYLE}</style>{script}</head><body>",
        f"<h1>Deepfake forensics report</h1><p class='muted'>{_e(title)} · {len(cases)} case(s){_failed_count(batch)} · generated "
        f"{_e(_iso(now))} by {_e(TOOL_NAME)} {_e(__version__)} · installed model {_e(card.get('version'))}</p>",
        f"<div class='disclaimer'><strong>{_e(DISCLAIMER)}</strong> {_e(LIMITS)}</div>",
        _failures_html(batch), _summary_html(cases) if len(cases) > 1 else "", bodies,
        "<h2>Model card (installed detector)</h2>", _model_card_html(card),
        f"<p class='muted'>{_e(DISCLAIMER)} Report format {_e(EXPORT_SCHEMA)} v{EXPORT_SCHEMA_VERSION}.</p>",
        "</body></html>",
    ])


def _failed_count(batch: Batch | None) -> str:
    return f" · {len(batch.failures)} file(s) not analyzed" if batch and batch.failures else ""


def _failures_html(batch: Batch | None) -> str:
    """The files submitted to the batch that could not be analyzed (they have no case below)."""
    if batch is None or not batch.failures:
        return ""
    items = "".join(f"<li>{_e(f.new)} <span class='muted'>({_e(_iso(f.at))}, {_e(f.analyst)})</span></li>" for f in batch.failures)
    return f"<h2>Files of this batch that could not be analyzed ({len(batch.failures)})</h2><ul>{items}</ul>"


def write_exports(out_dir: Path, cases: Sequence[Case], batch: Batch | None = None, charts_inline: bool = True) -> dict[str, Path]:
    """report.html, cases.json and cases.csv in `out_dir` (created); returns the paths by format."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"html": out_dir / "report.html", "json": out_dir / "cases.json", "csv": out_dir / "cases.csv"}
    paths["html"].write_text(export_html(cases, batch, charts_inline=charts_inline), encoding="utf-8")
    paths["json"].write_text(export_json(cases, batch), encoding="utf-8")
    paths["csv"].write_text(export_csv(cases), encoding="utf-8", newline="")
    return paths
