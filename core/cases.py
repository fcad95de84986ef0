"""The case store: every analysis saved as a case that lasts, with labels, notes and an audit trail.

SQLAlchemy 2 over SQLite by default (a file in the data directory) or any SQLAlchemy URL, e.g.
PostgreSQL for a team sharing one store. The schema is created and upgraded by `core.migrations`.
Pages, the CLI and reports only see the plain dataclasses below (`Case`, `CaseSummary`, ...), never
ORM rows or SQL. Every write is one transaction: a crash mid-save leaves no half case.
Configuration and the JSON schema are documented in docs/cases.md.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from pathlib import Path
from time import monotonic, sleep
from typing import Any, Mapping, Protocol, Sequence

from sqlalchemy import (
    JSON, BigInteger, Boolean, DateTime, Engine, Float, ForeignKey, Integer, LargeBinary, String, Text,
    and_, create_engine, delete, event, exists, func, or_, select, text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, deferred, mapped_column

from core import migrations

__all__ = [
    "AGREEMENTS", "FINAL_VERDICTS", "UNLABELLED", "SORT_KEYS", "FREE_TEXT_FIELDS", "SCRUBBED", "Batch", "Case",
    "CaseFilter", "CaseNotFound", "CaseStore", "CaseSummary", "AuditEntry", "Heatmap", "LabelConflict", "Note", "Saved",
    "STORE_ERRORS", "StoreError", "case_number", "clean_analyst", "on_utc", "MAX_ID",
    "data_dir", "default_url", "make_engine", "open_store", "sqlite_url",
]

AGREEMENTS = ("agree", "disagree")
UNLABELLED = "unlabelled"  # filter value: cases nobody labelled yet
FINAL_VERDICTS = ("REAL", "FAKE", "INCONCLUSIVE")
MAX_ID = 2**63 - 1  # the largest id a database integer holds: a larger number names no case
LOOKUP_CHUNK = 500  # digests per IN (...) query: well under every backend's parameter limit
BUSY_TIMEOUT_S = 30  # SQLite: how long a writer waits for another one before giving up
CHECKPOINT_WAIT_S = 2.0  # SQLite: how long a post-delete checkpoint waits for readers (per attempt)
FREE_TEXT_FIELDS = ("notes",)  # audit fields whose values are an analyst's own words (scrubbed on delete)
SCRUBBED = "[text removed when the case was deleted]"
APP_DIR_NAME = "deepfake-forensics"
REPO_DATA_DIR = Path(__file__).resolve().parent.parent / "data"  # git-ignored, never served by Streamlit

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """The store cannot be opened or used; the message says how to fix it."""


# What a store call can raise when the database itself fails (down, locked, disk full, wrong schema).
# str() of a SQLAlchemyError holds the SQL and its parameters (file names): log it, never show it.
STORE_ERRORS = (StoreError, migrations.SchemaError, SQLAlchemyError)


class CaseNotFound(LookupError):
    """No case with that id (it may have been deleted)."""


class LabelConflict(RuntimeError):
    """The label changed after the analyst loaded it (another analyst saved first); nothing was
    written. `current` is the case as it is now: show its label, then save again with
    `expected_revision=current.label_revision` to replace it deliberately."""

    def __init__(self, current: "Case", expected: int) -> None:
        super().__init__(
            f"The label of case #{current.id} was changed by {current.labelled_by or 'another analyst'}"
            f"{on_utc(current.labelled_at)} after "
            f"you loaded it (revision {expected}, now {current.label_revision}). Look at the current label, then save "
            "again to replace it."
        )
        self.current = current
        self.expected = expected


# ---------------------------------------------------------------- configuration


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)


def data_dir() -> Path:
    """$DEEPFAKE_DATA_DIR, else ~/.local/share/deepfake-forensics (XDG), else ./data in the repo."""
    if os.environ.get("DEEPFAKE_DATA_DIR"):
        return Path(os.environ["DEEPFAKE_DATA_DIR"]).expanduser()
    xdg = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / APP_DIR_NAME
    return xdg if _writable(xdg) else REPO_DATA_DIR


def sqlite_url(folder: Path) -> str:
    """The URL of the SQLite store `cases.db` in `folder`."""
    return f"sqlite:///{Path(folder).expanduser() / 'cases.db'}"


def default_url() -> str:
    """$DEEPFAKE_DB_URL, else a SQLite file `cases.db` in `data_dir()`."""
    return os.environ.get("DEEPFAKE_DB_URL") or sqlite_url(data_dir())


def _wal(dbapi_connection) -> None:
    """Switch to WAL. On a new file, sessions opening it at once all try to; the switch needs the file
    to themselves and SQLite answers "database is locked" without waiting, so wait and retry here."""
    deadline = monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or monotonic() > deadline:
                raise
            sleep(0.05)


def _sqlite_connect(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event issues BEGIN itself
    _wal(dbapi_connection)
    # secure_delete: deleted and rewritten text is zeroed in the file, not left in free pages
    for pragma in ("foreign_keys=ON", f"busy_timeout={BUSY_TIMEOUT_S * 1000}", "secure_delete=ON"):
        dbapi_connection.execute(f"PRAGMA {pragma}")
    # SQLite's own lower() folds ASCII only: the search would miss "Émile.jpg" for "émile"
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _sqlite_begin(conn) -> None:
    # A write transaction takes the write lock up front: a deferred one that reads first and
    # writes later fails at once (SQLITE_BUSY) instead of waiting when another writer committed.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")


def make_engine(url: str | URL) -> Engine:
    """An engine for any SQLAlchemy URL; SQLite gets WAL, a busy timeout and foreign keys."""
    u = make_url(url)
    if u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")  # the driver pinned in requirements.txt
    if u.get_backend_name() != "sqlite":
        return create_engine(u, pool_pre_ping=True)
    if u.database and u.database != ":memory:":
        Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(u, connect_args={"timeout": BUSY_TIMEOUT_S})
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def open_store(url: str | URL | None = None) -> "CaseStore":
    """Open (creating or upgrading the schema) the store at `url`, default `default_url()`."""
    url = url or default_url()
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        engine = make_engine(url)
        migrations.upgrade(engine.execution_options(write=True))
    except ImportError as exc:  # a URL naming a database driver that is not installed
        raise StoreError(f"Cannot open the case store {shown}: its database driver is not installed ({exc}).") from None
    except (OperationalError, OSError) as exc:
        reason = getattr(exc, "orig", None) or exc
        raise StoreError(
            f"Cannot open the case store {shown}: {reason}. Set DEEPFAKE_DB_URL to a reachable database "
            "or DEEPFAKE_DATA_DIR to a writable folder (see docs/cases.md)."
        ) from None
    return CaseStore(engine)


def clean_analyst(name: str) -> str:
    """Who is acting: trimmed, single-spaced, at most 100 characters, never empty."""
    cleaned = re.sub(r"\s+", " ", name or "").strip()[:100]
    if not cleaned:
        raise ValueError("An analyst name is required: enter your name (in the app, in the sidebar).")
    return cleaned


def on_utc(at: datetime | None) -> str:
    """How messages date a change: ' on YYYY-MM-DD HH:MM UTC' (to the minute), or '' without a time."""
    return f" on {at:%Y-%m-%d %H:%M} UTC" if at else ""


def _next_case_number(session: Session) -> int:
    """One past the highest number ever given (migration 5), so a deleted case's number is never
    given to another file; the write transaction holds SQLite's lock, so no other writer sees it
    (no UPDATE ... RETURNING: SQLite before 3.35 lacks it)."""
    session.execute(text("UPDATE case_numbers SET last_id = MAX(last_id, COALESCE((SELECT MAX(id) FROM cases), 0)) + 1"))
    return session.execute(text("SELECT last_id FROM case_numbers")).scalar_one()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(value: datetime | None) -> datetime | None:
    """UTC, whatever the backend hands back (SQLite: naive; PostgreSQL: the server's time zone)."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# ---------------------------------------------------------------- ORM models (schema: core.migrations)


class _Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict: JSON, bytes: LargeBinary}


class BatchRow(_Base):
    __tablename__ = "batches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))


class CaseRow(_Base):
    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    file_name: Mapped[str] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(10))
    media: Mapped[dict]
    verdict: Mapped[str] = mapped_column(String(20), index=True)
    score: Mapped[float | None] = mapped_column(Float)
    confidence: Mapped[float | None] = mapped_column(Float)
    family: Mapped[str | None] = mapped_column(String(20))
    model_version: Mapped[str] = mapped_column(String(100), index=True)
    model_trained: Mapped[bool] = mapped_column(Boolean)
    thresholds: Mapped[dict]
    result: Mapped[dict] = deferred(mapped_column(JSON))
    thumbnail: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    agreement: Mapped[str | None] = mapped_column(String(10))
    final_verdict: Mapped[str | None] = mapped_column(String(20))
    label_confidence: Mapped[float | None] = mapped_column(Float)
    labelled_by: Mapped[str | None] = mapped_column(String(100))
    labelled_at: Mapped[datetime | None]
    label_revision: Mapped[int] = mapped_column(Integer, default=0)  # +1 per label change (optimistic locking)
    forensics: Mapped[dict | None] = deferred(mapped_column(JSON))


def _case_id(ondelete: str = "CASCADE", nullable: bool = False):
    return mapped_column(Integer, ForeignKey("cases.id", ondelete=ondelete), index=True, nullable=nullable)


class BatchCaseRow(_Base):
    __tablename__ = "batch_cases"
    batch_id: Mapped[int] = mapped_column(Integer, ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True)
    case_id: Mapped[int] = mapped_column(Integer, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True, index=True)
    added_at: Mapped[datetime]


class FaceRow(_Base):
    __tablename__ = "case_faces"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = _case_id()
    frame_index: Mapped[int]
    time: Mapped[float]
    face_index: Mapped[int]
    track: Mapped[int | None]
    x: Mapped[float]
    y: Mapped[float]
    width: Mapped[float]
    height: Mapped[float]
    detection_score: Mapped[float]
    too_small: Mapped[bool]
    fused: Mapped[float | None]
    scores: Mapped[dict | None]


class HeatmapRow(_Base):
    __tablename__ = "heatmaps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = _case_id()
    frame_index: Mapped[int]
    face_index: Mapped[int]
    branch: Mapped[str] = mapped_column(String(20))
    score: Mapped[float | None]
    crop_png: Mapped[bytes]
    overlay_png: Mapped[bytes]


class MediaRow(_Base):
    __tablename__ = "case_media"
    case_id: Mapped[int] = mapped_column(Integer, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    stored_at: Mapped[datetime]


class NoteRow(_Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = _case_id()
    analyst: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    text: Mapped[str] = mapped_column(Text)


class AuditRow(_Base):
    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int | None] = _case_id(ondelete="SET NULL", nullable=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    analyst: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(20))
    field: Mapped[str | None] = mapped_column(String(40))
    old: Mapped[str | None] = mapped_column(Text)
    new: Mapped[str | None] = mapped_column(Text)
    batch_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)  # a failed file's batch


METADATA = _Base.metadata

# ---------------------------------------------------------------- plain records


@dataclass(frozen=True)
class Batch:
    id: int
    name: str
    created_at: datetime
    created_by: str
    case_count: int = 0
    failed_count: int = 0  # files submitted to the batch that could not be analyzed
    failures: tuple[AuditEntry, ...] = ()  # those files' audit entries, oldest first (`CaseStore.batch` only)


@dataclass(frozen=True)
class Note:
    id: int
    analyst: str
    created_at: datetime
    text: str


@dataclass(frozen=True)
class AuditEntry:
    """One change: who, when, what (`field`: old -> new)."""

    id: int
    case_id: int | None
    sha256: str
    analyst: str
    at: datetime
    action: str  # create, label, note, batch, delete, failed (a file that could not be analyzed)
    field: str | None
    old: str | None
    new: str | None
    batch_id: int | None = None  # the batch a failed file was submitted to

    def in_words(self) -> tuple[str, str, str]:
        """(field, old, new) as a person reads them: "confidence 80%", not "label_confidence 0.8";
        exports keep the stored codes."""
        def value(text: str | None) -> str:
            if text is None:
                return ""
            return f"{float(text):.0%}" if self.field == "label_confidence" else text
        return _FIELD_WORDS.get(self.field or "", self.field or ""), value(self.old), value(self.new)


_FIELD_WORDS = {"agreement": "agreement with the model", "final_verdict": "final verdict",
                "label_confidence": "confidence", "notes": "note"}


@dataclass(frozen=True)
class Heatmap:
    """Grad-CAM evidence of one face, as PNG bytes: the model's crop and the overlay."""

    frame_index: int
    face_index: int
    branch: str
    score: float | None
    crop_png: bytes
    overlay_png: bytes

    def where(self, kind: str) -> str:
        """ "Face 2" in an image, "Frame 120, face 2" in a video."""
        face = f"face {self.face_index + 1}"
        return face.capitalize() if kind == "image" else f"Frame {self.frame_index}, {face}"


@dataclass(frozen=True)
class CaseSummary:
    """One row of the Cases table."""

    id: int
    sha256: str
    file_name: str
    kind: str
    size: int
    verdict: str
    score: float | None
    confidence: float | None
    model_version: str
    created_at: datetime
    updated_at: datetime
    created_by: str
    agreement: str | None
    final_verdict: str | None
    label_confidence: float | None
    labelled_by: str | None
    labelled_at: datetime | None
    label_revision: int  # +1 every time the label changes: what a label form was showing

    @property
    def disagrees(self) -> bool:
        """The analyst disagrees with the model, said explicitly or by a different final verdict."""
        return self.agreement == "disagree" or (self.final_verdict is not None and self.final_verdict != self.verdict)


@dataclass(frozen=True)
class Case(CaseSummary):
    """Everything stored about one case, enough to show and export it without re-running the model."""

    media: dict
    family: str | None
    model_trained: bool
    thresholds: dict
    result: dict  # AnalysisResult.to_dict()
    forensics: dict | None  # core.forensics.forensic_report(), when it was run
    thumbnail: bytes | None
    has_media: bool
    batches: list[Batch] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    heatmaps: list[Heatmap] = field(default_factory=list)
    history: list[AuditEntry] = field(default_factory=list)


@dataclass(frozen=True)
class Saved:
    case: Case
    created: bool  # False: the same file (sha256) was already a case, returned as it is


SORT_KEYS = {
    "created_at": CaseRow.created_at, "updated_at": CaseRow.updated_at, "file_name": CaseRow.file_name,
    "verdict": CaseRow.verdict, "score": CaseRow.score, "model_version": CaseRow.model_version, "id": CaseRow.id,
}


@dataclass(frozen=True)
class CaseFilter:
    """Which cases to list; empty sequences mean "any"."""

    text: str = ""  # in file name or notes, or a sha256 prefix, or "#12" for a case id
    verdicts: Sequence[str] = ()  # the model's verdicts
    final_verdicts: Sequence[str] = ()  # the analysts'
    agreements: Sequence[str] = ()  # "agree", "disagree", UNLABELLED
    model_versions: Sequence[str] = ()
    since: date | datetime | None = None  # created on or after
    until: date | datetime | None = None  # created on or before (a date includes the whole day)
    disagreement_only: bool = False
    batch_id: int | None = None
    sort: str = "created_at"
    descending: bool = True
    limit: int = 500
    offset: int = 0  # matches skipped, in the sort order: a page of `limit` cases


class HasToDict(Protocol):
    def to_dict(self) -> dict: ...


# ---------------------------------------------------------------- conversions


def _summary_fields(row: CaseRow) -> dict[str, Any]:
    return {
        "id": row.id, "sha256": row.sha256, "file_name": row.file_name, "kind": row.kind, "size": row.size,
        "verdict": row.verdict, "score": row.score, "confidence": row.confidence,
        "model_version": row.model_version, "created_at": _aware(row.created_at),
        "updated_at": _aware(row.updated_at), "created_by": row.created_by, "agreement": row.agreement,
        "final_verdict": row.final_verdict, "label_confidence": row.label_confidence,
        "labelled_by": row.labelled_by, "labelled_at": _aware(row.labelled_at), "label_revision": row.label_revision,
    }


def _audit(row: AuditRow) -> AuditEntry:
    return AuditEntry(row.id, row.case_id, row.sha256, row.analyst, _aware(row.at), row.action, row.field, row.old, row.new, row.batch_id)


def _face_rows(case_id: int, result: Mapping) -> list[FaceRow]:
    rows = []
    for frame in result.get("frames", []):
        for i, face in enumerate(frame["faces"]):
            x, y, w, h = face["box"]
            scores = face.get("scores")
            rows.append(FaceRow(
                case_id=case_id, frame_index=frame["index"], time=frame["time"], face_index=i,
                track=face.get("track"), x=x, y=y, width=w, height=h, detection_score=face["detection_score"],
                too_small=face["too_small"], fused=scores.get("fused") if scores else None, scores=scores,
            ))
    return rows


def _json_safe(data: dict) -> dict:
    """The result exactly as it reads back from the store (tuples become lists); NaN is refused
    because PostgreSQL's JSON cannot hold it."""
    try:
        return json.loads(json.dumps(data, allow_nan=False))
    except ValueError:
        raise ValueError("The result holds NaN or infinite numbers and cannot be stored; re-run the analysis.") from None


def _base_name(file_name: str) -> str:
    """The file's base name only: no client paths are stored."""
    return Path(str(file_name).replace("\\", "/")).name[:500] or "unnamed"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _day_bound(value: date | datetime, end: bool) -> datetime:
    if isinstance(value, datetime):
        return _aware(value)
    return datetime.combine(value, time.max if end else time.min, tzinfo=timezone.utc)


def _search(text: str):
    """File name or note text contains it, or a sha256 prefix, or `#id` / a bare number as case id."""
    text = text.strip()
    clauses = [
        CaseRow.file_name.icontains(text, autoescape=True),
        CaseRow.sha256.startswith(text.lower(), autoescape=True),
        exists().where(NoteRow.case_id == CaseRow.id, NoteRow.text.icontains(text, autoescape=True)),
    ]
    number = case_number(text)
    if number is not None:
        clauses.append(CaseRow.id == number)
    return or_(*clauses)


def case_number(text: str) -> int | None:
    """A case number as typed ("12" or "#12"), or None: "²" and "①" pass str.isdigit, and a number past
    MAX_ID would fail in the database instead of matching nothing."""
    digits = text.strip().lstrip("#")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > len(str(MAX_ID)):
        return None
    number = int(digits)
    return number if number <= MAX_ID else None


def _disagreement():
    return or_(
        CaseRow.agreement == "disagree",
        and_(CaseRow.final_verdict.is_not(None), CaseRow.final_verdict != CaseRow.verdict),
    )


def _order(f: CaseFilter) -> list:
    """The sort order of `f`, ties broken by case number."""
    if f.sort not in SORT_KEYS:
        raise ValueError(f"Unknown sort key {f.sort!r}; use one of {sorted(SORT_KEYS)}.")
    key = SORT_KEYS[f.sort]
    # NULLs (a NO FACE case's score) last either way: SQLite and PostgreSQL put them at opposite ends
    return [(key.desc() if f.descending else key.asc()).nulls_last(), CaseRow.id.desc() if f.descending else CaseRow.id.asc()]


def _in_order(query, f: CaseFilter):
    """`query` narrowed to the cases matching `f`, in its sort order."""
    return query.where(*_conditions(f)).order_by(*_order(f))


def _conditions(f: CaseFilter) -> list:
    where = []
    if f.text.strip():
        where.append(_search(f.text))
    if f.verdicts:
        where.append(CaseRow.verdict.in_(f.verdicts))
    if f.final_verdicts:
        where.append(CaseRow.final_verdict.in_(f.final_verdicts))
    if f.agreements:
        labels = [a for a in f.agreements if a != UNLABELLED]
        either = [CaseRow.agreement.in_(labels)] if labels else []
        if UNLABELLED in f.agreements:
            either.append(and_(CaseRow.agreement.is_(None), CaseRow.final_verdict.is_(None)))
        where.append(or_(*either))
    if f.model_versions:
        where.append(CaseRow.model_version.in_(f.model_versions))
    if f.since is not None:
        where.append(CaseRow.created_at >= _day_bound(f.since, end=False))
    if f.until is not None:
        where.append(CaseRow.created_at <= _day_bound(f.until, end=True))
    if f.disagreement_only:
        where.append(_disagreement())
    if f.batch_id is not None:
        where.append(exists().where(BatchCaseRow.case_id == CaseRow.id, BatchCaseRow.batch_id == f.batch_id))
    return where


# ---------------------------------------------------------------- the store


class CaseStore:
    """Cases, batches, labels, notes and their audit trail in one SQLAlchemy database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = engine.execution_options(write=True)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def _read(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _write(self) -> Session:
        """A session whose `begin()` starts a write transaction (SQLite: BEGIN IMMEDIATE)."""
        return Session(self._writer, expire_on_commit=False)

    # -- reading

    def find(self, sha256: str) -> Case | None:
        """The case of the file with this sha256, if it was analyzed before."""
        with self._read() as session:
            row = session.scalar(select(CaseRow).where(CaseRow.sha256 == sha256.lower()))
            return self._case(session, row) if row else None

    def case_ids(self, digests: Sequence[str]) -> dict[str, int]:
        """sha256 -> case id of those files that are already cases: one light query per
        `LOOKUP_CHUNK` digests, for scans that check thousands of files before analyzing any."""
        wanted = [d.lower() for d in digests]
        found: dict[str, int] = {}
        with self._read() as session:
            for start in range(0, len(wanted), LOOKUP_CHUNK):
                chunk = wanted[start : start + LOOKUP_CHUNK]
                found.update(session.execute(select(CaseRow.sha256, CaseRow.id).where(CaseRow.sha256.in_(chunk))).all())
        return found

    def get(self, case_id: int) -> Case:
        with self._read() as session:
            return self._case(session, self._row(session, case_id))

    def list_cases(self, f: CaseFilter = CaseFilter()) -> list[CaseSummary]:
        query = _in_order(select(CaseRow), f).limit(f.limit).offset(f.offset)
        with self._read() as session:
            return [CaseSummary(**_summary_fields(row)) for row in session.scalars(query)]

    def position(self, case_id: int, f: CaseFilter = CaseFilter()) -> int | None:
        """Where case `case_id` stands among all the cases matching `f`, in its order (0 = first);
        None when it does not match. `f.limit` and `f.offset` do not count."""
        ranked = select(CaseRow.id, func.row_number().over(order_by=_order(f)).label("n")).where(*_conditions(f)).subquery()
        with self._read() as session:
            n = session.scalar(select(ranked.c.n).where(ranked.c.id == case_id))
        return None if n is None else n - 1

    def count_cases(self, f: CaseFilter = CaseFilter()) -> int:
        with self._read() as session:
            return session.scalar(select(func.count(CaseRow.id)).where(*_conditions(f))) or 0

    def model_versions(self) -> list[str]:
        with self._read() as session:
            return list(session.scalars(select(CaseRow.model_version).distinct().order_by(CaseRow.model_version)))

    def history(self, case_id: int) -> list[AuditEntry]:
        with self._read() as session:
            query = select(AuditRow).where(AuditRow.case_id == case_id).order_by(AuditRow.at, AuditRow.id)
            return [_audit(row) for row in session.scalars(query)]

    def audit_trail(self, limit: int = 1000, action: str | None = None) -> list[AuditEntry]:
        """The latest changes over all cases, deleted ones and files that failed included, newest
        first; only those of one `action` ("failed", "label", ...) when given."""
        with self._read() as session:
            query = select(AuditRow).order_by(AuditRow.at.desc(), AuditRow.id.desc()).limit(limit)
            if action:
                query = query.where(AuditRow.action == action)
            return [_audit(row) for row in session.scalars(query)]

    def media(self, case_id: int) -> bytes | None:
        """The original file, only if the analyst chose to keep it."""
        with self._read() as session:
            row = session.get(MediaRow, case_id)
            return row.data if row else None

    def batches(self) -> list[Batch]:
        count = select(func.count()).where(BatchCaseRow.batch_id == BatchRow.id).scalar_subquery()
        failed = select(func.count()).where(AuditRow.batch_id == BatchRow.id, AuditRow.action == "failed").scalar_subquery()
        with self._read() as session:
            rows = session.execute(select(BatchRow, count, failed).order_by(BatchRow.created_at.desc(), BatchRow.id.desc()))
            return [self._batch(row, n, failed_count=k) for row, n, k in rows]

    def batch(self, batch_id: int) -> Batch:
        with self._read() as session:
            row = session.get(BatchRow, batch_id)
            if row is None:
                raise LookupError(f"Batch #{batch_id} does not exist.")
            n = session.scalar(select(func.count()).where(BatchCaseRow.batch_id == batch_id)) or 0
            query = select(AuditRow).where(AuditRow.batch_id == batch_id, AuditRow.action == "failed").order_by(AuditRow.at, AuditRow.id)
            failures = tuple(_audit(a) for a in session.scalars(query))
            return self._batch(row, n, failed_count=len(failures), failures=failures)

    @staticmethod
    def _batch(row: BatchRow, count: int, failed_count: int = 0, failures: tuple[AuditEntry, ...] = ()) -> Batch:
        return Batch(row.id, row.name, _aware(row.created_at), row.created_by, count, failed_count, failures)

    @staticmethod
    def _row(session: Session, case_id: int, lock: bool = False) -> CaseRow:
        row = session.get(CaseRow, case_id, with_for_update=lock)
        if row is None:
            raise CaseNotFound(f"Case #{case_id} does not exist (it may have been deleted).")
        return row

    def _case(self, session: Session, row: CaseRow) -> Case:
        batches = session.scalars(
            select(BatchRow).join(BatchCaseRow, BatchCaseRow.batch_id == BatchRow.id)
            .where(BatchCaseRow.case_id == row.id).order_by(BatchRow.id)
        )
        notes = session.scalars(select(NoteRow).where(NoteRow.case_id == row.id).order_by(NoteRow.created_at, NoteRow.id))
        heatmaps = session.scalars(select(HeatmapRow).where(HeatmapRow.case_id == row.id).order_by(HeatmapRow.id))
        trail = session.scalars(select(AuditRow).where(AuditRow.case_id == row.id).order_by(AuditRow.at, AuditRow.id))
        has_media = session.scalar(select(exists().where(MediaRow.case_id == row.id)))
        return Case(
            **_summary_fields(row), media=row.media, family=row.family, model_trained=row.model_trained,
            thresholds=row.thresholds, result=row.result, forensics=row.forensics, thumbnail=row.thumbnail,
            has_media=bool(has_media),
            batches=[self._batch(b, 0) for b in batches],
            notes=[Note(n.id, n.analyst, _aware(n.created_at), n.text) for n in notes],
            heatmaps=[Heatmap(h.frame_index, h.face_index, h.branch, h.score, h.crop_png, h.overlay_png) for h in heatmaps],
            history=[_audit(a) for a in trail],
        )

    # -- writing

    def create_batch(self, name: str, analyst: str) -> Batch:
        name = re.sub(r"\s+", " ", name or "").strip()[:200]
        if not name:
            raise ValueError("A batch needs a name.")
        row = BatchRow(name=name, created_at=_now(), created_by=clean_analyst(analyst))
        with self._write() as session, session.begin():
            session.add(row)
        return self._batch(row, 0)

    def save(
        self,
        result: HasToDict | Mapping,
        file_name: str,
        analyst: str,
        *,
        thumbnail: bytes | None = None,
        heatmaps: Sequence[Heatmap] = (),
        forensics: Mapping | None = None,
        media: bytes | None = None,
        batch_id: int | None = None,
    ) -> Saved:
        """Store an analysis as a new case, in one transaction. A file already stored (same sha256)
        is not stored again: its existing case comes back (`created=False`), added to the batch."""
        data = _json_safe(dict(result) if isinstance(result, Mapping) else result.to_dict())
        if not data.get("sha256"):
            raise ValueError("The result has no sha256: analyze the file's bytes so the case can be identified.")
        analyst = clean_analyst(analyst)
        name = _base_name(file_name)
        extras = {"thumbnail": thumbnail, "heatmaps": heatmaps, "media": media,
                  "forensics": None if forensics is None else _json_safe(dict(forensics))}
        try:
            return self._save_once(data, name, analyst, extras, batch_id)
        except IntegrityError:  # another writer stored the same file between our check and insert
            return self._save_once(data, name, analyst, extras, batch_id)

    def _save_once(self, data: dict, name: str, analyst: str, extras: dict, batch_id: int | None) -> Saved:
        with self._write() as session:
            with session.begin():
                row = session.scalar(select(CaseRow).where(CaseRow.sha256 == data["sha256"]))
                created = row is None
                if created:
                    row = self._insert(session, data, name, analyst, **extras)
                if batch_id is not None:
                    self._link(session, batch_id, row, analyst)
                return Saved(self._case(session, row), created)

    def _insert(self, session, data, name, analyst, thumbnail, heatmaps, media, forensics) -> CaseRow:
        verdict, now = data["verdict"], _now()
        row = CaseRow(
            sha256=data["sha256"], file_name=name, size=int(data["media"].get("bytes") or len(media or b"")),
            kind=data["kind"], media=data["media"], verdict=verdict["label"], score=verdict["score"],
            confidence=verdict["confidence"], family=verdict["family"], model_version=data["model_version"],
            model_trained=bool(data["model_trained"]), thresholds=data["thresholds"], result=data,
            forensics=forensics, thumbnail=thumbnail, created_at=now, updated_at=now, created_by=analyst,
        )
        if session.get_bind().dialect.name == "sqlite":
            row.id = _next_case_number(session)
        session.add(row)
        session.flush()  # assigns row.id
        session.add_all(_face_rows(row.id, data))
        session.add_all(HeatmapRow(case_id=row.id, **vars(h)) for h in heatmaps)
        if media is not None:
            session.add(MediaRow(case_id=row.id, data=media, stored_at=now))
        self._log(session, row, analyst, "create", None, None, f"{verdict['label']} by model {data['model_version']}")
        return row

    def _link(self, session: Session, batch_id: int, row: CaseRow, analyst: str) -> None:
        batch = session.get(BatchRow, batch_id)
        if batch is None:
            raise LookupError(f"Batch #{batch_id} does not exist.")
        if session.get(BatchCaseRow, (batch_id, row.id)) is None:
            session.add(BatchCaseRow(batch_id=batch_id, case_id=row.id, added_at=_now()))
            self._log(session, row, analyst, "batch", "batch", None, f"#{batch.id} {batch.name}")

    def add_to_batch(self, batch_id: int, case_id: int, analyst: str) -> None:
        analyst = clean_analyst(analyst)
        with self._write() as session, session.begin():
            self._link(session, batch_id, self._row(session, case_id), analyst)

    def log_failure(self, sha256: str, file_name: str, analyst: str, error: str, batch_id: int | None = None) -> None:
        """Record in the audit trail that a file could not be analyzed (no case is made; a later
        scan tries it again), with the batch it was submitted to if any. `sha256` is empty when the
        file could not even be read."""
        with self._write() as session, session.begin():
            session.add(AuditRow(
                case_id=None, sha256=sha256.lower(), analyst=clean_analyst(analyst), at=_now(), action="failed",
                field="analysis", old=None, new=f"{_base_name(file_name)}: {error}", batch_id=batch_id,
            ))

    @staticmethod
    def _log(session: Session, row: CaseRow, analyst: str, action: str, name: str | None, old: Any, new: Any) -> None:
        session.add(AuditRow(
            case_id=row.id, sha256=row.sha256, analyst=analyst, at=_now(), action=action, field=name,
            old=_text(old), new=_text(new),
        ))

    def label(
        self,
        case_id: int,
        analyst: str,
        *,
        agreement: str | None = None,
        final_verdict: str | None = None,
        confidence: float | None = None,
        expected_revision: int | None = None,
    ) -> Case:
        """Set the analyst's label; every changed field goes to the audit trail (old -> new).
        Fields left at None are cleared, so the label is always the one the analyst last saw.
        With `expected_revision` (the `label_revision` of the case the analyst was shown) a label
        changed meanwhile by someone else is not overwritten: `LabelConflict` is raised instead.
        Without it the last writer wins (scripts that own the label)."""
        if agreement not in (None, *AGREEMENTS):
            raise ValueError(f"agreement must be one of {AGREEMENTS} or None, not {agreement!r}.")
        if final_verdict not in (None, *FINAL_VERDICTS):
            raise ValueError(f"final_verdict must be one of {FINAL_VERDICTS} or None, not {final_verdict!r}.")
        if confidence is not None and not 0.0 <= confidence <= 1.0:
            raise ValueError(f"confidence is a probability between 0 and 1, not {confidence!r}.")
        analyst = clean_analyst(analyst)
        wanted = {"agreement": agreement, "final_verdict": final_verdict, "label_confidence": confidence}
        with self._write() as session:
            with session.begin():
                row = self._row(session, case_id, lock=True)  # concurrent labellers queue up here
                if expected_revision is not None and row.label_revision != expected_revision:
                    raise LabelConflict(self._case(session, row), expected_revision)
                changed = {k: v for k, v in wanted.items() if getattr(row, k) != v}
                for name, value in changed.items():
                    self._log(session, row, analyst, "label", name, getattr(row, name), value)
                    setattr(row, name, value)
                if changed:
                    row.labelled_by, row.labelled_at = analyst, _now()
                    row.updated_at = row.labelled_at
                    row.label_revision += 1
                return self._case(session, row)

    @staticmethod
    def _scrub(session: Session, case_id: int) -> int:
        """Replace the free text (FREE_TEXT_FIELDS) in a case's audit entries; returns how many."""
        entries = list(session.scalars(
            select(AuditRow).where(AuditRow.case_id == case_id, AuditRow.field.in_(FREE_TEXT_FIELDS))
        ))
        for entry in entries:
            entry.old = None if entry.old is None else SCRUBBED
            entry.new = None if entry.new is None else SCRUBBED
        return len(entries)

    def add_note(self, case_id: int, analyst: str, text: str) -> Note:
        text = (text or "").strip()
        if not text:
            raise ValueError("The note is empty.")
        analyst = clean_analyst(analyst)
        with self._write() as session, session.begin():
            row = self._row(session, case_id, lock=True)
            note = NoteRow(case_id=row.id, analyst=analyst, created_at=_now(), text=text)
            session.add(note)
            row.updated_at = note.created_at
            self._log(session, row, analyst, "note", "notes", None, text)
        return Note(note.id, note.analyst, note.created_at, note.text)

    def delete(self, case_id: int, analyst: str, *, confirm: bool = False) -> None:
        """Delete a case with its notes, heatmaps and kept media. Its audit trail stays (who, when,
        what action), with the analysts' free text scrubbed from it and the deletion recorded.
        On SQLite the write-ahead log is then checkpointed (best effort, see `_checkpoint`).
        Refused unless `confirm=True`: deleting is permanent."""
        if confirm is not True:
            raise ValueError(f"Deleting case #{case_id} is permanent: call again with confirm=True.")
        analyst = clean_analyst(analyst)
        with self._write() as session, session.begin():
            row = self._row(session, case_id, lock=True)
            scrubbed = self._scrub(session, case_id)
            self._log(session, row, analyst, "delete", None, f"{row.file_name} ({row.verdict})",
                      f"note text removed from {scrubbed} earlier entr{'y' if scrubbed == 1 else 'ies'} of this trail"
                      if scrubbed else "no note text to remove from this trail")
            session.flush()
            session.execute(delete(CaseRow).where(CaseRow.id == case_id))  # the database cascades
        self._checkpoint()

    def _checkpoint(self) -> None:
        """SQLite: copy the write-ahead log into the database file and empty it, so that text just
        deleted does not linger in cases.db-wal (secure_delete zeroes the database file only, the
        log keeps the earlier page images until a checkpoint). Best effort: a reader still on an
        older snapshot blocks it; it is retried once, then logged."""
        if self.engine.dialect.name != "sqlite":
            return
        for attempt in (1, 2):
            try:
                busy, frames, copied = self._checkpoint_once()
            except OperationalError:  # the delete is committed: a failed clean-up must not undo that
                log.exception("checkpoint after a delete failed; the log is emptied by a later checkpoint")
                return
            if not busy and frames == copied:
                return
            log.warning("checkpoint after a delete blocked by a reader (attempt %d of 2: %d of %d log frames "
                        "copied); deleted text stays in %s-wal until the next checkpoint", attempt, copied, frames,
                        self.engine.url.database)

    def _checkpoint_once(self) -> tuple[int, int, int]:
        """PRAGMA wal_checkpoint(TRUNCATE): (busy, log frames, frames copied), waiting CHECKPOINT_WAIT_S for readers."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={int(CHECKPOINT_WAIT_S * 1000)}")
            try:
                return tuple(conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one())
            finally:  # the connection goes back to the pool: writers wait the full time again
                conn.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
