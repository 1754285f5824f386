"""The frame-level API: ``Enhancer(model).enhance(frame)`` takes and returns what OpenCV gives.

>>> from nightvision import Enhancer
>>> enhancer = Enhancer("zero-dce++")            # shipped weights on ONNX Runtime, CPU
>>> bright = enhancer.enhance(cv2.imread("dark.jpg"))

Frames are ``(H, W, 3)`` BGR, uint8 (OpenCV's default) or uint16; grey ``(H, W)`` / ``(H, W, 1)`` and
BGRA ``(H, W, 4)`` frames are accepted too: grey comes back grey, alpha is kept untouched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from nightvision.backends import Backend, create_backend, resolve_backend
from nightvision.curves import FastCurvePath
from nightvision.errors import EngineError, InputError, ShapeError
from nightvision.preprocess import from_tensor, to_tensor
from nightvision.specs import ModelSpec, get_spec

__all__ = ["DEFAULT_MODEL", "Enhancer", "FrameJob"]

log = logging.getLogger(__name__)
DEFAULT_MODEL = "zero-dce++"


@dataclass
class FrameJob:
    """One uint8 BGR frame on its way through :meth:`Enhancer.preprocess` → ``infer`` → ``postprocess``.

    Attributes:
        frame: the input, ``(H, W, 3)`` uint8 BGR.
        net_input: what the backend runs on (``(1, 3, h, w)`` float32 RGB).
        net_output: the backend's result, set by ``infer``.
        curve: for shared-curve models on the fast path, the low-resolution curve map (table rows,
            ``(h, w, 3)`` float32 BGR), set by ``infer``; temporal smoothing acts on it before ``postprocess``.
    """

    frame: np.ndarray
    net_input: np.ndarray
    net_output: np.ndarray | None = None
    curve: np.ndarray | None = None


class Enhancer:
    """A loaded model, ready to enhance frames.

    Args:
        model: registered model name (``nightvision models`` lists them).
        backend: ``"auto"`` (default: PyTorch on a CUDA GPU when there is one, else ONNX Runtime),
            ``"onnxruntime"`` or ``"torch"``.
        onnx_path: run this ONNX file instead of the shipped one (onnxruntime backend).
        weights: run this checkpoint instead of the shipped weights (torch backend).
        device: torch device for the torch backend.
        threads: CPU threads for ONNX Runtime (0 = its default).
        downscale: curve models that estimate their curve on a downscaled copy (Zero-DCE++): the factor.
            Default: chosen per frame so the copy's shorter side is about ``spec.curve_side`` pixels
            (constant cost at any resolution). Larger is faster and smoother.
        exact: on ONNX Runtime, run the single full graph instead of the fast curve path (estimator graph
            plus table lookup, within one grey level of the full graph and several times faster on a CPU).
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
    ) -> None:
        self.spec: ModelSpec = get_spec(model)
        backend, why = resolve_backend(backend, self.spec)
        if why != "asked for":
            log.info("backend auto → %s (%s)", backend, why)
        if downscale is not None and downscale < 1:
            raise InputError(f"downscale must be a positive integer, got {downscale}")
        self._fast: FastCurvePath | None = None
        fast = backend == "onnxruntime" and not exact and onnx_path is None and self.spec.estimator_onnx
        if downscale is not None and downscale != self.spec.downscale and not fast:
            raise InputError("--downscale needs the fast curve path (onnxruntime, a shared-curve model, not --exact)")
        if fast:
            estimator = create_backend(self.spec, backend, onnx_path=str(self.spec.estimator_path), threads=threads)
            self._fast = FastCurvePath(
                estimator,
                downscale=downscale or (None if self.spec.curve_side else self.spec.downscale),
                curve_side=self.spec.curve_side,
                iterations=self.spec.curve_iterations,
            )
            self.backend: Backend = estimator
            how = f"1/{self._fast.downscale}" if self._fast.downscale else f"a ~{self.spec.curve_side}-px copy"
            log.info("model %s on %s (curve estimated on %s, table lookup)", model, estimator.name, how)
        else:
            self.backend = create_backend(
                self.spec, backend, onnx_path=onnx_path, weights=weights, device=device, threads=threads
            )
            log.info("model %s on %s", self.spec.name, self.backend.name)

    def enhance(self, frame: np.ndarray) -> np.ndarray:
        """Enhance one frame; the result has the shape and dtype of ``frame``.

        Args:
            frame: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` BGR or ``(H, W, 4)`` BGRA; uint8, uint16, or
                float in ``[0, 1]``.
        """
        if not isinstance(frame, np.ndarray):
            raise ShapeError(f"expected a numpy array, got {type(frame).__name__}")
        if frame.ndim == 3 and frame.shape[2] == 3:
            return self._enhance_bgr(frame)
        if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
            grey = frame.reshape(frame.shape[:2])
            out = self._enhance_bgr(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
            return cv2.cvtColor(out, cv2.COLOR_BGR2GRAY).reshape(frame.shape)
        if frame.ndim == 3 and frame.shape[2] == 4:
            out = self._enhance_bgr(np.ascontiguousarray(frame[:, :, :3]))
            return np.dstack([out, frame[:, :, 3]])
        raise ShapeError(f"expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {frame.shape}")

    @property
    def has_curve(self) -> bool:
        """Whether :meth:`infer` exposes a curve map (``FrameJob.curve``) that can be smoothed over time."""
        return self._fast is not None

    def preprocess(self, frame: np.ndarray) -> FrameJob:
        """Stage 1 of 3 for ``(H, W, 3)`` uint8 BGR frames: make the network input."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ShapeError(f"the staged API takes (H, W, 3) uint8 BGR frames, got {frame.shape} {frame.dtype}")
        if self._fast is not None:
            return FrameJob(frame, self._fast.small_input(frame))
        return FrameJob(frame, to_tensor(frame, multiple=self.spec.pad_multiple))

    def infer(self, job: FrameJob) -> FrameJob:
        """Stage 2 of 3: run the backend."""
        job.net_output = self.backend.run(job.net_input)
        if self._fast is not None:
            job.curve = self._fast.rows_from_output(job.net_output)
        return job

    def postprocess(self, job: FrameJob) -> np.ndarray:
        """Stage 3 of 3: the enhanced ``(H, W, 3)`` uint8 BGR frame."""
        if job.net_output is None:
            raise EngineError("infer() must run before postprocess()")
        if self._fast is not None and job.curve is not None:
            return self._fast.apply_small(job.frame, job.curve)
        return from_tensor(job.net_output, job.frame.shape[0], job.frame.shape[1])

    def _enhance_bgr(self, bgr: np.ndarray) -> np.ndarray:
        if bgr.shape[0] == 0 or bgr.shape[1] == 0:
            raise ShapeError(f"expected a non-empty image, got {bgr.shape}")
        if bgr.dtype == np.uint8:
            return self.postprocess(self.infer(self.preprocess(bgr)))
        if self._fast is not None:  # 16-bit or float: the table is for 8-bit levels; apply the curve exactly
            return self._exact_curve(bgr)
        x = to_tensor(bgr, multiple=self.spec.pad_multiple)
        y = self.backend.run(x)
        return from_tensor(y, bgr.shape[0], bgr.shape[1], bgr.dtype)

    def _exact_curve(self, bgr: np.ndarray) -> np.ndarray:
        assert self._fast is not None
        as8 = cv2.convertScaleAbs(bgr, alpha=255.0 / 65535.0 if bgr.dtype == np.uint16 else 255.0)
        rows = self._fast.curve_map(as8)
        alpha = rows / ((self._fast.table.levels - 1) / 2.0) - 1.0
        x = to_tensor(bgr)[0].transpose(1, 2, 0)[:, :, ::-1]  # float BGR in [0, 1]
        for _ in range(self.spec.curve_iterations):
            x = x + alpha * (x * x - x)
        h, w = bgr.shape[:2]
        return from_tensor(np.ascontiguousarray(x[:, :, ::-1].transpose(2, 0, 1))[None], h, w, bgr.dtype)

    def close(self) -> None:
        """Release the backend (idempotent)."""
        self.backend.close()

    def __enter__(self) -> Enhancer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
