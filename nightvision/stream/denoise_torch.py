"""The temporal denoiser of :mod:`nightvision.stream.denoise` in PyTorch, for the GPU path.

Same algorithm, same settings (:class:`~nightvision.stream.denoise.DenoiseParams`) and the same per-frame
decisions (:class:`~nightvision.stream.denoise.DenoiseControl`: global shift, noise estimate, scene cuts,
spatial strengths). Every step reproduces OpenCV's arithmetic on the CPU path: the fixed-point BT.601
conversions of ``cvtColor`` (I420), the 16-bit fixed-point history, round-half-to-even where OpenCV rounds
that way, the binomial 5×5 Gaussian of ``GaussianBlur`` and the box filter of ``blur``. Outputs agree with the
CPU path within one level on almost every pixel (tested; ``addWeighted``'s float rounding differs from ours on
near-ties).

The tensors stay on the input's device. A few small values come back to the host per frame (a 90-px
thumbnail for the phase correlation, which runs in OpenCV exactly as on the CPU path, and four 256-bin
histograms for the noise estimates: luma, the coherent test, two chroma planes), so each frame synchronises
with the device a few times; at 720p that is a few tens of kilobytes. No step is a convolution (cuDNN may
compute those in TF32): the Gaussian and the box filters are sums of shifted copies and poolings, exact.

Needs torch (the ``train`` extra); the runtime imports this module only when asked for the torch path.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nightvision.errors import ShapeError
from nightvision.stream.denoise import (
    FIXED,
    UNIT,
    WEIGHT_ONE,
    DenoiseControl,
    DenoiseParams,
    median_nonzero,
    overlap,
    row_step,
    uncovered,
)

__all__ = ["TorchTemporalDenoiser", "bgr_to_i420"]

log = logging.getLogger(__name__)

_SHIFT = 20  # OpenCV's fixed point for BT.601 colour conversion
_HALF = 1 << (_SHIFT - 1)
_TO_Y = (269484, 528482, 102760)  # R, G, B → Y (×2^20), limited range
_TO_U = (-155188, -305135, 460324)
_TO_V = (460324, -385875, -74448)
_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)  # GaussianBlur((5, 5), 0) in OpenCV


def bgr_to_i420(bgr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(H, W, 3)`` uint8 BGR (even H, W) → Y ``(H, W)``, U and V ``(H/2, W/2)`` as int32, exactly as
    OpenCV's ``COLOR_BGR2YUV_I420`` (limited-range BT.601, chroma from the top-left pixel of each 2×2)."""
    x = bgr.to(torch.int32)
    b, g, r = x[..., 0], x[..., 1], x[..., 2]
    y = (_TO_Y[0] * r + _TO_Y[1] * g + _TO_Y[2] * b + (16 << _SHIFT) + _HALF) >> _SHIFT
    r0, g0, b0 = r[::2, ::2], g[::2, ::2], b[::2, ::2]
    u = (_TO_U[0] * r0 + _TO_U[1] * g0 + _TO_U[2] * b0 + (128 << _SHIFT) + _HALF) >> _SHIFT
    v = (_TO_V[0] * r0 + _TO_V[1] * g0 + _TO_V[2] * b0 + (128 << _SHIFT) + _HALF) >> _SHIFT
    return y.clamp(0, 255), u.clamp(0, 255), v.clamp(0, 255)


def _box(x: torch.Tensor, size: int) -> torch.Tensor:
    """Mean over ``size × size`` (OpenCV's ``blur``: reflect-101 border), float, not rounded."""
    pad = size // 2
    xp = F.pad(x[None, None].float(), (pad, pad, pad, pad), mode="reflect")
    return F.avg_pool2d(xp, size, stride=1)[0, 0]


def _gauss5(x: torch.Tensor) -> torch.Tensor:
    """OpenCV's ``GaussianBlur(x, (5, 5), 0)``: binomial [1 4 6 4 1]/16 both ways, reflect-101, float. Summed
    from shifted copies in float64, exactly (a convolution may run in TF32 on a GPU, 10 bits of mantissa)."""
    xp = F.pad(x[None, None].double(), (2, 2, 2, 2), mode="reflect")[0, 0]
    h, w = x.shape
    rows = torch.zeros((h + 4, w), dtype=torch.float64, device=x.device)
    for i, weight in enumerate(_BINOMIAL):
        rows += weight * xp[:, i : i + w]
    both = torch.zeros((h, w), dtype=torch.float64, device=x.device)
    for i, weight in enumerate(_BINOMIAL):
        both += weight * rows[i : i + h]
    return (both / 256.0).float()


def _area_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """``(n_out, n_in)`` float64 weights of area averaging (OpenCV's ``INTER_AREA`` when shrinking): output
    ``i`` averages the input interval ``[i·s, (i + 1)·s)``, ``s = n_in / n_out``, by overlap length."""
    s = n_in / n_out
    edges = torch.arange(n_out + 1, dtype=torch.float64) * s
    lo, hi = edges[:-1, None], edges[1:, None]
    j = torch.arange(n_in, dtype=torch.float64)[None, :]
    return (torch.minimum(hi, j + 1) - torch.maximum(lo, j)).clamp_min(0.0) / s


def _round_half_up(x: torch.Tensor) -> torch.Tensor:
    return torch.floor(x + 0.5)


class _Plane:
    """History (int32 holding 1/64 levels), weights (1/256) and the averaged scaled ``|d|`` of one plane."""

    def __init__(self, plane: torch.Tensor) -> None:
        self.hist = plane.to(torch.int32) * FIXED
        self.k = torch.full_like(self.hist, WEIGHT_ONE)
        self.a = torch.full_like(self.hist, 255)


class TorchTemporalDenoiser:
    """:class:`~nightvision.stream.denoise.TemporalDenoiser` in PyTorch.

    Args:
        params: settings (:class:`~nightvision.stream.denoise.DenoiseParams`).
        device: where the work runs (default: the device of each input tensor, CPU for numpy input).
        output_dtype: ``np.uint8`` or ``np.uint16`` (×257), as on the CPU path.
        **overrides: settings to change.

    Frames are ``(H, W, 3)`` uint8 BGR numpy arrays or tensors (grey ``(H, W)`` too); the result is of the
    same kind (a tensor stays on its device).
    """

    name = "3dnr-torch"
    temporal = True  # the pipeline passes still images by

    def __init__(
        self,
        params: DenoiseParams | None = None,
        *,
        device: str | torch.device | None = None,
        output_dtype: type = np.uint8,
        **overrides: object,
    ) -> None:
        base = params or DenoiseParams()
        self.params = base.replace(**overrides) if overrides else base
        if output_dtype not in (np.uint8, np.uint16):
            raise ValueError(f"output_dtype must be numpy.uint8 or numpy.uint16, got {output_dtype}")
        self.output_dtype = output_dtype
        self.device = torch.device(device) if device is not None else None
        self._tables: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self._area: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = {}
        self.resets = 0
        self.cuts = 0
        self._layout: tuple[int, ...] | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the history and the noise estimate."""
        self.control = DenoiseControl(self.params)
        self._planes: list[_Plane] = []
        self._small: np.ndarray | None = None

    @property
    def noise(self) -> tuple[float, float]:
        return self.control.sigma[0], self.control.sigma[1]

    @property
    def frames(self) -> int:
        return self.control.frames

    def _table(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._tables:
            self._tables[device] = (
                torch.from_numpy(self.params.weight_table(self.params.luma_strength).astype(np.int32)).to(device),
                torch.from_numpy(self.params.weight_table(self.params.chroma_strength).astype(np.int32)).to(device),
            )
        return self._tables[device]

    @torch.no_grad()
    def __call__(self, frame: Any) -> Any:
        """Denoise one frame (see the class docstring for what it takes and returns)."""
        as_numpy = isinstance(frame, np.ndarray)
        if as_numpy:
            x = torch.from_numpy(np.ascontiguousarray(frame)).to(self.device or "cpu")
        elif isinstance(frame, torch.Tensor):
            x = frame.to(self.device) if self.device is not None else frame
        else:
            raise ShapeError(f"expected a numpy array or a torch tensor, got {type(frame).__name__}")
        if x.dtype != torch.uint8:
            raise ShapeError(f"the denoiser takes uint8 frames, got {x.dtype}")
        grey = x.ndim == 2 or (x.ndim == 3 and x.shape[2] == 1)
        if not grey and not (x.ndim == 3 and x.shape[2] == 3):
            raise ShapeError(f"expected (H, W), (H, W, 1) or (H, W, 3), got {tuple(x.shape)}")
        if x.shape[0] < 2 or x.shape[1] < 2:
            raise ShapeError(f"expected a frame of at least 2×2 pixels, got {tuple(x.shape)}")
        shape = tuple(x.shape)
        if shape != self._layout:
            if self._layout is not None:
                log.info("denoiser reset: the frame layout changed from %s to %s", self._layout, shape)
                self.resets += 1
            self.reset()
            self._layout = shape
        h, w = shape[:2]
        if grey:
            planes = [x.reshape(h, w).to(torch.int32)]
        else:
            if h % 2 or w % 2:  # replicate one row/column, as the CPU path does
                x = F.pad(x.permute(2, 0, 1)[None].float(), (0, w % 2, 0, h % 2), mode="replicate")
                x = x[0].permute(1, 2, 0).to(torch.uint8)
            planes = list(bgr_to_i420(x))
        self._step(planes)
        out = self._output(h, w, grey)
        if grey:
            out = out.reshape(shape)
        return out.cpu().numpy() if as_numpy else out

    # --- the recursion

    def _thumbnail(self, luma: torch.Tensor) -> tuple[np.ndarray, tuple[float, float]]:
        """The CPU path's thumbnail (``cv2.resize(..., INTER_AREA)`` of every other row), on the host."""
        h, w = luma.shape
        f = self.control.factor(h, w)
        rows = luma[:: row_step(f)]
        th, tw = max(1, h // f), max(1, w // f)
        key = (rows.shape[0], rows.shape[1], th, tw, rows.device)
        if key not in self._area:
            self._area[key] = (
                _area_matrix(rows.shape[0], th).to(rows.device),
                _area_matrix(rows.shape[1], tw).to(rows.device),
            )
        ay, ax = self._area[key]
        small = ay @ rows.double() @ ax.T
        return small.cpu().numpy().astype(np.float32), (w / tw, h / th)

    def _step(self, planes: list[torch.Tensor]) -> None:
        c = self.control
        grey = len(planes) == 1
        luma_table, chroma_table = self._table(planes[0].device)
        small, factor = self._thumbnail(planes[0])
        prev, self._small = self._small, small
        c.set_level(small, grey)
        if not self._planes or prev is None or prev.shape != small.shape:
            self._start(planes)
            return
        luma_shift, chroma_shift = c.shifts(prev, small, factor)
        sigma_y = c.sigma[0]
        luma = self._planes[0]
        se = c.coherent_se(sigma_y) if self.params.coherent > 0.0 else None
        _, median_y, coherent = self._blend(luma, planes[0], luma_shift, sigma_y, luma_table, 5, None, 8, se)
        sample = luma.a[::4, ::4]
        moved = float((sample >= self.params.moved_step).float().mean().item())
        if c.is_cut(moved, prev, small):
            log.info("denoiser reset: scene cut (%.0f%% of the frame moved)", 100 * moved)
            self.cuts += 1
            self._start(planes)
            return
        c.update_coherent(coherent, median_y)
        c.update_sigma(0, median_y, sigma_y)
        c.frames += 1  # before the chroma's noise update, as on the CPU path
        if not grey:
            hc, wc = planes[1].shape
            a = luma.a.float()
            if a.shape == (2 * hc, 2 * wc):  # OpenCV's INTER_AREA at exactly 2×: rounds half up
                motion = _round_half_up(F.avg_pool2d(a[None, None], 2)[0, 0])
            else:
                motion = torch.round(F.adaptive_avg_pool2d(a[None, None], (hc, wc))[0, 0])
            motion = motion.to(torch.int32)
            medians = [
                self._blend(state, cur, chroma_shift, c.sigma[1], chroma_table, 3, motion, 4)[1]
                for state, cur in zip(self._planes[1:], planes[1:], strict=True)
            ]
            finite = [m for m in medians if math.isfinite(m)]
            c.update_sigma(1, float(np.mean(finite)) if finite else math.nan, c.sigma[1])

    def _blend(
        self,
        state: _Plane,
        cur8: torch.Tensor,
        shift: tuple[int, int],
        sigma: float,
        table: torch.Tensor,
        box: int,
        motion: torch.Tensor | None,
        stride: int,
        coherent_se: float | None = None,
    ) -> tuple[torch.Tensor, float, float]:
        """One recursive step of one plane; returns its ``a`` map, the median for the noise estimate and, with
        ``coherent_se`` (the luma), the coherent test's noise measurement (else ``nan``)."""
        h, w = cur8.shape
        dx, dy = shift
        cur = cur8.to(torch.int32) * FIXED
        new = torch.empty_like(state.hist)
        if abs(dx) >= w or abs(dy) >= h:
            state.hist, state.k, state.a = cur, torch.full_like(cur, WEIGHT_ONE), torch.full_like(cur, 255)
            return state.a, math.nan, math.nan
        for rows, cols in uncovered(h, w, dx, dy):
            new[rows, cols] = cur[rows, cols]
            state.k[rows, cols] = WEIGHT_ONE
            state.a[rows, cols] = 255
        ys, xs, yh, xh = overlap(h, w, dx, dy)
        hist = state.hist[yh, xh]
        d = cur[ys, xs] - hist
        # convertScaleAbs: |d·α| in float32, rounded half to even, saturated
        alpha = torch.tensor(UNIT / (sigma * FIXED), dtype=torch.float32)
        a = torch.round((d.float() * alpha.to(d.device)).abs()).clamp(0, 255)
        counts = torch.bincount(a[::stride, ::stride].reshape(-1).long(), minlength=256)
        median = median_nonzero(counts.cpu().numpy())
        a = torch.round(_box(a, box))  # blur on uint8: sum/n rounded (no ties for 9 and 25)
        coherent = math.nan
        if coherent_se is not None:
            a, coherent = self._coherent(a, d, coherent_se)
        if motion is not None:
            a = torch.maximum(a, motion[ys, xs].float())
        a = a.to(torch.int32)
        k = table[a.long()]
        state.a[ys, xs] = a
        state.k[ys, xs] = k
        # multiply(d, k, scale=1/256) rounds half to even; values stay far inside int16
        new[ys, xs] = hist + torch.round(d.double() * k.double() / WEIGHT_ONE).to(torch.int32)
        state.hist = new
        return state.a, median, coherent

    def _coherent(self, a: torch.Tensor, d: torch.Tensor, se: float) -> tuple[torch.Tensor, float]:
        """The coherent-change test (:func:`nightvision.stream.denoise.coherent_motion`) on the overlap's ``d``
        (fixed point): ``a`` raised to the value of each pixel's 4×4 block, and the noise measurement."""
        rows, cols = d.shape
        bh, bw = rows // 4, cols // 4
        if bh < 3 or bw < 3:
            return a, math.nan
        sums = d[: 4 * bh, : 4 * bw].reshape(bh, 4, bw, 4).sum(dim=(1, 3)).float()  # integers: exact
        padded = F.pad(sums[None, None], (1, 1, 1, 1), mode="reflect")  # reflect-101, as OpenCV's default
        # (a pooling, not a convolution, which may run in TF32 on a GPU: sums of integers below 2**24, exact)
        total = F.avg_pool2d(padded, 3, stride=1, divisor_override=1)[0, 0]

        def scaled(alpha: float) -> torch.Tensor:  # convertScaleAbs: |x·α| in float32, half to even, saturated
            return torch.round((total * torch.tensor(alpha, dtype=torch.float32, device=d.device)).abs()).clamp(0, 255)

        steps = scaled(UNIT / se)[::2, ::2]
        median = median_nonzero(torch.bincount(steps.reshape(-1).long(), minlength=256).cpu().numpy())
        blocks = scaled(self.params.motion_steps[0] / (self.params.coherent * se))
        iy = torch.clamp(torch.arange(rows, device=d.device) // 4, max=bh - 1)
        ix = torch.clamp(torch.arange(cols, device=d.device) // 4, max=bw - 1)
        return torch.maximum(a, blocks[iy][:, ix]), median

    def _start(self, planes: list[torch.Tensor]) -> None:
        self._planes = [_Plane(p) for p in planes]
        self.control.restart()
        self.control.frames = 1

    # --- output

    def _filter(self, planes: list[torch.Tensor], rounded: bool) -> list[torch.Tensor]:
        w_move, w_static, w_chroma = self.control.spatial_weights()
        outs = []
        for i, o in enumerate(planes):
            weight = w_static if i == 0 else w_chroma
            if weight <= 0.0 and (i > 0 or w_move <= 0.0):
                outs.append(o)
                continue
            blurred = _gauss5(o)
            if rounded:
                blurred = _round_half_up(blurred)
            width = self.control.chroma_box() if i > 0 else 0
            if width:  # the chroma's filter widened on very noisy footage
                blurred = _box(blurred, width)
                if rounded:
                    blurred = _round_half_up(blurred)

            def mix(wgt: float, o: torch.Tensor = o, blurred: torch.Tensor = blurred) -> torch.Tensor:
                m = o * np.float32(1.0 - wgt) + blurred * np.float32(wgt)
                return torch.round(m).clamp(0, 255) if rounded else m

            out = mix(weight)
            if i == 0 and w_move != w_static:
                out = torch.where(self._planes[0].a >= self.params.moved_step, mix(w_move), out)
            outs.append(out)
        return outs

    def _output(self, h: int, w: int, grey: bool) -> torch.Tensor:
        hists = [p.hist for p in self._planes]
        eight = self.output_dtype == np.uint8
        if eight and grey:
            # convertScaleAbs(hist, 1/64): rounded half to even
            planes = self._filter([torch.round(hh.float() / FIXED).clamp(0, 255) for hh in hists], rounded=True)
            return planes[0].to(torch.uint8)
        planes = self._filter([hh.float() / FIXED for hh in hists], rounded=False)
        if grey:
            return _to_uint16(planes[0])
        return _i420_float_to_bgr(*planes, eight=eight)[:h, :w]  # (colour: rounded once, as the CPU path)


def _to_uint16(x: torch.Tensor) -> torch.Tensor:
    return (x * 257.0 + 0.5).clamp(0, 65535).to(torch.int32).to(torch.uint16)


def _i420_float_to_bgr(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, *, eight: bool) -> torch.Tensor:
    """As :func:`nightvision.stream.denoise.i420_fixed_to_bgr` (here in float): chroma repeated over each 2×2,
    BT.601 limited range, rounded once to uint8 or uint16."""
    uu = (u - 128.0).repeat_interleave(2, 0).repeat_interleave(2, 1)
    vv = (v - 128.0).repeat_interleave(2, 0).repeat_interleave(2, 1)
    yy = (y - 16.0) * 1.164
    bgr = torch.stack([yy + 2.018 * uu, yy - 0.391 * uu - 0.813 * vv, yy + 1.596 * vv], dim=-1)
    if eight:
        return torch.round(bgr.clamp(0.0, 255.0)).to(torch.uint8)
    return (bgr * 257.0).clamp(0.0, 65535.0).add(0.5).to(torch.int32).to(torch.uint16)
