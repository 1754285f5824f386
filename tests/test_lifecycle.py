"""One owner, one lifecycle: every source and sink is opened and closed exactly once, servers and windows start
in open(), and what every source reports is declared on the base class."""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from nightvision.errors import OutputError, SourceError
from nightvision.io.video import VideoReader, VideoWriter
from nightvision.stream import sources
from nightvision.stream.pipeline import Pipeline
from nightvision.stream.sinks import DisplaySink, MjpegSink, NullSink, VideoFileSink, make_sink
from nightvision.stream.sources import (
    CaptureSource,
    FileSource,
    FolderSource,
    ImageSource,
    Read,
    ReadStatus,
    Source,
    SyntheticSource,
    make_source,
    open_source,
)
from tests.conftest import dark_frame


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, 64, 48, 25) as w:
        for i in range(8):
            w.write(dark_frame(48, 64, seed=i))
    return path


class CountingReader(VideoReader):
    opened = 0
    closed = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        CountingReader.opened += 1

    def close(self) -> None:
        CountingReader.closed += 1
        super().close()


def test_with_open_source_opens_one_reader(monkeypatch: pytest.MonkeyPatch, clip: Path) -> None:
    monkeypatch.setattr(sources, "VideoReader", CountingReader)
    CountingReader.opened = CountingReader.closed = 0
    with open_source(str(clip)) as src:  # open_source opened it; `with` must not open a second reader
        n = 0
        while src.read().status is ReadStatus.FRAME:
            n += 1
        src.open()  # again: still nothing new
    assert n == 8 and CountingReader.opened == 1 and CountingReader.closed == 1
    src.close()  # idempotent
    assert CountingReader.closed == 1
    with pytest.raises(SourceError, match="was closed"):
        src.open()
    with pytest.raises(SourceError, match="not open"):
        src.read()


def test_a_pipeline_opens_and_closes_what_it_is_given_once(monkeypatch: pytest.MonkeyPatch, clip: Path) -> None:
    monkeypatch.setattr(sources, "VideoReader", CountingReader)
    CountingReader.opened = CountingReader.closed = 0

    class CountingSink(NullSink):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[str] = []

        def _open(self) -> None:
            self.calls.append("open")

        def _close(self) -> None:
            self.calls.append("close")

        def _abort(self, keep_partial: bool) -> None:
            self.calls.append("abort")

    sink = CountingSink()
    with make_source(str(clip)) as src:  # not opened by make_source: `with` opens it, once
        assert CountingReader.opened == 1
        stats = Pipeline(src, None, [sink]).run()
    assert CountingReader.opened == 1 and CountingReader.closed == 1
    assert sink.calls == ["open", "close"] and sink.frames == 8 == stats.frames_out
    sink.close()
    sink.abort()
    assert sink.calls == ["open", "close"]
    with pytest.raises(OutputError, match="was closed"):
        sink.open()


def test_a_capture_is_opened_once(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[Any] = []

    class FakeCapture:
        def __init__(self, *args: Any) -> None:
            self.released = 0
            made.append(self)

        def isOpened(self) -> bool:
            return True

        def get(self, prop: int) -> float:
            return 25.0

        def set(self, prop: int, value: float) -> bool:
            return True

        def read(self) -> tuple[bool, np.ndarray]:
            return True, np.zeros((4, 4, 3), np.uint8)

        def release(self) -> None:
            self.released += 1

    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    with CaptureSource("rtsp://cam.local/stream", "rtsp://cam.local/stream", api=cv2.CAP_FFMPEG, network=True) as src:
        assert src.read().status is ReadStatus.FRAME
    assert len(made) == 1 and made[0].released == 1


def test_servers_and_windows_start_in_open_not_in_constructors(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sink = MjpegSink("127.0.0.1", port)  # nothing is bound yet, so no error here
        assert not any(t.name == "mjpeg-server" for t in threading.enumerate())
        with pytest.raises(OutputError, match=f"cannot serve MJPEG on 127.0.0.1:{port}: the port is in use"):
            sink.open()
    with pytest.raises(OutputError, match=r"not an address of this machine; serve on 0\.0\.0\.0"):
        MjpegSink("192.0.2.1", 0).open()  # TEST-NET-1: never a local address
    monkeypatch.delenv("DISPLAY", raising=False)
    window = make_sink("display://")
    assert isinstance(window, DisplaySink)
    assert not any(t.name == "display" for t in threading.enumerate())
    with pytest.raises(OutputError, match="cannot open a window"):
        window.open()


def test_an_unopened_sink_refuses_frames(tmp_path: Path) -> None:
    sink = VideoFileSink(tmp_path / "o.mp4", fps=25, time_base=None)  # type: ignore[arg-type]
    with pytest.raises(OutputError, match="not open"):
        sink.write(dark_frame(8, 8), dark_frame(8, 8), 0)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("kind", ["file", "folder", "image", "synthetic", "capture"])
def test_every_source_reports_the_same_fields(tmp_path: Path, clip: Path, kind: str) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), dark_frame(8, 8))
    src: Source = {
        "file": lambda: FileSource(clip),
        "folder": lambda: FolderSource(folder),
        "image": lambda: ImageSource(folder / "a.png"),
        "synthetic": lambda: SyntheticSource(fps=10, width=16, height=8, frames=2),
        "capture": lambda: CaptureSource("rtsp://x", "rtsp://x", network=True),
    }[kind]()
    assert isinstance(src.reconnects, int) and isinstance(src.dropped, int) and src.down is False
    assert isinstance(src.frame_count, int) and isinstance(src.live, bool) and src.audio_stream is None
    assert not src.is_open


def test_a_synthetic_source_counts_the_frames_it_skips() -> None:
    import time

    with SyntheticSource(fps=50, width=16, height=8, frames=0) as src:
        assert src.read().status is ReadStatus.FRAME
        time.sleep(0.3)  # a slow reader: about 15 ticks go by
        assert src.read().status is ReadStatus.FRAME
        assert 8 <= src.dropped <= 20


def test_a_synthetic_source_refuses_unknown_settings() -> None:
    """A typo (``fsp=30``) used to run forever at the default rate."""
    from nightvision.errors import InputError

    for uri in ("synthetic://?fsp=30", "synthetic://?fps=30&size=64x48&frame=9"):
        with pytest.raises(InputError, match="unknown setting"):
            sources.make_source(uri)
    with pytest.raises(InputError, match="fps needs a value"):
        sources.make_source("synthetic://?fps")
    src = sources.make_source("synthetic://?fps=30&size=64x48&frames=2&stamp=")
    assert isinstance(src, SyntheticSource) and src.frame_count == 2


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("fps=inf", "0 < fps <= 1000"),  # (a traceback from the clock, as nan)
        ("fps=nan", "0 < fps <= 1000"),
        ("fps=1e9", "0 < fps <= 1000"),  # (no frame delivered and none counted)
        ("fps=abc", "fps must be a number, got 'abc'"),
        ("frames=1.5", "frames must be a whole number, got '1.5'"),
    ],
)
def test_a_synthetic_sources_bad_numbers_are_one_line_errors(query: str, named: str) -> None:
    from nightvision.errors import InputError

    with pytest.raises(InputError, match=re.escape(named)):
        sources.make_source(f"synthetic://?{query}")


@pytest.mark.parametrize("size", ["1x1", "6x6", "11x8", "3x200", "200x3"])
def test_a_tiny_synthetic_source_delivers_its_frames(size: str) -> None:
    """Widths of 6-11 px hung drawing the street (buildings 0 px wide), and 5 or less raised."""
    with sources.make_source(f"synthetic://?fps=1000&size={size}&frames=2") as src:
        w, h = (int(v) for v in size.split("x"))
        read = src.read()
        assert read.status is ReadStatus.FRAME and read.frame is not None and read.frame.shape == (h, w, 3)


def test_the_synthetic_sources_fast_noise_has_the_exact_noises_statistics() -> None:
    """The live synthetic source draws its noise from a Gaussian approximation of the sample clip's shot noise:
    same mean level and same frame-to-frame variance (on the still upper part of the street), fresh noise every
    frame, and the same frames for the same seed."""
    from nightvision.sample import sample_frames

    def stats(fast: bool) -> tuple[float, float, float]:
        frames = np.stack(list(sample_frames(320, 180, 8, seed=3, fast=fast))).astype(np.float64)[:, :100]
        diffs = frames[1:] - frames[:-1]
        return float(frames.mean()), float(diffs.var() / 2), float(np.mean(diffs == 0))

    (mean, var, same), (fast_mean, fast_var, fast_same) = stats(False), stats(True)
    assert fast_mean == pytest.approx(mean, rel=0.02) and fast_var == pytest.approx(var, rel=0.05)
    assert fast_same < 0.5 and fast_same == pytest.approx(same, abs=0.05)  # no frame repeats the last one's noise
    again = next(sample_frames(320, 180, 1, seed=3, fast=True))
    assert np.array_equal(again, next(sample_frames(320, 180, 1, seed=3, fast=True)))


class DownSource(Source):
    """A live source that fails: down, reading nothing, until closed."""

    live = True

    def __init__(self) -> None:
        self.uri = "fake://down"

    @property
    def down(self) -> bool:
        return True

    def _read(self, timeout: float) -> Read:
        import time

        time.sleep(0.05)
        return Read(ReadStatus.TIMEOUT)


def test_the_status_says_when_the_source_is_down() -> None:
    seen: list[str] = []
    pipeline = Pipeline(DownSource(), None, [NullSink()], on_status=lambda s: seen.append(s.status_line()))
    threading.Timer(1.6, pipeline.stop).start()
    stats = pipeline.run()
    assert seen and seen[-1].startswith("SOURCE DOWN, reconnecting")
    assert stats.source_down and stats.frames_in == 0 and stats.stopped_by == "stopped"
