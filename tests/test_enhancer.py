"""The frame-level API on the shipped ONNX graphs (torch-free): formats in, same formats out, brighter."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from nightvision import Enhancer, list_specs
from nightvision.errors import EngineError, InputError, ModelNotFoundError, ShapeError
from nightvision.evaluation.metrics import clipped_fraction, mean_luma
from tests.conftest import dark_frame, save_checkpoint

SHIPPED = [s.name for s in list_specs() if s.has_onnx]
HEAVY = {"mirnet-v2"}  # 5.4 M parameters at full resolution: about 30 s a megapixel on this CPU


@pytest.fixture(scope="module", params=SHIPPED)
def enhancer(request: pytest.FixtureRequest) -> Enhancer:
    return Enhancer(request.param, threads=1)


def test_every_model_that_names_a_graph_ships_it() -> None:
    assert [s.name for s in list_specs() if s.onnx] == SHIPPED
    assert {"zero-dce", "zero-dce++", "nafnet-s"} <= set(SHIPPED)


def test_a_model_without_a_graph_is_refused_with_what_to_do() -> None:
    with pytest.raises(EngineError, match=r"ships no weights .*--weights RUN/final.pt.*--onnx FILE.onnx"):
        Enhancer("nafnet", backend="onnxruntime")


@pytest.mark.parametrize("size", [(33, 17), (478, 850), (1, 1), (1080, 1920)])
def test_uint8_bgr_keeps_shape_and_gets_brighter(enhancer: Enhancer, size: tuple[int, int]) -> None:
    if enhancer.spec.name in HEAVY and max(size) > 1000:
        pytest.skip(f"{enhancer.spec.name} at {size} takes minutes on a CPU; covered at the smaller sizes")
    frame = dark_frame(*size)
    out = enhancer.enhance(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
    if min(size) > 8:
        assert mean_luma(out) > mean_luma(frame) + 20
        assert clipped_fraction(out) < 0.01


def test_grey_stays_grey(enhancer: Enhancer) -> None:
    grey = dark_frame(40, 30)[:, :, 1]
    out = enhancer.enhance(grey)
    assert out.shape == (40, 30) and out.dtype == np.uint8
    assert out.mean() > grey.mean() + 20
    assert enhancer.enhance(grey[:, :, None]).shape == (40, 30, 1)


def test_neutral_greys_stay_neutral(enhancer: Enhancer) -> None:
    """A grey ramp (dark to mid, with some structure) as a colour frame: every model keeps it grey
    (|a*|, |b*| ≤ 2 in 8-bit Lab, F2's bound for a grey source, in each eighth of the ramp)."""
    h, w = 64, 256
    ramp = np.linspace(2, 120, w, dtype=np.float32)[None, :] * (1 + 0.15 * np.sin(np.arange(h) / 3.0))[:, None]
    frame = np.repeat(np.rint(ramp).astype(np.uint8)[:, :, None], 3, axis=2)
    lab = cv2.cvtColor(enhancer.enhance(frame), cv2.COLOR_BGR2LAB).astype(np.float32) - [0, 128, 128]
    shift = np.abs(lab.reshape(h, 8, w // 8, 3).mean(axis=(0, 2))[:, 1:])  # (a*, b*) in 8 bins along the ramp
    assert shift.max() <= 2.0, f"{enhancer.spec.name} tints grey: |a*|, |b*| up to {shift.max():.1f}"


def test_alpha_is_kept(enhancer: Enhancer) -> None:
    bgra = np.dstack([dark_frame(24, 36), np.arange(24 * 36, dtype=np.uint8).reshape(24, 36)])
    out = enhancer.enhance(bgra)
    assert out.shape == (24, 36, 4)
    assert np.array_equal(out[:, :, 3], bgra[:, :, 3])
    assert np.array_equal(out[:, :, :3], enhancer.enhance(np.ascontiguousarray(bgra[:, :, :3])))


def test_16_bit_matches_8_bit(enhancer: Enhancer) -> None:
    frame8 = dark_frame(32, 48)
    out16 = enhancer.enhance(frame8.astype(np.uint16) * 257)
    assert out16.dtype == np.uint16
    diff = np.abs((out16 / 257.0) - enhancer.enhance(frame8).astype(np.float64))
    assert diff.max() <= 1.0


def test_bad_frames_are_refused(enhancer: Enhancer) -> None:
    with pytest.raises(ShapeError, match="expected"):
        enhancer.enhance(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ShapeError, match="non-empty"):
        enhancer.enhance(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(ShapeError, match="numpy array"):
        enhancer.enhance([[1, 2]])  # type: ignore[arg-type]


def test_unknown_model_and_backend() -> None:
    with pytest.raises(ModelNotFoundError, match="did you mean"):
        Enhancer("zero-dc")
    with pytest.raises(InputError, match="unknown backend"):
        Enhancer("zero-dce++", "tensorflow")
    with pytest.raises(EngineError, match="not found"):
        Enhancer("zero-dce++", onnx_path="/nonexistent.onnx")


def test_torch_backend_agrees_with_onnxruntime() -> None:
    pytest.importorskip("torch")
    frame = dark_frame(61, 47)
    for name in SHIPPED:
        a = Enhancer(name, "onnxruntime", threads=1, exact=True).enhance(frame).astype(int)
        b = Enhancer(name, "torch", device="cpu").enhance(frame).astype(int)
        assert np.abs(a - b).max() <= 1


def test_fast_curve_path_matches_the_full_graph() -> None:
    """The estimator + table lookup path against the single exported graph, at the graph's fixed factor."""
    spec = next(s for s in list_specs() if s.estimator_onnx)
    fast = Enhancer(spec.name, downscale=spec.downscale, threads=1)
    exact = Enhancer(spec.name, exact=True, threads=1)
    for size in [(478, 850), (101, 67), (1080, 1920)]:
        frame = dark_frame(*size, seed=size[0])
        diff = fast.enhance(frame).astype(int) - exact.enhance(frame).astype(int)
        assert np.abs(diff).max() <= 1 and np.abs(diff).mean() < 0.01


def test_curve_table_against_literal_iterations() -> None:
    from nightvision.curves import CurveTable

    table = CurveTable(iterations=8)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    alpha = rng.uniform(-1, 1, (64, 64, 3)).astype(np.float32)
    y = x / 255.0
    for _ in range(8):
        y = y + alpha * (y * y - y)
    literal = np.round(np.clip(y, 0, 1) * 255)
    looked_up = table.apply(x, table.alpha_to_rows(alpha)).astype(float)
    assert np.abs(looked_up - literal).max() <= 1


def test_auto_downscale_keeps_the_estimator_input_small() -> None:
    spec = next(s for s in list_specs() if s.estimator_onnx)
    fast = Enhancer(spec.name, threads=1)._fast
    assert fast is not None
    for h, w in [(480, 640), (720, 1280), (1080, 1920), (2160, 3840), (20, 30)]:
        s = fast.factor(h, w)
        assert 0.6 * spec.curve_side <= min(h, w) / s <= 1.5 * spec.curve_side or s == 1


def test_auto_backend_says_why() -> None:
    from nightvision.backends import resolve_backend

    chosen, why = resolve_backend("auto")
    assert chosen in ("onnxruntime", "torch") and why
    assert resolve_backend("onnxruntime") == ("onnxruntime", "asked for")


def test_torch_backend_gpu_options_need_cuda_and_uint8_path_matches() -> None:
    torch = pytest.importorskip("torch")
    from nightvision.backends.pytorch import TorchBackend
    from nightvision.specs import get_spec

    spec = get_spec("zero-dce++")
    if not torch.cuda.is_available():
        for option in ("half", "channels_last", "cuda_graph"):
            with pytest.raises(EngineError, match="need a CUDA device"):
                TorchBackend(spec, device="cpu", **{option: True})
    backend = TorchBackend(spec, device="cpu")
    frame = dark_frame(45, 71)
    on_device = backend.enhance_uint8(frame).astype(int)
    via_numpy = Enhancer("zero-dce++", "torch", device="cpu").enhance(frame).astype(int)
    assert np.abs(on_device - via_numpy).max() <= 1


@pytest.mark.gpu
def test_cuda_matches_cpu_at_1080p() -> None:
    """The GPU parity check of issue 5 (fp32 <= 1e-4, fp16 <= 1e-2 at 1080p); skips without CUDA."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from nightvision.backends.pytorch import TorchBackend
    from nightvision.specs import get_spec

    for name in SHIPPED:
        m = get_spec(name).pad_multiple  # the runtime pads 1080 to the model's multiple before the backend
        x = np.random.default_rng(0).random((1, 3, -(-1080 // m) * m, 1920), dtype=np.float32) * 0.3
        cpu = TorchBackend(get_spec(name), device="cpu").run(x)
        assert np.abs(TorchBackend(get_spec(name), device="cuda").run(x) - cpu).max() <= 1e-4
        half = TorchBackend(get_spec(name), device="cuda", half=True, channels_last=True, cuda_graph=True)
        assert np.abs(half.run(x) - cpu).max() <= 1e-2


def test_staged_api_in_the_wrong_order_is_an_error(enhancer: Enhancer) -> None:
    job = enhancer.preprocess(dark_frame(20, 30))
    with pytest.raises(EngineError, match="infer\\(\\) must run before postprocess\\(\\)"):
        enhancer.postprocess(job)
    assert enhancer.postprocess(enhancer.infer(job)).shape == (20, 30, 3)
    with pytest.raises(ShapeError, match="uint8 or uint16 BGR"):
        enhancer.preprocess(dark_frame(20, 30)[:, :, 0])


def test_torch_uint8_path_pads_to_the_model_multiple_like_the_host(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from nightvision import models
    from nightvision.backends.pytorch import TorchBackend
    from nightvision.specs import get_spec

    torch.manual_seed(0)
    net = models.create("nafnet-s", pretrained=False)
    for p in net.parameters():  # the zero-initialised residual scales would make the blocks identities
        p.data.add_(torch.randn_like(p) * 0.05)
    ckpt = tmp_path / "random.pt"
    torch.save({"model": net.state_dict()}, ckpt)
    frame = dark_frame(45, 71)  # neither side a multiple of 16
    backend = TorchBackend(get_spec("nafnet-s"), device="cpu", weights=str(ckpt))
    on_device = backend.enhance_uint8(frame).astype(int)
    via_host = Enhancer("nafnet-s", "torch", device="cpu", weights=str(ckpt)).enhance(frame).astype(int)
    assert on_device.shape == frame.shape
    assert np.abs(on_device - via_host).max() <= 1


def test_onnxruntime_providers_prefer_tensorrt_then_cuda_and_cache_tensorrt_engines() -> None:
    from nightvision.backends.onnxruntime import choose_providers

    assert choose_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    everything = [
        "CPUExecutionProvider",
        "CUDAExecutionProvider",
        "TensorrtExecutionProvider",
        "OpenVINOExecutionProvider",
    ]
    trt, cuda, cpu = choose_providers(everything, cache_dir="/cache")
    assert (cuda, cpu) == ("CUDAExecutionProvider", "CPUExecutionProvider")
    name, options = trt
    assert name == "TensorrtExecutionProvider"
    assert options["trt_engine_cache_enable"] and options["trt_engine_cache_path"] == "/cache"
    assert "trt_fp16_enable" not in options  # precision comes from the graph


# --- --weights: takes effect on the chosen backend or fails with one line -------------------------------------


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_weights_that_do_not_exist_are_named(tmp_path: Path, backend: str) -> None:
    if backend == "torch":
        pytest.importorskip("torch")
    with pytest.raises(InputError, match=r"^no such checkpoint: .*my\.pt$"):
        Enhancer("zero-dce++", backend, weights=str(tmp_path / "my.pt"))


def test_weights_without_torch_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    ckpt = tmp_path / "my.pt"
    ckpt.write_bytes(b"PK\x03\x04 a checkpoint")
    monkeypatch.setenv("NIGHTVISION_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch fails
    with pytest.raises(InputError) as info:
        Enhancer("zero-dce++", "onnxruntime", weights=str(ckpt))
    assert str(info.value) == (
        "weights (--weights) need torch to convert the checkpoint: pip install 'nightvision[train]' or give "
        "an ONNX file (onnx_path=, --onnx)"
    )


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_truncated_weights_are_one_line_naming_the_file(tmp_path: Path, backend: str) -> None:
    good = save_checkpoint(tmp_path / "good.pt", "zero-dce++")
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError, match=r"^cannot read checkpoint .*truncated\.pt: ") as info:
        Enhancer("zero-dce++", backend, weights=str(bad))
    assert "\n" not in str(info.value)
    video = tmp_path / "clip.mp4"  # (said "cannot read checkpoint clip.mp4: 101" or torch's weights_only essay)
    video.write_bytes(b"\x00\x00\x00\x20ftypisom" + bytes(64))
    with pytest.raises(InputError, match=r"clip\.mp4 is not a PyTorch checkpoint"):
        Enhancer("zero-dce++", backend, weights=str(video))


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_weights_of_another_model_name_the_first_mismatch(tmp_path: Path, backend: str) -> None:
    other = save_checkpoint(tmp_path / "other.pt", "zero-dce")
    with pytest.raises(InputError) as info:
        Enhancer("zero-dce++", backend, weights=str(other), device="cpu" if backend == "torch" else None)
    message = str(info.value)
    assert message.startswith(f"{other} does not match zero-dce++: it has no net.convs.0.depthwise.weight")
    assert message.endswith("(it is a checkpoint of zero-dce)") and "\n" not in message


def test_weights_of_another_width_name_the_first_shape(tmp_path: Path) -> None:
    """The torch backend builds the registered variant; the shapes say why the checkpoint does not fit."""
    ckpt = save_checkpoint(tmp_path / "narrow.pt", "nafnet-s", width=8)
    with pytest.raises(
        InputError, match=r"narrow\.pt does not match nafnet-s: intro\.weight is \(8, 3, 3, 3\) in the "
    ):
        Enhancer("nafnet-s", "torch", device="cpu", weights=str(ckpt))


def test_weights_and_onnx_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"give weights \(--weights\) or onnx_path \(--onnx\), not both"):
        Enhancer("nafnet-s", "onnxruntime", weights=str(tmp_path / "a.pt"), onnx_path=str(tmp_path / "a.onnx"))


def test_a_corrupt_onnx_file_is_one_line_naming_it(tmp_path: Path) -> None:
    for content in (b"not a graph \x08\x07", Path(list_specs()[0].onnx_path or "").read_bytes()[:3000]):
        bad = tmp_path / "corrupt.onnx"
        bad.write_bytes(content)
        with pytest.raises(EngineError, match=r"cannot load .*corrupt\.onnx") as info:
            Enhancer("zero-dce", "onnxruntime", onnx_path=str(bad))
        assert "\n" not in str(info.value)


@pytest.mark.slow
def test_weights_take_effect_on_onnxruntime_fast_and_exact_and_are_exported_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnx")
    monkeypatch.setenv("NIGHTVISION_CACHE", str(tmp_path / "cache"))
    ckpt = save_checkpoint(tmp_path / "fresh.pt", "zero-dce++", seed=3, downscale=1)
    frame = dark_frame(64, 96)
    fast = Enhancer("zero-dce++", "onnxruntime", weights=str(ckpt), threads=1, downscale=8).enhance(frame)
    exact = Enhancer("zero-dce++", "onnxruntime", weights=str(ckpt), threads=1, exact=True).enhance(frame)
    on_torch = Enhancer("zero-dce++", "torch", device="cpu", weights=str(ckpt)).enhance(frame)
    shipped = Enhancer("zero-dce++", "onnxruntime", threads=1, downscale=8).enhance(frame)
    assert np.abs(fast.astype(int) - on_torch).max() <= 1
    assert np.abs(exact.astype(int) - on_torch).max() <= 1
    assert np.abs(fast.astype(int) - shipped).mean() > 2  # the checkpoint, not the shipped weights
    graphs = sorted(p.name for p in (tmp_path / "cache" / "onnx").iterdir())
    assert len(graphs) == 2 and graphs[0].endswith(".estimator.onnx")

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr("nightvision.export.export_curve_estimator", no_export)
    again = Enhancer("zero-dce++", "onnxruntime", weights=str(ckpt), threads=1, downscale=8).enhance(frame)
    assert np.array_equal(again, fast)
