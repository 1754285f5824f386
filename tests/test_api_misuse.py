"""Mistakes an API caller makes are one clear nightvision error that says what to do, never a corrupted result
or a bare TypeError/AttributeError/cv2.error from deep inside (review of the Python API)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from nightvision import Enhancer
from nightvision.errors import EngineError, InputError, ModelNotFoundError, OutputError, ShapeError, SourceError
from nightvision.io.video import VideoReader, VideoWriter
from nightvision.preprocess import to_tensor
from nightvision.stream.jobs import enhance_path, plan_enhance, run_stream
from nightvision.stream.pipeline import Pipeline, StopRequest
from nightvision.stream.sinks import ImageFileSink, NullSink, VideoFileSink, make_sink
from nightvision.stream.sources import FileSource, FolderSource, ImageSource, make_source
from tests.conftest import dark_frame, run_cli

FAST_MODELS = ["zero-dce++", "curve-denoise"]  # the shared-curve fast path and the coefficients fast path


@pytest.fixture(scope="module", params=FAST_MODELS)
def model(request: pytest.FixtureRequest) -> Iterator[Enhancer]:
    with Enhancer(request.param, threads=1) as enhancer:
        yield enhancer


@pytest.fixture(scope="module")
def zdce() -> Iterator[Enhancer]:
    with Enhancer("zero-dce++", threads=1) as enhancer:
        yield enhancer


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A 5-frame 48x40 video."""
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, 48, 40, 10) as w:
        for i in range(5):
            w.write(dark_frame(40, 48, seed=i), i)
    return path


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "dark.png"
    cv2.imwrite(str(path), dark_frame(40, 48))
    return path


# --- 1. float frames outside [0, 1] -------------------------------------------------------------------------
def _float_frames() -> dict[str, tuple[np.ndarray, str]]:
    frame = dark_frame(64, 80).astype(np.float32)
    nan = frame / 255
    nan[3, 4, :] = np.nan
    return {
        "0-255 (forgot /255)": (frame, r"^float frames must be in \[0, 1\] \(got values up to \d+: divide by 255\)$"),
        "NaN": (nan, r"^float frames must be in \[0, 1\], and this one contains NaN"),
        "negative": (frame / 255 - 0.1, r"^float frames must be in \[0, 1\] \(got values down to -0\.1: clip"),
        "65535 scale": (frame * 257, r"divide by 65535"),
        "infinity": (np.full((8, 8, 3), np.inf, np.float32), r"contains infinity"),
        "just over 1": (frame / 255 + 1.0, r"got values up to 1\.\d+: clip them"),
    }


def test_float_rounding_just_past_1_is_not_a_mistake() -> None:
    """A resize of an all-1.0 region gives 1.0000001 (the tiler does this inside nafnet-s): accepted."""
    from nightvision.preprocess import check_float_range

    check_float_range(np.full((4, 4, 3), np.float32(1.0000001)))
    check_float_range(np.full((4, 4, 3), np.float32(-1e-7)))


@pytest.mark.parametrize("case", list(_float_frames()))
def test_float_frames_outside_0_1_are_refused_not_corrupted(model: Enhancer, case: str) -> None:
    frame, message = _float_frames()[case]
    for layout in (frame, frame[:, :, 0], np.dstack([frame, frame[:, :, :1]])):  # BGR, grey, BGRA
        with pytest.raises(ShapeError, match=message):
            model.enhance(layout)
    with pytest.raises(ShapeError, match=message):
        to_tensor(frame)  # the array level refuses it too
    with pytest.raises(ShapeError, match=message):
        model.enhance(frame.astype(np.float64))


def test_float_frames_in_range_still_work(model: Enhancer) -> None:
    frame = dark_frame(64, 80).astype(np.float32) / 255
    out = model.enhance(frame)
    assert out.shape == frame.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1 and out.mean() > frame.mean() + 0.05


def test_uint8_frames_pay_no_float_check(model: Enhancer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The min/max pass is for float input only: the 60 FPS uint8 path never runs it."""

    def forbidden(frame: np.ndarray) -> None:
        raise AssertionError("check_float_range ran on a uint8 frame")

    monkeypatch.setattr("nightvision.enhancer.check_float_range", forbidden)
    monkeypatch.setattr("nightvision.preprocess.check_float_range", forbidden)
    frame = dark_frame(64, 80)
    assert model.enhance(frame).shape == frame.shape
    assert model.postprocess(model.infer(model.preprocess(frame))).shape == frame.shape


@pytest.mark.parametrize("max_tile", [None, 192], ids=["whole-frame", "tiled"])
def test_a_float_frame_is_range_checked_once(monkeypatch: pytest.MonkeyPatch, max_tile: int | None) -> None:
    """The check is a pass over the frame (1.9 ms at 1080p): the graph's input conversion and the tiles do not
    repeat it after the API checked the frame."""
    import nightvision.enhancer
    import nightvision.preprocess
    import nightvision.tiling

    calls = []
    real = nightvision.preprocess.check_float_range

    def counted(frame: np.ndarray) -> None:
        calls.append(frame.shape)
        real(frame)

    for module in (nightvision.enhancer, nightvision.preprocess, nightvision.tiling):
        monkeypatch.setattr(module, "check_float_range", counted)
    frame = dark_frame(260, 300).astype(np.float32) / 255
    with Enhancer("nafnet-s", threads=1, max_tile=max_tile) as enhancer:
        out = enhancer.enhance(frame)
        assert (enhancer._engine is not None) == (max_tile is not None)  # the tiled path was taken, or not
    assert out.shape == frame.shape and out.dtype == np.float32
    assert calls == [frame.shape]


# --- 2, 3. layouts, dtypes and empty frames ------------------------------------------------------------------
def test_grey_float64_is_accepted_like_colour_float64(zdce: Enhancer) -> None:
    grey = dark_frame(64, 64)[:, :, 1].astype(np.float64) / 255
    out = zdce.enhance(grey)
    assert out.shape == (64, 64) and out.dtype == np.float64 and out.mean() > grey.mean() + 0.05
    assert zdce.enhance(grey[:, :, None]).shape == (64, 64, 1)
    as32 = zdce.enhance(grey.astype(np.float32))
    assert np.abs(out - as32).max() < 1e-3  # the same result as float32 grey


@pytest.mark.parametrize(
    "shape", [(10, 0), (0, 10), (10, 0, 1), (0, 0, 3), (0, 0, 4), (0, 5, 4)], ids=lambda s: "x".join(map(str, s))
)
def test_an_empty_frame_names_the_callers_shape(zdce: Enhancer, shape: tuple[int, ...]) -> None:
    for dtype in (np.uint8, np.float32):
        with pytest.raises(ShapeError, match=rf"^expected a non-empty image, got {re.escape(str(shape))}$"):
            zdce.enhance(np.zeros(shape, dtype))


@pytest.mark.parametrize("shape", [(8, 8, 2), (8, 8, 5), (8,), (2, 8, 8, 3)])
def test_a_wrong_layout_names_the_callers_shape(zdce: Enhancer, shape: tuple[int, ...]) -> None:
    with pytest.raises(ShapeError, match=rf"^expected \(H, W\), .* got {re.escape(str(shape))}$"):
        zdce.enhance(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.bool_, np.int8])
def test_an_unsupported_dtype_is_one_shape_error(zdce: Enhancer, dtype: type) -> None:
    for shape in ((8, 8), (8, 8, 3), (8, 8, 4)):
        with pytest.raises(ShapeError, match=f"pixels, got {np.dtype(dtype)}$"):
            zdce.enhance(np.zeros(shape, dtype))


# --- 4. close() is final ------------------------------------------------------------------------------------
def test_close_is_final_for_tiled_frames_too() -> None:
    big = dark_frame(300, 400)
    used = Enhancer("curve-denoise", threads=1, max_tile=256)
    assert used.enhance(big).shape == big.shape  # in tiles: the tile engine now exists
    unused = Enhancer("curve-denoise", threads=1, memory_budget_mb=5)  # tile engine not made yet
    for enhancer in (used, unused):
        enhancer.close()
        enhancer.close()  # idempotent
        for frame in (big, big[:, :, 0], big.astype(np.float32) / 255, dark_frame(32, 32)):
            with pytest.raises(EngineError, match=r"^this Enhancer \(curve-denoise\) was closed; make a new"):
                enhancer.enhance(frame)
        with pytest.raises(EngineError, match="was closed"):
            enhancer.preprocess(big)


def test_staged_calls_after_close_raise_engine_error() -> None:
    enhancer = Enhancer("zero-dce++", threads=1)
    job = enhancer.preprocess(dark_frame(32, 32))
    enhancer.close()
    with pytest.raises(EngineError, match="was closed"):
        enhancer.infer(job)
    with pytest.raises(EngineError, match="was closed"):
        enhancer.preprocess(dark_frame(32, 32))


# --- 5. what cv2.imread gives for a missing file --------------------------------------------------------------
def test_a_missing_image_says_cv2_imread_returned_none(zdce: Enhancer, tmp_path: Path) -> None:
    frame = cv2.imread(str(tmp_path / "missing.jpg"))
    with pytest.raises(ShapeError) as info:
        zdce.enhance(frame)
    assert str(info.value) == (
        "expected a numpy array, got NoneType (cv2.imread returns None for a file it cannot read)"
    )
    with pytest.raises(ShapeError, match=r"^expected a numpy array, got list$"):
        zdce.enhance([[1, 2], [3, 4]])  # type: ignore[arg-type]


# --- 6. an empty input name is not the current folder ---------------------------------------------------------
@pytest.mark.parametrize("uri", ["", "  ", "file://"])
def test_make_source_refuses_an_empty_name(uri: str) -> None:
    with pytest.raises(InputError, match=r"^the input name is empty; give a video, an image, a folder"):
        make_source(uri)


def test_enhance_path_and_run_stream_refuse_an_empty_input(
    image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # holds an image: "" must not mean this folder
    with pytest.raises(InputError, match=r"^the input name is empty; give an image, a video or a folder$"):
        enhance_path("", "out/", enhancer=lambda: pytest.fail("no model for a refused job"))
    with pytest.raises(InputError, match=r"^the input name is empty"):
        plan_enhance("", "out/")
    with pytest.raises(InputError, match=r"^the input name is empty"):
        run_stream("", headless=True, enhancer=lambda: pytest.fail("no model for a refused job"))
    assert not (tmp_path / "out").exists()


def test_cli_enhance_of_an_empty_name_enhances_nothing(image: Path, tmp_path: Path) -> None:
    result = run_cli("enhance", "", "-o", "out/", cwd=tmp_path)
    assert result.returncode == 2 and "the input name is empty" in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


# --- 7. one output given as a string or a path ----------------------------------------------------------------
@pytest.mark.parametrize("kind", [str, Path])
def test_run_stream_takes_one_output_as_a_string_or_path(
    zdce: Enhancer, clip: Path, tmp_path: Path, kind: type
) -> None:
    out = tmp_path / "out.mp4"
    stats = run_stream(kind(clip), kind(out), enhancer=zdce, headless=True)
    assert stats.complete and stats.frames_out == 5 and out.is_file()


def test_run_stream_refuses_an_output_that_is_not_a_name(zdce: Enhancer, clip: Path) -> None:
    with pytest.raises(InputError, match=r"^an output is named by a string or a path, got 3$"):
        run_stream(str(clip), ["null://", 3], enhancer=zdce, headless=True)  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda im, out, m: enhance_path(None, out, enhancer=m), r"^source is a path .*, got None$"),
        (lambda im, out, m: enhance_path([im], out, enhancer=m), r"^source is a path .*, got \["),
        (lambda im, out, m: enhance_path(im, None, enhancer=m), r"^output is a path .*, got None$"),
        (lambda im, out, m: enhance_path(im, out, enhancer=m, stop=True), r"^stop is a .*StopRequest"),
        (lambda im, out, m: enhance_path(im, out, enhancer=m, on_progress=1), r"^on_progress is a function"),
        (lambda im, out, m: enhance_path(im, out, enhancer=m, pre_stages="denoise"), r"^stages are a list"),
        (lambda im, out, m: run_stream(im, 5, enhancer=m, headless=True), r"^outputs are a string, .*got int$"),
        (lambda im, out, m: run_stream(im, {"a": 1}, enhancer=m, headless=True), r"got dict$"),  # (its keys)
        (lambda im, out, m: run_stream(im, out, enhancer=m, loop="2"), r"^loop is a whole number, got '2'$"),
        (lambda im, out, m: run_stream(im, out, enhancer=m, on_status=1), r"^on_status is a function"),
    ],
)
def test_job_arguments_of_the_wrong_type_are_one_line(
    zdce: Enhancer, image: Path, tmp_path: Path, call: object, message: str
) -> None:
    """Each was a TypeError or AttributeError from deep in the job (or, for a dict, a folder of PNGs named
    after its key)."""
    with pytest.raises(InputError, match=message):
        call(image, tmp_path / "out.png", zdce)  # type: ignore[operator]
    assert sorted(p.name for p in tmp_path.iterdir()) == [image.name]


def test_a_failing_on_status_stops_the_run_and_is_raised(zdce: Enhancer, tmp_path: Path) -> None:
    """It printed a thread traceback and the job went on. The run stops as a stop does (a live recording is
    kept, whole), then the error is raised."""

    def broken(stats: object) -> None:
        raise RuntimeError("my progress bar broke")

    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="my progress bar broke"):
        run_stream("synthetic://?fps=50&size=64x48&frames=500", out, enhancer=zdce, on_status=broken)
    with VideoReader(out) as reader:
        assert 0 < len(list(reader.frames())) < 500


def test_threads_out_of_range_are_refused_as_on_the_command_line() -> None:
    with pytest.raises(InputError, match=r"threads must be 0 \(one per core\) to 1024, got -1"):
        Enhancer("zero-dce++", threads=-1)


def test_a_frame_job_of_another_enhancer_is_refused(zdce: Enhancer) -> None:
    other = Enhancer("curve-denoise")
    job = other.preprocess(dark_frame(48, 64))
    for stage in (zdce.infer, zdce.postprocess):
        with pytest.raises(InputError, match="not another enhancer's"):
            stage(job)
    assert other.postprocess(other.infer(job)).shape == (48, 64, 3)


# --- 8. the enhancer of a job given by name ------------------------------------------------------------------
def test_enhance_path_takes_a_model_name(image: Path, tmp_path: Path) -> None:
    report = enhance_path(image, tmp_path / "out.png", enhancer="zero-dce++")
    assert report.files == 1 and (tmp_path / "out.png").is_file()


def test_a_wrong_enhancer_is_refused_before_anything_is_made(image: Path, tmp_path: Path) -> None:
    out = tmp_path / "new" / "out.png"
    with pytest.raises(InputError, match=r"^enhancer must be an Enhancer, a model name .* got int$"):
        enhance_path(image, out, enhancer=42)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"^the enhancer function must return an Enhancer, and it returned NoneType"):
        enhance_path(image, out, enhancer=lambda: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(ModelNotFoundError, match=r"^unknown model 'no-such-model'"):
        enhance_path(image, out, enhancer="no-such-model")
    assert not out.exists()


# --- 9. wrong argument types at the public entry points -----------------------------------------------------
def test_sources_and_sinks_take_paths(image: Path, clip: Path, tmp_path: Path) -> None:
    assert isinstance(make_source(image), ImageSource)
    assert isinstance(make_source(clip), FileSource)
    assert isinstance(make_source(tmp_path), FolderSource)
    assert make_source(0).uri == "0"  # the first camera, not opened
    assert isinstance(make_sink(tmp_path / "o.png"), ImageFileSink)
    assert isinstance(make_sink(tmp_path / "o.mp4"), VideoFileSink)
    for bad in (None, 2.5, b"clip.mp4", -1):
        with pytest.raises(InputError, match=r"^a source is named by a string or a path"):
            make_source(bad)  # type: ignore[arg-type]
    for bad in (None, 0, b"o.mp4"):
        with pytest.raises(InputError, match=r"^an output is named by a string or a path"):
            make_sink(bad)  # type: ignore[arg-type]


def test_pipeline_refuses_names_and_takes_one_sink(zdce: Enhancer, clip: Path) -> None:
    with pytest.raises(InputError, match=r"^a Pipeline reads a Source .* got str: make one with make_source\("):
        Pipeline(str(clip), zdce, [NullSink()])  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"^a Pipeline reads a Source .* got PosixPath: make one with make_source"):
        Pipeline(clip, zdce, [NullSink()])  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"got str: make one with make_sink\('out\.mp4'\)$"):
        Pipeline(FileSource(clip), zdce, ["out.mp4"])  # type: ignore[list-item]
    with pytest.raises(InputError, match=r"got str: make one with make_sink\('out\.mp4'\)$"):
        Pipeline(FileSource(clip), zdce, "out.mp4")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"^a Pipeline runs an Enhancer \(or None\), got str: load it with Enhancer"):
        Pipeline(FileSource(clip), "zero-dce++", [NullSink()])  # type: ignore[arg-type]
    sink = NullSink()
    stats = Pipeline(FileSource(clip), zdce, sink).run()
    assert stats.complete and sink.frames == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"memory_budget_mb": "100"}, r"^memory_budget_mb must be a number, got '100'$"),
        ({"threads": "2"}, r"^threads must be an integer, got '2'$"),
        ({"downscale": 2.5}, r"^downscale must be an integer, got 2\.5$"),
        ({"max_tile": "512"}, r"^max_tile must be an integer, got '512'$"),
        ({"memory_budget_mb": True}, r"^memory_budget_mb must be a number, got True$"),
    ],
)
def test_enhancer_options_of_the_wrong_type_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        Enhancer("zero-dce++", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", [None, 3, Path("zero-dce++")])
def test_a_model_name_that_is_not_a_string_is_refused(name: object) -> None:
    with pytest.raises(InputError, match=r"^a model is named by a string such as 'curve-denoise' \(known: .*zero-dce"):
        Enhancer(name)  # type: ignore[arg-type]


def test_staged_calls_refuse_what_is_not_their_input(zdce: Enhancer) -> None:
    with pytest.raises(ShapeError, match=r"^the staged API takes \(H, W, 3\) uint8 or uint16 BGR frames, got list$"):
        zdce.preprocess([1])  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"^infer\(\) takes the FrameJob that preprocess\(\) returned, got NoneType$"):
        zdce.infer(None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"^postprocess\(\) takes the FrameJob .* got ndarray$"):
        zdce.postprocess(dark_frame(8, 8))  # type: ignore[arg-type]


@pytest.mark.parametrize("crf", ["18", 18.0, None, 52, -1, True])
def test_crf_must_be_an_integer_in_range(zdce: Enhancer, image: Path, tmp_path: Path, crf: object) -> None:
    message = rf"^crf must be an integer in 0-51 \(lower is better\), got {re.escape(repr(crf))}$"
    with pytest.raises(InputError, match=message):
        enhance_path(image, tmp_path / "o.png", enhancer=zdce, crf=crf)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=message):
        run_stream(str(image), "null://", enhancer=zdce, crf=crf)  # type: ignore[arg-type]


# --- 10. stop() before run() is honoured -------------------------------------------------------------------
def _file_pipeline(clip: Path, out: Path, enhancer: Enhancer, stop: StopRequest | None = None) -> Pipeline:
    source = FileSource(clip).open()
    assert source.time_base is not None
    sink = VideoFileSink(out, fps=source.fps, time_base=source.time_base)
    return Pipeline(source, enhancer, [sink], stop=stop)


def test_stop_before_run_ends_the_run_at_once(zdce: Enhancer, clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    pipeline = _file_pipeline(clip, out, zdce)
    pipeline.stop("SIGINT")
    stats = pipeline.run()
    assert (stats.frames_in, stats.frames_out, stats.stopped_by, stats.complete) == (0, 0, "SIGINT", False)
    with pytest.raises(SourceError, match="was closed"):  # the source and the sink were ended
        pipeline.source.open()
    with pytest.raises(OutputError, match="was closed"):
        pipeline.sinks[0].open()
    assert not out.exists() and not list(tmp_path.glob("out*.partial.mp4")) and stats.outputs == []
    with pytest.raises(EngineError, match="runs once"):
        pipeline.run()


def test_a_stop_request_set_before_run_is_honoured_the_same_way(zdce: Enhancer, clip: Path, tmp_path: Path) -> None:
    request = StopRequest()
    request.set("SIGTERM")
    stats = _file_pipeline(clip, tmp_path / "out.mp4", zdce, stop=request).run()
    assert (stats.frames_out, stats.stopped_by) == (0, "SIGTERM") and not (tmp_path / "out.mp4").exists()


# --- 11. video sinks: frame layout and timestamps ----------------------------------------------------------
@pytest.mark.parametrize("shape", [(40, 48, 2), (40, 48, 5), (0, 48, 3), (40,)])
def test_a_sink_refuses_a_frame_it_cannot_encode_naming_its_shape(tmp_path: Path, shape: tuple[int, ...]) -> None:
    with VideoFileSink(tmp_path / "o.mp4", fps=10, time_base=Fraction(1, 10)) as sink:
        with pytest.raises(ShapeError, match=rf"^cannot write a frame of shape {re.escape(str(shape))} to .*o\.mp4: "):
            sink.write(np.zeros(shape, np.uint8), dark_frame(40, 48), 0)
        sink.write(dark_frame(40, 48), dark_frame(40, 48), 0)  # the sink is still usable
    with NullSink() as null, pytest.raises(ShapeError, match=r"^cannot write a NoneType to null://"):
        null.write(None, dark_frame(8, 8), 0)  # type: ignore[arg-type]


def test_decreasing_pts_are_written_in_order_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "o.mp4"
    sink = VideoFileSink(out, fps=10, time_base=Fraction(1, 10))
    with caplog.at_level(logging.WARNING, logger="nightvision.stream.sinks"), sink:
        for pts in (5, 3, 1, 1):
            sink.write(dark_frame(40, 48), dark_frame(40, 48), pts)
    warnings = [r.getMessage() for r in caplog.records if "timestamps must increase" in r.getMessage()]
    assert len(warnings) == 1 and "pts 3 follows 5: written at 6" in warnings[0], warnings
    with VideoReader(out) as reader:
        times = [float(f.pts * reader.info.time_base) for f in reader.frames() if f.pts is not None]
    assert times == pytest.approx([0.5, 0.6, 0.7, 0.8])


def test_increasing_pts_give_no_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sink = VideoFileSink(tmp_path / "o.mp4", fps=10, time_base=Fraction(1, 10))
    with caplog.at_level(logging.WARNING, logger="nightvision.stream.sinks"), sink:
        for pts in (0, 1, 3):
            sink.write(dark_frame(40, 48), dark_frame(40, 48), pts)
    assert not caplog.records


# --- 12. messages for API callers name the argument, not only the CLI flag -------------------------------------
def test_device_without_the_torch_backend_names_the_argument_and_the_flag() -> None:
    with pytest.raises(EngineError, match=r"pass backend='torch' \(--backend torch\), or leave device unset"):
        Enhancer("zero-dce++", "onnxruntime", device="cuda")


def test_downscale_without_the_fast_path_names_the_argument() -> None:
    with pytest.raises(InputError, match=r"^downscale \(--downscale\) needs the fast curve path"):
        Enhancer("zero-dce++", "onnxruntime", downscale=4, exact=True)


def test_the_enhancer_docstring_describes_auto_as_the_readme_does() -> None:
    doc = " ".join((Enhancer.__doc__ or "").split())
    assert "TensorRT when it is installed and ``nightvision build`` made a plan" in doc
    assert "else PyTorch on a CUDA GPU, else ONNX Runtime" in doc
