"""Model facts: the shared sidebar, the written model card, the evaluation report, the weights' metadata."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import streamlit as st

from core.analyze import Engine
from core.model import WEIGHTS_DIR, Detector
from core.ui.text import FAMILY_TEXT

__all__ = [
    "sidebar", "model_card_text", "evaluation_report", "nested_headings", "split_sections",
    "document_section", "metadata_section",
]


def sidebar(engine: Engine) -> None:
    """Model facts every page shares."""
    det = engine.detector
    with st.sidebar:
        st.caption(f"Detector **{det.version}**")
        if not det.trained:
            st.warning("Weights are untrained: scores are not findings.", icon=":material/warning:")
        t = det.thresholds
        st.caption(f"REAL ≤ {t['real']:.3f} · inconclusive · FAKE ≥ {t['fake']:.3f}")
        st.caption("A score is evidence for a human reviewer, never proof.")


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def model_card_text(weights_dir: Path = WEIGHTS_DIR) -> str | None:
    """weights/MODEL_CARD.md, if it has been written."""
    return _read(weights_dir / "MODEL_CARD.md")


def evaluation_report(weights_dir: Path = WEIGHTS_DIR) -> str | None:
    """The latest evaluation report, weights/eval/report.md, if one has been produced."""
    return _read(weights_dir / "eval" / "report.md")


def _lines(markdown: str) -> Iterator[tuple[str, bool]]:
    """Each line, and whether it is a heading: a "#" line outside code blocks (there it is a comment)."""
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            yield line, False
        else:
            yield line, not fenced and line.startswith("#")


def nested_headings(markdown: str, depth: int) -> str:
    """Every heading `depth` levels down (code blocks untouched), so an embedded document's "# Title"
    sits under the page's own title instead of beside it."""
    lines = []
    for line, heading in _lines(markdown):
        if heading:
            level = len(line) - len(line.lstrip("#"))
            line = "#" * min(6, level + depth) + line[level:]  # Markdown has six levels
        lines.append(line)
    return "\n".join(lines)


def split_sections(markdown: str) -> tuple[str, list[tuple[str, str]]]:
    """(intro, [(heading, body), ...]): the text before the first "## " heading, without the "# " title
    (the page has its own), and each "## " section; a "#" line in a code block is not a heading."""
    intro, sections = [], []
    for line, heading in _lines(markdown):
        if heading and line.startswith("## "):
            sections.append((line[3:].strip(), []))
        elif not (heading and line.startswith("# ")):
            (sections[-1][1] if sections else intro).append(line)
    return "\n".join(intro).strip(), [(h, "\n".join(body).strip()) for h, body in sections]


# A wide markdown table (the evaluation report's has 13 columns) scrolls inside its own box instead of
# pushing the whole page sideways in a narrow window (QA at 800 px: FPR was off-screen).
WIDE_TABLES_SCROLL = "<style>[data-testid='stMarkdownContainer'] table {display: block; overflow-x: auto; max-width: 100%;}</style>"


def document_section(text: str | None, missing: str, open_first: tuple[str, ...] = ()) -> None:
    """A long document read section by section: its intro shown, each "## " section in an expander
    (open when its heading starts with one of `open_first`), so the page lists what it holds; or a
    note saying the document does not exist yet."""
    if not text:
        st.info(missing, icon=":material/info:")
        return
    intro, sections = split_sections(text)
    st.html(WIDE_TABLES_SCROLL)
    st.markdown(nested_headings(intro, 2))
    for heading, body in sections:
        with st.expander(heading, expanded=heading.startswith(open_first)):
            st.markdown(nested_headings(body, 2))


def _training_table(training: dict[str, dict]) -> dict[str, list[str]]:
    """Each branch's training record as a column, one setting per row ("—" where a setting is not the
    branch's); a table reads better than the nested record."""
    settings = list(dict.fromkeys(key for record in training.values() for key in record))
    return {"setting": settings, **{branch: [_shown(record.get(key)) for key in settings] for branch, record in training.items()}}


def _shown(value: object) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def metadata_section(detector: Detector) -> None:
    """What the loaded weights say about themselves: version, thresholds, calibration, training."""
    meta = detector.metadata
    st.markdown(f"Version `{detector.version}` · created {meta.get('created', 'unknown')} · "
                f"code commit `{meta.get('code_commit', 'unknown')}` · fusion: {meta.get('fusion', 'unknown')}")
    t = detector.thresholds
    st.markdown(f"Thresholds: **REAL ≤ {t['real']:.3f}**, **FAKE ≥ {t['fake']:.3f}**, INCONCLUSIVE in between.")
    st.table({
        "branch": list(detector.configs),
        "evidence": [FAMILY_TEXT.get(n, n) for n in detector.configs],
        "backbone": [c.backbone for c in detector.configs.values()],
        "input": [f"{c.input_size} px" for c in detector.configs.values()],
        "calibration (a, b)": [f"{c.calib_a:.3f}, {c.calib_b:.3f}" for c in detector.configs.values()],
        "trained": ["yes" if c.trained else "NO" for c in detector.configs.values()],
    })
    st.markdown("**Training summary**")
    if meta.get("training"):
        st.dataframe(_training_table(meta["training"]), hide_index=True)
    else:
        st.caption("No training summary is recorded with these weights.")
