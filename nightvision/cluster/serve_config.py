"""The ``nightvision serve`` configuration: cameras by URI, their model and options, and their outputs.

A TOML file (or YAML, ``.yaml``/``.yml``, when PyYAML is installed) with three parts; everything but the
cameras' names and URIs is optional, and every key shows its default (``outputs``: none)::

    [serve]
    host = "127.0.0.1"          # the HTTP port's address; "0.0.0.0" serves other machines (no authentication!)
    port = 8080                 # 0: any free port
    address = ""                # Ray cluster: "auto", "HOST:PORT", "ray://HOST:PORT"; "" = a local instance
    cpus_per_camera = 1.0       # Ray CPUs reserved by each camera's actor (fractions allowed)
    gpus_per_camera = 0.0       # Ray GPUs per camera: 0.25 lets four cameras share one GPU
    stall_seconds = 10.0        # a camera that delivered frames and then none for this long is restarted
    start_timeout = 60.0        # a camera with no first frame this long after its (re)start is restarted
    restart_delay = 1.0         # first delay before a restart; doubles with each failure in a row ...
    restart_delay_max = 30.0    # ... up to this (a camera up for 30 s starts a new row)
    max_restarts = -1           # give up on a camera after this many restarts in a row; -1: never give up
    jpeg_quality = 80           # of the MJPEG views and snapshots, 1-100
    overwrite = false           # replace recordings that already exist (else refused at start)

    [defaults]                  # camera options shared by every camera (each camera may override them)
    model = "zero-dce++"

    [[camera]]
    name = "gate"               # required: letters, digits, "-", "_", "." (it names the URLs /cam/gate/...)
    uri = "rtsp://user:pass@10.0.0.5/stream"   # required: any source `nightvision run` takes (0: camera 0)
    model = "zero-dce++"        # a registered model (`nightvision models`)
    backend = "auto"            # auto, onnxruntime, torch, tensorrt
    threads = 0                 # ONNX Runtime threads; 0: the camera's CPUs (rounded up)
    denoise = false             # temporal noise reduction before the model
    exposure = "auto"           # "auto" (as `run`'s default), false, or a mean output luma 20-235, e.g. 110
    policy = "latest"           # latest (drop stale frames: low latency) or lossless
    smooth = false              # smooth the curve map over time (curve models)
    hud = false                 # draw FPS and latency on the picture
    size = ""                   # local cameras: the mode to request, "1280x720" or "720p"; "" = default
    fps = 0.0                   # local cameras: the rate to request; 0 = default
    cpus = 1.0                  # overrides cpus_per_camera for this camera
    gpus = 0.0                  # overrides gpus_per_camera for this camera
    outputs = ["recordings/{name}-{start}.mp4"]   # extra sinks: video files, http://HOST:PORT/, null://

Outputs are video files (``.mp4``, ``.mkv``, ...), ``http://HOST:PORT/`` (one more MJPEG viewer, served by the
camera's own process) or ``null://``. ``{name}`` is the camera's name and ``{start}`` the local time its
pipeline (re)started, ``YYYYmmdd-HHMMSS``; every restart begins a new file, and one whose name would already
be taken gets ``-2``, ``-3``, ... before its suffix, so a restart never overwrites a recording. Relative paths
are relative to the config file's folder, and are written on the machine that runs the camera (on a
cluster, use a folder all nodes share). A recording is finalised, playable, when the camera stops or its
pipeline fails; one whose process was killed or stalled (and was killed for it) is lost.

Nothing is executed and nothing is guessed: an unknown key, a value of the wrong type or out of range, a
camera without a name or URI, or two cameras with one name is an :class:`~nightvision.errors.InputError` of one
line naming the file, the camera and the key (the CLI exits with 2). Whether a camera's URI opens is not a
configuration error: a camera that cannot be opened is reported as down in ``/health`` while the others run.
"""

from __future__ import annotations

import difflib
import importlib.util
import math
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from nightvision.enhancer import DEFAULT_MODEL
from nightvision.errors import InputError, ModelNotFoundError
from nightvision.io.outputs import same_file
from nightvision.stream.exposure import DEFAULT_TARGET

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

__all__ = ["CameraConfig", "ServeConfig", "load_config", "parse_config", "with_overrides"]

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
BACKENDS = ("auto", "onnxruntime", "torch", "tensorrt")
POLICIES = ("latest", "lossless")


@dataclass(frozen=True)
class CameraConfig:
    """One camera: where its frames come from, how they are enhanced, and where else they go.

    See the module docstring for each field. ``outputs`` are templates (``{name}``, ``{start}``), local paths
    already made absolute.
    """

    name: str
    uri: str = field(repr=False)  # it may hold a password
    model: str = DEFAULT_MODEL
    backend: str = "auto"
    threads: int = 0
    denoise: bool = False
    exposure: float | None = DEFAULT_TARGET  # "auto", as the CLI's --exposure
    policy: str = "latest"
    smooth: bool = False
    hud: bool = False
    size: str = ""
    fps: float = 0.0
    cpus: float = 1.0
    gpus: float = 0.0
    outputs: tuple[str, ...] = ()

    @property
    def onnx_threads(self) -> int:
        """ONNX Runtime threads: ``threads``, or the camera's CPUs rounded up (at least 1)."""
        return self.threads or max(1, math.ceil(self.cpus))


@dataclass(frozen=True)
class ServeConfig:
    """A whole ``serve`` configuration (see the module docstring); ``max_restarts`` None: never give up."""

    path: Path
    cameras: tuple[CameraConfig, ...]
    host: str = "127.0.0.1"
    port: int = 8080
    address: str | None = None
    stall_seconds: float = 10.0
    start_timeout: float = 60.0
    restart_delay: float = 1.0
    restart_delay_max: float = 30.0
    max_restarts: int | None = None
    jpeg_quality: int = 80
    overwrite: bool = False


# --- value checks: each returns the value or raises ValueError with what was expected ------------------------
def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("must be true or false")
    return v


def _number(lo: float, hi: float, *, lo_open: bool = False) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError("must be a number")
        if (v <= lo if lo_open else v < lo) or v > hi:
            left = f"above {lo:g}" if lo_open else f"at least {lo:g}"
            raise ValueError(f"must be {left} and at most {hi:g}")
        return float(v)

    return check


def _integer(lo: int, hi: int) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError("must be a whole number")
        if not lo <= v <= hi:
            raise ValueError(f"must be in {lo}-{hi}")
        return v

    return check


def _string(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("must be a string")
    return v


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return str(v)

    return check


def _exposure(v: Any) -> float | None:
    """``false``/``"off"``, ``"auto"`` (the default target of ``--exposure auto``) or a mean luma 20-235."""
    if v is False or v == "off":
        return None
    if v == "auto":
        return DEFAULT_TARGET
    if v is True:
        raise ValueError('must be false, "auto" or a mean luma (20-235) to aim at, e.g. 110')
    try:
        return _number(20, 235)(v)
    except ValueError:
        raise ValueError('must be false, "auto" or a mean luma (20-235) to aim at, e.g. 110') from None


def _size(v: Any) -> str:
    from nightvision.io.sizes import parse_size

    text = _string(v)
    if text:
        try:
            parse_size(text)
        except InputError as err:
            raise ValueError(str(err)) from None
    return text


def _shares_a_curve(model: str) -> bool:
    """Whether ``model``'s fast path estimates one curve map for the frame (what ``smooth`` smooths)."""
    from nightvision.specs import get_spec

    return bool(get_spec(model).estimator_onnx)


def _model(v: Any) -> str:
    from nightvision.specs import get_spec

    text = _string(v)
    try:
        return get_spec(text).name
    except ModelNotFoundError as err:
        raise _Said(str(err)) from None


def _uri(v: Any) -> str:
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return str(v)  # a camera index, as `nightvision run 0` takes it
    return _string(v)


def _outputs(v: Any) -> tuple[str, ...]:
    if isinstance(v, str) or not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
        raise ValueError('must be a list of strings, e.g. ["recordings/{name}-{start}.mp4"]')
    return tuple(v)


_SERVE: dict[str, Callable[[Any], Any]] = {
    "host": _string,
    "port": _integer(0, 65535),
    "address": _string,
    "cpus_per_camera": _number(0, 1024, lo_open=True),
    "gpus_per_camera": _number(0, 64),
    "stall_seconds": _number(0.5, 86_400),
    "start_timeout": _number(1, 86_400),
    "restart_delay": _number(0, 3600),
    "restart_delay_max": _number(0, 86_400),
    "max_restarts": _integer(-1, 1_000_000_000),
    "jpeg_quality": _integer(1, 100),
    "overwrite": _bool,
}

_CAMERA: dict[str, Callable[[Any], Any]] = {
    "name": _string,
    "uri": _uri,
    "model": _model,
    "backend": _choice(BACKENDS),
    "threads": _integer(0, 1024),
    "denoise": _bool,
    "exposure": _exposure,
    "policy": _choice(POLICIES),
    "smooth": _bool,
    "hud": _bool,
    "size": _size,
    "fps": _number(0, 1000),
    "cpus": _number(0, 1024, lo_open=True),
    "gpus": _number(0, 64),
    "outputs": _outputs,
}
_DEFAULTS = {k: v for k, v in _CAMERA.items() if k not in ("name", "uri")}
_TOP = ("serve", "defaults", "camera")


def _check_keys(where: str, table: Any, known: Mapping[str, object]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise InputError(f"{where} must be a table of key = value, got {_show(table)}")
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InputError(f"{where}: unknown key {key!r}{hint} (known: {', '.join(known)})")
    return table


class _Said(ValueError):
    """A check's complete message (it already shows the value)."""


def _show(value: Any) -> str:
    """A value as the config file spells it (TOML's true/false, strings in double quotes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "a table"
    return repr(value)


def _checked(where: str, table: Mapping[str, Any], checks: Mapping[str, Callable[[Any], Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        try:
            out[key] = checks[key](value)
        except _Said as err:
            raise InputError(f"{where}: {key}: {err}") from None
        except ValueError as err:
            raise InputError(f"{where}: {key} {err}, got {_show(value)}") from None
    return out


def _sink_check(uri: str) -> str | None:
    """Why ``uri`` cannot be a serve output, or None."""
    from nightvision.io.video import is_video

    scheme = urllib.parse.urlsplit(uri).scheme.lower() if "://" in uri else ""
    if scheme in ("null", "http", "mjpeg"):
        if scheme != "null":
            try:
                urllib.parse.urlsplit(uri).port  # noqa: B018 - raises on a bad port
            except ValueError as err:
                return f"bad address: {err}"
        return None
    if scheme and scheme != "file":
        return "not an output a server can write (video files, http://HOST:PORT/ or null://)"
    if not is_video(Path(uri.removeprefix("file://"))):
        return "a camera's outputs are video files (.mp4, .mkv, ...), http://HOST:PORT/ or null://"
    return None


def _expand(template: str, name: str, start: str) -> str:
    return template.replace("{name}", name).replace("{start}", start)


def _resolve_outputs(where: str, outputs: tuple[str, ...], base: Path) -> tuple[str, ...]:
    resolved = []
    for uri in outputs:
        leftover = re.sub(r"\{(name|start)\}", "", uri)
        if "{" in leftover or "}" in leftover:
            raise InputError(f"{where}: output {uri!r} has an unknown placeholder (known: {{name}}, {{start}})")
        why = _sink_check(_expand(uri, "x", "x"))
        if why:
            raise InputError(f"{where}: output {uri!r}: {why}")
        if "://" in uri and not uri.startswith("file://"):
            resolved.append(uri)
        else:
            path = Path(uri.removeprefix("file://")).expanduser()
            resolved.append(str(path if path.is_absolute() else base / path))
    return tuple(resolved)


def parse_config(data: Mapping[str, Any], path: str | Path = "<config>") -> ServeConfig:
    """Validate a loaded configuration (the TOML/YAML tables as dicts) into a :class:`ServeConfig`.

    Raises:
        InputError: one line naming ``path``, the camera and the key for anything unknown, mistyped,
            out of range or given twice.
    """
    path = Path(path)
    src = str(path)
    top = _check_keys(src, data, dict.fromkeys(_TOP))
    serve = _checked(f"{src}: [serve]", _check_keys(f"{src}: [serve]", top.get("serve", {}), _SERVE), _SERVE)
    defaults = _checked(
        f"{src}: [defaults]", _check_keys(f"{src}: [defaults]", top.get("defaults", {}), _DEFAULTS), _DEFAULTS
    )
    if "cpus_per_camera" in serve:
        defaults.setdefault("cpus", serve["cpus_per_camera"])
    if "gpus_per_camera" in serve:
        defaults.setdefault("gpus", serve["gpus_per_camera"])
    raw_cameras = top.get("camera")
    if raw_cameras is None:
        raise InputError(f'{src}: no camera; add one as [[camera]] with name = "..." and uri = "..."')
    if not isinstance(raw_cameras, list) or not all(isinstance(c, dict) for c in raw_cameras):
        raise InputError(f"{src}: write each camera as a [[camera]] block (two brackets), not [camera]")
    base = path.parent.resolve() if path.name != "<config>" else Path.cwd()
    cameras: list[CameraConfig] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_cameras, 1):
        label = f"camera {i}" + (f" ({raw['name']!r})" if isinstance(raw.get("name"), str) else "")
        where = f"{src}: {label}"
        _check_keys(where, raw, _CAMERA)
        values = {**defaults, **_checked(where, raw, _CAMERA)}
        for key in ("name", "uri"):
            if not values.get(key):
                raise InputError(f"{where}: {key} is missing (each [[camera]] needs a name and a uri)")
        name = values["name"]
        if not NAME.fullmatch(name):
            raise InputError(
                f"{where}: name must be 1-64 letters, digits, '-', '_' or '.' (it names the URLs), got {name!r}"
            )
        if name in seen:
            raise InputError(f"{src}: duplicate camera name {name!r} (cameras {seen[name]} and {i}); names are unique")
        seen[name] = i
        if values.get("smooth") and not _shares_a_curve(values.get("model", DEFAULT_MODEL)):
            raise InputError(
                f"{where}: smooth = true needs a model that shares one curve map over the frame (zero-dce++), "
                f"not {values.get('model', DEFAULT_MODEL)}"
            )
        uri = values["uri"].strip()
        if not uri:
            raise InputError(f"{where}: uri is empty")
        if uri.lower().startswith("synthetic://"):
            from nightvision.stream.sources import make_source

            try:
                make_source(uri)  # its parameters are checked here; nothing is opened
            except InputError as err:
                raise InputError(f"{where}: {err}") from None
        values["uri"] = uri
        values["outputs"] = _resolve_outputs(where, tuple(values.get("outputs", ())), base)
        _refuse_own_source(where, uri, values["outputs"], name, base)
        cameras.append(CameraConfig(**values))
    _check_shared_outputs(src, cameras)
    address = serve.get("address") or None
    max_restarts = serve.get("max_restarts", -1)
    known = {f.name for f in fields(ServeConfig)}
    config = ServeConfig(
        path=path,
        cameras=tuple(cameras),
        address=address,
        max_restarts=None if max_restarts < 0 else max_restarts,
        **{k: v for k, v in serve.items() if k in known and k not in ("address", "max_restarts")},
    )
    if config.restart_delay_max < config.restart_delay:
        raise InputError(
            f"{src}: [serve] restart_delay_max ({config.restart_delay_max:g}) is below restart_delay "
            f"({config.restart_delay:g})"
        )
    if not config.overwrite:
        _refuse_existing(src, cameras)
    _check_serve_port(config)
    return config


def _refuse_own_source(where: str, uri: str, outputs: tuple[str, ...], name: str, base: Path) -> None:
    """A camera that records into the file it reads would replace it (with ``overwrite``): refused, whatever
    ``overwrite`` says. The file is looked for where the worker opens it (the current folder) and beside the
    configuration."""
    if "://" in uri and not uri.startswith("file://"):
        return
    local = Path(uri.removeprefix("file://")).expanduser()
    sources = {local.resolve(), (local if local.is_absolute() else base / local).resolve()}
    for out in outputs:
        if "://" in out and not out.startswith("file://"):
            continue
        target = Path(_expand(out, name, "")).resolve()
        if any(same_file(target, src) for src in sources):
            raise InputError(f"{where}: output {out!r} is the camera's own source; an input is never overwritten")


def _check_serve_port(config: ServeConfig) -> None:
    """A camera's MJPEG output on the serve port itself can never open (it used to restart forever)."""
    if not config.port:
        return
    for cam in config.cameras:
        for uri in cam.outputs:
            parts = urllib.parse.urlsplit(uri)
            if parts.scheme.lower() in ("http", "mjpeg") and parts.port == config.port:
                raise InputError(
                    f"{config.path}: camera {cam.name!r} outputs {uri}, on the serve port {config.port} itself; "
                    "give that output another port (the serve port already shows every camera at /NAME)"
                )


def _check_shared_outputs(src: str, cameras: list[CameraConfig]) -> None:
    owner: dict[str, str] = {}
    for cam in cameras:
        for uri in cam.outputs:
            key = _expand(uri, cam.name, "")
            if key.startswith("null://"):
                continue
            if key in owner:
                raise InputError(
                    f"{src}: cameras {owner[key]!r} and {cam.name!r} both write {_expand(uri, cam.name, '{start}')}; "
                    "put {name} in the output"
                )
            owner[key] = cam.name


def _refuse_existing(src: str, cameras: list[CameraConfig]) -> None:
    for cam in cameras:
        for uri in cam.outputs:
            if "://" in uri or "{start}" in uri:
                continue
            path = Path(_expand(uri, cam.name, ""))
            if path.exists():
                raise InputError(
                    f"{src}: camera {cam.name!r}: output {path} already exists; set overwrite = true in [serve] "
                    "or put {start} in its name"
                )


def load_config(path: str | Path) -> ServeConfig:
    """Read and validate a TOML (or, with PyYAML installed, ``.yaml``/``.yml``) serve configuration.

    Raises:
        InputError: the file is missing or unreadable, not valid TOML/YAML, or not a valid configuration
            (see :func:`parse_config`); always one line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such config file: {path}" if not path.exists() else f"{path} is not a file")
    try:
        text = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from err
    if path.suffix.lower() in (".yaml", ".yml"):
        if importlib.util.find_spec("yaml") is None:
            raise InputError(f"{path}: YAML configs need PyYAML (pip install pyyaml); or write it as TOML")
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise InputError(f"{path}: not valid YAML: {problem}{at}") from None
        if data is None:
            data = {}
    else:
        try:
            data = tomllib.loads(text.decode("utf-8"))
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a text file (expected TOML)") from None
        except tomllib.TOMLDecodeError as err:
            raise InputError(f"{path}: not valid TOML: {err}") from None
    return parse_config(data, path)


def with_overrides(config: ServeConfig, **changes: Any) -> ServeConfig:
    """``config`` with the non-None ``changes`` applied (command-line options over the file)."""
    changed = replace(config, **{k: v for k, v in changes.items() if v is not None})
    _check_serve_port(changed)
    return changed
