"""`core.ui`, the pages' facade: it re-exports exactly the names the pages, streamlit_app.py and the
tests use, and the README's layout names every module of the package."""
from __future__ import annotations

import re
from pathlib import Path

import core.ui

ROOT = Path(__file__).resolve().parent.parent
UI_MODULES = {p.stem for p in (ROOT / "core" / "ui").glob("*.py")} - {"__init__"}


def _sources() -> list[str]:
    files = [*ROOT.glob("pages/*.py"), ROOT / "streamlit_app.py", *ROOT.glob("tests/**/*.py")]
    return [f.read_text(encoding="utf-8") for f in files]


def _used() -> set[str]:
    """Names read as `ui.NAME` or imported `from core.ui import ...` (modules like `ui.cases` included)."""
    used: set[str] = set()
    for text in _sources():
        used |= set(re.findall(r"\bui\.(\w+)", text))
        for in_parens, on_line in re.findall(r"from core\.ui import (?:\(([^)]*)\)|([\w ,]+))", text):
            used |= {n.strip() for n in (in_parens or on_line).split(",") if n.strip()}
    return used


def test_the_facade_exports_only_what_is_used():
    assert sorted(set(core.ui.__all__) - _used()) == []


def test_pages_use_only_what_the_facade_exports():
    page_names = set()
    for page in [*ROOT.glob("pages/*.py"), ROOT / "streamlit_app.py"]:
        page_names |= set(re.findall(r"\bui\.(\w+)", page.read_text(encoding="utf-8")))
    assert sorted(page_names - set(core.ui.__all__)) == []
    assert all(hasattr(core.ui, name) for name in core.ui.__all__)


def test_the_readme_layout_names_every_ui_module():
    layout = (ROOT / "README.md").read_text(encoding="utf-8").split("## Layout", 1)[1].split("\n## ", 1)[0]
    assert sorted(m for m in UI_MODULES if f"`{m}`" not in layout) == []


def test_plain_text_cannot_format_or_start_a_block():
    from core.ui.text import plain

    assert plain("a *b* [c](d)") == r"a \*b\* \[c\]\(d\)"
    assert plain("title\n===\n\n    code") == r"title \=\=\= code"  # no setext heading, paragraph or code block
    assert plain("one\r\n\ntwo", lines=True) == "one  \ntwo"
    # A bare address would be autolinked with the escapes in it (https://twitter%5C.com/...): shown as text.
    assert plain("https://x.org/a_b me@x.org :red[y]") == r"https\://x\.org/a\_b me\@x\.org \:red\[y\]"
