"""Forensic context (core.forensics): provenance, metadata flags, image views, video face tracks.
Everything read from the file is untrusted text: it is shown escaped, in tables or as JSON."""
from __future__ import annotations

import numpy as np
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from core import charts
from core.analyze import AnalysisResult
from core.forensics import VIEW_GUIDANCE, VIEW_NAMES, VIEW_TITLES, compute_view, forensic_report, headline
from core.forensics.tracks import track_rows
from core.forensics.view import fit
from core.media import Limits, MediaError, decode_image
from core.ui.resources import current_limits
from core.ui.text import plain

__all__ = ["forensic_context", "forensics_image_section", "forensics_video_section", "stored_forensics_section"]

FORENSICS_HELP = "Leads for a person to check beside the score, never a verdict."
VIEW_MAX_SIDE = 1600


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
def _cached_view(sha256: str, name: str, box: tuple | None, _data: bytes, _limits: Limits) -> tuple[np.ndarray, str]:
    """A view's picture, at most VIEW_MAX_SIDE px (a 50 MP image would hold 50 MB per entry otherwise)."""
    view = compute_view(name, decode_image(_data, _limits), box)
    return fit(view.image, VIEW_MAX_SIDE), view.reading


def _code_span(value: str) -> str:
    """A file's metadata value as inline code on one line: a blank line or a backtick inside would end
    the span and let the rest render as Markdown (a remote image the browser would fetch, a link)."""
    return "`" + " ".join(value.replace("`", "'").split()) + "`"


def _forensic_summary(report: dict) -> None:
    st.subheader("Forensic context")
    st.caption(FORENSICS_HELP)
    st.markdown(f"**{plain(headline(report))}**")
    st.markdown(plain(report["provenance"]["summary"]))
    actions = report["provenance"].get("actions")
    if actions:
        st.dataframe(actions, hide_index=True, placeholder="—")
    for item in report["flags"]:
        st.markdown(f"- **{plain(item['kind'].replace('_', ' '))}** · {plain(item['field'])}: "
                    f"{_code_span(item['value'])}  \n  {plain(item['meaning'])}")
    for note in report["provenance"]["notes"] + report["metadata"]["notes"]:
        st.caption(plain(note))
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
    chosen = [n for n, col in zip(VIEW_NAMES, cols) if col.toggle(VIEW_TITLES[n], key=f"forensic-view-{n}")]
    box = _spectrum_box(result) if "spectrum" in chosen else None
    for name in chosen:
        try:
            image, reading = _cached_view(result.sha256, name, box if name == "spectrum" else None, upload.getvalue(), current_limits())
        except (ValueError, MediaError) as exc:  # e.g. a face too small for a spectrum: the message says what to do
            st.info(str(exc))
            continue
        picture, text = st.columns([2, 1])
        picture.image(image, caption=VIEW_TITLES[name], width="stretch")
        text.caption(VIEW_GUIDANCE[name])
        text.caption(reading)


def _without_file(upload: UploadedFile | None) -> bool:
    """A redrawn analysis has no file to read the forensic context from (its bytes are not kept)."""
    if upload is None:
        st.caption("Forensic context (provenance, metadata, views): upload the file again to compute it.")
    return upload is None


def forensics_image_section(upload: UploadedFile | None, result: AnalysisResult) -> None:
    """Provenance, metadata flags and the toggleable ELA / spectrum / noise views of an image."""
    if _without_file(upload):
        return
    report = forensic_context(upload, result)
    _forensic_summary(report)
    _views_ui(upload, result)
    st.caption(report["limits"])


def forensics_video_section(upload: UploadedFile | None, result: AnalysisResult) -> None:
    """Provenance, container facts and flags, and face-track consistency of a video."""
    if _without_file(upload):
        return
    report = forensic_context(upload, result)
    _forensic_summary(report)
    if report["tracks"]:
        st.markdown("**Face tracks across sampled frames**")
        st.dataframe(track_rows(report["tracks"]), hide_index=True, placeholder="—")
    st.caption(report["limits"])


def stored_forensics_section(report: dict | None) -> None:
    """The forensic context saved with a case (as shown on the analyze pages)."""
    if report:
        _forensic_summary(report)
        st.caption(report.get("limits", ""))
