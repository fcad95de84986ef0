"""XMP packets read defensively: a size cap, no DTDs or entities, a flat view of the fields we use.

XMP is RDF/XML that editors and generators write into JPEG, PNG, WebP and video files. It never
needs a DTD, so a packet that declares one is refused instead of risking entity expansion
("billion laughs"); packets over `MAX_XMP_BYTES` are not parsed at all.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from xml.parsers import expat

from core.forensics.flags import clean

__all__ = ["MAX_XMP_BYTES", "parse_xmp", "xmp_fields"]

MAX_XMP_BYTES = 1 << 20
_MAX_VALUES = 50  # per field name: a History list can be long, we keep its start


class _DtdFound(Exception):
    pass


def _declares_dtd(packet: bytes) -> bool:
    """Whether the XML parser itself meets a DOCTYPE, in whatever encoding the packet is (a byte
    search misses UTF-16); the scan stops there, before any entity is declared."""
    scanner = expat.ParserCreate()

    def refuse(*_args) -> None:
        raise _DtdFound

    scanner.StartDoctypeDeclHandler = refuse
    try:
        scanner.Parse(packet, True)
    except _DtdFound:
        return True
    except (expat.ExpatError, LookupError, ValueError):  # LookupError: an encoding Python does not know
        return False  # not readable: the real parse says so
    return False


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def parse_xmp(packet: bytes) -> tuple[dict[str, list[str]], list[str]]:
    """Every element text and attribute value by local name (namespace dropped), plus notes on
    what could not be read. `rdf:resource` values are filed under their element's name."""
    if len(packet) > MAX_XMP_BYTES:
        return {}, [f"XMP block of {len(packet) / 2**20:.1f} MB not parsed (limit {MAX_XMP_BYTES // 2**20} MB)."]
    if not packet.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 code units end in NUL bytes: keep them
        packet = packet.strip(b"\x00 \r\n\t")  # packet padding
    if _declares_dtd(packet):
        return {}, ["XMP block declares a DTD or entities; refused unparsed (XMP never needs them)."]
    try:
        root = ET.fromstring(packet)
    except (ET.ParseError, LookupError, ValueError) as exc:
        return {}, [f"XMP block is not well-formed XML and was skipped ({clean(str(exc))})."]
    fields: dict[str, list[str]] = defaultdict(list)
    for element in root.iter():
        name = _local(str(element.tag))
        values = [(name, element.text)] if element.text and element.text.strip() else []
        for attr, value in element.attrib.items():
            values.append((name if _local(attr) == "resource" else _local(attr), value))
        for key, value in values:
            if len(fields[key]) < _MAX_VALUES:
                fields[key].append(clean(value))
    return dict(fields), []


def xmp_fields(packet: bytes) -> tuple[dict, list[str]]:
    """The XMP fields that matter for provenance: tools, history, source type, dates, GPS presence."""
    raw, notes = parse_xmp(packet)

    def first(*names: str) -> str | None:
        return next((raw[n][0] for n in names if raw.get(n)), None)

    out = {
        "creator_tool": first("CreatorTool"),
        "history_agents": list(dict.fromkeys(raw.get("softwareAgent", []))),
        "history_actions": list(dict.fromkeys(raw.get("action", []))),
        "digital_source_type": first("DigitalSourceType"),
        "make": first("Make"),
        "model": first("Model"),
        "date_original": first("DateTimeOriginal"),
        "create_date": first("CreateDate", "DateCreated"),
        "modify_date": first("ModifyDate"),
        "gps_present": bool(raw.get("GPSLatitude") or raw.get("GPSLongitude")),
    }
    return {k: v for k, v in out.items() if v}, notes
