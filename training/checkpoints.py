"""What every training loop shares: the atomic checkpoint write, the resume read and the TensorBoard writer."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from nightvision.errors import InputError

__all__ = ["load_last", "save_checkpoint", "tensorboard_writer"]

log = logging.getLogger(__name__)


def save_checkpoint(ckpt: dict[str, Any], path: Path) -> None:
    """Write ``ckpt`` to ``path`` through a temporary file, so a stopped run never leaves half a checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


def load_last(out: Path, device: str) -> dict[str, Any]:
    """The checkpoint ``out/last.pt`` for ``--resume``; a clear error when there is none."""
    last = out / "last.pt"
    if not last.is_file():
        raise InputError(f"--resume: no checkpoint at {last}")
    ckpt: dict[str, Any] = torch.load(last, map_location=device, weights_only=True)
    return ckpt


def tensorboard_writer(out: Path, enabled: bool) -> Any | None:
    """A ``SummaryWriter`` on ``out/tb``, or ``None`` when disabled or tensorboard is not installed."""
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("tensorboard is not installed; figures are only logged to %s", out / "log.jsonl")
        return None
    return SummaryWriter(str(out / "tb"))
