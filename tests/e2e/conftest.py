"""Real-browser fixtures: one `streamlit run` per session on a free localhost port, Debian's Chromium
driven by Playwright, a fresh browser context (hence a fresh Streamlit session) per test.

The server gets a temporary case store (DEEPFAKE_DATA_DIR / DEEPFAKE_DB_URL), so a test never
touches a real one, and it is always shut down: its whole process group is killed in a `finally`.
Each test leaves a screenshot in test-artifacts/screenshots/<test>.png (CI keeps the folder) and
fails on any browser console error, uncaught page error or Python exception shown in the page.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

try:  # absent Playwright is a skip (a failure in CI), reported by the `chromium_path` fixture
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright
except ImportError:
    PlaywrightTimeout = expect = sync_playwright = None

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 2200}  # tall, so one screenshot shows a whole result without full_page
STARTUP_S = 120  # a busy 2-core machine needs this long to import torch and start Streamlit
WAIT_MS = 120_000  # for anything that loads the detector or runs an analysis
IDLE_AFTER_MS = 30_000  # after a test (maybe a failed one), before its screenshot


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.read().strip() == b"ok"
    except OSError:
        return False


def _wait_healthy(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        if _healthy(url):
            return
        time.sleep(0.5)
    raise RuntimeError(f"streamlit was not healthy after {STARTUP_S} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """Terminate the server's process group, then kill it if it lingers."""
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium; the tests skip (CI: fail, via REQUIRE_ALL_TESTS) without it or Playwright."""
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install -r requirements-dev.txt")
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver (as .ci/run does)")
    return CHROMIUM


@contextmanager
def streamlit_server(data: Path) -> Iterator[str]:
    """`streamlit run streamlit_app.py` on a free port with a throwaway case store in `data`; stopped at the end."""
    log = data / "streamlit.log"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DEEPFAKE_DATA_DIR": str(data), "DEEPFAKE_DB_URL": f"sqlite:///{data / 'cases.db'}",
           "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(proc, url, log)
        yield url
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def app_url(chromium_path, tmp_path_factory) -> Iterator[str]:
    """The server most tests share."""
    with streamlit_server(tmp_path_factory.mktemp("e2e-data")) as url:
        yield url


@pytest.fixture(scope="session")
def browser(chromium_path):

    expect.set_options(timeout=WAIT_MS)  # `expect(...)` waits this long, not its default 5 s
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def screenshot(page, name: str) -> Path:
    """Save what the tall viewport shows (not full_page: that is what a reviewer sees scrolling)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    page.screenshot(path=path)
    return path


def wait_idle(page, timeout_ms: int = WAIT_MS) -> None:
    """Wait until the script run has finished and lazily loaded elements (tables, charts) replaced their
    grey placeholders; call it after something that proves a run started."""
    idle = page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')
    idle.wait_for(state="attached", timeout=timeout_ms)
    placeholders = page.locator('[data-testid="stSkeleton"], [data-testid="stSkeletonElement"]')
    expect(placeholders).to_have_count(0, timeout=timeout_ms)


# streamlit/streamlit#7074 (open, confirmed): loading a page by its own URL (/cases?case=3, the links the
# app hands out) makes the frontend probe /cases/_stcore/health and /cases/_stcore/host-config before the
# real /_stcore/... ones; those two 404s change nothing on screen. Nothing else is ignored.
_HARMLESS = re.compile(r"404 \(Not Found\) \(https?://[^/]+/[\w-]+/_stcore/(health|host-config)\)$")


def _problems(page, messages: list[str]) -> list[str]:
    shown = page.locator('[data-testid="stException"]')
    real = [m for m in messages if not _HARMLESS.search(m)]
    return real + [f"exception shown in the page: {text}" for text in shown.all_inner_texts()]


@pytest.fixture
def page(browser, app_url, request):
    """A fresh browser context (a new Streamlit session) on the shared server; afterwards a
    screenshot is saved and the test fails on console errors or an exception shown in the page."""
    yield from _checked_page(browser, app_url, request)


@pytest.fixture
def restarted_page(browser, tmp_path, request):
    """As `page`, on a server of its own that no browser has opened yet, as after a restart."""
    with streamlit_server(tmp_path) as url:
        yield from _checked_page(browser, url, request)


def _checked_page(browser, url: str, request):
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True, base_url=url)
    context.set_default_timeout(WAIT_MS)
    messages: list[str] = []  # from every tab of the context, so an opened report is checked too
    context.on("console", lambda m: messages.append(f"console {m.type}: {m.text} ({m.location.get('url')})")
               if m.type == "error" else None)
    context.on("weberror", lambda e: messages.append(f"page error: {e.error}"))
    tab = context.new_page()
    try:
        yield tab
        try:
            wait_idle(tab, IDLE_AFTER_MS)
        except (PlaywrightTimeout, AssertionError):  # expect(...) fails with AssertionError
            messages.append(f"the script was still running {IDLE_AFTER_MS // 1000} s after the test")
        screenshot(tab, request.node.name)
        problems = _problems(tab, messages)
        if problems:
            pytest.fail("the page reported errors:\n" + "\n".join(problems), pytrace=False)
    finally:
        context.close()
