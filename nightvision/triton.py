"""A Triton Inference Server model repository for a nightvision model (``nightvision export --format triton``).

Layout written (Triton's own; https://docs.nvidia.com/deeplearning/triton-inference-server, "Model
Repository" and "Model Configuration")::

    OUT/
      zero-dce++/                 platform onnxruntime_onnx (CPU or GPU instances; TensorRT acceleration
        config.pbtxt              inside ONNX Runtime on a GPU, fp16 when asked)
        1/model.onnx
      zero-dce++-trt/             platform tensorrt_plan, only when a plan is given (``--plan``): a plan is
        config.pbtxt              tied to one GPU model and TensorRT version, so it is built on the serving
        1/model.plan              machine (``nightvision build``), never shipped

Both take ``image``: ``(N, 3, H, W)`` float32 RGB in ``[0, 1]`` and return ``enhanced`` of the same shape,
with ``H`` and ``W`` dynamic (-1). The graphs want ``H`` and ``W`` padded to the model's multiple
(:attr:`~nightvision.specs.ModelSpec.pad_multiple`); the client pads (reflect) and crops back, as
:func:`nightvision.preprocess.to_tensor` / :func:`~nightvision.preprocess.from_tensor` do.

Torch-free: the shipped ONNX graph is copied (or the one given with ``onnx``).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from nightvision.errors import InputError
from nightvision.io.atomic import atomic_path
from nightvision.specs import get_spec

__all__ = ["TritonRepository", "triton_config", "write_triton_repository"]

log = logging.getLogger(__name__)

_KINDS = {"gpu": "KIND_GPU", "cpu": "KIND_CPU"}


def triton_config(
    name: str,
    *,
    platform: str,
    max_batch_size: int = 4,
    instances: int = 1,
    kind: str = "gpu",
    tensorrt_accelerator: bool = False,
    fp16: bool = False,
) -> str:
    """The ``config.pbtxt`` text of one model (protobuf text format of Triton's ``ModelConfig``).

    Args:
        name: the model's folder name in the repository.
        platform: ``"onnxruntime_onnx"`` or ``"tensorrt_plan"``.
        max_batch_size: frames per batch Triton may form (0: no batching; the graph's batch dimension is
            then part of ``dims``).
        instances: model instances per device (``instance_group.count``).
        kind: ``"gpu"`` or ``"cpu"``.
        tensorrt_accelerator: ONNX Runtime only: run through its TensorRT execution provider (GPU).
        fp16: with ``tensorrt_accelerator``: let TensorRT use fp16.
    """
    if platform not in ("onnxruntime_onnx", "tensorrt_plan"):
        raise InputError(f"platform must be onnxruntime_onnx or tensorrt_plan, got {platform!r}")
    if kind not in _KINDS:
        raise InputError(f"instance kind must be gpu or cpu, got {kind!r}")
    if instances < 1:
        raise InputError(f"instances must be at least 1, got {instances}")
    if max_batch_size < 0:
        raise InputError(f"max_batch_size must be 0 or more, got {max_batch_size}")
    if platform == "tensorrt_plan" and kind == "cpu":
        raise InputError("a TensorRT plan runs on a GPU only; use --triton-kind gpu")
    dims = "[ 3, -1, -1 ]" if max_batch_size else "[ 1, 3, -1, -1 ]"
    lines = [
        f'name: "{name}"',
        f'platform: "{platform}"',
        f"max_batch_size: {max_batch_size}",
        f'input [ {{ name: "image" data_type: TYPE_FP32 dims: {dims} }} ]',
        f'output [ {{ name: "enhanced" data_type: TYPE_FP32 dims: {dims} }} ]',
        f"instance_group [ {{ count: {instances} kind: {_KINDS[kind]} }} ]",
    ]
    if max_batch_size:
        lines.append("dynamic_batching { max_queue_delay_microseconds: 2000 }")
    if platform == "tensorrt_plan":
        lines.append('default_model_filename: "model.plan"')
    if tensorrt_accelerator:
        if kind != "gpu":
            raise InputError("ONNX Runtime's TensorRT acceleration needs GPU instances")
        params = ' parameters { key: "precision_mode" value: "FP16" }' if fp16 else ""
        lines.append(
            "optimization { execution_accelerators { gpu_execution_accelerator : "
            f'[ {{ name : "tensorrt"{params} }} ] }} }}'
        )
    return "\n".join(lines) + "\n"


@dataclass
class TritonRepository:
    """What :func:`write_triton_repository` wrote."""

    root: Path
    models: list[Path]


def _check_graph(graph: Path, model: str) -> None:
    """Refuse a file that ONNX Runtime cannot load, or a graph that our export recorded as another model's."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    except Exception as err:  # a text file, a truncated graph, ...
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{graph} is not an ONNX graph ONNX Runtime can load: {first}") from None
    recorded = session.get_modelmeta().custom_metadata_map.get("nightvision.model")
    if recorded is not None and recorded != model:
        raise InputError(f"{graph} is a graph of {recorded}, not of {model}; serve it under its own name")


def write_triton_repository(
    model: str,
    out: str | Path,
    *,
    onnx: str | Path | None = None,
    plan: str | Path | None = None,
    kind: str = "gpu",
    instances: int = 1,
    max_batch_size: int = 4,
    tensorrt_accelerator: bool = False,
    fp16: bool = False,
    overwrite: bool = False,
) -> TritonRepository:
    """Write a Triton model repository for ``model`` under ``out`` (see the module docstring).

    Args:
        model: registered model name.
        out: the repository folder (created; other models already in it are kept).
        onnx: the graph to serve instead of the shipped one.
        plan: a TensorRT plan built on the serving machine, for a second, ``tensorrt_plan`` model.
        kind, instances, max_batch_size, tensorrt_accelerator, fp16: see :func:`triton_config`.
        overwrite: replace this model's folders when they exist (otherwise an error).
    """
    spec = get_spec(model)
    graph = Path(onnx) if onnx is not None else spec.onnx_path
    if graph is None or not graph.is_file():
        raise InputError(
            f"no ONNX graph for {model!r}"
            + (f" at {graph}" if graph is not None else "")
            + "; export one with `nightvision export` and pass it with --onnx"
        )
    if onnx is not None:
        _check_graph(graph, spec.name)
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise InputError(f"the Triton repository {root} is a file; choose a folder")
    jobs: list[tuple[str, str, Path, str]] = [(spec.name, "onnxruntime_onnx", graph, "model.onnx")]
    if plan is not None:
        if not Path(plan).is_file():
            raise InputError(f"no such TensorRT plan: {plan}")
        jobs.append((f"{spec.name}-trt", "tensorrt_plan", Path(plan), "model.plan"))
    for name, _, _, _ in jobs:
        if (root / name).exists() and not overwrite:
            raise InputError(f"{root / name} exists; pass --overwrite to replace it")
    written = []
    for name, platform, source, filename in jobs:
        folder = root / name
        if folder.exists():
            shutil.rmtree(folder)
        (folder / "1").mkdir(parents=True)
        with atomic_path(folder / "1" / filename) as tmp:
            shutil.copyfile(source, tmp)
        text = triton_config(
            name,
            platform=platform,
            max_batch_size=max_batch_size,
            instances=instances,
            kind=kind,
            tensorrt_accelerator=tensorrt_accelerator and platform == "onnxruntime_onnx",
            fp16=fp16,
        )
        with atomic_path(folder / "config.pbtxt") as tmp:
            tmp.write_text(text)
        log.info("wrote Triton model %s (%s)", folder, platform)
        written.append(folder)
    return TritonRepository(root, written)
