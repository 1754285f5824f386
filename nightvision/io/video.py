"""Video files with PyAV: decode frames with their timestamps, encode H.264 keeping time and audio.

:class:`VideoReader` demuxes a file into :class:`VideoFrame` items (BGR pixels and presentation time) and,
when asked, the audio packets, in file order. :class:`VideoWriter` encodes frames to H.264 (libx264) with
the reader's time base and timestamps, so frame count, rate and timing survive, and remuxes the audio
packets unchanged. It writes to a temporary name and renames on :meth:`VideoWriter.close` (optionally to
another name, for a partial output); :meth:`abort` deletes the partial file.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from nightvision.errors import InputError, OutputError, SourceError
from nightvision.io.atomic import AtomicFile, describe_os_error

__all__ = [
    "VIDEO_SUFFIXES",
    "AudioPacket",
    "VideoFrame",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "is_video",
]

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".avi", ".mov", ".m4v", ".webm"})


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class VideoInfo:
    """What a reader knows about its video stream before decoding."""

    width: int
    height: int
    fps: Fraction
    time_base: Fraction
    frames: int  # from the container; 0 when unknown
    has_audio: bool
    codec: str


@dataclass
class VideoFrame:
    """One decoded frame: ``(H, W, 3)`` uint8 BGR, its pts in ``time_base`` units, and its index."""

    image: np.ndarray
    pts: int | None
    index: int


@dataclass
class AudioPacket:
    """An undecoded audio packet, passed through to the writer in demux order."""

    packet: Any


class VideoReader:
    """Decode a video file. Use as a context manager; iterate for frames (and audio packets).

    Args:
        path: the file.
        audio: also yield the audio packets of the first audio stream, interleaved in file order.
    """

    def __init__(self, path: str | Path, *, audio: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"no such file: {self.path}")
        try:
            self._container = av.open(str(self.path), mode="r")
        except (av.error.FFmpegError, UnicodeDecodeError) as err:
            raise InputError(f"cannot open video {self.path}: not a video, or damaged ({err})") from err
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{self.path} has no video stream")
        self._video = self._container.streams.video[0]
        self._video.thread_type = "AUTO"
        self._audio = self._container.streams.audio[0] if self._container.streams.audio else None
        self._want_audio = audio and self._audio is not None
        ctx = self._video.codec_context
        if not ctx.width or not ctx.height:
            self._container.close()
            raise InputError(f"cannot read video {self.path}: the stream has no frame size (damaged?)")
        rate = self._video.average_rate or self._video.guessed_rate or Fraction(30)
        self.info = VideoInfo(
            width=ctx.width,
            height=ctx.height,
            fps=Fraction(rate),
            time_base=Fraction(self._video.time_base or Fraction(1, 90000)),
            frames=int(self._video.frames or 0),
            has_audio=self._audio is not None,
            codec=ctx.name,
        )

    @property
    def audio_stream(self) -> Any:
        """The input audio stream (a template for the writer), or ``None``."""
        return self._audio if self._want_audio else None

    def __iter__(self) -> Iterator[VideoFrame | AudioPacket]:
        streams = [self._video] + ([self._audio] if self._want_audio else [])
        index = 0
        try:
            for packet in self._container.demux(streams):
                if packet.stream.type == "audio":
                    if packet.dts is not None:
                        yield AudioPacket(packet)
                    continue
                for frame in packet.decode():
                    assert isinstance(frame, av.VideoFrame)  # a video packet decodes to video frames
                    yield VideoFrame(frame.to_ndarray(format="bgr24"), frame.pts, index)
                    index += 1
        except av.error.FFmpegError as err:
            raise SourceError(f"cannot decode {self.path} after {index} frames: {err}") from err
        if index == 0:
            raise InputError(f"cannot read video {self.path}: no frame could be decoded")
        if self.info.frames and index < self.info.frames:
            raise SourceError(
                f"{self.path} ended after {index} of its {self.info.frames} frames: the file is truncated or damaged"
            )

    def frames(self) -> Iterator[VideoFrame]:
        """Only the video frames."""
        for item in self:
            if isinstance(item, VideoFrame):
                yield item

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VideoWriter:
    """Encode BGR frames to an H.264 file, written atomically (:class:`~nightvision.io.atomic.AtomicFile`).

    Args:
        path: destination (.mp4, .mkv, .mov, .avi).
        width, height: frame size; odd sizes are kept and encoded in 4:4:4 (4:2:0 needs even sizes).
        fps: nominal frame rate.
        time_base: time base of the pts given to :meth:`write` (use the reader's to keep timestamps).
        audio_template: an input audio stream whose packets :meth:`write_audio` will remux unchanged.
        crf: x264 quality, 0-51 (lower is better; 18 is visually lossless for most content).
        preset: x264 speed preset.
        faststart: for .mp4/.mov, put the index first so that browsers can start playing before the end.

    Failures to write (permission denied, disk full, ...) are :class:`~nightvision.errors.OutputError` naming
    ``path``, never the temporary file.
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: Fraction | float,
        *,
        time_base: Fraction | None = None,
        audio_template: Any = None,
        crf: int = 18,
        preset: str = "veryfast",
        faststart: bool = True,
    ) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_SUFFIXES:
            raise InputError(f"unsupported video suffix {self.path.suffix!r} (use one of {sorted(VIDEO_SUFFIXES)})")
        if not 0 <= crf <= 51:
            raise InputError(f"crf must be in 0-51 (lower is better), got {crf}")
        self._file = AtomicFile(self.path)
        options = (
            {"movflags": "+faststart"} if faststart and self.path.suffix.lower() in (".mp4", ".mov", ".m4v") else {}
        )
        try:
            self._container = av.open(str(self._file.tmp), mode="w", container_options=options)
        except (av.error.FFmpegError, OSError) as err:
            self._file.discard()
            raise OutputError(f"cannot write {self.path}: {describe_os_error(err)}") from err
        fps = Fraction(fps).limit_denominator(1001 * 1000)
        self._stream = self._container.add_stream("libx264", rate=fps)
        self._stream.width, self._stream.height = width, height
        even = width % 2 == 0 and height % 2 == 0
        self._stream.pix_fmt = "yuv420p" if even else "yuv444p"
        if not even:
            log.warning("odd frame size %dx%d: encoding 4:4:4 H.264, which some players cannot show", width, height)
        self._time_base = time_base or Fraction(1, 1) / fps
        self._stream.time_base = self._time_base
        self._stream.codec_context.time_base = self._time_base
        self._stream.options = {"crf": str(crf), "preset": preset}
        self._audio = None
        if audio_template is not None:
            try:
                self._audio = self._container.add_stream_from_template(audio_template)
            except (ValueError, av.error.FFmpegError) as err:
                log.warning("audio track not copied (%s): %s", audio_template.codec_context.name, err)
        self._frames = 0
        self._last_pts = -1
        self._closed = False

    @property
    def frames_written(self) -> int:
        return self._frames

    def _fail(self, err: BaseException) -> OutputError:
        self.abort()
        return OutputError(f"cannot write {self.path}: {describe_os_error(err)}")

    def write(self, image: np.ndarray, pts: int | None = None) -> None:
        """Encode one ``(H, W, 3)`` uint8 BGR frame at ``pts`` (time-base units; default: frame index)."""
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        if pts is None or pts <= self._last_pts:
            pts = self._last_pts + 1 if pts is not None else self._frames
        frame.pts = pts
        frame.time_base = self._time_base
        self._last_pts = pts
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except (av.error.FFmpegError, OSError) as err:
            raise self._fail(err) from err
        self._frames += 1

    def write_audio(self, packet: AudioPacket) -> None:
        """Remux one audio packet from the template stream."""
        if self._audio is None:
            return
        pkt = packet.packet
        pkt.stream = self._audio
        try:
            self._container.mux(pkt)
        except (av.error.FFmpegError, OSError) as err:
            raise self._fail(err) from err

    def close(self, path: str | Path | None = None) -> Path:
        """Flush the encoder, finish the file and rename it into place (idempotent); return where it went.

        Args:
            path: finish under this name instead of ``path`` (e.g. ``out.partial.mp4`` for an interrupted job).
        """
        dest = Path(path) if path is not None else self.path
        if self._closed:
            return dest
        self._closed = True
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
        except (av.error.FFmpegError, OSError) as err:
            self._file.discard()
            raise OutputError(f"cannot write {dest}: {describe_os_error(err)}") from err
        except BaseException:
            self._file.discard()
            raise
        if self._frames == 0:
            self._file.discard()
            raise OutputError(f"no frame was written to {dest}")
        return self._file.commit(dest)

    def abort(self) -> None:
        """Stop without producing the output file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._container.close()
        self._file.discard()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
