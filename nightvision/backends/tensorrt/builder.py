"""Build TensorRT plans from our ONNX graphs: strongly typed, one optimisation profile, a persisted timing cache.

Precision is decided in the ONNX graph (a strongly typed network), never by builder flags: export an fp16
graph for an fp16 plan. :func:`ensure_plan` keeps built plans in a folder (by default the user cache,
:func:`nightvision.cache.cache_dir`) keyed on everything that makes a plan valid, so a plan built for another
TensorRT or GPU is rebuilt (with a message), never loaded blindly. Timing caches live in the user cache, one
per TensorRT version and GPU (the tactic timings they hold are valid for that pair only).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

from nightvision.backends.tensorrt.plan import (
    PlanHeader,
    Profile,
    describe_plan,
    gpu_identity,
    import_tensorrt,
    read_plan,
    write_plan,
)
from nightvision.cache import ENGINES, TENSORRT_TIMING, cache_dir
from nightvision.errors import EngineError
from nightvision.io.atomic import atomic_path

__all__ = ["build_plan", "ensure_plan", "timing_cache_path"]

log = logging.getLogger(__name__)


def timing_cache_path(tensorrt_version: str, gpu_name: str, compute_capability: str) -> Path:
    """The user-cache file of the timing cache for this TensorRT version and GPU, e.g.
    ``~/.cache/nightvision/tensorrt-timing/trt10.13.0.35-NVIDIA-H100-80GB-HBM3-sm9.0.cache``."""
    gpu = re.sub(r"[^A-Za-z0-9.]+", "-", gpu_name).strip("-") or "gpu"
    return cache_dir(TENSORRT_TIMING) / f"trt{tensorrt_version}-{gpu}-sm{compute_capability}.cache"


def build_plan(
    onnx_path: str | Path,
    plan_path: str | Path,
    *,
    model: str,
    precision: str = "fp16",
    profile: Profile | None = None,
    workspace_gib: float = 2.0,
    version_compatible: bool = False,
    source_sha256: str | None = None,
    timing_cache: str | Path | None = None,
    gpu: Callable[[], tuple[str, str]] = gpu_identity,
) -> PlanHeader:
    """Build a plan from an ONNX graph: strongly typed, one optimisation profile, an optional timing cache.

    ``precision`` only labels the plan: in a strongly typed network the ONNX graph decides every tensor's type
    (export an fp16 graph for an fp16 plan). ``source_sha256``: the sha256 of the model's shipped graph when
    ``onnx_path`` was derived from it (an fp16 copy), so that ``--backend auto`` never runs a plan of older
    weights; default: the graph's own. ``timing_cache``: a file read before and written after the build
    (``None``: no timing cache). Parser errors are reported in full.
    """
    import_tensorrt()
    import tensorrt as trt

    header = describe_plan(
        onnx_path,
        model=model,
        precision=precision,
        profile=profile or Profile(),
        version_compatible=version_compatible,
        source_sha256=source_sha256,
        tensorrt_version=str(trt.__version__),
        gpu=gpu,
    )
    return _build(Path(onnx_path), Path(plan_path), header, workspace_gib=workspace_gib, timing_cache=timing_cache)


def ensure_plan(
    onnx_path: str | Path,
    engines_dir: str | Path | None = None,
    *,
    model: str,
    precision: str = "fp16",
    profile: Profile | None = None,
    version_compatible: bool = False,
    workspace_gib: float = 2.0,
    source_sha256: str | None = None,
    timing_cache: str | Path | None = None,
    gpu: Callable[[], tuple[str, str]] = gpu_identity,
) -> Path:
    """The cached plan for these settings on this TensorRT and GPU, building it when missing or stale.

    Args:
        onnx_path: the graph to build from.
        engines_dir: the folder of built plans; ``None``: ``cache_dir("engines")`` in the user cache.
        timing_cache: the timing-cache file; ``None``: :func:`timing_cache_path` for this TensorRT and GPU.
        model, precision, profile, version_compatible, workspace_gib, source_sha256, gpu: as in
            :func:`build_plan`.
    """
    import_tensorrt()
    import tensorrt as trt

    profile = profile or Profile()
    wanted = describe_plan(
        onnx_path,
        model=model,
        precision=precision,
        profile=profile,
        version_compatible=version_compatible,
        source_sha256=source_sha256,
        tensorrt_version=str(trt.__version__),
        gpu=gpu,
    )
    gpu_name, cc = wanted.gpu_name, wanted.compute_capability
    engines = Path(engines_dir) if engines_dir is not None else cache_dir(ENGINES)
    path = engines / f"{model}-{precision}-{wanted.key()}.plan"
    if path.is_file():
        header, _ = read_plan(path)
        if header == wanted:
            log.info("plan cache hit: %s", path)
            return path
    for old in sorted(engines.glob(f"{model}-{precision}-*.plan")):
        try:
            header, _ = read_plan(old)
        except EngineError:
            continue
        reason = header.mismatch(wanted.tensorrt_version, gpu_name, cc)
        if header.onnx_sha256 == wanted.onnx_sha256 and header.profile == profile and reason:
            log.warning("rebuilding %s: the cached plan %s was %s", model, old.name, reason)
    if timing_cache is None:
        timing_cache = timing_cache_path(wanted.tensorrt_version, gpu_name, cc)
    _build(Path(onnx_path), path, wanted, workspace_gib=workspace_gib, timing_cache=timing_cache)
    return path


def _build(
    onnx_path: Path, plan_path: Path, header: PlanHeader, *, workspace_gib: float, timing_cache: str | Path | None
) -> PlanHeader:
    """Build and write the plan ``header`` describes; returns the header with its creation time."""
    import tensorrt as trt

    profile = header.profile
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes(), str(onnx_path)):
        errors = "\n".join(f"  {parser.get_error(i)}" for i in range(parser.num_errors))
        raise EngineError(f"TensorRT cannot parse {onnx_path}:\n{errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if header.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    cache_path = Path(timing_cache) if timing_cache else None
    cache_bytes = cache_path.read_bytes() if cache_path is not None and cache_path.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, False)
    opt_profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    opt_profile.set_shape(
        name, trt.Dims([1, 3, *profile.min]), trt.Dims([1, 3, *profile.opt]), trt.Dims([1, 3, *profile.max])
    )
    config.add_optimization_profile(opt_profile)
    t0 = time.time()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"TensorRT failed to build a plan from {onnx_path} (see the messages above)")
    if cache_path is not None:
        with atomic_path(cache_path) as tmp:
            tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
    header = dataclasses.replace(header, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    write_plan(plan_path, header, bytes(serialized))
    log.info("built %s in %.0f s: %s", plan_path, time.time() - t0, header.key())
    return header
