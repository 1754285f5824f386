"""The real pipeline: live drops and bounded latency, lossless files in order, MJPEG over HTTP, reconnects,
SIGINT leaving a playable file, and temporal smoothing."""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from nightvision import Enhancer
from nightvision.enhancer import FrameJob
from nightvision.errors import InputError, OutputError, SourceError
from nightvision.io.video import VideoReader, VideoWriter
from nightvision.stream.pipeline import Pipeline
from nightvision.stream.sinks import MjpegSink, NullSink, Sink, VideoFileSink, make_sink, open_sink
from nightvision.stream.sources import FileSource, SyntheticSource, open_source, redact
from nightvision.stream.temporal import CurveSmoother, flicker, motion
from tests.conftest import dark_frame


class RecordingSink(Sink):
    def __init__(self) -> None:
        self.uri = "record://"
        self.pts: list[int] = []
        self.originals: list[np.ndarray] = []
        self.frames: list[np.ndarray] = []

    def _write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        self.pts.append(pts)
        self.originals.append(original)
        self.frames.append(frame)


class SlowEnhancer(Enhancer):
    """The shipped model, made deliberately slow (a stand-in for a heavy model on a weak machine)."""

    def __init__(self, delay: float) -> None:
        super().__init__("zero-dce++", threads=1)
        self.delay = delay

    def infer(self, job: FrameJob) -> FrameJob:
        time.sleep(self.delay)
        return super().infer(job)


@pytest.fixture(scope="module")
def enhancer() -> Enhancer:
    return Enhancer("zero-dce++", threads=1)


def test_live_source_drops_stale_frames_and_latency_stays_bounded() -> None:
    source = SyntheticSource(fps=40, width=160, height=90, frames=160).open()  # 4 s at 40 fps
    sink = NullSink()
    tracemalloc.start()
    pipeline = Pipeline(source, SlowEnhancer(0.05), [sink])  # at most 20 fps
    memory: list[int] = []
    sampler = threading.Timer(1.5, lambda: memory.append(tracemalloc.get_traced_memory()[0]))
    sampler.start()
    stats = pipeline.run()
    memory.append(tracemalloc.get_traced_memory()[0])
    tracemalloc.stop()
    assert stats.policy == "latest"
    assert stats.dropped > 30  # about half the frames cannot be processed in time
    assert stats.frames_out == sink.frames and stats.frames_in == stats.frames_out + stats.dropped + 0
    assert 40 <= stats.frames_out <= 100
    assert stats.latency_ms["p95"] < 400  # one frame waiting per stage at most, never a backlog
    assert memory[1] - memory[0] < 20e6


def test_file_runs_lossless_and_in_order(tmp_path: Path, enhancer: Enhancer) -> None:
    src = tmp_path / "in.mp4"
    with VideoWriter(src, 96, 64, 25) as w:
        for i in range(40):
            w.write(dark_frame(64, 96, seed=i))
    with VideoReader(src) as r:
        originals = [f.image for f in r.frames()]
    sink = RecordingSink()
    with open_source(str(src)) as source:
        stats = Pipeline(source, SlowEnhancer(0.01), [sink]).run()
    assert stats.policy == "lossless" and stats.dropped == 0
    assert len(sink.pts) == 40 and sink.pts == sorted(sink.pts)
    assert all(np.array_equal(a, b) for a, b in zip(originals, sink.originals, strict=True))


def test_video_output_keeps_every_frame(tmp_path: Path, enhancer: Enhancer) -> None:
    src = tmp_path / "in.mp4"
    with VideoWriter(src, 96, 64, 25) as w:
        for i in range(30):
            w.write(dark_frame(64, 96, seed=i))
    with open_source(str(src)) as source:
        sink = open_sink(str(tmp_path / "out.mp4"), fps=source.fps, time_base=source.time_base)
        Pipeline(source, enhancer, [sink]).run()
    with VideoReader(src) as a, VideoReader(tmp_path / "out.mp4") as b:
        assert [f.pts for f in a.frames()] == [f.pts for f in b.frames()]


def test_mjpeg_sink_is_read_by_an_http_client(enhancer: Enhancer) -> None:
    sink = MjpegSink("127.0.0.1", 0).open()
    source = SyntheticSource(fps=30, width=160, height=90, frames=60).open()
    pipeline = Pipeline(source, enhancer, [sink])
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    try:
        page = urllib.request.urlopen(sink.uri, timeout=5).read()
        assert b"/stream.mjpg" in page
        snapshot = urllib.request.urlopen(sink.uri + "snapshot.jpg", timeout=5).read()
        assert snapshot[:2] == b"\xff\xd8"
        with urllib.request.urlopen(sink.uri + "stream.mjpg", timeout=5) as stream:
            assert "multipart/x-mixed-replace" in stream.headers["Content-Type"]
            data = stream.read(40_000)
        assert data.count(b"--frame") >= 2
    finally:
        pipeline.stop()
        runner.join(5)
    assert not runner.is_alive()


def _serve(port: int, stop: threading.Event) -> tuple[MjpegSink, threading.Thread]:
    """An MJPEG server on ``port`` fed a frame every 40 ms until ``stop``; stop it with :func:`_close`."""
    server = MjpegSink("127.0.0.1", port).open()

    def feed() -> None:
        i = 0
        while not stop.is_set():
            server.write(dark_frame(72, 128, seed=i % 5), dark_frame(72, 128), i)
            i += 1
            time.sleep(0.04)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    return server, feeder


def _close(server: MjpegSink, feeder: threading.Thread, stop: threading.Event) -> None:
    """Stop the feed, then the server (closing it under a write in flight made the feed thread raise)."""
    stop.set()
    feeder.join(5)
    server.close()


def test_network_source_survives_a_server_restart(enhancer: Enhancer) -> None:
    stop_feed = threading.Event()
    server, feeder = _serve(0, stop_feed)
    port = server.port
    source = open_source(f"http://127.0.0.1:{port}/stream.mjpg", timeout_ms=1000)
    sink = RecordingSink()
    pipeline = Pipeline(source, enhancer, [sink])
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    try:
        time.sleep(2.0)
        before = len(sink.pts)
        assert before > 5
        _close(server, feeder, stop_feed)  # the server goes away ...
        time.sleep(1.5)
        stop_feed = threading.Event()
        server, feeder = _serve(port, stop_feed)  # ... and comes back on the same port
        deadline = time.monotonic() + 20
        while len(sink.pts) < before + 10 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(sink.pts) >= before + 10, "no frames after the server came back"
        assert pipeline.stats().reconnects >= 1
    finally:
        pipeline.stop()
        runner.join(5)
        _close(server, feeder, stop_feed)
        source.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_file_keeps_a_playable_partial_file_and_exits_non_zero(tmp_path: Path, sig: int) -> None:
    src = tmp_path / "long.mp4"
    frames = [dark_frame(180, 320, seed=i) for i in range(7)]
    with VideoWriter(src, 320, 180, 30, preset="ultrafast") as w:
        for i in range(1500):  # long enough that even a fast machine is still working when SIGINT comes
            w.write(frames[i % 7])
    out = tmp_path / "out.mp4"
    cmd = [
        sys.executable,
        "-m",
        "nightvision",
        "run",
        str(src),
        "-o",
        str(out),
        "--headless",
        "--stats-json",
        str(tmp_path / "s.json"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()  # the first status line (not a tty: one a second): frames are flowing
    assert line.startswith("out ") and proc.poll() is None, line + str(proc.communicate())
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=10)
    assert time.monotonic() - t0 < 3.0
    name = signal.Signals(sig).name
    assert proc.returncode == {"SIGINT": 130, "SIGTERM": 143}[name], err
    assert not out.exists()  # the input was not finished: the output says so in its name
    partial = tmp_path / "out.partial.mp4"
    assert f"interrupted by {name} at frame" in err and "of 1500" in err and str(partial) in err, err
    with VideoReader(partial) as r:
        n = len(list(r.frames()))
    assert 0 < n < 1500
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["stopped_by"] == name and stats["frames_out"] == n
    assert stats["frames_in"] == stats["frames_out"] + stats["dropped"]
    assert not list(tmp_path.glob(".*tmp*"))


def test_smoothing_steadies_the_curve_keeps_motion_and_resets_on_cuts(enhancer: Enhancer) -> None:
    """What the smoother guarantees. (Whether that lowers flicker depends on the footage: on the real clips
    we measured it does not; see benchmarks/flicker.py and the pipeline docstring.)"""
    rng = np.random.default_rng(0)
    base = dark_frame(90, 160, seed=3).astype(np.float64)
    frames = []
    for i in range(40):  # a static dark scene with a moving bright square and strong sensor noise
        f = base.copy()
        f[30:50, 4 * i % 140 : 4 * i % 140 + 20] += 30
        frames.append(np.clip(f + rng.normal(0, 4, f.shape), 0, 255).astype(np.uint8))

    def run(smoother: CurveSmoother | None) -> tuple[list[np.ndarray], list[np.ndarray]]:
        out, curves = [], []
        for f in frames:
            job = enhancer.infer(enhancer.preprocess(f))
            job = smoother(job) if smoother else job
            curves.append(job.curve.copy())
            out.append(enhancer.postprocess(job))
        return out, curves

    (raw, raw_curves), (smooth, smooth_curves) = run(None), run(CurveSmoother())

    def wobble(curves: list[np.ndarray]) -> float:
        return float(np.mean([np.abs(b - a).mean() for a, b in itertools.pairwise(curves)]))

    assert wobble(smooth_curves) < 0.6 * wobble(raw_curves)
    assert motion(frames, smooth) > 0.8 * motion(frames, raw)
    assert np.isfinite(flicker(frames, smooth)) and np.isfinite(flicker(frames, raw))

    smoother = CurveSmoother()
    smoother(enhancer.infer(enhancer.preprocess(frames[0])))
    bright = np.clip(frames[1].astype(int) * 6, 0, 255).astype(np.uint8)  # the lights come on: a cut
    job = enhancer.infer(enhancer.preprocess(bright))
    fresh = job.curve.copy()
    assert smoother.cuts == 0
    assert np.array_equal(smoother(job).curve, fresh) and smoother.cuts == 1


def test_bad_sources_and_sinks() -> None:
    with pytest.raises(InputError, match="no such file"):
        open_source("/nonexistent/clip.mp4")
    with pytest.raises(SourceError, match="no camera"):
        open_source("/dev/video99")
    with pytest.raises(SourceError, match="GStreamer"):
        open_source("gst://videotestsrc ! nosuchelement")
    with pytest.raises(InputError, match="unsupported output"):
        open_sink("out.gif")
    for uri in ("ftp://host/x/", "https://example.com/live", "rtmp://127.0.0.1/live"):  # not a folder of PNGs
        with pytest.raises(InputError, match=r"unsupported output .*:// is not an output"):
            make_sink(uri)
    for name in ("null", "display", "null/"):
        with pytest.raises(InputError, match=f"did you mean {name.rstrip('/')}://"):
            make_sink(name)
    assert redact("rtsp://admin:hunter2@cam.local/stream") == "rtsp://admin:***@cam.local/stream"


def test_an_image_sequence_overwritten_by_a_shorter_run_says_what_is_left(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``run ... -o frames/ --overwrite`` after a longer run leaves the earlier run's later frames: a mixed
    sequence, said in a warning. Nothing but the frames written is touched, even when a run fails or stops."""
    folder = tmp_path / "frames"
    with make_sink(f"{folder}/", overwrite=True) as sink:
        for i in range(5):
            frame = np.full((12, 16, 3), 40 + i, np.uint8)
            sink.write(frame, frame, i)
    sink = make_sink(f"{folder}/", overwrite=True).open()
    sink.abort()  # a run that failed before its first frame (e.g. its model did not load)
    assert len(list(folder.iterdir())) == 5
    with caplog.at_level(logging.WARNING), make_sink(f"{folder}/", overwrite=True) as sink:
        for i in range(3):
            frame = np.full((8, 10, 3), 40 + i, np.uint8)
            sink.write(frame, frame, i)
    assert "holds files after this run's last frame (000003.png and on)" in caplog.text
    assert len(list(folder.iterdir())) == 5
    with pytest.raises(OutputError, match="exists"):  # and without --overwrite, nothing is written
        make_sink(f"{folder}/").open()
    fresh = tmp_path / "new" / "frames"  # a run that fails before its first frame leaves no folder it made
    make_sink(f"{fresh}/").open().abort()
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "note.txt").write_text("kept")
    make_sink(f"{tmp_path / 'mine' / 'frames'}/").open().abort()  # the user's folder stays, with its files
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["note.txt"]


def test_display_without_a_screen_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(OutputError, match="cannot open a window"):
        open_sink("display://")


def _xwd_screenshot(display: str) -> np.ndarray:
    """The root window of an X display as (H, W, 3) BGR, read from ``xwd`` (24-bit, 32 bits per pixel)."""
    raw = subprocess.run(["xwd", "-root", "-silent", "-display", display], capture_output=True, check=True).stdout
    header = np.frombuffer(raw[:100], ">u4")
    size, width, height, bpp, stride, ncolors = header[0], header[4], header[5], header[11], header[12], header[19]
    assert bpp == 32, f"expected a 32-bit screen, got {bpp}"
    start = int(size) + 12 * int(ncolors)
    pixels = np.frombuffer(raw[start : start + int(stride) * int(height)], np.uint8).reshape(int(height), int(stride))
    return pixels[:, : int(width) * 4].reshape(int(height), int(width), 4)[:, :, :3]


@pytest.fixture
def xvfb(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    import shutil

    if not (shutil.which("Xvfb") and shutil.which("xwd")):
        pytest.skip("needs Xvfb and xwd (Debian: xvfb x11-apps); .ci/run installs them")
    display = f":{90 + os.getpid() % 9}"
    server = subprocess.Popen(["Xvfb", display, "-screen", "0", "640x480x24"], stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    monkeypatch.setenv("DISPLAY", display)
    yield display
    server.terminate()
    server.wait(5)


def test_window_shows_the_enhanced_frame_under_xvfb(xvfb: str, enhancer: Enhancer) -> None:
    import shutil

    source = SyntheticSource(fps=20, width=320, height=180, frames=0).open()
    window = open_sink("display://")
    pipeline = Pipeline(source, enhancer, [window])
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while window.shown < 5 and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.1)
        time.sleep(0.3)
        screen = _xwd_screenshot(xvfb)
        dark = source.read().frame
        assert dark is not None
        shown = screen[:180, :320]  # no window manager: the window sits at the top left
        assert shown.mean() > dark.mean() + 15, (shown.mean(), dark.mean())  # the enhanced frame, not the dark one
        if shutil.which("xdotool"):
            subprocess.run(
                ["xdotool", "search", "--name", "nightvision", "windowfocus", "--sync", "key", "q"], timeout=10
            )
            runner.join(5)
            assert not runner.is_alive() and pipeline.stats().stopped_by == "window closed"
    finally:
        pipeline.stop()
        runner.join(5)
    assert not runner.is_alive()


def test_passwords_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("DEBUG"), pytest.raises(SourceError):
        open_source("http://user:hunter2@127.0.0.1:9/stream.mjpg", timeout_ms=300)
    assert "hunter2" not in caplog.text


def test_environment_has_no_leftover_threads() -> None:
    names = {t.name for t in threading.enumerate()}
    assert not names & {"source", "preprocess", "infer", "postprocess", "output", "status"}, names
    assert os.getpid() > 0


def test_a_camera_that_disappears_ends_with_a_clear_error(tmp_path: Path, enhancer: Enhancer) -> None:
    import cv2

    from nightvision.stream.sources import CaptureSource

    clip = tmp_path / "cam.mp4"
    with VideoWriter(clip, 64, 48, 30) as w:
        for i in range(10):
            w.write(dark_frame(48, 64, seed=i))
    camera = CaptureSource("/dev/video0", str(clip), api=cv2.CAP_FFMPEG).open()  # reads stop after 10 frames
    sink = RecordingSink()
    pipeline = Pipeline(camera, enhancer, [sink])
    assert pipeline.policy == "latest"
    with pytest.raises(SourceError, match=r"camera /dev/video0 stopped delivering frames \(unplugged\?\)"):
        pipeline.run()
    assert len(sink.pts) <= 10  # the clip reads faster than a camera delivers: the error may come first
    assert not {t.name for t in threading.enumerate()} & {"source", "preprocess", "infer", "postprocess", "output"}


def test_the_status_shows_the_current_rate_not_the_average() -> None:
    class SlowsDown(NullSink):
        def __init__(self) -> None:
            super().__init__()
            self.slow_after = 0.0

        def _write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
            super()._write(frame, original, pts)
            if self.slow_after and time.monotonic() > self.slow_after:
                time.sleep(0.2)  # 5 frames a second from now on

    sink = SlowsDown()
    seen: list = []
    source = SyntheticSource(fps=40, width=64, height=36, frames=0)
    pipeline = Pipeline(source, None, [sink], on_status=seen.append)
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    time.sleep(1.5)
    sink.slow_after = time.monotonic()
    time.sleep(3.2)
    pipeline.stop()
    runner.join(5)
    last = seen[-1]
    assert last.fps_out_now < 7 and last.fps_out > 10, (last.fps_out_now, last.fps_out)
    assert f"out {last.fps_out_now:5.1f} fps" in last.status_line()


def test_frames_in_equal_out_plus_dropped_when_a_file_run_is_stopped(tmp_path: Path) -> None:
    src = tmp_path / "in.mp4"
    with VideoWriter(src, 96, 64, 25) as w:
        for i in range(200):
            w.write(dark_frame(64, 96, seed=i % 5))
    out = tmp_path / "out.mp4"
    source = FileSource(src).open()
    assert source.time_base is not None
    sink = VideoFileSink(out, fps=source.fps, time_base=source.time_base)
    pipeline = Pipeline(source, SlowEnhancer(0.02), [sink], depth=4)
    threading.Timer(1.0, pipeline.stop, args=("SIGINT",)).start()
    stats = pipeline.run()
    assert stats.stopped_by == "SIGINT" and not stats.complete and stats.frame_count == 200
    assert stats.frames_in == stats.frames_out + stats.dropped and stats.dropped == stats.dropped_at_stop > 0
    assert not out.exists() and sink.written == tmp_path / "out.partial.mp4"
    with VideoReader(sink.written) as r:
        assert len(list(r.frames())) == stats.frames_out


def test_a_slow_model_call_does_not_hold_up_a_stop(tmp_path: Path) -> None:
    source = SyntheticSource(fps=30, width=64, height=36, frames=0)
    pipeline = Pipeline(source, SlowEnhancer(3.0), [NullSink()], grace=0.5)
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    pipeline.stop()
    runner.join(5)
    assert not runner.is_alive() and time.monotonic() - t0 < 1.5
    stats = pipeline.stats()
    assert stats.frames_in == stats.frames_out + stats.dropped
    for t in threading.enumerate():  # the model call left behind ends on its own, its result discarded
        if t.name == "infer":
            t.join(5)
    assert pipeline.stats().frames_out == stats.frames_out


def test_signals_ask_a_listening_job_to_stop_and_interrupt_anything_else() -> None:
    from nightvision.stream.pipeline import Interrupted, stop_on_signals

    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals() as request:
        with pytest.raises(Interrupted) as nobody:  # e.g. a model still loading: stop at once
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        assert nobody.value.signal == "SIGTERM" and not request.is_set()
        with request.listening():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)  # the same request twice (GNU timeout: the command, its group)
            time.sleep(0.1)
            assert request.reason == "SIGINT"  # asked, not forced
            time.sleep(0.3)
            with pytest.raises(Interrupted):  # a second signal does not wait
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_stopped_file_run_never_replaces_a_file_with_its_partial_output(tmp_path: Path) -> None:
    """The input is ``out.partial.mp4`` and the output ``out.mp4``: the frames done go to ``out-2.partial.mp4``,
    the input is untouched (a careless user's Ctrl-C used to replace it with the partial output)."""
    src = tmp_path / "out.partial.mp4"
    with VideoWriter(src, 96, 64, 25) as w:
        for i in range(200):
            w.write(dark_frame(64, 96, seed=i % 5))
    before = src.read_bytes()
    source = FileSource(src).open()
    assert source.time_base is not None
    sink = VideoFileSink(tmp_path / "out.mp4", fps=source.fps, time_base=source.time_base)
    pipeline = Pipeline(source, SlowEnhancer(0.02), [sink], depth=4)
    threading.Timer(1.0, pipeline.stop, args=("SIGINT",)).start()
    stats = pipeline.run()
    assert stats.stopped_by == "SIGINT" and not stats.complete
    assert src.read_bytes() == before
    assert sink.written == tmp_path / "out-2.partial.mp4"
    with VideoReader(sink.written) as r:
        assert len(list(r.frames())) == stats.frames_out


def test_a_folder_of_images_to_a_video_gets_increasing_timestamps(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Images carry no time: the pipeline makes it up from the read time (1 ms), and two images read in one
    millisecond used to share a timestamp (the video sink then warned and moved one)."""
    from fractions import Fraction

    import cv2

    from nightvision.stream.sources import FolderSource

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(40):
        cv2.imwrite(str(folder / f"{i:03d}.png"), dark_frame(24, 32, seed=i))
    out = tmp_path / "out.mp4"
    stats = Pipeline(FolderSource(folder), None, [VideoFileSink(out, fps=25, time_base=Fraction(1, 1000))]).run()
    assert stats.frames_out == 40 and "timestamps must increase" not in caplog.text
    with VideoReader(out) as r:
        pts = [f.pts for f in r.frames()]
    assert len(pts) == 40 and pts == sorted(set(pts))
