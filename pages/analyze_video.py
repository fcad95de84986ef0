"""Analyze video: frames sampled over the whole duration, per-frame timeline, faces of a chosen frame."""
import streamlit as st

from core import ui
from core.analyze import DEFAULT_VIDEO_FRAMES
from core.media import VIDEO_TYPES

ui.through_entry_point()
engine = ui.engine_or_stop()
st.title("Analyze video")
upload = st.file_uploader("Video to analyze (MP4, MOV, AVI, WebM or MKV)", type=list(VIDEO_TYPES), key="video_upload")
count = st.slider("Frames to sample, spread evenly over the whole video", 8, 128, DEFAULT_VIDEO_FRAMES, key="video_frames",
                  help="More frames find short manipulated stretches but take longer.")
analysis = ui.video_upload(engine, upload, count) if upload is not None else ui.last_analysis(ui.VIDEO_SLOT)
if analysis is None:
    if upload is None:
        st.info("Upload a video: frames are sampled evenly over its whole duration and every face is scored. "
                + ui.STORAGE_TEXT)
    st.stop()
result = analysis.result

ui.untrained_warning(result)
ui.verdict_section(result)
ui.case_section(engine, upload, analysis)
ui.media_facts_section(result)
frame = ui.timeline_section(result)
if frame is not None:
    ui.frame_section(result, frame)
    ui.face_chart_section(result, frame, key="video-faces-chart")
    ui.faces_section(engine, result, frame, key="video-faces")
ui.forensics_video_section(upload, result)
ui.details_section(result)
