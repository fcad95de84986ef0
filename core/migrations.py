"""Versioned schema migrations for the case store: a `schema_version` table and ordered steps.

Each step is frozen once released: it describes the tables as they were at that version (its own
`MetaData`, never the ORM models of `core.cases`), so an old store upgrades through every step in
order and keeps its cases. Add a change as a new step at the end of `STEPS`; never edit an old one.
Every step runs in its own transaction together with its `schema_version` row, so a crash leaves
the store at the last completed version. Concurrent upgraders are serialized (PostgreSQL advisory
lock; SQLite write transactions begin IMMEDIATE, see `core.cases.make_engine`).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from sqlalchemy import (
    JSON, BigInteger, Boolean, Column, Connection, DateTime, Engine, Float, ForeignKey, Index, Integer,
    LargeBinary, MetaData, String, Table, Text, inspect, select, text,
)

__all__ = ["STEPS", "HEAD", "SchemaError", "current_version", "upgrade"]

Step = tuple[int, str, Callable[[Connection], None]]
_LOCK_ID = 7_310_512  # any constant shared by every process that upgrades this store


class SchemaError(RuntimeError):
    """The store's schema cannot be used by this version of the tool."""


def _version_table(metadata: MetaData) -> Table:
    return Table(
        "schema_version", metadata,
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("description", String(200), nullable=False),
        Column("applied_at", DateTime(timezone=True), nullable=False),
    )


_VERSIONS = _version_table(MetaData())


def _ts(name: str, nullable: bool = False) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable)


def _case_fk(ondelete: str = "CASCADE", nullable: bool = False) -> Column:
    return Column("case_id", Integer, ForeignKey("cases.id", ondelete=ondelete), nullable=nullable, index=True)


def _v1_initial(conn: Connection) -> None:
    md = MetaData()
    Table(
        "batches", md,
        Column("id", Integer, primary_key=True),
        Column("name", String(200), nullable=False),
        _ts("created_at"),
        Column("created_by", String(100), nullable=False),
    )
    Table(
        "cases", md,
        Column("id", Integer, primary_key=True),
        Column("sha256", String(64), nullable=False, unique=True),
        Column("file_name", String(500), nullable=False),
        Column("size", BigInteger, nullable=False),
        Column("kind", String(10), nullable=False),
        Column("media", JSON, nullable=False),
        Column("verdict", String(20), nullable=False, index=True),
        Column("score", Float),
        Column("confidence", Float),
        Column("family", String(20)),
        Column("model_version", String(100), nullable=False, index=True),
        Column("model_trained", Boolean, nullable=False),
        Column("thresholds", JSON, nullable=False),
        Column("result", JSON, nullable=False),
        Column("thumbnail", LargeBinary),
        _ts("created_at"),
        _ts("updated_at"),
        Column("created_by", String(100), nullable=False),
        Column("agreement", String(10)),
        Column("final_verdict", String(20)),
        Column("label_confidence", Float),
        Index("ix_cases_created_at", "created_at"),
    )
    Table(
        "batch_cases", md,
        Column("batch_id", Integer, ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True),
        Column("case_id", Integer, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True, index=True),
        _ts("added_at"),
    )
    Table(
        "case_faces", md,
        Column("id", Integer, primary_key=True),
        _case_fk(),
        Column("frame_index", Integer, nullable=False),
        Column("time", Float, nullable=False),
        Column("face_index", Integer, nullable=False),
        Column("track", Integer),
        Column("x", Float, nullable=False),
        Column("y", Float, nullable=False),
        Column("width", Float, nullable=False),
        Column("height", Float, nullable=False),
        Column("detection_score", Float, nullable=False),
        Column("too_small", Boolean, nullable=False),
        Column("fused", Float),
        Column("scores", JSON),
    )
    Table(
        "heatmaps", md,
        Column("id", Integer, primary_key=True),
        _case_fk(),
        Column("frame_index", Integer, nullable=False),
        Column("face_index", Integer, nullable=False),
        Column("branch", String(20), nullable=False),
        Column("score", Float),
        Column("crop_png", LargeBinary, nullable=False),
        Column("overlay_png", LargeBinary, nullable=False),
    )
    Table(
        "case_media", md,
        Column("case_id", Integer, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
        Column("data", LargeBinary, nullable=False),
        _ts("stored_at"),
    )
    Table(
        "notes", md,
        Column("id", Integer, primary_key=True),
        _case_fk(),
        Column("analyst", String(100), nullable=False),
        _ts("created_at"),
        Column("text", Text, nullable=False),
    )
    Table(
        "audit", md,
        Column("id", Integer, primary_key=True),
        _case_fk(ondelete="SET NULL", nullable=True),  # the trail outlives a deleted case
        Column("sha256", String(64), nullable=False, index=True),
        Column("analyst", String(100), nullable=False),
        _ts("at"),
        Column("action", String(20), nullable=False),
        Column("field", String(40)),
        Column("old", Text),
        Column("new", Text),
    )
    md.create_all(conn)


def _add_column(conn: Connection, table: str, column: Column) -> None:
    kind = column.type.compile(dialect=conn.dialect)
    conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column.name} {kind}"))


def _v2_labelled_by(conn: Connection) -> None:
    """Who set the current label and when, so the Cases table can show it without the trail;
    existing cases are filled in from their audit trail."""
    _add_column(conn, "cases", Column("labelled_by", String(100)))
    _add_column(conn, "cases", _ts("labelled_at", nullable=True))
    latest = "FROM audit a WHERE a.case_id = cases.id AND a.action = 'label' ORDER BY a.at DESC, a.id DESC LIMIT 1"
    conn.execute(text(f"UPDATE cases SET labelled_by = (SELECT a.analyst {latest}), labelled_at = (SELECT a.at {latest})"))


def _v3_forensics(conn: Connection) -> None:
    """The forensic context of a case (core.forensics.forensic_report: provenance, metadata flags)."""
    _add_column(conn, "cases", Column("forensics", JSON))


def _v4_label_revision(conn: Connection) -> None:
    """A revision counter per case label, so a label form saved over a label changed meanwhile is
    refused instead of silently overwriting it (optimistic concurrency); existing cases start at 0."""
    conn.execute(text("ALTER TABLE cases ADD COLUMN label_revision INTEGER NOT NULL DEFAULT 0"))


def _v5_case_numbers(conn: Connection) -> None:
    """The highest case number ever given. SQLite gives a new row the highest existing id + 1, so a
    deleted newest case's number would name the next file, in links and reports already handed on;
    PostgreSQL's sequence never reuses one. Seeded with the highest current number or the number of
    cases ever made (the audit trail's creations), whichever is higher: no number given before is
    given again."""
    conn.execute(text("CREATE TABLE case_numbers (last_id BIGINT NOT NULL)"))
    conn.execute(text(
        "INSERT INTO case_numbers (last_id) SELECT CASE WHEN kept > made THEN kept ELSE made END FROM "
        "(SELECT COALESCE(MAX(id), 0) AS kept FROM cases) AS k, (SELECT COUNT(*) AS made FROM audit WHERE action = 'create') AS m"
    ))


def _v6_failures_in_batches(conn: Connection) -> None:
    """The batch a failed file was submitted to, on its audit entry, so a batch reopened later says
    which of its files could not be analyzed; earlier failures have none."""
    _add_column(conn, "audit", Column("batch_id", Integer))
    conn.execute(text("CREATE INDEX ix_audit_batch_id ON audit (batch_id)"))


STEPS: list[Step] = [
    (1, "initial schema: cases, batches, faces, heatmaps, media, notes, audit", _v1_initial),
    (2, "cases.labelled_by and cases.labelled_at", _v2_labelled_by),
    (3, "cases.forensics", _v3_forensics),
    (4, "cases.label_revision", _v4_label_revision),
    (5, "case_numbers: case numbers never reused on SQLite", _v5_case_numbers),
    (6, "audit.batch_id: the files of a batch that could not be analyzed", _v6_failures_in_batches),
]
HEAD = STEPS[-1][0]


def current_version(conn: Connection) -> int:
    """0 for an empty database."""
    if not inspect(conn).has_table("schema_version"):
        return 0
    return conn.execute(select(_VERSIONS.c.version).order_by(_VERSIONS.c.version.desc()).limit(1)).scalar() or 0


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})


def upgrade(engine: Engine, target: int = HEAD) -> list[int]:
    """Apply the missing steps up to `target` in order; returns the versions applied."""
    applied = []
    with engine.begin() as conn:
        _lock(conn)
        _VERSIONS.create(conn, checkfirst=True)
        found = current_version(conn)
    if found > HEAD:
        raise SchemaError(
            f"The case store has schema version {found}, newer than this tool knows ({HEAD}): "
            "upgrade the tool before opening this store."
        )
    for version, description, step in STEPS:
        if version > target:
            break
        with engine.begin() as conn:
            _lock(conn)
            if current_version(conn) >= version:  # another process got there first
                continue
            step(conn)
            now = datetime.now(timezone.utc)
            conn.execute(_VERSIONS.insert().values(version=version, description=description, applied_at=now))
            applied.append(version)
    return applied
