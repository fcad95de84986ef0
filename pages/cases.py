"""Cases: every saved analysis, searchable and filterable. Open one to see its stored result (no
re-analysis), label it, add notes, read its audit trail, export it, or delete it."""
import streamlit as st

from core import report, ui

ui.through_entry_point()
store = ui.store_or_stop()
analyst = ui.case_settings().analyst
st.title("Cases")
if not analyst:
    st.info("Enter your name in the sidebar to label cases, add notes or delete; reading and exporting work without it.",
            icon=":material/person:")

with ui.store_trouble("list the cases"):
    ui.case_list_section(store, ui.case_filter_section(store))
    ui.store_audit_section(store)
    case = ui.case_from_url(store)
if case is None:
    st.stop()

st.divider()
st.header(f"Case #{case.id}")
ui.queue_section(case)
ui.stored_case_section(case)
ui.label_section(store, case, analyst)
ui.notes_section(store, case, analyst)
st.subheader("Audit trail")
ui.history_section(case.history)
st.subheader("Export")
ui.exports_section(lambda: [store.get(case.id)], f"case-{case.id}", "case")
if case.has_media:
    st.download_button("Original file", lambda: store.media(case.id), case.file_name, key="case-media",
                       icon=":material/download:", on_click="ignore")
ui.delete_section(store, case, analyst)
st.caption(f"{report.DISCLAIMER} Stored results are shown as saved (model {case.model_version}); nothing is re-analyzed.")
