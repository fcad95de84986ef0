"""The app's only Streamlit glue: the shared engine and store, guarded analysis, and the page sections.

Pages read top to bottom: widgets, a guard, one `*_upload` call, then one `ui.*_section` call per
section. Pages use the names re-exported here (`from core import ui`), which are only the ones the
pages, streamlit_app.py and the tests use; the modules hold them by topic:

- `resources`: the cached engine and case store (`st.cache_resource`), the media limits, and
  `through_entry_point`, the first call of every page
- `analysis`: upload -> analysis, kept per upload in session_state
- `results`: verdict, faces with Grad-CAM, media facts, timeline, details
- `forensics`: the forensic context and views
- `cases`: the analyst's name, saving cases, label, notes, delete, history, batches
- `case_browser`: the Cases page's search, list, stored case and exports
- `model_card`: the sidebar's model facts, the model card and evaluation documents
- `text`: shared wording and escaping of untrusted text

A new section is one more function in its module, re-exported here, and one more call in a page.
Nothing outside this package imports Streamlit (tests/test_core_imports.py).
"""
from __future__ import annotations

from core.ui.analysis import IMAGE_SLOT, VIDEO_SLOT, image_upload, video_upload
from core.ui.case_browser import (
    case_filter_section, case_from_url, case_list_section, queue_section, store_audit_section,
    store_trouble,
    stored_case_section,
)
from core.ui.cases import (
    ANALYST_KEY, AUTOSAVE_KEY, KEEP_MEDIA_KEY, batch_results_section, case_section, case_settings,
    case_settings_sidebar, delete_section, exports_section, history_section, label_section, last_analysis, notes_section,
    run_batch,
)
from core.ui.forensics import forensics_image_section, forensics_video_section
from core.ui.model_card import (
    document_section, evaluation_report, metadata_section, model_card_text, nested_headings, sidebar, split_sections,
)
from core.ui.resources import ENTRY_KEY, LIMITS_KEY, current_limits, engine_or_stop, store_or_stop, through_entry_point
from core.ui.results import (
    boxed_image_section, details_section, face_chart_section, faces_section, frame_section, media_facts_section,
    no_face_section, timeline_section, untrained_warning, verdict_section,
)
from core.ui.text import ETHICS_TEXT, LIMITS_TEXT, STORAGE_TEXT, UNTRAINED_TEXT

__all__ = [
    "through_entry_point", "ENTRY_KEY", "engine_or_stop", "current_limits", "LIMITS_KEY", "store_or_stop", "image_upload", "video_upload", "sidebar",
    "untrained_warning", "verdict_section", "boxed_image_section", "frame_section", "no_face_section", "face_chart_section",
    "faces_section", "media_facts_section", "timeline_section", "details_section", "model_card_text",
    "evaluation_report", "nested_headings", "split_sections", "document_section", "metadata_section", "LIMITS_TEXT", "ETHICS_TEXT",
    "STORAGE_TEXT", "UNTRAINED_TEXT", "forensics_image_section", "forensics_video_section",
    "ANALYST_KEY", "AUTOSAVE_KEY", "KEEP_MEDIA_KEY", "case_settings_sidebar",
    "case_settings", "history_section", "label_section", "notes_section", "delete_section", "case_section",
    "run_batch", "batch_results_section", "last_analysis", "IMAGE_SLOT", "VIDEO_SLOT",
    "store_trouble", "case_filter_section", "case_list_section", "case_from_url", "queue_section",
    "stored_case_section", "exports_section", "store_audit_section",
]
