"""``nightvision export --format triton``: a model repository whose configs Triton's own protobuf parses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from nightvision.errors import InputError
from nightvision.triton import triton_config, write_triton_repository

model_config_pb2 = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2", reason="needs tritonclient[grpc] (the dev extra) for Triton's protobuf"
)
text_format = pytest.importorskip("google.protobuf.text_format")


def _parse(path: Path):  # type: ignore[no-untyped-def]
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def test_repository_parses_with_tritons_model_config(tmp_path: Path) -> None:
    plan = tmp_path / "fake.plan"
    plan.write_bytes(b"not a real plan; only copied")
    repo = write_triton_repository("zero-dce++", tmp_path / "repo", plan=plan, instances=2, tensorrt_accelerator=True)
    assert [p.name for p in repo.models] == ["zero-dce++", "zero-dce++-trt"]

    onnx_cfg = _parse(tmp_path / "repo/zero-dce++/config.pbtxt")
    assert onnx_cfg.platform == "onnxruntime_onnx"
    assert onnx_cfg.max_batch_size == 4
    assert list(onnx_cfg.input[0].dims) == [3, -1, -1]
    assert onnx_cfg.input[0].name == "image" and onnx_cfg.output[0].name == "enhanced"
    assert onnx_cfg.instance_group[0].count == 2
    assert onnx_cfg.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert onnx_cfg.optimization.execution_accelerators.gpu_execution_accelerator[0].name == "tensorrt"

    trt_cfg = _parse(tmp_path / "repo/zero-dce++-trt/config.pbtxt")
    assert trt_cfg.platform == "tensorrt_plan" and trt_cfg.default_model_filename == "model.plan"
    assert (tmp_path / "repo/zero-dce++-trt/1/model.plan").read_bytes() == plan.read_bytes()


def test_the_config_names_and_shapes_match_the_graph(tmp_path: Path) -> None:
    """What the config promises (tensor names, dynamic H and W, a batch dimension) is what the graph does."""
    write_triton_repository("zero-dce++", tmp_path, kind="cpu", max_batch_size=2)
    cfg = _parse(tmp_path / "zero-dce++/config.pbtxt")
    session = ort.InferenceSession(str(tmp_path / "zero-dce++/1/model.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((2, 3, 40, 72), dtype=np.float32)
    (y,) = session.run([cfg.output[0].name], {cfg.input[0].name: x})
    assert y.shape == x.shape
    assert cfg.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU


def test_no_batching_puts_the_batch_in_dims() -> None:
    text = triton_config("m", platform="onnxruntime_onnx", max_batch_size=0)
    cfg = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert list(cfg.input[0].dims) == [1, 3, -1, -1]
    assert not cfg.HasField("dynamic_batching")


def test_bad_requests_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="GPU only"):
        triton_config("m", platform="tensorrt_plan", kind="cpu")
    with pytest.raises(InputError, match="no such TensorRT plan"):
        write_triton_repository("zero-dce++", tmp_path / "r", plan=tmp_path / "missing.plan")
    write_triton_repository("zero-dce++", tmp_path / "r")
    with pytest.raises(InputError, match="--overwrite"):
        write_triton_repository("zero-dce++", tmp_path / "r")
    write_triton_repository("zero-dce++", tmp_path / "r", overwrite=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        write_triton_repository("zero-dce++", tmp_path / "file")


def test_a_graph_given_with_onnx_is_checked_before_it_is_served(tmp_path: Path) -> None:
    """--onnx copied a text file in as model.onnx, and another model's graph under this model's name."""
    from nightvision.specs import get_spec

    text = tmp_path / "notes.onnx"
    text.write_text("not a graph")
    with pytest.raises(InputError, match="is not an ONNX graph ONNX Runtime can load"):
        write_triton_repository("zero-dce++", tmp_path / "repo", onnx=text)
    other = get_spec("zero-dce").onnx_path
    assert other is not None
    with pytest.raises(InputError, match="is a graph of zero-dce, not of zero-dce\\+\\+"):
        write_triton_repository("zero-dce++", tmp_path / "repo", onnx=other)
    assert not (tmp_path / "repo").exists()
    assert write_triton_repository("zero-dce", tmp_path / "repo", onnx=other).models
