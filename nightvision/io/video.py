"""Video files with PyAV: decode frames upright with their timestamps, encode keeping time and audio.

:class:`VideoReader` demuxes a file into :class:`VideoFrame` items (BGR pixels and presentation time) and,
when asked, the audio packets, in file order. Frames come out upright: a display matrix (how phones record
portrait video) is applied as FFmpeg's command line does by default, so outputs need no rotation metadata.
:class:`VideoWriter` encodes frames with the codec its suffix's container takes (:data:`OUTPUT_FORMATS`:
H.264 for MP4/MOV/MKV/AVI, VP9 for WebM), with the reader's time base and timestamps, so frame count, rate
and timing survive; audio packets are remuxed unchanged, or re-encoded where the container cannot carry them
(AAC into WebM becomes Opus). It writes to a temporary name and renames on :meth:`VideoWriter.close`
(optionally to another name, for a partial output); :meth:`abort` deletes the partial file.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from av.sidedata.sidedata import SideData

from nightvision.errors import InputError, OutputError, SourceError
from nightvision.io.atomic import AtomicFile, describe_os_error

__all__ = [
    "OUTPUT_FORMATS",
    "VIDEO_SUFFIXES",
    "AudioPacket",
    "AudioTranscoder",
    "OutputFormat",
    "VideoFrame",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "add_audio",
    "is_video",
    "muxer_takes",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputFormat:
    """How files with one suffix are written: the FFmpeg muxer, the video encoder it accepts, and the audio
    encoder for source audio the muxer cannot carry as it is (a WebM file takes neither H.264 nor AAC)."""

    container: str
    video_codec: str
    audio_codec: str


OUTPUT_FORMATS: dict[str, OutputFormat] = {
    ".mp4": OutputFormat("mp4", "libx264", "aac"),
    ".m4v": OutputFormat("ipod", "libx264", "aac"),
    ".mov": OutputFormat("mov", "libx264", "aac"),
    ".mkv": OutputFormat("matroska", "libx264", "aac"),
    ".avi": OutputFormat("avi", "libx264", "libmp3lame"),
    ".webm": OutputFormat("webm", "libvpx-vp9", "libopus"),
}

# Every suffix read is also one written (a folder job keeps the input's suffix), so both come from one table.
VIDEO_SUFFIXES = frozenset(OUTPUT_FORMATS)

# x264's presets, fastest first; for VP9 each maps to a libvpx (deadline, cpu-used) of about the same speed.
_VP9_SPEED = {
    "ultrafast": ("realtime", 8),
    "superfast": ("realtime", 7),
    "veryfast": ("realtime", 6),
    "faster": ("good", 5),
    "fast": ("good", 4),
    "medium": ("good", 3),
    "slow": ("good", 2),
    "slower": ("good", 1),
    "veryslow": ("good", 0),
    "placebo": ("best", 0),
}


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class VideoInfo:
    """What a reader knows about its video stream before decoding; the size is that of the upright frames."""

    width: int
    height: int
    fps: Fraction
    time_base: Fraction
    frames: int  # from the container; 0 when unknown
    has_audio: bool
    codec: str
    rotation: int = 0  # degrees counter-clockwise the stored frames are turned by to show them upright


_ROTATE = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}


def _rotation_of(path: Path, stream_index: int) -> int:
    """:func:`_display_rotation`, probed once per file version: a looped source, a chunked job's many readers
    of one file reopen it often, and the probe (a second open and a decoded frame) cost 14 ms at 720p."""
    try:
        st = path.stat()
    except OSError:
        return _display_rotation(path, stream_index)
    return _cached_rotation(str(path.resolve()), st.st_mtime_ns, st.st_size, stream_index)


@functools.lru_cache(maxsize=256)
def _cached_rotation(path: str, mtime_ns: int, size: int, stream_index: int) -> int:
    return _display_rotation(Path(path), stream_index)


def _display_rotation(path: Path, stream_index: int) -> int:
    """How many quarter turns counter-clockwise show the stream upright (0-3), from its display matrix.

    Phones store portrait video sideways with a display matrix saying how to turn it. PyAV shows the matrix
    only on decoded frames, so the first frame is decoded through a second handle, which leaves the reader's
    demuxer and decoder untouched. A mirrored matrix or an angle that is not a multiple of 90 degrees (both
    rare) is left unapplied, with a warning.
    """
    try:  # (stream_index is the stream's place among all streams: an audio track may come first)
        with av.open(str(path), mode="r") as container:
            frame = next(container.decode(container.streams[stream_index]), None)
    except Exception:  # an optional probe: the reader itself reports an unreadable file when it decodes
        return 0
    if not isinstance(frame, av.VideoFrame):
        return 0
    matrix = frame.side_data.get("DISPLAYMATRIX")
    if not isinstance(matrix, SideData):
        return 0
    a, b, _, c, d = np.frombuffer(bytes(matrix), dtype=np.int32)[:5].tolist()
    if a * d - b * c < 0:
        log.warning("%s has a mirrored display matrix; its frames are used as stored, not mirrored", path)
        return 0
    degrees = frame.rotation
    if abs(degrees - 90 * round(degrees / 90)) > 1:
        log.warning("%s is to be shown turned by %d degrees; its frames are used as stored", path, degrees)
        return 0
    return round(degrees / 90) % 4


@dataclass
class VideoFrame:
    """One decoded frame: ``(H, W, 3)`` uint8 BGR, upright, its pts in ``time_base`` units, and its index."""

    image: np.ndarray
    pts: int | None
    index: int


@dataclass
class AudioPacket:
    """An undecoded audio packet, passed through to the writer in demux order."""

    packet: Any


class _AviClock:
    """The times of an AVI's frames and the index entries they account for (:attr:`VideoReader.avi`).

    A frame's time is the decode time its packet had (the frames the decoder still holds at the end have none:
    spaced as the last two). An index entry without data is a tick without a frame, a muxer's way to hold the
    previous frame (a variable-rate clip remuxed into AVI has one every other tick, and after its last frame):
    the stream's frame count includes them."""

    def __init__(self) -> None:
        self.empty = 0  # entries without a frame between the packets
        self.step = 0  # ticks between the latest two packets
        self._last_dts: int | None = None
        self._last_pts: int | None = None
        self._spacing = 1

    def packet(self, dts: int | None) -> None:
        if dts is None:
            return
        if self._last_dts is not None:
            self.step = dts - self._last_dts
            self.empty += max(0, self.step - 1)
        self._last_dts = dts

    def frame(self, dts: int | None) -> int | None:
        last = self._last_pts
        pts = dts if dts is not None else None if last is None else last + self._spacing
        if pts is not None and last is not None and pts > last:
            self._spacing = pts - last
        self._last_pts = pts
        return pts

    def entries(self, frames: int) -> int:
        """The index entries ``frames`` frames account for, the last frame held as long as the one before it."""
        return frames + self.empty + max(0, self.step - 1)


def _matroska_cut(path: Path) -> tuple[int, int] | None:
    """``(bytes the file states, bytes it has)`` when a Matroska/WebM file is shorter than its Segment element
    says (a cut copy: such files state no frame count, and a cut one read as a shorter video), else ``None``
    (whole, a live recording of unknown size, or a header that cannot be read)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
        size = path.stat().st_size
    except OSError:
        return None
    pos = 0
    while pos < len(head):
        element = _ebml_vint(head, pos, marker=True)
        length = _ebml_vint(head, element[1], marker=False) if element is not None else None
        if element is None or length is None:
            return None
        ident, (value, pos, unknown) = element[0], length
        if ident == 0x18538067:  # Segment: its data runs to the end of the file
            return None if unknown or pos + value <= size else (pos + value, size)
        pos += value  # (the EBML header, a Void element...)
    return None


def _ebml_vint(data: bytes, pos: int, *, marker: bool) -> tuple[int, int, bool] | None:
    """An EBML variable-length integer at ``pos`` (an element ID keeps its length marker, a size does not), the
    position after it, and whether it is the reserved "unknown size" (all value bits set); ``None`` past the
    data or on a zero first byte."""
    if pos >= len(data) or data[pos] == 0:
        return None
    width = 9 - data[pos].bit_length()
    if pos + width > len(data):
        return None
    value = data[pos] if marker else data[pos] & (0xFF >> width)
    for byte in data[pos + 1 : pos + width]:
        value = value << 8 | byte
    return value, pos + width, not marker and value == (1 << (7 * width)) - 1


class VideoReader:
    """Decode a video file. Use as a context manager; iterate for frames (and audio packets).

    Frames are turned upright as the stream's display matrix says (90, 180 or 270 degrees), and
    :attr:`info` gives the upright size, so that what is written from them plays the right way up.

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
        self._turns = _rotation_of(self.path, self._video.index)
        width, height = (ctx.height, ctx.width) if self._turns % 2 else (ctx.width, ctx.height)
        self.info = VideoInfo(
            width=width,
            height=height,
            fps=Fraction(rate),
            time_base=Fraction(self._video.time_base or Fraction(1, 90000)),
            frames=int(self._video.frames or 0),
            has_audio=self._audio is not None,
            codec=ctx.name,
            rotation=90 * self._turns,
        )

    @property
    def avi(self) -> bool:
        """Whether the file is an AVI. AVI stores no presentation times, one index entry a tick: its frames are
        timed by their decode times, as FFmpeg's own tools time them (PyAV's guessed pts run one tick late:
        each pass through our writer moved the video a frame behind its sound). With B-frames, a decoded
        frame's time is that of the packet that completed it, a constant delay after the packets' own."""
        return bool(self._container.format.name == "avi")

    def packet_time(self, packet: Any) -> int | None:
        """A video packet's timestamp on the clock of the frames' :attr:`VideoFrame.pts` (for a file without
        B-frames: the same value as the frame decoded from it)."""
        return packet.dts if self.avi else packet.pts

    @property
    def b_frames(self) -> bool:
        """Whether the video stream has B-frames (frames decode in another order than they show)."""
        return bool(self._video.codec_context.has_b_frames)

    @property
    def audio_stream(self) -> Any:
        """The input audio stream (a template for the writer), or ``None``."""
        return self._audio if self._want_audio else None

    def __iter__(self) -> Iterator[VideoFrame | AudioPacket]:
        streams = [self._video] + ([self._audio] if self._want_audio else [])
        index = 0
        clock = _AviClock() if self.avi else None
        try:
            for packet in self._container.demux(streams):
                if packet.stream.type == "audio":
                    if packet.dts is not None:
                        yield AudioPacket(packet)
                    continue
                if clock is not None:
                    clock.packet(packet.dts)
                for frame in packet.decode():
                    assert isinstance(frame, av.VideoFrame)  # a video packet decodes to video frames
                    pts = frame.pts if clock is None else clock.frame(frame.dts)
                    yield VideoFrame(self._upright(frame.to_ndarray(format="bgr24")), pts, index)
                    index += 1
        except av.error.FFmpegError as err:
            raise SourceError(f"cannot decode {self.path} after {index} frames: {err}") from err
        if index == 0:
            raise InputError(f"cannot read video {self.path}: no frame could be decoded")
        entries = index if clock is None else clock.entries(index)
        if self.info.frames and entries < self.info.frames:
            what = "frames" if clock is None else "index entries (frames and held ticks)"
            raise SourceError(
                f"{self.path} ended after {entries} of its {self.info.frames} {what}: the file is truncated or damaged"
            )
        cut = _matroska_cut(self.path) if "matroska" in self._container.format.name else None
        if cut is not None:
            raise SourceError(
                f"{self.path} ended after {index} frames: it is cut short ({cut[1]} of the {cut[0]} bytes it "
                "states): the file is truncated or damaged"
            )

    def _upright(self, image: np.ndarray) -> np.ndarray:
        """``image`` turned as the display matrix says (``np.rot90``'s turns, counter-clockwise), contiguous.
        cv2.rotate: 0.55 ms a 720p frame, against 4.3 ms for np.rot90 made contiguous."""
        return cv2.rotate(image, _ROTATE[self._turns]) if self._turns else image

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


def _video_options(codec: str, crf: int, preset: str) -> dict[str, str]:
    """Encoder options of about the same quality and speed whichever codec the suffix calls for.

    libvpx's quality scale is 0-63 against x264's 0-51, so ``crf`` is scaled (18 becomes 22, visually
    lossless for both); ``b:v 0`` makes it pure constant quality, and crf 0 is lossless as with x264. The
    x264 preset picks libvpx's deadline and cpu-used of about the same speed (:data:`_VP9_SPEED`).
    """
    if codec != "libvpx-vp9":
        return {"crf": str(crf), "preset": preset}
    deadline, cpu_used = _VP9_SPEED[preset]
    options = {"crf": str(round(crf * 63 / 51)), "b:v": "0", "deadline": deadline, "cpu-used": str(cpu_used)}
    return {**options, "row-mt": "1", **({"lossless": "1"} if crf == 0 else {})}


def _pix_fmt(codec: str, width: int, height: int) -> str:
    """4:2:0, which every player shows; x264 needs even sizes for it (libvpx pads odd ones), else 4:4:4."""
    if codec == "libx264" and (width % 2 or height % 2):
        log.warning("odd frame size %dx%d: encoding 4:4:4 H.264, which some players cannot show", width, height)
        return "yuv444p"
    return "yuv420p"


def muxer_takes(container_format: str, template: Any) -> bool:
    """Whether the ``container_format`` muxer writes ``template``'s audio packets as they are. Adding the stream
    is not enough to know: MOV takes an Opus or FLAC stream and refuses it only when it writes its header, at the
    first packet, after the first frames were encoded, and MP4 takes PCM of an unnamed channel layout (from a
    Matroska file) and refuses it when it writes its index, at the very end. So a small file with one silent
    packet is written to memory first (a millisecond)."""
    try:
        with av.open(io.BytesIO(), mode="w", format=container_format) as probe:
            stream = probe.add_stream_from_template(template)
            probe.start_encoding()
            packet = av.Packet(bytes(_PROBE_BYTES))
            packet.pts = packet.dts = 0
            packet.time_base = stream.time_base
            packet.stream = stream
            probe.mux(packet)
    except (ValueError, av.error.FFmpegError, OSError):
        return False
    return True


_PROBE_BYTES = 40320  # a whole number of PCM blocks for any sample size of 1-4 bytes and 1-8 channels


class AudioTranscoder:
    """Decode the source's audio packets and encode them as ``codec``, for a container that cannot carry the
    source's codec as it is (AAC into WebM, Opus into MOV). Channels beyond stereo are mixed down, which every fallback
    codec (:attr:`OutputFormat.audio_codec`) takes; the sample rate is kept where the codec has it."""

    def __init__(self, container: Any, template: Any, codec: str) -> None:
        source = template.codec_context
        self._decoder: Any = av.CodecContext.create(source.name, "r")
        self._decoder.extradata = source.extradata
        self._decoder.sample_rate = source.sample_rate
        self._decoder.layout = source.layout
        rates = av.Codec(codec, "w").audio_rates
        rate = source.sample_rate if not rates or source.sample_rate in rates else 48000
        # (by the channel count: a layout without a name, as Matroska's PCM has, is refused by the encoders)
        layout = "mono" if source.layout.nb_channels == 1 else "stereo"
        self.stream: Any = container.add_stream(codec, rate=rate, layout=layout)
        self.skipped = 0

    def encode(self, packet: Any) -> list[Any]:
        """The encoded packets ``packet`` gives (none yet, often: encoders buffer); a damaged one is skipped."""
        try:
            frames = self._decoder.decode(packet)
        except av.error.FFmpegError:
            self.skipped += 1
            return []
        return [out for frame in frames for out in self.stream.encode(frame)]

    def flush(self) -> list[Any]:
        """The packets still buffered in the decoder and the encoder."""
        packets = [out for frame in self._decoder.decode(None) for out in self.stream.encode(frame)]
        return packets + list(self.stream.encode(None))


def add_audio(container: Any, template: Any, fmt: OutputFormat | None) -> tuple[Any, AudioTranscoder | None]:
    """``template``'s audio track in ``container`` (written as ``fmt``): ``(stream, None)``, a copy of the
    packets as they are; ``(None, transcoder)``, re-encoded to ``fmt.audio_codec`` where the muxer cannot hold
    them (AAC into WebM, Opus into MOV, :func:`muxer_takes`); failing both, ``(None, None)`` with a warning (a
    video without its sound beats no video). ``fmt`` ``None``: copied if the container takes it, else left out."""
    name = template.codec_context.name
    try:
        if fmt is None or muxer_takes(fmt.container, template):
            return container.add_stream_from_template(template), None
        refused = f"the {fmt.container} muxer cannot write {name} audio"
    except (ValueError, av.error.FFmpegError) as err:
        refused = str(err)
    if fmt is None:
        log.warning("audio track not copied (%s): %s", name, refused)
        return None, None
    try:
        transcoder = AudioTranscoder(container, template, fmt.audio_codec)
    except (ValueError, av.error.FFmpegError) as err:
        log.warning("audio track dropped: %s, and re-encoding %s to %s failed: %s", refused, name, fmt.audio_codec, err)
        return None, None
    log.info("audio re-encoded from %s to %s: %s", name, fmt.audio_codec, refused)
    return None, transcoder


class VideoWriter:
    """Encode BGR frames to a video file, written atomically (:class:`~nightvision.io.atomic.AtomicFile`).

    The suffix picks the container and codecs (:data:`OUTPUT_FORMATS`): H.264 (libx264) for .mp4, .m4v,
    .mov, .mkv and .avi, VP9 (libvpx-vp9) for .webm, whose container takes no H.264.

    Args:
        path: destination, one of :data:`VIDEO_SUFFIXES`.
        width, height: frame size; odd sizes are kept (H.264 then encodes 4:4:4, as 4:2:0 needs even sizes).
        fps: nominal frame rate.
        time_base: time base of the pts given to :meth:`write` (use the reader's to keep timestamps).
        audio_template: an input audio stream whose packets :meth:`write_audio` will remux unchanged, or
            re-encode to the container's audio codec (Opus for WebM) where it cannot carry them.
        crf: quality, 0-51 on x264's scale (lower is better; 18 is visually lossless for most content, 0 is
            lossless); scaled to libvpx's 0-63 for VP9.
        preset: x264 speed preset (ultrafast ... placebo); VP9 uses a libvpx setting of about the same speed.
        faststart: for .mp4/.mov/.m4v, put the index first so that browsers can start playing before the end.

    Failures to write (permission denied, disk full, a codec the container refuses, ...) are
    :class:`~nightvision.errors.OutputError` naming ``path``, never the temporary file.
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
        fmt = OUTPUT_FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise InputError(f"unsupported video suffix {self.path.suffix!r} (use one of {sorted(VIDEO_SUFFIXES)})")
        if not 0 <= crf <= 51:
            raise InputError(f"crf must be in 0-51 (lower is better), got {crf}")
        if preset not in _VP9_SPEED:
            raise InputError(f"unknown preset {preset!r} (use one of {', '.join(_VP9_SPEED)})")
        self.format = fmt
        self._file = AtomicFile(self.path)
        options = {"movflags": "+faststart"} if faststart and fmt.container in ("mp4", "ipod", "mov") else {}
        try:
            self._container = av.open(str(self._file.tmp), mode="w", format=fmt.container, container_options=options)
        except (av.error.FFmpegError, OSError) as err:
            self._file.discard()
            raise OutputError(f"cannot write {self.path}: {describe_os_error(err)}") from err
        fps = Fraction(fps).limit_denominator(1001 * 1000)
        self._in_time_base = time_base or Fraction(1, 1) / fps  # the unit of the pts given to write()
        # AVI counts frames, not time: in a finer time base its muxer fills the gaps with empty entries (60 frames
        # of a 1/15360 MP4 clock became 1200, and the file read back as truncated); one tick a frame there
        self._time_base = Fraction(1, 1) / fps if fmt.container == "avi" else self._in_time_base
        try:
            stream = self._container.add_stream(fmt.video_codec, rate=fps)
            if not isinstance(stream, av.VideoStream):
                raise ValueError(f"{fmt.video_codec} is not a video encoder")
            self._stream = stream
            self._stream.width, self._stream.height = width, height
            self._stream.pix_fmt = _pix_fmt(fmt.video_codec, width, height)
            self._stream.time_base = self._time_base
            self._stream.codec_context.time_base = self._time_base
            # AVI stores no presentation times: with B-frames its frames read back out of time order
            no_b_frames = {"bf": "0"} if fmt.container == "avi" and fmt.video_codec == "libx264" else {}
            self._stream.options = {**_video_options(fmt.video_codec, crf, preset), **no_b_frames}
        except (av.error.FFmpegError, ValueError) as err:  # e.g. an FFmpeg build without the encoder
            with contextlib.suppress(Exception):
                self._container.close()
            self._file.discard()
            raise OutputError(f"cannot write {self.path} with {fmt.video_codec}: {err}") from err
        self._audio: Any = None
        self._transcoder: AudioTranscoder | None = None
        if audio_template is not None:
            self._audio, self._transcoder = add_audio(self._container, audio_template, fmt)
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
        if pts is not None and self._time_base != self._in_time_base:
            pts = round(pts * self._in_time_base / self._time_base)
        if pts is None or pts <= self._last_pts:
            pts = self._last_pts + 1 if pts is not None else self._frames
        frame.pts = pts
        frame.time_base = self._time_base
        self._last_pts = pts
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except (av.error.FFmpegError, ValueError, OSError) as err:
            raise self._fail(err) from err
        self._frames += 1

    def write_audio(self, packet: AudioPacket) -> None:
        """Remux (or re-encode) one audio packet from the template stream."""
        try:
            if self._transcoder is not None:
                packets = self._transcoder.encode(packet.packet)
            elif self._audio is not None:
                packet.packet.stream = self._audio
                packets = [packet.packet]
            else:
                return
            for pkt in packets:
                self._container.mux(pkt)
        except (av.error.FFmpegError, ValueError, OSError) as err:
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
            for packet in self._transcoder.flush() if self._transcoder is not None else []:
                self._container.mux(packet)
            self._container.close()
        except (av.error.FFmpegError, ValueError, OSError) as err:
            self._file.discard()
            raise OutputError(f"cannot write {dest}: {describe_os_error(err)}") from err
        except BaseException:
            self._file.discard()
            raise
        if self._transcoder is not None and self._transcoder.skipped:
            log.warning("%d damaged audio packets left out of %s", self._transcoder.skipped, dest)
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
