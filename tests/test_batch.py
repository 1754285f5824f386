"""``nightvision batch``: keyframe chunks joined into the single-machine result, resume, failures, and a real
two-node Ray cluster that loses a node in the middle of a job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

import nightvision.cluster.batch as batch_module
from nightvision import Enhancer
from nightvision.cluster.batch import REPORT_NAME, WORK_DIR, BatchProgress, batch, plan_inputs
from nightvision.cluster.chunks import plan_chunks, scan_video
from nightvision.cluster.manifest import MANIFEST_NAME
from nightvision.cluster.worker import Settings, Task, make_stages
from nightvision.errors import InputError, OutputError
from nightvision.sample import sample_frames
from nightvision.stream.jobs import enhance_path
from nightvision.stream.pipeline import StopRequest

W, H, FPS = 320, 180, 30


def make_clip(
    path: Path,
    *,
    seconds: float = 4.0,
    gop: int = 15,
    audio: bool = True,
    seed: int = 0,
    ramp: bool = False,
    size: tuple[int, int] = (W, H),
) -> Path:
    """A dark synthetic clip (:mod:`nightvision.sample`) with a keyframe every ``gop`` frames and a sine track;
    ``ramp``: its light grows from 0.5× to 2× over the clip (exposure control then lags behind it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = *size, "yuv420p"
        video.options = {"crf": "12", "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
        sound = out.add_stream("aac", rate=48000) if audio else None
        if sound is not None:
            sound.layout = "mono"
        samples = 0
        n = int(seconds * FPS)
        for i, image in enumerate(sample_frames(*size, n, seed=seed)):
            if ramp:
                image = cv2.convertScaleAbs(image, alpha=0.5 + 1.5 * i / n)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = i
            out.mux(video.encode(frame))
            while sound is not None and samples < (i + 1) * 48000 / FPS:
                t = (np.arange(1024) + samples) / 48000
                wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
                chunk = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 48000, samples
                samples += 1024
                out.mux(sound.encode(chunk))
        out.mux(video.encode(None))
        if sound is not None:
            out.mux(sound.encode(None))
    return path


def decode(path: Path) -> tuple[list[int], np.ndarray, float, list[tuple[int, bytes]]]:
    """Frame pts, frames ``(N, H, W, 3)``, nominal fps and audio packets ``(pts, bytes)`` of a video."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = [(f.pts, f.to_ndarray(format="bgr24")) for f in c.decode(stream)]
        fps = float(stream.average_rate)
    with av.open(str(path)) as c:
        audio = [(p.pts, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.dts is not None] if c.streams.audio else []
    return [p for p, _ in frames], np.stack([f for _, f in frames]), fps, audio


def assert_same_video(a: Path, b: Path, *, tolerance: float = 0.0) -> None:
    """Equal frame count, order and pts, fps and audio; frames equal (``tolerance``: mean abs difference)."""
    pa, fa, ra, aa = decode(a)
    pb, fb, rb, ab = decode(b)
    assert pa == pb, "timestamps differ"
    assert ra == pytest.approx(rb)
    assert aa == ab, "audio packets differ"
    diff = np.abs(fa.astype(np.int16) - fb.astype(np.int16))
    if tolerance == 0:
        assert int(diff.max()) == 0, f"frames differ by up to {diff.max()}"
    else:
        assert float(diff.mean()) <= tolerance


@pytest.fixture(scope="module")
def enhancer() -> Enhancer:
    return Enhancer()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="module")
def single(archive: Path, enhancer: Enhancer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return enhance_single(archive, tmp_path_factory.mktemp("single"), enhancer)


# --- planning ---------------------------------------------------------------------------------------------


def test_chunks_start_at_keyframes_with_warmup(archive: Path) -> None:
    index = scan_video(archive / "a.mp4")
    assert index.frames == 60 and index.has_audio and index.fps == 30 and index.duration == pytest.approx(2.0)
    step = 512  # the time base is 1/15360: a frame is 512 units, a keyframe every 15 frames
    assert index.keyframes == (0, 15 * step, 30 * step, 45 * step)
    chunks = plan_chunks(index, 0.5, warmup=20)
    assert [c.start for c in chunks] == [0, 15 * step, 30 * step, 45 * step] and chunks[-1].end is None
    assert [c.frames for c in chunks] == [15, 15, 15, 15]
    assert chunks[0].warmup == 0 and chunks[0].seek is None
    # warm-up: the 20 frames before the start (as many as there are), decoded from the keyframe before them
    assert [(c.warmup, c.warm_start // step, c.seek) for c in chunks[1:]] == [
        (15, 0, 0),
        (20, 10, 0),
        (20, 25, 15 * step),
    ]
    # boundaries at the first keyframes at least 0.9 s apart, no last chunk shorter than half of that
    assert [c.start // step for c in plan_chunks(index, 0.9)] == [0, 30]
    assert len(plan_chunks(index, 0)) == 1 and len(plan_chunks(index, 10.0)) == 1


def test_plan_inputs_keeps_relative_paths(archive: Path, tmp_path: Path) -> None:
    pairs = plan_inputs([archive], tmp_path / "out")
    assert [rel for _, rel in pairs] == ["a.mp4", "bad.mp4", "cams/b.mp4", "cams/still.png"]
    pairs = plan_inputs([str(archive / "*" / "*.mp4"), archive / "a.mp4"], tmp_path / "out")
    assert [rel for _, rel in pairs] == ["a.mp4", "cams/b.mp4"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.mp4").write_bytes((archive / "a.mp4").read_bytes())
    with pytest.raises(InputError, match="would both be written"):
        plan_inputs([archive / "a.mp4", other], tmp_path / "out")
    with pytest.raises(InputError, match="no file matches"):
        plan_inputs([str(archive / "*.mov")], tmp_path / "out")


# --- in-process: the same code path minus Ray ------------------------------------------------------------


def test_chunked_batch_equals_single_process(archive: Path, single: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    seen: list[BatchProgress] = []
    report = batch([archive], out, use_ray=False, chunk_seconds=0.5, crf=0, on_progress=seen.append)
    by_name = {Path(f.input).name: f for f in report.files}
    assert by_name["bad.mp4"].status == "failed" and "bad.mp4" in by_name["bad.mp4"].error
    assert [by_name[n].status for n in ("a.mp4", "b.mp4", "still.png")] == ["done"] * 3
    assert (by_name["a.mp4"].chunks, by_name["b.mp4"].chunks) == (4, 3)
    assert not report.ok and report.frames == 60 + 45 + 1
    for rel in ("a.mp4", "cams/b.mp4"):
        assert_same_video(single / rel, out / rel)
    assert np.array_equal(cv2.imread(str(single / "cams/still.png")), cv2.imread(str(out / "cams/still.png")))
    # the manifest records each output; the report is JSON; no staging or chunk file is left
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["outputs"]["a.mp4"]["frames"] == 60 and len(manifest["outputs"]["a.mp4"]["sha256"]) == 64
    assert set(manifest["outputs"]) == {"a.mp4", "cams/b.mp4", "cams/still.png"} and not manifest["chunks"]
    assert json.loads((out / REPORT_NAME).read_text())["failed"] == 1
    assert sorted(p.name for p in (out / WORK_DIR).rglob("*") if p.is_file()) == ["lock"]
    assert seen and seen[-1].total == 106 and "bad.mp4" in report.table()


@pytest.mark.parametrize(("suffix", "codec"), [(".avi", "h264"), (".webm", "vp9"), (".mkv", "h264"), (".mov", "h264")])
def test_chunked_batch_of_every_container(tmp_path: Path, suffix: str, codec: str) -> None:
    """The output keeps the input's suffix; its chunks are MP4 unless its container needs their own: H.264
    chunks into WebM was a traceback at the join, and MP4 chunks (B-frames) into AVI an "invalid data" failure;
    AVI chunks read back with made-up decode times (each later chunk's first packet at 0), which the join
    replaces. (Matroska chunks lost their first packets' decode times: MKV outputs join MP4 chunks.)"""
    src = tmp_path / f"in{suffix}"
    frames = list(sample_frames(W, H, 60, seed=3))
    with av.open(str(src), "w") as out:
        video = out.add_stream("libvpx-vp9" if suffix == ".webm" else "libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        video.options = {"g": "15", "deadline": "realtime"} if suffix == ".webm" else {"g": "15"}
        if suffix == ".avi":
            video.options = {**video.options, "bf": "0"}
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    report = batch([src], tmp_path / "out", use_ray=False, chunk_seconds=0.5)
    (result,) = report.files
    assert result.status == "done" and result.chunks >= 2, result.error
    with av.open(str(tmp_path / "out" / src.name)) as c:
        assert c.streams.video[0].codec_context.name == codec
        assert sum(1 for _ in c.decode(video=0)) == 60


def test_lossy_chunks_stay_within_encoder_tolerance(archive: Path, enhancer: Enhancer, tmp_path: Path) -> None:
    reference = tmp_path / "single.mp4"
    enhance_path(archive / "a.mp4", reference, enhancer=enhancer)  # crf 18, as the CLI's default
    report = batch([archive / "a.mp4"], tmp_path / "out", use_ray=False, chunk_seconds=0.5)
    assert report.ok and report.files[0].chunks == 4
    # x264 restarts its rate control at each chunk: the frames differ by what the encoder itself loses
    lossless = tmp_path / "lossless.mp4"
    enhance_path(archive / "a.mp4", lossless, enhancer=enhancer, crf=0)
    _, truth, _, _ = decode(lossless)
    _, encoded, _, _ = decode(reference)
    own_error = float(np.abs(truth.astype(np.int16) - encoded).mean())
    assert_same_video(reference, tmp_path / "out" / "a.mp4", tolerance=own_error)


def test_temporal_stages_warm_up_across_joins(enhancer: Enhancer, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "ramp.mp4", seconds=2.5, audio=False, ramp=True)
    pre, post = make_stages(Settings(denoise=True, exposure=110.0, crf=0))
    reference = tmp_path / "single.mp4"
    enhance_path(clip, reference, enhancer=enhancer, crf=0, pre_stages=pre, post_stages=post)
    _, truth, _, _ = decode(reference)
    errors = {}
    for warmup in (0, 40):
        out = tmp_path / f"warm{warmup}"
        report = batch([clip], out, use_ray=False, chunk_seconds=1.0, denoise=True, exposure=110.0, crf=0,
                       warmup_frames=warmup)  # fmt: skip
        assert report.files[0].chunks == 3  # frames 0-29, 30-59 (warm-up from 0), 60-74 (warm-up from 20)
        _, frames, _, _ = decode(out / "ramp.mp4")
        errors[warmup] = np.abs(frames.astype(np.int16) - truth).mean(axis=(1, 2, 3))
    assert errors[0][:30].max() == 0 and errors[40][:60].max() == 0  # decoded from the same frames: exact
    cold, warm = errors[0][[30, 60]], errors[40][[30, 60]]
    assert cold.min() > 5.0, cold  # stages started cold at a join: it shows
    assert warm.max() < cold.min() / 4, (warm, cold)
    assert errors[40].mean() < errors[0].mean() / 4


def test_resume_after_a_stop_redoes_only_unfinished_work(
    archive: Path, single: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    stop = StopRequest()
    commit_part = batch_module._commit_part

    def stop_after_the_second_chunk(*args: Any) -> Any:  # a SIGINT right then, however fast the machine is
        record = commit_part(*args)
        if args[1].rel == "a.mp4" and len(args[1].done) == 1:  # its second part
            stop.set("SIGINT")
        return record

    monkeypatch.setattr(batch_module, "_commit_part", stop_after_the_second_chunk)
    inputs = [archive / "a.mp4", archive / "cams"]  # cams/ gives b.mp4 and still.png in OUTDIR itself
    first = batch(inputs, out, use_ray=False, chunk_seconds=0.5, crf=0, stop=stop)
    monkeypatch.undo()
    assert first.stopped_by == "SIGINT" and not first.ok
    assert not (out / "a.mp4").exists()  # an output appears only when complete
    parts = json.loads((out / MANIFEST_NAME).read_text())["chunks"]["a.mp4"]["parts"]
    assert len(parts) == 2 and first.frames == 30
    second = batch(inputs, out, use_ray=False, chunk_seconds=0.5, crf=0)
    assert second.ok and second.frames == 60 + 45 + 1 - first.frames  # finished chunks are not redone
    # the real-time figure counts the seconds this run enhanced: a.mp4's last 30 of 60 frames and b.mp4 (45)
    assert second.video_seconds == pytest.approx((30 + 45) / 30, rel=0.05), second.video_seconds
    assert_same_video(single / "a.mp4", out / "a.mp4")
    assert_same_video(single / "cams" / "b.mp4", out / "b.mp4")
    # a rerun skips everything; an output damaged since is redone
    assert batch(inputs, out, use_ray=False, chunk_seconds=0.5, crf=0).frames == 0
    with open(out / "b.mp4", "r+b") as f:
        f.truncate(1000)
    third = batch(inputs, out, use_ray=False, chunk_seconds=0.5, crf=0)
    assert third.frames == 45 and [f.status for f in third.files] == ["skipped", "done", "skipped"]
    assert_same_video(single / "cams" / "b.mp4", out / "b.mp4")


def test_joined_parts_re_encode_audio_their_container_cannot_hold(tmp_path: Path) -> None:
    """A chunked job into WebM joins VP9 parts with the source's AAC track, which WebM cannot hold as it is: it
    is re-encoded to Opus (it used to be dropped with a warning); an MP4 output copies it."""
    from nightvision.cluster.chunks import join_parts
    from nightvision.io.video import VideoWriter

    src = make_clip(tmp_path / "a.mp4", seconds=1.0)
    frames = list(sample_frames(W, H, 30, seed=2))
    for suffix, codec in ((".webm", "opus"), (".mp4", "aac")):
        parts = []
        for n, (start, stop) in enumerate(((0, 15), (15, 30))):  # the parts carry the source's times
            with VideoWriter(tmp_path / f"part{n}{suffix}", W, H, FPS) as writer:
                for i in range(start, stop):
                    writer.write(frames[i], pts=i)
            parts.append(tmp_path / f"part{n}{suffix}")
        dest = tmp_path / f"joined{suffix}"
        assert join_parts(parts, src, dest) == 30
        with av.open(str(dest)) as c:
            assert c.streams.audio[0].codec_context.name == codec
            audio = [p for p in c.demux(audio=0) if p.size]
            seconds = sum(float(p.duration * p.time_base) for p in audio if p.duration)
        assert seconds == pytest.approx(1.0, abs=0.05)  # the whole second of sound


def test_the_report_never_replaces_an_input_a_file_or_the_manifest(archive: Path, tmp_path: Path) -> None:
    """``--report`` wrote over whatever it named: an input photo, a note, the job's own manifest (whose next
    run was then a traceback). Only a new name or an earlier report is taken."""
    still = archive / "cams" / "still.png"
    before = still.read_bytes()
    note = tmp_path / "notes.txt"
    note.write_text("mine")
    out = tmp_path / "out"
    for report, said in (
        (still, "is the input"),
        (note, "exists and is not a batch report"),
        (out / MANIFEST_NAME, "the batch's own bookkeeping"),
        (out / "still.png", "is the output of still.png"),  # (the report replaced the output it names)
    ):
        with pytest.raises(OutputError, match=said):
            batch([still], out, use_ray=False, report_path=report)
    assert still.read_bytes() == before and note.read_text() == "mine"
    report = tmp_path / "report.json"
    for _ in range(2):  # a rerun rewrites its own report
        assert batch([still], out, use_ray=False, report_path=report).ok
    (out / MANIFEST_NAME).write_text("[]")  # a damaged manifest: one line, not a traceback
    with pytest.raises(InputError, match="is not a batch manifest"):
        batch([still], out, use_ray=False)


def test_bad_input_is_one_line(archive: Path, tmp_path: Path) -> None:
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(InputError, match=f"the output folder {afile} is a file"):
        batch([archive / "a.mp4"], afile, use_ray=False)
    with pytest.raises(OutputError, match=f"{afile} is a file, not a folder"):  # before any work
        batch([archive / "a.mp4"], tmp_path / "o0", use_ray=False, report_path=afile / "r.json")
    assert not (tmp_path / "o0").exists()
    with pytest.raises(InputError, match="an input name is empty"):  # not the current folder
        batch([""], tmp_path / "o0", use_ray=False)
    with pytest.raises(InputError, match="no such file or folder"):
        batch([tmp_path / "missing.mp4"], tmp_path / "o", use_ray=False)
    with pytest.raises(InputError, match=r"cannot reach the Ray cluster at '127\.0\.0\.1:9'"):
        batch([archive / "cams" / "still.png"], tmp_path / "o", address="127.0.0.1:9")
    # outputs that exist and were not made by the job are refused; a job's settings are kept
    (tmp_path / "o2").mkdir()
    cv2.imwrite(str(tmp_path / "o2" / "still.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(OutputError, match="already exists"):
        batch([archive / "cams" / "still.png"], tmp_path / "o2", use_ray=False)
    assert batch([archive / "cams" / "still.png"], tmp_path / "o3", use_ray=False).ok
    with pytest.raises(InputError, match=r"other settings \(crf: 18 there, 0 now\)"):
        batch([archive / "cams" / "still.png"], tmp_path / "o3", use_ray=False, crf=0)


# --- a real two-node Ray cluster ------------------------------------------------------------------------


def write_archive(root: Path, *, size: tuple[int, int] = (W, H), seconds: float = 2.0) -> Path:
    """``a.mp4`` (audio), ``cams/b.mp4`` (3/4 as long, another scene, no audio), ``cams/still.png``, ``bad.mp4``."""
    make_clip(root / "a.mp4", seconds=seconds, size=size)
    make_clip(root / "cams" / "b.mp4", seconds=seconds * 0.75, audio=False, seed=1, size=size)
    cv2.imwrite(str(root / "cams" / "still.png"), next(sample_frames(*size, 1, seed=2)))
    (root / "bad.mp4").write_bytes(b"not a video at all" * 64)
    return root


def enhance_single(archive: Path, out: Path, enhancer: Enhancer) -> Path:
    """The single-process result of an archive (``enhance_path`` per file, lossless), for comparisons."""
    for rel in ("a.mp4", "cams/b.mp4", "cams/still.png"):
        enhance_path(archive / rel, out / rel, enhancer=enhancer, crf=0)
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    pytest.importorskip("ray", reason='needs Ray: pip install "nightvision[ray]"')
    from tests.ray_cluster import LocalCluster

    with LocalCluster(tmp_path_factory.mktemp("ray"), nodes=2) as local:
        yield local


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """14 s in all: enough work that the second node's worker is running a task before the job ends."""
    return write_archive(tmp_path_factory.mktemp("big"), seconds=8.0)


@pytest.fixture(scope="module")
def big_single(big_archive: Path, enhancer: Enhancer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return enhance_single(big_archive, tmp_path_factory.mktemp("big_single"), enhancer)


@pytest.mark.slow
def test_cluster_job_survives_a_lost_node(
    cluster: object, big_archive: Path, big_single: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker node dies while a task runs on it: the task runs again elsewhere and the outputs are whole.

    Deterministic on any machine: no task is handed out until both workers are ready (one per node), and the
    worker node is killed right after the second task was handed out, so it is certainly running one.
    """
    from nightvision.cluster.pool import RayPool
    from tests.ray_cluster import LocalCluster

    assert isinstance(cluster, LocalCluster)
    worker = cluster.nodes[1]
    killed: list[int] = []
    free, submit = RayPool.free, RayPool.submit

    def free_once_all_are_ready(self: RayPool) -> int:
        return free(self) if killed or free(self) + self.busy() == self.workers else 0

    def submit_then_kill(self: RayPool, task: Task) -> None:
        submit(self, task)
        if self.busy() == 2 and not killed:  # a task was just given to each node's worker
            cluster.kill(worker)
            killed.append(self.busy())

    monkeypatch.setattr(RayPool, "free", free_once_all_are_ready)
    monkeypatch.setattr(RayPool, "submit", submit_then_kill)
    inputs = [big_archive / "a.mp4", big_archive / "cams"]
    report = batch(inputs, tmp_path / "out", address=cluster.address, chunk_seconds=1.0, crf=0)
    monkeypatch.undo()
    assert killed, "the job ended before the node could be killed"
    assert report.engine == "ray" and report.workers == 2 and report.nodes == 2
    assert report.ok, report.table()
    assert report.lost_workers >= 1 and report.retries >= 1
    assert_same_video(big_single / "a.mp4", tmp_path / "out" / "a.mp4")
    assert_same_video(big_single / "cams" / "b.mp4", tmp_path / "out" / "b.mp4")  # cams/ was given: its files
    assert (tmp_path / "out" / "still.png").is_file()  # go to OUTDIR itself


_DRIVER = """
import sys, time
from pathlib import Path
import nightvision.cluster.batch as batch_module

commit_part, committed = batch_module._commit_part, []

def commit_then_hang(*args, **kwargs):  # the test kills this driver once two chunks are committed
    record = commit_part(*args, **kwargs)
    committed.append(record)
    if len(committed) == 2:
        Path(sys.argv[3]).write_text("2")
        time.sleep(600)
    return record

batch_module._commit_part = commit_then_hang
batch_module.batch(sys.argv[4:], sys.argv[2], address=sys.argv[1], chunk_seconds=1.0, crf=0)
"""


@pytest.mark.slow
def test_cluster_job_resumes_after_its_driver_was_killed(
    cluster: object, big_archive: Path, big_single: Path, tmp_path: Path
) -> None:
    from tests.ray_cluster import LocalCluster

    assert isinstance(cluster, LocalCluster)
    out, marker = tmp_path / "out", tmp_path / "two-chunks-committed"
    inputs = [str(big_archive / "a.mp4"), str(big_archive / "cams")]
    driver = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, cluster.address, str(out), str(marker), *inputs],
        env={**os.environ, **cluster.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and driver.poll() is None and not marker.exists():
            time.sleep(0.1)
        assert marker.exists(), "the driver ended or stalled before two chunks were committed"
        parts = json.loads((out / MANIFEST_NAME).read_text())["chunks"]
        assert sum(len(e["parts"]) for e in parts.values()) == 2
        os.killpg(driver.pid, signal.SIGKILL)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(10)
    report = batch(inputs, out, address=cluster.address, chunk_seconds=1.0, crf=0)
    assert report.ok, report.table()
    assert report.frames < 240 + 180 + 1  # work finished before the kill was kept
    assert_same_video(big_single / "a.mp4", out / "a.mp4")
    assert_same_video(big_single / "cams" / "b.mp4", out / "b.mp4")
    assert not [p for p in out.rglob(".*tmp-*")], "a temporary file was left behind"
