"""Analyze image: upload, every face boxed and scored, verdict, per-face chart, crops beside Grad-CAM."""
import streamlit as st

from core import ui
from core.media import IMAGE_TYPES

ui.through_entry_point()
engine = ui.engine_or_stop()
st.title("Analyze image")
upload = st.file_uploader("Image to analyze (JPEG, PNG, WebP, BMP or a still GIF)", type=list(IMAGE_TYPES), key="image_upload")
analysis = ui.image_upload(engine, upload) if upload is not None else ui.last_analysis(ui.IMAGE_SLOT)
if analysis is None:
    if upload is None:
        st.info("Upload an image: every face in it is found, boxed and scored. " + ui.STORAGE_TEXT)
    st.stop()
result = analysis.result
frame = result.frames[0]

ui.untrained_warning(result)
ui.verdict_section(result)
ui.case_section(engine, upload, analysis)
ui.boxed_image_section(analysis)
ui.no_face_section(result)
ui.face_chart_section(result, frame, key="image-faces-chart")
ui.faces_section(engine, result, frame, key="image-faces")
ui.forensics_image_section(upload, result)
ui.details_section(result)
