"""Checks that keep inputs sacred and outputs deliberate, made before any model is loaded.

* An output never resolves to an input file (the same path, a symlink or a hard link to it).
* The same output is never given twice (two writers would fight over one file).
* An existing output is replaced only when asked (``overwrite=True``, ``--overwrite``).
* An output whose folder cannot be made or written is refused up front, naming the output and the cause.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from nightvision.errors import OutputError

__all__ = ["check_outputs", "is_within", "same_file", "writable_folder"]


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file (resolving symlinks, and hard links when both exist)."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _inode(path: Path) -> tuple[int, int] | None:
    """``(device, inode)`` of an existing file (what :func:`os.path.samefile` compares), else ``None``."""
    try:
        st = path.stat()
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _input_index(inputs: Sequence[str | Path]) -> tuple[dict[Path, Path], dict[tuple[int, int] | None, Path]]:
    """The inputs by resolved path and by ``(device, inode)`` (symlinks and hard links), so that checking ``n``
    outputs against ``m`` inputs costs ``n + m`` lookups, not ``n × m`` comparisons (a folder of thousands of
    photos is checked in a blink). Same answers as :func:`same_file` on every pair."""
    by_path: dict[Path, Path] = {}
    by_inode: dict[tuple[int, int] | None, Path] = {}
    for src in map(Path, inputs):
        by_path.setdefault(src.resolve(), src)
        inode = _inode(src)
        if inode is not None:
            by_inode.setdefault(inode, src)
    return by_path, by_inode


def is_within(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` is ``folder`` or inside it (after resolving both)."""
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


def writable_folder(path: str | Path) -> None:
    """Refuse (:class:`OutputError`) an output whose folder is a file or cannot be written."""
    path = Path(path)
    for parent in [path.parent, *path.parent.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"cannot write {path}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputError(f"cannot write {path}: permission denied on the folder {parent}")
            return


def check_outputs(
    inputs: Sequence[str | Path], outputs: Sequence[str | Path], *, overwrite: bool, resumable: bool = False
) -> None:
    """Refuse, with one :class:`OutputError` line, outputs that would destroy data or cannot be written.

    Args:
        inputs: the files (or folders) read.
        outputs: the files written.
        overwrite: replace outputs that already exist (else they are refused, all named in one line).
        resumable: the refusal also offers ``--skip-existing`` (a folder job of ``enhance``).
    """
    by_path, by_inode = _input_index(inputs)
    seen: dict[Path, Path] = {}
    for out in map(Path, outputs):
        key = out.resolve()
        if key in seen:
            raise OutputError(f"the output {out} is given twice; give each output once")
        seen[key] = out
        src = by_path.get(key) or by_inode.get(_inode(out))
        if src is not None:
            raise OutputError(
                f"the output {out} is the input {src}; choose another name (an input is never overwritten)"
            )
        if out.is_dir():
            raise OutputError(f"cannot write {out}: it is a folder")
        writable_folder(out)
    if not overwrite:
        existing = [out for out in seen.values() if out.exists()]
        if len(existing) == 1:
            raise OutputError(f"{existing[0]} already exists; pass --overwrite to replace it")
        if existing:
            resume = ", or --skip-existing to keep them and enhance the rest" if resumable else ""
            raise OutputError(
                f"{len(existing)} of the {len(seen)} outputs already exist (e.g. {existing[0]}); "
                f"pass --overwrite to replace them{resume}"
            )
