"""What every training loop shares: an atomic checkpoint write and the optional TensorBoard writer."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["save_checkpoint", "tensorboard_writer"]

log = logging.getLogger(__name__)


def save_checkpoint(ckpt: dict[str, Any], path: Path) -> None:
    """Write ``ckpt`` to ``path`` through a temporary file, so a stopped run never leaves half a checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


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
