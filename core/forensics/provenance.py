"""C2PA Content Credentials (c2pa-python): who signed, with what tool, which actions, and whether
the signature and hashes still match the file.

Read offline: no remote manifest is fetched (that would tell a third party the file is being
examined) and no certificate status is queried. No C2PA trust list ships with the app, so a valid
signature shows *who* signed, not that the signer is on the official list ("untrusted" is expected).
"""
from __future__ import annotations

import io
import json

from core.forensics.flags import AI_SOURCE_TYPES, clean, flag, software_flags, source_type_flags

__all__ = ["read_credentials", "summarize_store", "mime_type", "C2PA_SETTINGS"]

C2PA_SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
_UNTRUSTED = "signingCredential.untrusted"
_MANIFEST_MARKERS = (b"jumb", b"c2pa")  # JUMBF box type and C2PA label: a manifest store is embedded
_MAX_ACTIONS = 50


def mime_type(head: bytes) -> str | None:
    """MIME type for the C2PA reader from the first bytes; None for formats it cannot carry."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF":
        return {b"WEBP": "image/webp", b"AVI ": "video/avi"}.get(head[8:12])
    if head.startswith(b"GIF8"):
        return "image/gif"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"mif1"):
            return "image/heif"
        if brand == b"avif":
            return "image/avif"
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    return None


def _result(status: str, summary: str, flags: list[dict] | None = None) -> dict:
    return {"status": status, "summary": summary, "flags": flags or [], "notes": []}


def read_credentials(data: bytes) -> dict:
    """Content Credentials of a file as a JSON-safe dict whose `status` is one of: present, none
    (no credentials), unsupported (format), error (damaged manifest), unreadable (damaged file),
    unavailable (no library)."""
    try:
        import c2pa  # optional at import time so the rest of the forensics works without it
    except ImportError as exc:
        return _result("unavailable", f"Provenance unavailable: the c2pa-python package is not installed "
                       f"({clean(exc)}); install it with `pip install -r requirements.txt`.")
    mime = mime_type(data[:16])
    if mime is None:
        return _result("unsupported", "Content Credentials cannot be checked in this file format.")
    try:
        store = _manifest_store(c2pa, mime, data)
    except c2pa.C2paError.NotSupported as exc:
        return _result("unsupported", f"The C2PA reader does not support this file ({clean(exc)}).")
    except c2pa.C2paError as exc:
        if not all(marker in data for marker in _MANIFEST_MARKERS):
            return _result("unreadable", f"The file could not be parsed to look for Content Credentials; it may be "
                           f"truncated or malformed ({clean(exc)}).")
        summary = ("Content Credentials are present but damaged or unreadable: the file may have been altered "
                   f"after signing ({clean(exc)}).")
        return _result("error", summary, [flag("provenance", "C2PA manifest", clean(exc), summary)])
    if store is None:
        return _result("none", "No Content Credentials (C2PA) in this file. Most photos and videos have none, "
                       "so their absence is not a sign of manipulation.")
    return summarize_store(store)


def _manifest_store(c2pa, mime: str, data: bytes) -> dict | None:
    """The reader's JSON manifest store, None without credentials; native handles are released."""
    with c2pa.Context(c2pa.Settings.from_dict(C2PA_SETTINGS)) as context:
        reader = c2pa.Reader.try_create(mime, io.BytesIO(data), context=context)
        if reader is None:
            return None
        with reader:
            return json.loads(reader.json())


def summarize_store(store: dict) -> dict:
    """The active manifest of a C2PA manifest store (the reader's JSON) in plain fields."""
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest")) or {}
    statuses = store.get("validation_status") or []
    failures = [{"code": clean(s.get("code")), "explanation": clean(s.get("explanation"))}
                for s in statuses if s.get("code") != _UNTRUSTED]
    trusted = not any(s.get("code") == _UNTRUSTED for s in statuses)
    state = clean(store.get("validation_state") or ("Invalid" if failures else "Valid"))
    signature = active.get("signature_info") or {}
    out = {
        "status": "present",
        "validation_state": state,
        "validation_failures": failures,
        "signer_on_trust_list": trusted,
        "signer": {k: clean(signature[k]) for k in ("common_name", "issuer", "alg", "time") if signature.get(k)},
        "claim_generator": _generator(active),
        "title": clean(active.get("title") or ""),
        "actions": _actions(active),
        "ingredients": [clean(i.get("title") or "untitled") for i in active.get("ingredients") or []],
        "manifest_count": len(manifests),
        "notes": [],
    }
    out["ai_declared"] = any(a.get("digital_source_type", "").endswith(AI_SOURCE_TYPES) for a in out["actions"])
    out["flags"] = _flags(out)
    out["summary"] = _summary(out)
    return out


def _generator(manifest: dict) -> str:
    """v2 manifests list the claim generator as name + version, v1 as one string."""
    info = manifest.get("claim_generator_info") or []
    names = [" ".join(str(i[k]) for k in ("name", "version") if i.get(k)) for i in info if isinstance(i, dict)]
    return clean(", ".join(n for n in names if n) or manifest.get("claim_generator") or "unknown")


def _actions(manifest: dict) -> list[dict]:
    found = []
    for assertion in manifest.get("assertions") or []:
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            agent = action.get("softwareAgent")
            agent = agent.get("name") if isinstance(agent, dict) else agent
            item = {"action": clean(action.get("action")), "software_agent": clean(agent or ""),
                    "digital_source_type": clean(action.get("digitalSourceType") or ""), "when": clean(action.get("when") or "")}
            found.append({k: v for k, v in item.items() if v})
    return found[:_MAX_ACTIONS]


def _flags(out: dict) -> list[dict]:
    found = software_flags("C2PA claim generator", out["claim_generator"])
    for action in out["actions"]:
        found += software_flags(f"C2PA action {action['action']}", action.get("software_agent", ""))
        found += source_type_flags(f"C2PA action {action['action']}", action.get("digital_source_type", ""))
    if out["validation_failures"]:
        codes = ", ".join(f["code"] for f in out["validation_failures"])
        found.append(flag("provenance", "C2PA validation", codes, "The Content Credentials do not match the file: it "
                          "was changed after signing, or the manifest is damaged. The signed claims no longer vouch for these pixels."))
    return found


def _summary(out: dict) -> str:
    signer = out["signer"].get("common_name") or out["signer"].get("issuer") or "an unnamed signer"
    text = f"Content Credentials present: signed by {signer}, made with {out['claim_generator']}; validation: {out['validation_state']}."
    if out["ai_declared"]:
        text += " The credentials declare AI-generated content."
    if not out["signer_on_trust_list"]:
        text += " The signer was not checked against the official C2PA trust list (none ships offline)."
    return text
