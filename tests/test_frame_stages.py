"""The frame-stage hook: pre stages before the model, post stages after it, each timed in its own thread, and
reset() whenever the frames before no longer belong with the frames after (start, new size, reconnect, new
file of a folder job)."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from nightvision import Enhancer
from nightvision.errors import InputError, ShapeError
from nightvision.io.video import VideoWriter
from nightvision.stream.frame_stages import FrameStage
from nightvision.stream.jobs import enhance_path
from nightvision.stream.pipeline import Pipeline
from nightvision.stream.sinks import NullSink, Sink
from nightvision.stream.sources import FileSource, FolderSource, Read, ReadStatus, Source
from tests.conftest import dark_frame


class Recorder(Sink):
    def __init__(self) -> None:
        self.uri = "record://"
        self.frames: list[np.ndarray] = []

    def _write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        self.frames.append(frame)


class Counting:
    """A trivial stage: adds ``add`` (saturating), and records its calls and resets."""

    def __init__(self, name: str = "count", add: int = 0) -> None:
        self.name = name
        self.add = add
        self.calls = 0
        self.resets: list[str] = []  # the thread each reset ran in

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        self.calls += 1
        return cv2.add(frame, np.full_like(frame, self.add)) if self.add else frame

    def reset(self) -> None:
        self.resets.append(threading.current_thread().name)


class Invert:
    name = "invert"

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        return 255 - frame

    def reset(self) -> None:
        pass


@pytest.fixture(scope="module")
def enhancer() -> Enhancer:
    return Enhancer("zero-dce++", threads=1)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, 64, 48, 25, crf=0) as w:
        for i in range(10):
            w.write(dark_frame(48, 64, seed=i))
    return path


def test_pre_and_post_stages_run_in_order_and_are_timed(clip: Path, enhancer: Enhancer) -> None:
    pre, post = Counting("add10", add=10), Invert()
    assert isinstance(pre, FrameStage) and isinstance(post, FrameStage)
    inputs = Recorder()
    Pipeline(FileSource(clip), None, [inputs]).run()
    out = Recorder()
    stats = Pipeline(FileSource(clip), None, [out], pre_stages=[pre], post_stages=[post]).run()
    assert pre.calls == 10 and len(out.frames) == 10
    for a, b in zip(inputs.frames, out.frames, strict=True):
        assert np.array_equal(b, 255 - cv2.add(a, np.full_like(a, 10)))  # pre, then (no model), then post
    assert set(stats.stage_ms) >= {"capture", "pre:add10", "preprocess", "infer", "postprocess", "post:invert"}
    assert stats.stage_ms["pre:add10"]["p50"] >= 0 and stats.busy_s["pre:add10"] > 0
    # with the model: the post stage sees the enhanced frame
    plain, inverted = Recorder(), Recorder()
    Pipeline(FileSource(clip), enhancer, [plain]).run()
    Pipeline(FileSource(clip), enhancer, [inverted], post_stages=[Invert()]).run()
    assert all(np.array_equal(255 - a, b) for a, b in zip(plain.frames, inverted.frames, strict=True))


def test_reset_at_the_start_and_when_the_size_changes(tmp_path: Path) -> None:
    for name, (h, w) in {"a": (20, 30), "b": (20, 30), "c": (24, 40), "d": (24, 40)}.items():
        cv2.imwrite(str(tmp_path / f"{name}.png"), dark_frame(h, w))
    stage = Counting()
    Pipeline(FolderSource(tmp_path), None, [NullSink()], pre_stages=[stage]).run()
    assert stage.calls == 4
    assert stage.resets == ["MainThread", "pre:count"]  # at the start, then in its own thread at the new size


class Reconnecting(Source):
    """A live source whose connection drops after frame 3 and comes back."""

    live = True

    def __init__(self) -> None:
        self.uri = "fake://reconnecting"
        self.n = 0

    def _read(self, timeout: float) -> Read:
        self.n += 1
        if self.n == 4:
            self.reconnects += 1
        if self.n > 6:
            return Read(ReadStatus.END)
        return Read(ReadStatus.FRAME, dark_frame(8, 8, seed=self.n), None, 0.0)


def test_reset_after_a_reconnect() -> None:
    pre, post = Counting("pre"), Counting("post")
    stats = Pipeline(Reconnecting(), None, [NullSink()], pre_stages=[pre], post_stages=[post], policy="lossless").run()
    assert stats.frames_out == 6 and stats.reconnects == 1
    assert pre.resets == ["MainThread", "pre:pre"] and post.resets == ["MainThread", "post:post"]


def test_reset_when_a_looped_file_starts_again(clip: Path) -> None:
    """``--loop``: the clip's first frame does not follow its last (the denoiser would blend the two)."""
    pre, post = Counting("pre"), Counting("post")
    stats = Pipeline(FileSource(clip, loop=2), None, [NullSink()], pre_stages=[pre], post_stages=[post]).run()
    assert stats.frames_out == 30 and pre.calls == 30
    assert pre.resets == ["MainThread", "pre:pre", "pre:pre"] and post.resets == [
        "MainThread",
        "post:post",
        "post:post",
    ]


def test_reset_for_every_file_of_a_folder_job(tmp_path: Path, enhancer: Enhancer) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), dark_frame(16, 16, seed=i))
    stage = Counting()
    report = enhance_path(folder, tmp_path / "out", enhancer=enhancer, pre_stages=[stage])
    assert report.files == 3 and stage.calls == 3 and len(stage.resets) == 3


def test_the_denoiser_passes_still_images_by(tmp_path: Path, enhancer: Enhancer) -> None:
    """A still has no past frames: --denoise must neither fail on a 16-bit image nor turn an 8-bit grey one into a
    16-bit one (its hand-off depth) or round-trip its colours through 4:2:0."""
    from nightvision.stream.denoise import TemporalDenoiser

    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "grey8.png"), dark_frame(40, 48, seed=1)[:, :, 1])
    cv2.imwrite(str(folder / "colour8.png"), dark_frame(40, 48, seed=2))
    cv2.imwrite(str(folder / "deep16.png"), dark_frame(40, 48, seed=3).astype(np.uint16) * 257)
    plain = enhance_path(folder, tmp_path / "plain", enhancer=enhancer)
    denoised = enhance_path(
        folder, tmp_path / "denoised", enhancer=enhancer, pre_stages=[TemporalDenoiser(output_dtype=np.uint16)]
    )
    assert plain.files == denoised.files == 3 and not denoised.failures
    for name in ("grey8.png", "colour8.png", "deep16.png"):
        a = cv2.imread(str(tmp_path / "plain" / name), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(tmp_path / "denoised" / name), cv2.IMREAD_UNCHANGED)
        assert b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b), name


def test_a_pre_stage_may_give_16_bits_and_post_stages_still_get_8(
    clip: Path, enhancer: Enhancer, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Deepen:
        name = "deepen"

        def __call__(self, frame: np.ndarray) -> np.ndarray:
            return frame.astype(np.uint16) * 257

        def reset(self) -> None:
            pass

    seen: list[np.dtype] = []

    class Check(Counting):
        def __call__(self, frame: np.ndarray) -> np.ndarray:
            seen.append(frame.dtype)
            return frame

    staged: list[np.dtype] = []  # 16-bit video frames take the staged path too (not the whole-frame literal one)
    preprocess = enhancer.preprocess
    monkeypatch.setattr(enhancer, "preprocess", lambda frame: staged.append(frame.dtype) or preprocess(frame))
    out = Recorder()
    Pipeline(FileSource(clip), enhancer, [out], pre_stages=[Deepen()], post_stages=[Check()]).run()
    assert seen == [np.dtype(np.uint8)] * 10
    assert staged == [np.dtype(np.uint16)] * 10
    assert out.frames[0].dtype == np.uint8 and out.frames[0].mean() > dark_frame(48, 64).mean() + 15


def test_bad_stages_are_clear_errors(clip: Path) -> None:
    class NoReset:
        name = "noreset"

        def __call__(self, frame: np.ndarray) -> np.ndarray:
            return frame

    with pytest.raises(InputError, match=r"not a frame stage.*reset"):
        Pipeline(FileSource(clip), None, [NullSink()], pre_stages=[NoReset()])  # type: ignore[list-item]

    class Flatten(Counting):
        def __call__(self, frame: np.ndarray) -> np.ndarray:
            return frame[:, :, 0]

    with pytest.raises(ShapeError, match=r"frame stage 'count' must return \(H, W, 3\)"):
        Pipeline(FileSource(clip), None, [NullSink()], pre_stages=[Flatten()]).run()
