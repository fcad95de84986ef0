"""Command line: analyze files and folders into the case store, and export reports.

    python -m core.cli scan PATH... [--out REPORT_DIR] [--db URL] [--analyst NAME] [--frames N]
                                    [--batch NAME] [--keep-media] [--no-charts] [--weights DIR]
                                    [--engine dask [--scheduler tcp://HOST:PORT] [--workers N]]
    python -m core.cli export (--case ID... | --batch ID | --all) --out REPORT_DIR [--db URL] [--no-charts]
    python -m core.cli audit [--failed] [--limit N] [--db URL]      # the store's audit trail as CSV

The same store as the app (see docs/cases.md): a file already analyzed is not analyzed again.
Exit status: 0 every file done, 1 some files failed, 2 usage or store errors.
"""
from __future__ import annotations

import argparse
import functools
import getpass
import hashlib
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

from core.analyze import DEFAULT_VIDEO_FRAMES, load_engine
from core.cases import STORE_ERRORS, Batch, Case, CaseFilter, CaseStore, open_store
from core.casework import scan_bytes
from core.media import MediaError, sniff_kind
from core.model import METADATA_FILE, WEIGHTS_DIR
from core.report import export_audit_csv, write_exports

__all__ = ["main", "media_files"]

EXPORT_ALL_LIMIT = 100_000


def media_files(paths: Sequence[Path]) -> Iterator[tuple[Path, str | None]]:
    """(file, "image" / "video" / None) for every file named or found below a named folder
    (sorted, hidden files and folders left out); the kind is sniffed from the content."""
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            found = [path]
        for file in found:
            try:
                with open(file, "rb") as fh:
                    yield file, sniff_kind(fh.read(16))
            except OSError:
                yield file, None


def _at_least_one(text: str) -> int:
    """argparse type: a whole number >= 1, refused before anything is opened or created."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _weights_folder(text: str) -> Path:
    """argparse type: a folder holding detector.json, refused before the store is opened."""
    folder = Path(text)
    if not (folder / METADATA_FILE).is_file():
        raise argparse.ArgumentTypeError(f"{text} holds no {METADATA_FILE}: not a detector folder")
    return folder


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.cli", description="Deepfake forensics cases from the command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help="store URL (default: $DEEPFAKE_DB_URL, else the SQLite file in the data folder)")
    common.add_argument("--no-charts", action="store_true", help="HTML report without Plotly charts (a much smaller file)")
    scan = sub.add_parser("scan", parents=[common], help="analyze files or folders into the store")
    scan.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    scan.add_argument("--out", type=Path, help="write report.html, cases.json and cases.csv here")
    scan.add_argument("--analyst", default=os.environ.get("DEEPFAKE_ANALYST") or getpass.getuser(),
                      help="name recorded with the cases (default: $DEEPFAKE_ANALYST or the login name)")
    scan.add_argument("--frames", type=_at_least_one, default=DEFAULT_VIDEO_FRAMES, help="frames sampled per video")
    scan.add_argument("--batch", help="batch name (default: 'scan <UTC time>')")
    scan.add_argument("--keep-media", action="store_true", help="also keep the original files in the store")
    scan.add_argument("--weights", type=_weights_folder, help="detector folder (default: the shipped weights/); with "
                      "--scheduler, a path every worker can read")
    scan.add_argument("--engine", choices=("local", "dask"), default="local",
                      help="local: this process, file by file; dask: a Dask cluster (see docs/scale.md)")
    scan.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="with --engine dask: an existing cluster (default: a local one)")
    scan.add_argument("--workers", type=_at_least_one, default=2,
                      help="with --engine dask and no --scheduler: local worker processes")
    export = sub.add_parser("export", parents=[common], help="write reports of stored cases")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--case", type=int, nargs="+", metavar="ID")
    which.add_argument("--batch", type=int, metavar="ID")
    which.add_argument("--all", action="store_true")
    export.add_argument("--out", type=Path, required=True)
    audit = sub.add_parser("audit", help="print the store's audit trail (newest first) as CSV")
    audit.add_argument("--db", help="store URL (default: $DEEPFAKE_DB_URL, else the SQLite file in the data folder)")
    audit.add_argument("--failed", action="store_true", help="only files that could not be analyzed")
    audit.add_argument("--limit", type=_at_least_one, default=1000, help="latest N entries")
    return parser


def _scan(store: CaseStore, args: argparse.Namespace) -> int:
    name = args.batch or f"scan {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    files = list(media_files(args.paths))
    if args.engine == "dask":
        from core.scale import ScanError, scan_with_args  # dask is imported only by this engine

        try:
            summary, batch_id = scan_with_args(store, args, lambda: store.create_batch(name, args.analyst).id, files)
        except ScanError as exc:
            print(exc, file=sys.stderr)
            return 2
        done, failed = summary.case_ids, len(summary.failures)
    else:
        batch_id = store.create_batch(name, args.analyst).id
        done, failed = _scan_here(store, args, batch_id, files)
    batch = store.batch(batch_id)
    print(f"Batch #{batch.id} '{batch.name}': {len(done)} case(s), {failed} failed, store {store.url}")
    if args.out:
        _write(args, [store.get(i) for i in dict.fromkeys(done)], batch)
    return 1 if failed else 0


def _scan_here(store: CaseStore, args: argparse.Namespace, batch_id: int, files: list[tuple[Path, str | None]]) -> tuple[list[int], int]:
    """Scan file by file in this process: (case ids, number of failures)."""
    engine = functools.cache(lambda: load_engine(args.weights or WEIGHTS_DIR))  # on first use: stored files need no model
    done: list[int] = []
    failed = 0
    for n, (path, kind) in enumerate(files, 1):
        prefix = f"[{n}/{len(files)}]"
        if kind is None:
            print(f"{prefix} skipped   {path}: not a supported image or video (content checked, not the name)")
            continue
        data: bytes | None = None  # stays None when the file cannot be read (an empty file is b"")
        try:
            data = path.read_bytes()
            saved = scan_bytes(store, engine, data, path.name, args.analyst, batch_id=batch_id,
                               frames=args.frames, keep_media=args.keep_media)
        except STORE_ERRORS:
            raise  # the store, not the file: main() stops the scan with status 2
        except Exception as exc:  # one damaged or hostile file must not stop the scan (as on Dask and the Batch page)
            reason = str(exc) if isinstance(exc, (MediaError, OSError)) else f"unexpected error ({type(exc).__name__}: {exc})"
            failed += 1
            print(f"{prefix} FAILED    {path}: {reason}")
            _log_failure(store, data, path, args.analyst, reason, batch_id)
            continue
        case = saved.case
        done.append(case.id)
        score = "  –  " if case.score is None else f"{case.score:.3f}"
        status = "" if saved.created else " (already in the store)"
        print(f"{prefix} {case.verdict:<12} {score}  case #{case.id}  {path}{status}")
    return done, failed


def _log_failure(store: CaseStore, data: bytes | None, path: Path, analyst: str, error: str, batch_id: int | None) -> None:
    """The same audit entry as a Dask scan writes (no hash when the file could not be read). A store
    error here is reported and the scan goes on: the file's failure was already printed."""
    try:
        store.log_failure("" if data is None else hashlib.sha256(data).hexdigest(), str(path), analyst, error, batch_id)
    except STORE_ERRORS as exc:
        reason = getattr(exc, "orig", None) or exc
        print(f"warning: the failure of {path} could not be recorded in the audit trail: {reason}", file=sys.stderr)


def _write(args: argparse.Namespace, cases: list[Case], batch: Batch | None = None) -> None:
    paths = write_exports(args.out, cases, batch, charts_inline=not args.no_charts)
    print("Wrote " + ", ".join(str(p) for p in paths.values()))


def _export(store: CaseStore, args: argparse.Namespace) -> int:
    batch = None
    if args.case:
        ids = args.case
    elif args.batch is not None:
        batch = store.batch(args.batch)
        ids = [c.id for c in store.list_cases(CaseFilter(batch_id=batch.id, descending=False, limit=EXPORT_ALL_LIMIT))]
    else:
        ids = [c.id for c in store.list_cases(CaseFilter(descending=False, limit=EXPORT_ALL_LIMIT))]
    _write(args, [store.get(i) for i in ids], batch)
    return 0


def _audit(store: CaseStore, args: argparse.Namespace) -> int:
    entries = store.audit_trail(args.limit, action="failed" if args.failed else None)
    sys.stdout.write(export_audit_csv(entries))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = {"scan": _scan, "export": _export, "audit": _audit}[args.command]
    try:
        store = open_store(args.db)
        try:
            return command(store, args)
        finally:
            store.close()
    except (LookupError, ValueError) as exc:  # unknown case / batch, bad analyst name
        print(f"error: {exc}", file=sys.stderr)
    except STORE_ERRORS as exc:  # unreachable, newer than this tool, or failing mid-run (saved cases stay saved)
        print(f"store error: {exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
