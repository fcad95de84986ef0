"""Batch scanning on Dask: the `core.analyze` pipeline on many processes or machines, one case store.

    python -m core.cli scan PATH... --engine dask [--scheduler tcp://HOST:PORT] [--workers N]
    python -m core.scale sample FOLDER [--images N] [--videos N]     (a generated folder to measure on)

Who does what (docs/scale.md has the why and the numbers):
- The client (the CLI process) lists the files and hashes each one (sha256) before submitting it.
  Files already in the store are only added to the batch: a rerun of an interrupted scan resumes
  where it stopped without analyzing or even shipping those files, and two copies of one file in
  the same scan are analyzed once.
- New files go out as tasks of a few images (a video alone). A worker process loads the engine
  once (cached per weights folder, torch and OpenCV on one thread) and returns, per file, the
  result with its thumbnail, heatmaps and forensic report, or the file's error.
- The client is the only writer: it saves each result as it arrives (idempotent, keyed by sha256)
  and shows a progress bar. Dask reruns the tasks of a worker that died on another worker; a task
  that still fails as a whole is split into one task per file, so a bad file fails alone and is
  recorded with its error (audit trail) while the scan goes on.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np
from dask.distributed import Client, Future, LocalCluster, as_completed
from tqdm import tqdm

from core.analyze import DEFAULT_VIDEO_FRAMES, Engine, analyze_image_bytes, analyze_video, file_digest, load_engine
from core.cases import CaseStore
from core.casework import Evidence, evidence
from core.media import MediaError
from core.model import WEIGHTS_DIR

__all__ = [
    "FILES_PER_TASK", "FileTask", "Analyzed", "Failed", "ScanSettings", "ScanSummary", "ScanError",
    "analyze_files", "loaded_engines", "dask_client", "scan_on_dask", "scan_with_args", "write_sample_folder", "main",
]

FILES_PER_TASK = 8  # images per task: amortises the scheduler's per-task cost (~1 ms), still balances well
TASKS_PER_THREAD = 3  # tasks queued per worker thread: no worker waits, and few results wait in memory
CONNECT_TIMEOUT_S = 30


class ScanError(RuntimeError):
    """The cluster cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class FileTask:
    path: str  # absolute: workers must see the same path (local disk or a shared mount)
    kind: str  # "image" or "video"
    sha256: str  # computed by the client; the worker checks the bytes it reads against it


@dataclass(frozen=True)
class Analyzed:
    """Everything `CaseStore.save` needs, computed on the worker so the writer only writes."""

    task: FileTask
    result: dict  # AnalysisResult.to_dict()
    evidence: Evidence  # thumbnail, heatmaps, forensic report
    seconds: float  # worker wall time for this file, decode to forensics
    cpu_seconds: float  # the worker process's CPU time for it: its cost in core-seconds, whatever else runs


@dataclass(frozen=True)
class Failed:
    task: FileTask
    error: str


Outcome = Analyzed | Failed


# ---------------------------------------------------------------- worker side

_engines: dict[str, Engine] = {}
_engine_lock = threading.Lock()  # one analysis at a time per process, whatever its thread count


def _worker_engine(weights_dir: str | None) -> Engine:
    """The engine of this worker process, loaded on its first task only."""
    key = str(Path(weights_dir or WEIGHTS_DIR).resolve())
    if key not in _engines:
        cv2.setNumThreads(1)  # one process per core scales better than threads inside each
        _engines[key] = load_engine(key, threads=1)  # whatever DEEPFAKE_TORCH_THREADS says
    return _engines[key]


def loaded_engines() -> list[str]:
    """Weights folders whose engine this process holds (run it on the workers: `client.run`)."""
    return sorted(_engines)


def _analyze_file(engine: Engine, task: FileTask, frames: int) -> Outcome:
    start, cpu = time.perf_counter(), time.process_time()
    try:
        data = Path(task.path).read_bytes()
        if hashlib.sha256(data).hexdigest() != task.sha256:
            raise MediaError("The file changed after the scan listed it: scan it again.")
        if task.kind == "image":
            result = analyze_image_bytes(engine, data)
        else:
            result = analyze_video(engine, data, frames)
    except (MediaError, OSError) as exc:  # the file's own fault: recorded, the scan goes on
        return Failed(task, str(exc))
    found = evidence(engine.detector, result, data)
    return Analyzed(task, result.to_dict(), found, time.perf_counter() - start, time.process_time() - cpu)


def analyze_files(tasks: Sequence[FileTask], frames: int = DEFAULT_VIDEO_FRAMES, weights_dir: str | None = None) -> list[Outcome]:
    """The Dask task: analyze a few files with this worker's engine. Any other exception fails the
    whole task, which Dask retries and the client then splits file by file."""
    with _engine_lock:
        engine = _worker_engine(weights_dir)
        return [_analyze_file(engine, task, frames) for task in tasks]


# ---------------------------------------------------------------- client side


@dataclass(frozen=True)
class ScanSettings:
    analyst: str
    batch_id: int | None = None
    frames: int = DEFAULT_VIDEO_FRAMES
    keep_media: bool = False
    weights_dir: str | None = None  # None: each worker's own default weights folder
    files_per_task: int = FILES_PER_TASK


@dataclass
class ScanSummary:
    files: int = 0  # files named or found, media or not
    analyzed: int = 0  # new cases
    stored_before: int = 0  # already cases: added to the batch, not analyzed
    duplicates: int = 0  # same content as another file of this scan
    not_media: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, error)
    faces: int = 0
    frames: int = 0  # an image counts one frame
    verdicts: Counter = field(default_factory=Counter)
    models: Counter = field(default_factory=Counter)
    worker_s: Counter = field(default_factory=Counter)  # worker wall time by kind
    worker_cpu_s: Counter = field(default_factory=Counter)  # worker CPU time by kind
    kinds: Counter = field(default_factory=Counter)  # analyzed files by kind
    case_ids: list[int] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 0

    def add(self, outcome: Analyzed, case_id: int, created: bool) -> None:
        self.case_ids.append(case_id)
        if not created:  # another writer stored it meanwhile: counted once, by whoever made it
            self.stored_before += 1
            return
        result = outcome.result
        self.analyzed += 1
        self.frames += len(result["frames"])
        self.faces += sum(len(frame["faces"]) for frame in result["frames"])
        self.verdicts[result["verdict"]["label"]] += 1
        self.models[result["model_version"]] += 1
        self.kinds[outcome.task.kind] += 1
        self.worker_s[outcome.task.kind] += outcome.seconds
        self.worker_cpu_s[outcome.task.kind] += outcome.cpu_seconds

    def lines(self) -> list[str]:
        rate = self.seconds if self.seconds > 0 else float("nan")
        verdicts = ", ".join(f"{label} {n}" for label, n in self.verdicts.most_common()) or "none"
        per_file = ", ".join(
            f"{self.worker_s[kind] / n:.2f} s ({self.worker_cpu_s[kind] / n:.2f} s CPU) per {kind}"
            for kind, n in sorted(self.kinds.items())
        ) or "nothing analyzed"
        lines = [
            f"Files: {self.files}: {self.analyzed} analyzed, {self.stored_before} already in the store, "
            f"{self.duplicates} duplicate(s), {self.not_media} not media, {len(self.failures)} failed",
            f"Faces: {self.faces} in {self.frames} frame(s); verdicts: {verdicts}",
            f"Throughput: {self.analyzed / rate:.2f} files/s, {self.frames / rate:.2f} frames/s "
            f"({self.seconds:.1f} s on {self.workers} worker(s)); worker time {per_file}",
        ]
        if len(self.models) > 1:
            lines.append(f"WARNING: workers used different models: {dict(self.models)}; give them the same weights.")
        return lines


@contextmanager
def dask_client(scheduler: str | None = None, workers: int = 2) -> Iterator[Client]:
    """A client of the cluster at `scheduler`, else of a new local cluster of `workers` processes
    with one thread each (the engine is not shared between threads)."""
    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            raise ScanError(
                f"Cannot reach the Dask scheduler at {scheduler}: {exc}. Start one with `dask scheduler` and "
                f"workers with `dask worker {scheduler} --nthreads 1` from the repository folder, "
                "or leave out --scheduler to use a local cluster."
            ) from None
        with client:
            yield client
        return
    if workers < 1:
        raise ScanError("--workers must be at least 1.")
    with _spawn_safe_main(), LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            yield client


@contextmanager
def _spawn_safe_main() -> Iterator[None]:
    """Spawned worker processes re-run the parent's `__main__` file; when that is a plain script (a
    Streamlit page run by AppTest, a notebook), hide its path so workers start clean."""
    main = sys.modules["__main__"]
    path = getattr(main, "__file__", None)
    if path is None or getattr(main, "__spec__", None) is not None:
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


class _Scan:
    """One scan: hash and plan on the way, keep a bounded number of tasks in flight, write results
    as they arrive. The only object that writes to the store."""

    def __init__(self, store: CaseStore, client: Client, settings: ScanSettings, bar: tqdm,
                 on_outcome: Callable[[Outcome], None] | None) -> None:
        self.store, self.client, self.settings, self.bar, self.on_outcome = store, client, settings, bar, on_outcome
        self.summary = ScanSummary()
        self.seen: set[str] = set()
        self.batches: dict[str, list[FileTask]] = {}  # future key -> its files
        self.running = as_completed(with_results=False)

    # -- planning (hashing on the client, see the module docstring)

    def plan(self, files: Sequence[tuple[Path, str | None]]) -> Iterator[list[FileTask]]:
        """Tasks of files new to the store, made lazily as task slots free up."""
        chunk = max(1, self.settings.files_per_task)
        it = iter(files)
        while group := list(islice(it, chunk)):
            fresh = [task for task in map(self._hashed, group) if task is not None]
            known = self.store.case_ids([task.sha256 for task in fresh])
            for task in fresh:
                if task.sha256 in known:
                    self._link(known[task.sha256])
            new = [task for task in fresh if task.sha256 not in known]
            yield from ([task] for task in new if task.kind == "video")
            images = [task for task in new if task.kind == "image"]
            if images:
                yield images

    def _hashed(self, item: tuple[Path, str | None]) -> FileTask | None:
        path, kind = item
        self.summary.files += 1
        if kind is None:
            self.summary.not_media += 1
            self.bar.update()
            return None
        try:
            digest = file_digest(path)[0]
        except OSError as exc:
            self._fail(FileTask(str(path), kind, ""), str(exc))
            return None
        if digest in self.seen:
            self.summary.duplicates += 1
            self.bar.update()
            return None
        self.seen.add(digest)
        return FileTask(str(path.resolve()), kind, digest)

    def _link(self, case_id: int) -> None:
        if self.settings.batch_id is not None:
            self.store.add_to_batch(self.settings.batch_id, case_id, self.settings.analyst)
        self.summary.stored_before += 1
        self.summary.case_ids.append(case_id)
        self.bar.update()

    # -- running

    def submit(self, batch: list[FileTask]) -> None:
        s = self.settings
        future = self.client.submit(analyze_files, batch, s.frames, s.weights_dir, retries=1)  # key: hash of the arguments
        self.batches[future.key] = batch
        self.running.add(future)

    def settle(self, future: Future) -> None:
        """Write a finished task's results; split or fail an errored one."""
        batch = self.batches.pop(future.key)
        if future.status == "finished":
            for outcome in future.result():
                self.write(outcome)
        elif future.status == "error" and len(batch) > 1:
            for task in batch:  # find the file that breaks it: each alone, the others still succeed
                self.submit([task])
        elif future.status == "error":
            exc = future.exception()
            self.write(Failed(batch[0], f"{type(exc).__name__}: {exc}"))
        else:
            raise ScanError(f"The cluster lost a task ({future.status}); run the same scan again to resume.")
        future.release()

    def write(self, outcome: Outcome) -> None:
        if isinstance(outcome, Failed):
            self._fail(outcome.task, outcome.error)
        else:
            media = Path(outcome.task.path).read_bytes() if self.settings.keep_media else None
            saved = self.store.save(outcome.result, outcome.task.path, self.settings.analyst, **vars(outcome.evidence),
                                    media=media, batch_id=self.settings.batch_id)
            self.summary.add(outcome, saved.case.id, saved.created)
            self.bar.update()
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def _fail(self, task: FileTask, error: str) -> None:
        self.summary.failures.append((task.path, error))
        self.store.log_failure(task.sha256, task.path, self.settings.analyst, error, self.settings.batch_id)
        self.bar.write(f"FAILED {task.path}: {error}")
        self.bar.update()


def _in_flight(client: Client) -> int:
    threads = sum(client.nthreads().values())
    return max(2, TASKS_PER_THREAD * threads)


def scan_on_dask(
    store: CaseStore,
    files: Iterable[tuple[Path, str | None]],
    client: Client,
    settings: ScanSettings,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> ScanSummary:
    """Analyze the (path, kind) files that are new to the store on the cluster behind `client`
    and save them as they finish; `on_outcome` is called after each file is written."""
    files = list(files)
    workers = len(client.nthreads())
    start = time.perf_counter()
    with tqdm(total=len(files), unit="file", desc="scan", file=sys.stderr, mininterval=1.0) as bar:
        scan = _Scan(store, client, settings, bar, on_outcome)
        plan = scan.plan(files)
        for batch in islice(plan, _in_flight(client)):
            scan.submit(batch)
        for future in scan.running:
            scan.settle(future)
            for batch in islice(plan, 1):  # one slot freed, one task in
                scan.submit(batch)
    summary = scan.summary
    summary.seconds = time.perf_counter() - start
    summary.workers = workers
    return summary


# ---------------------------------------------------------------- the CLI's entry and a sample folder


def scan_with_args(store: CaseStore, args: argparse.Namespace, new_batch: Callable[[], int],
                   files: Sequence[tuple[Path, str | None]]) -> tuple[ScanSummary, int]:
    """`python -m core.cli scan --engine dask ...`: open the cluster, then make the batch (so a
    cluster that cannot be reached leaves no empty batch), scan, print the summary; (summary, batch id)."""
    started = time.perf_counter()
    with dask_client(args.scheduler, args.workers) as client:
        print(f"Dask cluster ready in {time.perf_counter() - started:.1f} s: {len(client.nthreads())} worker(s), "
              f"scheduler {client.scheduler.address}")
        weights = str(args.weights) if args.weights else None
        settings = ScanSettings(args.analyst, new_batch(), args.frames, args.keep_media, weights)
        try:
            summary = scan_on_dask(store, files, client, settings)
        except KeyboardInterrupt:
            print("Interrupted: what finished is stored; run the same command again to resume.", file=sys.stderr)
            raise
    for line in summary.lines():
        print(line)
    return summary, settings.batch_id


def write_sample_folder(folder: Path, images: int = 300, videos: int = 4, seed: int = 0) -> list[Path]:
    """Distinct small JPEGs (one or two heads of scikit-image's public-domain astronaut, or none,
    on varied textured backgrounds, flipped, various sizes and qualities) and short H.264 clips,
    for measuring scans. Needs scikit-image (requirements-dev.txt), like the benchmark."""
    from core.bench import compose, jpeg_bytes, make_clip, texture

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = []
    for i in range(images):
        width, height = ((320, 240), (400, 300), (256, 256), (480, 360))[i % 4]
        faces = int(rng.choice([0, 1, 1, 1, 2]))
        background = texture(width, height, seed=seed * 100_003 + i)
        rgb = compose(width, height, faces, int(rng.integers(-20, 20)), background=background) if faces else background
        path = folder / f"image_{i:05d}.jpg"
        path.write_bytes(jpeg_bytes(np.ascontiguousarray(rgb[:, ::-1]) if rng.random() < 0.5 else rgb,
                                    int(rng.integers(70, 96))))
        written.append(path)
    for i in range(videos):
        written.append(make_clip(folder / f"clip_{i:03d}.mp4", seconds=2 + i % 3, width=320, height=240, fps=15,
                                 faces=1 + i % 2, keyint=30 + i))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.scale", description="Helpers for Dask batch scans.")
    sub = parser.add_subparsers(dest="command", required=True)
    sample = sub.add_parser("sample", help="write a generated folder of images and short videos to measure scans on")
    sample.add_argument("folder", type=Path)
    sample.add_argument("--images", type=int, default=300)
    sample.add_argument("--videos", type=int, default=4)
    sample.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    written = write_sample_folder(args.folder, args.images, args.videos, args.seed)
    size = sum(p.stat().st_size for p in written)
    print(f"Wrote {len(written)} files ({size / 1e6:.1f} MB) to {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
