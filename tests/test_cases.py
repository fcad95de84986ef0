"""The case store, run against SQLite and a real PostgreSQL server with the same tests."""
from __future__ import annotations

import importlib.util
import json
import logging
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, func, inspect, select, text

from core import cases, migrations
from core.cases import CaseFilter
from store_fixtures import pg_server, sample_result, sha, store_url  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(store_url):
    s = cases.open_store(store_url)
    yield s
    s.close()


def _count(store: cases.CaseStore, table: str) -> int:
    with store.engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()


def test_save_and_get_round_trip(store):
    result = sample_result(sha(1), kind="video", frames=3)
    saved = store.save(result, "/uploads/clip <1>.mp4", "Ann", thumbnail=b"\xff\xd8jpeg")
    assert saved.created
    case = store.get(saved.case.id)
    assert case.file_name == "clip <1>.mp4"  # the base name only: no client paths stored
    assert (case.sha256, case.kind, case.size, case.verdict) == (sha(1), "video", 12345, "FAKE")
    assert case.model_version == "test-model-1" and case.thresholds == {"real": 0.35, "fake": 0.65}
    assert case.result == result and case.thumbnail == b"\xff\xd8jpeg"
    assert case.created_at.tzinfo is not None and case.created_by == "Ann"
    assert not case.has_media and store.media(case.id) is None  # nothing kept unless opted in
    assert [(h.action, h.analyst) for h in case.history] == [("create", "Ann")]
    assert _count(store, "case_faces") == 3  # one row per face per frame, queryable by SQL


def test_forensic_context_is_stored_with_the_case(store):
    report = {"version": 1, "flags": [{"kind": "editor", "text": "Saved by <Photo Editor>"}]}
    case = store.save(sample_result(sha(8)), "a.jpg", "ann", forensics=report).case
    assert store.get(case.id).forensics == report


def test_media_is_kept_only_on_request(store):
    case = store.save(sample_result(sha(2)), "a.jpg", "ann", media=b"original bytes").case
    assert case.has_media and store.media(case.id) == b"original bytes"


def test_same_file_returns_the_existing_case_with_its_history(store):
    first = store.save(sample_result(sha(3)), "a.jpg", "ann").case
    store.label(first.id, "ann", agreement="agree")
    batch = store.create_batch("Tuesday queue", "bob")
    again = store.save(sample_result(sha(3), verdict="REAL", score=0.1), "renamed.jpg", "bob", batch_id=batch.id)
    assert not again.created and again.case.id == first.id
    assert again.case.file_name == "a.jpg" and again.case.verdict == "FAKE"  # nothing overwritten
    assert [h.action for h in again.case.history] == ["create", "label", "batch"]
    assert [b.name for b in again.case.batches] == ["Tuesday queue"]
    assert store.count_cases() == 1 and store.find(sha(3).upper()).id == first.id


def test_label_changes_are_audited_old_to_new(store):
    case_id = store.save(sample_result(sha(4)), "a.jpg", "ann").case.id
    store.label(case_id, "ann", agreement="agree", final_verdict="FAKE", confidence=0.7)
    case = store.label(case_id, "bob", agreement="disagree", final_verdict="REAL", confidence=0.7)
    changes = [(h.analyst, h.field, h.old, h.new) for h in case.history if h.action == "label"]
    assert changes == [
        ("ann", "agreement", None, "agree"), ("ann", "final_verdict", None, "FAKE"),
        ("ann", "label_confidence", None, "0.7"),
        ("bob", "agreement", "agree", "disagree"), ("bob", "final_verdict", "FAKE", "REAL"),
    ]
    shown = [h.in_words() for h in case.history if h.action == "label"]
    assert shown[2] == ("confidence", "", "70%") and shown[4] == ("final verdict", "FAKE", "REAL")
    assert case.labelled_by == "bob" and case.disagrees
    unchanged = store.label(case_id, "carol", agreement="disagree", final_verdict="REAL", confidence=0.7)
    assert len(unchanged.history) == len(case.history) and unchanged.labelled_by == "bob"


def test_a_label_changed_meanwhile_is_not_overwritten(store):
    case = store.save(sample_result(sha(9)), "a.jpg", "ann").case
    assert case.label_revision == 0
    shown = store.get(case.id)  # carol opens the label form ...
    bob = store.label(case.id, "bob", agreement="agree", final_verdict="FAKE", expected_revision=shown.label_revision)
    assert bob.label_revision == 1
    with pytest.raises(cases.LabelConflict, match="changed by bob") as conflict:  # ... and saves after bob
        store.label(case.id, "carol", agreement="disagree", expected_revision=shown.label_revision)
    current = conflict.value.current
    assert (current.agreement, current.final_verdict, current.labelled_by, current.label_revision) == ("agree", "FAKE", "bob", 1)
    kept = store.get(case.id)
    assert (kept.agreement, kept.labelled_by) == ("agree", "bob")  # nothing written, nothing audited
    assert [h.analyst for h in kept.history if h.action == "label"] == ["bob", "bob"]
    again = store.label(case.id, "carol", agreement="disagree", expected_revision=current.label_revision)  # deliberately
    assert (again.agreement, again.final_verdict, again.labelled_by, again.label_revision) == ("disagree", None, "carol", 2)
    same = store.label(case.id, "dan", agreement="disagree", expected_revision=2)  # no change: same revision
    assert same.label_revision == 2 and same.labelled_by == "carol"


def test_changes_are_dated_to_the_minute_in_utc():
    assert cases.on_utc(datetime(2024, 5, 6, 7, 8, 59, tzinfo=timezone.utc)) == " on 2024-05-06 07:08 UTC"
    assert cases.on_utc(None) == ""


def test_labels_saved_at_once_on_one_revision_let_exactly_one_win(store):
    case_id = store.save(sample_result(sha(10)), "a.jpg", "ann").case.id
    outcomes: list[str] = []

    def save(who: str) -> None:
        try:
            store.label(case_id, who, agreement="disagree", final_verdict="REAL", expected_revision=0)
            outcomes.append("saved")
        except cases.LabelConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=save, args=(who,)) for who in ("ann", "bob", "carol", "dan")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "saved"]
    assert store.get(case_id).label_revision == 1


@pytest.mark.parametrize("kwargs", [{"agreement": "maybe"}, {"final_verdict": "fake"}, {"confidence": 1.5}])
def test_label_refuses_bad_values(store, kwargs):
    case_id = store.save(sample_result(sha(5)), "a.jpg", "ann").case.id
    with pytest.raises(ValueError):
        store.label(case_id, "ann", **kwargs)


def test_notes_are_kept_in_order_and_audited(store):
    case_id = store.save(sample_result(sha(6)), "a.jpg", "ann").case.id
    store.add_note(case_id, "ann", "  first look: lighting odd  ")
    store.add_note(case_id, "bob", "second opinion")
    case = store.get(case_id)
    assert [(n.analyst, n.text) for n in case.notes] == [("ann", "first look: lighting odd"), ("bob", "second opinion")]
    assert [h.new for h in case.history if h.action == "note"] == ["first look: lighting odd", "second opinion"]
    with pytest.raises(ValueError, match="empty"):
        store.add_note(case_id, "ann", "   ")


def test_analyst_name_is_required_and_cleaned(store):
    assert cases.clean_analyst("  Ann \n  Lee ") == "Ann Lee"
    with pytest.raises(ValueError, match="analyst name"):
        store.save(sample_result(sha(7)), "a.jpg", "  ")


def test_result_without_hash_is_refused(store):
    with pytest.raises(ValueError, match="sha256"):
        store.save(sample_result(""), "a.jpg", "ann")


def _seed(store: cases.CaseStore) -> dict[str, int]:
    ids = {
        "fake": store.save(sample_result(sha(10), "FAKE", 0.9), "holiday_fake.jpg", "ann").case.id,
        "real": store.save(sample_result(sha(11), "REAL", 0.1, "test-model-2"), "portrait.png", "ann").case.id,
        "inc": store.save(sample_result(sha(12), "INCONCLUSIVE", 0.5), "100%_clip.mp4", "bob").case.id,
        "none": store.save(sample_result(sha(13), "NO FACE", None), "landscape.jpg", "bob").case.id,
    }
    store.label(ids["fake"], "ann", agreement="agree", final_verdict="FAKE")
    store.label(ids["real"], "bob", final_verdict="FAKE")  # disagrees by its final verdict alone
    store.label(ids["inc"], "bob", agreement="disagree")
    store.add_note(ids["none"], "bob", "Scenery only, nothing to judge")
    return ids


def _ids(store: cases.CaseStore, **kwargs) -> set[int]:
    return {c.id for c in store.list_cases(CaseFilter(**kwargs))}


def test_filters(store):
    ids = _seed(store)
    assert _ids(store) == set(ids.values())
    assert _ids(store, verdicts=["FAKE", "REAL"]) == {ids["fake"], ids["real"]}
    assert _ids(store, final_verdicts=["FAKE"]) == {ids["fake"], ids["real"]}
    assert _ids(store, agreements=[cases.UNLABELLED]) == {ids["none"]}
    assert _ids(store, agreements=["disagree", cases.UNLABELLED]) == {ids["inc"], ids["none"]}
    assert _ids(store, disagreement_only=True) == {ids["real"], ids["inc"]}
    assert _ids(store, model_versions=["test-model-2"]) == {ids["real"]}
    assert store.model_versions() == ["test-model-1", "test-model-2"]
    assert store.count_cases(CaseFilter(verdicts=["FAKE"])) == 1


def test_search_by_name_note_hash_and_id_with_wildcards_taken_literally(store):
    ids = _seed(store)
    assert _ids(store, text="HOLIDAY") == {ids["fake"]}
    assert _ids(store, text="scenery") == {ids["none"]}
    assert _ids(store, text=sha(11)[:12].upper()) == {ids["real"]}
    assert _ids(store, text=f"#{ids['inc']}") == {ids["inc"]}
    assert _ids(store, text="100%") == {ids["inc"]}
    assert _ids(store, text="%") == {ids["inc"]} and _ids(store, text="_") == {ids["fake"], ids["inc"]}
    for odd in ("²", "#①", "9" * 20, str(2**63)):  # digits to str.isdigit, no case number to a database
        assert _ids(store, text=odd) == set()


def test_search_ignores_case_beyond_ascii(store):
    saved = store.save(sample_result(sha(40)), "Émile_Zoë.jpg", "ann").case.id
    assert _ids(store, text="émile") == _ids(store, text="ZOË") == {saved}


def test_date_range_and_sorting(store):
    ids = _seed(store)
    today = datetime.now(timezone.utc).date()
    assert _ids(store, since=today, until=today) == set(ids.values())
    assert _ids(store, until=today - timedelta(days=1)) == set()
    assert _ids(store, since=datetime.now(timezone.utc) + timedelta(hours=1)) == set()
    names = [c.file_name for c in store.list_cases(CaseFilter(sort="file_name", descending=False))]
    assert names == sorted(names)
    for descending in (True, False):  # a NO FACE case has no score: last either way, on every backend
        assert store.list_cases(CaseFilter(sort="score", descending=descending))[-1].id == ids["none"]
    newest = store.list_cases(CaseFilter(limit=1))
    assert newest[0].id == ids["none"]
    everything = [c.id for c in store.list_cases(CaseFilter(sort="score"))]
    pages = [[c.id for c in store.list_cases(CaseFilter(sort="score", limit=2, offset=k))] for k in range(0, len(everything), 2)]
    assert sum(pages, []) == everything and all(len(p) <= 2 for p in pages)  # pages of the same order, no case twice
    assert [store.position(i, CaseFilter(sort="score", limit=1, offset=3)) for i in everything] == list(range(len(everything)))
    assert store.position(ids["none"], CaseFilter(verdicts=["FAKE"])) is None and store.position(10**6) is None
    with pytest.raises(ValueError, match="sort key"):
        store.list_cases(CaseFilter(sort="sha256; DROP TABLE cases"))


def test_batches_group_cases_and_can_be_reopened(store):
    batch = store.create_batch("  Monday  reports ", "ann")
    assert batch.name == "Monday reports"
    a = store.save(sample_result(sha(20)), "a.jpg", "ann", batch_id=batch.id).case
    store.save(sample_result(sha(21)), "b.jpg", "ann")
    assert _ids(store, batch_id=batch.id) == {a.id}
    assert [(b.id, b.case_count) for b in store.batches()] == [(batch.id, 1)]
    assert store.batch(batch.id).name == "Monday reports"
    with pytest.raises(LookupError):
        store.save(sample_result(sha(22)), "c.jpg", "ann", batch_id=999)
    assert store.find(sha(22)) is None  # the failed save left nothing behind


def test_delete_needs_confirmation_and_keeps_the_audit_trail(store):
    case_id = store.save(sample_result(sha(30)), "a.jpg", "ann", media=b"bytes").case.id
    store.add_note(case_id, "ann", "note")
    with pytest.raises(ValueError, match="confirm=True"):
        store.delete(case_id, "ann")
    with pytest.raises(ValueError, match="confirm=True"):
        store.delete(case_id, "ann", confirm="yes")  # type: ignore[arg-type]
    assert store.get(case_id)
    store.delete(case_id, "bob", confirm=True)
    with pytest.raises(cases.CaseNotFound):
        store.get(case_id)
    for table in ("cases", "notes", "case_faces", "case_media"):
        assert _count(store, table) == 0, table
    trail = [e for e in store.audit_trail() if e.sha256 == sha(30)]
    assert trail[0].action == "delete" and trail[0].analyst == "bob" and trail[0].old == "a.jpg (FAKE)"
    assert all(e.case_id is None for e in trail) and len(trail) == 3  # create, note, delete


def _audit_texts(store: cases.CaseStore) -> list[str]:
    with store.engine.connect() as conn:
        return [v for row in conn.execute(text("SELECT old, new FROM audit")) for v in row if v]


def test_delete_scrubs_free_text_from_the_audit_trail(store):
    case_id = store.save(sample_result(sha(31)), "a.jpg", "ann").case.id
    other = store.save(sample_result(sha(32)), "b.jpg", "ann").case.id
    store.add_note(case_id, "ann", "source: my neighbour Jane, +1 555 0100")
    store.label(case_id, "bob", agreement="disagree", final_verdict="REAL")
    store.add_note(case_id, "bob", "second private remark")
    store.add_note(other, "ann", "kept: this case is not deleted")
    before = [(e.id, e.analyst, e.at, e.action, e.field) for e in store.get(case_id).history]
    store.delete(case_id, "carol", confirm=True)
    trail = sorted((e for e in store.audit_trail() if e.sha256 == sha(31)), key=lambda e: e.id)
    assert [(e.id, e.analyst, e.at, e.action, e.field) for e in trail[:-1]] == before  # who, when, what stay
    assert [e.new for e in trail if e.action == "note"] == [cases.SCRUBBED, cases.SCRUBBED]
    assert [(e.field, e.new) for e in trail if e.action == "label"] == [("agreement", "disagree"), ("final_verdict", "REAL")]
    deletion = trail[-1]
    assert (deletion.action, deletion.analyst, deletion.old) == ("delete", "carol", "a.jpg (FAKE)")
    assert deletion.new == "note text removed from 2 earlier entries of this trail"
    texts = " ".join(_audit_texts(store))
    assert "Jane" not in texts and "private remark" not in texts
    assert "kept: this case is not deleted" in texts and store.get(other).notes


def _sqlite_files(folder: Path) -> bytes:
    """The database and its write-ahead log as the store left them (no checkpoint of our own)."""
    return b"".join(p.read_bytes() for p in folder.glob("cases.db*"))


def test_deleted_note_text_is_not_left_in_the_sqlite_files(tmp_path):
    store = cases.open_store(f"sqlite:///{tmp_path / 'cases.db'}")
    marker = "zq-private-marker-7731"
    case_id = store.save(sample_result(sha(33)), "a.jpg", "ann").case.id
    store.add_note(case_id, "ann", f"witness {marker}" * 20)
    assert marker.encode() in _sqlite_files(tmp_path)  # the check below can see the text (in cases.db-wal)
    with store.engine.connect() as conn:  # set by the store, whatever the SQLite build's default
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    store.delete(case_id, "ann", confirm=True)
    assert marker.encode() not in _sqlite_files(tmp_path)  # zeroed in cases.db, and the log was emptied
    store.close()


def test_a_reader_blocking_the_checkpoint_is_logged_and_the_delete_stands(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(cases, "CHECKPOINT_WAIT_S", 0.05)
    store = cases.open_store(f"sqlite:///{tmp_path / 'cases.db'}")
    case_id = store.save(sample_result(sha(34)), "a.jpg", "ann").case.id
    store.add_note(case_id, "ann", "private remark")
    reader = sqlite3.connect(tmp_path / "cases.db", isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM cases").fetchall()  # holds a snapshot from before the delete
    with caplog.at_level(logging.WARNING, logger="core.cases"):
        store.delete(case_id, "ann", confirm=True)
    blocked = [r.getMessage() for r in caplog.records if "blocked by a reader" in r.getMessage()]
    assert len(blocked) == 2 and "attempt 2 of 2" in blocked[1]  # tried, retried once, then logged
    with pytest.raises(cases.CaseNotFound):
        store.get(case_id)
    reader.rollback()
    reader.close()
    store.add_note(store.save(sample_result(sha(35)), "b.jpg", "ann").case.id, "ann", "later")
    store.delete(store.find(sha(35)).id, "ann", confirm=True)  # with no reader left, the log is emptied again
    assert b"private remark" not in _sqlite_files(tmp_path)
    store.close()


def test_failure_mid_save_leaves_no_half_case(store, monkeypatch):
    def broken(*_args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(cases, "_face_rows", broken)  # fails after the case row was inserted
    with pytest.raises(RuntimeError, match="disk full"):
        store.save(sample_result(sha(40)), "a.jpg", "ann")
    monkeypatch.undo()
    for table in ("cases", "audit", "case_faces"):
        assert _count(store, table) == 0, table
    assert store.save(sample_result(sha(40)), "a.jpg", "ann").created


CRASH = """
import json, os, sys
from core import cases
store = cases.open_store(sys.argv[1])
cases._face_rows = lambda *args: os._exit(3)  # the process dies inside the save transaction
store.save(json.loads(sys.argv[2]), "a.jpg", "ann")
"""


def test_process_killed_mid_save_leaves_no_half_case(store, store_url):
    done = subprocess.run([sys.executable, "-c", CRASH, store_url, json.dumps(sample_result(sha(41)))], cwd=REPO, timeout=120)
    assert done.returncode == 3
    assert store.count_cases() == 0 and _count(store, "audit") == 0
    assert store.save(sample_result(sha(41)), "a.jpg", "ann").created


def _write_many(store: cases.CaseStore, who: str, shared_id: int, n: int) -> None:
    for i in range(n):
        store.save(sample_result(f"{who}{i}".encode().hex().ljust(64, "0")), f"{who}-{i}.jpg", who)
        store.add_note(shared_id, who, f"{who} note {i}")
        store.label(shared_id, who, agreement="agree" if i % 2 else "disagree")


def test_two_threads_writing_at_once_lose_nothing(store):
    shared = store.save(sample_result(sha(50)), "shared.jpg", "ann").case.id
    errors: list[BaseException] = []

    def worker(who: str) -> None:
        try:
            _write_many(store, who, shared, 8)
        except BaseException as exc:  # reported by the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(who,)) for who in ("ann", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.count_cases() == 17
    assert len(store.get(shared).notes) == 16


WRITER = """
import json, sys
from core import cases
url, who, shared, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = cases.open_store(url)
for i in range(n):
    result = json.loads(sys.argv[5])
    result["sha256"] = f"{who}{i}".encode().hex().ljust(64, "0")
    store.save(result, f"{who}-{i}.jpg", who)
    store.add_note(shared, who, f"{who} note {i}")
"""


def test_two_processes_writing_at_once_lose_nothing(store, store_url):
    shared = store.save(sample_result(sha(60)), "shared.jpg", "ann").case.id
    template = json.dumps(sample_result(sha(0)))
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, store_url, who, str(shared), "10", template], cwd=REPO)
        for who in ("ann", "bob")
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    assert store.count_cases() == 21
    assert sorted(n.text for n in store.get(shared).notes) == sorted(f"{w} note {i}" for w in ("ann", "bob") for i in range(10))


def test_the_same_file_saved_twice_at_once_makes_one_case(store):
    outcomes: list[cases.Saved] = []
    threads = [
        threading.Thread(target=lambda who=who: outcomes.append(store.save(sample_result(sha(70)), "a.jpg", who)))
        for who in ("ann", "bob", "carol")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count_cases() == 1
    assert sorted(o.created for o in outcomes) == [False, False, True]
    assert len({o.case.id for o in outcomes}) == 1


# ---------------------------------------------------------------- migrations and configuration


def test_upgrade_keeps_the_cases_of_a_version_1_store(store_url):
    engine = cases.make_engine(store_url)
    writer = engine.execution_options(write=True)
    assert migrations.upgrade(writer, target=1) == [1]
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    result = sample_result(sha(80))
    with writer.begin() as conn:  # a case, a label and a note as version 1 wrote them
        tables = MetaData()
        rows = {name: Table(name, tables, autoload_with=conn) for name in ("cases", "audit")}
        conn.execute(rows["cases"].insert().values(
            id=1, sha256=sha(80), file_name="old.jpg", size=1, kind="image", media={}, verdict="FAKE", score=0.9,
            confidence=0.9, family="blend", model_version="old-model", model_trained=True,
            thresholds={"real": 0.3, "fake": 0.7}, result=result, created_at=now, updated_at=now,
            created_by="ann", agreement="disagree",
        ))
        audit = dict(case_id=1, sha256=sha(80), action="label", field="agreement", old=None, new="disagree")
        conn.execute(rows["audit"].insert(), [
            {**audit, "analyst": "ann", "at": now},
            {**audit, "analyst": "bob", "at": now + timedelta(minutes=5)},
        ])
    assert migrations.upgrade(writer) == [2, 3, 4, 5, 6]
    store = cases.CaseStore(engine)
    case = store.get(1)
    assert (case.file_name, case.model_version, case.result) == ("old.jpg", "old-model", result)
    assert case.labelled_by == "bob" and case.labelled_at == now + timedelta(minutes=5)
    assert case.forensics is None  # added by version 3, empty for old cases
    assert case.label_revision == 0  # added by version 4; the old label is kept and can be changed
    relabelled = store.label(1, "carol", agreement="agree", expected_revision=0)
    assert (relabelled.agreement, relabelled.label_revision) == ("agree", 1)
    if engine.dialect.name == "sqlite":  # version 5: numbers go on from the highest one kept
        assert store.save(sample_result(sha(81)), "new.jpg", "ann").case.id == 2
    assert store.audit_trail()[-1].batch_id is None  # added by version 6, empty for old entries
    assert migrations.upgrade(writer) == []  # idempotent
    store.close()


def test_a_deleted_case_number_is_never_given_again(store):
    first = store.save(sample_result(sha(90)), "a.jpg", "ann").case.id
    newest = store.save(sample_result(sha(91)), "b.jpg", "ann").case.id
    store.delete(newest, "ann", confirm=True)
    assert store.save(sample_result(sha(92)), "c.jpg", "ann").case.id == newest + 1 > first


def test_numbers_given_before_the_upgrade_to_version_5_are_not_given_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = cases.make_engine(url)
    writer = engine.execution_options(write=True)
    migrations.upgrade(writer, target=4)
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    with writer.begin() as conn:  # three cases as version 4 made them (the highest id + 1), the newest then deleted
        tables = MetaData()
        rows = {name: Table(name, tables, autoload_with=conn) for name in ("cases", "audit")}
        for i in (1, 2, 3):
            conn.execute(rows["cases"].insert().values(
                id=i, sha256=sha(60 + i), file_name=f"{i}.jpg", size=1, kind="image", media={}, verdict="FAKE", score=0.9,
                confidence=0.9, family="blend", model_version="old-model", model_trained=True, thresholds={},
                result=sample_result(sha(60 + i)), created_at=now, updated_at=now, created_by="ann"))
            conn.execute(rows["audit"].insert().values(case_id=i, sha256=sha(60 + i), analyst="ann", at=now, action="create"))
        conn.execute(rows["cases"].delete().where(rows["cases"].c.id == 3))  # its number already in a report
    engine.dispose()
    upgraded = cases.open_store(url)
    assert upgraded.save(sample_result(sha(70)), "next.jpg", "bob").case.id == 4
    upgraded.close()


def test_migrated_schema_matches_the_models(store):
    live = inspect(store.engine)
    for table in cases.METADATA.sorted_tables:
        assert {c["name"] for c in live.get_columns(table.name)} == set(table.columns.keys()), table.name
    with store.engine.connect() as conn:
        assert migrations.current_version(conn) == migrations.HEAD


def test_a_store_newer_than_the_tool_is_refused(store, store_url):
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO schema_version VALUES (:v, 'future', :t)"), {"v": migrations.HEAD + 1, "t": datetime.now(timezone.utc)})
    with pytest.raises(migrations.SchemaError, match="upgrade the tool"):
        cases.open_store(store_url)


def test_two_sessions_opening_a_new_store_at_once(store_url):
    stores: list[cases.CaseStore] = []
    threads = [threading.Thread(target=lambda: stores.append(cases.open_store(store_url))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stores) == 3
    with stores[0].engine.connect() as conn:
        versions = conn.execute(select(func.count()).select_from(text("schema_version"))).scalar()
    assert versions == migrations.HEAD
    for s in stores:
        s.close()


def test_storage_location_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("DEEPFAKE_DB_URL", raising=False)
    monkeypatch.setenv("DEEPFAKE_DATA_DIR", str(tmp_path / "store"))
    assert cases.default_url() == f"sqlite:///{tmp_path / 'store' / 'cases.db'}"
    monkeypatch.delenv("DEEPFAKE_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert cases.data_dir() == tmp_path / "xdg" / "deepfake-forensics"
    monkeypatch.setenv("DEEPFAKE_DB_URL", "postgresql://team@db.example/cases")
    assert cases.default_url() == "postgresql://team@db.example/cases"


def test_unwritable_home_falls_back_to_the_repo_data_dir(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.delenv("DEEPFAKE_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    assert cases.data_dir() == cases.REPO_DATA_DIR


@pytest.mark.parametrize("where", ["sqlite", "postgresql"])
def test_unreachable_store_says_how_to_fix_it(tmp_path, where):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    url = f"sqlite:///{blocker}/cases.db" if where == "sqlite" else f"postgresql://nobody@/x?host={tmp_path}/no-server"
    with pytest.raises(cases.StoreError, match="DEEPFAKE_DB_URL"):
        cases.open_store(url)


def test_a_store_url_naming_a_missing_driver_says_so():
    if importlib.util.find_spec("MySQLdb"):
        pytest.skip("mysqlclient is installed here")
    with pytest.raises(cases.StoreError, match="database driver is not installed") as refused:
        cases.open_store("mysql://u:secret@localhost/db")
    assert "secret" not in str(refused.value)
