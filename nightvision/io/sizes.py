"""Frame sizes, written one way everywhere: ``WIDTHxHEIGHT`` (``1280x720``) or a name (``720p``)."""

from __future__ import annotations

from nightvision.errors import InputError

__all__ = ["SIZES", "format_size", "parse_size"]

SIZES = {"480p": (480, 854), "720p": (720, 1280), "1080p": (1080, 1920), "4k": (2160, 3840)}
"""Named sizes → ``(height, width)``."""

MAX_SIDE = 65_536


def parse_size(size: str) -> tuple[int, int]:
    """``"720p"`` (see :data:`SIZES`) or ``"WIDTHxHEIGHT"`` → ``(height, width)``; an :class:`InputError` else."""
    text = size.strip().lower()
    if text in SIZES:
        return SIZES[text]
    w, sep, h = text.partition("x")
    if sep and w.isdigit() and h.isdigit() and 0 < int(w) <= MAX_SIDE and 0 < int(h) <= MAX_SIDE:
        return int(h), int(w)
    raise InputError(f"unknown size {size!r}: use {', '.join(SIZES)} or WIDTHxHEIGHT (e.g. 1280x720)")


def format_size(height: int, width: int) -> str:
    """``(720, 1280)`` → ``"1280x720"``."""
    return f"{width}x{height}"
