"""Batch upload: several files analyzed one by one with a progress bar, saved as cases in a named batch."""
from datetime import datetime, timezone

import streamlit as st

from core import ui
from core.analyze import DEFAULT_VIDEO_FRAMES
from core.media import IMAGE_TYPES, VIDEO_TYPES

ui.through_entry_point()
ui.engine_or_stop()
store = ui.store_or_stop()
settings = ui.case_settings()
st.title("Batch upload")
name = st.text_input("Batch name", value=f"Batch {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", max_chars=200,
                     key="batch-name")
uploads = st.file_uploader("Images and videos", type=[*IMAGE_TYPES, *VIDEO_TYPES], accept_multiple_files=True,
                           key="batch-files")
frames = st.slider("Frames to sample per video", 8, 128, DEFAULT_VIDEO_FRAMES, key="batch-frames")
st.caption("Every file becomes a case in the batch (a file analyzed before keeps its existing case). "
           + ui.STORAGE_TEXT)

if not settings.analyst:
    st.info("Enter your name in the sidebar: a batch records who analyzed it.", icon=":material/person:")
elif not settings.autosave:
    st.info("Saving is switched off in the sidebar, and a batch saves every file as a case. Switch *Save analyses "
            "as cases* on to run a batch, or analyze files one at a time on the Analyze pages without saving.",
            icon=":material/save:")
elif not uploads:
    st.info("Choose several files; they are analyzed one after the other.")
elif st.button(f"Analyze {len(uploads)} file(s) as a batch", type="primary", icon=":material/play_arrow:"):
    ui.run_batch(store, uploads, name, frames, settings)
ui.batch_results_section()
