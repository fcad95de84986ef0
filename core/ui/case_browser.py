"""The Cases page's parts: search and filters, the case list, opening a case from the URL, its stored
result and its exports. Store failures while browsing become a message, never a traceback."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial

import streamlit as st

from core import report
from core.cases import (
    AGREEMENTS, FINAL_VERDICTS, SORT_KEYS, STORE_ERRORS, UNLABELLED, Batch, Case, CaseFilter, CaseNotFound, CaseStore,
    case_number,
)
from core.casework import stored_result
from core.ui.cases import DRAFTS_KEY, NOTE_DRAFTS_KEY, exports_section, history_section, unsaved_note
from core.ui.forensics import stored_forensics_section
from core.ui.results import face_chart_section, media_facts_section, timeline_section, untrained_warning, verdict_section
from core.ui.text import HEATMAP_HELP, STORE_TROUBLE, plain

__all__ = [
    "store_trouble", "case_filter_section", "case_list_section", "store_audit_section", "case_from_url",
    "queue_section", "stored_case_section",
]

log = logging.getLogger(__name__)

MODEL_VERDICTS = ("FAKE", "INCONCLUSIVE", "REAL", "NO FACE")
AUDIT_ROWS = 200  # the CLI's `audit` command lists more
PAGE_SIZE = 500  # cases per page of the list: a table of thousands is slow to draw and to scroll
SORT_LABELS = {"created_at": "date analyzed", "updated_at": "last change", "file_name": "file name",
               "verdict": "model verdict", "score": "score", "model_version": "model version", "id": "case number"}


@contextmanager
def store_trouble(doing: str) -> Iterator[None]:
    """Turn a store failure inside the block into an error message and stop the page."""
    try:
        yield
    except STORE_ERRORS:
        log.exception("case store failed while trying to %s", doing)
        st.error(f"Could not {doing}: {STORE_TROUBLE}. Reload the page to try again.", icon=":material/database:")
        st.stop()




def _int_param(name: str) -> int | None:
    """A case or batch number from the URL; None for anything else."""
    return case_number(st.query_params.get(name, ""))


def _set_param(name: str, value: int | None) -> None:
    if value is None:
        st.query_params.pop(name, None)
    else:
        st.query_params[name] = str(value)


def case_filter_section(store: CaseStore) -> CaseFilter:
    """The search box and filters; the batch comes from the URL (?batch=ID) the first time."""
    text = st.text_input("Search", placeholder="file name, note text, sha256 prefix or #case number", key="cases-search")
    a, b, c, d = st.columns(4)
    verdicts = a.multiselect("Model verdict", MODEL_VERDICTS, key="cases-verdicts")
    finals = b.multiselect("Analyst verdict", FINAL_VERDICTS, key="cases-finals")
    labels = c.multiselect("Label", [*AGREEMENTS, UNLABELLED], key="cases-labels")
    versions = d.multiselect("Model version", store.model_versions(), key="cases-versions")
    e, f, g, h = st.columns([2, 2, 2, 1.4])  # narrower cuts the toggle's label to "Descend…"
    days = e.date_input("Analyzed between", value=[], key="cases-days", format="YYYY-MM-DD")
    batch = _batch_filter(f, {b.id: b for b in store.batches()})
    sort = g.selectbox("Sort by", list(SORT_KEYS), format_func=SORT_LABELS.get, key="cases-sort")
    descending = h.toggle("Descending", value=True, key="cases-desc")
    disagreement = st.toggle("Only cases where the analyst disagrees with the model", key="cases-disagree")
    since, until = (tuple(days) + (None, None))[:2] if isinstance(days, (tuple, list)) else (days, days)
    return CaseFilter(text, verdicts, finals, labels, versions, since, until, disagreement, batch, sort, descending)


def _batch_filter(column, batches: dict[int, Batch]) -> int | None:
    if "cases-batch" not in st.session_state and _int_param("batch") in batches:
        st.session_state["cases-batch"] = _int_param("batch")
    return column.selectbox("Batch", [None, *batches], key="cases-batch",
                            format_func=lambda i: "all cases" if i is None else _batch_label(batches[i]),
                            on_change=lambda: _set_param("batch", st.session_state["cases-batch"]))


def _batch_label(batch: Batch) -> str:
    failed = f", {batch.failed_count} failed" if batch.failed_count else ""
    return f"#{batch.id} {batch.name} ({batch.case_count} case(s){failed})"


def case_list_section(store: CaseStore, query: CaseFilter) -> None:
    """How many cases match, a page of them in the table (selecting a row opens the case) and the
    page's exports."""
    st.session_state["cases-listed"] = []  # Previous / Next walk this list: never the one of an earlier run
    total = store.count_cases(query)
    query = replace(query, limit=PAGE_SIZE, offset=_page_offset(store, total, query))
    summaries = store.list_cases(query)
    shown = f"; cases {query.offset + 1} to {query.offset + len(summaries)} are listed" if total > len(summaries) else ""
    st.caption(f"{total} case(s) match{shown}" + (". Select a row to open the case." if summaries else "."))
    batch = store.batch(query.batch_id) if query.batch_id is not None else None
    if not summaries:  # an empty grid draws as a blank box with the word "empty"
        _failures_section(batch)
        return
    _table(summaries)
    listed = [c.id for c in summaries]
    _failures_section(batch)
    name = (f"batch-{batch.id}" if batch else "cases") + (f"-{query.offset + 1}-to-{query.offset + len(listed)}" if shown else "")
    with st.expander(f"Export the {len(listed)} listed case(s)"):
        exports_section(lambda: [store.get(i) for i in listed], name, "list", batch)


def _failures_section(batch: Batch | None) -> None:
    """The files submitted to the batch that could not be analyzed: they have no case in the list."""
    if batch is None or not batch.failures:
        return
    with st.expander(f"{len(batch.failures)} file(s) of this batch could not be analyzed (no case)", icon=":material/warning:"):
        st.markdown("\n".join(f"- {plain(f.new)} ({f.at:%Y-%m-%d %H:%M} UTC, {plain(f.analyst)})" for f in batch.failures))


def _page_offset(store: CaseStore, total: int, query: CaseFilter) -> int:
    """The first case of the page chosen when more than a page match. Each search starts on its first
    page; a case newly opened (a link, the table) brings up the page holding it; a page emptied by
    deletions falls back to the last one."""
    pages = -(-total // PAGE_SIZE)
    if pages <= 1:
        return 0
    key = f"cases-page-{hash(repr(query))}"
    open_id = _int_param("case")
    if open_id is not None and open_id != st.session_state.get("cases-page-followed"):
        st.session_state["cases-page-followed"] = open_id
        if (position := store.position(open_id, query)) is not None:
            st.session_state[key] = position // PAGE_SIZE
    if st.session_state.get(key, 0) >= pages:
        st.session_state[key] = pages - 1
    page = st.selectbox("Page", range(pages), key=key, help="J / K walk the cases of this page",
                        format_func=lambda p: f"cases {p * PAGE_SIZE + 1} to {min(total, (p + 1) * PAGE_SIZE)} of {total}")
    return page * PAGE_SIZE


def store_audit_section(store: CaseStore) -> None:
    """The latest changes over the whole store, deleted cases and files that failed included."""
    with st.expander("Audit trail of the whole store (deleted cases and files that could not be analyzed included)"):
        failed = st.toggle("Only files that could not be analyzed", key="cases-audit-failed")
        entries = store.audit_trail(AUDIT_ROWS, action="failed" if failed else None)
        st.caption(f"The latest {len(entries)} entries, newest first; all of them: python -m core.cli audit")
        history_section(entries, whole_store=True)
        st.download_button("CSV", lambda: report.export_audit_csv(entries), "audit.csv", "text/csv", key="cases-audit-csv",
                           icon=":material/table:", on_click="ignore")


def _pick_from_table(key: str) -> None:
    rows = st.session_state[key].selection.rows
    ids = st.session_state.get("cases-listed", [])
    if rows and rows[0] < len(ids):
        _set_param("case", ids[rows[0]])


def _table(summaries) -> None:
    """The listed cases; the open case's row is the selected one. The table is keyed by the open case
    and the list, so opening another (a link, J / K, a deletion) or filtering draws it afresh with
    that row selected, instead of leaving the old row ticked."""
    listed = [c.id for c in summaries]
    st.session_state["cases-listed"] = listed
    open_id = _int_param("case")
    key = f"cases-table-{open_id}-{hash(tuple(listed))}"
    st.dataframe(
        [{"case": c.id, "file": c.file_name, "sha256": c.sha256[:12], "model verdict": c.verdict, "score": c.score,
          "analyst verdict": c.final_verdict or "", "label": c.agreement or "", "disagrees": c.disagrees,
          "analyzed (UTC)": c.created_at.strftime("%Y-%m-%d %H:%M"), "by": c.created_by, "model": c.model_version}
         for c in summaries],
        hide_index=True, placeholder="—", key=key, on_select=partial(_pick_from_table, key), selection_mode="single-row",
        selection_default={"selection": {"rows": [listed.index(open_id)] if open_id in listed else []}},
        column_config={"case": st.column_config.NumberColumn(format="#%d"),
                       "score": st.column_config.NumberColumn(format="%.3f")},
    )


def queue_section(case: Case) -> None:
    """Previous and next case of the list above (keys K and J), to work through a filtered queue
    without going back to the table; a line saying why not when the open case is not in the list."""
    listed = st.session_state.get("cases-listed", [])
    if case.id not in listed:
        st.caption(f"Case #{case.id} is not in the list above (its filters leave it out, or it is on another page), so Previous / Next and the "
                   "keys J / K step through nothing here.")
        return
    i = listed.index(case.id)
    back, where, ahead = st.columns([1, 2, 1], vertical_alignment="center")
    back.button("Previous", key="cases-previous", icon=":material/arrow_back:", shortcut="K", disabled=i == 0,
                on_click=_set_param, args=("case", listed[max(0, i - 1)]), width="stretch")
    where.caption(f"Case {i + 1} of {len(listed)} in the list above." + _unsaved_text(case.id, listed))
    ahead.button("Next", key="cases-next", icon=":material/arrow_forward:", shortcut="J", disabled=i == len(listed) - 1,
                 on_click=_set_param, args=("case", listed[min(len(listed) - 1, i + 1)]), width="stretch")


def _unsaved_text(open_case: int, listed: list[int]) -> str:
    """Which other listed cases hold a label choice or a note not saved yet (" " + a sentence, or "")."""
    parts = [f"{what} on {', '.join(f'#{c}' for c in ids)}" for what, key in (("label", DRAFTS_KEY), ("note", NOTE_DRAFTS_KEY))
             if (ids := sorted(c for c in st.session_state.get(key, {}) if c != open_case and c in listed))]
    return f" :orange[Not saved yet: {'; '.join(parts)}.]" if parts else ""


def case_from_url(store: CaseStore) -> Case | None:
    """The case named by ?case=ID, or None (with a note when it does not exist)."""
    case_id = _int_param("case")
    if case_id is None:
        return None
    try:
        return store.get(case_id)
    except CaseNotFound as exc:
        st.info(str(exc))
        if note := unsaved_note(case_id):  # typed while another tab deleted the case: copy it, not lose it
            st.warning("Your note for this case was not added. Its text, to copy:", icon=":material/edit_note:")
            st.code(note, language=None, wrap_lines=True)
        return None


def _facts(case: Case) -> None:
    left, right = st.columns([3, 2])
    with left:
        st.markdown(f"**File** {plain(case.file_name)}  \nSHA-256 `{case.sha256}`  \n"
                    f"{case.kind}, {case.size:,} bytes · analyzed {case.created_at:%Y-%m-%d %H:%M} UTC by "
                    f"{plain(case.created_by)}  \nModel `{case.model_version}` "
                    f"({'trained' if case.model_trained else 'UNTRAINED'}) · batches: "
                    f"{plain(', '.join(b.name for b in case.batches) or 'none')}")
        if case.has_media:
            st.caption("The original file is kept in the store.")
    if case.thumbnail:
        right.image(case.thumbnail, caption="Thumbnail (stored)")  # its own width, at most the column's (320 px fixed ran past it)


def stored_case_section(case: Case) -> None:
    """The stored result with the analyze pages' own sections: verdict, charts, stored heatmaps."""
    result = stored_result(case.result)
    untrained_warning(result)
    verdict_section(result)
    _facts(case)
    if result.kind == "video":
        media_facts_section(result)
        frame = timeline_section(result)
    else:
        frame = result.frames[0] if result.frames else None
    if frame is not None:
        face_chart_section(result, frame, key=f"case-{case.id}-faces")
    if case.heatmaps:
        st.subheader("Most suspicious faces (stored crops and heatmaps)")
        st.caption(HEATMAP_HELP)
        for h in case.heatmaps:
            crop, heat, text = st.columns([1, 1, 1.4])
            crop.image(h.crop_png, caption="crop the model saw", width="stretch")
            heat.image(h.overlay_png, caption=f"Grad-CAM, {h.branch} branch", width="stretch")
            text.markdown(f"**{h.where(case.kind)}**, fused score {h.score:.3f}")
    stored_forensics_section(case.forensics)
