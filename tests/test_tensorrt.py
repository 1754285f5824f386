"""TensorRT logic against a fake ``tensorrt`` module (no TensorRT can be installed here; nothing here
claims TensorRT ran): builder flow, plan header round trip, cache hit, rebuild on version or GPU change,
shape outside the profile, parser errors, refusing stub-only or unsupported installs, the plan's I/O types,
the torch-free pycuda buffers against a fake ``pycuda.driver`` (no GPU here either), and the caches kept in the
user cache folder (never the working directory).

Every test here runs with ``NIGHTVISION_CACHE`` set to its own ``tmp_path``, so nothing reaches ~/.cache."""

from __future__ import annotations

import logging
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from nightvision.backends import tensorrt as nvtrt
from nightvision.backends.tensorrt import runner
from nightvision.errors import EngineError, InputError, OutputError
from nightvision.specs import get_spec
from tests import fake_pycuda, fake_tensorrt

ONNX = get_spec("zero-dce++").onnx_path
H100 = lambda: ("NVIDIA H100 80GB HBM3", "9.0")  # noqa: E731
ORIN = lambda: ("Orin", "8.7")  # noqa: E731


@pytest.fixture(autouse=True)
def user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user cache folder of every test here: ``tmp_path`` (its plan folder is ``tmp_path / "engines"``)."""
    monkeypatch.setenv("NIGHTVISION_CACHE", str(tmp_path))
    return tmp_path


@pytest.fixture
def trt(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = fake_tensorrt.reset()
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    return module


class HostBuffers:
    """Stands in for the torch / pycuda buffers: hands out fake addresses and returns the input."""

    kind = "host"

    def run(self, context, inp, out, x, out_shape, out_dtype):  # type: ignore[no-untyped-def]
        context.set_tensor_address(inp, id(x))
        context.set_tensor_address(out, id(out_shape))
        assert context.execute_async_v3(0)
        return x


def test_builder_flow(trt: types.ModuleType, tmp_path: Path) -> None:
    profile = nvtrt.Profile((64, 64), (720, 1280), (1080, 1920))
    header = nvtrt.build_plan(
        ONNX,
        tmp_path / "a.plan",
        model="zero-dce++",
        precision="fp32",
        profile=profile,
        workspace_gib=1.0,
        version_compatible=True,
        timing_cache=tmp_path / "timing.cache",
        gpu=H100,
    )
    build = fake_tensorrt.builds[-1]
    assert build["flags"] == 1 << 1  # strongly typed
    assert build["workspace"] == 1 << 30
    assert build["builder_flags"] == [13]  # version compatible; no precision flags: the ONNX decides
    assert build["profile"] == {"image": ([1, 3, 64, 64], [1, 3, 720, 1280], [1, 3, 1080, 1920])}
    assert (tmp_path / "timing.cache").read_bytes() == b"+"
    nvtrt.build_plan(ONNX, tmp_path / "b.plan", model="zero-dce++", timing_cache=tmp_path / "timing.cache", gpu=H100)
    assert fake_tensorrt.builds[-1]["cache_in"] == "+"  # the persisted cache was fed back
    read, engine = nvtrt.read_plan(tmp_path / "a.plan")
    assert read == header and read.tensorrt_version == "10.13.0.35" and read.gpu_name.startswith("NVIDIA H100")
    assert read.onnx_sha256 == get_spec("zero-dce++").expected_sha256("zero-dce++.onnx")
    assert engine.startswith(b"{")


def test_header_round_trip_and_damage(tmp_path: Path) -> None:
    header = nvtrt.PlanHeader("m", "ab" * 32, "11.0.0", "GPU", "9.0", "fp16", nvtrt.Profile(), False, "cd" * 32, "t")
    nvtrt.write_plan(tmp_path / "p.plan", header, b"ENGINE")
    assert nvtrt.read_plan(tmp_path / "p.plan") == (header, b"ENGINE")
    (tmp_path / "bad.plan").write_bytes(b"not a plan at all")
    with pytest.raises(EngineError, match="not a nightvision plan"):
        nvtrt.read_plan(tmp_path / "bad.plan")
    data = (tmp_path / "p.plan").read_bytes()
    (tmp_path / "cut.plan").write_bytes(data[:20] + b"}" + data[21:])
    with pytest.raises(EngineError, match="damaged header"):
        nvtrt.read_plan(tmp_path / "cut.plan")


def test_cache_hit_and_rebuild_on_version_or_gpu_change(
    trt: types.ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = nvtrt.ensure_plan(ONNX, tmp_path, model="zero-dce++", gpu=H100)
    assert len(fake_tensorrt.builds) == 1
    assert nvtrt.ensure_plan(ONNX, tmp_path, model="zero-dce++", gpu=H100) == first
    assert len(fake_tensorrt.builds) == 1  # cache hit
    trt.__version__ = "11.0.1"
    with caplog.at_level(logging.WARNING):
        second = nvtrt.ensure_plan(ONNX, tmp_path, model="zero-dce++", gpu=H100)
    assert second != first and len(fake_tensorrt.builds) == 2
    assert "built with TensorRT 10.13.0.35, running 11.0.1" in caplog.text
    with caplog.at_level(logging.WARNING):
        third = nvtrt.ensure_plan(ONNX, tmp_path, model="zero-dce++", gpu=ORIN)
    assert third not in (first, second) and len(fake_tensorrt.builds) == 3
    assert "running on Orin (sm 8.7)" in caplog.text


def test_a_plan_for_another_gpu_is_never_loaded(trt: types.ModuleType, tmp_path: Path) -> None:
    nvtrt.build_plan(ONNX, tmp_path / "p.plan", model="zero-dce++", gpu=H100)
    with pytest.raises(EngineError, match="rebuild it with `nightvision build zero-dce\\+\\+`"):
        nvtrt.TensorRTBackend(tmp_path / "p.plan", gpu=ORIN, device_buffers=HostBuffers())


def test_run_uses_the_name_based_api_and_checks_the_profile(trt: types.ModuleType, tmp_path: Path) -> None:
    profile = nvtrt.Profile((32, 32), (256, 256), (512, 512))
    nvtrt.build_plan(ONNX, tmp_path / "p.plan", model="zero-dce++", profile=profile, gpu=H100)
    backend = nvtrt.TensorRTBackend(tmp_path / "p.plan", gpu=H100, device_buffers=HostBuffers())
    x = np.zeros((1, 3, 100, 200), np.float32)
    assert backend.run(x) is x
    calls = backend._context.calls
    assert calls == ["set_input_shape", "set_tensor_address:image", "set_tensor_address:enhanced", "execute_async_v3"]
    with pytest.raises(EngineError, match=r"outside the plan's profile \(min / opt / max 32x32 / 256x256 / 512x512\)"):
        backend.run(np.zeros((1, 3, 1080, 1920), np.float32))
    backend.close()
    backend.close()


def test_parser_errors_are_reported_in_full(trt: types.ModuleType, tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(EngineError, match=r"(?s)cannot parse.*not an ONNX model.*unsupported"):
        nvtrt.build_plan(bad, tmp_path / "p.plan", model="zero-dce++", gpu=H100)
    assert not (tmp_path / "p.plan").exists()


def test_stub_only_or_unsupported_tensorrt_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    with pytest.raises(EngineError, match="only type stubs"):
        nvtrt.import_tensorrt()
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt.reset("8.6.1"))
    with pytest.raises(EngineError, match=r"8\.6\.1 is not supported"):
        nvtrt.import_tensorrt()


def test_profile_validation() -> None:
    with pytest.raises(InputError, match="min <= opt <= max"):
        nvtrt.Profile((720, 1280), (64, 64), (1080, 1920))
    assert nvtrt.Profile.parse("1080x1920") == (1080, 1920)
    with pytest.raises(InputError, match="HEIGHTxWIDTH"):
        nvtrt.Profile.parse("big")


def test_auto_picks_tensorrt_only_with_a_matching_plan(
    trt: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nightvision import backends

    spec = get_spec("zero-dce++")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(nvtrt, "gpu_identity", H100)
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: object() if n == "tensorrt" else real_find_spec(n, *a)
    )
    assert backends.resolve_backend("auto", spec)[0] != "tensorrt"  # no plan yet
    plan = nvtrt.ensure_plan(ONNX, tmp_path / "engines", model="zero-dce++", gpu=H100)
    chosen, why = backends.resolve_backend("auto", spec)
    assert chosen == "tensorrt" and str(plan.name) in why
    monkeypatch.setattr(nvtrt, "gpu_identity", ORIN)  # the plan was built for another GPU
    assert backends.resolve_backend("auto", spec)[0] != "tensorrt"


@pytest.fixture
def pycuda(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    package = fake_pycuda.reset()
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", fake_pycuda)
    return package


def _inverting_kernel(in_dtype: type, out_dtype: type) -> None:
    """Make the fake plan compute ``1 - x`` in "device memory" (fake_pycuda's), in the plan's I/O types."""

    def kernel(addresses: dict[str, int], shape: tuple[int, ...]) -> bool:
        x = np.frombuffer(bytes(fake_pycuda.memory[addresses["image"]]), in_dtype).reshape(shape)
        fake_pycuda.memory[addresses["enhanced"]][:] = (1 - x.astype(np.float32)).astype(out_dtype).tobytes()
        return True

    fake_tensorrt.kernel = kernel


def test_pycuda_buffers_copy_run_and_release_in_the_primary_context(
    trt: types.ModuleType, pycuda: types.ModuleType, tmp_path: Path
) -> None:
    profile = nvtrt.Profile((32, 32), (256, 256), (512, 512))
    nvtrt.build_plan(ONNX, tmp_path / "p.plan", model="zero-dce++", profile=profile, gpu=ORIN)
    _inverting_kernel(np.float32, np.float32)
    backend = nvtrt.TensorRTBackend(tmp_path / "p.plan", buffers="pycuda", gpu=ORIN)
    assert backend.name == "tensorrt:fp16:pycuda"
    rng = np.random.default_rng(0)
    run = ["memcpy_htod_async", "memcpy_dtoh_async", "synchronize"]
    pinned = ["pagelocked_empty", "pagelocked_empty"]
    expected = [  # buffers are made on the first call, kept for the same shape, remade for a new one
        ((1, 3, 40, 60), [*pinned, *run]),
        ((1, 3, 40, 60), run),
        ((1, 3, 64, 32), ["free", "free", *pinned, *run]),
    ]
    for shape, calls in expected:
        x = rng.random(shape, dtype=np.float32)
        fake_pycuda.calls.clear()
        y = backend.run(x)
        assert y.dtype == np.float32 and y.shape == shape
        np.testing.assert_array_equal(y, 1 - x)
        assert fake_pycuda.calls == calls
        assert fake_pycuda.context_stack == []  # pushed for the call, popped after it
    assert len(fake_pycuda.memory) == 2
    fake_tensorrt.kernel = lambda addresses, shape: False  # a failed launch: an error, the context still popped
    with pytest.raises(EngineError, match="execution failed"):
        backend.run(np.zeros((1, 3, 64, 32), np.float32))
    assert fake_pycuda.context_stack == []
    backend.close()
    backend.close()
    assert fake_pycuda.memory == {} and fake_pycuda.calls[-1] == "detach"


def test_plan_io_types_fp16_and_unsupported(trt: types.ModuleType, pycuda: types.ModuleType, tmp_path: Path) -> None:
    nvtrt.build_plan(ONNX, tmp_path / "p.plan", model="zero-dce++", gpu=ORIN)
    fake_tensorrt.io_dtypes.update(image=trt.DataType.HALF, enhanced=trt.DataType.HALF)
    _inverting_kernel(np.float16, np.float16)
    backend = nvtrt.TensorRTBackend(tmp_path / "p.plan", buffers="pycuda", gpu=ORIN)
    x = np.random.default_rng(1).random((1, 3, 64, 64), dtype=np.float32)
    y = backend.run(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, 1 - x, atol=1e-3)  # through fp16 I/O
    assert sorted(len(m) for m in fake_pycuda.memory.values()) == [2 * x.size, 2 * x.size]  # 2 bytes a value
    backend.close()
    fake_tensorrt.io_dtypes["image"] = trt.DataType.INT8
    with pytest.raises(EngineError, match=r"tensor 'image' is DataType\.INT8; nightvision plans take and give fp32"):
        nvtrt.TensorRTBackend(tmp_path / "p.plan", buffers="pycuda", gpu=ORIN)


def test_buffers_fall_back_to_pycuda_when_torch_has_no_gpu(pycuda: types.ModuleType) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: torch buffers are the right choice here")
    assert runner._make_buffers(None, cuda_graph=False).kind == "pycuda"
    with pytest.raises(EngineError, match="buffers='torch' needs PyTorch with CUDA"):
        runner._make_buffers("torch", cuda_graph=False)
    with pytest.raises(InputError, match="'torch' or 'pycuda'"):
        runner._make_buffers("cupy", cuda_graph=False)
    assert nvtrt.gpu_identity() == ("Orin", "8.7")  # through pycuda when torch has no GPU


def test_build_fp16_records_its_source_and_auto_skips_plans_of_other_weights(
    trt: types.ModuleType, pycuda: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from nightvision import backends
    from nightvision.cli import main
    from nightvision.specs import sha256_of

    monkeypatch.chdir(tmp_path)  # the plan folder: tmp_path/engines, whether `build` defaults to ./engines or the cache
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: object() if n == "tensorrt" else real_find_spec(n, *a)
    )
    gpu = nvtrt.gpu_identity()  # the fake pycuda's, here (torch has no GPU on this machine)
    spec = get_spec("zero-dce++")
    assert main(["build", "zero-dce++", "--precision", "fp16", "--max", "720p"]) == 0
    (plan,) = (tmp_path / "engines").glob("zero-dce++-fp16-*.plan")
    header, _ = nvtrt.read_plan(plan)
    assert header.source_sha256 == sha256_of(ONNX) != header.onnx_sha256  # built from the fp16 copy of ONNX
    assert backends.resolve_backend("auto", spec) == ("tensorrt", f"TensorRT and a matching plan {plan}")
    plan.unlink()  # a plan of other (older) weights of the model, for this TensorRT and GPU: never picked
    nvtrt.build_plan(
        ONNX,
        tmp_path / "engines" / "zero-dce++-fp32-old.plan",
        model="zero-dce++",
        source_sha256="0" * 64,
        gpu=lambda: gpu,
    )
    assert backends.resolve_backend("auto", spec)[0] != "tensorrt"


# --- caches: the user cache folder, never the working directory


def test_cache_dir_follows_the_environment_and_is_created_on_demand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nightvision.cache import cache_dir, cache_root

    monkeypatch.setenv("NIGHTVISION_CACHE", str(tmp_path / "own"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir("engines", create=False) == tmp_path / "own" / "engines"
    assert not (tmp_path / "own").exists()  # a look-up creates nothing
    assert cache_dir("engines") == tmp_path / "own" / "engines" and (tmp_path / "own" / "engines").is_dir()
    monkeypatch.delenv("NIGHTVISION_CACHE")
    assert cache_root() == tmp_path / "xdg" / "nightvision"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # the XDG spec: a relative path is ignored
    assert cache_root() == tmp_path / "home" / ".cache" / "nightvision"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir("ort-tensorrt") == tmp_path / "home" / ".cache" / "nightvision" / "ort-tensorrt"
    for bad in ("", "..", "a/b"):
        with pytest.raises(InputError, match="plain folder name"):
            cache_dir(bad)
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("NIGHTVISION_CACHE", str(tmp_path / "file"))  # a file where the folder should be
    with pytest.raises(OutputError, match=r"cannot create the cache folder .*file/engines \(a parent is a file"):
        cache_dir("engines")  # ... "; set NIGHTVISION_CACHE to a writable folder"


def test_plans_and_timing_caches_go_to_the_user_cache_and_nothing_to_the_cwd(
    trt: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nightvision import backends
    from nightvision.backends.onnxruntime import choose_providers

    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("NIGHTVISION_CACHE", str(cache))
    assert backends.find_plan(get_spec("zero-dce++")) is None and not cache.exists()  # looking creates nothing

    plan = nvtrt.ensure_plan(ONNX, model="zero-dce++", gpu=H100)
    assert plan.parent == cache / "engines"
    h100 = cache / "tensorrt-timing" / "trt10.13.0.35-NVIDIA-H100-80GB-HBM3-sm9.0.cache"
    assert nvtrt.timing_cache_path("10.13.0.35", *H100()) == h100 and h100.read_bytes() == b"+"
    nvtrt.ensure_plan(ONNX, model="zero-dce++", gpu=ORIN)  # another GPU: its own timing cache, started empty
    assert fake_tensorrt.builds[-1]["cache_in"] == ""
    assert (cache / "tensorrt-timing" / "trt10.13.0.35-Orin-sm8.7.cache").read_bytes() == b"+"
    nvtrt.ensure_plan(ONNX, model="zero-dce++", profile=nvtrt.Profile(max=(720, 1280)), gpu=H100)
    assert fake_tensorrt.builds[-1]["cache_in"] == "+"  # the H100 timings were fed back
    assert len(list((cache / "engines").glob("*.plan"))) == 3

    (provider, options), _ = choose_providers(["TensorrtExecutionProvider", "CPUExecutionProvider"])
    assert provider == "TensorrtExecutionProvider"
    assert options["trt_engine_cache_path"] == options["trt_timing_cache_path"] == str(cache / "ort-tensorrt")
    assert (cache / "ort-tensorrt").is_dir()
    assert list(work.iterdir()) == []  # nothing in the working directory


def test_profile_messages_write_sizes_as_the_cli_takes_them(trt: types.ModuleType, tmp_path: Path) -> None:
    from nightvision.io.sizes import parse_size

    profile = nvtrt.Profile(parse_size("64x48"), parse_size("720p"), parse_size("1080p"))  # WIDTHxHEIGHT in
    assert profile.max == (1080, 1920) and profile.describe() == "64x48 / 1280x720 / 1920x1080"
    nvtrt.build_plan(ONNX, tmp_path / "p.plan", model="zero-dce++", profile=profile, gpu=H100)
    backend = nvtrt.TensorRTBackend(tmp_path / "p.plan", gpu=H100, device_buffers=HostBuffers())
    with pytest.raises(EngineError, match=r"input 2560x1440 is outside .*--max 2560x1440`"):
        backend.run(np.zeros((1, 3, 1440, 2560), np.float32))  # the hint is a valid `build --max`
    assert parse_size("2560x1440") == (1440, 2560)
