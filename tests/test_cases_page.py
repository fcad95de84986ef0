"""The Cases and Batch pages and the save-after-analysis section, through streamlit.testing.v1.AppTest."""
from __future__ import annotations

import hashlib
import io
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from sqlalchemy.exc import OperationalError
from streamlit.testing.v1 import AppTest

from core import cases
from core.ui import ANALYST_KEY, AUTOSAVE_KEY, IMAGE_SLOT, KEEP_MEDIA_KEY
from core.ui.text import STORE_TROUBLE
from store_fixtures import sample_result, sha


def sha_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
CASES = str(ROOT / "pages" / "cases.py")
TIMEOUT = 180  # the first run through the app loads the detector; CI machines are busy
HOSTILE = "evil [link](javascript:alert(1)) <b>bold.jpg"  # no slash: it stays one file name
SECRET = "jane_doe_private.jpg"  # a parameter of the failing SQL: it must never reach the page


def _locked(*_args, **_kwargs):
    """A store call failing as SQLAlchemy reports it: the message quotes the SQL and its parameters."""
    raise OperationalError("INSERT INTO audit (new) VALUES (?)", (SECRET,), sqlite3.OperationalError("database is locked"))


def _gone(*_args, **_kwargs):
    raise cases.CaseNotFound("Case #1 does not exist (it may have been deleted).")


def _shown(at: AppTest) -> str:
    return " ".join(e.value for kind in (at.error, at.warning, at.info, at.markdown) for e in kind)


def _image(fmt: str, value: int = 120) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def store(tmp_path, monkeypatch) -> cases.CaseStore:
    """An empty store that the app opens too (DEEPFAKE_DB_URL)."""
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    monkeypatch.setenv("DEEPFAKE_DB_URL", url)
    s = cases.open_store(url)
    yield s
    s.close()


@pytest.fixture
def seeded(store) -> dict[str, int]:
    heat = cases.Heatmap(0, 0, "blend", 0.9, _image("PNG"), _image("PNG", 200))
    batch = store.create_batch("Monday queue", "ann")
    ids = {
        "fake": store.save(sample_result(sha(1), "FAKE", 0.9), HOSTILE, "ann", thumbnail=_image("JPEG"),
                           heatmaps=[heat], batch_id=batch.id).case.id,
        "real": store.save(sample_result(sha(2), "REAL", 0.1), "portrait.png", "bob").case.id,
        "video": store.save(sample_result(sha(3), "INCONCLUSIVE", 0.5, kind="video", frames=4), "clip.mp4", "bob").case.id,
    }
    store.add_note(ids["fake"], "ann", "checked the source account")
    return {**ids, "batch": batch.id}


def cases_page(analyst: str = "", case: int | None = None, batch: int | None = None) -> AppTest:
    at = AppTest.from_file(CASES, default_timeout=TIMEOUT)
    at.session_state[ANALYST_KEY] = analyst
    if case is not None:
        at.query_params["case"] = str(case)
    if batch is not None:
        at.query_params["batch"] = str(batch)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def listed(at: AppTest) -> list[int]:
    return list(at.dataframe[0].value["case"])


def test_empty_store(store):
    at = cases_page()
    assert at.title[0].value == "Cases"
    assert any("0 case(s) match" in c.value for c in at.caption)
    assert any("Enter your name" in i.value for i in at.info)


def test_table_lists_filters_and_searches(seeded):
    at = cases_page()
    assert sorted(listed(at)) == sorted([seeded["fake"], seeded["real"], seeded["video"]])
    at.multiselect(key="cases-verdicts").set_value(["FAKE", "REAL"]).run()
    assert sorted(listed(at)) == sorted([seeded["fake"], seeded["real"]])
    at.text_input(key="cases-search").set_value("source account").run()  # note text
    assert listed(at) == [seeded["fake"]]
    at.text_input(key="cases-search").set_value("").run()
    at.multiselect(key="cases-verdicts").set_value([]).run()
    at.multiselect(key="cases-labels").set_value([cases.UNLABELLED]).run()
    assert len(listed(at)) == 3
    at.selectbox(key="cases-sort").set_value("file_name").run()
    at.toggle(key="cases-desc").set_value(False).run()
    names = list(at.dataframe[0].value["file"])
    assert names == sorted(names)
    assert not at.exception


def test_more_matches_than_a_page_are_listed_page_by_page(seeded, store, monkeypatch):
    import core.ui.case_browser

    monkeypatch.setattr(core.ui.case_browser, "PAGE_SIZE", 2)
    extra = {store.save(sample_result(sha(k)), f"more{k}.jpg", "ann").case.id for k in (4, 5)}
    at = cases_page()
    pages = [listed(at)]
    assert len(pages[0]) == 2 and any("5 case(s) match; cases 1 to 2 are listed" in c.value for c in at.caption)
    for number in (1, 2):
        next(s for s in at.selectbox if s.label == "Page").set_value(number).run()
        pages.append(listed(at))
    assert [len(p) for p in pages] == [2, 2, 1] and set(sum(pages, [])) == {seeded["fake"], seeded["real"], seeded["video"], *extra}
    store.delete(pages[2][0], "ann", confirm=True)  # the page emptied: the last page left is shown
    at.run()
    assert listed(at) == pages[1] and any("cases 3 to 4 are listed" in c.value for c in at.caption)
    at.query_params["case"] = str(pages[1][1])  # a link to a case on another page brings up its page
    next(s for s in at.selectbox if s.label == "Page").set_value(0).run()
    assert listed(at) == pages[1] and any(b.key == "cases-next" for b in at.button)
    next(s for s in at.selectbox if s.label == "Page").set_value(0).run()  # the analyst may still turn the page
    assert listed(at) == pages[0]
    at.text_input(key="cases-search").set_value("more").run()  # a new search starts on its first page
    assert sorted(listed(at)) == sorted(extra) and not any(s.label == "Page" for s in at.selectbox)
    assert not at.exception


def test_a_batch_reopens_from_the_url(seeded):
    at = cases_page(batch=seeded["batch"])
    assert listed(at) == [seeded["fake"]]
    assert at.selectbox(key="cases-batch").value == seeded["batch"]


def test_open_case_shows_the_stored_result_without_the_model(seeded, monkeypatch):
    import core.ui.resources

    def no_model():
        raise AssertionError("the Cases page must not load the model")

    monkeypatch.setattr(core.ui.resources, "get_engine", no_model)
    at = cases_page(case=seeded["fake"])
    assert any(h.value == f"Case #{seeded['fake']}" for h in at.header)
    banners = [b.value for kind in (at.error, at.warning, at.info, at.success) for b in kind]
    assert any(text.startswith("### FAKE") for text in banners)
    markdown = " ".join(m.value for m in at.markdown)
    assert sha(1) in markdown and "checked the source account" in markdown
    assert "[link](javascript" not in markdown and "\\[link\\]\\(javascript" in markdown  # file name escaped
    assert "<b>" not in markdown
    captions = [c.caption for img in at.image for c in img.proto.imgs]
    assert "Thumbnail (stored)" in captions and "Grad-CAM, blend branch" in captions
    assert len(at.get("plotly_chart")) == 1
    assert [d.label for d in at.get("download_button")].count("HTML report") == 2  # the list and the case


def test_previous_and_next_step_through_the_listed_cases(seeded):
    at = cases_page(case=seeded["real"])
    order = listed(at)  # newest first
    assert order.index(seeded["real"]) == 1 and any("Case 2 of 3 in the list above." in c.value for c in at.caption)
    at.button(key="cases-next").click().run()
    assert at.query_params["case"] == str(order[2]) and at.button(key="cases-next").disabled
    at.button(key="cases-previous").click().run()
    at.button(key="cases-previous").click().run()
    assert at.query_params["case"] == str(order[0]) and at.button(key="cases-previous").disabled
    at.multiselect(key="cases-verdicts").set_value(["REAL"]).run()  # the open case leaves the list
    assert listed(at) == [seeded["real"]] and not any(b.key == "cases-next" for b in at.button)
    at.query_params["case"] = str(seeded["real"])
    at.text_input(key="cases-search").set_value("matches nothing").run()  # an empty list: nothing to step through
    assert any("0 case(s) match" in c.value for c in at.caption) and not any(b.key == "cases-next" for b in at.button)
    assert any(f"Case #{seeded['real']} is not in the list above" in c.value for c in at.caption)


def test_open_video_case_shows_its_timeline(seeded):
    at = cases_page(case=seeded["video"])
    assert len(at.get("plotly_chart")) == 2  # timeline and faces of the chosen frame
    assert any(m.label == "Frames sampled" for m in at.metric)


def test_unknown_case_is_a_message(seeded):
    at = cases_page(case=999)
    assert any("Case #999 does not exist" in i.value for i in at.info)


def test_label_is_saved_with_its_audit_trail(seeded, store):
    at = cases_page("Carol", case=seeded["real"])
    at.radio[0].set_value("disagree")
    [s for s in at.selectbox if s.label == "Final verdict"][0].set_value("FAKE")
    at.select_slider[0].set_value("80%").run()  # each choice reruns the page, as in a browser
    [b for b in at.button if b.label == "Save label"][0].click().run()
    assert not at.exception, [e.message for e in at.exception]
    case = store.get(seeded["real"])
    assert (case.agreement, case.final_verdict, case.label_confidence, case.labelled_by) == ("disagree", "FAKE", 0.8, "Carol")
    assert [(h.field, h.old, h.new) for h in case.history if h.action == "label"] == [
        ("agreement", None, "disagree"), ("final_verdict", None, "FAKE"), ("label_confidence", None, "0.8")]


def _save_label(at: AppTest) -> None:
    at.run()  # a browser reruns the page on each choice, which enables *Save label*
    [b for b in at.button if b.label == "Save label"][0].click().run()
    assert not at.exception, [e.message for e in at.exception]


def test_a_label_saved_meanwhile_is_shown_not_overwritten(seeded, store):
    at = cases_page("Carol", case=seeded["real"])
    store.label(seeded["real"], "Bob <b>", agreement="agree", final_verdict="REAL", expected_revision=0)  # Bob saves first
    at.radio[0].set_value("disagree")
    [s for s in at.selectbox if s.label == "Final verdict"][0].set_value("FAKE").run()
    _save_label(at)
    case = store.get(seeded["real"])
    assert (case.agreement, case.final_verdict, case.labelled_by) == ("agree", "REAL", "Bob <b>")  # not overwritten
    (notice,) = [w.value for w in at.warning if "Not saved" in w.value]
    assert "Bob \\<b\\>" in notice and "agreement **agree**" in notice and "final verdict **REAL**" in notice
    assert at.radio[0].value == "disagree"  # Carol's choices stay in the form
    _save_label(at)  # saving again, knowing, replaces Bob's label
    case = store.get(seeded["real"])
    assert (case.agreement, case.final_verdict, case.labelled_by, case.label_revision) == ("disagree", "FAKE", "Carol", 2)
    assert not [w for w in at.warning if "Not saved" in w.value]


def test_an_untouched_form_follows_a_label_saved_meanwhile(seeded, store):
    at = cases_page("Carol", case=seeded["real"])
    store.label(seeded["real"], "Bob", agreement="agree", final_verdict="REAL", expected_revision=0)
    at.run()  # any rerun: Carol chose nothing, so there is nothing of hers to keep or to save
    assert at.radio[0].value == "agree" and not any("Not saved yet" in c.value for c in at.caption)
    assert [b for b in at.button if b.label == "Save label"][0].disabled
    assert any("Bob changed the label" in t.value for t in at.toast)


def test_the_current_label_can_be_loaded_instead(seeded, store):
    at = cases_page("Carol", case=seeded["real"])
    [s for s in at.selectbox if s.label == "Final verdict"][0].set_value("FAKE").run()  # Carol's choice, not saved
    store.label(seeded["real"], "Bob", agreement="agree", expected_revision=0)
    at.run()  # any rerun: the form keeps Carol's choice and says what changed
    assert any("Bob changed this label" in i.value for i in at.info)
    [b for b in at.button if b.label == "Load the current label"][0].click().run()
    assert at.radio[0].value == "agree" and not any("changed this label" in i.value for i in at.info)
    at.select_slider[0].set_value("90%")
    _save_label(at)
    case = store.get(seeded["real"])
    assert (case.agreement, case.label_confidence, case.labelled_by) == ("agree", 0.9, "Carol")


def test_an_unsaved_label_waits_while_the_analyst_looks_at_another_case(seeded, store):
    at = cases_page("Carol", case=seeded["real"])
    assert [b for b in at.button if b.label == "Save label"][0].disabled  # nothing to save yet
    at.radio[0].set_value("disagree").run()
    assert any("Not saved yet" in c.value for c in at.caption)
    at.button(key="cases-next").click().run()  # J, before saving
    assert any(f"Not saved yet: label on #{seeded['real']}." in c.value for c in at.caption)
    assert at.radio[0].value == "not set"  # the next case's own form
    at.button(key="cases-previous").click().run()
    assert at.radio[0].value == "disagree" and any("Not saved yet" in c.value for c in at.caption)
    _save_label(at)
    assert store.get(seeded["real"]).agreement == "disagree"
    assert not any("Not saved yet" in c.value for c in at.caption)


def test_a_confidence_off_the_form_steps_survives_saving_the_form(seeded, store):
    store.label(seeded["real"], "Bob", agreement="agree", confidence=0.73, expected_revision=0)  # e.g. from the API
    at = cases_page("Carol", case=seeded["real"])
    assert at.select_slider[0].value == "73%"
    [s for s in at.selectbox if s.label == "Final verdict"][0].set_value("REAL")
    _save_label(at)
    case = store.get(seeded["real"])
    assert (case.final_verdict, case.label_confidence, case.labelled_by) == ("REAL", 0.73, "Carol")


def test_note_is_added(seeded, store):
    at = cases_page("Carol", case=seeded["real"])
    at.text_area[0].set_value("Reverse image search: first seen 2019.")
    [b for b in at.button if b.label == "Add note"][0].click().run()
    assert [n.text for n in store.get(seeded["real"]).notes] == ["Reverse image search: first seen 2019."]


def test_a_note_typed_on_a_case_deleted_meanwhile_is_shown_to_copy(seeded, store):
    at = cases_page("Carol", case=seeded["real"])
    at.text_area[0].set_value("Reverse search: first seen 2019 on a forum")
    store.delete(seeded["real"], "bob", confirm=True)  # in another tab
    [b for b in at.button if b.label == "Add note"][0].click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("does not exist" in i.value for i in at.info)
    assert any(w.value.startswith("Your note for this case was not added") for w in at.warning)
    assert [c.value for c in at.code] == ["Reverse search: first seen 2019 on a forum"]


@pytest.mark.parametrize("failure, message", [(_locked, f"{STORE_TROUBLE}. Nothing was changed; try again"),
                                              (_gone, "this case no longer exists")], ids=["store error", "deleted"])
def test_a_failed_label_note_or_delete_is_a_plain_message(seeded, store, monkeypatch, failure, message):
    for method in ("label", "add_note", "delete"):
        monkeypatch.setattr(cases.CaseStore, method, failure)
    at = cases_page("Carol", case=seeded["real"])
    at.radio[0].set_value("disagree")
    _save_label(at)
    assert any(e.value.startswith(f"The label could not be saved: {message}") for e in at.error)
    assert at.radio[0].value == "disagree"  # the analyst's choices stay for another try
    at.text_area[0].set_value("Seen on a forum in 2019.")
    [b for b in at.button if b.label == "Add note"][0].click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any(e.value.startswith(f"The note could not be saved: {message}") for e in at.error)
    assert at.text_area[0].value == "Seen on a forum in 2019."  # not lost
    at.checkbox(key=f"delete-ok-{seeded['real']}").check().run()
    [b for b in at.button if b.label == "Delete case"][0].click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any(e.value.startswith(f"Case #{seeded['real']} could not be deleted: {message}") for e in at.error)
    assert SECRET not in _shown(at) and "INSERT" not in _shown(at)
    monkeypatch.undo()
    assert store.get(seeded["real"]).agreement is None and at.query_params["case"] == str(seeded["real"])


def test_a_note_not_added_waits_in_its_box(seeded, store):
    at = cases_page("Carol", case=seeded["real"])
    at.text_area[0].set_value("Half-written").run()
    assert any("Not added yet" in c.value for c in at.caption)
    at.button(key="cases-next").click().run()
    assert at.text_area[0].value == "" and any(f"note on #{seeded['real']}." in c.value for c in at.caption)
    at.button(key="cases-previous").click().run()
    assert at.text_area[0].value == "Half-written" and not store.get(seeded["real"]).notes


def test_a_saved_note_empties_the_box(seeded, store):
    at = cases_page("Carol", case=seeded["real"])
    at.text_area[0].set_value("First seen in 2019")
    [b for b in at.button if b.label == "Add note"][0].click().run()
    assert at.text_area[0].value == "" and "First seen in 2019" in _shown(at)  # listed at once


def test_an_unreachable_store_does_not_show_its_sql(store, monkeypatch):
    import core.ui.resources

    monkeypatch.setattr(core.ui.resources, "get_store", _locked)
    at = AppTest.from_file(CASES, default_timeout=TIMEOUT).run()
    assert not at.exception
    (warning,) = [w.value for w in at.warning]
    assert warning == f"The case store is unavailable, so nothing can be saved: {STORE_TROUBLE}"


def test_the_store_audit_trail_lists_files_that_failed(seeded, store):
    store.log_failure("ef" * 32, "/uploads/broken.jpg", "ann", "not an image")
    at = cases_page()
    audit = at.dataframe[-1].value
    assert len(audit) == len(store.audit_trail()) and audit["new"].iloc[0] == "broken.jpg: not an image"
    at.toggle(key="cases-audit-failed").set_value(True).run()
    assert list(at.dataframe[-1].value["action"]) == ["failed"]


@pytest.mark.parametrize("method", ["list_cases", "batches", "get", "audit_trail"])
def test_a_store_failing_while_browsing_is_a_message_without_its_sql(seeded, monkeypatch, method):
    monkeypatch.setattr(cases.CaseStore, method, _locked)
    at = cases_page(case=seeded["fake"])  # asserts no exception reached the page
    (error,) = [e.value for e in at.error]
    assert error == f"Could not list the cases: {STORE_TROUBLE}. Reload the page to try again."
    assert SECRET not in _shown(at) and not at.header  # the page stopped before the case


@pytest.mark.parametrize("param, value", [("case", "²"), ("case", str(2**63)), ("batch", "①"), ("case", "9" * 40)])
def test_a_link_with_an_odd_number_opens_the_list_only(seeded, param, value):
    at = AppTest.from_file(CASES, default_timeout=TIMEOUT)
    at.query_params[param] = value
    at.run()
    assert not at.exception and not at.header and at.dataframe  # the list, no case


def test_without_a_name_nothing_can_be_changed(seeded):
    at = cases_page(case=seeded["real"])
    buttons = {b.label: b.disabled for b in at.button}
    assert buttons["Save label"] and buttons["Add note"] and buttons["Delete case"]


def test_delete_needs_the_confirmation_box(seeded, store):
    at = cases_page("Carol", case=seeded["real"])
    delete = [b for b in at.button if b.label == "Delete case"][0]
    assert delete.disabled
    at.checkbox(key=f"delete-ok-{seeded['real']}").check().run()
    [b for b in at.button if b.label == "Delete case"][0].click().run()
    assert not at.exception
    with pytest.raises(cases.CaseNotFound):
        store.get(seeded["real"])
    assert "case" not in at.query_params
    assert store.audit_trail()[0].action == "delete" and store.audit_trail()[0].analyst == "Carol"


# ------------------------------------------------------------ through the app: saving and batches


def test_sidebar_asks_for_a_name_and_saves_by_default(store):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.sidebar.text_input(key=ANALYST_KEY).value == ""
    assert at.sidebar.toggle(key=AUTOSAVE_KEY).value is True
    assert at.sidebar.checkbox(key=KEEP_MEDIA_KEY).value is False


def test_the_name_cookie_script_cannot_be_broken_out_of():
    from core.ui.cases import ANALYST_COOKIE, _cookie_script

    script = _cookie_script('Dana </script><img src=x onerror=alert(1)> "\'')
    assert script.count("<") == 2 and script.endswith("</script>")  # its own two tags only
    assert f"{ANALYST_COOKIE}=' + encodeURIComponent(" in script and "max-age=31536000" in script
    assert "max-age=0" in _cookie_script("")  # a cleared field forgets the name


def verdicts(at: AppTest) -> list[str]:
    return [b.value for kind in (at.error, at.warning, at.info, at.success) for b in kind if b.value.startswith("### ")]


def app(page: str, analyst: str = "Dana", autosave: bool = True) -> AppTest:
    """A page of the app with the sidebar's name and saving switch set. (AppTest runs a switched-to
    page without the entry script, so the sidebar's values are given as session state.)"""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(page)
    at.session_state[ANALYST_KEY], at.session_state[AUTOSAVE_KEY] = analyst, autosave
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_analysis_is_saved_once_and_known_on_reupload(store, engine, astronaut_jpeg):
    at = app("pages/analyze_image.py")
    assert [link.label for link in at.get("page_link")] == ["Your saved analyses are on the Cases page, newest first"]
    at.file_uploader[0].upload("astronaut.jpg", astronaut_jpeg, "image/jpeg").run()
    assert not at.exception, [e.message for e in at.exception]
    assert any(s.value.startswith("Saved as case #") for s in at.success)
    (summary,) = store.list_cases()
    case = store.get(summary.id)
    assert case.created_by == "Dana" and case.heatmaps and case.thumbnail and case.forensics
    assert not case.has_media
    assert [d.label for d in at.get("download_button")] == ["JSON", "CSV", "HTML report"]  # the report, from here
    at.run()  # a rerun (any widget) does not save again
    assert store.count_cases() == 1
    at.switch_page("pages/model_card.py").run()
    at.switch_page("pages/analyze_image.py").run()  # back: Streamlit has emptied the uploader
    assert not at.exception and not at.file_uploader[0].value
    (notice,) = [i.value for i in at.info if i.value.startswith("Your last analysis here")]
    assert "astronaut" in notice and "it is saved as a case" in notice
    assert any(link.label == f"Open case #{case.id}" for link in at.get("page_link"))
    assert len(verdicts(at)) == 1 and at.get("plotly_chart")  # the result itself, redrawn
    assert [d.label for d in at.get("download_button")] == ["JSON", "CSV", "HTML report"]  # its case's report still
    assert any("upload the file again to compute it" in c.value for c in at.caption)  # its bytes are not kept
    assert store.count_cases() == 1
    at.button(key=f"{IMAGE_SLOT}-clear").click().run()
    assert not verdicts(at) and not any(i.value.startswith("Your last analysis here") for i in at.info)

    again = app("pages/analyze_image.py", analyst="Eve")
    again.file_uploader[0].upload("renamed.jpg", astronaut_jpeg, "image/jpeg").run()
    notice = [i.value for i in again.info if "analyzed before" in i.value]
    assert notice and f"case #{case.id}" in notice[0] and "Dana" in notice[0]
    assert store.count_cases() == 1
    assert any(link.label == f"Open case #{case.id}" for link in again.get("page_link"))


def test_a_case_deleted_meanwhile_is_never_claimed_nor_resaved_unasked(store, engine, astronaut_jpeg):
    at = app("pages/analyze_image.py")
    at.file_uploader[0].upload("astronaut.jpg", astronaut_jpeg, "image/jpeg").run()
    (summary,) = store.list_cases()
    store.delete(summary.id, "Carol", confirm=True)  # by a colleague, while the result is on screen
    store.save(sample_result(sha(7), "REAL", 0.1), "someone_else.jpg", "bob")
    at.run()  # any click
    assert any("was deleted meanwhile" in i.value for i in at.info) and not at.success
    assert not any(link.label.startswith("Open case #") for link in at.get("page_link"))
    assert store.count_cases() == 1  # not saved again unasked
    at.switch_page("pages/model_card.py").run()
    at.switch_page("pages/analyze_image.py").run()
    (notice,) = [i.value for i in at.info if i.value.startswith("Your last analysis here")]
    assert "its case #1 was deleted since" in notice and not any(l.label.startswith("Open case") for l in at.get("page_link"))
    at.file_uploader[0].upload("astronaut.jpg", astronaut_jpeg, "image/jpeg").run()  # uploaded again: saved again
    (saved,) = [s.value for s in at.success]
    assert store.count_cases() == 2 and saved == f"Saved as case #{store.find(sha_of(astronaut_jpeg)).id}."


def test_a_second_analysis_of_a_saved_video_says_the_case_holds_the_first(store, engine, two_face_video):
    at = app("pages/analyze_video.py")
    at.slider(key="video_frames").set_value(8).run()
    at.file_uploader[0].upload("two.mp4", two_face_video, "video/mp4").run()
    assert any(s.value.startswith("Saved as case #") for s in at.success)
    at.slider(key="video_frames").set_value(16).run()
    [b for b in at.button if b.label.startswith("Analyze again")][0].click().run()
    assert not at.success and any("the stored case is unchanged" in i.value for i in at.info)
    (summary,) = store.list_cases()
    assert store.get(summary.id).media["frames_sampled"] == 8


def test_a_store_error_while_saving_the_analysis_does_not_show_its_sql(store, astronaut_jpeg, monkeypatch):
    import core.ui.cases

    monkeypatch.setattr(core.ui.cases, "record", _locked)
    at = app("pages/analyze_image.py")
    at.file_uploader[0].upload(SECRET, astronaut_jpeg, "image/jpeg").run()
    assert not at.exception, [e.message for e in at.exception]
    (error,) = [e.value for e in at.error if "could not be saved" in e.value]
    assert error == f"The case could not be saved: {STORE_TROUBLE}. The analysis above is unaffected; try again."
    banners = [b.value for kind in (at.error, at.warning, at.info, at.success) for b in kind]
    assert any(text.startswith("### ") for text in banners)  # the analysis itself is shown


def test_an_unexpected_error_while_saving_is_a_message_under_the_result(store, astronaut_jpeg, monkeypatch):
    import core.ui.cases

    def broken(*_args):
        raise LookupError("unknown encoding: x-nonexistent")  # as a metadata reader once raised

    monkeypatch.setattr(core.ui.cases, "forensic_context", broken)
    at = app("pages/analyze_image.py")
    at.file_uploader[0].upload("odd.jpg", astronaut_jpeg, "image/jpeg").run()
    assert not at.exception, [e.message for e in at.exception]
    assert any(e.value.startswith("The case could not be saved: unexpected error") for e in at.error)
    assert any(b.value.startswith("### ") for kind in (at.error, at.warning, at.info, at.success) for b in kind)


def test_without_autosave_a_button_saves(store, astronaut_jpeg):
    at = app("pages/analyze_image.py", autosave=False)
    at.file_uploader[0].upload("astronaut.jpg", astronaut_jpeg, "image/jpeg").run()
    assert store.count_cases() == 0
    [b for b in at.button if b.label == "Save as case"][0].click().run()
    assert store.count_cases() == 1


def test_batch_upload_waits_for_case_saving(store, astronaut_jpeg):
    at = app("pages/batch.py", autosave=False)
    at.file_uploader[0].upload("astronaut.jpg", astronaut_jpeg, "image/jpeg").run()
    assert not any(b.label.startswith("Analyze 1 file(s)") for b in at.button)  # a batch saves every file
    assert any("Saving is switched off" in i.value for i in at.info) and store.count_cases() == 0


def test_batch_upload_processes_every_file(store, astronaut_jpeg, no_face_png):
    at = app("pages/batch.py")
    at.text_input(key="batch-name").set_value("Inbox <Monday>")
    uploader = at.file_uploader[0]
    uploader.upload("astronaut.jpg", astronaut_jpeg, "image/jpeg").upload("shapes.png", no_face_png, "image/png")
    uploader.upload(HOSTILE, astronaut_jpeg[:200], "image/jpeg").run()
    [b for b in at.button if b.label.startswith("Analyze 3 file(s)")][0].click().run()
    assert not at.exception, [e.message for e in at.exception]
    rows = at.dataframe[0].value
    assert list(rows["file"]) == ["astronaut.jpg", "shapes.png", HOSTILE]  # a table cell: shown as typed
    assert list(rows["status"][:2]) == ["new case", "new case"] and rows["status"][2].startswith("failed:")
    assert [c for c in rows["case"][:2]] == [f"cases?case={c.id}" for c in sorted(store.list_cases(), key=lambda c: c.id)]  # links
    assert any(m.value.startswith("**Without a case:**\n- evil \\[link\\]") and "failed\\: The image could not be decoded" in m.value for m in at.markdown)
    (batch,) = store.batches()
    assert (batch.name, batch.case_count, batch.created_by) == ("Inbox <Monday>", 2, "Dana")
    (failed,) = [e for e in store.audit_trail() if e.action == "failed"]  # as a command-line scan records it
    assert failed.analyst == "Dana" and failed.new.startswith(f"{HOSTILE}: ") and failed.case_id is None
    assert batch.failed_count == 1 and store.batch(batch.id).failures == (failed,)  # kept with the batch, for when it is reopened
    assert any(link.label == "Open this batch on the Cases page" for link in at.get("page_link"))
    later = cases_page(batch=batch.id)  # another session: the failed file is still named
    (box,) = [e for e in later.expander if e.label.startswith("1 file(s) of this batch could not be analyzed")]
    assert "evil \\[link\\]" in " ".join(m.value for m in box.markdown)
    assert later.selectbox(key="cases-batch").format_func(batch.id).endswith("(2 case(s), 1 failed)")


def test_a_batch_goes_on_after_an_unexpected_error_and_keeps_its_rows_when_stopped(store, monkeypatch):
    import core.ui.cases

    def scan(store, _engine, data, name, analyst, *, batch_id, progress, **_options):
        progress(0.5, "scoring faces…")
        if name == "crash.png":
            raise RuntimeError("a model bug")
        if name == HOSTILE:
            st.stop()  # as when the analyst clicks elsewhere mid-file: the bar keeps its text
        return store.save(sample_result(hashlib.sha256(data).hexdigest()), name, analyst, batch_id=batch_id)

    monkeypatch.setattr(core.ui.cases, "scan_bytes", scan)
    at = app("pages/batch.py")
    uploader = at.file_uploader[0]
    for n, name in enumerate(["first.png", "crash.png", HOSTILE, "never.png"]):
        uploader.upload(name, _image("PNG", n), "image/png")
    at.run()
    [b for b in at.button if b.label.startswith("Analyze 4 file(s)")][0].click().run()
    assert not at.exception, [e.message for e in at.exception]
    (bar,) = at.get("progress")
    assert bar.proto.text.startswith("evil \\[link\\]\\(javascript\\:alert\\(1\\)\\) \\<b\\>bold\\.jpg (3 of 4)")
    at.run()  # the next run shows the files done before the stop
    rows = at.dataframe[0].value
    assert list(rows["file"]) == ["first.png", "crash.png"]
    assert list(rows["status"]) == ["new case", "failed: unexpected error (details in the server log)"]
    assert any("stopped after 2 of 4 file(s). Not analyzed: evil \\[link\\]" in w.value and w.value.count("never\\.png") == 1 for w in at.warning)
    monkeypatch.setattr(core.ui.cases, "NAMES_SHOWN", 1)  # a long list is cut short and counted
    at.run()
    assert any("Not analyzed: evil \\[link\\]" in w.value and "bold\\.jpg and 1 more. Run" in w.value for w in at.warning)
    (failed,) = [e for e in store.audit_trail() if e.action == "failed"]  # audited like a bad file
    assert failed.new.startswith("crash.png: unexpected error") and "model bug" not in failed.new


def test_a_multi_line_note_keeps_its_lines_and_no_markdown_blocks(seeded, store):
    at = cases_page("Carol", case=seeded["real"])
    at.text_area[0].set_value("Source checked\n===\n\n    indented [link](https://x.example)")
    [b for b in at.button if b.label == "Add note"][0].click().run()
    (shown,) = [m.value for m in at.markdown if "Source checked" in m.value]
    assert shown.endswith("Source checked  \n\\=\\=\\=  \nindented \\[link\\]\\(https\\://x\\.example\\)")
