"""Files of an evaluation run: report.json, report.md, items.csv, roc.png, reliability.png.

The plots are drawn with Pillow (already a runtime dependency): matplotlib is not installed and
Plotly's static export needs kaleido plus a Chrome build, which an offline machine cannot fetch.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["write_all", "json_safe", "markdown", "summary_text", "unit_square_plot", "FILES"]

FILES = ("report.json", "report.md", "items.csv", "roc.png", "reliability.png")
METRIC_LABELS = {"auc": "AUC", "ap": "AP", "eer": "EER", "accuracy": "Accuracy", "tpr": "TPR", "fpr": "FPR",
                 "brier": "Brier", "ece": "ECE"}
# Okabe-Ito: distinguishable with the common colour-vision deficiencies
PALETTE = [(0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (230, 159, 0), (86, 180, 233), (0, 0, 0), (240, 228, 66)]


def json_safe(obj):
    """NaN and infinities become null (JSON has no NaN); numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_csv(rows: Sequence[dict], columns: Sequence[str], path: Path) -> None:
    """One line per item; a missing value is an empty cell."""
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})


def write_all(report: dict, rows: Sequence[dict], columns: Sequence[str], out: Path) -> list[str]:
    """Write every file into `out` (created if needed); returns the file names."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"items": "items.csv", "roc": "roc.png", "reliability": "reliability.png", "markdown": "report.md"}
    report = json_safe({**report, "files": files})
    (out / "report.json").write_text(json.dumps(json_safe(report), indent=1, allow_nan=False) + "\n")
    (out / "report.md").write_text(markdown(report))
    write_csv(rows, columns, out / "items.csv")
    roc_plot(report).save(out / "roc.png")
    reliability_plot(report).save(out / "reliability.png")
    return list(FILES)


# --- Markdown -----------------------------------------------------------------------------------

def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _with_ci(entry: dict) -> str:
    lo, hi = entry["ci"]
    if lo is None or not math.isfinite(lo):
        return _num(entry["value"])
    return f"{_num(entry['value'])} [{_num(lo, 2)}, {_num(hi, 2)}]"


def _cell(text: str) -> str:
    """Free text safe inside a Markdown table cell: no pipe, no line break, no inline markup."""
    for char in "\\`*_[]<>":
        text = text.replace(char, "\\" + char)
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """A path, command or version as a code span (shown verbatim); pipes still need escaping in tables."""
    return "`" + text.replace("`", "'").replace("|", "\\|").replace("\n", " ") + "`"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _no_face(split: dict) -> str:
    c = split["counts"]
    return f"{c['real']['no_face']} / {c['fake']['no_face']}"


def _detection_table(report: dict) -> str:
    header = ["Split", "Real", "Fake", "No face (real / fake)", *METRIC_LABELS.values(), "Inconclusive"]
    rows = [[_code(s["id"]), str(s["n_real"]), str(s["n_fake"]), _no_face(s),
             *(_with_ci(s["metrics"][k]) for k in METRIC_LABELS), _num(s["bands"]["inconclusive"])]
            for s in report["splits"]]
    return _table(header, rows)


def _branch_table(report: dict) -> str:
    with_baseline = report["settings"]["baseline"] is not None
    header = ["Split", "fused", *report["splits"][0]["branch_auc"]] + (["baseline pipeline"] if with_baseline else [])
    rows = []
    for s in report["splits"]:
        row = [_code(s["id"]), _num(s["metrics"]["auc"]["value"]), *(_num(v) for v in s["branch_auc"].values())]
        rows.append(row + ([_num(s["baseline"]["metrics"]["auc"]["value"])] if with_baseline else []))
    return _table(header, rows)


def _midpoint_table(report: dict) -> str:
    keys = ("auc", "ap", "accuracy", "tpr", "fpr")
    header = ["Split", "Real", "Fake", *(METRIC_LABELS[k] for k in keys)]
    rows = []
    for s in report["splits"]:
        m = s["metrics_no_face_at_midpoint"]
        rows.append([_code(s["id"]), str(m["n_real"]), str(m["n_fake"]), *(_with_ci(m["metrics"][k]) for k in keys)])
    return _table(header, rows)


def _baseline_table(report: dict) -> str:
    keys = ("auc", "ap", "eer", "tpr", "fpr")
    header = ["Split", *(f"{METRIC_LABELS[k]} {who}" for k in keys for who in ("ours", "baseline")), "No face ours", "No face baseline"]
    rows = []
    for s in report["splits"]:
        b = s["baseline"]
        cells = [_num(block["metrics"][k]["value"]) for k in keys for block in (s, b)]
        no_face_b = f"{b['counts']['real']['no_face']} / {b['counts']['fake']['no_face']}"
        rows.append([_code(s["id"]), *cells, _no_face(s), no_face_b])
    return _table(header, rows)


def _sources_table(report: dict) -> str:
    thr = report["scoring"]["fake_threshold"]
    header = ["Kind", "Real source", "Items", "Faces found", "No face", "Errors", f"FPR at {thr:.3f}", "Inconclusive", "Called REAL", "Mean score"]
    rows = [[r["kind"], _code(r["source"]), str(r["items"]), str(r["faces_found"]), str(r["no_face"]), str(r["errors"]),
             _with_ci(r["fpr"]), _num(r["bands"]["inconclusive"]), _num(r["bands"]["real"]), _num(r["mean_score"])]
            for r in report["real_sources"]]
    return _table(header, rows)


def _firmness_table(report: dict) -> str:
    rows = []
    for r in report["firmness"]:
        share = f"{r['wrong'] / r['items']:.1%}" if r["items"] else "n/a"
        rows.append([r["call"], "firm" if r["firm"] else "fragile", str(r["items"]), str(r["wrong"]), share])
    return _table(["Call", "Firmness", "Images", "Wrong", "Share wrong"], rows)


def _header(report: dict) -> str:
    w, t, s = report["weights"], report["totals"], report["scoring"]
    band = s["inconclusive_band"]
    rows = [
        ["Data", _code(report["data_dir"]) + (f", every file re-shared first ({_code(reshare)}: core/reshare.py)"
                                             if (reshare := report["settings"].get("reshare")) else "")],
        ["Weights", f"{_code(w['version'])} (trained: {'yes' if w['trained'] else 'no'})"],
        ["Thresholds", f"FAKE at or above {band[1]:.3f}, REAL at or below {band[0]:.3f}, INCONCLUSIVE between"],
        ["Code", _code(report["code_commit"])],
        ["Created", report["created"]],
        ["Command", _code(report["command"])],
        ["Items", f"{t['items']} evaluated: {t['errors']} failed to decode, {t['no_face']} without a judgeable face; "
                  f"{t['skipped']} files skipped as not media; {t['seconds']} s"],
    ]
    return _table(["", ""], rows)


def summary_text(report: dict) -> str:
    """What the command prints: the header, the detection table and the false positives per real source."""
    return "\n\n".join([_header(report), _detection_table(report), _sources_table(report)])


def _errors(report: dict) -> str:
    if not report["errors"]:
        return "None."
    return _table(["File", "Reason"], [[_code(e["path"]), _cell(e["reason"])] for e in report["errors"]])


def markdown(report: dict) -> str:
    """The human report: self-contained Markdown (tables only, no HTML, no embedded images)."""
    thr = report["scoring"]["fake_threshold"]
    settings = report["settings"]
    parts = [
        "# Evaluation report", _header(report),
        ("**The weights are untrained placeholders: these numbers describe chance, not the detector.**"
         if not report["weights"]["trained"] else ""),
        "## Detection (items with a judgeable face)",
        f"Score: the fused calibrated probability. Accuracy, TPR and FPR at the FAKE threshold {thr:.3f} "
        f"(score at or above it is a FAKE call). In brackets: bootstrap 95% interval ({settings['bootstrap_rounds']} "
        "resamples, reals and fakes resampled separately). A method's row is its fakes against all reals of the "
        "same media kind; videos are scored at video level after aggregation over frames. "
        "Inconclusive: share of scored items between the REAL and FAKE thresholds. n/a: needs both classes.",
        _detection_table(report),
        "## AUC per branch",
        "Which branch separates each method: the fused score is the larger of the two branch probabilities.",
        _branch_table(report),
        f"## No-face items scored at the threshold midpoint ({report['scoring']['no_face_midpoint']:.3f})",
        "The same splits with every error-free item, those without a judgeable face scored at the midpoint of the "
        "two thresholds (the app gives them no verdict, which is never a FAKE call).",
        _midpoint_table(report),
    ]
    if settings["baseline"] is not None:
        parts += [f"## Seed-style reference pipeline (classifier: {settings['baseline']})",
                  "Haar cascade, largest face only, every 5th video frame, plain mean (core.baseline). "
                  "Each pipeline is measured on the items where it found a face.", _baseline_table(report)]
    if report.get("firmness"):  # reports written before the firmness check have none
        parts += [
            "## Firm and fragile calls (images)",
            "Each judged face is scored again mirrored, and framed 10 % tighter and 15 % looser (core.analyze.RECROPS; "
            "at most the FIRMNESS_FACES most suspicious faces of an image). A FAKE call is *fragile* when one of these "
            "re-crops scores the image below the FAKE threshold, a REAL call when one scores it above the REAL "
            "threshold; the app notes a fragile FAKE call beside the verdict.",
            _firmness_table(report),
        ]
    parts += [
        "## False positives per real source",
        f"Share of each real source's scored items called FAKE at {thr:.3f}, with its bootstrap 95% interval.",
        _sources_table(report),
        "## Files that failed", _errors(report),
    ]
    if report["skipped"]:
        parts += ["## Files skipped (not images or videos)", "\n".join(f"- {_code(p)}" for p in report["skipped"])]
    parts += ["## Files", "items.csv (one row per file, to recompute any metric), report.json (schema in "
              "docs/evaluation.md), roc.png, reliability.png."]
    return "\n\n".join(p for p in parts if p) + "\n"


# --- plots ------------------------------------------------------------------------------------------

Series = tuple[str, list[float], list[float], list[str] | None]  # legend, x, y, point labels (markers when given)


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def unit_square_plot(title: str, xlabel: str, ylabel: str, series: list[Series], empty_note: str, size: int = 560) -> Image.Image:
    """A line plot over [0, 1] x [0, 1] with a dashed diagonal, a grid and a legend."""
    left, top, right, bottom = 64, 40, 16, 56
    width, height = size + left + right, size + top + bottom
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font, small = _font(15), _font(12)

    def xy(x: float, y: float) -> tuple[float, float]:
        return left + x * size, top + (1.0 - y) * size

    for i in range(6):
        v = i / 5
        draw.line([xy(v, 0), xy(v, 1)], fill=(225, 225, 225))
        draw.line([xy(0, v), xy(1, v)], fill=(225, 225, 225))
        draw.text((xy(v, 0)[0], top + size + 6), f"{v:.1f}", fill="black", font=small, anchor="mt")
        draw.text((left - 6, xy(0, v)[1]), f"{v:.1f}", fill="black", font=small, anchor="rm")
    for i in range(0, 40, 2):  # dashed diagonal: the chance line / perfect calibration
        draw.line([xy(i / 40, i / 40), xy((i + 1) / 40, (i + 1) / 40)], fill=(140, 140, 140))
    draw.rectangle([xy(0, 1), xy(1, 0)], outline="black")
    draw.text((width / 2, 12), title, fill="black", font=font, anchor="mt")
    draw.text((left + size / 2, height - 18), xlabel, fill="black", font=font, anchor="mm")
    label = Image.new("RGB", (size, 20), "white")
    ImageDraw.Draw(label).text((size / 2, 10), ylabel, fill="black", font=font, anchor="mm")
    img.paste(label.rotate(90, expand=True), (8, top))
    for (name, xs, ys, labels), color in zip(series, PALETTE):
        points = [xy(x, y) for x, y in zip(xs, ys)]
        if len(points) > 1:
            draw.line(points, fill=color, width=2)
        for (px, py), text in zip(points, labels or []):
            draw.ellipse([px - 4, py - 4, px + 4, py + 4], fill=color)
            draw.text((px + 6, py - 6), text, fill=color, font=small, anchor="ld")
    _legend(draw, [s[0] for s in series], xy(1, 0), small)
    if not series:
        draw.text(xy(0.5, 0.5), empty_note, fill="black", font=font, anchor="mm")
    return img


def _legend(draw: ImageDraw.ImageDraw, names: list[str], corner: tuple[float, float], font: ImageFont.ImageFont) -> None:
    """Legend box in the lower-right corner of the plot area."""
    if not names:
        return
    line = 18
    text_w = max(draw.textlength(n, font=font) for n in names)
    x1, y1 = corner[0] - 8, corner[1] - 8
    x0, y0 = x1 - text_w - 36, y1 - line * len(names) - 8
    draw.rectangle([x0, y0, x1, y1], fill="white", outline=(160, 160, 160))
    for i, (name, color) in enumerate(zip(names, PALETTE)):
        y = y0 + 4 + line * i + line / 2
        draw.line([(x0 + 6, y), (x0 + 26, y)], fill=color, width=3)
        draw.text((x0 + 32, y), name, fill="black", font=font, anchor="lm")


def _two_class(report: dict) -> list[dict]:
    return [s for s in report["splits"] if s["n_real"] and s["n_fake"]][: len(PALETTE)]


def roc_plot(report: dict) -> Image.Image:
    series = [(f"{s['id']} (AUC {_num(s['metrics']['auc']['value'])})", s["roc"]["fpr"], s["roc"]["tpr"], None)
              for s in _two_class(report)]
    return unit_square_plot("ROC, fused score (items with a face)", "False positive rate (reals called fake)",
                            "True positive rate (fakes caught)", series, "No split has both real and fake items")


def reliability_plot(report: dict) -> Image.Image:
    series = []
    for s in _two_class(report):
        if s["method"] == "all":
            filled = [b for b in s["reliability"] if b["count"]]
            series.append((f"{s['id']} (ECE {_num(s['metrics']['ece']['value'])})",
                           [b["mean_score"] for b in filled], [b["fraction_fake"] for b in filled],
                           [f"n={b['count']}" for b in filled]))
    return unit_square_plot("Reliability, fused score (equal-width bins, n = items per bin)", "Mean predicted probability of manipulation",
                            "Observed fraction of fakes", series, "No split has both real and fake items")
