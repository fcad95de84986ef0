"""The app's only Streamlit glue: the shared engine, limits, guarded analysis and result sections.

Pages read top to bottom: widgets, a guard, one `*_upload` call, then one call per section below.
A new section (cases, forensics, ...) is one more function here and one more call in a page.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from core import charts
from core.analyze import AnalysisResult, Engine, FrameResult, analyze_image_bytes, analyze_video, load_engine
from core.explain import gradcam, overlay
from core.faces import MIN_FACE_PX
from core.forensics import LIMITS as FORENSIC_LIMITS
from core.forensics import VIEW_GUIDANCE, VIEW_NAMES, compute_view, forensic_report, headline
from core.forensics.tracks import track_rows
from core.forensics.view import fit
from core.media import Limits, MediaError, decode_image
from core.model import WEIGHTS_DIR, Detector

__all__ = [
    "get_engine", "engine_or_stop", "current_limits", "LIMITS_KEY", "Analysis", "image_upload", "video_upload",
    "remembered", "sidebar", "untrained_warning", "verdict_section", "boxed_image_section", "no_face_section",
    "face_chart_section", "faces_section", "media_facts_section", "timeline_section", "details_section",
    "model_card_text", "evaluation_report", "document_section", "metadata_section", "LIMITS_TEXT", "ETHICS_TEXT", "HEATMAP_HELP", "UNTRAINED_TEXT",
    "forensic_context", "forensics_image_section", "forensics_video_section",
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
ETHICS_TEXT = (
    "A score is evidence for a human reviewer, never proof. Do not publish, moderate or accuse on the score "
    "alone: corroborate with provenance, the source, and other forensic checks. Uploaded files are analyzed "
    "in memory and are not stored."
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
    return Limits(max_bytes=int(st.get_option("server.maxUploadSize")) * 1024 * 1024)


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
    st.caption(f"Container {m['container']} · about {m['frame_count']} frames · {m['bytes'] / 2**20:.1f} MB")


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


def document_section(text: str | None, missing: str) -> None:
    """A Markdown document, or a note saying it does not exist yet."""
    if text:
        st.markdown(text)
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
