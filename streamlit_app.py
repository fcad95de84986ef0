"""Entry point: page config, navigation and the shared sidebar. Run with `streamlit run streamlit_app.py`."""
import logging

import streamlit as st

from core import ui

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
# An emoji favicon is drawn in the browser; a ":material/..." one is fetched from fonts.gstatic.com at run time.
st.set_page_config(page_title="Deepfake forensics", page_icon="🔎", layout="wide")
# As .streamlit/config.toml says, which Streamlit reads only when started from this folder: an
# unexpected error never shows its message or traceback to the user (they go to the server log).
st.set_option("client.showErrorDetails", "none")

# One line per page; a new screen is one more st.Page in its section.
PAGES = {
    "Analyze": [
        st.Page("pages/analyze_image.py", title="Analyze image", icon=":material/image_search:", default=True),
        st.Page("pages/analyze_video.py", title="Analyze video", icon=":material/movie:"),
    ],
    "Review": [
        st.Page("pages/cases.py", title="Cases", icon=":material/folder_open:"),
        st.Page("pages/batch.py", title="Batch upload", icon=":material/upload_file:"),
    ],
    "About": [
        st.Page("pages/model_card.py", title="Model card", icon=":material/description:"),
    ],
}

page = st.navigation(PAGES)
st.session_state[ui.ENTRY_KEY] = True
ui.sidebar(ui.engine_or_stop())
ui.case_settings_sidebar()
page.run()
