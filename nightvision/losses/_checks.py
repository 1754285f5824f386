"""Shape checks at the boundary of losses and metrics (no value checks: they would force a GPU sync)."""

from __future__ import annotations

import torch

from nightvision.errors import ShapeError


def check_bchw(x: torch.Tensor, name: str, channels: int | None = 3) -> None:
    """Raise :class:`ShapeError` unless ``x`` is a floating ``(B, C, H, W)`` tensor of that many channels."""
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    want = f"(B, {channels if channels is not None else 'C'}, H, W)"
    if x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        raise ShapeError(f"{name}: expected {want}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ShapeError(f"{name}: expected a floating-point tensor, got {x.dtype}")


def check_same_shape(a: torch.Tensor, b: torch.Tensor, names: str) -> None:
    if a.shape != b.shape:
        raise ShapeError(f"{names}: expected the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
