"""``nightvision batch``: enhance an archive of videos and images on a Ray cluster, resumably.

>>> from nightvision.cluster.batch import batch
>>> report = batch(["/archive/cam1", "/archive/cam2/*.mp4"], "/archive-enhanced", address="auto")
>>> print(report.table())

What it does:

* **Inputs**: files, folders (searched recursively) and globs of videos and images; each output goes to
  OUTDIR under the input's path relative to the folder given (or the glob's fixed part), name and format kept.
* **Workers**: one per ``cpus_per_task`` CPUs (and ``gpus_per_task`` GPUs; 0.25 lets four share a GPU) of
  the cluster, each a Ray actor that loads the model once (:mod:`nightvision.cluster.pool`). Without an
  address: a local Ray instance when Ray is installed, else one worker in this process (same code minus Ray).
* **Long videos** are cut at keyframes into chunks of at least ``chunk_seconds`` that run in parallel; each
  chunk runs the frames before it through the temporal stages first, and the chunks are joined by remuxing
  into one output with the source's frames, timestamps, frame rate and audio (:mod:`nightvision.cluster.chunks`).
* **Resumable**: ``OUTDIR/nightvision-batch.json`` records every finished output and chunk with its frame count
  and sha256 (:mod:`nightvision.cluster.manifest`); a rerun skips them and redoes the rest. Workers write into
  ``OUTDIR/.nightvision-batch/``; an output is moved into place only once complete, checked and recorded,
  so an output file is always complete, and each one is written once.
* **Failures**: a file that cannot be read or enhanced is reported and skipped, the rest goes on; a task whose
  worker was lost (node down, process killed) runs again on another worker, up to ``retries`` times.
* **Progress**: one bar for the whole job (frames done of the total, FPS, ETA) when ``progress=True``, and a
  JSON report (``OUTDIR/nightvision-batch-report.json``).

Files must be reachable at the same paths from every node (a shared file system), as for any Ray job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import glob
import json
import logging
import os
import shutil
import sys
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from nightvision.enhancer import DEFAULT_MODEL
from nightvision.errors import EngineError, InputError, NightvisionError, OutputError
from nightvision.io.atomic import AtomicFile, atomic_path, ensure_parent, is_temp_name
from nightvision.io.images import is_image
from nightvision.io.outputs import check_outputs, is_within, same_file, writable_folder
from nightvision.io.video import is_video
from nightvision.specs import get_spec
from nightvision.stream.pipeline import StopRequest

from .chunks import Chunk, VideoIndex, join_parts, plan_chunks, scan_video
from .connect import connect, ray_available
from .manifest import MANIFEST_NAME, Manifest, Record, chunk_suffix, file_record, input_stamp, part_name
from .pool import LocalPool, Outcome, RayPool
from .worker import Settings, Task

__all__ = ["REPORT_NAME", "WORK_DIR", "BatchProgress", "BatchReport", "FileResult", "batch", "plan_inputs"]

log = logging.getLogger(__name__)

WORK_DIR = ".nightvision-batch"
"""Under OUTDIR: chunk files of videos in progress (``parts/``), each attempt's staging folder (``tmp/``)."""
REPORT_NAME = "nightvision-batch-report.json"


@dataclass
class FileResult:
    """One input of the job: ``status`` is ``done``, ``skipped`` (finished by an earlier run), ``failed``
    (``error`` says why) or ``pending`` (the job stopped before it was finished: a rerun does it, keeping its
    finished chunks)."""

    input: str
    output: str
    status: str = "pending"
    frames: int = 0
    chunks: int = 1
    seconds: float = 0.0  # worker seconds spent on it (all chunks)
    retries: int = 0
    error: str = ""


@dataclass
class BatchProgress:
    """Where a job is (given to ``on_progress`` about twice a second)."""

    frames: int  # frames done, those of earlier runs included
    total: int
    files_done: int
    files: int
    failed: int
    seconds: float
    busy: int = 0  # workers running a task now


@dataclass
class BatchReport:
    """What a :func:`batch` call did.

    Attributes:
        engine: ``in-process``, or ``ray`` with ``address``; ``workers``: tasks run at once; ``nodes``: Ray nodes.
        frames: frames enhanced by this run; ``video_seconds``: duration of the videos enhanced by this run.
        seconds: wall time of the whole call; ``setup_seconds``: of it, planning and starting the workers.
        retries: tasks run again after their worker was lost; ``lost_workers``: workers lost.
        stopped_by: ``""`` when the job ran to its end; else what stopped it (``"SIGINT"``, ...).
    """

    outdir: str
    engine: str = "in-process"
    address: str = ""
    workers: int = 0
    nodes: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    files: list[FileResult] = field(default_factory=list)
    frames: int = 0
    video_seconds: float = 0.0
    seconds: float = 0.0
    setup_seconds: float = 0.0
    chunks: int = 0
    retries: int = 0
    lost_workers: int = 0
    stopped_by: str = ""
    report_path: str = ""

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def failures(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def realtime(self) -> float:
        """Seconds of video enhanced per second of wall time (> 1: faster than real time)."""
        return self.video_seconds / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> bool:
        """Every file finished (now or before) and the job was not stopped."""
        return not self.stopped_by and all(f.status in ("done", "skipped") for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.update(
            done=self.count("done"),
            skipped=self.count("skipped"),
            failed=self.count("failed"),
            pending=self.count("pending"),
            fps=round(self.fps, 2),
            realtime=round(self.realtime, 3),
        )
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def table(self, max_rows: int = 40) -> str:
        """A summary table for a terminal: the failed files (and all files when few), then the totals."""
        rows = self.files if len(self.files) <= max_rows else [f for f in self.files if f.status != "done"]
        rows = rows[:max_rows]
        width = max([len(f.input) for f in rows] + [5])
        width = min(width, 70)
        lines = [f"{'input':<{width}}  {'status':<8} {'frames':>8} {'chunks':>6} {'seconds':>8}  note"]
        for f in rows:
            name = f.input if len(f.input) <= width else "…" + f.input[-(width - 1) :]
            note = f.error or (f"{f.retries} retr{'y' if f.retries == 1 else 'ies'}" if f.retries else "")
            lines.append(f"{name:<{width}}  {f.status:<8} {f.frames:>8} {f.chunks:>6} {f.seconds:>8.1f}  {note}")
        hidden = len(self.files) - len(rows)
        if hidden:
            lines.append(f"... and {hidden} more (see the JSON report)")
        where = f"{self.engine}" + (f" {self.address}" if self.address else "")
        lines.append(
            f"{self.count('done')} done, {self.count('skipped')} already done, {self.count('failed')} failed"
            + (f", {self.count('pending')} not finished ({self.stopped_by})" if self.count("pending") else "")
            + f" of {len(self.files)} file(s); {self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} FPS"
            + (f", {self.realtime:.2f}× real time" if self.video_seconds else "")
            + f") on {self.workers} worker(s), {where}"
            + (f"; {self.retries} task(s) rerun after {self.lost_workers} lost worker(s)" if self.retries else "")
        )
        return "\n".join(lines)


# --- inputs -------------------------------------------------------------------------------------------------


def _glob_base(pattern: str) -> Path:
    """The fixed leading folders of a glob (``cams/*/x.mp4`` → ``cams``)."""
    parts: list[str] = []
    for part in Path(pattern).parts[:-1]:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def _media(path: Path) -> bool:
    return path.is_file() and (is_image(path) or is_video(path)) and not is_temp_name(path.name)


def plan_inputs(inputs: Sequence[str | Path], outdir: str | Path) -> list[tuple[Path, str]]:
    """The ``(input file, output path relative to outdir)`` pairs of a job, sorted by output path.

    A folder gives its images and videos (recursively) relative to itself; a file gives its name; a glob
    gives its matches relative to its fixed leading folders. Files inside ``outdir`` are left out (an output
    folder within an input folder). Raises :class:`InputError` for a path that does not exist, a glob that
    matches nothing, a file that is neither image nor video, two inputs that would write one output, or a
    job with no input at all.
    """
    outdir = Path(outdir)
    if any(not str(item).strip() for item in inputs):
        raise InputError("an input name is empty (an unset shell variable?); give files, folders or globs")
    found: dict[str, Path] = {}
    skipped = 0

    def add(path: Path, base: Path) -> None:
        nonlocal skipped
        if is_within(path, outdir):
            skipped += 1
            return
        rel = path.relative_to(base).as_posix() if base != path else path.name
        previous = found.get(rel)
        if previous is not None and not same_file(previous, path):
            raise InputError(f"{previous} and {path} would both be written to {outdir / rel}; give them separately")
        found[rel] = path

    for item in map(str, inputs):
        path = Path(item)
        entries: list[tuple[Path, Path, bool]]  # path, base, given explicitly
        if path.exists():
            entries = [(path, path.parent if path.is_file() else path, True)]
        elif glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise InputError(f"no file matches {item}")
            base = _glob_base(item)
            entries = [(Path(m), base, False) for m in matches]
        else:
            raise InputError(f"no such file or folder: {item}")
        for entry, base, explicit in entries:
            if entry.is_dir():
                for f in sorted(entry.rglob("*")):
                    if _media(f):
                        add(f, base)
            elif _media(entry):
                add(entry, base)
            elif explicit:
                raise InputError(f"unsupported input {entry}: expected an image, a video, a folder or a glob")
    if skipped:
        log.info("left out %d file(s) inside the output folder %s", skipped, outdir)
    if not found and skipped:
        raise InputError(
            f"every input lies inside the output folder {outdir} (those are left out: they could be outputs); "
            "give another output folder"
        )
    if not found:
        raise InputError(f"no images or videos in {', '.join(map(str, inputs))}")
    return sorted(((src, rel) for rel, src in found.items()), key=lambda item: item[1])


# --- the job ------------------------------------------------------------------------------------------------


@dataclass
class _Video:
    """A chunked video in progress: its plan, and its chunks finished so far (files under ``parts``)."""

    rel: str
    source: Path
    output: Path
    index: VideoIndex
    chunks: list[Chunk]
    parts: Path
    done: dict[int, Record] = field(default_factory=dict)

    @property
    def plan(self) -> list[list[int | None]]:
        return [c.bounds for c in self.chunks]


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold ``folder/lock`` exclusively: one job at a time writes to an output folder."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            raise InputError(
                f"another batch job is writing to {folder.parent}; wait for it to end or choose another folder"
            ) from err
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class _Bar:
    """The job's one progress bar (tqdm on stderr: frames done of the total, FPS, ETA), or nothing."""

    def __init__(self, total: int, initial: int, *, enabled: bool, stream: TextIO | None = None) -> None:
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                initial=initial,
                unit="frame",
                desc="batch",
                file=stream or sys.stderr,
                dynamic_ncols=True,
                smoothing=0.1,
            )

    def update(self, frames: int, postfix: str) -> None:
        if self._bar is None:
            return
        if frames > self._bar.n:
            self._bar.update(frames - self._bar.n)
        elif frames < self._bar.n:  # a lost worker's frames, to be done again
            self._bar.n = frames
        self._bar.set_postfix_str(postfix, refresh=False)
        self._bar.refresh()

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


def _check_report_path(report: Path, outdir: Path, pairs: list[tuple[Path, str]]) -> None:
    """Refuse a report that would replace an input, one of the job's outputs or its own bookkeeping, or any
    other file than an earlier report (a rerun rewrites its report; it must not write over a photo or a note)."""
    check_outputs([src for src, _ in pairs], [report], overwrite=True)  # an input (same path or a link to it)
    for _, rel in pairs:
        if same_file(report, outdir / rel):
            raise OutputError(f"the report {report} is the output of {rel}; give the report another name")
    key = report.resolve()
    own = {(outdir / MANIFEST_NAME).resolve(), (outdir / WORK_DIR).resolve()}
    if key in own or (outdir / WORK_DIR).resolve() in key.parents:
        raise OutputError(f"the report {report} is the batch's own bookkeeping; give another name")
    if report.exists() and not _is_batch_report(report):
        raise OutputError(f"{report} exists and is not a batch report; give a new name for --report")


def _is_batch_report(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"files", "engine", "report_path"} <= set(data)


def batch(
    inputs: Sequence[str | Path],
    outdir: str | Path,
    *,
    address: str | None = None,
    use_ray: bool | None = None,
    model: str = DEFAULT_MODEL,
    backend: str = "auto",
    denoise: bool = False,
    exposure: float | None = None,
    crf: int = 18,
    cpus_per_task: float = 1.0,
    gpus_per_task: float = 0.0,
    workers: int | None = None,
    chunk_seconds: float = 60.0,
    warmup_frames: int = 60,
    retries: int = 2,
    overwrite: bool = False,
    verify: bool = False,
    progress: bool = False,
    on_progress: Callable[[BatchProgress], None] | None = None,
    stop: StopRequest | None = None,
    report_path: str | Path | None = None,
) -> BatchReport:
    """Enhance files, folders and globs of videos and images into ``outdir`` (see the module docstring).

    Args:
        inputs: files, folders and globs (``"cams/**/*.mp4"``).
        outdir: the output folder (made if missing); outputs keep the inputs' relative paths.
        address: the Ray cluster: ``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:PORT"``; None: a local Ray
            instance when Ray is installed, else in-process.
        use_ray: False: in-process even with Ray installed; True: fail without Ray; None: as above.
        model, backend: the model and its backend (as for ``nightvision enhance``).
        denoise: temporal denoising before the model; ``exposure``: exposure control to this target mean luma
            (0-255, e.g. 110) after it; both carry state across frames, so chunks get warm-up frames.
        crf: x264 quality of video outputs, 0-51 (0: lossless).
        cpus_per_task, gpus_per_task: Ray resources of each worker (``gpus_per_task=0.25``: four per GPU).
        workers: how many workers (default: as many as the cluster has room for).
        chunk_seconds: cut videos at keyframes at least this many seconds apart (0: never); a video shorter
            than 1.5 times this stays whole.
        warmup_frames: frames before each chunk run through the temporal stages (only when there are some).
        retries: times a task is run again after its worker was lost.
        overwrite: redo everything, replacing existing outputs (else outputs not made by an earlier run of the
            same job are refused, and finished ones are skipped).
        verify: check finished outputs by their sha256 (not only size and mtime) before skipping them.
        progress: show one progress bar (stderr) for the whole job.
        on_progress: called about twice a second with a :class:`BatchProgress`.
        stop: a shared stop request (SIGINT/SIGTERM): the job stops within seconds; finished outputs stay.
        report_path: where to write the JSON report (default ``OUTDIR/nightvision-batch-report.json``).

    Returns:
        a :class:`BatchReport` (``report.ok``: nothing failed). A bad file is recorded there, not raised.

    Raises:
        InputError: an input that does not exist, an ``outdir`` that is a file, an unreachable address, options
            out of range, a manifest made with other settings.
        OutputError: outputs that exist and were not made by this job (without ``overwrite``).
        EngineError: no worker could load the model or start.
    """
    t_start = time.monotonic()
    if chunk_seconds < 0 or warmup_frames < 0 or retries < 0:
        raise InputError(
            f"chunk_seconds, warmup_frames and retries must be at least 0, got {chunk_seconds:g}, "
            f"{warmup_frames} and {retries}"
        )
    if workers is not None and workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    if cpus_per_task < 0 or gpus_per_task < 0 or cpus_per_task + gpus_per_task <= 0:
        raise InputError(
            f"cpus_per_task and gpus_per_task must be at least 0 and not both 0, got {cpus_per_task:g} and "
            f"{gpus_per_task:g}"
        )
    if use_ray is False and address is not None:
        raise InputError(f"an address ({address}) and in-process (--in-process) contradict: give one of them")
    settings = Settings(model=model, backend=backend, denoise=denoise, exposure=exposure, crf=crf)
    get_spec(model)  # an unknown model fails here, in one line, before anything is read or started
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"the output folder {outdir} is a file; give a folder")
    writable_folder(outdir / REPORT_NAME)
    if report_path:  # checked before any work, not after it
        if Path(report_path).is_dir():
            raise OutputError(f"the report {report_path} is a folder; give a file name")
        writable_folder(report_path)
    pairs = plan_inputs(inputs, outdir)
    check_outputs([src for src, _ in pairs], [outdir / rel for _, rel in pairs], overwrite=True)
    if report_path:
        _check_report_path(Path(report_path), outdir, pairs)
    outdir.mkdir(parents=True, exist_ok=True)
    work = outdir / WORK_DIR
    with _locked(work):
        job = _Job(
            pairs,
            outdir,
            settings,
            chunk_seconds=chunk_seconds,
            warmup_frames=warmup_frames if settings.temporal else 0,
            retries=retries,
            overwrite=overwrite,
            verify=verify,
            on_progress=on_progress,
            stop=stop or StopRequest(),
            t_start=t_start,
        )
        try:
            if address is not None:
                job.connect(address, use_ray)  # an unreachable cluster fails now, before the inputs are scanned
            job.plan()
            job.start(address, use_ray, cpus_per_task=cpus_per_task, gpus_per_task=gpus_per_task, workers=workers)
            with _Bar(job.total, job.committed, enabled=progress) as bar:
                job.run(bar)
        finally:
            job.close()
        return job.finish(Path(report_path) if report_path else outdir / REPORT_NAME)


class _Job:
    """One run of a batch job: plan (what is finished, what to do), start the workers, hand out tasks, commit
    what comes back, join videos whose chunks are all done, and say where it is."""

    def __init__(
        self,
        pairs: list[tuple[Path, str]],
        outdir: Path,
        settings: Settings,
        *,
        chunk_seconds: float,
        warmup_frames: int,
        retries: int,
        overwrite: bool,
        verify: bool,
        on_progress: Callable[[BatchProgress], None] | None,
        stop: StopRequest,
        t_start: float,
    ) -> None:
        self.pairs, self.outdir, self.settings = pairs, outdir, settings
        self.work = outdir / WORK_DIR
        self.tmp = self.work / "tmp"
        self.chunk_seconds, self.warmup_frames = chunk_seconds, warmup_frames
        self.retries, self.overwrite, self.verify = retries, overwrite, verify
        self.on_progress, self.stop, self.t_start = on_progress, stop, t_start
        self.report = BatchReport(outdir=str(outdir), settings=settings.as_dict())
        self.results: dict[str, FileResult] = {}
        self.videos: dict[str, _Video] = {}
        self.seconds_of: dict[str, float] = {}  # duration of each video
        self.queue: deque[Task] = deque()
        self.attempts: dict[str, int] = defaultdict(int)
        self.joins: dict[Future[tuple[AtomicFile, Record]], str] = {}
        self.joiner = ThreadPoolExecutor(1, thread_name_prefix="batch-join")
        self.pool: LocalPool | RayPool | None = None
        self.ray: Any = None  # the ray module, when this job initialised it (and so shuts it down)
        self._ray_module: Any = None
        self._connected = False
        self.total = 0  # frames of the whole job, earlier runs' included
        self.committed = 0  # frames finished (recorded), earlier runs' included
        self.serial = 0
        self.manifest: Manifest

    # --- planning

    def plan(self) -> None:
        """Skip finished outputs, cut long videos at keyframes, queue the rest (longest tasks first)."""
        shutil.rmtree(self.tmp, ignore_errors=True)  # staging of a run that was killed (we hold the lock)
        if self.overwrite:
            shutil.rmtree(self.work / "parts", ignore_errors=True)
        manifest = self.manifest = Manifest(self.outdir, self.settings.as_dict(), overwrite=self.overwrite)
        manifest.save()  # the settings are on record from the start (an overwritten job's old record is gone)
        # outputs that exist and are not ours (recorded in the manifest) are refused unless overwrite
        foreign = [self.outdir / rel for _, rel in self.pairs if (self.outdir / rel).exists()]
        foreign = [p for p in foreign if p.relative_to(self.outdir).as_posix() not in manifest.outputs]
        if foreign and not self.overwrite:
            check_outputs([], foreign, overwrite=False)
        tasks: list[Task] = []
        for src, rel in self.pairs:
            out = self.outdir / rel
            res = self.results[rel] = FileResult(str(src), str(out))
            record = manifest.finished(rel, out, src, verify=self.verify)
            if record is not None:
                res.status, res.frames = "skipped", record.frames
                self.total += record.frames
                self.committed += record.frames
                continue
            if rel in manifest.outputs:
                log.info("redoing %s (missing, changed, or its input changed)", out)
            if is_image(src):
                tasks.append(Task(rel, rel, "file", str(src), "", 1))
                self.total += 1
                continue
            try:
                index = scan_video(src)
            except (NightvisionError, OSError) as err:
                res.status, res.error = "failed", _first_line(err)
                log.warning("%s: %s", src, res.error)
                continue
            self.seconds_of[rel] = index.duration
            self.total += index.frames
            chunks = plan_chunks(index, self.chunk_seconds, warmup=self.warmup_frames)
            res.chunks = len(chunks)
            if len(chunks) == 1:
                tasks.append(Task(rel, rel, "file", str(src), "", index.frames))
                continue
            self.report.chunks += len(chunks)
            video = self.videos[rel] = _Video(rel, src, out, index, chunks, self.work / "parts" / rel)
            video.done = manifest.finished_parts(rel, video.plan, video.parts, verify=self.verify)
            if not video.done:
                shutil.rmtree(video.parts, ignore_errors=True)
            for chunk in chunks:
                if chunk.index in video.done:
                    self.committed += chunk.frames
                    res.frames += chunk.frames
                else:
                    tasks.append(Task(f"{rel}#{chunk.index}", rel, "chunk", str(src), "", chunk.frames, chunk))
            if len(video.done) == len(chunks):  # every chunk done by an earlier run: only the join is left
                self.joins[self.joiner.submit(_join, video)] = rel
        tasks.sort(key=lambda t: -t.frames)  # longest first: the last tasks to finish are short ones
        self.queue.extend(tasks)

    def start(
        self,
        address: str | None,
        use_ray: bool | None,
        *,
        cpus_per_task: float,
        gpus_per_task: float,
        workers: int | None,
    ) -> None:
        """Start the workers: Ray actors (at ``address``, or a local instance), or one in this process."""
        if self.queue:
            ray_module = self.connect(address, use_ray)
            if ray_module is not None:
                self.pool = RayPool(
                    ray_module,
                    self.settings,
                    cpus_per_task=cpus_per_task,
                    gpus_per_task=gpus_per_task,
                    workers=workers,
                    tasks=len(self.queue),
                )
                self.report.engine, self.report.address = "ray", address or "local"
            else:
                if workers is not None and workers > 1:
                    log.warning("in-process: one worker (%d asked for); more need Ray (pip install ray)", workers)
                self.pool = LocalPool(self.settings)
            self.report.workers, self.report.nodes = self.pool.workers, self.pool.nodes
        self.report.setup_seconds = time.monotonic() - self.t_start

    def connect(self, address: str | None, use_ray: bool | None) -> Any:
        """The ``ray`` module, connected (at ``address``, or a local instance started here), or None to run
        in-process; once per job."""
        if self._connected:
            return self._ray_module
        self._connected = True
        if use_ray if use_ray is not None else (address is not None or ray_available()):
            import importlib

            started_here = ray_available() and not importlib.import_module("ray").is_initialized()
            self._ray_module = connect(address, required=True)
            self.ray = self._ray_module if started_here else None
        return self._ray_module

    # --- running

    def run(self, bar: _Bar) -> None:
        """Hand out tasks and take in results until everything is done, failed, or the job was stopped."""
        last_tick = 0.0
        try:
            while self.queue or (self.pool is not None and self.pool.busy()) or self.joins:
                if self.stop.is_set() and self.pool is not None and not self.report.stopped_by:
                    self.report.stopped_by = self.stop.reason
                    self.queue.clear()
                    self.pool.stop()
                self._dispatch()
                if self.pool is not None:
                    for outcome in self.pool.wait(0.25):
                        self._take(outcome)
                    self.pool.check()
                    self.report.lost_workers = self.pool.lost
                else:
                    time.sleep(0.05)
                self._collect_joins()
                now = time.monotonic()
                if now - last_tick >= 0.5:
                    last_tick = now
                    self._tick(bar, now)
            self._tick(bar, time.monotonic())
        except EngineError as err:
            for res in self.results.values():
                if res.status == "pending":
                    res.status, res.error = "failed", _first_line(err)
            raise

    def _dispatch(self) -> None:
        """Give queued tasks to idle workers, each attempt writing to its own staging folder."""
        while self.pool is not None and self.queue and self.pool.free():
            task = self.queue.popleft()
            if self.results[task.rel].status == "failed":
                continue  # another chunk of its video failed
            self.serial += 1
            staging = self.tmp / f"{self.serial:06d}-{self.attempts[task.id]}"
            name = Path(task.rel).name if task.kind == "file" else "chunk" + chunk_suffix(Path(task.rel).suffix)
            self.pool.submit(dataclasses.replace(task, dest=str(staging / name)))

    def _fail(self, rel: str, reason: str) -> None:
        res = self.results[rel]
        if res.status != "failed":
            res.status, res.error = "failed", reason
            log.warning("%s: %s", res.input, reason)

    def _finish(self, rel: str, frames: int) -> None:
        res = self.results[rel]
        res.status, res.frames = "done", frames

    def _take(self, outcome: Outcome) -> None:
        """A task ended: run it again (its worker was lost), record a failure, or commit its output."""
        task, res = outcome.task, self.results[outcome.task.rel]
        result = outcome.result
        if result is not None:
            res.seconds += result.seconds
        if outcome.lost:
            self.attempts[task.id] += 1
            res.retries += 1
            self.report.retries += 1
            if self.report.stopped_by:
                pass  # stopping: it stays pending, for the next run
            elif self.attempts[task.id] > self.retries:
                self._fail(task.rel, f"lost its worker {self.attempts[task.id]} times")
            else:
                self.queue.appendleft(task)
        elif outcome.error or (result is not None and result.error):
            if not self.report.stopped_by:  # a stopped task says "stopped": not a failure of its file
                self._fail(task.rel, outcome.error or (result.error if result is not None else ""))
        elif result is not None and res.status != "failed":
            try:
                self._commit(task, result.frames)
            except (NightvisionError, OSError) as err:
                self._fail(task.rel, _first_line(err))
        shutil.rmtree(Path(task.dest).parent, ignore_errors=True)

    def _commit(self, task: Task, frames: int) -> None:
        staged = Path(task.dest)
        if task.kind == "file":
            _commit(self.manifest, task, staged, self.outdir / task.rel, frames)
            self._finish(task.rel, frames)
            self.report.video_seconds += self.seconds_of.get(task.rel, 0.0)
        else:
            video = self.videos[task.rel]
            assert task.chunk is not None
            video.done[task.chunk.index] = _commit_part(self.manifest, video, task.chunk, staged, frames)
            self.results[task.rel].frames += frames
            # the seconds this run enhanced (a resumed video redoes only some chunks: not its whole duration)
            self.report.video_seconds += frames * video.index.duration / max(video.index.frames, 1)
            if len(video.done) == len(video.chunks):
                self.joins[self.joiner.submit(_join, video)] = task.rel
        self.committed += frames
        self.report.frames += frames

    def _collect_joins(self) -> None:
        """Record and move into place the videos whose join finished."""
        for future in [f for f in self.joins if f.done()]:
            rel = self.joins.pop(future)
            try:
                atomic, record = future.result()
                self.manifest.record_output(rel, record)
                atomic.commit()
                self.manifest.forget_parts(rel)
                shutil.rmtree(self.videos[rel].parts, ignore_errors=True)
                self._finish(rel, record.frames)
            except (NightvisionError, OSError) as err:
                self._fail(rel, f"cannot join its chunks: {_first_line(err)}")

    def _tick(self, bar: _Bar, now: float) -> None:
        running = self.pool.progress() if self.pool is not None else {}
        done = self.committed + sum(running.values())
        files_done = sum(1 for r in self.results.values() if r.status in ("done", "skipped"))
        failed = sum(1 for r in self.results.values() if r.status == "failed")
        bar.update(done, f"files {files_done}/{len(self.results)}" + (f", {failed} failed" if failed else ""))
        if self.on_progress is not None:
            busy = self.pool.busy() if self.pool is not None else 0
            files = len(self.results)
            self.on_progress(BatchProgress(done, self.total, files_done, files, failed, now - self.t_start, busy))

    # --- ending

    def close(self) -> None:
        """End the workers (and a Ray instance this job started) and remove what was only staging."""
        self.joiner.shutdown(wait=True)
        if self.pool is not None:
            self.pool.close()
        if self.ray is not None:
            self.ray.shutdown()
        shutil.rmtree(self.tmp, ignore_errors=True)
        _remove_empty_folders(self.work / "parts")

    def finish(self, report_path: Path) -> BatchReport:
        """The report, written to ``report_path`` as JSON."""
        report = self.report
        report.files = [self.results[rel] for _, rel in self.pairs]
        report.seconds = time.monotonic() - self.t_start
        report.report_path = str(report_path)
        with atomic_path(report_path) as path:
            path.write_text(report.to_json())
        log.info(
            "batch: %d done, %d skipped, %d failed; %d frames in %.1f s (%.1f FPS)",
            report.count("done"),
            report.count("skipped"),
            report.count("failed"),
            report.frames,
            report.seconds,
            report.fps,
        )
        return report


def _remove_empty_folders(root: Path) -> None:
    """Remove ``root`` and the folders below it that hold no file (what finished videos left of ``parts``)."""
    if not root.is_dir():
        return
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()
    with contextlib.suppress(OSError):
        root.rmdir()


def _commit(manifest: Manifest, task: Task, staged: Path, output: Path, frames: int) -> None:
    """Record a finished output, then move it into place (so no complete output is ever unrecorded)."""
    if frames < 1 or not staged.is_file():
        raise OutputError(f"the worker wrote no output for {task.source}")
    record = file_record(staged, frames, input_stamp(Path(task.source)))
    manifest.record_output(task.rel, record)
    ensure_parent(output)
    os.replace(staged, output)


def _commit_part(manifest: Manifest, video: _Video, chunk: Chunk, staged: Path, frames: int) -> Record:
    if frames != chunk.frames or not staged.is_file():
        raise OutputError(f"chunk {chunk.index} of {video.source} has {frames} of its {chunk.frames} frames")
    record = file_record(staged, frames)
    manifest.record_part(video.rel, video.plan, chunk.index, record)
    part = ensure_parent(video.parts / part_name(chunk.index, video.output.suffix))
    os.replace(staged, part)
    return record


def _join(video: _Video) -> tuple[AtomicFile, Record]:
    """Join a video's chunks into a temporary file beside its output; return it (uncommitted) and its record."""
    atomic = AtomicFile(video.output)
    try:
        parts = [video.parts / part_name(c.index, video.output.suffix) for c in video.chunks]
        frames = join_parts(parts, video.source, atomic.tmp)
        if frames != video.index.frames:
            raise OutputError(f"joining {video.source} gave {frames} of its {video.index.frames} frames")
        return atomic, file_record(atomic.tmp, frames, input_stamp(video.source))
    except BaseException:
        atomic.discard()
        raise
