"""Write-then-rename, so that no half-written output is ever left behind; one helper for every writer.

Every output (images, videos, stats, checkpoints, plans) is written to a hidden temporary file beside it,
``.NAME.tmp-PID-N.SUFFIX`` (unique per process and per output, so two outputs of one run never share one),
and renamed into place when complete. The suffix is kept so that writers choosing a format by extension
still work. When a run is killed (SIGKILL, power loss) its temporary files stay behind; the next run that
writes into the same folder removes those whose process is no longer alive.

>>> with atomic_path("out/stats.json") as tmp:
...     tmp.write_text("{}")
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

from nightvision.errors import NightvisionError, OutputError

__all__ = [
    "AtomicFile",
    "atomic_path",
    "describe_os_error",
    "ensure_parent",
    "is_temp_name",
    "missing_folders",
    "remove_empty_folders",
    "remove_stale_temp_files",
]

log = logging.getLogger(__name__)

_counter = itertools.count()
_TEMP = re.compile(r"^\..+\.tmp-(\d+)(?:-\d+)?(?:\.[^.]*)?$")  # .NAME.tmp-PID[-N][.SUFFIX]
_cleaned: set[Path] = set()
_lock = threading.Lock()


def describe_os_error(err: BaseException) -> str:
    """The cause of an OS-level failure in words: ``permission denied``, ``disk full``, ..."""
    code = getattr(err, "errno", None)
    words = {
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOSPC: "disk full",
        errno.EDQUOT: "disk quota exceeded",
        errno.EROFS: "read-only file system",
        errno.ENOTDIR: "a parent is a file, not a folder",
        errno.EISDIR: "it is a folder",
        errno.ENAMETOOLONG: "the name is too long",
        errno.ENOENT: "no such file or folder",
    }
    if code in words:
        return words[code]
    text = getattr(err, "strerror", None) or str(err)
    return text[:1].lower() + text[1:] if text else type(err).__name__


def ensure_parent(path: str | Path) -> Path:
    """Create the folder ``path`` goes into; an :class:`OutputError` naming ``path`` and the cause if it cannot.

    A parent that exists as a file is reported as such (``mkdir`` would say "File exists").
    """
    path = Path(path)
    for parent in [path.parent, *path.parent.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"cannot write {path}: {parent} is a file, not a folder")
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {describe_os_error(err)}") from err
    return path


def missing_folders(path: str | Path) -> list[Path]:
    """The folders above ``path`` that do not exist yet, deepest first: what :func:`ensure_parent` will make,
    and what :func:`remove_empty_folders` takes away again when the output is given up."""
    parent = Path(path).parent
    return [p for p in [parent, *parent.parents] if not p.exists()]


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) while they are empty: a failed output leaves no folder it made, and
    never one where something else has been written since."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of our temporary names (``.NAME.tmp-PID[-N].SUFFIX``)."""
    return _TEMP.match(name) is not None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return True
    return True


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete the temporary files (``.NAME.tmp-PID[-N].SUFFIX``) of dead processes in ``folder``.

    Only names of exactly that form whose PID no longer runs are removed. Returns what was removed.
    """
    removed: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP.match(entry.name)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file() and not entry.is_symlink():
                entry.unlink()
                removed.append(entry)
    if removed:
        log.warning("removed %d temporary file(s) left by killed runs in %s", len(removed), folder)
    return removed


def _clean_once(folder: Path) -> None:
    key = folder.resolve()
    with _lock:
        if key in _cleaned:
            return
        _cleaned.add(key)
    remove_stale_temp_files(folder)


class AtomicFile:
    """One output written under a temporary name: :meth:`commit` renames it into place, :meth:`discard`
    deletes it. Creating one makes the folder (an :class:`OutputError` naming ``path`` if it cannot) and
    removes the stale temporary files of dead runs there.

    Attributes:
        path: the real output.
        tmp: the temporary file to write (``.NAME.tmp-PID-N.SUFFIX``, beside ``path``).
    """

    def __init__(self, path: str | Path) -> None:
        self._made = missing_folders(path)  # a discarded output leaves none of them behind
        self.path = ensure_parent(Path(path))
        _clean_once(self.path.parent)
        self.tmp = self.path.with_name(f".{self.path.stem}.tmp-{os.getpid()}-{next(_counter)}{self.path.suffix}")
        self.done = False

    def commit(self, path: str | Path | None = None) -> Path:
        """Rename the temporary file to ``path`` (default: :attr:`path`); return where it went."""
        dest = Path(path) if path is not None else self.path
        try:
            os.replace(self.tmp, dest)
        except OSError as err:
            self.discard()
            raise OutputError(f"cannot write {dest}: {describe_os_error(err)}") from err
        self.done = True
        return dest

    def discard(self) -> None:
        """Delete the temporary file, and the folders made for it that are still empty (idempotent)."""
        self.done = True
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()
        remove_empty_folders(self._made)
        self._made = []


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success, delete it on error.

    OS errors while writing or renaming become an :class:`OutputError` naming ``path`` (not the temporary
    name) and the cause in words.
    """
    out = AtomicFile(path)
    try:
        yield out.tmp
    except OSError as err:
        out.discard()
        if isinstance(err, NightvisionError):
            raise
        raise OutputError(f"cannot write {out.path}: {describe_os_error(err)}") from err
    except BaseException:
        out.discard()
        raise
    out.commit()
