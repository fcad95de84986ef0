"""Cases (core.cases): the analyst's name, saving analyses, history, batches.
Store errors (database down, disk full) become messages: an analysis is never lost to them."""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Callable
from urllib.parse import unquote

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from core import report
from core.analyze import Engine
from core.cases import (
    AGREEMENTS, FINAL_VERDICTS, STORE_ERRORS, AuditEntry, Batch, Case, CaseNotFound, CaseStore, LabelConflict, on_utc,
)
from core.casework import record, scan_bytes
from core.media import MediaError
from core.ui.analysis import Analysis
from core.ui.forensics import forensic_context
from core.ui.resources import current_limits, get_engine, store_or_none
from core.ui.text import STORE_TROUBLE, plain

__all__ = [
    "ANALYST_KEY", "AUTOSAVE_KEY", "KEEP_MEDIA_KEY", "CaseSettings", "case_settings_sidebar", "case_settings",
    "open_case_link", "history_section", "label_section", "notes_section", "delete_section", "case_section",
    "run_batch", "batch_results_section", "last_analysis", "exports_section",
]

log = logging.getLogger(__name__)

ANALYST_KEY, AUTOSAVE_KEY, KEEP_MEDIA_KEY = "analyst", "autosave", "keep_media"
ANALYST_COOKIE, ANALYST_COOKIE_AGE_S = "deepfake_dashboard_analyst", 365 * 24 * 3600
SAVED_KEY = "saved_cases"  # sha256 -> (case id, token of the analysis saved in it or None, token of the analysis shown with it)
BATCH_RUN_KEY = "batch_run"
CASES_PAGE = "pages/cases.py"
NAMES_SHOWN = 20  # files named in a stopped batch's warning; the rest are counted
CASES_PAGE_URL = "cases"  # its address, relative to any page of the app (links in tables)
NOT_SET = "not set"
UNEXPECTED = "unexpected error (details in the server log)"  # a batch file's failure that is not the file's fault
CONFIDENCES = [NOT_SET, *(f"{p}%" for p in range(50, 101, 10))]
LABEL_PARTS = ("agreement", "final", "confidence")  # the label form's widgets
DRAFTS_KEY = "label-drafts"  # case id -> the label form's unsaved choices
NOTE_DRAFTS_KEY = "note-drafts"  # case id -> text left in the note box


@dataclass(frozen=True)
class CaseSettings:
    analyst: str  # "" until the analyst enters a name
    autosave: bool
    keep_media: bool


def _cookie_script(name: str) -> str:
    """JavaScript that stores the name in this browser for a year (or forgets it when empty). JSON
    quotes it; "<" is escaped too, so no name can close the script element."""
    value = json.dumps(name).replace("<", "\\u003c")
    age = ANALYST_COOKIE_AGE_S if name else 0
    return (f"<script>document.cookie = '{ANALYST_COOKIE}=' + encodeURIComponent({value}) + "
            f"'; path=/; max-age={age}; SameSite=Lax';</script>")


def _remembered_analyst() -> None:
    """Session state lives as long as one tab's connection, so a reload or a typed URL would ask for the
    name again: the browser keeps it in a cookie, read here when a session starts (the name field may
    only be prefilled before it is drawn)."""
    if ANALYST_KEY not in st.session_state:
        cookie = st.context.cookies.get(ANALYST_COOKIE)  # not a str under AppTest, which has no browser
        st.session_state[ANALYST_KEY] = unquote(cookie).strip()[:100] if isinstance(cookie, str) else ""


def case_settings_sidebar() -> CaseSettings:
    """The analyst's name and the saving switches, in the shared sidebar (kept across pages)."""
    with st.sidebar:
        _remembered_analyst()
        st.text_input("Analyst name", key=ANALYST_KEY, max_chars=100, placeholder="Your name",
                      help="Recorded with every case, label and note you make; remembered in this browser "
                           "until you clear it.")
        st.toggle("Save analyses as cases", value=True, key=AUTOSAVE_KEY,
                  help="Each analysis becomes a case on the Cases page: scores, verdict, a thumbnail and the "
                       "most suspicious face crops. The original file is not kept unless you tick the box below.")
        st.checkbox("Keep the original file in the store", value=False, key=KEEP_MEDIA_KEY,
                    help="Stores the uploaded file itself in the case database (never in a served folder).")
        settings = case_settings()
        # Drawn on every run and last, so no widget above it moves; running it again rewrites the same cookie.
        st.html(_cookie_script(settings.analyst), unsafe_allow_javascript=True)
    return settings


def case_settings() -> CaseSettings:
    state = st.session_state
    return CaseSettings(str(state.get(ANALYST_KEY) or "").strip(), bool(state.get(AUTOSAVE_KEY, True)),
                        bool(state.get(KEEP_MEDIA_KEY, False)))


def open_case_link(case_id: int, label: str | None = None) -> None:
    st.page_link(CASES_PAGE, label=label or f"Open case #{case_id}", icon=":material/folder_open:",
                 query_params={"case": str(case_id)})


def _write_failed(exc: Exception, failed: str) -> str:
    """The message for a label, note or delete the store did not take (`failed` says which, as
    "The note could not be saved"); the error itself, which may quote SQL, goes to the log only."""
    log.exception("%s", failed)
    if isinstance(exc, CaseNotFound):
        return f"{failed}: this case no longer exists (another analyst may have deleted it). Reload the page."
    return f"{failed}: {STORE_TROUBLE}. Nothing was changed; try again."


def history_section(entries: list[AuditEntry], whole_store: bool = False) -> None:
    """The audit trail as a table: who, when, what (old -> new); over the whole store, also which case
    (none for a file that failed) and the file's hash."""
    rows = []
    for e in entries:
        where = {"case": e.case_id, "sha256": e.sha256[:12]} if whole_store else {}
        field, old, new = e.in_words()
        rows.append({"when (UTC)": f"{e.at:%Y-%m-%d %H:%M:%S}", "who": e.analyst, "action": e.action, **where,
                     "field": field, "old": old, "new": new})
    st.dataframe(rows, hide_index=True, placeholder="—",
                 column_config={"case": st.column_config.NumberColumn(format="#%d")})


# -- the label form: it remembers the label revision it shows, so a label changed meanwhile by
# another analyst is never overwritten silently (core.cases.LabelConflict).


def _label_key(case_id: int, part: str) -> str:
    return f"label-{case_id}-{part}"


def _confidence_text(confidence: float | None) -> str:
    """A stored confidence as the form's slider shows it ("80%")."""
    return NOT_SET if confidence is None else f"{round(confidence * 100)}%"


def _confidence_options(case: Case) -> list[str]:
    """The form's steps, plus a confidence off them (one set from the API or the CLI) that is stored or
    in the form, so saving the form again keeps it instead of clearing it."""
    off = {_confidence_text(case.label_confidence), st.session_state.get(_label_key(case.id, "confidence"), NOT_SET)}
    return [NOT_SET, *sorted({*CONFIDENCES[1:], *off} - {NOT_SET}, key=lambda text: int(text[:-1]))]


def _label_text(case: Case) -> str:
    return (f"agreement **{case.agreement or NOT_SET}**, final verdict **{case.final_verdict or NOT_SET}**, "
            f"confidence **{_confidence_text(case.label_confidence)}**")


def _stored_label(case: Case) -> dict[str, str]:
    """The stored label as the form's widgets show it."""
    return {"agreement": case.agreement or NOT_SET, "final": case.final_verdict or NOT_SET,
            "confidence": _confidence_text(case.label_confidence)}


def _fill_form(case_id: int, values: dict[str, str]) -> None:
    for part, value in values.items():
        st.session_state[_label_key(case_id, part)] = value


def _load_label(case: Case) -> None:
    """Fill the form with the stored label and remember it and its revision (also a button's callback:
    widget values can only be set before the widgets are drawn)."""
    _fill_form(case.id, _stored_label(case))
    _loaded(case)
    st.session_state.pop(_label_key(case.id, "conflict"), None)


def _loaded(case: Case) -> None:
    """The label the form started from: choices that differ from it are the analyst's own."""
    st.session_state[_label_key(case.id, "loaded")] = _stored_label(case)
    st.session_state[_label_key(case.id, "revision")] = case.label_revision


def _open_form(case: Case) -> None:
    """On coming to a case: its unsaved choices if the analyst left some (Streamlit forgets the values
    of widgets not drawn), else the stored label."""
    draft = st.session_state.get(DRAFTS_KEY, {}).get(case.id)
    if draft is None or _label_key(case.id, "loaded") not in st.session_state:
        _load_label(case)
    else:
        _fill_form(case.id, draft)


def _shown(case: Case) -> dict[str, str]:
    return {part: st.session_state[_label_key(case.id, part)] for part in LABEL_PARTS}


def _touched(case: Case) -> bool:
    """Whether the form's choices differ from the label it started from: they are the analyst's own."""
    return _shown(case) != st.session_state[_label_key(case.id, "loaded")]


def _keep_draft(case: Case) -> bool:
    """Remember the form's choices while the analyst has changed them; True when so."""
    drafts = st.session_state.setdefault(DRAFTS_KEY, {})
    if not _touched(case):
        drafts.pop(case.id, None)
        return False
    drafts[case.id] = _shown(case)
    return True


def _conflict_notice(case: Case) -> None:
    """Why the form differs from the stored label, and a way back to it."""
    conflict = st.session_state.get(_label_key(case.id, "conflict"))
    if conflict:
        st.warning(conflict, icon=":material/sync_problem:")
    elif st.session_state[_label_key(case.id, "revision")] != case.label_revision:
        st.info(f"{plain(case.labelled_by or 'Another analyst')} changed this label{on_utc(case.labelled_at)} after "
                f"you opened it; it is "
                f"now {_label_text(case)}. The form keeps your choices.", icon=":material/sync:")
    else:
        return
    st.button("Load the current label", key=_label_key(case.id, "reload"), on_click=_load_label, args=(case,))


def _save_label(store: CaseStore, case_id: int, analyst: str, agreement: str, final: str, confidence: str) -> bool:
    """Save the form's label; False (with a message in the form) when the store failed: the form is
    then left as it is, with the analyst's choices, for another try."""
    try:
        saved = store.label(case_id, analyst, agreement=None if agreement == NOT_SET else agreement,
                            final_verdict=None if final == NOT_SET else final,
                            confidence=None if confidence == NOT_SET else int(confidence[:-1]) / 100,
                            expected_revision=st.session_state[_label_key(case_id, "revision")])
    except LabelConflict as exc:  # keep the analyst's choices; the next save replaces the current label
        current = exc.current
        st.session_state[_label_key(case_id, "revision")] = current.label_revision
        st.session_state[_label_key(case_id, "conflict")] = (
            f"**Not saved:** {plain(current.labelled_by or 'another analyst')} changed this label while you were "
            f"editing it; it is now {_label_text(current)}. Your choices are still in the form: *Save label* again "
            "replaces the current label, *Load the current label* discards your choices.")
        return True
    except (CaseNotFound, *STORE_ERRORS) as exc:
        st.error(_write_failed(exc, "The label could not be saved") + " Your choices are still in the form.",
                 icon=":material/error:")
        return False
    _loaded(saved)
    st.session_state.pop(_label_key(case_id, "conflict"), None)
    st.toast(f"Label of case #{case_id} saved.")
    return True


def label_section(store: CaseStore, case: Case, analyst: str) -> None:
    """Agreement, final verdict and confidence; saving records every change in the audit trail and
    never silently replaces a label another analyst saved after this form was filled."""
    st.subheader("Analyst label")
    if _label_key(case.id, "agreement") not in st.session_state:  # first view, or back from another case
        _open_form(case)
    elif st.session_state[_label_key(case.id, "revision")] != case.label_revision and not _touched(case):
        _load_label(case)  # changed by someone else while this form stood untouched: show it as it is now
        st.toast(f"{case.labelled_by or 'Another analyst'} changed the label of case #{case.id}; the form shows it now.")
    _conflict_notice(case)
    # Not an st.form: a form keeps its choices in the browser, so moving to another case dropped them unseen.
    with st.container(border=True, key="label-form"):
        a, b, c = st.columns(3)
        agreement = a.radio("Agreement with the model", [NOT_SET, *AGREEMENTS], horizontal=True,
                            key=_label_key(case.id, "agreement"))
        final = b.selectbox("Final verdict", [NOT_SET, *FINAL_VERDICTS], key=_label_key(case.id, "final"))
        confidence = c.select_slider("Your confidence", _confidence_options(case), key=_label_key(case.id, "confidence"))
        unsaved = _keep_draft(case)
        saving = st.button("Save label", type="primary", disabled=not (analyst and unsaved), key=_label_key(case.id, "save"))
        if unsaved:
            st.caption(":orange[:material/edit: Not saved yet.] Your choices stay here if you open another case.")
        if saving and _save_label(store, case.id, analyst, agreement, final, confidence):
            st.rerun()
    if case.labelled_by:
        st.caption(f"Last labelled by {plain(case.labelled_by)}{on_utc(case.labelled_at)}."
                   + (" **The analyst disagrees with the model.**" if case.disagrees else ""))


def _note_key(case_id: int, part: str) -> str:
    return f"note-{case_id}-{part}"


def _add_note(store: CaseStore, case_id: int, analyst: str) -> None:
    """The *Add note* callback (it runs before the page is drawn again): the new note is listed at
    once, and the text box is emptied only when the note was saved."""
    text = st.session_state[_note_key(case_id, "text")]
    if not text.strip():
        return
    try:
        store.add_note(case_id, analyst, text)
    except (CaseNotFound, *STORE_ERRORS) as exc:
        st.session_state[_note_key(case_id, "error")] = _write_failed(exc, "The note could not be saved") + (
            " Your text is still in the box.")
        return
    st.session_state[_note_key(case_id, "text")] = ""


def unsaved_note(case_id: int) -> str:
    """The text typed for a case's note and not added (in its box, or left there for another case)."""
    text = st.session_state.get(_note_key(case_id, "text")) or st.session_state.get(NOTE_DRAFTS_KEY, {}).get(case_id, "")
    return text if text.strip() else ""


def notes_section(store: CaseStore, case: Case, analyst: str) -> None:
    """The case's notes, oldest first, and a box to add one (recorded in the audit trail)."""
    st.subheader("Notes")
    for note in case.notes:
        st.markdown(f"**{plain(note.analyst)}**, {note.created_at:%Y-%m-%d %H:%M} UTC  \n{plain(note.text, lines=True)}")
    failed = st.session_state.pop(_note_key(case.id, "error"), None)
    if failed:
        st.error(failed, icon=":material/error:")
    key, drafts = _note_key(case.id, "text"), st.session_state.setdefault(NOTE_DRAFTS_KEY, {})
    if key not in st.session_state:  # back from another case: the text left in the box
        st.session_state[key] = drafts.get(case.id, "")
    with st.container(border=True, key="note-form"):  # not an st.form, for the reason the label form gives
        text = st.text_area("New note", max_chars=5000, placeholder="What you checked, what you found", key=key)
        st.button("Add note", disabled=not analyst, on_click=_add_note, args=(store, case.id, analyst),
                  key=_note_key(case.id, "add"))
    if text.strip():
        drafts[case.id] = text
        st.caption(":orange[:material/edit: Not added yet.] The text stays here if you open another case.")
    else:
        drafts.pop(case.id, None)


def delete_section(store: CaseStore, case: Case, analyst: str) -> None:
    """Deleting the case, behind a confirmation box; the page then shows no case."""
    with st.expander("Delete this case"):
        sure = st.checkbox(f"I understand that case #{case.id} is deleted permanently, with its notes, heatmaps and "
                           "kept file; the audit trail keeps who did what when, without the note texts, and records "
                           "the deletion.", key=f"delete-ok-{case.id}")
        if st.button("Delete case", type="primary", disabled=not (sure and analyst), key=f"delete-{case.id}"):
            try:
                store.delete(case.id, analyst, confirm=True)
            except (CaseNotFound, *STORE_ERRORS) as exc:
                st.error(_write_failed(exc, f"Case #{case.id} could not be deleted"), icon=":material/error:")
                return
            st.query_params.pop("case", None)
            st.toast(f"Case #{case.id} deleted.")
            st.rerun()


def _save(engine: Engine, store: CaseStore, upload: UploadedFile, analysis: Analysis, settings: CaseSettings) -> Case:
    result = analysis.result
    saved = record(store, engine, result, upload.getvalue(), upload.name, settings.analyst,
                   keep_media=settings.keep_media, forensics=forensic_context(upload, result), limits=current_limits())
    st.session_state.setdefault(SAVED_KEY, {})[result.sha256] = (
        saved.case.id, analysis.token if saved.created else None, analysis.token)
    return saved.case


def _stored(store: CaseStore, case_id: int, sha256: str) -> Case | None:
    """The case if it still exists and is still this file's (a store from before schema 5 may have
    given a deleted case's number to another file)."""
    try:
        case = store.get(case_id)
    except CaseNotFound:
        return None
    return case if case.sha256 == sha256 else None


def _case_of(store: CaseStore, analysis: Analysis) -> tuple[Case | None, bool]:
    """The file's case, and whether it holds this very analysis. A remembered case is checked against
    the store on every run; one deleted while this analysis is on screen raises CaseNotFound, so the
    next click does not save it again unasked (a new upload of the file does)."""
    sha256, memory = analysis.result.sha256, st.session_state.setdefault(SAVED_KEY, {})
    remembered = memory.get(sha256)
    if remembered is not None:
        case_id, saved_token, shown_token = remembered
        case = _stored(store, case_id, sha256)
        if case is not None:
            return case, saved_token == analysis.token
        if shown_token == analysis.token:
            raise CaseNotFound(f"Case #{case_id} was deleted.")
        del memory[sha256]
    case = store.find(sha256)
    if case is not None:
        memory[sha256] = (case.id, None, analysis.token)
    return case, False


def _saved_case(sha256: str) -> tuple[CaseStore | None, Case | None, str]:
    """The store, the case this session saved or found for the file (None if there is none or it was
    deleted since), and where the analysis stands, in words."""
    remembered = st.session_state.get(SAVED_KEY, {}).get(sha256)
    if remembered is None:
        return None, None, ("it is not saved as a case" if case_settings().analyst else
                            "it is not saved as a case (enter your name in the sidebar, then upload the file again, to save it)")
    store = store_or_none()
    try:
        case = _stored(store, remembered[0], sha256) if store is not None else None
    except STORE_ERRORS:
        log.exception("checking the case of the last analysis failed")
        case = None
    return store, case, ("it is saved as a case" if case else f"its case #{remembered[0]} was deleted since")


def last_analysis(slot: str) -> Analysis | None:
    """Streamlit empties the uploader when the analyst opens another page: on coming back, the page's
    last analysis is redrawn from the session (its file's bytes are not kept), with a line saying so
    and a button to clear it; None when there is none (then, after a reload, where saved ones are)."""
    last = st.session_state.get(slot)
    if not isinstance(last, Analysis) or last.result is None:
        if case_settings().analyst:  # a reload ends the session: the saved cases are where to look
            st.page_link(CASES_PAGE, label="Your saved analyses are on the Cases page, newest first",
                         icon=":material/folder_open:")
        return None
    store, case, where = _saved_case(last.result.sha256)
    st.info(f"Your last analysis here: **{plain(last.name)}**; {where}. Streamlit empties the uploader when you open "
            "another page; the result is kept for this session, the file is not. Upload a file to analyze another.",
            icon=":material/history:")
    left, right = st.columns([3, 1])
    with left:
        if case is not None:
            open_case_link(case.id)
    right.button("Clear this result", key=f"{slot}-clear", on_click=st.session_state.pop, args=(slot, None),
                 icon=":material/close:")
    if case is not None:
        _case_exports(store, case.id)
    return last


def _case_exports(store: CaseStore, case_id: int) -> None:
    with st.expander(f"Export case #{case_id} as a report"):
        exports_section(lambda: [store.get(case_id)], f"case-{case_id}", f"analysis-export-{case_id}")


def exports_section(cases_of: Callable[[], list[Case]], name: str, key: str, batch: Batch | None = None) -> None:
    """JSON, CSV and HTML downloads; the files are built only when a button is clicked."""
    charts = st.toggle("Charts in the HTML report", value=True, key=f"{key}-charts",
                       help="Interactive charts add about 4.8 MB (plotly.js, embedded so the file opens offline).")
    a, b, c = st.columns(3)
    a.download_button("JSON", lambda: report.export_json(cases_of(), batch), f"{name}.json", "application/json",
                      key=f"{key}-json", icon=":material/data_object:", on_click="ignore")
    b.download_button("CSV", lambda: report.export_csv(cases_of()), f"{name}.csv", "text/csv",
                      key=f"{key}-csv", icon=":material/table:", on_click="ignore")
    c.download_button("HTML report", lambda: report.export_html(cases_of(), batch, charts_inline=charts), f"{name}.html",
                      "text/html", key=f"{key}-html", icon=":material/description:",
                      help="Self-contained: opens offline in any browser.", on_click="ignore")


def _known_notice(case: Case) -> None:
    label = f"; analyst verdict **{case.final_verdict}**" if case.final_verdict else "; not labelled yet"
    st.info(f"**This file was analyzed before**: case #{case.id}, first{on_utc(case.created_at)} "
            f"by {plain(case.created_by)} (model {plain(case.model_version)}, verdict **{case.verdict}**){label}. "
            "The result below is a fresh analysis; the stored case is unchanged.", icon=":material/history:")
    with st.expander(f"History of case #{case.id}"):
        history_section(case.history)


def case_section(engine: Engine, upload: UploadedFile | None, analysis: Analysis) -> None:
    """After an analysis: the file's existing case with its history, or saving it as a new case
    (automatic when the sidebar switch is on, a button otherwise)."""
    settings, result = case_settings(), analysis.result
    if result is None or upload is None:  # None: a redrawn analysis, whose notice says where its case is
        return
    if not settings.analyst:  # no name, no saving: the store is not even opened
        st.info("Enter your name in the sidebar to save this analysis as a case: a case can be labelled and exported "
                "as an HTML, JSON or CSV report (Cases page), and you see whether this file was analyzed before.",
                icon=":material/person:")
        return
    store = store_or_none()
    if store is None:
        return
    try:
        case, this_analysis = _case_of(store, analysis)
        if case is None:
            if not (settings.autosave or st.button("Save as case", icon=":material/save:")):
                return
            case = _save(engine, store, upload, analysis, settings)
            this_analysis = st.session_state[SAVED_KEY][result.sha256][1] == analysis.token
        if this_analysis:
            st.success(f"Saved as case #{case.id}.", icon=":material/save:")
        else:  # saved before, or the stored case holds an earlier analysis (another frame count)
            _known_notice(case)
        open_case_link(case.id)
        _case_exports(store, case.id)
    except CaseNotFound:
        st.info("The case of this file was deleted meanwhile; upload the file again to save it again.")
    except STORE_ERRORS:
        log.exception("saving the case failed")
        st.error(f"The case could not be saved: {STORE_TROUBLE}. The analysis above is unaffected; try again.",
                 icon=":material/error:")
    except Exception:  # noqa: BLE001 - e.g. a reader of the file's forensic context; the page goes on
        log.exception("saving the case failed unexpectedly")
        st.error("The case could not be saved: unexpected error (details in the server log). The analysis above is "
                 "unaffected.", icon=":material/error:")


def _failed(store: CaseStore, data: bytes, name: str, analyst: str, error: str, batch_id: int) -> str:
    """A batch row's status for a file that could not be analyzed, recorded in the audit trail with
    its batch, as a command-line scan records it (a store error there only goes to the log: the row says enough)."""
    try:
        store.log_failure(hashlib.sha256(data).hexdigest(), name, analyst, error, batch_id)
    except STORE_ERRORS:
        log.exception("batch: recording a failed file failed")
    return f"failed: {error}"


def _batch_row(store: CaseStore, batch_id: int, upload: UploadedFile, frames: int, settings: CaseSettings,
               progress: Callable[[float, str], None]) -> dict:
    """One file of a batch analyzed and saved: its row (file, status, verdict, score, case). Whatever
    goes wrong stays in this row, so the other files are still analyzed."""
    data = upload.getvalue()
    # the hash's start tells apart two files of one name (a real and a fake "100.jpg")
    row = {"file": upload.name, "sha256": hashlib.sha256(data).hexdigest()[:12], "status": "", "verdict": "", "score": None,
           "case": None}
    try:
        saved = scan_bytes(store, get_engine, data, upload.name, settings.analyst, batch_id=batch_id,
                           frames=frames, keep_media=settings.keep_media, limits=current_limits(), progress=progress)
    except MediaError as exc:  # the file's own fault; its message says what is wrong with it
        row["status"] = _failed(store, data, upload.name, settings.analyst, str(exc), batch_id)
    except STORE_ERRORS:
        log.exception("batch: saving %s failed", upload.name)
        row["status"] = f"not saved: {STORE_TROUBLE}; run the batch again"
    except Exception:  # a model or decoder bug: this file fails (audited), the batch goes on
        log.exception("batch: analyzing %s failed", upload.name)
        row["status"] = _failed(store, data, upload.name, settings.analyst, UNEXPECTED, batch_id)
    else:
        case = saved.case
        row |= {"status": "new case" if saved.created else "already a case", "verdict": case.verdict,
                "score": case.score, "case": f"{CASES_PAGE_URL}?case={case.id}"}
    return row


def run_batch(store: CaseStore, uploads: list[UploadedFile], name: str, frames: int, settings: CaseSettings) -> int | None:
    """Analyze the uploads one by one into a new batch, with a progress bar; returns the batch id
    (None, with a message, when the batch cannot be made). The rows (file, status, verdict, case)
    go into the session as each file is done, for `batch_results_section`: a run stopped midway
    (the analyst clicked elsewhere) still shows the files it finished."""
    try:
        batch = store.create_batch(name, settings.analyst)
    except (ValueError, *STORE_ERRORS) as exc:
        log.exception("batch: creating the batch failed")
        reason = plain(exc) if isinstance(exc, ValueError) else STORE_TROUBLE  # a bad name is the analyst's to fix
        st.error(f"The batch could not be created: {reason}", icon=":material/error:")
        return None
    bar = st.progress(0.0, text="Starting…")
    rows: list[dict] = []
    st.session_state[BATCH_RUN_KEY] = {"batch_id": batch.id, "name": batch.name, "rows": rows, "files": [u.name for u in uploads]}
    for i, upload in enumerate(uploads):
        def step(fraction: float, text: str, i: int = i, upload: UploadedFile = upload) -> None:
            bar.progress(min(1.0, (i + fraction) / len(uploads)),
                         text=f"{plain(upload.name)} ({i + 1} of {len(uploads)}): {text}")

        step(0.0, "analyzing…")
        rows.append(_batch_row(store, batch.id, upload, frames, settings, step))  # the session holds this list
    bar.progress(1.0, text=f"Done: {len(uploads)} file(s).")
    return batch.id


def batch_results_section() -> None:
    """The last batch run of this session: one row per file, and a link to the batch on the Cases page."""
    run = st.session_state.get(BATCH_RUN_KEY)
    if not run:
        return
    st.subheader(f"Batch #{run['batch_id']}: {plain(run['name'])}")
    left = run["files"][len(run["rows"]):]
    if left:  # named: the uploader is empty by now
        more = f" and {len(left) - NAMES_SHOWN} more" if len(left) > NAMES_SHOWN else ""
        st.warning(f"The run stopped after {len(run['rows'])} of {len(run['files'])} file(s). Not analyzed: "
                   + ", ".join(plain(name) for name in left[:NAMES_SHOWN]) + more
                   + ". Run the batch again for them (files already done keep their cases).", icon=":material/warning:")
    st.dataframe(run["rows"], hide_index=True, placeholder="—", column_config={
        "verdict": st.column_config.TextColumn(width="medium"), "score": st.column_config.NumberColumn(format="%.3f"),
        "case": st.column_config.LinkColumn(display_text=r"case=(\d+)$", help="Opens the case on the Cases page")})
    unsaved = [row for row in run["rows"] if row["case"] is None]
    if unsaved:  # in full: a table cell cuts a long reason short
        st.markdown("**Without a case:**\n" + "\n".join(f"- {plain(row['file'])}: {plain(row['status'])}" for row in unsaved))
    st.page_link(CASES_PAGE, label="Open this batch on the Cases page", icon=":material/folder_open:",
                 query_params={"batch": str(run["batch_id"])})
