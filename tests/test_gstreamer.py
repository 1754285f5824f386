"""``gst://PIPELINE`` through gst-launch-1.0 (no GStreamer in OpenCV needed), with videotestsrc."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import numpy as np
import pytest

from nightvision.errors import InputError, SourceError
from nightvision.stream.gstreamer import GstSource, launch_args
from nightvision.stream.pipeline import Pipeline
from nightvision.stream.sinks import NullSink
from nightvision.stream.sources import ReadStatus, make_source, open_source

pytestmark = pytest.mark.skipif(
    shutil.which("gst-launch-1.0") is None
    or subprocess.run(["gst-inspect-1.0", "videotestsrc"], capture_output=True).returncode != 0,
    reason="needs GStreamer's gst-launch-1.0 and videotestsrc: "
    "apt install gstreamer1.0-tools gstreamer1.0-plugins-base",
)


def gone(pid: int) -> bool:
    """The process has exited and been reaped (no zombie left)."""
    return not os.path.exists(f"/proc/{pid}")


def test_the_pip_opencv_needs_no_gstreamer_for_it() -> None:
    source = make_source("gst://videotestsrc ! video/x-raw,width=64,height=48")
    assert isinstance(source, GstSource)  # whatever OpenCV was built with (the pip wheels: without GStreamer)


def test_frames_come_with_the_size_and_rate_of_the_caps() -> None:
    # 322 pixels of BGR make rows of 966 bytes, which GStreamer pads to 968: each row must still line up
    pipeline = "videotestsrc is-live=true pattern=smpte ! video/x-raw,width=322,height=90,framerate=30/1"
    with open_source(f"gst://{pipeline}") as src:
        assert src.live and src.fps == 30.0
        frames = []
        deadline = time.monotonic() + 30
        while len(frames) < 10 and time.monotonic() < deadline:
            r = src.read(1.0)
            if r.status is ReadStatus.FRAME:
                assert r.frame is not None
                frames.append(r.frame)
    assert len(frames) == 10 and frames[0].shape == (90, 322, 3) and frames[0].dtype == np.uint8
    bars = frames[0][:50]  # the top of SMPTE bars: seven vertical bars, the same in every row
    assert (bars == bars[:1]).all()
    # white, yellow, cyan, green, magenta, red, blue, in BGR order
    expected = [[255, 255, 255], [0, 255, 255], [255, 255, 0], [0, 255, 0], [255, 0, 255], [0, 0, 255], [255, 0, 0]]
    centres = [bars[0, 23 + 46 * i].tolist() for i in range(7)]
    assert centres == expected, centres


def test_a_finite_pipeline_ends_and_the_pipeline_gets_every_frame() -> None:
    source = make_source("gst://videotestsrc num-buffers=24 ! video/x-raw,width=64,height=48 ! appsink")
    sink = NullSink()
    stats = Pipeline(source, None, [sink], policy="lossless").run()
    assert stats.complete and stats.frames_out == sink.frames == 24
    assert isinstance(source, GstSource) and source.pid is not None and gone(source.pid)


def test_the_process_is_stopped_and_reaped_on_close() -> None:
    src = open_source("gst://videotestsrc is-live=true ! video/x-raw,width=64,height=48,framerate=30/1")
    assert isinstance(src, GstSource) and src.pid is not None
    pid = src.pid
    assert src.read(10.0).status is ReadStatus.FRAME and not gone(pid)
    src.close()
    assert gone(pid)


@pytest.mark.parametrize(
    ("pipeline", "reason"),
    [
        ("videotestsrc ! ! videoconvert", "syntax error"),
        (
            "videotestsrc ! nosuchelement",
            'no element "nosuchelement" (not installed? `gst-inspect-1.0 nosuchelement` says which plugin has it)',
        ),
        ("filesrc location=/nonexistent/clip.mkv ! decodebin", "filesrc0: "),
    ],
)
def test_a_bad_pipeline_is_one_line_with_the_pipeline(pipeline: str, reason: str) -> None:
    source = make_source(f"gst://{pipeline}")
    with pytest.raises(SourceError) as caught:
        source.open()
    message = str(caught.value)
    assert message.startswith(f"GStreamer pipeline {pipeline!r} failed: {reason}") and "\n" not in message, message
    assert isinstance(source, GstSource) and source.pid is not None and gone(source.pid)


def test_quotes_are_split_as_a_shell_would() -> None:
    args = launch_args('videotestsrc ! "video/x-raw(memory:NVMM), width=64" ! appsink drop=true', 7)
    assert args[:6] == ["gst-launch-1.0", "-v", "videotestsrc", "!", "video/x-raw(memory:NVMM), width=64", "!"]
    tail = ["videoconvert", "!", "video/x-raw,format=BGR", "!", "fdsink", "name=nightvision_out", "fd=7", "sync=false"]
    assert "appsink" not in args and args[-8:] == tail
    with pytest.raises(InputError, match="unbalanced quotes"):
        launch_args("videotestsrc ! 'video/x-raw", 7)
    with pytest.raises(InputError, match="needs a pipeline"):
        launch_args("  ", 7)


def test_a_password_in_the_pipeline_is_never_printed() -> None:
    if subprocess.run(["gst-inspect-1.0", "rtspsrc"], capture_output=True).returncode != 0:
        pytest.skip("needs rtspsrc: apt install gstreamer1.0-plugins-good")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SourceError) as caught:
        open_source(f"gst://rtspsrc location=rtsp://admin:hunter2@127.0.0.1:{port}/x ! decodebin")
    assert str(caught.value).startswith(
        f"GStreamer pipeline 'rtspsrc location=rtsp://admin:***@127.0.0.1:{port}/x ! decodebin' failed: rtspsrc0: "
    )
    assert "hunter2" not in str(caught.value)


def test_a_source_dropped_without_close_still_stops_its_process() -> None:
    import gc

    src = open_source("gst://videotestsrc is-live=true ! video/x-raw,width=64,height=48,framerate=30/1")
    assert isinstance(src, GstSource) and src.pid is not None
    pid = src.pid
    del src
    gc.collect()
    assert gone(pid)
