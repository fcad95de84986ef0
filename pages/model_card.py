"""Model card: what the detector is, how it was trained and measured, its limits, ethics and license."""
import streamlit as st

from core import ui

ui.through_entry_point()
engine = ui.engine_or_stop()
st.title("Model card")
if not engine.detector.trained:
    st.error(ui.UNTRAINED_TEXT, icon=":material/warning:")

ui.document_section(ui.model_card_text(), "The written model card (weights/MODEL_CARD.md) is not available yet; the "
                    "facts below come from the weights.", open_first=("Measured", "Known failure"))

st.header("The loaded weights")
ui.metadata_section(engine.detector)

st.header("Evaluation report")
ui.document_section(ui.evaluation_report(), "No evaluation report yet (weights/eval/report.md is produced by the "
                                            "evaluation run).", open_first=("Detection",))

st.header("Limits")
st.markdown(ui.LIMITS_TEXT)
st.header("Ethics")
st.markdown(ui.ETHICS_TEXT)
st.header("License")
st.markdown("The code is released under the MIT license. The shipped weights are for **research use only**: they "
            "inherit the terms of their training data (UTKFace is for non-commercial research; the real videos are "
            "research use; see weights/MODEL_CARD.md). The YuNet face detector (weights/yunet) keeps its own MIT license, "
            "shipped beside it.")
