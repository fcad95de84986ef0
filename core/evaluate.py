"""`python -m core.evaluate DATA_DIR`: score a labelled folder with the app's own pipeline and report.

DATA_DIR holds `real/` and `fake/` (any depth, images and videos mixed). The first folder level under
`fake/` names the manipulation method and the first level under `real/` names the real source; files
placed directly in `real/` or `fake/` belong to the group "unsorted". Every file goes through
`core.analyze` exactly as an upload does (`analyze_image_bytes`, `analyze_video`), the score is the
fused calibrated probability, and the report (JSON schema, Markdown tables, per-item CSV, ROC and
reliability PNGs) is written by `core.eval_report`. The schema and the rules are in docs/evaluation.md.
"""
from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from itertools import zip_longest
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from core import code_commit, eval_report, metrics
from core.analyze import (
    DEFAULT_VIDEO_FRAMES, AnalysisResult, Engine, analyze_image_bytes, analyze_video, fragile_threshold, load_engine,
)
from core.baseline import BaselineEngine, baseline_image, baseline_video, load_baseline
from core.media import IMAGE_TYPES, VIDEO_TYPES, decode_image, sniff_kind
from core.model import WEIGHTS_DIR
from core.reshare import Reshare, parse_reshare, reshare_image, reshare_video

__all__ = [
    "Entry", "ItemRow", "discover", "limit_per_class", "evaluate_entry", "build_splits",
    "metric_block", "summarize_split", "real_source_table", "evaluate", "parse_args", "main",
    "SCHEMA", "BRANCHES", "NO_FACE_RULE",
]

SCHEMA = "fdet-eval/1"
BRANCHES = ("blend", "synthetic")  # extra CSV columns and per-branch AUC; the score itself is "fused"
UNSORTED = "unsorted"
NO_FACE_RULE = (
    "Main metrics use the items where a face large enough to judge was found. Items without one are "
    "counted per split (no_face) and enter a second set of metrics, metrics_no_face_at_midpoint, "
    "scored at the midpoint of the REAL and FAKE thresholds: what the app does with them, "
    "an undecided answer that is never a FAKE call."
)


@dataclass(frozen=True)
class Entry:
    """One file of the data folder."""

    path: Path
    rel: str  # POSIX path relative to DATA_DIR, the item's identity in every output
    label: str  # "real" or "fake"
    group: str  # the method (fakes) or the real source (reals): first folder level below real/ or fake/
    kind: str  # "image" or "video"


@dataclass
class ItemRow:
    """One line of items.csv; the column order is the field order."""

    path: str
    label: str
    method: str
    kind: str
    score: float | None = None  # fused: None when no judgeable face (or on error)
    blend: float | None = None
    synthetic: float | None = None
    whole_image: float | None = None  # fused score of the whole image, images without any face only
    range_low: float | None = None  # images: lowest and highest fused score over the re-crops (core.analyze.RECROPS)
    range_high: float | None = None
    verdict: str = ""
    faces_found: int = 0  # faces large enough to judge, summed over the sampled frames
    frames_used: int = 0  # frames with at least one judged face (1 or 0 for an image)
    frames_sampled: int = 0
    seconds: float = 0.0  # wall time of the app pipeline for this file, decoding included
    baseline: float | None = None
    baseline_error: str = ""
    error: str = ""

    @property
    def y(self) -> int:
        return int(self.label == "fake")


# --- finding the files -------------------------------------------------------------------------

def _kind(path: Path) -> str | None:
    """By content first; by extension for files whose content is unrecognised, so that a corrupt
    `.jpg` is evaluated (and listed as failed) instead of skipped."""
    with path.open("rb") as fh:
        kind = sniff_kind(fh.read(16))
    if kind:
        return kind
    ext = path.suffix.lower().lstrip(".")
    return "image" if ext in IMAGE_TYPES else "video" if ext in VIDEO_TYPES else None


def discover(data_dir: Path) -> tuple[list[Entry], list[str]]:
    """Every media file below real/ and fake/, sorted, and the files skipped as not media."""
    if not any((data_dir / label).is_dir() for label in ("real", "fake")):
        raise SystemExit(f"{data_dir} has neither real/ nor fake/: point DATA_DIR at a folder laid out as real/<source>/, fake/<method>/")
    entries, skipped = [], []
    for label in ("real", "fake"):
        root = data_dir / label
        if not root.is_dir():
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(data_dir).as_posix()
            parts = path.relative_to(root).parts
            kind = None if any(part.startswith(".") for part in parts) else _kind(path)
            if kind is None:
                skipped.append(rel)
                continue
            entries.append(Entry(path, rel, label, parts[0] if len(parts) > 1 else UNSORTED, kind))
    return entries, skipped


def limit_per_class(entries: list[Entry], limit: int | None) -> list[Entry]:
    """At most `limit` files per label, taken round-robin over the groups so that every method
    and every real source is represented in a quick run."""
    if limit is None:
        return entries
    kept = []
    for label in ("real", "fake"):
        groups: dict[str, list[Entry]] = {}
        for entry in entries:
            if entry.label == label:
                groups.setdefault(entry.group, []).append(entry)
        interleaved = [e for row in zip_longest(*groups.values()) for e in row if e is not None]
        kept += interleaved[:limit]
    return kept


# --- running the pipeline ----------------------------------------------------------------------

def _fill(row: ItemRow, result: AnalysisResult) -> None:
    scores = result.branch_scores
    row.score = scores.get("fused")
    row.blend, row.synthetic = (scores.get(name) for name in BRANCHES)
    row.whole_image = result.whole_image.get("fused") if result.whole_image else None
    row.range_low, row.range_high = result.score_range or (None, None)
    row.verdict = result.verdict.label
    row.faces_found = sum(1 for face in result.faces if face.scores)
    row.frames_used = sum(1 for frame in result.frames if frame.score is not None)
    row.frames_sampled = len(result.frames)


def _run_baseline(row: ItemRow, entry: Entry, baseline: BaselineEngine, data: bytes | None, video: Path) -> None:
    try:
        if entry.kind == "image":
            score = baseline_image(baseline, decode_image(data))
        else:
            score = baseline_video(baseline, video)
    except Exception as exc:  # the reference pipeline failing on one file must not stop the run; recorded per item
        row.baseline_error = f"{type(exc).__name__}: {exc}"
        return
    row.baseline = None if score is None else round(score, 4)


def _inputs(entry: Entry, reshare: Reshare | None, tmp: str | None) -> tuple[bytes | None, Path]:
    """(image bytes, video path) to analyze: the file's own, or its re-shared copy (a video's in `tmp`)."""
    if entry.kind == "image":
        data = entry.path.read_bytes()
        return (reshare_image(data, reshare) if reshare else data), entry.path
    return None, reshare_video(entry.path, Path(tmp) / "reshared.mp4", reshare) if reshare else entry.path


def evaluate_entry(engine: Engine, entry: Entry, frames: int, baseline: BaselineEngine | None = None,
                   reshare: Reshare | None = None) -> ItemRow:
    """Analyze one file as the app does (or its `reshare`d copy, made in a temporary folder). Any
    failure is recorded in `row.error`, never raised: a batch run over thousands of files must go
    on past one corrupt file."""
    row = ItemRow(entry.rel, entry.label, entry.group, entry.kind)
    with tempfile.TemporaryDirectory(prefix="fdet-reshare-") if reshare else nullcontext() as tmp:
        start = time.perf_counter()
        try:
            data, video = _inputs(entry, reshare, tmp)
            start = time.perf_counter()  # `seconds` times the app's pipeline, not the making of a copy
            result = analyze_image_bytes(engine, data) if entry.kind == "image" else analyze_video(engine, video, frames)
        except Exception as exc:  # MediaError carries a user-worded reason; anything else is named by its type
            row.error = f"{type(exc).__name__}: {exc}"
            return row
        finally:
            row.seconds = round(time.perf_counter() - start, 3)
        _fill(row, result)
        if baseline is not None:
            _run_baseline(row, entry, baseline, data, video)
    return row


# --- splits and metrics ------------------------------------------------------------------------

def build_splits(rows: list[ItemRow]) -> list[tuple[str, str, list[ItemRow]]]:
    """(kind, method, rows) per media kind: every method's fakes against all reals of that kind,
    then all fakes against all reals ("all"); plus kind "all" (images and videos pooled, video
    scores being video-level) when both kinds are present."""
    splits = []
    kinds = sorted({r.kind for r in rows})
    for kind in kinds + (["all"] if len(kinds) > 1 else []):
        pool = [r for r in rows if kind in ("all", r.kind)]
        reals = [r for r in pool if r.label == "real"]
        methods = sorted({r.method for r in pool if r.label == "fake"}) if kind != "all" else []
        for method in methods:
            splits.append((kind, method, reals + [r for r in pool if r.label == "fake" and r.method == method]))
        splits.append((kind, "all", pool))
    return splits


def _metric_fns(threshold: float, bins: int) -> dict[str, metrics.Metric]:
    return {
        "auc": metrics.roc_auc,
        "ap": metrics.average_precision,
        "eer": lambda y, s: metrics.eer(y, s)[0],
        "accuracy": lambda y, s: metrics.rates_at(y, s, threshold)["accuracy"],
        "tpr": lambda y, s: metrics.rates_at(y, s, threshold)["tpr"],
        "fpr": lambda y, s: metrics.rates_at(y, s, threshold)["fpr"],
        "brier": metrics.brier,
        "ece": lambda y, s: metrics.ece(y, s, bins),
    }


def metric_block(y: np.ndarray, s: np.ndarray, threshold: float, rounds: int, seed: int, bins: int) -> dict:
    """Every metric with its bootstrap 95% interval, and the class counts it was computed on."""
    fns = _metric_fns(threshold, bins)
    ci = metrics.bootstrap_ci(fns, y, s, rounds, seed)
    return {
        "n_real": int((y == 0).sum()),
        "n_fake": int((y == 1).sum()),
        "metrics": {name: {"value": fn(y, s), "ci": list(ci[name])} for name, fn in fns.items()},
        "eer_threshold": metrics.eer(y, s)[1],
    }


def _counts(rows: list[ItemRow], scored_by: str = "score") -> dict:
    out = {}
    for label in ("real", "fake"):
        mine = [r for r in rows if r.label == label]
        ok = [r for r in mine if not r.error]
        with_face = sum(1 for r in ok if getattr(r, scored_by) is not None)
        out[label] = {"items": len(mine), "errors": len(mine) - len(ok), "faces_found": with_face, "no_face": len(ok) - with_face}
    return out


def _labels_scores(rows: list[ItemRow], column: str, fill: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of the error-free rows; rows without a score are dropped or set to `fill`."""
    pairs = [(r.y, getattr(r, column)) for r in rows if not r.error]
    pairs = [(y, fill if v is None else v) for y, v in pairs if v is not None or fill is not None]
    return np.array([p[0] for p in pairs], int), np.array([p[1] for p in pairs], float)


def _band_shares(scores: np.ndarray, thresholds: dict[str, float]) -> dict[str, float]:
    """Share of scored items the app would call REAL, INCONCLUSIVE and FAKE."""
    if not scores.size:
        return {"real": float("nan"), "inconclusive": float("nan"), "fake": float("nan")}
    fake = scores >= thresholds["fake"]
    real = scores <= thresholds["real"]
    return {"real": float(real.mean()), "inconclusive": float((~fake & ~real).mean()), "fake": float(fake.mean())}


def summarize_split(kind: str, method: str, rows: list[ItemRow], thresholds: dict[str, float], rounds: int, seed: int,
                    bins: int, with_baseline: bool) -> dict:
    """The JSON record of one split (see docs/evaluation.md)."""
    def block(y: np.ndarray, s: np.ndarray) -> dict:
        return metric_block(y, s, thresholds["fake"], rounds, seed, bins)

    y, s = _labels_scores(rows, "score")
    midpoint = (thresholds["real"] + thresholds["fake"]) / 2.0
    fpr, tpr, _ = metrics.roc_curve(y, s)
    split = {
        "id": f"{kind}/{method}", "kind": kind, "method": method,
        "counts": _counts(rows),
        "bands": _band_shares(s, thresholds),
        **block(y, s),
        "metrics_no_face_at_midpoint": block(*_labels_scores(rows, "score", midpoint)),
        "branch_auc": {name: metrics.roc_auc(*_labels_scores(rows, name)) for name in BRANCHES},
        "roc": {"fpr": np.round(fpr, 4).tolist(), "tpr": np.round(tpr, 4).tolist()},
        "reliability": metrics.reliability(y, s, bins),
    }
    if with_baseline:
        split["baseline"] = {"counts": _counts(rows, "baseline"), **block(*_labels_scores(rows, "baseline"))}
    return split


def firmness_table(rows: list[ItemRow], thresholds: dict[str, float]) -> list[dict]:
    """Image FAKE and REAL calls split by firmness (core.analyze.fragile_threshold): how many, how
    many wrong. Fragile calls are those a few pixels of re-cropping or a mirror move across their threshold."""
    table = []
    for call in ("FAKE", "REAL"):
        made = [r for r in rows if r.kind == "image" and r.verdict == call and r.range_low is not None]
        for firm in (True, False):
            mine = [r for r in made if (fragile_threshold(call, [r.range_low, r.range_high], thresholds) is None) == firm]
            wrong = sum(1 for r in mine if (r.label == "fake") != (call == "FAKE"))
            table.append({"call": call, "firm": firm, "items": len(mine), "wrong": wrong})
    return table


def real_source_table(rows: list[ItemRow], thresholds: dict[str, float], rounds: int, seed: int) -> list[dict]:
    """False-positive rate at the FAKE threshold on each real source, per media kind."""
    fpr = {"fpr": lambda y, s: metrics.rates_at(y, s, thresholds["fake"])["fpr"]}
    table = []
    for kind, source in sorted({(r.kind, r.method) for r in rows if r.label == "real"}):
        mine = [r for r in rows if r.label == "real" and r.kind == kind and r.method == source]
        y, s = _labels_scores(mine, "score")
        table.append({
            "kind": kind, "source": source, **_counts(mine)["real"],
            "fpr": {"value": fpr["fpr"](y, s), "ci": list(metrics.bootstrap_ci(fpr, y, s, rounds, seed)["fpr"])},
            "bands": _band_shares(s, thresholds),
            "mean_score": float(s.mean()) if s.size else float("nan"),
        })
    return table


# --- the run -----------------------------------------------------------------------------------

def evaluate(args: argparse.Namespace, argv: Sequence[str]) -> tuple[dict, list[ItemRow]]:
    """Run every file and assemble the report dictionary."""
    data_dir = args.data_dir.resolve()
    entries, skipped = discover(data_dir)
    entries = limit_per_class(entries, args.limit)
    if not entries:
        raise SystemExit(f"No image or video found below {data_dir}/real or {data_dir}/fake.")
    engine = load_engine(args.weights)
    baseline = load_baseline(args.weights, args.baseline_classifier) if args.baseline else None
    started = time.perf_counter()
    rows = [evaluate_entry(engine, e, args.frames, baseline, args.reshare) for e in tqdm(entries, desc="evaluate", unit="file", file=sys.stderr)]
    det = engine.detector
    thresholds = det.thresholds
    splits = build_splits(rows)
    report = {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "core.evaluate", *argv]),
        "code_commit": code_commit(),
        "data_dir": str(data_dir),
        "weights": {"dir": str(Path(args.weights).resolve()), "version": det.version, "trained": det.trained, "thresholds": thresholds},
        "settings": {"frames": args.frames, "limit_per_class": args.limit, "bootstrap_rounds": args.bootstrap,
                     "seed": args.seed, "ece_bins": args.bins, "baseline": args.baseline_classifier if args.baseline else None,
                     "reshare": args.reshare.describe() if args.reshare else None},
        "scoring": {"score": "fused", "fake_threshold": thresholds["fake"],
                    "inconclusive_band": [thresholds["real"], thresholds["fake"]],
                    "no_face_rule": NO_FACE_RULE, "no_face_midpoint": (thresholds["real"] + thresholds["fake"]) / 2.0},
        "totals": {"items": len(rows), "errors": sum(1 for r in rows if r.error), "skipped": len(skipped),
                   "no_face": sum(1 for r in rows if not r.error and r.score is None),
                   "seconds": round(time.perf_counter() - started, 1)},
        "splits": [summarize_split(k, m, rs, thresholds, args.bootstrap, args.seed, args.bins, args.baseline) for k, m, rs in splits],
        "real_sources": real_source_table(rows, thresholds, args.bootstrap, args.seed),
        "firmness": firmness_table(rows, thresholds),
        "errors": [{"path": r.path, "reason": r.error} for r in rows if r.error],
        "skipped": skipped,
    }
    return report, rows


def _reshare(spec: str) -> Reshare:
    try:
        return parse_reshare(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m core.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="folder with real/ and fake/ (fake/<method>/, real/<source>/)")
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR, help="detector weights folder (default: weights/)")
    parser.add_argument("--out", type=Path, help="report folder (default: runs/eval/<UTC timestamp>)")
    parser.add_argument("--frames", type=int, default=DEFAULT_VIDEO_FRAMES, help="frames sampled per video, as in the app")
    parser.add_argument("--limit", type=int, help="at most N files per class (real, fake), spread over the groups: quick runs")
    parser.add_argument("--baseline", action="store_true", help="also score every file with the seed-style reference pipeline")
    parser.add_argument("--baseline-classifier", default="ours", choices=("ours", "resnet50"),
                        help="classifier at the end of the reference pipeline (default: ours, so only the pipeline differs)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--bins", type=int, default=10, help="equal-width bins of the ECE and the reliability diagram")
    parser.add_argument("--reshare", type=_reshare, metavar="SPEC",
                        help="score a re-shared copy of every file instead: scale=S (side factor), jpeg=Q (photos), crf=C (H.264 video), "
                             "e.g. scale=0.5,jpeg=60,crf=32 (core/reshare.py)")
    parser.add_argument("--copy-to", type=Path, help="also copy the report files here (e.g. weights/eval for the Model card page)")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = Path("runs/eval") / datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    report, rows = evaluate(args, argv)
    files = eval_report.write_all(report, [asdict(r) for r in rows], [f.name for f in fields(ItemRow)], args.out)
    print(eval_report.summary_text(report))
    print(f"Report written to {args.out}/ ({', '.join(files)})")
    if args.copy_to:
        args.copy_to.mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copy2(args.out / name, args.copy_to / name)
        print(f"Copied to {args.copy_to}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
