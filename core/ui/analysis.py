"""Upload -> analysis, kept in session_state per upload so widgets rerun the page without re-analysis.
Bad input becomes its message; anything unexpected is logged and shown as a friendly message."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from core import charts
from core.analyze import AnalysisResult, Engine, analyze_image_bytes, analyze_video
from core.media import MediaError, decode_image
from core.ui.resources import current_limits

__all__ = ["GRADCAM_KEY", "IMAGE_SLOT", "VIDEO_SLOT", "Analysis", "remembered", "image_upload", "video_upload"]

log = logging.getLogger(__name__)

GRADCAM_KEY = "gradcam_overlays"  # session_state: Grad-CAM overlays of the current upload
IMAGE_SLOT, VIDEO_SLOT = "image_analysis", "video_analysis"  # session_state: each page's last analysis


@dataclass
class Analysis:
    """One analyzed upload as kept in session_state, so widgets can rerun the page without re-analysis."""

    token: tuple
    result: AnalysisResult | None = None
    preview: np.ndarray | None = None  # display copy of an image with the faces boxed
    error: str | None = None
    name: str = ""  # the uploaded file's name


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


def image_upload(engine: Engine, upload: UploadedFile, slot: str = IMAGE_SLOT) -> Analysis | None:
    """Analyze an uploaded image once (kept per upload); an error is shown and gives None."""
    saved = remembered(slot, upload)
    if saved is None:
        token = (upload.file_id,)

        def compute() -> Analysis:
            data = upload.getvalue()
            with st.spinner("Finding and scoring faces…"):
                result = analyze_image_bytes(engine, data, current_limits())
                preview = charts.draw_faces(decode_image(data, current_limits()), result.frames[0], result.thresholds)
            return Analysis(token, result, preview, name=upload.name)

        saved = _store(slot, _guarded(compute, token))
    return _show(saved)


def video_upload(engine: Engine, upload: UploadedFile, count: int, slot: str = VIDEO_SLOT) -> Analysis | None:
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
                                       current_limits(), previews=True)
            finally:
                bar.empty()
            return Analysis(token, result, name=upload.name)

        saved = _store(slot, _guarded(compute, token))
    return _show(saved)
