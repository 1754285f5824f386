"""Splitting a long video at keyframes into chunks that enhance in parallel, and joining them again.

A video is split where decoding can start cleanly: at keyframes, found by reading the packets' keyframe
flags and timestamps without decoding anything (:func:`scan_video`). :func:`plan_chunks` puts chunk
boundaries at keyframes at least ``chunk_seconds`` apart; chunk ``k`` owns the frames whose pts lie in
``[start_k, start_{k+1})``.

Temporal stages (the denoiser, exposure control) carry state from frame to frame, so a chunk that started
cold would show a seam. Each chunk therefore also decodes the ``warmup`` frames just before its start: it
seeks to the last keyframe at or before the first of them, discards what comes before it undecoded by the
model, runs the warm-up frames through the whole pipeline, and writes only its own frames
(:class:`ChunkSource`, :class:`ChunkSink`).

Each chunk is encoded by the same writer, with the same x264 settings, as a single-machine run
(:class:`~nightvision.stream.sinks.VideoFileSink`), and :func:`join_parts` remuxes the chunks' packets, in
order, with the source's audio packets into one file: no second encode, so joining costs only I/O and the
encode itself runs in parallel. Frame count, order, timestamps, frame rate and audio are those of the
source. The decoded frames equal a single-machine run exactly when the encode is lossless (``crf=0``); with
a lossy ``crf`` they differ only as much as x264's decisions differ when it sees the video in GOP-aligned
pieces (its rate control restarts at each chunk), i.e. within the encoder's own error.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from nightvision.errors import InputError, OutputError, SourceError
from nightvision.io.atomic import describe_os_error
from nightvision.io.video import OUTPUT_FORMATS, VideoFrame, VideoReader, add_audio
from nightvision.stream.sinks import VideoFileSink
from nightvision.stream.sources import Read, ReadStatus, Source

__all__ = ["Chunk", "ChunkSink", "ChunkSource", "VideoIndex", "join_parts", "plan_chunks", "scan_video"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoIndex:
    """What :func:`scan_video` learnt from a video's packets (nothing decoded).

    Attributes:
        pts: presentation timestamps of every frame, sorted, in ``time_base`` units; empty when some packet
            has none (the video then cannot be split).
        keyframes: pts of the frames where decoding can start, sorted.
        frames: frames in the video (packets that decode to a shown frame).
        fps: nominal frame rate; ``duration``: seconds.
    """

    path: str
    time_base: Fraction
    fps: float
    frames: int
    duration: float
    pts: tuple[int, ...]
    keyframes: tuple[int, ...]
    has_audio: bool

    @property
    def splittable(self) -> bool:
        return bool(self.pts) and len(self.keyframes) > 1


@dataclass(frozen=True)
class Chunk:
    """One piece of a video: the frames with pts in ``[start, end)`` (``end`` None: to the end).

    Attributes:
        index: 0-based place in the video.
        frames: frames it owns (and writes).
        warmup: frames before ``start`` run through the pipeline first and not written (pts from
            ``warm_start``), so that temporal stages arrive at ``start`` in the state a whole run has there.
        seek: pts of the keyframe decoding starts from (``None``: the start of the file).
    """

    index: int
    start: int
    end: int | None
    frames: int
    warm_start: int
    warmup: int
    seek: int | None

    @property
    def bounds(self) -> list[int | None]:
        """``[start, end]``, what the manifest records to recognise the same plan on a rerun."""
        return [self.start, self.end]


class _Reader(VideoReader):
    """A :class:`VideoReader` that can list its packets without decoding and start at a keyframe."""

    def packets(self) -> Iterator[Any]:
        """The video stream's packets in file order, undecoded (flush packets left out)."""
        try:
            for packet in self._container.demux(self._video):
                if packet.size:
                    yield packet
        except av.error.FFmpegError as err:
            raise SourceError(f"cannot read {self.path}: {err}") from err

    def seek(self, pts: int) -> None:
        """Continue from the keyframe at or before ``pts`` (video time base)."""
        try:
            self._container.seek(pts, stream=self._video, backward=True, any_frame=False)
        except av.error.FFmpegError as err:
            raise SourceError(f"cannot seek in {self.path}: {err}") from err


def scan_video(path: str | Path) -> VideoIndex:
    """Read a video's packets (no decoding) for its frame timestamps and keyframes.

    Raises :class:`~nightvision.errors.InputError` / :class:`~nightvision.errors.SourceError` for a file
    that is not a readable video.
    """
    with contextlib.closing(_Reader(path)) as reader:
        info = reader.info
        pts: list[int] = []
        keys: list[int] = []
        frames = 0
        # (an AVI's frames are timed by the packets that complete them: with B-frames, later than the packets)
        known = not (reader.avi and reader.b_frames)
        for packet in reader.packets():
            if getattr(packet, "is_discard", False):
                continue
            frames += 1
            t = reader.packet_time(packet)
            if t is None:
                known = False
                continue
            pts.append(int(t))
            if packet.is_keyframe:
                keys.append(int(t))
        if frames == 0:
            raise InputError(f"cannot read video {path}: it has no video packets")
        pts.sort()
        keys.sort()
        if not known or len(set(pts)) != len(pts):
            pts, keys = [], []  # timestamps missing or repeated: process the video whole
        fps = float(info.fps) or 30.0
        duration = float((pts[-1] - pts[0]) * info.time_base) + 1.0 / fps if pts else frames / fps
        return VideoIndex(
            path=str(path),
            time_base=info.time_base,
            fps=fps,
            frames=frames,
            duration=duration,
            pts=tuple(pts),
            keyframes=tuple(keys),
            has_audio=info.has_audio,
        )


def plan_chunks(index: VideoIndex, chunk_seconds: float, *, warmup: int = 0) -> list[Chunk]:
    """Cut a video into chunks at keyframes at least ``chunk_seconds`` apart.

    Args:
        index: from :func:`scan_video`.
        chunk_seconds: the shortest chunk, in seconds; 0 (or a video with no second keyframe, or without
            timestamps) gives one chunk, the whole video. The last chunk is never shorter than half of it
            (it joins the one before).
        warmup: frames before each chunk's start (after the first) to run through the pipeline unwritten.

    Returns:
        the chunks in order; one chunk (``seek`` None, no warm-up) when the video is not split.
    """
    if chunk_seconds < 0 or warmup < 0:
        raise InputError(f"chunk_seconds and warmup must be at least 0, got {chunk_seconds:g} and {warmup}")
    pts = index.pts
    if not index.splittable or chunk_seconds == 0:
        first = pts[0] if pts else 0
        return [Chunk(0, first, None, index.frames, first, 0, None)]
    tb = index.time_base
    span = Fraction(chunk_seconds).limit_denominator(1000) / tb  # chunk_seconds in time-base units
    end_of_video = pts[-1] + max(1, round(1 / (index.fps * tb)))  # the end of the last frame
    starts = [pts[0]]
    for key in index.keyframes:
        if key - starts[-1] >= span and end_of_video - key >= span / 2:
            starts.append(key)
    chunks = []
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else None
        i0 = bisect.bisect_left(pts, start)
        i1 = bisect.bisect_left(pts, end) if end is not None else len(pts)
        if k == 0:
            chunks.append(Chunk(0, start, end, i1 - i0, start, 0, None))
            continue
        w0 = max(0, i0 - warmup)
        warm_start = pts[w0]
        seek = index.keyframes[max(0, bisect.bisect_right(index.keyframes, warm_start) - 1)]
        chunks.append(Chunk(k, start, end, i1 - i0, warm_start, i0 - w0, seek))
    return chunks


class ChunkSource(Source):
    """The frames of one chunk of a video file: its warm-up frames, then its own, with their pts.

    Decoding starts at the chunk's keyframe (``chunk.seek``); frames before ``chunk.warm_start`` are
    decoded and dropped without reaching the pipeline. The read after the chunk's last own frame is END
    (the rest of the file is never decoded). A chunk that does not hold the frames the scan counted is an
    ERROR read (the pipeline raises :class:`~nightvision.errors.SourceError`).

    Attributes:
        warmed: warm-up frames delivered; ``own``: own frames delivered.
    """

    def __init__(self, path: str | Path, chunk: Chunk) -> None:
        self.uri = str(path)
        self.path = Path(path)
        self.chunk = chunk
        self.frame_count = chunk.warmup + chunk.frames
        self.warmed = 0
        self.own = 0
        self._reader: _Reader | None = None
        self._frames: Iterator[VideoFrame] | None = None

    def _open(self) -> None:
        self._reader = _Reader(self.path)
        info = self._reader.info
        self.fps, self.time_base = float(info.fps), info.time_base
        if self.chunk.seek is not None:
            self._reader.seek(self.chunk.seek)
        self._frames = self._reader.frames()

    def _mismatch(self, why: str) -> Read:
        return Read(
            ReadStatus.ERROR,
            error=f"cannot split {self.path} at keyframes ({why}); process it whole (chunk_seconds=0)",
        )

    def _read(self, timeout: float) -> Read:
        assert self._frames is not None
        chunk = self.chunk
        if self.own >= chunk.frames:
            return Read(ReadStatus.END)
        try:
            for frame in self._frames:
                pts = frame.pts
                if pts is None:
                    return self._mismatch("a frame has no timestamp")
                if pts < chunk.warm_start:
                    continue
                if chunk.end is not None and pts >= chunk.end:
                    break
                if pts < chunk.start:
                    self.warmed += 1
                elif self.own == 0 and chunk.seek is not None and pts != chunk.start:
                    return self._mismatch(f"decoding from the keyframe gave pts {pts} first, not {chunk.start}")
                else:
                    self.own += 1
                return Read(ReadStatus.FRAME, frame.image, pts, time.monotonic())
        except (SourceError, InputError) as err:
            return Read(ReadStatus.ERROR, error=str(err))
        return self._mismatch(f"chunk {chunk.index} gave {self.own} of its {chunk.frames} frames")

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
            self._frames = None


class ChunkSink(VideoFileSink):
    """A :class:`VideoFileSink` that leaves out the warm-up frames (pts before ``start``).

    Args:
        path, fps, time_base, crf: as for :class:`VideoFileSink` (no audio: the join copies the source's).
        start: pts of the chunk's first own frame.
        on_frame: called with the number of own frames written so far, after each one (progress).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        start: int,
        fps: float,
        time_base: Fraction,
        crf: int = 18,
        on_frame: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(path, fps=fps, time_base=time_base, crf=crf, overwrite=True)
        self.start = start
        self.dropped_warmup = 0
        self._on_frame = on_frame

    def _write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        if pts < self.start:
            self.dropped_warmup += 1
            return
        super()._write(frame, original, pts)
        if self._on_frame is not None:
            self._on_frame(self.frames_written)


def _time(packet: Any) -> Fraction:
    return Fraction(packet.dts) * Fraction(packet.time_base)


def join_parts(parts: Sequence[str | Path], source: str | Path, dest: str | Path) -> int:
    """Remux the chunk files ``parts`` (in order) and the audio of ``source`` into ``dest``; return its frames.

    ``dest`` is written in place (the caller gives a temporary name, :class:`~nightvision.io.atomic.AtomicFile`,
    and renames it when the result is checked). The parts must come from one encoder configuration (their
    codec headers are compared). Video and audio packets are interleaved by decode time.
    """
    if not parts:
        raise InputError("join_parts needs at least one part")
    dest = Path(dest)
    options = {"movflags": "+faststart"} if dest.suffix.lower() in (".mp4", ".mov", ".m4v") else {}
    with contextlib.ExitStack() as stack:
        inputs = [stack.enter_context(av.open(str(p), mode="r")) for p in parts]
        streams = [c.streams.video[0] for c in inputs]
        header = bytes(streams[0].codec_context.extradata or b"")
        for part, stream in zip(parts, streams, strict=True):
            if bytes(stream.codec_context.extradata or b"") != header:
                raise OutputError(f"cannot join {part}: its encoder settings differ from the first chunk's")
        src = stack.enter_context(av.open(str(source), mode="r"))
        try:
            out = stack.enter_context(av.open(str(dest), mode="w", container_options=options))
        except (av.error.FFmpegError, OSError) as err:
            raise OutputError(f"cannot write {dest}: {describe_os_error(err)}") from err
        video = out.add_stream_from_template(streams[0])
        audio_in = src.streams.audio[0] if src.streams.audio else None
        fmt = OUTPUT_FORMATS.get(dest.suffix.lower())
        audio_out, transcoder = add_audio(out, audio_in, fmt) if audio_in is not None else (None, None)

        def video_packets() -> Iterator[tuple[Fraction, int, Any]]:
            for n, (container, stream) in enumerate(zip(inputs, streams, strict=True)):
                # AVI stores no times: its demuxer makes up the decode times, and gives a later chunk's first
                # packet dts 0, which the muxer refuses after the earlier chunks' (the join failed). Our AVI
                # chunks have no B-frames (VideoWriter), so decode order is display order: dts = pts.
                untimed = container.format.name == "avi"
                for packet in container.demux(stream):
                    if untimed and packet.pts is not None:
                        packet.dts = packet.pts
                    if packet.dts is not None and packet.size:
                        yield _time(packet), n, packet

        def audio_packets() -> Iterator[tuple[Fraction, int, Any]]:
            if audio_in is None or (audio_out is None and transcoder is None):
                return
            for packet in src.demux(audio_in):
                if packet.dts is not None:
                    yield _time(packet), -1, packet

        frames = 0
        try:
            for _, _, packet in heapq.merge(video_packets(), audio_packets(), key=lambda item: (item[0], item[1])):
                if packet.stream.type == "video":
                    packet.stream = video
                    out.mux(packet)
                    frames += 1
                elif transcoder is not None:
                    out.mux(transcoder.encode(packet))
                else:
                    packet.stream = audio_out
                    out.mux(packet)
            if transcoder is not None:
                out.mux(transcoder.flush())
                if transcoder.skipped:
                    log.warning("%d damaged audio packets of %s skipped", transcoder.skipped, source)
        except (av.error.FFmpegError, OSError, ValueError) as err:
            raise OutputError(f"cannot write {dest}: {describe_os_error(err)}") from err
    return frames
