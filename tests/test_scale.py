"""Batch scanning on Dask (core.scale) and the store calls it relies on."""
from __future__ import annotations

import pytest

from core import cases
from store_fixtures import pg_server, sample_result, sha, store_url  # noqa: F401  (fixtures)


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
    assert store.count_cases() == 0
