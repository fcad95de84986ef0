"""What every session shares: the cached detector engine and case store, and the media limits.

Each is opened once per server (`st.cache_resource`); a failure becomes a message saying how to fix it.
"""
from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from core.analyze import Engine, load_engine
from core.cases import STORE_ERRORS, CaseStore, StoreError, default_url, open_store, sqlite_url
from core.media import Limits, limits_from_env
from core.migrations import SchemaError
from core.ui.text import STORE_TROUBLE, plain

__all__ = [
    "through_entry_point", "ENTRY_KEY", "LIMITS_KEY", "get_engine", "engine_or_stop", "current_limits", "store_url", "get_store",
    "store_or_none", "store_or_stop",
]

log = logging.getLogger(__name__)

ENTRY_KEY = "entry_point_ran"  # set by streamlit_app.py in every session it runs in
LIMITS_KEY = "media_limits"  # session_state override of the media limits (tests lower them)


def through_entry_point() -> None:
    """Rerun through streamlit_app.py when Streamlit ran this page file alone. With a pages/ folder,
    Streamlit runs a link's page file directly (its older multipage mode) until the entry point has
    called st.navigation once since the server started (streamlit/streamlit#9624), so a first visit
    by a deep link (a shared case link after a restart) would miss the app's menu and sidebar.
    Turning that mode off, as st.navigation does, and rerunning runs the entry point on the same page.
    AppTest turns the older mode back on before every run; a session the entry point has run in
    (ENTRY_KEY) is left as it is, so a test's clicks are not lost to a rerun."""
    if PagesManager.uses_pages_directory and ENTRY_KEY not in st.session_state:
        PagesManager.uses_pages_directory = False
        st.rerun()


@st.cache_resource(show_spinner="Loading the detector (once per server)…")
def get_engine() -> Engine:
    """The detector and face finder, shared by every session; Grad-CAM on it is hook-free, hence thread-safe."""
    return load_engine()


def engine_or_stop() -> Engine:
    """The shared engine, or an error telling the operator how to fix the install, then stop the page."""
    try:
        return get_engine()
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        log.exception("detector failed to load")
        st.error(f"The detector could not be loaded: {exc}. Restore the weights/ folder from git and restart the app.")
        st.stop()


def current_limits() -> Limits:
    """Media limits; the byte cap follows server.maxUploadSize (Streamlit itself refuses larger uploads)."""
    override = st.session_state.get(LIMITS_KEY)
    if isinstance(override, Limits):
        return override
    return replace(limits_from_env(), max_bytes=int(st.get_option("server.maxUploadSize")) * 1024 * 1024)


def _case_secrets() -> dict:
    try:
        return {key: st.secrets.get(key) for key in ("db_url", "data_dir")}
    except FileNotFoundError:  # no .streamlit/secrets.toml
        return {}


def store_url() -> str:
    """The environment (DEEPFAKE_DB_URL, DEEPFAKE_DATA_DIR) wins, then `db_url` / `data_dir` in
    .streamlit/secrets.toml, then the default SQLite file (docs/cases.md)."""
    if os.environ.get("DEEPFAKE_DB_URL") or os.environ.get("DEEPFAKE_DATA_DIR"):
        return default_url()
    secrets = _case_secrets()
    if secrets.get("db_url"):
        return str(secrets["db_url"])
    if secrets.get("data_dir"):
        return sqlite_url(Path(str(secrets["data_dir"])))
    return default_url()


@st.cache_resource(show_spinner="Opening the case store…")
def get_store(url: str) -> CaseStore:
    """One store (engine and connection pool) per URL, shared by every session."""
    return open_store(url)


def store_or_none() -> CaseStore | None:
    """The case store, or None with a warning saying how to fix the configuration."""
    try:
        return get_store(store_url())
    except STORE_ERRORS as exc:
        log.exception("case store unavailable")
        # our own errors say how to fix the setup; any other database error may quote SQL
        reason = plain(exc) if isinstance(exc, (StoreError, SchemaError)) else STORE_TROUBLE
        st.warning(f"The case store is unavailable, so nothing can be saved: {reason}", icon=":material/database:")
        return None


def store_or_stop() -> CaseStore:
    store = store_or_none()
    if store is None:
        st.stop()
    return store
