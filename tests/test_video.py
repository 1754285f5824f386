"""Video files end to end: frame count, size, rate, timestamps and audio survive enhancement."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from nightvision import Enhancer
from nightvision.errors import InputError, SourceError
from nightvision.io.video import VideoReader, VideoWriter
from nightvision.stream.jobs import Progress, enhance_path, run_stream
from nightvision.stream.pipeline import StopRequest
from tests.conftest import dark_frame, shared_path


def make_clip(
    path: Path,
    *,
    frames: int = 24,
    size: tuple[int, int] = (96, 128),
    fps: int = 24,
    audio: bool = True,
) -> Path:
    """A dark test clip with variable frame timing (every 5th gap doubled) and an AAC sine track."""
    h, w = size
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.time_base = v.codec_context.time_base = Fraction(1, fps * 100)
        a = out.add_stream("aac", rate=48000) if audio else None
        pts = 0
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(dark_frame(h, w, seed=i), format="bgr24")
            frame.pts, frame.time_base = pts, v.time_base
            pts += 100 * (2 if i % 5 == 4 else 1)
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        if a is not None:
            seconds = pts / (fps * 100)
            t = np.arange(int(48000 * seconds)) / 48000
            samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, len(samples), 1024):
                chunk = samples[start : start + 1024]
                af = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
                af.sample_rate, af.pts = 48000, start
                for p in a.encode(af):
                    out.mux(p)
            for p in a.encode(None):
                out.mux(p)
    return path


def probe(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        pts = [f.pts * v.time_base for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        audio = [p for p in c.demux(audio=0) if p.size] if c.streams.audio else []
        return {
            "size": (v.width, v.height),
            "pts": pts,
            "codec": v.codec_context.name,
            "audio_packets": len(audio),
            "audio_codec": c.streams.audio[0].codec_context.name if c.streams.audio else None,
        }


@pytest.fixture(scope="module")
def enhancer() -> Enhancer:
    return Enhancer("zero-dce++", threads=1)


def test_enhanced_video_keeps_frames_timing_and_audio(tmp_path: Path, enhancer: Enhancer) -> None:
    src = make_clip(tmp_path / "in.mp4")
    report = enhance_path(src, tmp_path / "out.mp4", enhancer=enhancer)
    a, b = probe(src), probe(tmp_path / "out.mp4")
    assert b["size"] == a["size"] and b["codec"] == "h264"
    assert b["pts"] == a["pts"] and len(b["pts"]) == 24 == report.frames
    assert b["audio_codec"] == "aac" and b["audio_packets"] == a["audio_packets"] > 0
    assert report.luma_out > report.luma_in + 20
    assert [p.name for p in tmp_path.iterdir()] != [] and not list(tmp_path.glob(".*tmp*"))


def test_odd_size_is_kept(tmp_path: Path, enhancer: Enhancer) -> None:
    src = tmp_path / "odd.mkv"
    with VideoWriter(src, 33, 17, 10) as w:
        for i in range(5):
            w.write(dark_frame(17, 33, seed=i))
    enhance_path(src, tmp_path / "odd-out.mkv", enhancer=enhancer)
    with VideoReader(tmp_path / "odd-out.mkv") as r:
        assert (r.info.width, r.info.height) == (33, 17)
        assert len(list(r.frames())) == 5


def test_truncated_video_leaves_no_output(tmp_path: Path, enhancer: Enhancer) -> None:
    src = tmp_path / "full.mp4"
    with VideoWriter(src, 128, 96, 24, faststart=True) as w:  # index first: a cut file still opens
        for i in range(60):
            w.write(dark_frame(96, 128, seed=i))
    data = src.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises((SourceError, InputError), match=r"truncated|damaged|cannot"):
        enhance_path(cut, tmp_path / "out.mp4", enhancer=enhancer)
    assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(".*tmp*"))


def test_writer_refuses_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unsupported video suffix"):
        VideoWriter(tmp_path / "x.gif", 16, 16, 10)


@pytest.mark.shared
def test_real_clip_with_audio(tmp_path: Path, enhancer: Enhancer) -> None:
    src = shared_path("videos", "dim-room-audio.mp4")
    report = enhance_path(src, tmp_path / "room.mp4", enhancer=enhancer)
    a, b = probe(src), probe(tmp_path / "room.mp4")
    assert report.frames == len(a["pts"]) == len(b["pts"]) == 205
    assert b["pts"] == a["pts"] and b["size"] == a["size"]
    assert b["audio_packets"] == a["audio_packets"] > 0
    assert report.luma_out > report.luma_in


def test_run_on_a_file_keeps_its_timing_and_audio_too(tmp_path: Path, enhancer: Enhancer) -> None:
    src = make_clip(tmp_path / "in.mp4")
    out = tmp_path / "out.mp4"
    stats = run_stream(str(src), [str(out)], enhancer=enhancer, headless=True)
    assert stats.policy == "lossless" and stats.complete and stats.frames_out == 24 == stats.frame_count
    a, b = probe(src), probe(out)
    assert b["pts"] == a["pts"] and b["audio_codec"] == "aac" and b["audio_packets"] == a["audio_packets"] > 0


def test_an_interrupted_job_keeps_a_playable_partial_file_with_its_audio(tmp_path: Path, enhancer: Enhancer) -> None:
    src = make_clip(tmp_path / "in.mp4")
    stop = StopRequest()

    def stop_midway(progress: Progress) -> None:
        stop.set("SIGTERM")

    class Slow:
        name = "slow"

        def __call__(self, frame: np.ndarray) -> np.ndarray:
            time.sleep(0.2)  # the first progress report (after a second) comes at about frame 5
            return frame

        def reset(self) -> None:
            pass

    report = enhance_path(src, tmp_path / "out.mp4", enhancer=enhancer, stop=stop, on_progress=stop_midway,
                          pre_stages=[Slow()])  # fmt: skip
    assert report.stopped_by == "SIGTERM" and report.files == 0 and "of 24 of" in report.stopped_at
    assert report.partial == tmp_path / "out.partial.mp4" and not (tmp_path / "out.mp4").exists()
    b = probe(report.partial)
    assert 0 < len(b["pts"]) == report.frames < 24 and b["audio_packets"] > 0
    assert b["pts"] == probe(src)["pts"][: len(b["pts"])]
    assert not list(tmp_path.glob(".*tmp*"))
