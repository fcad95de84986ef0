"""python -m core.cli: scan files and folders into the store, export reports."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import sqlite3
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from core import cases, cli, migrations

REPO = Path(__file__).resolve().parent.parent


def _inbox(root: Path, jpeg: bytes, video: bytes) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "astronaut.jpg").write_bytes(jpeg)
    (root / "sub" / "clip.mp4").write_bytes(video)
    (root / "readme.txt").write_text("not media")
    (root / "broken.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (root / ".hidden").mkdir()
    (root / ".hidden" / "copy.jpg").write_bytes(jpeg)
    return root


@pytest.fixture(scope="module")
def scanned(tmp_path_factory, engine, astronaut_jpeg, two_face_video):
    """One scan of a folder (analysis is the slow part), shared by the tests that read its results."""
    root = tmp_path_factory.mktemp("scan")
    folder = _inbox(root / "inbox", astronaut_jpeg, two_face_video)
    db = root / "cases.db"
    argv = ["scan", str(folder), "--db", f"sqlite:///{db}", "--out", str(root / "out"), "--analyst", "Ann",
            "--frames", "4", "--batch", "inbox", "--no-charts"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "load_engine", lambda folder: engine)
        out = io.StringIO()
        with redirect_stdout(out):
            code = cli.main(argv)
    return {"root": root, "folder": folder, "db": db, "code": code, "out": out.getvalue()}


@pytest.fixture
def db_copy(scanned, tmp_path) -> str:
    """A private copy of the scanned store, for tests that write to it."""
    shutil.copy(scanned["db"], tmp_path / "cases.db")
    return f"sqlite:///{tmp_path / 'cases.db'}"


def test_media_files_sniffs_content_and_skips_hidden(scanned):
    folder = scanned["folder"]
    found = {p.relative_to(folder).as_posix(): kind for p, kind in cli.media_files([folder])}
    assert found == {"astronaut.jpg": "image", "broken.jpg": "image", "readme.txt": None, "sub/clip.mp4": "video"}


def test_scan_folder_into_store_and_reports(scanned):
    out, root = scanned["out"], scanned["root"]
    assert scanned["code"] == 1  # the truncated JPEG failed; the others were analyzed
    assert "FAILED" in out and "broken.jpg" in out and "truncated" in out
    assert "skipped" in out and "readme.txt" in out
    store = cases.open_store(f"sqlite:///{scanned['db']}")
    batch = store.batches()[0]
    assert (batch.name, batch.case_count, batch.created_by) == ("inbox", 2, "Ann")
    stored = {c.file_name: c for c in store.list_cases()}
    assert set(stored) == {"astronaut.jpg", "clip.mp4"} and stored["clip.mp4"].kind == "video"
    assert len(store.get(stored["clip.mp4"].id).result["frames"]) == 4
    rows = list(csv.DictReader((root / "out" / "cases.csv").open()))
    assert sorted(r["file_name"] for r in rows) == ["astronaut.jpg", "clip.mp4"]
    assert json.loads((root / "out" / "cases.json").read_text())["batch"]["name"] == "inbox"
    assert "astronaut.jpg" in (root / "out" / "report.html").read_text()
    store.close()


def test_rescan_reuses_stored_cases_without_analyzing(scanned, db_copy, monkeypatch, capsys):
    def no_model(folder):
        raise AssertionError("a stored file must not be analyzed again")

    monkeypatch.setattr(cli, "load_engine", no_model)
    assert cli.main(["scan", str(scanned["folder"] / "astronaut.jpg"), "--db", db_copy, "--analyst", "bob", "--batch", "again"]) == 0
    assert "already in the store" in capsys.readouterr().out
    store = cases.open_store(db_copy)
    assert store.count_cases() == 2
    assert next(b for b in store.batches() if b.name == "again").case_count == 1
    store.close()


def test_export_a_batch_and_cases(db_copy, tmp_path):
    assert cli.main(["export", "--batch", "1", "--db", db_copy, "--out", str(tmp_path / "b"), "--no-charts"]) == 0
    assert len(json.loads((tmp_path / "b" / "cases.json").read_text())["cases"]) == 2
    assert cli.main(["export", "--case", "2", "--db", db_copy, "--out", str(tmp_path / "c"), "--no-charts"]) == 0
    assert [c["id"] for c in json.loads((tmp_path / "c" / "cases.json").read_text())["cases"]] == [2]
    assert cli.main(["export", "--all", "--db", db_copy, "--out", str(tmp_path / "a")]) == 0
    assert "Plotly.newPlot" in (tmp_path / "a" / "report.html").read_text()


def test_errors_are_messages_with_exit_status_2(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'cases.db'}"
    assert cli.main(["export", "--case", "99", "--db", db, "--out", str(tmp_path / "x")]) == 2
    assert "Case #99 does not exist" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli.main(["export", "--all", "--db", f"sqlite:///{blocker}/cases.db", "--out", str(tmp_path / "x")]) == 2
    assert "DEEPFAKE_DB_URL" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        cli.main(["export", "--out", str(tmp_path)])  # which cases is required
    assert usage.value.code == 2


def test_a_store_newer_than_the_tool_or_failing_mid_run_exits_2(tmp_path, monkeypatch, capsys):
    db = tmp_path / "cases.db"
    assert cli.main(["export", "--all", "--db", f"sqlite:///{db}", "--out", str(tmp_path / "x")]) == 0  # creates the store
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO schema_version VALUES (?, 'future', '2030-01-01 00:00:00')", (migrations.HEAD + 1,))
    assert cli.main(["export", "--all", "--db", f"sqlite:///{db}", "--out", str(tmp_path / "x")]) == 2
    assert "upgrade the tool" in capsys.readouterr().err
    other = tmp_path / "other.db"

    def locked(*args, **kwargs):
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr(cli.CaseStore, "list_cases", locked)
    assert cli.main(["export", "--all", "--db", f"sqlite:///{other}", "--out", str(tmp_path / "y")]) == 2
    assert "store error" in capsys.readouterr().err and not (tmp_path / "y").exists()


@pytest.mark.parametrize("option, value", [("--workers", "0"), ("--workers", "-3"), ("--frames", "0"), ("--workers", "two")])
def test_counts_below_one_are_refused_before_a_batch_is_made(tmp_path, capsys, option, value):
    db = tmp_path / "cases.db"
    with pytest.raises(SystemExit) as usage:
        cli.main(["scan", str(tmp_path), "--db", f"sqlite:///{db}", "--engine", "dask", option, value])
    assert usage.value.code == 2
    err = capsys.readouterr().err
    assert option in err and ("at least 1" in err or "whole number" in err)
    assert not db.exists()  # the store was not even opened: no empty batch left behind


def test_a_failed_file_is_in_the_audit_trail_as_with_dask(scanned, astronaut_jpeg):
    store = cases.open_store(f"sqlite:///{scanned['db']}")
    (entry,) = [e for e in store.audit_trail() if e.action == "failed"]
    broken = astronaut_jpeg[: len(astronaut_jpeg) // 3]
    assert (entry.case_id, entry.analyst, entry.sha256) == (None, "Ann", hashlib.sha256(broken).hexdigest())
    assert entry.new.startswith("broken.jpg: ") and "truncated" in entry.new  # base name and the error
    (batch,) = store.batches()
    assert entry.batch_id == batch.id and store.batch(batch.id).failures == (entry,) and batch.failed_count == 1  # the batch knows it
    store.close()


def test_the_audit_command_prints_the_trail_and_the_failed_files(scanned, capsys):
    db = f"sqlite:///{scanned['db']}"
    assert cli.main(["audit", "--db", db]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {"create", "failed"} <= {r["action"] for r in rows} and rows[0]["at"] >= rows[-1]["at"]  # newest first
    assert cli.main(["audit", "--failed", "--db", db, "--limit", "5"]) == 0
    (failed,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert failed["case_id"] == "" and failed["analyst"] == "Ann" and failed["new"].startswith("broken.jpg: ")
    assert failed["batch_id"] == "1"  # the scan's batch


def test_scan_uses_the_weights_folder_given_and_refuses_one_without_a_detector(tmp_path, engine, astronaut_jpeg, monkeypatch, capsys):
    db = tmp_path / "cases.db"
    (tmp_path / "a.jpg").write_bytes(astronaut_jpeg)
    with pytest.raises(SystemExit) as usage:
        cli.main(["scan", str(tmp_path / "a.jpg"), "--db", f"sqlite:///{db}", "--weights", str(tmp_path)])
    assert usage.value.code == 2 and "not a detector folder" in capsys.readouterr().err and not db.exists()
    loaded = []
    monkeypatch.setattr(cli, "load_engine", lambda folder: loaded.append(folder) or engine)
    weights = Path(cli.__file__).resolve().parent.parent / "weights"
    assert cli.main(["scan", str(tmp_path / "a.jpg"), "--db", f"sqlite:///{db}", "--weights", str(weights)]) == 0
    assert loaded == [weights]


def _scan_unreadable(tmp_path: Path, monkeypatch) -> tuple[int, str]:
    """A scan of an empty file and of one gone before it was read (the sniffing is skipped)."""
    empty, gone = tmp_path / "empty.jpg", tmp_path / "gone.jpg"
    empty.write_bytes(b"")
    monkeypatch.setattr(cli, "media_files", lambda _paths: iter([(empty, "image"), (gone, "image")]))
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    return cli.main(["scan", str(tmp_path), "--db", url, "--analyst", "Ann"]), url


def test_an_empty_file_is_logged_with_the_hash_of_no_bytes(tmp_path, monkeypatch):
    code, url = _scan_unreadable(tmp_path, monkeypatch)
    assert code == 1
    store = cases.open_store(url)
    failed = {e.new.split(":")[0]: e.sha256 for e in store.audit_trail() if e.action == "failed"}
    assert failed == {"empty.jpg": hashlib.sha256(b"").hexdigest(), "gone.jpg": ""}  # read (empty) vs not read
    store.close()


def test_a_store_error_while_recording_a_failure_does_not_stop_the_scan(tmp_path, monkeypatch, capsys):
    def locked(*_args):
        raise cases.StoreError("database is locked")

    monkeypatch.setattr(cases.CaseStore, "log_failure", locked)
    code, _url = _scan_unreadable(tmp_path, monkeypatch)
    out, err = capsys.readouterr()
    assert code == 1 and out.count("FAILED") == 2  # both files reported, the scan finished
    assert err.count("could not be recorded in the audit trail: database is locked") == 2


def test_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "core.cli", "scan", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--keep-media" in done.stdout


def test_a_file_failing_unexpectedly_is_recorded_and_the_scan_goes_on(tmp_path, engine, astronaut_jpeg, monkeypatch, capsys):
    import core.casework

    (tmp_path / "a_odd.jpg").write_bytes(astronaut_jpeg[:-1] + b"\xd8")  # differs, so not a duplicate
    (tmp_path / "b_good.jpg").write_bytes(astronaut_jpeg)
    real = core.casework.analyze_image_bytes

    def odd(model, data, limits):
        if data.endswith(b"\xd8"):
            raise TypeError("bad operand type for abs(): 'str'")  # what a damaged EXIF tag once raised
        return real(model, data, limits)

    monkeypatch.setattr(core.casework, "analyze_image_bytes", odd)
    monkeypatch.setattr(cli, "load_engine", lambda folder: engine)
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    assert cli.main(["scan", str(tmp_path / "a_odd.jpg"), str(tmp_path / "b_good.jpg"), "--db", url, "--analyst", "Ann"]) == 1
    out = capsys.readouterr().out
    assert "FAILED    " in out and "unexpected error (TypeError" in out and "case #1" in out  # b_good was still analyzed
    store = cases.open_store(url)
    (failed,) = [e for e in store.audit_trail() if e.action == "failed"]
    assert failed.new.startswith("a_odd.jpg: unexpected error (TypeError") and store.count_cases() == 1
    store.close()
