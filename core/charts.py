"""Figures built from an `AnalysisResult`: Plotly charts and boxed previews. They draw scores, never compute them."""
from __future__ import annotations

from typing import Any, Iterable

import cv2
import numpy as np
import plotly.graph_objects as go

from core.analyze import AnalysisResult, FaceResult, FrameResult

__all__ = [
    "ZONE_COLOURS", "TOO_SMALL_COLOUR", "zone", "face_label", "ranked_faces", "face_scores_figure",
    "timeline_figure", "picked_frame", "draw_faces",
]

ZONE_COLOURS = {"REAL": "#2e9d5b", "INCONCLUSIVE": "#d9a21b", "FAKE": "#d2453b"}
TOO_SMALL_COLOUR = "#4aa3df"
NO_FACE_COLOUR = "#8a8f98"
_BRANCH_SYMBOLS = ("circle-open", "square-open", "diamond-open", "triangle-up-open")
# Branch markers and lines in colours no zone uses: the default colourway put a red marker on a red bar.
_BRANCH_COLOURS = ("#3d8bfd", "#b07cd8", "#17becf", "#e377c2")


def zone(score: float, thresholds: dict[str, float]) -> str:
    """The verdict zone a calibrated score falls in (thresholds are inclusive, as in `core.analyze.decide`)."""
    if score >= thresholds["fake"]:
        return "FAKE"
    if score <= thresholds["real"]:
        return "REAL"
    return "INCONCLUSIVE"


def face_label(index: int, face: FaceResult) -> str:
    """Human numbering (1-based, detector order, matches the boxes), with the track in videos."""
    label = f"Face {index + 1}"
    return label if face.track is None else f"{label} · person {face.track + 1}"


def ranked_faces(frame: FrameResult) -> list[tuple[int, FaceResult]]:
    """(index in frame, face) pairs: judged faces most suspicious first, then the too-small ones."""
    judged = [(i, f) for i, f in enumerate(frame.faces) if f.scores]
    judged.sort(key=lambda pair: -pair[1].scores["fused"])
    return judged + [(i, f) for i, f in enumerate(frame.faces) if not f.scores]


def _branches(result: AnalysisResult) -> list[str]:
    return [name for name in result.branch_scores if name != "fused"]


def _score_axes(fig: go.Figure, thresholds: dict[str, float]) -> None:
    """Score axis 0..1 with both thresholds and the inconclusive band between them."""
    real, fake = thresholds["real"], thresholds["fake"]
    fig.add_hrect(y0=real, y1=fake, fillcolor=ZONE_COLOURS["INCONCLUSIVE"], opacity=0.15, line_width=0)
    fig.add_hline(y=fake, line_dash="dash", line_color=ZONE_COLOURS["FAKE"])
    fig.add_hline(y=real, line_dash="dash", line_color=ZONE_COLOURS["REAL"])
    # The zone names sit right of the plot area: inside it they covered bars and points.
    for y, text, colour in ((fake, f"FAKE ≥ {fake:.3f}", "FAKE"), ((real + fake) / 2, "inconclusive", "INCONCLUSIVE"),
                            (real, f"REAL ≤ {real:.3f}", "REAL")):
        fig.add_annotation(x=1, xref="paper", xanchor="left", y=y, text=text, showarrow=False,
                           font=dict(color=ZONE_COLOURS[colour], size=11))
    fig.update_yaxes(range=[0, 1.02], title_text="manipulation score (0 = real, 1 = manipulated)")
    fig.update_layout(margin=dict(l=10, r=90, t=40, b=10), legend=dict(orientation="h", y=-0.2))


def face_scores_figure(result: AnalysisResult, frame: FrameResult | None = None) -> go.Figure:
    """Bars of the fused score per judged face (most suspicious first), each branch as a marker."""
    frame = frame if frame is not None else result.frames[0]
    judged = [(i, f) for i, f in ranked_faces(frame) if f.scores]
    labels = [face_label(i, f) for i, f in judged]
    fused = [f.scores["fused"] for _, f in judged]
    fig = go.Figure(go.Bar(
        x=labels, y=fused, name="fused (verdict score)",
        marker_color=[ZONE_COLOURS[zone(s, result.thresholds)] for s in fused],
        hovertemplate="%{x}: %{y:.3f}<extra>fused</extra>",
    ))
    for name, symbol, colour in zip(_branches(result), _BRANCH_SYMBOLS, _BRANCH_COLOURS):
        fig.add_trace(go.Scatter(
            x=labels, y=[f.scores[name] for _, f in judged], mode="markers", name=f"{name} branch",
            marker=dict(symbol=symbol, size=12, line_width=2, color=colour),
            hovertemplate=f"%{{x}}: %{{y:.3f}}<extra>{name}</extra>",
        ))
    _score_axes(fig, result.thresholds)
    fig.update_layout(title_text="Score per face (most suspicious first)")
    return fig


def _frame_branch_max(frame: FrameResult, name: str) -> float | None:
    return max((f.scores[name] for f in frame.faces if f.scores), default=None)


def timeline_figure(result: AnalysisResult, selected: int | None = None) -> go.Figure:
    """Most suspicious face per sampled frame over time; every point carries its frame position as
    `customdata`, so a click selects the frame. Frames without a judged face break the line and sit
    as grey crosses on the axis, a trace of their own: they have no score, not a score of 0."""
    frames = result.frames
    times = [fr.time for fr in frames]
    scores = [fr.score for fr in frames]
    positions = list(range(len(frames)))
    colours = [ZONE_COLOURS[zone(s, result.thresholds)] if s is not None else NO_FACE_COLOUR for s in scores]
    branches = {name: [_frame_branch_max(fr, name) for fr in frames] for name in _branches(result)}
    fig = go.Figure(go.Scatter(
        x=times, y=scores, customdata=positions, mode="lines+markers", connectgaps=False, showlegend=False,
        line=dict(color="#9aa5b1", width=1), marker=dict(color=colours, size=10),
        text=[_frame_hover(p, times, scores, branches) for p in positions], hovertemplate="%{text}<extra>frame</extra>",
    ))
    for label, colour in ZONE_COLOURS.items():  # legend only: a per-point colour shows in the legend as the first point's
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", marker=dict(color=colour, size=10),
                                 name=f"frame score, {label.lower()} zone", hoverinfo="skip"))
    empty = [p for p, s in zip(positions, scores) if s is None]
    if empty:
        fig.add_trace(go.Scatter(
            x=[times[p] for p in empty], y=[0.0] * len(empty), customdata=empty, mode="markers",
            name="no face judged (no score)", marker=dict(color=NO_FACE_COLOUR, size=10, symbol="x"),
            hovertemplate="t = %{x:.2f} s: no face judged<extra>frame</extra>",
        ))
    for (name, values), colour in zip(branches.items(), _BRANCH_COLOURS):
        # a line takes no hover: lying on the frame points, it caught the clicks meant for them (QA), and a click on a line selects nothing
        fig.add_trace(go.Scatter(x=times, y=values, mode="lines", name=f"{name} branch", line=dict(dash="dot", width=1, color=colour),
                                 hoverinfo="skip"))
    if selected is not None and 0 <= selected < len(frames):
        fig.add_vline(x=times[selected], line_color="#ffffff", line_width=1, opacity=0.6)
    _score_axes(fig, result.thresholds)
    fig.update_xaxes(title_text="time (s)")
    fig.update_layout(title_text="Score per sampled frame (click a point to inspect it)", clickmode="event+select")
    return fig


def _frame_hover(position: int, times: list[float], scores: list[float | None], branches: dict[str, list[float | None]]) -> str:
    """A frame point's hover text: its time and score, then each branch's score (the dotted lines take no hover)."""
    score = scores[position]
    rows = [f"t = {times[position]:.2f} s: " + ("no face judged" if score is None else f"{score:.3f}")]
    rows += [f"{name} {values[position]:.3f}" for name, values in branches.items() if values[position] is not None]
    return "<br>".join(rows)


def picked_frame(points: Iterable[dict[str, Any]]) -> int | None:
    """Frame position from a Streamlit Plotly selection (the first point's `customdata`)."""
    for point in points:
        value = point.get("customdata")
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if value is not None:
            return int(value)
    return None


def _hex_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def draw_faces(rgb: np.ndarray, frame: FrameResult, thresholds: dict[str, float], max_side: int = 1600,
               box_scale: float = 1.0) -> np.ndarray:
    """A display copy of the image, at most `max_side` pixels, with every face boxed and numbered:
    judged faces in their zone colour, too-small faces in blue (the caption says what blue means).
    A number is sized to its box (down to a legible minimum), so the labels of many small faces do
    not run together.
    `box_scale` maps the boxes onto `rgb` when it is a reduced copy of the analyzed frame."""
    scale = min(1.0, max_side / max(rgb.shape[:2]))
    out = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else rgb.copy()
    thick = max(2, round(max(out.shape[:2]) / 400))
    for i, face in enumerate(frame.faces):
        x, y, w, h = (round(v * scale * box_scale) for v in face.box)
        colour = _hex_rgb(ZONE_COLOURS[zone(face.scores["fused"], thresholds)] if face.scores else TOO_SMALL_COLOUR)
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thick)
        text = str(i + 1)
        width = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 1)[0][0]
        size = max(0.3, min(0.4 * thick, w / width))  # font scale; the stroke shrinks with it
        stroke, at = max(1, round(size / 0.4)), (x, max(12, y - 4))
        cv2.putText(out, text, at, cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0), stroke + 2)  # dark rim: readable on any image
        cv2.putText(out, text, at, cv2.FONT_HERSHEY_SIMPLEX, size, colour, stroke)
    return out
