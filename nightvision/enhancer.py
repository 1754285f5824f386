"""The frame-level API: ``Enhancer(model).enhance(frame)`` takes and returns what OpenCV gives.

>>> from nightvision import Enhancer
>>> enhancer = Enhancer("zero-dce++")            # shipped weights on ONNX Runtime, CPU
>>> bright = enhancer.enhance(cv2.imread("dark.jpg"))

Frames are ``(H, W, 3)`` BGR, uint8 (OpenCV's default) or uint16; grey ``(H, W)`` / ``(H, W, 1)`` and
BGRA ``(H, W, 4)`` frames are accepted too: grey comes back grey, alpha is kept untouched.

Memory is bounded at any image size: a frame that would need more than ``memory_budget_mb`` to run whole is
cut into overlapping tiles, blended without visible seams (:mod:`nightvision.tiling`); video frames run whole.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from nightvision.backends import Backend, create_backend, resolve_backend
from nightvision.curve_denoise_fast import DenoiseFeatures, FastCurveDenoise
from nightvision.curves import FastCurvePath
from nightvision.errors import EngineError, InputError, SetupError, ShapeError
from nightvision.preprocess import check_float_range, from_tensor, to_tensor
from nightvision.specs import DEFAULT_MODEL, ModelSpec, get_spec, sha256_of
from nightvision.tiling import (
    DEFAULT_MEMORY_BUDGET_MB,
    TileEngine,
    TilePlan,
    make_engine,
    min_tile,
    plan_tiles,
    profile_of,
    run_tiled,
)

__all__ = ["DEFAULT_MODEL", "Enhancer", "FrameJob", "check_checkpoint"]

log = logging.getLogger(__name__)
_NO_INPUT = np.zeros((1, 3, 0, 0), np.float32)
_LAYOUTS = "(H, W), (H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA"
_DTYPES = frozenset(np.dtype(t) for t in (np.uint8, np.uint16, np.float32, np.float64))


@dataclass
class FrameJob:
    """One BGR frame on its way through :meth:`Enhancer.preprocess` → ``infer`` → ``postprocess``.

    Attributes:
        frame: the input, ``(H, W, 3)`` BGR, uint8 or uint16.
        net_input: what the backend runs on (``(1, 3, h, w)`` float32 RGB in ``[0, 1]``); empty
            (``(1, 3, 0, 0)``) for a frame processed in tiles, which ``infer`` cuts from ``frame`` itself.
        net_output: the backend's result, set by ``infer`` (``None`` for a tiled frame).
        curve: for shared-curve models on the fast path, the low-resolution curve map (table rows,
            ``(h, w, 3)`` float32 BGR), set by ``infer``; temporal smoothing acts on it before ``postprocess``.
        tiles: the tiles of a frame too large to run whole within the memory budget, else ``None``.
        output: the finished ``(H, W, 3)`` uint8 frame of a tiled job, set by ``infer``.
        features: for CurveDenoise on its fast path, what ``preprocess`` computed at full resolution for
            ``postprocess``; ``net_input`` is then the coefficients graph's input and ``net_output`` its maps.
    """

    frame: np.ndarray
    net_input: np.ndarray
    net_output: np.ndarray | None = None
    curve: np.ndarray | None = None
    tiles: TilePlan | None = None
    output: np.ndarray | None = None
    features: DenoiseFeatures | None = None
    made_by: int = 0  # id() of the Enhancer whose preprocess() made it (infer and postprocess check it)


class Enhancer:
    """A loaded model, ready to enhance frames.

    Args:
        model: registered model name (``nightvision models`` lists them).
        backend: ``"auto"`` (default: TensorRT when it is installed and ``nightvision build`` made a plan for
            this model and GPU, else PyTorch on a CUDA GPU, else ONNX Runtime; the log says which and why),
            ``"onnxruntime"``, ``"tensorrt"`` or ``"torch"``.
        onnx_path: run this ONNX file instead of the shipped one (onnxruntime backend).
        weights: run this checkpoint instead of the shipped weights. On the torch backend it is loaded; on
            ONNX Runtime it is exported to ONNX once (needs torch) and the graph cached in the user cache
            folder (``~/.cache/nightvision/onnx``), keyed by the checkpoint's sha256. A missing, unreadable or
            mismatching checkpoint is an :class:`~nightvision.errors.InputError` naming it.
        device: torch device for the torch backend.
        threads: CPU threads for ONNX Runtime (0 = its default).
        downscale: curve models that estimate their curve on a downscaled copy (Zero-DCE++): the factor.
            Default: chosen per frame so the copy's shorter side is about ``spec.curve_side`` pixels
            (constant cost at any resolution). Larger is faster and smoother.
        exact: on ONNX Runtime, run the single full graph instead of the fast path: for Zero-DCE++ the
            estimator graph plus a table lookup, for CurveDenoise its coefficients graph between two OpenCV
            passes (:mod:`nightvision.curve_denoise_fast`); each within one grey level of the full graph and
            several times faster on a CPU. 16-bit and float frames, and frames run in tiles, always take the
            full graph.
        memory_budget_mb: memory that enhancing one frame may take (its input and output, the network's
            working memory and the blending buffers), in MiB; a frame that would need more runs in overlapping
            tiles sized to fit. The default (1700) keeps a whole process under 2 GB for images of any size
            (measured up to 64 megapixels) while 720p video frames of every shipped model run whole.
        max_tile: the largest tile side in pixels (default: from the budget alone); frames with a larger
            (padded) side run in tiles even when the budget would allow them whole.

    :meth:`close` (or the end of a ``with`` block) is final: every later call raises
    :class:`~nightvision.errors.EngineError`.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        backend: str = "auto",
        *,
        onnx_path: str | None = None,
        weights: str | None = None,
        device: str | None = None,
        threads: int = 0,
        downscale: int | None = None,
        exact: bool = False,
        memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
        max_tile: int | None = None,
    ) -> None:
        self.spec: ModelSpec = get_spec(model)
        _check_number(threads, "threads", integer=True)
        if not 0 <= threads <= 1024:
            raise InputError(f"threads must be 0 (one per core) to 1024, got {threads}")
        _check_number(memory_budget_mb, "memory_budget_mb")
        if downscale is not None:
            _check_number(downscale, "downscale", integer=True)
        if max_tile is not None:
            _check_number(max_tile, "max_tile", integer=True)
        backend, why = resolve_backend(backend, self.spec)
        if why != "asked for":
            log.info("backend auto → %s (%s)", backend, why)
        if device is not None and backend != "torch":  # it would be ignored without a word
            raise EngineError(
                f"device {device!r} is for the torch backend, and this runs on {backend} ({why}); "
                "pass backend='torch' (--backend torch), or leave device unset (drop --device)"
            )
        if downscale is not None and downscale < 1:
            raise InputError(f"downscale must be a positive integer, got {downscale}")
        if not memory_budget_mb > 0:
            raise InputError(f"the memory budget must be a positive number of MB, got {memory_budget_mb}")
        self._profile = profile_of(self.spec.name)
        smallest = min_tile(self._profile, self.spec.pad_multiple)
        if max_tile is not None and max_tile < smallest:
            raise InputError(f"max_tile must be at least {smallest} pixels for {self.spec.name}, got {max_tile}")
        self.memory_budget_mb = memory_budget_mb
        self.max_tile = max_tile
        self._threads = threads
        self._closed = False
        self._engine: TileEngine | None = None
        self._fast: FastCurvePath | None = None
        self._denoise: FastCurveDenoise | None = None
        fast = backend == "onnxruntime" and not exact and onnx_path is None and bool(self.spec.estimator_onnx)
        checkpoint = None
        if weights is not None:
            checkpoint = _Checkpoint.open(weights, self.spec, backend, onnx_path, estimator=fast)
        if downscale is not None and downscale != self.spec.downscale and not fast:
            raise InputError(
                "downscale (--downscale) needs the fast curve path: the onnxruntime backend, a shared-curve model "
                "and exact=False (no --exact)"
            )
        if fast:
            est = str(self.spec.estimator_path) if checkpoint is None else str(checkpoint.onnx(estimator=True))
            estimator = create_backend(self.spec, backend, onnx_path=est, threads=threads)
            self._fast = FastCurvePath(
                estimator,
                downscale=downscale or (None if self.spec.curve_side else self.spec.downscale),
                curve_side=self.spec.curve_side,
                iterations=checkpoint.iterations if checkpoint is not None else self.spec.curve_iterations,
            )
            self.backend: Backend = estimator
            self._graph: Path | None = Path(est)
            how = f"1/{self._fast.downscale}" if self._fast.downscale else f"a ~{self.spec.curve_side}-px copy"
            log.info("model %s on %s (curve estimated on %s, table lookup)", model, estimator.name, how)
        else:
            if checkpoint is not None and backend == "onnxruntime":
                onnx_path = str(checkpoint.onnx(estimator=False))
            self.backend = create_backend(
                self.spec,
                backend,
                onnx_path=onnx_path,
                weights=weights if backend == "torch" else None,
                device=device,
                threads=threads,
            )
            self._graph = Path(onnx_path) if onnx_path else self.spec.onnx_path
            log.info("model %s on %s", self.spec.name, self.backend.name)
            if backend == "onnxruntime" and not exact and onnx_path is None and checkpoint is None:
                self._denoise = self._fast_denoise()

    def _fast_denoise(self) -> FastCurveDenoise | None:
        """CurveDenoise's fast path when the model has a shipped coefficients graph, else ``None``."""
        path = self.spec.coefficients_path
        if path is None or not path.is_file():
            return None
        log.info("model %s: uint8 frames on the coefficients graph and OpenCV", self.spec.name)
        # one thread: the graph is small, and a pool's threads spin after each run, slowing the OpenCV passes
        graph = create_backend(self.spec, "onnxruntime", onnx_path=str(path), threads=1)
        args = json.loads(getattr(graph, "metadata", {}).get("nightvision.model_args", "{}"))
        return FastCurveDenoise(
            graph,
            downscale=int(args.get("downscale", 8)),  # the model's, recorded by export_curve_coefficients
            pad_multiple=self.spec.pad_multiple,
            min_side=self.spec.min_side,
        )

    def enhance(self, frame: np.ndarray) -> np.ndarray:
        """Enhance one frame; the result has the shape and dtype of ``frame``.

        Args:
            frame: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` BGR or ``(H, W, 4)`` BGRA; uint8, uint16, or
                float in ``[0, 1]``.
        """
        _check_frame(frame)
        self._check_open()
        if frame.ndim == 3 and frame.shape[2] == 3:
            return self._enhance_bgr(frame)
        if frame.ndim == 2 or frame.shape[2] == 1:
            out = self._enhance_bgr(_grey_to_bgr(frame.reshape(frame.shape[:2])))
            return _bgr_to_grey(out).reshape(frame.shape)
        out = self._enhance_bgr(np.ascontiguousarray(frame[:, :, :3]))
        return np.dstack([out, frame[:, :, 3]])

    @property
    def hand_off_dtype(self) -> type:
        """The dtype in which a stage before this model (the temporal denoiser) should hand it frames:
        ``np.uint8`` on curve-denoise's uint8 coefficients path (the default backend, no ``exact``, shipped
        weights: it takes 8 bits and denoises on its own), else ``np.uint16``.

        A denoised average keeps sub-level precision that 8 bits throw away: on dark footage the rounded
        levels form steps that the model then multiplies about tenfold. On the phone night clip (32 frames,
        zero-dce++ after the denoiser) the output's noise ratio is 0.54 with the 8-bit hand-off and 0.24 with
        the 16-bit one; the curve models' lookup takes 16-bit frames at nearly the cost of 8-bit ones, the
        other models convert either to float. The denoiser's 16-bit output costs what its 8-bit one does.
        """
        return np.uint8 if self._denoise is not None else np.uint16

    @property
    def has_curve(self) -> bool:
        """Whether :meth:`infer` exposes a curve map (``FrameJob.curve``) that can be smoothed over time."""
        return self._fast is not None

    def preprocess(self, frame: np.ndarray) -> FrameJob:
        """Stage 1 of 3 for ``(H, W, 3)`` BGR frames, uint8 or uint16 (e.g. a denoiser's output that keeps
        sub-level precision on dark frames): make the network input, or plan the tiles of a large frame."""
        job = self._preprocess(frame)
        job.made_by = id(self)
        return job

    def _preprocess(self, frame: np.ndarray) -> FrameJob:
        if not isinstance(frame, np.ndarray):
            raise ShapeError(f"the staged API takes (H, W, 3) uint8 or uint16 BGR frames, got {type(frame).__name__}")
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype not in (np.uint8, np.uint16):
            raise ShapeError(
                f"the staged API takes (H, W, 3) uint8 or uint16 BGR frames, got {frame.shape} {frame.dtype}"
            )
        self._check_open()
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise ShapeError(f"expected a non-empty image, got {frame.shape}")
        if self._fast is not None:
            return FrameJob(frame, self._fast.small_input(frame))
        plan = self._plan(frame, np.uint8)
        if plan is not None:
            return FrameJob(frame, _NO_INPUT, tiles=plan)
        if self._denoise is not None and frame.dtype == np.uint8:
            feats = self._denoise.features(frame)
            return FrameJob(frame, feats.blob, features=feats)
        return FrameJob(frame, to_tensor(frame, multiple=self.spec.pad_multiple, min_side=self.spec.min_side))

    def infer(self, job: FrameJob) -> FrameJob:
        """Stage 2 of 3: run the backend (every tile of a tiled job, blended into ``job.output``)."""
        _check_job(job, "infer", self)
        self._check_open()
        if job.tiles is not None:
            job.output = self._run_tiled(job.frame, job.tiles, np.uint8)
            return job
        if job.features is not None and self._denoise is not None:
            job.net_output = self._denoise.coefficients.run(job.net_input)
            return job
        job.net_output = self.backend.run(job.net_input)
        if self._fast is not None:
            job.curve = self._fast.rows_from_output(job.net_output)
        return job

    def postprocess(self, job: FrameJob) -> np.ndarray:
        """Stage 3 of 3: the enhanced ``(H, W, 3)`` uint8 BGR frame (for uint8 and uint16 input alike)."""
        _check_job(job, "postprocess", self)
        if job.output is not None:
            return job.output
        if job.net_output is None:
            raise EngineError("infer() must run before postprocess()")
        if self._fast is not None and job.curve is not None:
            return self._fast.apply_small(job.frame, job.curve)
        if self._denoise is not None and job.features is not None:
            return self._denoise.apply(job.features, job.net_output)
        return from_tensor(job.net_output, job.frame.shape[0], job.frame.shape[1])

    def _enhance_bgr(self, bgr: np.ndarray) -> np.ndarray:
        """A non-empty ``(H, W, 3)`` frame of a checked dtype (:func:`_check_frame`), enhanced."""
        if bgr.dtype == np.uint8:
            return self.postprocess(self.infer(self.preprocess(bgr)))
        if self._fast is not None:  # 16-bit or float out: apply the curve exactly rather than through the table
            rows = self._fast.rows_from_output(self.backend.run(self._fast.small_input(bgr)))
            return self._fast.apply_literal(bgr, rows)
        plan = self._plan(bgr, bgr.dtype)
        if plan is not None:
            return self._run_tiled(bgr, plan, bgr.dtype)
        y = self.backend.run(to_tensor(bgr, multiple=self.spec.pad_multiple, min_side=self.spec.min_side, check=False))
        return from_tensor(y, bgr.shape[0], bgr.shape[1], bgr.dtype)

    def _plan(self, frame: np.ndarray, out_dtype: np.dtype | type) -> TilePlan | None:
        h, w = frame.shape[:2]
        return plan_tiles(
            h,
            w,
            profile=self._profile,
            bytes_per_pixel=self._profile.bytes_per_pixel(self.backend.name),
            tile_bytes_per_pixel=self._profile.bytes_per_pixel(self.backend.name, tiles=True),
            multiple=self.spec.pad_multiple,
            budget_mb=self.memory_budget_mb,
            frame_bytes=h * w * 3 * (frame.dtype.itemsize + np.dtype(out_dtype).itemsize),
            max_tile=self.max_tile,
        )

    def _run_tiled(self, frame: np.ndarray, plan: TilePlan, out_dtype: np.dtype | type) -> np.ndarray:
        self._check_open()  # the tile engine is made on first use: never a new session after close()
        if self._engine is None:
            self._engine = make_engine(self.backend, self.spec.name, onnx_path=self._graph, threads=self._threads)
        log.debug(
            "%dx%d frame in %d tiles of %dx%d", plan.width, plan.height, plan.count, plan.tile_width, plan.tile_height
        )
        return run_tiled(frame, plan, self._engine, out_dtype=out_dtype, multiple=self.spec.pad_multiple, checked=True)

    def _check_open(self) -> None:
        """Refuse work after :meth:`close`: the tiled path would otherwise build a new session and run on."""
        if self._closed:
            raise EngineError(f"this Enhancer ({self.spec.name}) was closed; make a new Enhancer to go on")

    def close(self) -> None:
        """Release the backend (idempotent); final: every later call raises :class:`EngineError`."""
        self._closed = True
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if self._denoise is not None:
            self._denoise.coefficients.close()
        self.backend.close()

    def __enter__(self) -> Enhancer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_frame(frame: object) -> None:
    """Refuse what :meth:`Enhancer.enhance` cannot take, naming the caller's array (not a converted copy), as
    one :class:`ShapeError` before OpenCV or a graph fails on it deep inside.

    A few attribute reads for integer frames (the per-frame path); float frames also pay a min/max pass
    (:func:`~nightvision.preprocess.check_float_range`), as a frame outside ``[0, 1]`` comes back corrupted.
    """
    if not isinstance(frame, np.ndarray):
        hint = " (cv2.imread returns None for a file it cannot read)" if frame is None else ""
        raise ShapeError(f"expected a numpy array, got {type(frame).__name__}{hint}")
    if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (1, 3, 4))):
        raise ShapeError(f"expected {_LAYOUTS}, got {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ShapeError(f"expected a non-empty image, got {frame.shape}")
    if frame.dtype != np.uint8:
        if frame.dtype not in _DTYPES:
            raise ShapeError(f"expected uint8, uint16 or float32/float64 pixels, got {frame.dtype}")
        if frame.dtype.kind == "f":
            check_float_range(frame)


def _check_job(job: object, stage: str, enhancer: Enhancer) -> None:
    """Refuse a stage call on anything but the :class:`FrameJob` that this enhancer's :meth:`Enhancer.preprocess`
    made (another enhancer's job fits another graph: ONNX Runtime's own error, deep down)."""
    if not isinstance(job, FrameJob):
        raise InputError(f"{stage}() takes the FrameJob that preprocess() returned, got {type(job).__name__}")
    if job.made_by not in (0, id(enhancer)):
        raise InputError(f"{stage}() takes a FrameJob of this enhancer's preprocess(), not another enhancer's")


def _check_number(value: object, name: str, *, integer: bool = False) -> None:
    """Refuse an option of the wrong type (``memory_budget_mb="100"``) by name, before a comparison with it
    fails as a bare TypeError; the range checks follow in the constructor."""
    kinds: tuple[type, ...] = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise InputError(f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")


def _grey_to_bgr(grey: np.ndarray) -> np.ndarray:
    """A grey frame as three equal channels (OpenCV converts uint8, uint16 and float32; numpy float64)."""
    if grey.dtype == np.float64:
        return np.repeat(grey[:, :, None], 3, axis=2)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def _bgr_to_grey(bgr: np.ndarray) -> np.ndarray:
    """The luma of an enhanced frame, with OpenCV's weights (numpy for float64, which OpenCV does not take)."""
    if bgr.dtype == np.float64:
        return np.asarray(bgr @ np.array([0.114, 0.587, 0.299]))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


# --- user checkpoints (--weights) -----------------------------------------------------------------------------


@dataclass
class _Checkpoint:
    """A user checkpoint for ``spec``, checked against the model's architecture (when torch is present)."""

    path: Path
    spec: ModelSpec
    sha256: str
    args: dict[str, Any]

    @property
    def iterations(self) -> int:
        """Curve iterations of a shared-curve model trained with other than the shipped number."""
        return int(self.args.get("iterations", self.spec.curve_iterations))

    @classmethod
    def open(
        cls, weights: str, spec: ModelSpec, backend: str, onnx_path: str | None, *, estimator: bool
    ) -> _Checkpoint:
        """Check ``weights`` for ``spec`` on ``backend`` (``estimator``: the fast curve path will need the
        estimator graph, not the full one)."""
        path = Path(weights)
        if onnx_path is not None:
            raise InputError(
                f"give weights (--weights) or onnx_path (--onnx), not both (got {weights} and {onnx_path})"
            )
        if not path.is_file():
            raise InputError(f"no such checkpoint: {weights}")
        if backend == "tensorrt":
            raise InputError(
                "weights (--weights) do not apply to TensorRT plans: export the checkpoint (`nightvision export "
                f"{spec.name} --weights {weights} -o FILE.onnx`), then `nightvision build FILE.onnx`"
            )
        sha = sha256_of(path)
        try:
            import torch  # noqa: F401
        except ImportError:
            if backend == "torch":
                raise SetupError("the torch backend needs PyTorch: pip install 'nightvision[train]'") from None
            if _cached_graph(spec, sha, estimator=estimator).is_file():
                log.info("using the graph exported earlier from %s", path)
                return cls(path, spec, sha, {})
            raise InputError(
                "weights (--weights) need torch to convert the checkpoint: pip install 'nightvision[train]' or give "
                "an ONNX file (onnx_path=, --onnx)"
            ) from None
        # the torch backend builds the model from the spec's arguments; export uses the checkpoint's own
        args = check_checkpoint(path, spec, use_args=backend != "torch")
        return cls(path, spec, sha, args)

    def onnx(self, *, estimator: bool) -> Path:
        """The checkpoint as an ONNX graph (the curve estimator alone with ``estimator``), exported once."""
        out = _cached_graph(self.spec, self.sha256, estimator=estimator, create=True)
        if out.is_file():
            return out
        from nightvision import export

        log.info("exporting %s to %s (once per checkpoint)", self.path, out)
        with export.quiet_exporter():
            try:
                if estimator:
                    export.export_curve_estimator(self.spec.name, out, weights=self.path)
                else:
                    # the shipped variant's downscale (a run-time choice, not a weight) as the shipped graph has
                    extra: dict[str, Any] = {}
                    if "downscale" in dict(self.spec.kwargs):
                        extra["downscale"] = self.spec.downscale
                    export.export_onnx(self.spec.name, out, weights=self.path, **extra)
            except (InputError, EngineError):
                raise
            except Exception as err:
                raise EngineError(f"cannot export {self.path} to ONNX: {_first_line(err)}") from err
        return out


def _cached_graph(spec: ModelSpec, sha256: str, *, estimator: bool, create: bool = False) -> Path:
    """Where the graph exported from a checkpoint is kept: ``cache_dir("onnx")``, keyed by the checkpoint's
    sha256 and the nightvision version that exported it."""
    from nightvision import __version__
    from nightvision.cache import cache_dir

    kind = ".estimator" if estimator else ""
    return cache_dir("onnx", create=create) / f"{spec.name}-{sha256[:32]}-v{__version__}{kind}.onnx"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def check_checkpoint(path: Path, spec: ModelSpec, *, use_args: bool) -> dict[str, Any]:
    """Load ``path`` and compare it with ``spec``'s architecture; return its model arguments.

    Raises:
        InputError: the file is not a readable checkpoint, or its first key or shape that does not match.
    """
    import torch

    from nightvision import models

    with open(path, "rb") as f:
        head = f.read(4)
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):  # torch's zip, or a legacy pickle
        raise InputError(f"{path} is not a PyTorch checkpoint (a .pt file saved by `nightvision train` or torch.save)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated zip, a pickle with code...
        raise InputError(f"cannot read checkpoint {path}: {_first_line(err)}") from err
    state = ckpt["model"] if isinstance(ckpt, dict) and "model" in ckpt else ckpt
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path} is not a checkpoint of a model (no state dict of tensors in it)")
    args: dict[str, Any] = dict(ckpt.get("model_args") or {}) if isinstance(ckpt, dict) else {}
    owner = ckpt.get("model_name") if isinstance(ckpt, dict) else None
    of = f" (it is a checkpoint of {owner})" if owner and owner != spec.name else ""
    try:
        model = models.create(spec.name, pretrained=False, **(args if use_args else {}))
    except (TypeError, ValueError) as err:
        raise InputError(f"{path} does not match {spec.name}: its model arguments {args} do not fit{of}") from err
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise InputError(f"{path} does not match {spec.name}: it has no {key}{of}")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise InputError(
                f"{path} does not match {spec.name}: {key} is {tuple(state[key].shape)} in the checkpoint, "
                f"{tuple(tensor.shape)} in the model{of}"
            )
    for key in state:
        if key not in expected:
            raise InputError(f"{path} does not match {spec.name}: unexpected key {key}{of}")
    return args
