"""The forensic report as an HTML fragment for the exported, self-contained case report.

Every value read from the file is escaped: metadata is attacker-controlled text. The fragment uses
no scripts, styles or external resources, so the host report's stylesheet applies.
"""
from __future__ import annotations

from html import escape

from core.forensics import headline
from core.forensics.tracks import track_rows

__all__ = ["forensics_html"]


def _cell(value: object) -> str:
    return "–" if value is None else escape(str(value))


def _table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def forensics_html(report: dict) -> str:
    """A <div> for inside a case's section: headline, provenance, flags, face tracks, notes and the
    limits. Tolerates records with missing parts (older or hand-made ones)."""
    provenance, metadata = report.get("provenance") or {}, report.get("metadata") or {}
    flags, tracks = report.get("flags") or [], report.get("tracks") or []
    parts = ["<div class='forensics'>", "<h3>Forensic context</h3>",
             f"<p><strong>{escape(headline({'provenance': provenance, 'flags': flags}))}</strong></p>"]
    if provenance.get("summary"):
        parts.append(f"<p>{escape(provenance['summary'])}</p>")
    if provenance.get("actions"):
        parts.append(_table(provenance["actions"], ["action", "software_agent", "digital_source_type", "when"]))
    if flags:
        parts.append("<h4>Flags (leads to check, not findings)</h4>")
        parts.append(_table(flags, ["kind", "field", "value", "meaning"]))
    if tracks:
        parts.append("<h4>Face tracks across sampled frames</h4>")
        rows = track_rows(tracks)
        parts.append(_table(rows, list(rows[0])))
    notes = provenance.get("notes", []) + metadata.get("notes", [])
    if notes:
        parts.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    if report.get("limits"):
        parts.append(f"<p class='muted'>{escape(report['limits'])}</p>")
    return "\n".join(parts + ["</div>"])
