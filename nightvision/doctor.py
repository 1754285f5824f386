"""``nightvision doctor``: what a bug report needs, and what nightvision will use on this machine.

:func:`diagnose` gathers it as a plain dictionary (``--json`` prints that); :func:`format_report` makes the
text. Every probe is guarded: a missing or broken library is reported as such, never raised, so the command
works on a half-installed machine, which is when it is needed most. Nothing here loads a model.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["diagnose", "format_report"]

# Encoders worth knowing about: software H.264/HEVC and the hardware ones (NVIDIA, Intel/AMD VA-API,
# Intel QSV, V4L2 M2M on Jetson-class and Raspberry Pi boards).
_ENCODERS = (
    "libx264",
    "libx265",
    "h264_nvenc",
    "hevc_nvenc",
    "h264_vaapi",
    "hevc_vaapi",
    "h264_qsv",
    "hevc_qsv",
    "h264_v4l2m2m",
    "hevc_v4l2m2m",
)
_DECODERS = ("h264", "hevc", "h264_cuvid", "hevc_cuvid")


def _version(module: str) -> str | None:
    """The module's ``__version__`` when it imports, else ``None`` (absent or broken)."""
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return str(getattr(importlib.import_module(module), "__version__", "unknown version"))
    except Exception as err:  # a broken install is worth reporting, not raising
        return f"broken ({type(err).__name__}: {err})"


def _denoiser_kernels() -> str:
    """Which per-pixel steps the temporal denoiser runs: ``"fused"`` (numba's kernels, checked against the
    OpenCV passes on this machine) or ``"opencv"``, with why when numba is installed but not used."""
    from nightvision.stream.denoise import fused_kernels
    from nightvision.stream.denoise_kernels import failure

    if fused_kernels() is not None:
        return "fused"
    return f"opencv ({failure()})" if failure() else "opencv"


_TENSORRT_STUBS = "type stubs only, not the TensorRT library (JetPack or pip install tensorrt provides it)"


def _tensorrt() -> str | None:
    """TensorRT's version, ``None`` without the library (as for every other package: the JSON says "installed"
    by a version only), also when only the ``tensorrt-stubs`` package (type hints) is there
    (:func:`_tensorrt_stubs_only`)."""
    return None if _tensorrt_stubs_only() else _version("tensorrt")


def _tensorrt_stubs_only() -> bool:
    """Whether ``tensorrt`` is the ``tensorrt-stubs`` package, told apart from the library without importing it
    (its folder is a namespace package, which, once imported, breaks ``inspect`` and with it torch.onnx's
    exporter for the rest of the process)."""
    spec = importlib.util.find_spec("tensorrt") if "tensorrt" not in sys.modules else None
    if spec is not None and spec.origin is None:
        return True
    return _version("tensorrt") == "unknown version"


def _opencv() -> dict[str, Any]:
    try:
        import cv2
    except Exception as err:
        return {"version": None, "error": str(err)}
    info = cv2.getBuildInformation()

    def flag(name: str) -> str:
        m = re.search(rf"^\s*{name}:\s*(.+)$", info, re.MULTILINE)
        return m.group(1).strip() if m else "unknown"

    return {
        "version": cv2.__version__,
        "ffmpeg": flag("FFMPEG"),
        "gstreamer": flag("GStreamer"),
        "cuda": "YES" if re.search(r"^\s*NVIDIA CUDA:\s*YES", info, re.MULTILINE) else "NO",
        "gui": flag("GUI"),
    }


def _pyav() -> dict[str, Any]:
    try:
        import av
    except Exception as err:
        return {"version": None, "error": str(err)}
    encoders, decoders = [], []
    for name in _ENCODERS:
        try:
            av.codec.Codec(name, "w")
            encoders.append(name)
        except Exception:
            pass
    for name in _DECODERS:
        try:
            av.codec.Codec(name, "r")
            decoders.append(name)
        except Exception:
            pass
    ffmpeg = getattr(av, "ffmpeg_version_info", None)
    return {
        "version": av.__version__,
        "ffmpeg": ffmpeg if isinstance(ffmpeg, str) else None,
        "encoders": encoders,
        "decoders": decoders,
    }


def _onnxruntime() -> dict[str, Any]:
    try:
        import onnxruntime as ort
    except Exception as err:
        return {"version": None, "error": str(err)}
    return {"version": ort.__version__, "providers": list(ort.get_available_providers())}


def _torch() -> dict[str, Any]:
    if importlib.util.find_spec("torch") is None:
        return {"version": None}
    try:
        import torch
    except Exception as err:
        return {"version": f"broken ({err})"}
    cuda = bool(torch.cuda.is_available())
    return {
        "version": torch.__version__,
        "cuda_build": torch.version.cuda,
        "cuda_available": cuda,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
    }


def _no_gpu_found() -> str:
    """What "no GPU" rests on: nvidia-smi's answer, or its absence (a Jetson has no nvidia-smi; torch or
    TensorRT see its GPU)."""
    if shutil.which("nvidia-smi") is None:
        return "none seen (no nvidia-smi here; a Jetson has none: see torch and tensorrt above)"
    return "none found (nvidia-smi)"


def _nvidia_smi() -> list[str]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def _cameras() -> list[str]:
    return sorted(str(p) for p in Path("/dev").glob("video*")) if Path("/dev").is_dir() else []


def _tool(name: str) -> str | None:
    return shutil.which(name)


def _ffmpeg_filters(exe: str | None) -> list[str]:
    """The denoise filters of the ffmpeg binary (Debian's GPL build has them; PyAV's bundled one does not)."""
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "-hide_banner", "-filters"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    wanted = ("hqdn3d", "atadenoise", "nlmeans")
    return [w for w in wanted if re.search(rf"\s{w}\s", out.stdout)]


def _backend_choice() -> dict[str, str]:
    try:
        from nightvision.backends import resolve_backend
        from nightvision.enhancer import DEFAULT_MODEL
        from nightvision.specs import get_spec

        backend, why = resolve_backend("auto", get_spec(DEFAULT_MODEL))
        return {"model": DEFAULT_MODEL, "backend": backend, "why": why}
    except Exception as err:
        return {"model": "", "backend": "unavailable", "why": f"{type(err).__name__}: {err}"}


def _caches() -> dict[str, str]:
    try:
        from nightvision.cache import cache_root

        root = cache_root()
    except Exception as err:
        return {"root": f"unavailable ({err})"}
    found = {"root": str(root)}
    if root.exists() and not root.is_dir():  # (every cache write would fail: say it here)
        found["root"] = f"{root} is a file, not a folder: set NIGHTVISION_CACHE to a folder"
    if root.is_dir():
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            size = sum(f.stat().st_size for f in sub.rglob("*") if f.is_file())
            found[sub.name] = f"{size / 2**20:.1f} MiB"
    return found


def diagnose() -> dict[str, Any]:
    """Everything ``nightvision doctor`` reports, as JSON-serialisable data."""
    from nightvision import __version__

    ffmpeg = _tool("ffmpeg")
    return {
        "nightvision": {"version": __version__, "path": str(Path(__file__).resolve().parent)},
        "python": {"version": sys.version.split()[0], "executable": sys.executable},
        "platform": {"system": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count()},
        "numpy": _version("numpy"),
        "numba": _version("numba"),
        "denoiser_kernels": _denoiser_kernels(),
        "opencv": _opencv(),
        "pyav": _pyav(),
        "onnxruntime": _onnxruntime(),
        "torch": _torch(),
        "tensorrt": _tensorrt(),
        "tensorrt_stubs_only": _tensorrt_stubs_only(),
        "pycuda": _version("pycuda"),
        "ray": _version("ray"),
        "gpus": _nvidia_smi(),
        "cameras": _cameras(),
        "tools": {
            "ffmpeg": ffmpeg,
            "ffmpeg_denoise_filters": _ffmpeg_filters(ffmpeg),
            "gst-launch-1.0": _tool("gst-launch-1.0"),
        },
        "auto_backend": _backend_choice(),
        "caches": _caches(),
    }


def _why(kernels: str) -> str:
    """The reason in ``"opencv (reason)"`` (:func:`_denoiser_kernels`)."""
    return kernels.removeprefix("opencv").strip().removeprefix("(").removesuffix(")") or "reason unknown"


def _yes(value: object) -> str:
    return "not installed" if value is None else str(value)


def format_report(d: dict[str, Any]) -> str:
    """The human-readable report of :func:`diagnose`'s data."""
    cv, av_, ort, torch = d["opencv"], d["pyav"], d["onnxruntime"], d["torch"]
    lines = [
        f"nightvision   {d['nightvision']['version']} ({d['nightvision']['path']})",
        f"python        {d['python']['version']} ({d['python']['executable']})",
        f"platform      {d['platform']['system']}, {d['platform']['machine']}, {d['platform']['cpus']} CPUs",
        f"numpy         {_yes(d['numpy'])}",
        "numba         "
        + (
            f"{d['numba']} (the denoiser's fused kernels)"
            if d["denoiser_kernels"] == "fused"
            else f"{d['numba']}, but the denoiser runs its OpenCV passes ({_why(d['denoiser_kernels'])})"
            if d.get("numba")
            else 'not installed (the denoiser runs slower OpenCV passes: pip install "nightvision[fast]")'
        ),
    ]
    if cv.get("version"):
        lines.append(
            f"opencv        {cv['version']} (FFmpeg {cv['ffmpeg']}; GStreamer {cv['gstreamer']}; CUDA {cv['cuda']})"
        )
    else:
        lines.append(f"opencv        not usable: {cv.get('error')}")
    if av_.get("version"):
        lines.append(f"pyav          {av_['version']} (FFmpeg {av_.get('ffmpeg') or 'unknown'})")
        encoders = ", ".join(av_["encoders"]) or "none of " + ", ".join(_ENCODERS)
        lines.append(f"  encoders    {encoders} (built in; hardware ones also need their device)")
        lines.append(f"  decoders    {', '.join(av_['decoders']) or 'none'}")
    else:
        lines.append(f"pyav          not usable: {av_.get('error')}")
    if ort.get("version"):
        lines.append(f"onnxruntime   {ort['version']} (providers: {', '.join(ort['providers'])})")
    else:
        lines.append(f"onnxruntime   not usable: {ort.get('error')}")
    if torch.get("version"):
        cuda = f"CUDA {torch.get('cuda_build')}, " if torch.get("cuda_build") else "CPU build, "
        gpus = ", ".join(torch.get("gpus", [])) or "no GPU visible"
        lines.append(f"torch         {torch['version']} ({cuda}{gpus})")
    else:
        lines.append("torch         not installed (training, export and the PyTorch backend need it)")
    lines += [
        f"tensorrt      {_TENSORRT_STUBS if d['tensorrt_stubs_only'] else _yes(d['tensorrt'])}",
        f"pycuda        {_yes(d['pycuda'])}",
        f"ray           {_yes(d['ray'])}",
        f"GPUs          {'; '.join(d['gpus']) or _no_gpu_found()}",
        f"cameras       {', '.join(d['cameras']) or 'none found (/dev/video*)'}",
        f"ffmpeg        {_yes(d['tools']['ffmpeg'])}"
        + (f" (denoise filters: {', '.join(d['tools']['ffmpeg_denoise_filters'])})" if d["tools"]["ffmpeg"] else ""),
        f"gstreamer     {_yes(d['tools']['gst-launch-1.0'])}",
        f"auto backend  {d['auto_backend']['backend']} for {d['auto_backend']['model']}: {d['auto_backend']['why']}",
        "caches        " + "; ".join(f"{k} {v}" for k, v in d["caches"].items()),
    ]
    return "\n".join(lines)
