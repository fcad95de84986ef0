"""The app's only Streamlit glue: the shared engine, limits, guarded analysis and result sections.

Pages read top to bottom: widgets, a guard, one `*_upload` call, then one call per section below.
A new section (cases, forensics, ...) is one more function here and one more call in a page.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError
from streamlit.runtime.uploaded_file_manager import UploadedFile

from core import charts
from core.analyze import AnalysisResult, Engine, FrameResult, analyze_image_bytes, analyze_video, load_engine
from core.cases import AuditEntry, Case, CaseNotFound, CaseStore, StoreError, default_url, open_store, sqlite_url
from core.casework import record, scan_bytes
from core.explain import gradcam, overlay
from core.faces import MIN_FACE_PX
from core.forensics import LIMITS as FORENSIC_LIMITS
from core.forensics import VIEW_GUIDANCE, VIEW_NAMES, compute_view, forensic_report, headline
from core.forensics.tracks import track_rows
from core.forensics.view import fit
from core.media import Limits, MediaError, decode_image
from core.migrations import SchemaError
from core.model import WEIGHTS_DIR, Detector

__all__ = [
    "get_engine", "engine_or_stop", "current_limits", "LIMITS_KEY", "Analysis", "image_upload", "video_upload",
    "remembered", "sidebar", "untrained_warning", "verdict_section", "boxed_image_section", "no_face_section",
    "face_chart_section", "faces_section", "media_facts_section", "timeline_section", "details_section",
    "model_card_text", "evaluation_report", "nested_headings", "document_section", "metadata_section", "LIMITS_TEXT", "ETHICS_TEXT", "STORAGE_TEXT", "HEATMAP_HELP", "UNTRAINED_TEXT",
    "forensic_context", "forensics_image_section", "forensics_video_section",
    "ANALYST_KEY", "AUTOSAVE_KEY", "KEEP_MEDIA_KEY", "plain", "store_url", "get_store", "store_or_none", "store_or_stop", "CaseSettings", "case_settings_sidebar", "case_settings",
    "open_case_link", "history_section", "case_section", "run_batch", "batch_results_section", "stored_forensics_section",
]

log = logging.getLogger(__name__)

LIMITS_KEY = "media_limits"  # session_state override of the media limits (tests lower them)
GRADCAM_KEY = "gradcam_overlays"
FACES_SHOWN = 6  # faces shown with crops and heatmaps before "show all"

FAMILY_TEXT = {
    "blend": "face-swap / splice evidence (blending boundaries)",
    "synthetic": "fully synthetic face evidence (GAN / diffusion traces)",
}
UNTRAINED_TEXT = (
    "**The shipped detector weights are UNTRAINED placeholders.** Every score on this page is meaningless "
    "and is not a finding; verdicts stay INCONCLUSIVE until trained weights are installed."
)
LIMITS_TEXT = (
    "**Limits.** A score is evidence for a human reviewer, never proof. The detector judges faces only: "
    "heavy re-compression, small or profile faces, screen recordings, and generators unlike its training "
    "data can fool it either way; manipulations outside faces (background, audio, context) are not examined."
)
STORAGE_TEXT = (
    "The file itself is not stored unless you choose to keep it; with case saving on and your name in the "
    "sidebar, the scores, a thumbnail and the most suspicious face crops are saved as a case."
)
ETHICS_TEXT = (
    "A score is evidence for a human reviewer, never proof. Do not publish, moderate or accuse on the score "
    "alone: corroborate with provenance, the source, and other forensic checks. Uploaded files are analyzed "
    "in memory. " + STORAGE_TEXT
)
HEATMAP_HELP = (
    "How to read the heatmap: red marks the regions whose features most raised this branch's "
    "'manipulated' score (Grad-CAM on the last feature map, so it is coarse). It shows where the evidence "
    "lies, not that a region was edited; on a face scored as real it is weak evidence of anything."
)
_BANNERS: dict[str, Callable] = {"FAKE": st.error, "REAL": st.success, "INCONCLUSIVE": st.warning, "NO FACE": st.info}


@st.cache_resource(show_spinner="Loading the detector (once per server)…")
def get_engine() -> Engine:
    """The detector and face finder, shared by every session; Grad-CAM on it is hook-free, hence thread-safe."""
    return load_engine()


def engine_or_stop() -> Engine:
    """The shared engine, or an error telling the operator how to fix the install, then stop the page."""
    try:
        return get_engine()
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        log.exception("detector failed to load")
        st.error(f"The detector could not be loaded: {exc}. Restore the weights/ folder from git and restart the app.")
        st.stop()


def current_limits() -> Limits:
    """Media limits; the byte cap follows server.maxUploadSize (Streamlit itself refuses larger uploads)."""
    override = st.session_state.get(LIMITS_KEY)
    if isinstance(override, Limits):
        return override
    minutes = float(os.environ.get("DEEPFAKE_MAX_VIDEO_MINUTES", Limits.max_video_seconds / 60))
    return Limits(max_bytes=int(st.get_option("server.maxUploadSize")) * 1024 * 1024, max_video_seconds=minutes * 60)


@dataclass
class Analysis:
    """One analyzed upload as kept in session_state, so widgets can rerun the page without re-analysis."""

    token: tuple
    result: AnalysisResult | None = None
    preview: np.ndarray | None = None  # display copy of an image with the faces boxed
    error: str | None = None


def _guarded(compute: Callable[[], Analysis], token: tuple) -> Analysis:
    """Run an analysis; bad input becomes its message, anything else a logged, friendly message."""
    try:
        return compute()
    except MediaError as exc:
        return Analysis(token, error=str(exc))
    except Exception:  # noqa: BLE001 - the traceback goes to the server log, the user gets a message
        log.exception("analysis failed unexpectedly")
        return Analysis(token, error="Something unexpected went wrong while analyzing this file. The error was "
                                     "logged for the operator; try another file or reload the page.")


def remembered(slot: str, upload: UploadedFile) -> Analysis | None:
    """The stored analysis of this upload, if any."""
    saved = st.session_state.get(slot)
    return saved if isinstance(saved, Analysis) and saved.token[0] == upload.file_id else None


def _store(slot: str, analysis: Analysis) -> Analysis:
    st.session_state[slot] = analysis
    st.session_state[GRADCAM_KEY] = {}  # heatmaps of the previous upload are no longer reachable
    return analysis


def _show(analysis: Analysis) -> Analysis | None:
    if analysis.error:
        st.error(analysis.error, icon=":material/error:")
        return None
    return analysis


def image_upload(engine: Engine, upload: UploadedFile, slot: str = "image_analysis") -> Analysis | None:
    """Analyze an uploaded image once (kept per upload); an error is shown and gives None."""
    saved = remembered(slot, upload)
    if saved is None:
        token = (upload.file_id,)

        def compute() -> Analysis:
            data = upload.getvalue()
            with st.spinner("Finding and scoring faces…"):
                result = analyze_image_bytes(engine, data, current_limits())
                preview = charts.draw_faces(decode_image(data, current_limits()), result.frames[0], result.thresholds)
            return Analysis(token, result, preview)

        saved = _store(slot, _guarded(compute, token))
    return _show(saved)


def video_upload(engine: Engine, upload: UploadedFile, count: int, slot: str = "video_analysis") -> Analysis | None:
    """Analyze a new upload with a progress bar, or keep its stored analysis unless asked to sample
    `count` frames instead of the stored count; an error is shown and gives None."""
    saved = remembered(slot, upload)
    if saved is not None and saved.token[1] != count:
        if st.button(f"Analyze again with {count} frames", type="primary"):
            saved = None
    if saved is None:
        token = (upload.file_id, count)

        def compute() -> Analysis:
            bar = st.progress(0.0, text="Reading the video…")
            try:
                result = analyze_video(engine, upload.getvalue(), count, lambda f, text: bar.progress(min(1.0, f), text=text),
                                       current_limits())
            finally:
                bar.empty()
            return Analysis(token, result)

        saved = _store(slot, _guarded(compute, token))
    return _show(saved)


def sidebar(engine: Engine) -> None:
    """Model facts every page shares."""
    det = engine.detector
    with st.sidebar:
        st.caption(f"Detector **{det.version}**")
        if not det.trained:
            st.warning("Weights are untrained: scores are not findings.", icon=":material/warning:")
        t = det.thresholds
        st.caption(f"REAL ≤ {t['real']:.2f} · inconclusive · FAKE ≥ {t['fake']:.2f}")
        st.caption("A score is evidence for a human reviewer, never proof.")


def untrained_warning(result: AnalysisResult) -> None:
    if not result.model_trained:
        st.warning(UNTRAINED_TEXT, icon=":material/warning:")


def _family_text(family: str | None) -> str:
    return FAMILY_TEXT.get(family, f"{family} branch") if family else ""


def verdict_section(result: AnalysisResult) -> None:
    """The verdict banner (label, calibrated confidence, reason, driving branch) with the tool's limits beside it."""
    v = result.verdict
    parts = [f"### {v.label}"]
    if v.confidence is not None and v.label == "INCONCLUSIVE":
        leaning = "FAKE" if v.score >= 0.5 else "REAL"
        parts.append(f"Leans {leaning} at **{v.confidence:.0%}** (calibrated), too close to call.")
    elif v.confidence is not None:
        parts.append(f"**{v.confidence:.0%}** calibrated confidence in this label.")
    if v.score is not None:
        parts.append(f"Manipulation score {v.score:.3f} (calibrated probability, fused over branches).")
    parts.append(v.reason)
    if v.family:
        parts.append(f"Driven by the **{v.family}** branch: {_family_text(v.family)}.")
    left, right = st.columns([3, 2])
    with left:
        _BANNERS.get(v.label, st.info)("  \n".join(parts))
    with right:
        t = result.thresholds
        st.caption(f"{LIMITS_TEXT} Thresholds: REAL ≤ {t['real']:.2f}, FAKE ≥ {t['fake']:.2f}, "
                   f"INCONCLUSIVE in between. Model {result.model_version}.")
    for note in result.notes:
        st.info(note, icon=":material/info:")


def boxed_image_section(analysis: Analysis) -> None:
    """The uploaded image with every face boxed and numbered."""
    if analysis.preview is None or analysis.result is None:
        return
    frame = analysis.result.frames[0]
    small = sum(1 for f in frame.faces if f.too_small)
    caption = f"{len(frame.faces)} face(s) found; boxes coloured by zone (green REAL, amber inconclusive, red FAKE)"
    if small:
        caption += f"; {small} in blue are too small to judge (under {MIN_FACE_PX} px)"
    st.image(analysis.preview, caption=caption + ".")


def no_face_section(result: AnalysisResult) -> None:
    """The explicitly labelled whole-image scores of an image without faces."""
    if not result.whole_image:
        return
    st.subheader("Whole-image analysis (no face found)")
    st.caption("For reference only: the detector was trained on face crops, so these numbers are not a verdict.")
    cols = st.columns(len(result.whole_image))
    for col, (name, value) in zip(cols, result.whole_image.items()):
        col.metric(f"{name} (whole image)", f"{value:.3f}")


def face_chart_section(result: AnalysisResult, frame: FrameResult, key: str | None = None) -> None:
    if any(f.scores for f in frame.faces):
        st.plotly_chart(charts.face_scores_figure(result, frame), key=key)


def _overlay_for(engine: Engine, result: AnalysisResult, frame: FrameResult, index: int, branch: str) -> np.ndarray:
    """Grad-CAM overlay, computed on first view and kept per (file, frame, face, branch) for this session."""
    cache = st.session_state.setdefault(GRADCAM_KEY, {})
    key = (result.sha256, frame.index, index, branch)
    if key not in cache:
        crop = frame.faces[index].crop
        cache[key] = overlay(crop, gradcam(engine.detector, crop, branch))
    return cache[key]


def _branch_ui(engine: Engine, key: str) -> str | None:
    """Which branch the heatmaps explain; None means each face's strongest branch."""
    names = list(engine.detector.branches)
    choice = st.radio("Heatmap explains", ["strongest branch per face", *names], horizontal=True, key=key)
    return choice if choice in names else None


def faces_section(engine: Engine, result: AnalysisResult, frame: FrameResult, key: str) -> None:
    """Per judged face, most suspicious first: the crop beside its Grad-CAM overlay and its scores."""
    ranked = charts.ranked_faces(frame)
    judged = [(i, f) for i, f in ranked if f.scores]
    small = [charts.face_label(i, f) for i, f in ranked if not f.scores]
    if not frame.faces:
        st.caption("No face was found in this frame.")
    if small:
        st.caption(f"Too small to judge (shorter side under {MIN_FACE_PX} px), not scored: {', '.join(small)}.")
    if not judged:
        return
    st.subheader("Faces, most suspicious first")
    chosen = _branch_ui(engine, f"{key}-branch")
    st.caption(HEATMAP_HELP)
    if len(judged) > FACES_SHOWN and not st.toggle(f"Show all {len(judged)} faces", key=f"{key}-all"):
        judged = judged[:FACES_SHOWN]
    branches = list(engine.detector.branches)
    for i, face in judged:
        branch = chosen or max(branches, key=lambda n: face.scores[n])
        crop_col, cam_col, text_col = st.columns([1, 1, 1.4])
        crop_col.image(face.crop, caption=f"{charts.face_label(i, face)}: crop the model saw", width="stretch")
        cam_col.image(_overlay_for(engine, result, frame, i, branch), caption=f"Grad-CAM, {branch} branch", width="stretch")
        with text_col:
            fused = face.scores["fused"]
            st.markdown(f"**{charts.face_label(i, face)}: {charts.zone(fused, result.thresholds)}**, score {fused:.3f}")
            st.caption(" · ".join(f"{n} {face.scores[n]:.3f}" for n in branches)
                       + f"  \nbox {face.box[2]:.0f} × {face.box[3]:.0f} px, detector confidence {face.detection_score:.2f}")


def media_facts_section(result: AnalysisResult) -> None:
    m = result.media
    cols = st.columns(5)
    cols[0].metric("Duration", f"{m['duration']:.1f} s")
    cols[1].metric("Frame rate", f"{m['fps']:.2f} fps")
    cols[2].metric("Resolution", f"{m['width']} × {m['height']}")
    cols[3].metric("Codec", m["codec"])
    cols[4].metric("Frames sampled", f"{m['frames_sampled']}")
    # exact bytes, as on the Cases page: a short clip read "0.0 MB"
    st.caption(f"Container {m['container']} · about {m['frame_count']} frames · {m['bytes']:,} bytes")


def _follow_click(chart_key: str, pick_key: str) -> None:
    """Plotly click → the frame picker, so both ways of choosing stay in sync."""
    event = st.session_state.get(chart_key)
    position = charts.picked_frame(event.selection.points) if event else None
    if position is not None:
        st.session_state[pick_key] = position


def timeline_section(result: AnalysisResult) -> FrameResult | None:
    """The clickable per-frame timeline and a keyboard-friendly picker; returns the chosen frame."""
    frames = result.frames
    if not frames:
        return None
    tag = f"{result.sha256[:12]}-{len(frames)}"  # a new analysis starts from its most suspicious frame
    chart_key, pick_key = f"timeline-{tag}", f"pick-{tag}"
    if pick_key not in st.session_state:
        st.session_state[pick_key] = int(np.argmax([fr.score if fr.score is not None else -1.0 for fr in frames]))
    figure = charts.timeline_figure(result, st.session_state[pick_key])
    st.plotly_chart(figure, key=chart_key, on_select=partial(_follow_click, chart_key, pick_key), selection_mode="points")
    position = st.select_slider(
        "Inspect frame", options=list(range(len(frames))), key=pick_key,
        format_func=lambda p: f"{frames[p].time:.2f} s (frame {frames[p].index})",
        help="Click a point on the timeline, or use this slider (arrow keys work).",
    )
    return frames[position]


def details_section(result: AnalysisResult) -> None:
    """Hash, model version and timings: what a report needs to reproduce the analysis."""
    st.markdown(f"SHA-256 `{result.sha256}`  \nModel `{result.model_version}` "
                f"({'trained' if result.model_trained else 'UNTRAINED'})")
    with st.expander("Timings"):
        st.table({"step": list(result.timings), "seconds": [round(v, 3) for v in result.timings.values()]})


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def model_card_text(weights_dir: Path = WEIGHTS_DIR) -> str | None:
    """weights/MODEL_CARD.md, if it has been written."""
    return _read(weights_dir / "MODEL_CARD.md")


def evaluation_report(weights_dir: Path = WEIGHTS_DIR) -> str | None:
    """The latest evaluation report, weights/eval/report.md, if one has been produced."""
    return _read(weights_dir / "eval" / "report.md")


def nested_headings(markdown: str, depth: int) -> str:
    """Every heading `depth` levels down (code blocks untouched), so an embedded document's "# Title"
    sits under the page's own title instead of beside it."""
    lines, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            line = "#" * min(6, level + depth) + line[level:]  # Markdown has six levels
        lines.append(line)
    return "\n".join(lines)


def document_section(text: str | None, missing: str, depth: int = 1) -> None:
    """A Markdown document with its headings `depth` levels down, or a note saying it does not exist yet."""
    if text:
        st.markdown(nested_headings(text, depth))
    else:
        st.info(missing, icon=":material/info:")


def metadata_section(detector: Detector) -> None:
    """What the loaded weights say about themselves: version, thresholds, calibration, training."""
    meta = detector.metadata
    st.markdown(f"Version `{detector.version}` · created {meta.get('created', 'unknown')} · "
                f"code commit `{meta.get('code_commit', 'unknown')}` · fusion: {meta.get('fusion', 'unknown')}")
    t = detector.thresholds
    st.markdown(f"Thresholds: **REAL ≤ {t['real']:.2f}**, **FAKE ≥ {t['fake']:.2f}**, INCONCLUSIVE in between.")
    st.table({
        "branch": list(detector.configs),
        "evidence": [FAMILY_TEXT.get(n, n) for n in detector.configs],
        "backbone": [c.backbone for c in detector.configs.values()],
        "input": [f"{c.input_size} px" for c in detector.configs.values()],
        "calibration (a, b)": [f"{c.calib_a:.3f}, {c.calib_b:.3f}" for c in detector.configs.values()],
        "trained": ["yes" if c.trained else "NO" for c in detector.configs.values()],
    })
    st.markdown("**Training summary**")
    if meta.get("training"):
        st.json(meta["training"], expanded=False)
    else:
        st.caption("No training summary is recorded with these weights.")


# ---------------------------------------------------------------------------------------------
# Forensic context (core.forensics): provenance, metadata flags, image views, video face tracks.
# Everything read from the file is untrusted text: it is shown escaped, in tables or as JSON.
# ---------------------------------------------------------------------------------------------
FORENSICS_HELP = (
    "Leads for a person to check beside the score, never a verdict: metadata is easy to strip or forge, and "
    "the views give no score. docs/forensics.md explains each part."
)
VIEW_MAX_SIDE = 1600
_VIEW_TITLES = {"ela": "Error level analysis", "spectrum": "Face frequency spectrum", "noise": "Noise residual"}
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def _plain(text: object) -> str:
    """Markdown-escaped text, so a file's metadata cannot add links, images or formatting."""
    return _MARKDOWN.sub(r"\\\1", str(text))


@st.cache_data(max_entries=32, ttl=3600, show_spinner="Reading provenance and metadata…")
def _cached_report(sha256: str, kind: str, frames: int, _data: bytes, _result: AnalysisResult | None) -> dict:
    """Keyed by file hash (and, for video tracks, the sampled frame count); the bytes are not hashed again."""
    return forensic_report(_data, kind, _result)


def forensic_context(upload: UploadedFile, result: AnalysisResult) -> dict:
    """The JSON-safe forensic report of an analyzed upload, computed once per file: store it with the
    case (`{**result.to_dict(), "forensics": ...}`) and hand it to the exported report."""
    tracks_from = result if result.kind == "video" else None
    return _cached_report(result.sha256, result.kind, len(result.frames), upload.getvalue(), tracks_from)


@st.cache_data(max_entries=12, ttl=3600, show_spinner="Computing the view…")
def _cached_view(sha256: str, name: str, box: tuple | None, _data: bytes, _limits: Limits) -> tuple[np.ndarray, dict]:
    """A view's picture, at most VIEW_MAX_SIDE px (a 50 MP image would hold 50 MB per entry otherwise)."""
    view = compute_view(name, decode_image(_data, _limits), box)
    return fit(view.image, VIEW_MAX_SIDE), view.stats


def _forensic_summary(report: dict) -> None:
    st.subheader("Forensic context")
    st.caption(FORENSICS_HELP)
    st.markdown(f"**{_plain(headline(report))}**")
    st.markdown(_plain(report["provenance"]["summary"]))
    actions = report["provenance"].get("actions")
    if actions:
        st.dataframe(actions, hide_index=True)
    for item in report["flags"]:
        st.markdown(f"- **{_plain(item['kind'].replace('_', ' '))}** · {_plain(item['field'])}: "
                    f"`{item['value'].replace('`', chr(39))}`  \n  {_plain(item['meaning'])}")
    for note in report["provenance"]["notes"] + report["metadata"]["notes"]:
        st.caption(_plain(note))
    with st.expander("Everything read from the file's metadata and credentials"):
        st.json({"provenance": report["provenance"], "metadata": report["metadata"]}, expanded=False)


def _spectrum_box(result: AnalysisResult) -> tuple | None:
    """The face the spectrum looks at, most suspicious first; None (image centre) without faces."""
    frame = result.frames[0]
    ranked = charts.ranked_faces(frame)
    if not ranked:
        st.caption("No face found: the spectrum shows the centre of the image.")
        return None
    pick = st.selectbox("Face for the spectrum", range(len(ranked)), key=f"forensic-face-{result.sha256[:12]}",
                        format_func=lambda r: charts.face_label(*ranked[r]))
    return tuple(ranked[pick][1].box)


def _views_ui(upload: UploadedFile, result: AnalysisResult) -> None:
    """Toggles for the image views, each computed on first use and cached per file hash."""
    st.markdown("**Image forensics views**")
    cols = st.columns(len(VIEW_NAMES))
    chosen = [n for n, col in zip(VIEW_NAMES, cols) if col.toggle(_VIEW_TITLES[n], key=f"forensic-view-{n}")]
    box = _spectrum_box(result) if "spectrum" in chosen else None
    for name in chosen:
        try:
            image, stats = _cached_view(result.sha256, name, box if name == "spectrum" else None, upload.getvalue(), current_limits())
        except (ValueError, MediaError) as exc:  # e.g. a face too small for a spectrum: the message says what to do
            st.info(str(exc))
            continue
        picture, text = st.columns([2, 1])
        picture.image(image, caption=_VIEW_TITLES[name], width="stretch")
        text.caption(VIEW_GUIDANCE[name])
        text.caption(" · ".join(f"{k} {v}" for k, v in stats.items()))


def forensics_image_section(upload: UploadedFile, result: AnalysisResult) -> None:
    """Provenance, metadata flags and the toggleable ELA / spectrum / noise views of an image."""
    _forensic_summary(forensic_context(upload, result))
    _views_ui(upload, result)
    st.caption(FORENSIC_LIMITS)


def forensics_video_section(upload: UploadedFile, result: AnalysisResult) -> None:
    """Provenance, container facts and flags, and face-track consistency of a video."""
    report = forensic_context(upload, result)
    _forensic_summary(report)
    if report["tracks"]:
        st.markdown("**Face tracks across sampled frames**")
        st.dataframe(track_rows(report["tracks"]), hide_index=True)
    st.caption(FORENSIC_LIMITS)


# ---------------------------------------------------------------------------------------------
# Cases (core.cases): the shared store, the analyst's name, saving analyses, batches.
# Store errors (database down, disk full) become messages: an analysis is never lost to them.
# ---------------------------------------------------------------------------------------------
ANALYST_KEY, AUTOSAVE_KEY, KEEP_MEDIA_KEY = "analyst", "autosave", "keep_media"
SAVED_KEY = "saved_cases"  # sha256 -> (case id, created in this session)
BATCH_RUN_KEY = "batch_run"
CASES_PAGE = "pages/cases.py"
STORE_ERRORS = (StoreError, SchemaError, SQLAlchemyError)


def plain(text: object) -> str:
    """Text from a user or a file, escaped for st.markdown (no links, images or formatting)."""
    return _plain(text)


def _case_secrets() -> dict:
    try:
        return {key: st.secrets.get(key) for key in ("db_url", "data_dir")}
    except FileNotFoundError:  # no .streamlit/secrets.toml
        return {}


def store_url() -> str:
    """The environment (DEEPFAKE_DB_URL, DEEPFAKE_DATA_DIR) wins, then `db_url` / `data_dir` in
    .streamlit/secrets.toml, then the default SQLite file (docs/cases.md)."""
    if os.environ.get("DEEPFAKE_DB_URL") or os.environ.get("DEEPFAKE_DATA_DIR"):
        return default_url()
    secrets = _case_secrets()
    if secrets.get("db_url"):
        return str(secrets["db_url"])
    if secrets.get("data_dir"):
        return sqlite_url(Path(str(secrets["data_dir"])))
    return default_url()


@st.cache_resource(show_spinner="Opening the case store…")
def get_store(url: str) -> CaseStore:
    """One store (engine and connection pool) per URL, shared by every session."""
    return open_store(url)


def store_or_none() -> CaseStore | None:
    """The case store, or None with a warning saying how to fix the configuration."""
    try:
        return get_store(store_url())
    except STORE_ERRORS as exc:
        log.exception("case store unavailable")
        st.warning(f"The case store is unavailable, so nothing can be saved: {exc}", icon=":material/database:")
        return None


def store_or_stop() -> CaseStore:
    store = store_or_none()
    if store is None:
        st.stop()
    return store


@dataclass(frozen=True)
class CaseSettings:
    analyst: str  # "" until the analyst enters a name
    autosave: bool
    keep_media: bool


def case_settings_sidebar() -> CaseSettings:
    """The analyst's name and the saving switches, in the shared sidebar (kept across pages)."""
    with st.sidebar:
        st.text_input("Analyst name", key=ANALYST_KEY, max_chars=100, placeholder="Your name",
                      help="Recorded with every case, label and note you make.")
        st.toggle("Save analyses as cases", value=True, key=AUTOSAVE_KEY,
                  help="Each analysis becomes a case on the Cases page: scores, verdict, a thumbnail and the "
                       "most suspicious face crops. The original file is not kept unless you tick the box below.")
        st.checkbox("Keep the original file in the store", value=False, key=KEEP_MEDIA_KEY,
                    help="Stores the uploaded file itself in the case database (never in a served folder).")
    return case_settings()


def case_settings() -> CaseSettings:
    state = st.session_state
    return CaseSettings(str(state.get(ANALYST_KEY) or "").strip(), bool(state.get(AUTOSAVE_KEY, True)),
                        bool(state.get(KEEP_MEDIA_KEY, False)))


def open_case_link(case_id: int, label: str | None = None) -> None:
    st.page_link(CASES_PAGE, label=label or f"Open case #{case_id}", icon=":material/folder_open:",
                 query_params={"case": str(case_id)})


def history_section(entries: list[AuditEntry]) -> None:
    """The audit trail as a table: who, when, what (old -> new)."""
    st.dataframe(
        [{"when (UTC)": f"{e.at:%Y-%m-%d %H:%M:%S}", "who": e.analyst, "action": e.action, "field": e.field or "",
          "old": e.old or "", "new": e.new or ""} for e in entries],
        hide_index=True,
    )


def _save(engine: Engine, store: CaseStore, upload: UploadedFile, result: AnalysisResult, settings: CaseSettings) -> None:
    saved = record(store, engine, result, upload.getvalue(), upload.name, settings.analyst,
                   keep_media=settings.keep_media, forensics=forensic_context(upload, result), limits=current_limits())
    st.session_state.setdefault(SAVED_KEY, {})[result.sha256] = (saved.case.id, saved.created)


def _known_notice(case: Case) -> None:
    label = f"; analyst verdict **{case.final_verdict}**" if case.final_verdict else "; not labelled yet"
    st.info(f"**This file was analyzed before**: case #{case.id}, first on {case.created_at:%Y-%m-%d %H:%M} UTC "
            f"by {_plain(case.created_by)} (model {_plain(case.model_version)}, verdict **{case.verdict}**){label}. "
            "The result below is a fresh analysis; the stored case is unchanged.", icon=":material/history:")
    with st.expander(f"History of case #{case.id}"):
        history_section(case.history)


def case_section(engine: Engine, upload: UploadedFile, analysis: Analysis) -> None:
    """After an analysis: the file's existing case with its history, or saving it as a new case
    (automatic when the sidebar switch is on, a button otherwise)."""
    settings, result = case_settings(), analysis.result
    if result is None:
        return
    if not settings.analyst:  # no name, no saving: the store is not even opened
        st.info("Enter your name in the sidebar to save this analysis as a case and to see whether this file "
                "was analyzed before.", icon=":material/person:")
        return
    store = store_or_none()
    if store is None:
        return
    try:
        remembered_case = st.session_state.get(SAVED_KEY, {}).get(result.sha256)
        if remembered_case is None:
            existing = store.find(result.sha256)
            if existing is not None:
                st.session_state.setdefault(SAVED_KEY, {})[result.sha256] = remembered_case = (existing.id, False)
        if remembered_case is None:
            if not (settings.autosave or st.button("Save as case", icon=":material/save:")):
                return
            _save(engine, store, upload, result, settings)
            remembered_case = st.session_state[SAVED_KEY][result.sha256]
        case_id, created = remembered_case
        if created:
            st.success(f"Saved as case #{case_id}.", icon=":material/save:")
        else:
            _known_notice(store.get(case_id))
        open_case_link(case_id)
    except CaseNotFound:  # deleted meanwhile on the Cases page
        st.session_state.get(SAVED_KEY, {}).pop(result.sha256, None)
        st.info("The case of this file was deleted; reload the file to save it again.")
    except STORE_ERRORS as exc:
        log.exception("saving the case failed")
        st.error(f"The case could not be saved: {exc}. The analysis above is unaffected; try again.", icon=":material/error:")


def run_batch(store: CaseStore, uploads: list[UploadedFile], name: str, frames: int, settings: CaseSettings) -> int | None:
    """Analyze the uploads one by one into a new batch, with a progress bar; returns the batch id
    (None, with a message, when the batch cannot be made). The rows (file, status, verdict, case)
    stay in the session for `batch_results_section`."""
    try:
        batch = store.create_batch(name, settings.analyst)
    except (ValueError, *STORE_ERRORS) as exc:
        st.error(f"The batch could not be created: {exc}", icon=":material/error:")
        return None
    bar = st.progress(0.0, text="Starting…")
    rows = []
    for i, upload in enumerate(uploads):
        def step(fraction: float, text: str, i: int = i, upload: UploadedFile = upload) -> None:
            bar.progress(min(1.0, (i + fraction) / len(uploads)), text=f"{upload.name} ({i + 1} of {len(uploads)}): {text}")

        step(0.0, "analyzing…")
        row = {"file": upload.name, "status": "", "verdict": "", "score": None, "case": None}
        try:
            saved = scan_bytes(store, get_engine, upload.getvalue(), upload.name, settings.analyst, batch_id=batch.id,
                               frames=frames, keep_media=settings.keep_media, limits=current_limits(), progress=step)
            case = saved.case
            row |= {"status": "new case" if saved.created else "already a case", "verdict": case.verdict,
                    "score": case.score, "case": case.id}
        except MediaError as exc:
            row["status"] = f"failed: {exc}"
        except STORE_ERRORS as exc:
            log.exception("batch: saving failed")
            row["status"] = f"not saved: {exc}"
        rows.append(row)
    bar.progress(1.0, text=f"Done: {len(uploads)} file(s).")
    st.session_state[BATCH_RUN_KEY] = {"batch_id": batch.id, "name": batch.name, "rows": rows}
    return batch.id


def batch_results_section() -> None:
    """The last batch run of this session: one row per file, and a link to the batch on the Cases page."""
    run = st.session_state.get(BATCH_RUN_KEY)
    if not run:
        return
    st.subheader(f"Batch #{run['batch_id']}: {_plain(run['name'])}")
    st.dataframe(run["rows"], hide_index=True, column_config={
        "score": st.column_config.NumberColumn(format="%.3f"), "case": st.column_config.NumberColumn(format="#%d")})
    st.page_link(CASES_PAGE, label="Open this batch on the Cases page", icon=":material/folder_open:",
                 query_params={"batch": str(run["batch_id"])})


def stored_forensics_section(report: dict | None) -> None:
    """The forensic context saved with a case (as shown on the analyze pages)."""
    if report:
        _forensic_summary(report)
        st.caption(FORENSIC_LIMITS)
