"""The result sections of the analyze pages (and of a stored case): verdict, faces with Grad-CAM,
media facts, the clickable timeline, details."""
from __future__ import annotations

from functools import partial
from typing import Callable

import cv2
import numpy as np
import streamlit as st

from core import charts
from core.analyze import AnalysisResult, Engine, FrameResult, score_text, video_score_text
from core.explain import gradcam, overlay
from core.faces import MIN_FACE_PX
from core.ui.analysis import GRADCAM_KEY, Analysis
from core.ui.text import FAMILY_TEXT, HEATMAP_HELP, LIMITS_TEXT, OUTSIDE_TEXT, UNTRAINED_TEXT

__all__ = [
    "untrained_warning", "verdict_section", "boxed_image_section", "no_face_section", "face_chart_section",
    "faces_section", "media_facts_section", "timeline_section", "details_section",
]

FACES_SHOWN = 6  # faces shown with crops and heatmaps before "show all"
FRAME_SHOWN_HEIGHT = 520  # px: a phone's upright frame drawn at full width would fill two screens
TIMING_WORDS = {"decode_s": "reading the file", "detect_s": "finding and cropping faces", "model_s": "scoring faces",
                "firmness_s": "firmness check (re-framed faces)", "total_s": "in all"}
_BANNERS: dict[str, Callable] = {"FAKE": st.error, "REAL": st.success, "INCONCLUSIVE": st.warning, "NO FACE": st.info}


def untrained_warning(result: AnalysisResult) -> None:
    if not result.model_trained:
        st.warning(UNTRAINED_TEXT, icon=":material/warning:")


def _family_text(family: str | None) -> str:
    return FAMILY_TEXT.get(family, f"{family} branch") if family else ""


def verdict_section(result: AnalysisResult) -> None:
    """The verdict banner (label, calibrated confidence, reason, driving branch) with the tool's limits beside it."""
    v = result.verdict
    parts = [f"### {v.label}", *score_text(result.kind, v.label, v.score, v.confidence), v.reason]
    if result.kind == "video" and result.judged_frames:
        parts.append(video_score_text(result.judged_frames))
    if v.family:
        parts.append(f"Driven by the **{v.family}** branch: {_family_text(v.family)}.")
    left, right = st.columns([3, 2])
    with left:
        _BANNERS.get(v.label, st.info)("  \n".join(parts))
    with right:
        t = result.thresholds
        st.caption(f"{LIMITS_TEXT} Thresholds: REAL ≤ {t['real']:.3f}, FAKE ≥ {t['fake']:.3f}, "
                   f"INCONCLUSIVE in between. Model {result.model_version}.")
    for note in result.notes:
        st.info(note, icon=":material/info:")


def _boxes_caption(frame: FrameResult) -> str:
    small = sum(1 for f in frame.faces if f.too_small)
    found = "1 face" if len(frame.faces) == 1 else f"{len(frame.faces)} faces"
    caption = f"{found} found; boxes coloured by zone (green REAL, amber inconclusive, red FAKE)"
    if small:
        caption += f"; {small} in blue are too small to judge (under {MIN_FACE_PX} px)"
    return caption + "."


def boxed_image_section(analysis: Analysis) -> None:
    """The uploaded image with every face boxed and numbered."""
    if analysis.preview is None or analysis.result is None:
        return
    frame = analysis.result.frames[0]
    st.image(analysis.preview, caption=_boxes_caption(frame) if frame.faces else "The uploaded image.")


def frame_section(result: AnalysisResult, frame: FrameResult) -> None:
    """The inspected video frame, reduced, with its faces boxed as on the image page; nothing for a
    stored case, which keeps no frames."""
    if frame.preview is None:
        return
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(frame.preview, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    picture = charts.draw_faces(rgb, frame, result.thresholds, box_scale=frame.preview_scale)
    where = f"Frame {frame.index} at {frame.time:.2f} s"
    height, width = picture.shape[:2]
    st.image(picture, caption=f"{where}: {_boxes_caption(frame)}" if frame.faces else f"{where}: no face found.",
             width=round(FRAME_SHOWN_HEIGHT * width / height) if height > width else "content")


def no_face_section(result: AnalysisResult) -> None:
    """The explicitly labelled whole-image scores of an image without faces."""
    if not result.whole_image:
        return
    st.subheader("Whole-image scores")
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
    key = (result.sha256, frame.time, index, branch)  # time: estimated frame numbers can repeat in variable-rate video
    if key not in cache:
        face = frame.faces[index]
        cache[key] = overlay(face.crop, gradcam(engine.detector, face.crop, branch), outside=face.outside)
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
            firmness = (f"  \nre-framed or mirrored: {face.score_range[0]:.3f} to {face.score_range[1]:.3f}"
                        if face.score_range else "")
            st.caption(" · ".join(f"{n} {face.scores[n]:.3f}" for n in branches) + firmness
                       + f"  \nbox {face.box[2]:.0f} × {face.box[3]:.0f} px, detector confidence {face.detection_score:.2f}"
                       + (f"  \n{OUTSIDE_TEXT}" if face.outside is not None else ""))


def media_facts_section(result: AnalysisResult) -> None:
    m = result.media
    facts = {"Duration": f"{m['duration']:.1f} s", "Frame rate": f"{m['fps']:.2f} fps", "Resolution": f"{m['width']} × {m['height']}",
             "Codec": m["codec"], "Frames sampled": f"{m['frames_sampled']}"}
    with st.container(horizontal=True, gap="medium"):  # wraps in a narrow window, where five columns cut the values
        for label, value in facts.items():
            st.metric(label, value, width="content")
    # exact bytes, as on the Cases page: a short clip read "0.0 MB"
    turned = f" · stored turned, shown rotated {m['rotation']}° (as phones record)" if m.get("rotation") else ""
    st.caption(f"Container {m['container']} · about {m['frame_count']} frames · {m['bytes']:,} bytes{turned}")


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
        st.table({"step": [TIMING_WORDS.get(k, k) for k in result.timings],
                  "seconds": [round(v, 3) for v in result.timings.values()]})
