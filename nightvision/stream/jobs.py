"""Jobs: what ``nightvision enhance`` and ``nightvision run`` do, both through the one :class:`Pipeline`.

* :func:`enhance_path` — a file job: one image, one video, or a folder of them (recursive). Lossless and in
  order, with timestamps and audio kept; each file runs through its own pipeline, so frame stages start
  fresh on every file. A folder job goes on past a file that fails and reports every failure at the end.
* :func:`run_stream` — a camera, stream, file or folder to any sinks (a window, MJPEG, files), live or
  lossless.

Both refuse, before loading a model, outputs that would destroy data (:mod:`nightvision.io.outputs`): an
output that is an input, the same output twice, a folder job into its own input folder, an existing output
without ``overwrite``. A folder job skips the files inside its output folder when that folder lies within
the input tree (a second run never enhances the first run's outputs).

Interruption (a :class:`~nightvision.stream.pipeline.StopRequest`, e.g. SIGINT or SIGTERM through
:func:`~nightvision.stream.pipeline.stop_on_signals`): the job stops within about a second. The files
finished so far stay; a video in progress is finalised, playable, as ``NAME.partial.mp4`` (the frames done
and their audio); an image in progress is left out. The report says where it stopped.
"""

from __future__ import annotations

import contextlib
import logging
import numbers
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nightvision.enhancer import Enhancer
from nightvision.errors import InputError, NightvisionError, OutputError
from nightvision.io.atomic import is_temp_name
from nightvision.io.images import is_image
from nightvision.io.outputs import check_outputs, is_within, writable_folder
from nightvision.io.sizes import parse_size
from nightvision.io.video import is_video
from nightvision.specs import get_spec
from nightvision.stream.frame_stages import FrameStage
from nightvision.stream.pipeline import Pipeline, PipelineStats, StopRequest, write_stats
from nightvision.stream.sinks import ImageFileSink, Sink, VideoFileSink, make_sink
from nightvision.stream.sources import (
    CaptureSource,
    FileSource,
    FolderSource,
    ImageSource,
    Source,
    StreamSource,
    make_source,
    source_uri,
)

__all__ = ["EnhanceReport", "Progress", "enhance_path", "plan_enhance", "run_stream"]

log = logging.getLogger(__name__)

EnhancerLike = Enhancer | str | Callable[[], Enhancer]
"""A loaded model, a model name (``"zero-dce++"``: loaded with the defaults), or a function that loads one; a
name or a function is called only once the outputs have been checked."""


@dataclass
class Progress:
    """Where a file job is: the file, its place in the job, and the pipeline's figures so far."""

    path: Path
    index: int  # 1-based
    files: int
    stats: PipelineStats


@dataclass
class EnhanceReport:
    """What an :func:`enhance_path` call did.

    Attributes:
        files: files enhanced completely; ``total_files``: files the job had.
        frames: frames written (a partial video's included).
        luma_in, luma_out: mean luma over frames, 0-255, of the inputs and of what was written.
        outputs: the files written, complete ones only.
        failures: ``(input, reason)`` of every file that failed (a folder job goes on past them).
        skipped: files not read because they lie in the output folder, inside the input tree.
        kept: outputs that already existed and were kept (``skip_existing``: a resumed job does not redo them).
        stopped_by: ``""`` when the job ran to its end; else what stopped it (``"SIGINT"``, ``"SIGTERM"``).
        stopped_at: where it stopped, e.g. ``"frame 120 of 300 of clip.mp4"``.
        partial: the partial output kept for the file in progress (``clip.partial.mp4``), if any.
    """

    files: int = 0
    total_files: int = 0
    frames: int = 0
    seconds: float = 0.0
    luma_in: float = 0.0
    luma_out: float = 0.0
    outputs: list[Path] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)
    skipped: int = 0
    kept: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)  # busy time per stage thread
    stopped_by: str = ""
    stopped_at: str = ""
    partial: Path | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def _add(self, stats: PipelineStats) -> None:
        total = self.frames + stats.frames_out
        if total:
            self.luma_in = (self.luma_in * self.frames + stats.luma_in * stats.frames_out) / total
            self.luma_out = (self.luma_out * self.frames + stats.luma_out * stats.frames_out) / total
        self.frames = total
        self.seconds += stats.seconds
        for name, busy in stats.busy_s.items():
            self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + busy


def _loader(enhancer: EnhancerLike) -> Callable[[], Enhancer]:
    """What loads the model once the outputs were checked. Checked first, before anything is read or made:
    the wrong kind of ``enhancer`` is one :class:`InputError` saying what to pass."""
    if isinstance(enhancer, Enhancer):
        return lambda: enhancer
    if isinstance(enhancer, str):
        get_spec(enhancer)  # an unknown name fails now, before any output is made
        return lambda: Enhancer(enhancer)
    if callable(enhancer):
        return lambda: _loaded(enhancer())
    raise InputError(
        f"enhancer must be an Enhancer, a model name such as 'zero-dce++', or a function that loads one; "
        f"got {type(enhancer).__name__}"
    )


def _loaded(model: object) -> Enhancer:
    if not isinstance(model, Enhancer):
        raise InputError(f"the enhancer function must return an Enhancer, and it returned {type(model).__name__}")
    return model


def _check_crf(crf: object) -> None:
    """Refuse a quality that is not an integer in 0-51 (``crf="18"`` included) before any output is made."""
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
        raise InputError(f"crf must be an integer in 0-51 (lower is better), got {crf!r}")


_EMPTY_INPUT = "the input name is empty; give an image, a video or a folder"


def plan_enhance(
    source: str | Path, output: str | Path, *, overwrite: bool = False
) -> tuple[list[tuple[Path, Path]], int]:
    """The ``(input, output)`` files of a job, and how many files were skipped (in the output folder).

    Raises :class:`InputError` / :class:`OutputError` (one line) for a job that cannot or must not run (an empty
    input name included: to :class:`~pathlib.Path` it is the current folder).
    """
    if not str(source).strip():
        raise InputError(_EMPTY_INPUT)
    if not str(output).strip():
        raise InputError("the output name is empty; give a file or a folder with -o")
    into_folder = str(output).endswith(("/", "\\"))  # "out/": a folder to put the file in (Path drops the /)
    source, output = Path(source), Path(output)
    if not source.exists():
        raise InputError(f"no such file or folder: {source}")
    if source.is_dir():
        if output.exists() and not output.is_dir():
            raise OutputError(f"the output of a folder must be a folder, and {output} is a file")
        if not output.exists() and (is_image(output) or is_video(output)):  # "-o out/x.png" for a folder
            raise OutputError(
                f"the output of a folder must be a folder, and {output} names a file; give a folder such as "
                f"{output.parent / output.stem}"
            )
        if output.resolve() == source.resolve():
            raise OutputError(
                f"the output folder {output} is the input folder: that would overwrite every original; "
                "choose another folder"
            )
        writable_folder(output / "x")
        nested = is_within(output, source)
        files, skipped = [], 0
        for p in sorted(source.rglob("*")):
            if not p.is_file() or not (is_image(p) or is_video(p)) or is_temp_name(p.name):
                continue
            if nested and is_within(p, output):
                skipped += 1
                continue
            files.append(p)
        if skipped:
            log.info("skipping %d file(s) in the output folder %s, which lies inside the input", skipped, output)
        if not files:
            raise InputError(f"no images or videos in {source}")
        tasks = [(p, output / p.relative_to(source)) for p in files]
        check_outputs(files, [t for _, t in tasks], overwrite=overwrite, resumable=True)
        return tasks, skipped
    if output.is_dir() or into_folder:
        output = output / source.name
    if is_video(source):
        if not is_video(output):
            raise InputError(f"the output of a video must be a video file (.mp4, .mkv, ...), got {output}")
    elif is_image(source):
        if not is_image(output):
            raise InputError(f"the output of an image must be an image file (.png, .jpg, ...), got {output}")
    else:
        raise InputError(f"unsupported input {source}: expected an image, a video or a folder")
    check_outputs([source], [output], overwrite=overwrite)
    return [(source, output)], 0


def _file_job(
    src: Path,
    dst: Path,
    enhancer: Enhancer,
    *,
    crf: int,
    overwrite: bool,
    stop: StopRequest | None,
    on_status: Callable[[PipelineStats], None],
    pre_stages: Sequence[FrameStage],
    post_stages: Sequence[FrameStage],
) -> tuple[PipelineStats, Sink]:
    """One file through its own pipeline; the stats, and the sink (its ``written`` says what was kept)."""
    # a video is opened first: its rate, time base and audio stream make the sink
    source: Source = FileSource(src, audio=True).open() if is_video(src) else ImageSource(src)
    sink: Sink
    try:
        if isinstance(source, FileSource):
            assert source.time_base is not None
            sink = VideoFileSink(
                dst,
                fps=source.fps,
                time_base=source.time_base,
                audio_template=source.audio_stream,
                crf=crf,
                overwrite=overwrite,
            )
        else:
            sink = ImageFileSink(dst, overwrite=overwrite)
        pipeline = Pipeline(
            source,
            enhancer,
            [sink],
            policy="lossless",
            measure_luma=True,
            stop=stop,
            on_status=on_status,
            pre_stages=pre_stages,
            post_stages=post_stages,
        )
    except BaseException:
        source.close()
        raise
    stats = pipeline.run()
    return stats, sink


def _run_tasks(
    tasks: list[tuple[Path, Path]],
    report: EnhanceReport,
    model: Enhancer,
    *,
    folder: bool,
    crf: int,
    overwrite: bool,
    stop: StopRequest | None,
    on_progress: Callable[[Progress], None] | None,
    pre_stages: Sequence[FrameStage],
    post_stages: Sequence[FrameStage],
) -> None:
    """Every file of a job through its own pipeline, into ``report``; a folder job goes on past failures."""
    for i, (src, dst) in enumerate(tasks, 1):
        if stop is not None and stop.is_set():
            report.stopped_by = stop.reason
            report.stopped_at = f"before file {i} of {len(tasks)} ({src})"
            break

        def status(stats: PipelineStats, src: Path = src, i: int = i) -> None:
            if on_progress is not None:
                on_progress(Progress(src, i, len(tasks), stats))

        try:
            stats, sink = _file_job(
                src,
                dst,
                model,
                crf=crf,
                overwrite=overwrite,
                stop=stop,
                on_status=status,
                pre_stages=pre_stages,
                post_stages=post_stages,
            )
        except (NightvisionError, OSError) as err:
            if not folder:
                raise
            log.info("%s failed: %s", src, err)
            report.failures.append((src, str(err)))
            continue
        report._add(stats)
        if stats.complete:
            report.files += 1
            report.outputs.append(dst)
            continue
        report.stopped_by = stats.stopped_by
        where = f"frame {stats.frames_out}" + (f" of {stats.frame_count}" if stats.frame_count else "")
        report.stopped_at = f"{where} of {src}" + (f" (file {i} of {len(tasks)})" if folder else "")
        report.partial = sink.written
        break


def _check_job_args(
    paths: dict[str, object],
    *,
    stop: object = None,
    callbacks: dict[str, object] | None = None,
    stages: Sequence[object] = (),
    ints: dict[str, object] | None = None,
) -> None:
    """One-line :class:`InputError` for arguments of the wrong type (a list for a path, ``stop=True``, a
    string for a list of stages...), which failed deep in the job with Python's own errors."""
    for name, value in paths.items():
        if not isinstance(value, (str, os.PathLike)):
            raise InputError(f"{name} is a path (a str or pathlib.Path), got {value!r}")
    if stop is not None and not isinstance(stop, StopRequest):
        raise InputError(f"stop is a nightvision.stream.pipeline.StopRequest (or None), got {stop!r}")
    for name, value in (callbacks or {}).items():
        if value is not None and not callable(value):
            raise InputError(f"{name} is a function (or None), got {value!r}")
    for group in stages:
        if isinstance(group, (str, bytes, Mapping)) or not isinstance(group, Iterable):
            raise InputError(f"stages are a list of frame stages (e.g. [TemporalDenoiser()]), got {group!r}")
    for name, value in (ints or {}).items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise InputError(f"{name} is a whole number, got {value!r}")


def enhance_path(
    source: str | Path,
    output: str | Path,
    *,
    enhancer: EnhancerLike,
    crf: int = 18,
    overwrite: bool = False,
    skip_existing: bool = False,
    stop: StopRequest | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    pre_stages: Sequence[FrameStage] = (),
    post_stages: Sequence[FrameStage] = (),
) -> EnhanceReport:
    """Enhance an image, a video or a folder into ``output`` (see the module docstring for the guarantees).

    Args:
        source: an image, a video (mp4/mkv/avi/mov/m4v/webm) or a folder (searched recursively).
        output: a file for a file source (or a folder to put it in); a folder for a folder source (relative
            paths are kept).
        enhancer: the model: an :class:`~nightvision.enhancer.Enhancer`, a model name (loaded with the defaults),
            or a function that loads one (a name or a function is loaded after the outputs were checked).
        crf: quality of video outputs on x264's 0-51 scale (lower is better; VP9 for .webm, scaled).
        overwrite: replace outputs that exist (else the job refuses to start).
        skip_existing: keep outputs that exist and enhance only the other files: how an interrupted folder job
            resumes (outputs are written under a temporary name and renamed when complete, so an existing one
            is whole; the partial video of the interrupted file is not reused).
        stop: a shared stop request (SIGINT/SIGTERM); the report then says where the job stopped.
        on_progress: called about once a second per file with a :class:`Progress`.
        pre_stages, post_stages: frame stages (:mod:`nightvision.stream.frame_stages`), reset for every file.

    Returns:
        an :class:`EnhanceReport`. A single file that fails raises; a folder job records the failure, goes on,
        and lists every failure in ``report.failures``.
    """
    _check_job_args(
        {"source": source, "output": output},
        stop=stop,
        callbacks={"on_progress": on_progress},
        stages=(pre_stages, post_stages),
    )
    load = _loader(enhancer)
    _check_crf(crf)
    if overwrite and skip_existing:
        raise InputError("--overwrite replaces existing outputs and --skip-existing keeps them: give one of them")
    tasks, skipped = plan_enhance(source, output, overwrite=overwrite or skip_existing)
    folder = Path(source).is_dir()
    kept = [dst for _, dst in tasks if skip_existing and dst.exists()]
    tasks = [(src, dst) for src, dst in tasks if not (skip_existing and dst.exists())]
    if kept:
        log.info("keeping %d existing output(s); enhancing the other %d file(s)", len(kept), len(tasks))
    model = load() if tasks else None
    report = EnhanceReport(total_files=len(tasks), skipped=skipped, kept=len(kept))
    if model is None:
        return report
    with stop.listening() if stop is not None else contextlib.nullcontext():
        _run_tasks(
            tasks,
            report,
            model,
            folder=folder,
            crf=crf,
            overwrite=overwrite,
            stop=stop,
            on_progress=on_progress,
            pre_stages=pre_stages,
            post_stages=post_stages,
        )
    log.info(
        "%d of %d file(s), %d frame(s) in %.1f s (%.1f FPS), mean luma %.1f -> %.1f; busy seconds %s",
        report.files,
        report.total_files,
        report.frames,
        report.seconds,
        report.fps,
        report.luma_in,
        report.luma_out,
        {k: round(v, 2) for k, v in report.stage_seconds.items()},
    )
    return report


def _local_path(uri: str) -> Path | None:
    """The file or folder a source/sink URI names on this machine, or None (cameras, URLs, display://)."""
    if "://" in uri and not uri.startswith("file://"):
        return None
    if uri.isdigit() or uri.startswith("/dev/video"):
        return None
    return Path(uri.removeprefix("file://"))


def _output_uris(outputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None) -> list[str]:
    """The outputs as URI strings: one string or path is one output (not a sequence of one-letter names)."""
    if outputs is None:
        return []
    if isinstance(outputs, (str, os.PathLike)):
        outputs = [outputs]
    if isinstance(outputs, Mapping) or not isinstance(outputs, Iterable):  # (a dict would give its keys)
        raise InputError(f"outputs are a string, a path or a list of them, got {type(outputs).__name__}")
    uris = []
    for uri in outputs:
        if not isinstance(uri, (str, os.PathLike)):
            raise InputError(f"an output is named by a string or a path, got {uri!r}")
        uris.append(os.fspath(uri))
    return uris


def run_stream(
    source: str | int | os.PathLike[str],
    outputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = (),
    *,
    enhancer: EnhancerLike,
    headless: bool = False,
    policy: str | None = None,
    smooth: bool = False,
    hud: bool = False,
    loop: int = 0,
    size: str | None = None,
    fps: float = 0.0,
    retries: int | None = None,
    crf: int = 18,
    overwrite: bool = False,
    stats_json: str | Path | None = None,
    stop: StopRequest | None = None,
    on_status: Callable[[PipelineStats], None] | None = None,
    pre_stages: Sequence[FrameStage] = (),
    post_stages: Sequence[FrameStage] = (),
) -> PipelineStats:
    """Enhance a camera, stream, file or folder into ``outputs`` (default: a window; ``null://`` headless).

    Args:
        source: a URI (:func:`~nightvision.stream.sources.make_source`); a path names a file or folder.
        outputs: sink URIs (:func:`~nightvision.stream.sinks.make_sink`), each written every frame: a list, or
            one string or path for a single output.
        enhancer: the model: an :class:`~nightvision.enhancer.Enhancer`, a model name (loaded with the defaults),
            or a function that loads one (a name or a function is loaded after the outputs were checked).
        headless: no window.
        policy: ``"latest"`` or ``"lossless"`` (default: latest for live sources).
        smooth, hud: see :class:`Pipeline`.
        loop: files and folders: extra passes (-1: forever).
        size: cameras: the requested size, ``WIDTHxHEIGHT`` or ``720p``; ``fps``: the requested rate.
        crf: quality of video outputs on x264's 0-51 scale (VP9 for .webm, scaled).
        overwrite: replace outputs that exist (else refused before anything starts).
        stats_json: also write the summary there (even when stopped).
        stop: a shared stop request; the summary's ``stopped_by`` says what stopped the run.

    A file output of a finite input stopped before its end is kept as ``NAME.partial.mp4``; for a live
    source the recording up to the stop is the output itself.
    """
    _check_job_args(
        {} if isinstance(source, int) else {"source": source},
        stop=stop,
        callbacks={"on_status": on_status},
        stages=(pre_stages, post_stages),
        ints={"loop": loop, **({} if retries is None else {"retries": retries})},
    )
    source = source_uri(source)
    load = _loader(enhancer)
    _check_crf(crf)
    if loop < -1:
        raise InputError(f"loop must be -1 (forever) or more, got {loop}")
    if fps < 0:
        raise InputError(f"fps must be positive (0: the camera's default), got {fps:g}")
    outputs = _output_uris(outputs) or (["null://"] if headless else ["display://"])
    if headless and "display://" in outputs:
        raise InputError("--headless and a display:// output contradict each other")
    height, width = parse_size(size) if size else (0, 0)
    src_path = _local_path(source)
    files: list[Path] = []
    folders: list[Path] = []
    for uri in outputs:
        path = _local_path(uri)
        if path is None:
            continue
        if is_video(path) or (path.suffix and is_image(path) and "%" not in uri):
            files.append(path)
        else:
            folder = Path(uri).parent if "%" in uri else path
            if src_path is not None and src_path.is_dir() and folder.resolve() == src_path.resolve():
                raise OutputError(f"the output folder {folder} is the input folder; choose another folder")
            if any(folder.resolve() == f.resolve() for f in folders):
                raise OutputError(f"the output {uri} is given twice; give each output once")
            folders.append(folder)
    check_outputs(
        [src_path] if src_path is not None and src_path.is_file() else [],
        files + ([Path(stats_json)] if stats_json else []),
        overwrite=overwrite,
    )
    audio = policy != "latest" and any(is_video(f) for f in files)
    tries = {} if retries is None else {"retries": retries}  # (None: make_source's default)
    src = make_source(source, loop=loop, width=width, height=height, fps=fps, audio=audio, **tries)
    if loop and not isinstance(src, (FileSource, FolderSource)):
        raise InputError(f"--loop repeats a video file or a folder; {source} is neither")
    if retries is not None and not isinstance(src, StreamSource):
        raise InputError(f"--retries counts tries to open a network stream; {source} is not one")
    if isinstance(src, FolderSource):
        src.exclude = [f for f in folders if is_within(f, src.path)]
    if size and not (isinstance(src, CaptureSource) and src.camera):
        raise InputError(f"--size asks a camera for a mode; {source} is not a camera")
    if fps and not (isinstance(src, FolderSource) or (isinstance(src, CaptureSource) and src.camera)):
        raise InputError(f"--fps asks a camera (or sets a folder's rate); {source} is neither")
    # the source and sinks open before the model loads: a camera, port or window that is not there fails fast
    src.open()
    sinks: list[Sink] = []
    try:
        for uri in outputs:
            sink = make_sink(
                uri,
                fps=src.fps or 30.0,
                time_base=src.time_base,
                audio_template=src.audio_stream,
                crf=crf,
                overwrite=overwrite,
            )
            sinks.append(sink.open())
        pipeline = Pipeline(
            src,
            load(),
            sinks,
            policy=policy,
            smooth=smooth,
            hud=hud,
            on_status=on_status,
            stop=stop,
            pre_stages=pre_stages,
            post_stages=post_stages,
        )
    except BaseException:
        src.close()
        for sink in sinks:
            sink.abort()
        raise
    stats = pipeline.run()
    if stats_json:
        write_stats(stats_json, stats)
    return stats
