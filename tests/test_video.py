"""Video files end to end: frame count, size, rate, timestamps and audio survive enhancement."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from nightvision import Enhancer
from nightvision.errors import InputError, OutputError, SourceError
from nightvision.io import video
from nightvision.io.video import OUTPUT_FORMATS, VIDEO_SUFFIXES, OutputFormat, VideoReader, VideoWriter
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
    audio_codec: str = "aac",
    stereo: bool = False,
) -> Path:
    """A dark test clip with variable frame timing (every 5th gap doubled) and a sine track (AAC, or
    ``audio_codec``: libopus, flac, pcm_s16le; mono, or the same sine on two channels)."""
    h, w = size
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.time_base = v.codec_context.time_base = Fraction(1, fps * 100)
        layout = "stereo" if stereo else "mono"
        a = out.add_stream(audio_codec, rate=48000, layout=layout) if audio else None
        sample_format = {"aac": "fltp", "libopus": "flt", "flac": "s16", "pcm_s16le": "s16"}[audio_codec]
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
                if sample_format == "s16":
                    chunk = (chunk * 32767).astype(np.int16)
                if stereo:  # (interleaved: one row; planar: a row a channel)
                    chunk = np.vstack([chunk, chunk]) if sample_format.endswith("p") else np.repeat(chunk, 2)
                af = av.AudioFrame.from_ndarray(np.atleast_2d(chunk), format=sample_format, layout=layout)
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


def _avi(path: Path, pts: list[int]) -> Path:
    """An AVI at 24 fps whose frames are at ``pts`` (ticks); a skipped tick is an empty index entry."""
    with VideoWriter(path, 64, 48, 24) as w:
        for i, t in enumerate(pts):
            w.write(dark_frame(48, 64, seed=i), t)
    return path


def test_an_avi_keeps_its_timing_through_every_pass(tmp_path: Path, enhancer: Enhancer) -> None:
    """AVI has no presentation times: its frames are timed by their decode times, as FFmpeg's tools time them.
    (PyAV's guessed pts ran one tick late, and each pass moved the video a frame behind its sound.) A skipped
    tick (the previous frame held, as FFmpeg's muxer writes next to audio) is an empty entry that the
    stream's frame count includes: the file is not taken for truncated."""
    ticks = [0, 1, 2, 4, 5, 6, 7, 8]
    src = _avi(tmp_path / "in.avi", ticks)
    with VideoReader(src) as r:
        assert r.info.frames == 9  # eight frames and one empty entry
        assert [f.pts for f in r.frames()] == ticks
    once, twice = tmp_path / "once.avi", tmp_path / "twice.avi"
    assert enhance_path(src, once, enhancer=enhancer).frames == 8
    enhance_path(once, twice, enhancer=enhancer)
    for path in (once, twice):
        with VideoReader(path) as r:
            assert [f.pts for f in r.frames()] == ticks, path.name


def test_a_variable_rate_clip_remuxed_into_avi_by_ffmpeg_reads_whole(tmp_path: Path, ffmpeg: str) -> None:
    """FFmpeg's AVI muxer writes a variable-rate clip on a fine clock with empty entries between the frames and
    after the last one (24 frames, 56 entries here; a phone clip's second: 41 frames, 122 entries): not a
    truncated file. The frames keep their spacing (AVI keeps no pts: with B-frames they start late by the
    decoder's delay, as FFmpeg reads them too)."""
    src = make_clip(tmp_path / "vfr.mp4")
    avi = tmp_path / "vfr.avi"
    subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(src), "-c", "copy", str(avi)], check=True)
    times = []
    for path in (src, avi):
        with VideoReader(path) as r:
            times.append([f.pts * r.info.time_base for f in r.frames()])
    assert len(times[1]) == len(times[0]) == 24
    assert [t - times[1][0] for t in times[1]] == [t - times[0][0] for t in times[0]]


def test_an_avi_with_b_frames_reads_in_time_order(tmp_path: Path) -> None:
    """With B-frames, an AVI's frames are timed by the packets that complete them (FFmpeg's reading), and the
    ones the decoder holds to the end one tick apart; such a file is not split into chunks (its packets' times
    are not its frames')."""
    from nightvision.cluster.chunks import scan_video

    path = tmp_path / "bf.avi"
    with av.open(str(path), "w", format="avi") as out:
        v = out.add_stream("libx264", rate=24)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.options = {"bf": "2", "g": "12"}
        for i in range(30):
            frame = av.VideoFrame.from_ndarray(dark_frame(48, 64, seed=i), format="bgr24")
            frame.pts = i
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
    with VideoReader(path) as r:
        assert r.b_frames
        pts = [f.pts for f in r.frames()]
    assert len(pts) == 30 and pts == list(range(pts[0], pts[0] + 30)), pts
    assert scan_video(path).pts == ()


def test_a_truncated_avi_is_still_found_out(tmp_path: Path) -> None:
    src = _avi(tmp_path / "full.avi", [*range(10), *range(11, 60)])
    cut = tmp_path / "cut.avi"
    data = src.read_bytes()
    cut.write_bytes(data[: len(data) * 7 // 10])  # (at half, the file no longer opens: an error too)
    with pytest.raises(SourceError, match=r"ended after .* of its 60 index entries"), VideoReader(cut) as r:
        list(r.frames())


@pytest.mark.parametrize("suffix", [".mkv", ".webm"])
def test_a_truncated_matroska_is_found_out_by_its_size(tmp_path: Path, suffix: str) -> None:
    """Matroska and WebM state no frame count: a cut file read as a shorter video, and the job succeeded with
    the frames after the cut lost. A cut file is shorter than its Segment element says."""
    src = tmp_path / f"full{suffix}"
    with VideoWriter(src, 128, 96, 24, preset="ultrafast") as w:
        for i in range(48):
            w.write(dark_frame(96, 128, seed=i))
    with VideoReader(src) as r:
        assert r.info.frames == 0 and len(list(r.frames())) == 48  # the whole file passes
    data = src.read_bytes()
    for keep in (len(data) * 3 // 4, len(data) - 200):  # (a few frames short: the duration said nothing)
        cut = tmp_path / f"cut{suffix}"
        cut.write_bytes(data[:keep])
        expected = rf"ended after \d+ frames: it is cut short \({keep} of the {len(data)} bytes it states\)"
        with pytest.raises(SourceError, match=expected), VideoReader(cut) as r:
            list(r.frames())


def test_a_matroska_whose_last_frame_is_held_reads_whole(tmp_path: Path, ffmpeg: str) -> None:
    """A slideshow's last frame shown for 3 s: its stated duration is far past the last frame's time, which
    an earlier duration check took for a cut file."""
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), dark_frame(48, 64, seed=i))
    (tmp_path / "list.txt").write_text(
        "file 'f0.png'\nduration 0.1\nfile 'f1.png'\nduration 0.1\nfile 'f2.png'\nduration 3\nfile 'f2.png'\n"
    )
    held = tmp_path / "held.webm"
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-f", "concat", "-i", str(tmp_path / "list.txt"), "-c:v", "libvpx-vp9",
         "-deadline", "realtime", str(held)],
        check=True,
    )  # fmt: skip
    with VideoReader(held) as r:
        assert len(list(r.frames())) >= 3


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


# --- every accepted suffix is written with a codec its container takes ---------------------------------------

CODEC_OF = {"libx264": "h264", "libvpx-vp9": "vp9"}


@pytest.mark.parametrize("size", [(48, 64), (17, 33)], ids=["even", "odd"])
@pytest.mark.parametrize("suffix", sorted(VIDEO_SUFFIXES))
def test_every_suffix_is_written_and_read_back(tmp_path: Path, suffix: str, size: tuple[int, int]) -> None:
    h, w = size
    path = tmp_path / f"clip{suffix}"
    with VideoWriter(path, w, h, 24, time_base=Fraction(1, 12288)) as writer:  # an MP4 reader's fine clock
        for i in range(5):
            writer.write(dark_frame(h, w, seed=i), i * 512)
    with VideoReader(path) as reader:
        assert reader.info.frames in (0, 5)  # (AVI in a fine time base claimed 81 entries and read as truncated)
        frames = list(reader.frames())
        assert (reader.info.width, reader.info.height) == (w, h)
        assert reader.info.codec == CODEC_OF[OUTPUT_FORMATS[suffix].video_codec]
    assert len(frames) == 5 and all(f.image.shape == (h, w, 3) for f in frames)
    pts = [f.pts for f in frames]
    assert pts == sorted(pts) and len(set(pts)) == 5, pts  # in time order (AVI with B-frames was not)
    assert not list(tmp_path.glob(".*tmp*"))


def test_webm_output_is_vp9_with_the_audio_re_encoded_to_opus(tmp_path: Path, enhancer: Enhancer) -> None:
    src = make_clip(tmp_path / "in.mp4")
    report = enhance_path(src, tmp_path / "out.webm", enhancer=enhancer)
    a, b = probe(src), probe(tmp_path / "out.webm")
    assert b["codec"] == "vp9" and b["size"] == a["size"] and len(b["pts"]) == 24 == report.frames
    assert max(abs(x - y) for x, y in zip(a["pts"], b["pts"], strict=True)) <= Fraction(1, 1000)  # WebM: ms
    assert b["audio_codec"] == "opus" and b["audio_packets"] > 0
    assert report.luma_out > report.luma_in + 20


@pytest.mark.parametrize(
    ("codec", "suffix", "kept"),
    [
        ("libopus", ".mov", False),
        ("libopus", ".mkv", True),
        ("flac", ".mov", False),
        ("flac", ".mkv", True),
        ("pcm_s16le", ".mp4", False),
        ("pcm_s16le", ".mov", True),
    ],
)
def test_audio_a_container_cannot_hold_is_re_encoded(
    tmp_path: Path, enhancer: Enhancer, codec: str, suffix: str, kept: bool
) -> None:
    """MOV accepts an Opus or FLAC stream and refuses it only at its header, after the first frames, and MP4
    takes Matroska's stereo PCM (a layout without a name) and refuses it at its index, after the last: the
    writer asks the muxer first, and re-encodes to AAC (the jobs used to fail, "invalid argument")."""
    src = make_clip(tmp_path / "in.mkv", audio_codec=codec, stereo=codec.startswith("pcm"))
    a = probe(src)
    assert a["audio_codec"] == codec.removeprefix("lib")
    report = enhance_path(src, tmp_path / f"out{suffix}", enhancer=enhancer)
    b = probe(tmp_path / f"out{suffix}")
    assert report.frames == len(b["pts"]) == 24 and b["audio_packets"] > 0
    assert b["audio_codec"] == (a["audio_codec"] if kept else "aac")


def test_a_folder_job_keeps_a_webm_input_as_webm(tmp_path: Path, enhancer: Enhancer) -> None:
    (tmp_path / "in").mkdir()
    make_clip(tmp_path / "in" / "a.mp4", frames=6)
    with VideoWriter(tmp_path / "in" / "b.webm", 64, 48, 12) as w:
        for i in range(6):
            w.write(dark_frame(48, 64, seed=i))
    report = enhance_path(tmp_path / "in", tmp_path / "out", enhancer=enhancer)
    assert report.failures == [] and report.files == 2
    assert probe(tmp_path / "out" / "b.webm")["codec"] == "vp9" and len(probe(tmp_path / "out" / "b.webm")["pts"]) == 6


def test_an_interrupted_webm_job_keeps_a_playable_partial_webm(tmp_path: Path, enhancer: Enhancer) -> None:
    src = make_clip(tmp_path / "in.mp4")
    stop = StopRequest()

    class Slow:
        name = "slow"

        def __call__(self, frame: np.ndarray) -> np.ndarray:
            time.sleep(0.2)
            return frame

        def reset(self) -> None:
            pass

    report = enhance_path(src, tmp_path / "out.webm", enhancer=enhancer, stop=stop,
                          on_progress=lambda _: stop.set("SIGTERM"), pre_stages=[Slow()])  # fmt: skip
    assert report.partial == tmp_path / "out.partial.webm" and not (tmp_path / "out.webm").exists()
    b = probe(report.partial)
    assert b["codec"] == "vp9" and 0 < len(b["pts"]) == report.frames < 24 and b["audio_codec"] == "opus"
    assert not list(tmp_path.glob(".*tmp*"))


def test_a_codec_the_container_refuses_is_a_one_line_output_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(video.OUTPUT_FORMATS, ".webm", OutputFormat("webm", "libx264", "aac"))
    with pytest.raises(OutputError, match=r"^cannot write .*out\.webm with libx264: .*webm.*libx264") as err:
        VideoWriter(tmp_path / "out.webm", 64, 48, 24)
    assert "\n" not in str(err.value) and list(tmp_path.iterdir()) == []


def test_writer_refuses_an_unknown_preset(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown preset 'quick'"):
        VideoWriter(tmp_path / "x.webm", 16, 16, 10, preset="quick")


# --- phone rotation: frames are read upright, as ffmpeg shows them ------------------------------------------


def corner_clip(path: Path, *, rotation: int = 0, frames: int = 4) -> Path:
    """A 64x48 clip, dark with a bright top-left corner (so that every turn looks different); ``rotation``
    (degrees counter-clockwise) is stored as a display matrix, as phones do, not applied to the pixels."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        if rotation:
            v.set_display_rotation(rotation)
        for i in range(frames):
            img = np.full((48, 64, 3), 20, np.uint8)
            img[:12, :16] = 230
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts = i
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
    return path


@pytest.fixture(scope="module")
def ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        pytest.skip("needs the ffmpeg binary (to rotate clips as a phone does and to decode them as players do)")
    return exe


def ffmpeg_rotated(ffmpeg: str, src: Path, degrees: int) -> Path:
    """``src`` with a display matrix set by ffmpeg itself (``rotate`` tag, or ``-display_rotation`` in ffmpeg 6+)."""
    out = src.with_name(f"rot{degrees}.mp4")
    tagged = [ffmpeg, "-v", "error", "-y", "-i", str(src), "-c", "copy", "-metadata:s:v:0", f"rotate={degrees}"]
    if subprocess.run([*tagged, str(out)], capture_output=True).returncode != 0:
        subprocess.run([ffmpeg, "-v", "error", "-y", "-display_rotation", str(degrees), "-i", str(src), "-c", "copy",
                        str(out)], check=True, capture_output=True)  # fmt: skip
    return out


def ffmpeg_first_frame(ffmpeg: str, path: Path) -> np.ndarray:
    """The first frame as ffmpeg's command line decodes it (auto-rotated), BGR."""
    png = path.with_suffix(".png")
    subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(path), "-frames:v", "1", str(png)], check=True)
    with av.open(str(png)) as c:
        return next(c.decode(video=0)).to_ndarray(format="bgr24")


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_a_rotated_video_is_read_upright_as_ffmpeg_shows_it(tmp_path: Path, ffmpeg: str, degrees: int) -> None:
    path = ffmpeg_rotated(ffmpeg, corner_clip(tmp_path / "plain.mp4"), degrees)
    upright = ffmpeg_first_frame(ffmpeg, path)
    with VideoReader(path) as reader:
        frames = list(reader.frames())
        info = reader.info
    assert info.rotation in (degrees, 360 - degrees) and info.frames == len(frames) == 4
    assert (info.height, info.width, 3) == upright.shape == frames[0].image.shape
    assert upright.shape[:2] == ((64, 48) if degrees != 180 else (48, 64))
    assert np.abs(frames[0].image.astype(int) - upright).mean() < 2
    assert frames[0].image.flags["C_CONTIGUOUS"]


def test_a_rotated_video_is_enhanced_upright_without_rotation_metadata(
    tmp_path: Path, ffmpeg: str, enhancer: Enhancer
) -> None:
    path = ffmpeg_rotated(ffmpeg, corner_clip(tmp_path / "plain.mp4"), 90)
    report = enhance_path(path, tmp_path / "out.mp4", enhancer=enhancer)
    assert report.frames == 4
    with av.open(str(tmp_path / "out.mp4")) as c:
        stored = next(c.decode(video=0))
        assert stored.rotation == 0 and (stored.width, stored.height) == (48, 64)
    bright = ffmpeg_first_frame(ffmpeg, path).mean(axis=2) > 128  # where ffmpeg shows the corner
    out = stored.to_ndarray(format="gray")
    assert out[bright].mean() > out[~bright].mean() + 50


def test_a_display_matrix_is_applied_without_ffmpeg_too(tmp_path: Path) -> None:
    with VideoReader(corner_clip(tmp_path / "c.mp4", rotation=90)) as reader:
        image = next(reader.frames()).image
        assert (reader.info.width, reader.info.height, reader.info.rotation) == (48, 64, 90)
    assert image.shape == (64, 48, 3) and image[-16:, :12].mean() > 200 and image[:12, :16].mean() < 50


def test_a_mirrored_display_matrix_is_left_unapplied_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "m.mp4"
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.set_display_rotation(0, hflip=True)
        for p in [*v.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="bgr24")),
                  *v.encode(None)]:  # fmt: skip
            out.mux(p)
    with caplog.at_level(logging.WARNING, "nightvision.io.video"), VideoReader(path) as reader:
        assert (reader.info.width, reader.info.height, reader.info.rotation) == (64, 48, 0)
    assert "mirrored display matrix" in caplog.text


def test_a_file_whose_video_is_not_the_first_stream_opens(ffmpeg: str, tmp_path: Path) -> None:
    """An audio track first, the video second (a muxer's choice): the rotation probe took the stream's place
    among all streams for its place among the video streams and failed with an IndexError."""
    path = tmp_path / "audio-first.mp4"
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "sine=duration=1", "-f", "lavfi", "-i",
         "testsrc=size=64x48:rate=10:duration=1", "-map", "0:a", "-map", "1:v", "-c:v", "libx264", "-c:a", "aac",
         "-shortest", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    with VideoReader(path) as reader:
        frames = list(reader.frames())
        assert (reader.info.width, reader.info.height, reader.info.rotation) == (64, 48, 0)
    assert len(frames) == 10 and frames[0].image.shape == (48, 64, 3)
