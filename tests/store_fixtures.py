"""Case-store fixtures (imported by the store tests): URLs for every backend (SQLite always, PostgreSQL when installed).

The PostgreSQL server is a throwaway cluster made with Debian's binaries (`apt-get install
postgresql`) in a private temp folder, listening on a Unix socket only (no TCP port to collide
with), started once per test session and removed at the end. Each test gets its own database.
Without the binaries the PostgreSQL variants skip, or fail when REQUIRE_ALL_TESTS=1 (CI).
"""
from __future__ import annotations

import glob
import hashlib
import itertools
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import asdict
from pathlib import Path

import pytest

PG_USER = "postgres"  # the system user Debian's package creates; initdb refuses to run as root
_db_names = itertools.count()


def skip_or_fail(reason: str) -> None:
    """Skip, unless CI asked for every optional backend (REQUIRE_ALL_TESTS=1)."""
    if os.environ.get("REQUIRE_ALL_TESTS") == "1":
        pytest.fail(f"{reason} (REQUIRE_ALL_TESTS=1 forbids skipping)")
    pytest.skip(reason)


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _as_server_user(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", PG_USER, "--", *args]


class PgServer:
    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir, self.root = bindir, root
        self.data, self.socket = root / "data", root / "socket"
        self.user = PG_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    def run(self, tool: str, *args: str) -> None:
        cmd = _as_server_user([str(self.bindir / tool), *args])
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr or done.stdout}")

    def start(self) -> None:
        self.socket.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, PG_USER)
            shutil.chown(self.socket, PG_USER)
        self.run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-c listen_addresses='' -c unix_socket_directories={self.socket} -c fsync=off -c port=5432"
        self.run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w", "start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@/{database}?host={self.socket}&port=5432"

    def create_database(self) -> str:
        import psycopg

        name = f"cases_{os.getpid()}_{next(_db_names)}"
        with psycopg.connect(host=str(self.socket), port=5432, user=self.user, dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def pg_server():
    bindir = _pg_bin()
    if bindir is None:
        skip_or_fail("PostgreSQL binaries not found (/usr/lib/postgresql/*/bin/initdb): apt-get install postgresql")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            skip_or_fail(f"running as root and there is no '{PG_USER}' user to run the PostgreSQL server as")
    server = PgServer(bindir, Path(tempfile.mkdtemp(prefix="pgtest-")))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """A fresh, empty store URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cases.db'}"
    return request.getfixturevalue("pg_server").create_database()


def sample_result(
    sha256: str,
    verdict: str = "FAKE",
    score: float | None = 0.9,
    model_version: str = "test-model-1",
    kind: str = "image",
    frames: int = 1,
) -> dict:
    """A result dictionary made by core.analyze's own dataclasses, so the contract stays in sync."""
    from core.analyze import AnalysisResult, FaceResult, FrameResult, Verdict
    from core.media import VideoInfo

    def face(i: int) -> FaceResult:
        s = None if score is None else round(min(1.0, score + 0.01 * i), 4)
        scores = None if s is None else {"blend": s, "synthetic": round(s / 2, 4), "fused": s}
        span = [round(s - 0.1, 4), s] if s is not None and kind == "image" else None  # images: the firmness check's range
        return FaceResult((10.0 + i, 20.0, 80.0, 90.0), 0.95, s is None, scores, track=0 if kind == "video" else None,
                          score_range=span)

    rows = [FrameResult(i, i * 0.5, [face(i)]) for i in range(frames)]
    confidence = None if score is None else max(score, 1 - score)
    media = {"width": 640, "height": 480, "bytes": 12345}
    if kind == "video":  # as analyze_video writes it
        info = VideoInfo(frames * 0.5, 25.0, 640, 480, "h264", frames * 12, "mov,mp4,m4a,3gp,3g2,mj2")
        media = {**asdict(info), "bytes": 12345, "frames_requested": frames, "frames_sampled": frames}
    result = AnalysisResult(
        kind, sha256, media, rows, Verdict(verdict, score, confidence, "blend", "test verdict"),
        {"blend": score or 0.0, "fused": score or 0.0}, model_version, True, {"real": 0.35, "fake": 0.65},
        {"total_s": 0.1},
    )
    return json.loads(json.dumps(result.to_dict()))  # as JSON reads it back: lists, not tuples


def sha(n: int) -> str:
    """A distinct, real-looking sha256 per integer."""
    return hashlib.sha256(str(n).encode()).hexdigest()
