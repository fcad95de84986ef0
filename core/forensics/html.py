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
    """A <section> with the headline, provenance, flags, face tracks, notes and the limits."""
    provenance = report["provenance"]
    parts = ["<section class='forensics'>", "<h2>Forensic context</h2>",
             f"<p><strong>{escape(headline(report))}</strong></p>", f"<p>{escape(provenance['summary'])}</p>"]
    if provenance.get("actions"):
        parts.append(_table(provenance["actions"], ["action", "software_agent", "digital_source_type", "when"]))
    if report["flags"]:
        parts.append("<h3>Flags (leads to check, not findings)</h3>")
        parts.append(_table(report["flags"], ["kind", "field", "value", "meaning"]))
    if report["tracks"]:
        parts.append("<h3>Face tracks across sampled frames</h3>")
        rows = track_rows(report["tracks"])
        parts.append(_table(rows, list(rows[0])))
    notes = provenance.get("notes", []) + report["metadata"].get("notes", [])
    if notes:
        parts.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    parts += [f"<p><em>{escape(report['limits'])}</em></p>", "</section>"]
    return "\n".join(parts)
