"""Bounded memory for large frames: overlapping tiles, blended with raised-cosine ramps.

A network's working memory grows with the pixels it sees (NAFNet-S on ONNX Runtime: about 1.4 kB per pixel
in steady state, so a 12-megapixel photo needs 10 to 17 GB). :func:`plan_tiles` decides from a memory budget
whether a frame runs whole (video frames up to 720p for every shipped model: the default path, unchanged) or in
tiles, and how large the tiles are; :func:`run_tiled` runs them and writes the blended result straight into the
output frame, so that nothing of the frame's size is ever held in float.

Seams. Tiles overlap by the model's :attr:`TilingProfile.overlap` and are blended with raised-cosine ramps
normalised to sum to one (a partition of unity), so every output pixel is a smooth mix of tiles that each saw
it far from their own edges. Tile sizes and offsets are multiples of the model's padding multiple (and of its
internal downscale factor), so the network sees the same grid in a tile as in the whole frame; the frame is
padded as the whole-frame path pads it (reflect-101 to the multiple).

Global context. A convolution only sees its neighbourhood, but some layers see the whole input: a global
average pool (NAFNet's simplified channel attention, MIRNet-v2's selective kernel fusion) or a softmax-weighted
average over all pixels (MIRNet-v2's context blocks). Run per tile, each tile would get its own statistics and
its own colour (18 dB against the whole frame for NAFNet-S, measured). The engine (:func:`make_engine`) exposes
every such statistic: it can *inject* a given value instead of the tile's own, and it *reports* the tile's share
of the whole frame's (:class:`Pooled`: the layer's input weighted by the blend window, which sums to one over
the tiles). :func:`run_tiled` starts from the statistics of a copy of the whole frame shrunk to one tile's size
and repeats the tiled pass, each time with what the previous pass measured, until they move by less than
:data:`MEAN_TOLERANCE` (each pass makes at least one more statistic exact, as each depends only on the ones
before it; 2 to 4 passes in practice, then ≥ 50 dB against the whole frame). On ONNX Runtime the graph is
rewritten for this with the ``onnx`` package (installed with the ``train`` extra); without it such models are
tiled with per-tile statistics and a warning. On PyTorch, forward hooks do it.

Zero-DCE++ on the fast curve path needs none of this: its curve comes from a small copy of the whole frame and
only the lookup streams, in strips (:mod:`nightvision.curves`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from nightvision.backends.base import Backend
from nightvision.errors import EngineError, ShapeError
from nightvision.preprocess import check_float_range, to_tensor

__all__ = [
    "DEFAULT_MEMORY_BUDGET_MB",
    "PROFILES",
    "Pooled",
    "TileEngine",
    "TilePlan",
    "TilingProfile",
    "make_engine",
    "plan_tiles",
    "profile_of",
    "run_tiled",
]

log = logging.getLogger(__name__)

DEFAULT_MEMORY_BUDGET_MB = 1700
"""Default memory budget of one frame (its input and output, the network and the blending buffers), in MiB.
With the runtime itself (about 150 MB for ONNX Runtime) a process enhancing an image of any size stays under
2 GB (benchmarks/memory.py measures it), and 720p video frames of every shipped model still run whole."""

MAX_PASSES = 8
"""Tiled passes at most for models with global statistics (NAFNet-S settles in 2 to 4)."""

MEAN_TOLERANCE = 2e-2
"""The passes stop when no statistic moved by more than this (relative to the largest) since the pass before:
the output of that pass is then within about 50 dB PSNR of the whole frame's (measured on NAFNet-S)."""

_CONVERSION_BYTES = 40
"""Bytes per pixel of the conversions around a network run (blob in, float output, weighted copy)."""


@dataclass(frozen=True)
class TilingProfile:
    """What tiling needs to know about one model.

    Memory figures are the peak working memory of one network run per input pixel, in steady state (repeated
    runs of one size), input and output arrays included, measured by ``benchmarks/memory.py --calibrate``.

    Attributes:
        onnxruntime_bytes_per_pixel: a whole frame on the runtime's ONNX Runtime backend (CPU provider).
        tile_bytes_per_pixel: a tile on the session this module makes for tiles (:func:`make_engine`; no memory
            pattern planning, the global pools exposed).
        torch_bytes_per_pixel: the PyTorch backend on the CPU, whole frames and tiles alike.
        overlap: pixels shared by neighbouring tiles (about the network's receptive field: enough for
            ≥ 45 dB against the whole frame, tested).
        align: tile sizes and offsets are multiples of this as well as of the padding multiple (Zero-DCE++'s
            full graph estimates its curve on a 1/8 copy: tiles on the same 8-pixel grid see the same copy).
        global_pooling: the network averages over the whole input somewhere (used to warn when the engine
            cannot share the statistics between tiles; the graph itself is inspected when it can).
    """

    onnxruntime_bytes_per_pixel: float
    tile_bytes_per_pixel: float
    torch_bytes_per_pixel: float
    overlap: int
    align: int = 1
    global_pooling: bool = False

    def bytes_per_pixel(self, backend_name: str, *, tiles: bool = False) -> float:
        """Working memory per pixel on a backend named like ``"onnxruntime:CPUExecutionProvider"``, for whole
        frames or (``tiles``) for tiles."""
        if backend_name.startswith("torch"):
            return self.torch_bytes_per_pixel
        if tiles and backend_name.startswith("onnxruntime"):
            return self.tile_bytes_per_pixel
        return self.onnxruntime_bytes_per_pixel


PROFILES: dict[str, TilingProfile] = {
    # whole, tiles, torch. ONNX Runtime 1.32 without memory-pattern planning, measured 2026-11-30 (zero-dce,
    # nafnet-s, mirnet-v2, retinexnet; `benchmarks/memory.py --calibrate --backends onnxruntime,tiles`);
    # the rest and the PyTorch 2.13 CPU figures measured 2025-11 (zero-dce++'s and curve-denoise's full graphs
    # with the planning on: upper bounds)
    "zero-dce": TilingProfile(960, 960, 1500, overlap=32),
    "zero-dce++": TilingProfile(100, 60, 120, overlap=128, align=8),
    "curve-denoise": TilingProfile(110, 60, 250, overlap=128, align=8, global_pooling=True),
    "nafnet-s": TilingProfile(720, 700, 1000, overlap=96, global_pooling=True),
    "nafnet": TilingProfile(720, 700, 1000, overlap=96, global_pooling=True),
    "mirnet-v2": TilingProfile(6100, 6100, 3900, overlap=128, global_pooling=True),
    "retinexnet": TilingProfile(3400, 3400, 3100, overlap=128),
}
"""Per-model tiling profiles (``benchmarks/memory.py --calibrate`` measures them; models without a shipped
graph have only PyTorch figures, used for ONNX Runtime too)."""

_UNKNOWN = TilingProfile(4000, 4000, 4000, overlap=128, global_pooling=True)  # conservative


def profile_of(model: str) -> TilingProfile:
    """The tiling profile of a registered model (a conservative one for models not in :data:`PROFILES`)."""
    return PROFILES.get(model, _UNKNOWN)


@dataclass(frozen=True)
class Pooled:
    """One tile's share of one global statistic of the network (a pool's mean, a softmax-weighted context).

    ``num / den`` summed over the tiles (``+``) is the statistic of the whole frame. Both are scaled by
    ``exp(−offset)``: softmax weights keep their exponentials in range that way; plain means have offset 0.

    Attributes:
        num: ``(1, C, 1, 1)`` float64.
        den: the weight behind ``num``.
        offset: the log-scale of ``num`` and ``den``.
    """

    num: np.ndarray
    den: float
    offset: float = 0.0

    def __add__(self, other: Pooled) -> Pooled:
        top = max(self.offset, other.offset)
        a, b = math.exp(self.offset - top), math.exp(other.offset - top)
        return Pooled(self.num * a + other.num * b, self.den * a + other.den * b, top)

    @property
    def value(self) -> np.ndarray:
        """The statistic, ``(1, C, 1, 1)`` float64."""
        return self.num / max(self.den, 1e-300)


# --- planning -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of one frame go.

    Coordinates are those of the frame padded (reflect-101, as :func:`~nightvision.preprocess.to_tensor` pads
    a whole frame) to ``padded_height × padded_width``; the output is cropped back to ``height × width``.

    Attributes:
        height, width: the frame.
        padded_height, padded_width: the frame rounded up to the model's padding multiple.
        tile_height, tile_width: every tile's size (multiples of the padding multiple).
        ys, xs: the tiles' top rows and left columns, increasing.
    """

    height: int
    width: int
    padded_height: int
    padded_width: int
    tile_height: int
    tile_width: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]
    _wy: list[np.ndarray] = field(default_factory=list, repr=False, compare=False)
    _wx: list[np.ndarray] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._wy.extend(_axis_weights(self.ys, self.tile_height, self.padded_height))
        self._wx.extend(_axis_weights(self.xs, self.tile_width, self.padded_width))

    @property
    def count(self) -> int:
        """The number of tiles."""
        return len(self.ys) * len(self.xs)

    def weights(self, i: int, j: int) -> np.ndarray:
        """The blend window of tile ``(i, j)``: ``(tile_height, tile_width)`` float32; all windows sum to one."""
        return np.outer(self._wy[i], self._wx[j])


def _axis_starts(length: int, tile: int, overlap: int, align: int) -> tuple[int, ...]:
    """Starts of tiles of ``tile`` pixels covering ``[0, length)``, evenly spread, neighbours sharing at least
    ``overlap`` pixels; every start but the last (``length − tile``) a multiple of ``align``."""
    if length <= tile:
        return (0,)
    span = length - tile
    n = 1 + math.ceil(span / max(1, tile - overlap - align + 1))
    starts = [(i * span // (n - 1)) // align * align for i in range(n - 1)] + [span]
    return tuple(sorted(set(starts)))


def _axis_weights(starts: Sequence[int], tile: int, length: int) -> list[np.ndarray]:
    """Raised-cosine windows of the tiles along one axis, normalised so that they sum to one everywhere."""
    raw = []
    for i, s in enumerate(starts):
        w = np.ones(tile, np.float64)
        if i > 0:
            ov = min(starts[i - 1] + tile - s, tile)
            t = (np.arange(ov) + 0.5) / ov
            w[:ov] *= 0.5 - 0.5 * np.cos(np.pi * t)
        if i + 1 < len(starts):
            ov = min(s + tile - starts[i + 1], tile)
            t = (np.arange(ov) + 0.5) / ov
            w[tile - ov :] *= 0.5 + 0.5 * np.cos(np.pi * t)
        raw.append(w)
    total = np.zeros(max(length, starts[-1] + tile), np.float64)
    for s, w in zip(starts, raw, strict=True):
        total[s : s + tile] += w
    return [(w / total[s : s + tile]).astype(np.float32) for s, w in zip(starts, raw, strict=True)]


def min_tile(profile: TilingProfile, multiple: int) -> int:
    """The smallest tile side worth running: two overlaps, rounded up to the alignment."""
    step = math.lcm(multiple, profile.align)
    return -(-2 * profile.overlap // step) * step


def plan_tiles(
    height: int,
    width: int,
    *,
    profile: TilingProfile,
    bytes_per_pixel: float,
    tile_bytes_per_pixel: float | None = None,
    multiple: int = 1,
    budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
    frame_bytes: int = 0,
    max_tile: int | None = None,
) -> TilePlan | None:
    """Whether a frame fits the memory budget whole (``None``) or the tiles it is cut into.

    Tiles are as few as the budget allows, then as small as that number allows (a 1080p frame in four tiles is
    cut into 592 × 1008 tiles, not 1024 × 1024 ones that overlap by half).

    Args:
        height, width: the frame.
        profile: the model's :class:`TilingProfile`.
        bytes_per_pixel: the network's working memory per pixel for a whole frame on the backend in use.
        tile_bytes_per_pixel: the same for a tile (default: ``bytes_per_pixel``).
        multiple: the model's padding multiple (tile sides are multiples of it).
        budget_mb: memory for the frame's input and output, the network and the blending buffers, in MiB.
        frame_bytes: bytes of the input and output frames (they count against the budget).
        max_tile: the largest tile side allowed (``None``: from the budget alone). A frame whose padded sides
            are no larger runs whole if the budget allows.
    """
    if height < 1 or width < 1:
        raise ShapeError(f"expected a non-empty frame, got {height}x{width}")
    ph, pw = -(-height // multiple) * multiple, -(-width // multiple) * multiple
    budget = budget_mb * 2**20 - frame_bytes
    if ph * pw * (bytes_per_pixel + _CONVERSION_BYTES) <= budget and (max_tile is None or max(ph, pw) <= max_tile):
        return None
    step = math.lcm(multiple, profile.align)
    smallest = min_tile(profile, multiple)
    # tile² · per_pixel + (float accumulator of up to two tile rows across the frame) ≤ budget
    a, b = (tile_bytes_per_pixel or bytes_per_pixel) + _CONVERSION_BYTES, 2 * 12.0 * pw
    side = (-b + math.sqrt(b * b + 4 * a * max(budget, 0.0))) / (2 * a)
    if max_tile is not None:
        side = min(side, max_tile)
    largest = int(side) // step * step
    if largest < smallest:
        if max_tile is None or max_tile >= smallest:
            log.warning(
                "a memory budget of %.3g MB is too small for a %dx%d frame; using %d-pixel tiles anyway",
                budget_mb,
                width,
                height,
                smallest,
            )
        largest = smallest
    th, tw = (_balanced(length, largest, profile.overlap, step) for length in (ph, pw))
    return TilePlan(
        height=height,
        width=width,
        padded_height=ph,
        padded_width=pw,
        tile_height=th,
        tile_width=tw,
        ys=_axis_starts(ph, th, profile.overlap, step),
        xs=_axis_starts(pw, tw, profile.overlap, step),
    )


def _balanced(length: int, largest: int, overlap: int, step: int) -> int:
    """The smallest tile side (a multiple of ``step``, at most ``largest``) that covers ``length`` with as few
    tiles as ``largest`` would, neighbours overlapping by at least ``overlap``."""
    if length <= largest:
        return length
    n = 1 + math.ceil((length - largest) / max(1, largest - overlap - step + 1))
    side = -(-(length + (n - 1) * (overlap + step - 1)) // n)
    return min(largest, -(-side // step) * step)


# --- engines --------------------------------------------------------------------------------------------------


class TileEngine(Protocol):
    """Runs a model on one tile and exposes its global statistics (none for most models).

    ``run(x, weight, means)`` takes the tile as ``(1, 3, h, w)`` float32 RGB in ``[0, 1]``, its blend window
    ``(h, w)`` float32 (or ``None`` when the model has no pools) and one value per global statistic, in the
    order the network computes them (each ``(1, C, 1, 1)``; or ``None``: every statistic is taken over this
    input, as the plain model does). It returns the model's output ``(1, 3, h, w)`` and, per statistic, the
    tile's window-weighted share of it (:class:`Pooled`; their sum over all tiles is the whole frame's).
    ``pools`` is the number of layers that compute such statistics (0: a plain model).
    """

    pools: int

    def run(
        self, x: np.ndarray, weight: np.ndarray | None, means: Sequence[np.ndarray] | None
    ) -> tuple[np.ndarray, list[Pooled]]: ...

    def close(self) -> None: ...


class _PlainEngine:
    """A backend as it is: no pools exposed."""

    pools = 0

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def run(
        self, x: np.ndarray, weight: np.ndarray | None, means: Sequence[np.ndarray] | None
    ) -> tuple[np.ndarray, list[Pooled]]:
        return self.backend.run(x), []

    def close(self) -> None:
        """The backend belongs to the caller."""


class _OnnxTileEngine:
    """ONNX Runtime on the graph the backend runs, in a session of its own made for tiles: the memory-pattern
    planner is off (with ONNX Runtime's arena it keeps a second copy of every activation in steady state, twice
    the memory, at no measured gain in speed). With the ``onnx`` package, the graph's global statistics (average
    pools, softmax-weighted context averages) take injected values and report weighted sums (see the module
    docstring and :func:`_expose_statistics`)."""

    def __init__(self, session: Any, pools: int, input_name: str) -> None:
        self._session = session
        self.pools = pools
        self._input = input_name
        self._outputs = [o.name for o in session.get_outputs()]

    @classmethod
    def build(cls, path: Path, threads: int, *, share_pools: bool = True) -> _OnnxTileEngine:
        """The engine for the graph at ``path``; ``share_pools`` needs the ``onnx`` package."""
        import onnxruntime as ort

        from nightvision.backends.onnxruntime import choose_providers

        graph: str | bytes = str(path)
        pools = 0
        if share_pools:
            import onnx

            model = onnx.load(str(path))
            found = _find_statistics(model.graph)
            if found:
                _expose_statistics(model.graph, found)
                graph, pools = model.SerializeToString(), len(found)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.enable_mem_pattern = False
        # the TensorRT EP would build an engine per tile shape: CUDA or CPU only
        providers = [p for p in choose_providers(ort.get_available_providers()) if not isinstance(p, tuple)]
        try:
            session = ort.InferenceSession(graph, sess_options=options, providers=providers)
        except Exception as err:  # ORT raises its own exception types
            raise EngineError(f"ONNX Runtime cannot load {path} for tiling: {err}") from err
        log.debug("tiling %s on ONNX Runtime, %d global statistics shared between tiles", path, pools)
        return cls(session, pools, session.get_inputs()[0].name)

    def run(
        self, x: np.ndarray, weight: np.ndarray | None, means: Sequence[np.ndarray] | None
    ) -> tuple[np.ndarray, list[Pooled]]:
        if self._session is None:
            raise EngineError("this tile engine was closed")
        feeds: dict[str, np.ndarray] = {self._input: x}
        if self.pools:
            h, w = x.shape[2:]
            feeds["nv_weight"] = (np.ones((h, w), np.float32) if weight is None else weight)[None, None]
            feeds["nv_use_local"] = np.array(means is None)
            zero = np.zeros((1, 1, 1, 1), np.float32)
            for k in range(self.pools):
                feeds[f"nv_mean_{k}"] = zero if means is None else means[k].astype(np.float32)
        outs = dict(zip(self._outputs, self._session.run(None, feeds), strict=True))
        shares = [
            Pooled(
                np.asarray(outs[f"nv_sum_{k}"], np.float64),
                float(outs[f"nv_count_{k}"]),
                float(outs.get(f"nv_offset_{k}", 0.0)),
            )
            for k in range(self.pools)
        ]
        return outs[self._outputs[0]], shares

    def close(self) -> None:
        self._session = None


def _find_global_pools(graph: Any) -> list[Any]:
    """The nodes of ``graph`` that average a 4-D tensor over its height and width (``GlobalAveragePool``, or
    ``ReduceMean`` over axes 2 and 3 keeping dims, as PyTorch exports ``AdaptiveAvgPool2d(1)``)."""
    from onnx import numpy_helper

    initializers = {init.name: init for init in graph.initializer}
    constants = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}

    def constant(name: str) -> np.ndarray | None:
        if name in initializers:
            return numpy_helper.to_array(initializers[name])
        node = constants.get(name)
        if node is not None:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
        return None

    pools = []
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type == "GlobalAveragePool":
            pools.append(node)
        elif node.op_type == "ReduceMean":
            attrs = {a.name: a for a in node.attribute}
            if "keepdims" in attrs and attrs["keepdims"].i == 0:
                continue
            axes = list(attrs["axes"].ints) if "axes" in attrs else None
            if axes is None and len(node.input) > 1 and node.input[1]:
                value = constant(node.input[1])
                axes = None if value is None else [int(a) for a in value.ravel()]
            if axes is not None and sorted(a % 4 for a in axes) == [2, 3]:
                pools.append(node)
    return pools


@dataclass(frozen=True)
class _Context:
    """A softmax-weighted average over all pixels in an exported graph (MIRNet-v2's global context block):
    ``context = Reshape(MatMul(features (1, C, HW), Transpose(Softmax(logits (1, 1, HW)))))``.

    Attributes:
        node: the final ``Reshape``, whose output ``(1, C, 1, 1)`` is the context.
        logits: the softmax's input; ``features``: the MatMul's ``(1, C, HW)`` input; ``spatial``: the 4-D
            tensor the features were flattened from (for its height and width).
    """

    node: Any
    logits: str
    features: str
    spatial: str


def _find_contexts(graph: Any) -> list[_Context]:
    """The softmax-weighted averages over all pixels in ``graph`` (see :class:`_Context`); softmaxes over other
    axes (MIRNet-v2's selective kernel fusion weighs its streams) are not matched."""
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def only(name: str, op: str) -> Any | None:
        users = consumers.get(name, [])
        return users[0] if len(users) == 1 and users[0].op_type == op else None

    found = []
    for node in graph.node:
        if node.op_type != "Softmax" or node.domain not in ("", "ai.onnx"):
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
        transpose = only(node.output[0], "Transpose")
        if axis not in (-1, 2) or transpose is None:
            continue
        matmul = only(transpose.output[0], "MatMul")
        if matmul is None or matmul.input[1] != transpose.output[0]:
            continue
        perm = next((list(a.ints) for a in transpose.attribute if a.name == "perm"), [])
        reshape = only(matmul.output[0], "Reshape")
        flatten = producer.get(matmul.input[0])
        if perm != [0, 2, 1] or reshape is None or flatten is None or flatten.op_type != "Reshape":
            continue
        found.append(_Context(reshape, node.input[0], matmul.input[0], flatten.input[0]))
    return found


def _find_statistics(graph: Any) -> list[Any]:
    """Every global statistic of ``graph`` in the order the graph computes them: average-pool nodes
    (:func:`_find_global_pools`) and context averages (:class:`_Context`)."""
    found: list[Any] = [*_find_global_pools(graph), *_find_contexts(graph)]
    nodes = list(graph.node)  # (held: protobuf's wrappers of the nodes, and so their ids, live as long as this)
    position = {id(node): i for i, node in enumerate(nodes)}
    return sorted(found, key=lambda stat: position[id(stat.node if isinstance(stat, _Context) else stat)])


def _expose_statistics(graph: Any, stats: list[Any]) -> None:
    """Rewrite ``graph`` in place: inputs ``nv_weight`` (1, 1, h, w), ``nv_use_local`` (bool) and ``nv_mean_k``;
    outputs ``nv_sum_k``, ``nv_count_k`` and, for context averages, ``nv_offset_k`` (see :class:`Pooled`) after
    the original output (see :class:`TileEngine`).

    Statistic ``k`` is replaced by ``nv_mean_k``, or with ``nv_use_local`` by the ratio of the tile's own sums
    (the layer's own value when the window is all ones, as a local run gives it). A pool reports ``Σ y·w`` and ``Σ w``
    (``w``: the blend window resized to the pooled tensor); a context average reports ``Σ y·e·w`` and ``Σ e·w``
    with ``e = exp(logits − max)`` and offset ``max``, so that tiles' shares add up to the whole frame's softmax.
    """
    from onnx import TensorProto, helper, numpy_helper

    index = {id(stat.node if isinstance(stat, _Context) else stat): k for k, stat in enumerate(stats)}
    contexts = {id(stat.node): stat for stat in stats if isinstance(stat, _Context)}
    nodes = []
    for node in graph.node:
        k = index.get(id(node))
        nodes.append(node)
        if k is None:
            continue
        value = node.output[0]
        node.output[0] = f"nv_own_mean_{k}"
        context = contexts.get(id(node))
        spatial = node.input[0] if context is None else context.spatial
        # the window at the statistic's resolution
        nodes += [
            helper.make_node("Shape", [spatial], [f"nv_hw_{k}"], start=2, end=4),
            helper.make_node("Concat", ["nv_ones", f"nv_hw_{k}"], [f"nv_size_{k}"], axis=0),
            helper.make_node("Resize", ["nv_weight", "", "", f"nv_size_{k}"], [f"nv_w_{k}"], mode="linear"),
        ]
        if context is None:
            # Σ y·w as a product (1, C, hw) @ (1, hw, 1): no temporary of y's size
            nodes += [
                helper.make_node("Reshape", [spatial, "nv_flat_y"], [f"nv_fy_{k}"]),
                helper.make_node("Reshape", [f"nv_w_{k}", "nv_flat_w"], [f"nv_fw_{k}"]),
                helper.make_node("MatMul", [f"nv_fy_{k}", f"nv_fw_{k}"], [f"nv_yw_{k}"]),
                helper.make_node("Unsqueeze", [f"nv_yw_{k}", "nv_last_axis"], [f"nv_sum_{k}"]),
                helper.make_node("ReduceSum", [f"nv_w_{k}"], [f"nv_count_{k}"], keepdims=0),
            ]
        else:
            nodes += [
                helper.make_node("ReduceMax", [context.logits], [f"nv_offset_{k}"], keepdims=0),
                helper.make_node("Sub", [context.logits, f"nv_offset_{k}"], [f"nv_shifted_{k}"]),
                helper.make_node("Exp", [f"nv_shifted_{k}"], [f"nv_e_{k}"]),
                helper.make_node("Reshape", [f"nv_w_{k}", "nv_row_w"], [f"nv_rw_{k}"]),
                helper.make_node("Mul", [f"nv_e_{k}", f"nv_rw_{k}"], [f"nv_ew_{k}"]),
                helper.make_node("Transpose", [f"nv_ew_{k}"], [f"nv_column_{k}"], perm=[0, 2, 1]),
                helper.make_node("MatMul", [context.features, f"nv_column_{k}"], [f"nv_yw_{k}"]),
                helper.make_node("Unsqueeze", [f"nv_yw_{k}", "nv_last_axis"], [f"nv_sum_{k}"]),
                helper.make_node("ReduceSum", [f"nv_ew_{k}"], [f"nv_count_{k}"], keepdims=0),
            ]
        # The network goes on with the injected value, or its own: the weighted sums' ratio, which with the window
        # of ones that a local run is given equals the layer's own output. (Not the original node's output: then
        # nothing downstream would need the sums, ONNX Runtime would compute them last and keep every pooled
        # tensor alive until the end, 3.5x the memory of a plain run measured on MIRNet-v2.)
        nodes += [
            helper.make_node("Div", [f"nv_sum_{k}", f"nv_count_{k}"], [f"nv_ratio_{k}"]),
            helper.make_node("Where", ["nv_use_local", f"nv_ratio_{k}", f"nv_mean_{k}"], [value]),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([1, 1], np.int64), "nv_ones"),
            numpy_helper.from_array(np.array([0, 0, -1], np.int64), "nv_flat_y"),
            numpy_helper.from_array(np.array([0, -1, 1], np.int64), "nv_flat_w"),
            numpy_helper.from_array(np.array([0, 1, -1], np.int64), "nv_row_w"),
            numpy_helper.from_array(np.array([3], np.int64), "nv_last_axis"),
        ]
    )
    n = len(stats)
    graph.input.extend(
        [
            helper.make_tensor_value_info("nv_weight", TensorProto.FLOAT, [1, 1, "tile_h", "tile_w"]),
            helper.make_tensor_value_info("nv_use_local", TensorProto.BOOL, []),
        ]
        + [helper.make_tensor_value_info(f"nv_mean_{k}", TensorProto.FLOAT, [1, None, 1, 1]) for k in range(n)]
    )
    graph.output.extend(
        [helper.make_tensor_value_info(f"nv_sum_{k}", TensorProto.FLOAT, [1, None, 1, 1]) for k in range(n)]
        + [helper.make_tensor_value_info(f"nv_count_{k}", TensorProto.FLOAT, []) for k in range(n)]
        + [
            helper.make_tensor_value_info(f"nv_offset_{k}", TensorProto.FLOAT, [])
            for k, stat in enumerate(stats)
            if isinstance(stat, _Context)
        ]
    )
    live = _live(list(graph.node), {out.name for out in graph.output})
    del graph.node[:]
    graph.node.extend(live)


def _live(nodes: list[Any], outputs: set[str]) -> list[Any]:
    """``nodes`` without those whose results nothing uses (the statistics' original computations, replaced by
    the weighted ones): ONNX Runtime would run such a node late and keep its large input alive until then."""
    keep = list(nodes)
    while True:
        used = outputs | {name for node in keep for name in node.input}
        live = [node for node in keep if any(out in used for out in node.output)]
        if len(live) == len(keep):
            return live
        keep = live


class _TorchPoolEngine:
    """The PyTorch backend's module with hooks on its global statistics: every ``AdaptiveAvgPool2d(1)``
    (NAFNet, MIRNet-v2's selective kernel fusion) and MIRNet-v2's global context block (a softmax-weighted
    average over all pixels). A layer that runs several times per forward (MIRNet-v2 reuses its blocks) has
    one statistic per call; statistics are numbered in the order they are computed."""

    def __init__(self, backend: Any, layers: list[Any]) -> None:
        self.backend = backend
        self._layers = layers
        self.pools = len(layers)

    @classmethod
    def build(cls, backend: Any) -> _TorchPoolEngine | None:
        from torch import nn

        from nightvision.models.mirnet_v2 import _ContextBlock

        layers = [
            m
            for m in backend.model.modules()
            if (isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1))) or isinstance(m, _ContextBlock)
        ]
        return cls(backend, layers) if layers else None

    def run(
        self, x: np.ndarray, weight: np.ndarray | None, means: Sequence[np.ndarray] | None
    ) -> tuple[np.ndarray, list[Pooled]]:
        import torch
        import torch.nn.functional as F
        from torch import nn

        device = self.backend.device
        w = torch.from_numpy(np.ones(x.shape[2:], np.float32) if weight is None else weight)[None, None].to(device)
        stats: list[Pooled] = []
        calls: list[int] = []  # a stack: the statistic of the call in progress, for the forward hook

        def record(module: Any, args: tuple[Any, ...]) -> None:
            y = args[0].float()
            wk = F.interpolate(w, size=y.shape[-2:], mode="bilinear", align_corners=False)
            if isinstance(module, nn.AdaptiveAvgPool2d):
                share = Pooled(_numpy((y * wk).sum((2, 3), keepdim=True)), float(wk.sum()))
            else:  # softmax over all pixels of a 1x1 conv of y: a weighted average with weights exp(mask)
                logits = module.mask(args[0]).float()
                top = float(logits.max())
                e = torch.exp(logits - top) * wk
                share = Pooled(_numpy((y * e).sum((2, 3), keepdim=True)), float(e.sum()), top)
            calls.append(len(stats))
            stats.append(share)

        def inject(module: Any, args: tuple[Any, ...], out: Any) -> Any:
            k = calls.pop()
            if means is None:
                return None
            value = torch.as_tensor(means[k], dtype=out.dtype, device=out.device)
            if isinstance(module, nn.AdaptiveAvgPool2d):
                return value.expand_as(out)
            return args[0] + module.transform(value)

        handles = []
        for layer in self._layers:
            handles += [layer.register_forward_pre_hook(record), layer.register_forward_hook(inject)]
        try:
            y = self.backend.run(x)
        finally:
            for handle in handles:
                handle.remove()
        return y, stats

    def close(self) -> None:
        """The backend belongs to the caller."""


def _numpy(t: Any) -> np.ndarray:
    out: np.ndarray = t.double().cpu().numpy()
    return out


def make_engine(backend: Backend, model: str, *, onnx_path: str | Path | None = None, threads: int = 0) -> TileEngine:
    """The tile engine for ``backend``: its PyTorch module with hooks on the global statistics, or for ONNX
    Runtime (given the path of the graph it runs) a session of its own with the pools exposed when the ``onnx``
    package is installed; any other backend as it is.
    """
    name = getattr(backend, "name", "")
    if name.startswith("torch") and hasattr(backend, "model"):
        engine: TileEngine | None = _TorchPoolEngine.build(backend)
        return engine if engine is not None else _PlainEngine(backend)
    shares = False
    if name.startswith("onnxruntime") and onnx_path is not None:
        try:
            import onnx  # noqa: F401
        except ImportError:
            shares = False
        else:
            shares = True
        engine = _OnnxTileEngine.build(Path(onnx_path), threads, share_pools=shares)
    else:
        engine = _PlainEngine(backend)
    if profile_of(model).global_pooling and not shares:
        why = "install the onnx package (pip install onnx)" if name.startswith("onnxruntime") else "use onnxruntime"
        log.warning(
            "%s averages over the whole image, and %s cannot share that between tiles: tiles of large images may "
            "differ in colour; %s or raise the memory budget",
            model,
            name or "this backend",
            why,
        )
    return engine


# --- running --------------------------------------------------------------------------------------------------


def _reflect(index: np.ndarray, length: int) -> np.ndarray:
    """Reflect-101 indices into ``[0, length)`` (as ``cv2.BORDER_REFLECT_101``; replicate for length 1)."""
    if length == 1:
        return np.zeros_like(index)
    period = 2 * (length - 1)
    index = np.abs(index) % period
    return np.where(index >= length, period - index, index)


def _tile(frame: np.ndarray, y0: int, x0: int, th: int, tw: int) -> np.ndarray:
    """The ``th × tw`` tile at ``(y0, x0)`` of the reflect-padded frame."""
    h, w = frame.shape[:2]
    if y0 + th <= h and x0 + tw <= w:
        return frame[y0 : y0 + th, x0 : x0 + tw]
    rows = _reflect(np.arange(y0, y0 + th), h)
    cols = _reflect(np.arange(x0, x0 + tw), w)
    return frame[np.ix_(rows, cols)]


def _store(acc: np.ndarray, out: np.ndarray) -> None:
    """Write float BGR in ``[0, 1]`` (clobbered) to ``out`` of its dtype (rounded, saturated)."""
    np.clip(acc, 0.0, 1.0, out=acc)
    if out.dtype == np.uint8:
        out[...] = cv2.convertScaleAbs(acc, alpha=255.0)
    elif out.dtype == np.uint16:
        acc *= np.float32(65535.0)
        acc += np.float32(0.5)
        out[...] = acc.astype(np.uint16)
    else:
        out[...] = acc


def _tiled_pass(
    frame: np.ndarray,
    plan: TilePlan,
    engine: TileEngine,
    means: Sequence[np.ndarray] | None,
    out: np.ndarray,
) -> list[Pooled]:
    """One pass over every tile: blend the outputs into ``out`` row of tiles by row of tiles, keeping in float
    only the rows that a later row of tiles still adds to; return the whole frame's global statistics."""
    th, tw, pw = plan.tile_height, plan.tile_width, plan.padded_width
    total: list[Pooled] = []
    # two float buffers of one row of tiles, in turn: rows [y0, y0 + th) of the padded frame; the rows that the
    # next row of tiles overlaps are carried over to the other buffer
    buffers = [np.zeros((th, pw, 3), np.float32), np.empty((th, pw, 3), np.float32)]
    acc = buffers[0]
    for i, y0 in enumerate(plan.ys):
        for j, x0 in enumerate(plan.xs):
            window = plan.weights(i, j)
            x = to_tensor(_tile(frame, y0, x0, th, tw), check=False)
            y, shares = engine.run(x, window if engine.pools else None, means)
            if y.shape != x.shape:
                raise EngineError(f"the model returned {y.shape} for a {x.shape} tile; tiling needs the same shape")
            bgr = y[0, ::-1].transpose(1, 2, 0)
            acc[:, x0 : x0 + tw] += bgr * window[:, :, None]
            total = shares if not total else [a + b for a, b in zip(total, shares, strict=True)]
        final = (plan.ys[i + 1] if i + 1 < len(plan.ys) else plan.padded_height) - y0  # rows no later tile touches
        stop = min(y0 + final, plan.height)
        if stop > y0:
            _store(acc[: stop - y0, : plan.width], out[y0:stop])
        if i + 1 < len(plan.ys):
            following = buffers[(i + 1) % 2]
            following[: th - final] = acc[final:]
            following[th - final :] = 0.0
            acc = following
    return total


def _initial_means(frame: np.ndarray, plan: TilePlan, engine: TileEngine, multiple: int) -> list[np.ndarray]:
    """The pools' means on a copy of the whole frame shrunk to the size of one tile (a first guess)."""
    scale = min(1.0, math.sqrt(plan.tile_height * plan.tile_width / (plan.padded_height * plan.padded_width)))
    hs = max(multiple, int(plan.padded_height * scale) // multiple * multiple)
    ws = max(multiple, int(plan.padded_width * scale) // multiple * multiple)
    small = cv2.resize(frame, (ws, hs), interpolation=cv2.INTER_AREA)
    return [share.value for share in engine.run(to_tensor(small, check=False), None, None)[1]]


def run_tiled(
    frame: np.ndarray,
    plan: TilePlan,
    engine: TileEngine,
    *,
    out_dtype: np.dtype | type = np.uint8,
    multiple: int = 1,
    checked: bool = False,
) -> np.ndarray:
    """Enhance ``frame`` tile by tile (see the module docstring).

    Args:
        frame: ``(H, W, 3)`` BGR, uint8, uint16 or float in ``[0, 1]``.
        plan: from :func:`plan_tiles` for this frame's size.
        engine: from :func:`make_engine`.
        out_dtype: dtype of the result (uint8, uint16 or float32).
        multiple: the model's padding multiple (for the downscaled copy of models with global pools).
        checked: the caller has checked a float frame's range (:func:`~nightvision.preprocess.
            check_float_range`); else it is checked here, once (not for every tile of every pass).

    Returns:
        ``(H, W, 3)`` BGR of ``out_dtype``.
    """
    if frame.shape[:2] != (plan.height, plan.width):
        raise ShapeError(f"the plan is for {plan.height}x{plan.width} frames, got {frame.shape}")
    if not checked and frame.dtype.kind == "f":
        check_float_range(frame)
    out = np.empty((plan.height, plan.width, 3), out_dtype)
    if engine.pools == 0:
        _tiled_pass(frame, plan, engine, None, out)
        return out
    means = _initial_means(frame, plan, engine, multiple)
    for n in range(1, MAX_PASSES + 1):
        measured = [share.value for share in _tiled_pass(frame, plan, engine, means, out)]
        top = max(float(np.abs(m).max()) for m in measured)
        change = max(float(np.abs(a - b).max()) for a, b in zip(measured, means, strict=True)) / max(top, 1e-6)
        means = measured
        log.debug("tiled pass %d of %d tiles: pooled means moved by %.2e", n, plan.count, change)
        if change <= MEAN_TOLERANCE:
            break
    else:
        log.warning("tiling: the pooled statistics had not settled after %d passes (last change %.1e)", n, change)
    return out
