"""The plan file format and what a plan is valid for.

A plan file is ``MAGIC | header length (4 bytes, little-endian) | JSON header | serialized engine``. The
:class:`PlanHeader` records the model, the sha256 of the ONNX graph built and of the model's shipped graph it
derives from, the TensorRT version, the GPU name and compute capability, the precision, the optimisation
profile and the creation time. A plan runs only on the TensorRT and GPU it was built for
(:meth:`PlanHeader.mismatch`); :func:`import_tensorrt` and :func:`gpu_identity` say what is running here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import struct
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType

from nightvision.errors import EngineError, InputError, SetupError
from nightvision.io.atomic import atomic_path
from nightvision.io.sizes import format_size
from nightvision.specs import sha256_of

__all__ = [
    "MAGIC",
    "SUPPORTED_MAJOR",
    "PlanHeader",
    "Profile",
    "describe_plan",
    "gpu_identity",
    "import_tensorrt",
    "read_plan",
    "write_plan",
]

MAGIC = b"NVPLAN\x01\n"
SUPPORTED_MAJOR = (10, 11)


def import_tensorrt() -> ModuleType:
    """The real ``tensorrt`` module, or a clear error (``tensorrt-stubs`` alone is not TensorRT).

    Tests put a fake module in ``sys.modules["tensorrt"]``; the functions of this package import it by name,
    so that mypy checks every call against ``tensorrt-stubs``.
    """
    if "tensorrt" not in sys.modules:
        spec = importlib.util.find_spec("tensorrt")
        if spec is None:
            raise SetupError("TensorRT is not installed (pip install tensorrt, or JetPack on a Jetson)")
        if spec.origin is None:  # a namespace: tensorrt-stubs' folder alone. Not imported: a namespace module in
            # sys.modules breaks inspect (and with it torch.onnx's exporter) for the rest of the process
            raise SetupError("the installed 'tensorrt' is only type stubs; install the TensorRT runtime")
    try:
        import tensorrt as trt
    except ImportError as err:
        raise SetupError("TensorRT is not installed (pip install tensorrt, or JetPack on a Jetson)") from err
    if not hasattr(trt, "Builder"):
        raise SetupError("the installed 'tensorrt' is only type stubs; install the TensorRT runtime")
    major = int(str(trt.__version__).split(".")[0])
    if major not in SUPPORTED_MAJOR:
        raise SetupError(f"TensorRT {trt.__version__} is not supported (use 10.x or 11.x)")
    return trt


def gpu_identity() -> tuple[str, str]:
    """Name and compute capability (``"9.0"``) of GPU 0, through torch or pycuda."""
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return torch.cuda.get_device_name(0), f"{major}.{minor}"
    except ImportError:
        pass
    try:
        import pycuda.driver as cuda

        cuda.init()
        dev = cuda.Device(0)
        major, minor = dev.compute_capability()
        return str(dev.name()), f"{major}.{minor}"
    except ImportError as err:
        raise EngineError("no CUDA device found (neither torch with CUDA nor pycuda is installed)") from err


@dataclass(frozen=True)
class Profile:
    """One optimisation profile over height and width (batch 1): ``min <= opt <= max``, each ``(H, W)``
    (:func:`nightvision.io.sizes.parse_size` turns the CLI's ``WIDTHxHEIGHT`` or ``720p`` into that)."""

    min: tuple[int, int] = (64, 64)
    opt: tuple[int, int] = (720, 1280)
    max: tuple[int, int] = (1080, 1920)

    def __post_init__(self) -> None:
        if not all(self.min[i] <= self.opt[i] <= self.max[i] for i in (0, 1)) or min(self.min) < 1:
            raise InputError(f"profile needs 1 <= min <= opt <= max per side, got {self.describe()}")

    def describe(self) -> str:
        """``"64x64 / 1280x720 / 1920x1080"`` (min / opt / max, written WIDTHxHEIGHT as everywhere for users)."""
        return " / ".join(format_size(h, w) for h, w in (self.min, self.opt, self.max))

    def contains(self, height: int, width: int) -> bool:
        """Whether an input of ``height`` × ``width`` pixels fits the profile."""
        return self.min[0] <= height <= self.max[0] and self.min[1] <= width <= self.max[1]

    @staticmethod
    def parse(text: str) -> tuple[int, int]:
        """``"720x1280"`` (HEIGHTxWIDTH, the order of the tuples) → ``(720, 1280)``; for Python callers (the
        CLI reads sizes with :func:`nightvision.io.sizes.parse_size`)."""
        h, sep, w = text.lower().partition("x")
        if not (sep and h.isdigit() and w.isdigit()):
            raise InputError(f"expected HEIGHTxWIDTH, got {text!r}")
        return int(h), int(w)


@dataclass(frozen=True)
class PlanHeader:
    """What a plan was built from and for."""

    model: str
    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    profile: Profile
    version_compatible: bool = False
    source_sha256: str = ""  # the model's shipped fp32 graph the built one derives from (fp16 plans)
    created: str = field(default="", compare=False)

    def key(self) -> str:
        """Cache key: every field that makes a plan valid or not (not the creation time)."""
        fields = asdict(self)
        fields.pop("created")
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @staticmethod
    def from_json(data: bytes) -> PlanHeader:
        d = json.loads(data)
        p = d.pop("profile")
        prof = Profile((p["min"][0], p["min"][1]), (p["opt"][0], p["opt"][1]), (p["max"][0], p["max"][1]))
        return PlanHeader(profile=prof, **d)

    def mismatch(self, tensorrt_version: str, gpu_name: str, compute_capability: str) -> str:
        """Why this plan cannot run here ('' when it can)."""
        if self.tensorrt_version != tensorrt_version and not self.version_compatible:
            return f"built with TensorRT {self.tensorrt_version}, running {tensorrt_version}"
        if self.gpu_name != gpu_name or self.compute_capability != compute_capability:
            return (
                f"built for {self.gpu_name} (sm {self.compute_capability}), "
                f"running on {gpu_name} (sm {compute_capability})"
            )
        return ""


def describe_plan(
    onnx_path: str | Path,
    *,
    model: str,
    precision: str,
    profile: Profile,
    version_compatible: bool,
    source_sha256: str | None,
    tensorrt_version: str,
    gpu: Callable[[], tuple[str, str]],
) -> PlanHeader:
    """The header a plan built now, here, from this graph would carry (without its creation time).

    ``source_sha256``: the sha256 of the model's shipped graph when ``onnx_path`` derives from it (an fp16
    copy); default: the graph's own.
    """
    if not Path(onnx_path).is_file():
        raise InputError(f"no such ONNX file: {onnx_path}")
    gpu_name, cc = gpu()
    onnx_sha256 = sha256_of(Path(onnx_path))
    return PlanHeader(
        model=model,
        onnx_sha256=onnx_sha256,
        tensorrt_version=tensorrt_version,
        gpu_name=gpu_name,
        compute_capability=cc,
        precision=precision,
        profile=profile,
        version_compatible=version_compatible,
        source_sha256=source_sha256 or onnx_sha256,
    )


def write_plan(path: str | Path, header: PlanHeader, engine: bytes) -> Path:
    """Write a plan file atomically."""
    head = header.to_json()
    with atomic_path(Path(path)) as tmp:
        tmp.write_bytes(MAGIC + struct.pack("<I", len(head)) + head + engine)
    return Path(path)


def read_plan(path: str | Path) -> tuple[PlanHeader, bytes]:
    """Read a plan file's header and engine bytes."""
    data = Path(path).read_bytes()
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise EngineError(f"{path} is not a nightvision plan (no header); rebuild it with `nightvision build`")
    (n,) = struct.unpack("<I", data[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    try:
        header = PlanHeader.from_json(data[start : start + n])
    except (ValueError, KeyError, TypeError) as err:
        raise EngineError(f"{path} has a damaged header: {err}") from err
    return header, data[start + n :]
