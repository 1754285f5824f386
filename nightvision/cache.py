"""Where nightvision keeps what it can rebuild: the user's cache folder, never the current directory.

The root is ``$NIGHTVISION_CACHE`` when set, else ``$XDG_CACHE_HOME/nightvision`` (an absolute
``XDG_CACHE_HOME`` only, as the XDG base-directory specification asks), else ``~/.cache/nightvision``.
Each kind of cache has its own folder under the root:

* ``engines`` — TensorRT plans built by ``nightvision build`` (and the fp16 graphs they are built from);
* ``tensorrt-timing`` — TensorRT timing caches, one per TensorRT version and GPU;
* ``ort-tensorrt`` — the engines and timing data of ONNX Runtime's TensorRT execution provider.

Everything here can be deleted at any time; it is rebuilt on demand (a TensorRT build takes minutes).
"""

from __future__ import annotations

import os
from pathlib import Path

from nightvision.errors import InputError, OutputError
from nightvision.io.atomic import describe_os_error

__all__ = ["ENGINES", "ORT_TENSORRT", "TENSORRT_TIMING", "cache_dir", "cache_root"]

ENGINES = "engines"
TENSORRT_TIMING = "tensorrt-timing"
ORT_TENSORRT = "ort-tensorrt"


def cache_root() -> Path:
    """The root of nightvision's caches (not created here): ``$NIGHTVISION_CACHE``, else
    ``$XDG_CACHE_HOME/nightvision``, else ``~/.cache/nightvision``."""
    own = os.environ.get("NIGHTVISION_CACHE", "")
    if own:
        return Path(own).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "nightvision"
    return Path.home() / ".cache" / "nightvision"


def cache_dir(kind: str, *, create: bool = True) -> Path:
    """The folder of one kind of cache, e.g. ``cache_dir("engines")`` → ``~/.cache/nightvision/engines``.

    Args:
        kind: a plain folder name (no separators), one of the names this module lists for nightvision's own.
        create: create the folder (and its parents) when missing; ``False`` for read-only look-ups.

    Raises:
        InputError: ``kind`` is not a plain folder name.
        OutputError: the folder cannot be created (the message says how to choose another).
    """
    if not kind or kind in (".", "..") or "/" in kind or os.sep in kind:
        raise InputError(f"a cache kind is a plain folder name, got {kind!r}")
    path = cache_root() / kind
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(
                f"cannot create the cache folder {path} ({describe_os_error(err)}); "
                "set NIGHTVISION_CACHE to a writable folder"
            ) from err
    return path
