"""Batch scanning on Dask (core.scale) and the store calls it relies on.

One local cluster of two worker processes serves the whole module (starting one and loading a
model in each worker is the slow part); the killed-worker test runs last because it kills one.
"""
from __future__ import annotations

import io
import os
import signal
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from core import cases, cli, scale
from store_fixtures import pg_server, sample_result, sha, store_url  # noqa: F401  (fixtures)

FRAMES = 4  # per video: enough to aggregate, cheap to run


@pytest.fixture
def store(store_url):
    s = cases.open_store(store_url)
    yield s
    s.close()


def test_case_ids_finds_stored_files_among_many(store):
    stored = {sha(i): store.save(sample_result(sha(i)), f"{i}.jpg", "ann").case.id for i in (3, 700)}
    wanted = [sha(i) for i in range(1, 1200)]  # more than one lookup chunk
    assert store.case_ids(wanted) == stored
    assert store.case_ids([sha(3).upper()]) == {sha(3): stored[sha(3)]}
    assert store.case_ids([]) == {}


def test_log_failure_goes_to_the_audit_trail_without_a_case(store):
    store.log_failure(sha(5), "/archive/sub/clip.mp4", "ann", "MediaError: truncated")
    (entry,) = store.audit_trail()
    assert (entry.action, entry.case_id, entry.sha256) == ("failed", None, sha(5))
    assert entry.new == "clip.mp4: MediaError: truncated"  # base name only, like cases
    assert store.count_cases() == 0 and entry.batch_id is None
    inbox, other = store.create_batch("inbox", "ann"), store.create_batch("other", "ann")
    store.log_failure(sha(6), "bad.jpg", "ann", "not an image", inbox.id)
    for name in ("x.jpg", "y.jpg"):
        store.log_failure(sha(7), name, "ann", "truncated", other.id)
    assert [f.new for f in store.batch(inbox.id).failures] == ["bad.jpg: not an image"]  # only the batch's own
    assert [f.new for f in store.batch(other.id).failures] == ["x.jpg: truncated", "y.jpg: truncated"]
    assert {b.name: b.failed_count for b in store.batches()} == {"inbox": 1, "other": 2}


# ---------------------------------------------------------------- scans on a local cluster


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Five generated images and one clip, plus a truncated JPEG and a text file."""
    root = tmp_path_factory.mktemp("archive")
    written = scale.write_sample_folder(root, images=5, videos=1)
    jpeg = written[0].read_bytes()
    (root / "broken.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (root / "notes.txt").write_text("not media")
    return root


GOOD = 6  # files in `folder` that analyze


@pytest.fixture(scope="module")
def client():
    with scale.dask_client(workers=2) as c:
        yield c


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _verdicts(url: str) -> dict[str, tuple[str, float | None]]:
    store = cases.open_store(url)
    try:
        return {c.sha256: (c.verdict, c.score) for c in store.list_cases()}
    finally:
        store.close()


@pytest.fixture(scope="module")
def single(tmp_path_factory, folder, engine) -> str:
    """The folder scanned by the plain single-process CLI."""
    url = _url(tmp_path_factory.mktemp("single") / "cases.db")
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(io.StringIO()):
        patch.setattr(cli, "load_engine", lambda folder: engine)
        assert cli.main(["scan", str(folder), "--db", url, "--analyst", "ann", "--frames", str(FRAMES)]) == 1
    return url


@pytest.fixture(scope="module")
def resumed(tmp_path_factory, folder, client) -> dict:
    """An 'interrupted' scan (two files) on the cluster, then the CLI's dask engine over the whole
    folder into the same store, on the same cluster (--scheduler)."""
    url = _url(tmp_path_factory.mktemp("dask") / "cases.db")
    store = cases.open_store(url)
    first = sorted(folder.glob("image_*.jpg"))[:2]
    partial = scale.scan_on_dask(store, cli.media_files(first), client, scale.ScanSettings("ann", frames=FRAMES))
    store.close()
    out = io.StringIO()
    with redirect_stdout(out):
        code = cli.main(["scan", str(folder), "--db", url, "--analyst", "bob", "--frames", str(FRAMES), "--batch", "all",
                         "--engine", "dask", "--scheduler", client.scheduler.address])
    return {"url": url, "partial": partial, "code": code, "out": out.getvalue()}


def test_dask_scan_gives_the_single_process_results(single, resumed):
    ours, theirs = _verdicts(resumed["url"]), _verdicts(single)
    assert len(ours) == GOOD and ours.keys() == theirs.keys()
    for digest, (verdict, score) in theirs.items():
        assert ours[digest][0] == verdict
        assert ours[digest][1] == pytest.approx(score, abs=1e-3)  # one torch thread per worker: last-digit noise at most


def test_a_rerun_resumes_and_records_failures(resumed):
    partial = resumed["partial"]
    assert (partial.analyzed, partial.stored_before, len(partial.failures)) == (2, 0, 0)
    out = resumed["out"]
    assert resumed["code"] == 1  # the truncated JPEG failed; the scan went on
    assert f"Files: {GOOD + 2}: {GOOD - 2} analyzed, 2 already in the store, 0 duplicate(s), 1 not media, 1 failed" in out
    assert "files/s" in out and "frames/s" in out and f"Batch #1 'all': {GOOD} case(s), 1 failed" in out
    store = cases.open_store(resumed["url"])
    assert store.count_cases() == GOOD
    assert next(b for b in store.batches() if b.name == "all").case_count == GOOD  # resumed files are in the batch
    (failure,) = [e for e in store.audit_trail() if e.action == "failed"]
    assert failure.new.startswith("broken.jpg:") and failure.analyst == "bob"
    assert store.batch(next(b.id for b in store.batches() if b.name == "all")).failures == (failure,)
    store.close()


def test_each_worker_loads_one_engine(resumed, client):
    assert list(client.run(scale.loaded_engines).values()) == [[str(scale.WEIGHTS_DIR.resolve())]] * 2


def test_duplicates_in_one_scan_are_analyzed_once(store, folder, client):
    """On both backends: a cluster's store is PostgreSQL."""
    image = next(folder.glob("image_*.jpg"))
    summary = scale.scan_on_dask(store, [(image, "image"), (image, "image")], client, scale.ScanSettings("ann"))
    assert (summary.files, summary.analyzed, summary.duplicates, store.count_cases()) == (2, 1, 1, 1)


def test_a_task_that_fails_whole_is_split_and_each_file_recorded(tmp_path, folder, client):
    """Workers without weights: every task fails as a whole; each file ends up failed on its own."""
    images = sorted(folder.glob("image_*.jpg"))[:2]
    store = cases.open_store(_url(tmp_path / "cases.db"))
    settings = scale.ScanSettings("ann", weights_dir=str(tmp_path / "nowhere"), files_per_task=2)
    summary = scale.scan_on_dask(store, cli.media_files(images), client, settings)
    assert sorted(path for path, _ in summary.failures) == [str(p.resolve()) for p in images]
    assert all(error.startswith("FileNotFoundError") and "detector.json is missing" in error for _, error in summary.failures)
    assert store.count_cases() == 0 and [e.action for e in store.audit_trail()] == ["failed", "failed"]
    store.close()


def test_unreachable_scheduler_is_a_message(tmp_path, folder, monkeypatch, capsys):
    monkeypatch.setattr(scale, "CONNECT_TIMEOUT_S", 1)
    argv = ["scan", str(folder), "--db", _url(tmp_path / "c.db"), "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9"]
    assert cli.main(argv) == 2
    assert "dask scheduler" in capsys.readouterr().err
    store = cases.open_store(_url(tmp_path / "c.db"))
    assert store.batches() == []  # no empty batch left behind
    store.close()


def test_a_killed_worker_loses_nothing(tmp_path, folder, client, single):
    """One file per task; after the first result the test kills a worker that holds tasks."""
    store = cases.open_store(_url(tmp_path / "cases.db"))
    killed = []

    def kill_a_busy_worker(_outcome) -> None:
        busy = [addr for addr, keys in client.processing().items() if keys]
        if not killed and busy:
            pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
            os.kill(pid, signal.SIGKILL)  # a worker process this test's cluster started
            killed.append(pid)

    settings = scale.ScanSettings("ann", frames=FRAMES, files_per_task=1)
    summary = scale.scan_on_dask(store, cli.media_files([folder]), client, settings, on_outcome=kill_a_busy_worker)
    store.close()
    assert killed, "no worker was busy after the first result: nothing was tested"
    assert (summary.analyzed, summary.stored_before, len(summary.failures)) == (GOOD, 0, 1)
    assert _verdicts(_url(tmp_path / "cases.db")).keys() == _verdicts(single).keys()
