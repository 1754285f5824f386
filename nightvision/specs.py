"""What every registered model is, without importing torch.

A :class:`ModelSpec` is the small frozen config that preprocessing, export and every backend read instead of
repeating constants: input range and colour order, the multiple the input must be padded to, the shipped
weight files and their sha256. The PyTorch modules live in :mod:`nightvision.models`; this module is the
torch-free half of the registry, so the runtime can list and run models with only ONNX Runtime installed.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from nightvision.errors import InputError, ModelNotFoundError

__all__ = [
    "DEFAULT_MODEL",
    "WEIGHTS_DIR",
    "ModelSpec",
    "get_spec",
    "list_specs",
    "measured_scores",
    "sha256_of",
]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = "curve-denoise"
"""The model every command and the :class:`~nightvision.enhancer.Enhancer` use when none is named (the one
place it is named; :mod:`nightvision.enhancer` re-exports it): the best model that keeps real time on a CPU
(brightens and denoises in one pass; the measured figures are in ``nightvision models``)."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything outside the network that is needed to run a model.

    Attributes:
        name: registry name, e.g. ``"zero-dce++"``.
        summary: one line for ``nightvision models``.
        paper: citation of the paper the model re-implements.
        family: ``"curve"`` (pixel-wise curves, supports temporal smoothing) or ``"restoration"``.
        kwargs: constructor arguments of the shipped variant, as sorted ``(key, value)`` pairs.
        input_range: value range of the network input and output.
        colour_order: channel order of the network input and output.
        pad_multiple: height and width are padded (reflect) to a multiple of this outside the graph.
        min_side: and to at least this many pixels (models that look at a small copy of the frame need a few
            pixels of it: CurveDenoise brightens a 30×40 frame by half as much as a 128×128 one without).
        weights: file name of the trained state dict in :data:`WEIGHTS_DIR`, or ``None``.
        onnx: file name of the exported ONNX graph in :data:`WEIGHTS_DIR`, or ``None``.
        estimator_onnx: for models whose one curve map is shared by all iterations (Zero-DCE++): the graph
            of the curve estimator alone, which the CPU runtime runs on a downscaled copy before a table
            lookup (:mod:`nightvision.curves`).
        curve_iterations: iterations of the shared curve (with ``estimator_onnx``).
        coefficients_onnx: for CurveDenoise: the graph of its learnt part alone (pooled features of the 1/8 copy
            in, the two maps out), which the CPU runtime runs between two OpenCV passes over the frame
            (:mod:`nightvision.curve_denoise_fast`).
        curve_side: the fast path's default: pick the downscale factor per frame so that the estimator's copy
            has a shorter side of about this many pixels (constant cost at any resolution). 0: use the fixed
            ``downscale`` of ``kwargs``.
    """

    name: str
    summary: str
    paper: str
    family: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    input_range: tuple[float, float] = (0.0, 1.0)
    colour_order: str = "RGB"
    pad_multiple: int = 1
    min_side: int = 0
    weights: str | None = None
    onnx: str | None = None
    estimator_onnx: str | None = None
    curve_iterations: int = 0
    curve_side: int = 0
    coefficients_onnx: str | None = None

    @property
    def weights_path(self) -> Path | None:
        return WEIGHTS_DIR / self.weights if self.weights else None

    @property
    def onnx_path(self) -> Path | None:
        return WEIGHTS_DIR / self.onnx if self.onnx else None

    @property
    def estimator_path(self) -> Path | None:
        return WEIGHTS_DIR / self.estimator_onnx if self.estimator_onnx else None

    @property
    def coefficients_path(self) -> Path | None:
        return WEIGHTS_DIR / self.coefficients_onnx if self.coefficients_onnx else None

    @property
    def downscale(self) -> int:
        """Default curve-estimation downscale factor (1 when the model has none)."""
        return int(dict(self.kwargs).get("downscale", 1))

    @property
    def has_weights(self) -> bool:
        return self.weights_path is not None and self.weights_path.is_file()

    @property
    def has_onnx(self) -> bool:
        return self.onnx_path is not None and self.onnx_path.is_file()

    def expected_sha256(self, filename: str) -> str | None:
        """The sha256 recorded in ``weights/MANIFEST.json`` for a shipped file, if any."""
        return _manifest().get(filename, {}).get("sha256")


_SPECS: dict[str, ModelSpec] = {}


def _register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _SPECS:
        raise ValueError(f"model {spec.name!r} is registered twice")
    _SPECS[spec.name] = spec
    return spec


_register(
    ModelSpec(
        name="zero-dce",
        summary="DCE-Net: 7 convs, 24 curve maps, 8 iterations (79,416 parameters)",
        paper="Guo et al., Zero-Reference Deep Curve Estimation for Low-Light Image Enhancement, CVPR 2020",
        family="curve",
        weights="zero-dce.pt",
        onnx="zero-dce.onnx",
    )
)
_register(
    ModelSpec(
        name="zero-dce++",
        summary="DCE++: depthwise-separable DCE-Net on a ~96-px copy, one shared curve map (10,561 parameters)",
        paper="Li, Guo and Loy, Learning to Enhance Low-Light Image via Zero-Reference Deep Curve "
        "Estimation, TPAMI 2021",
        family="curve",
        kwargs=(("downscale", 8),),
        weights="zero-dce++.pt",
        onnx="zero-dce++.onnx",
        estimator_onnx="zero-dce++.estimator.onnx",
        curve_iterations=8,
        curve_side=96,
    )
)


_register(
    ModelSpec(
        name="curve-denoise",
        summary="CurveDenoise: rational tone curve and luma-detail shrinkage predicted on a 1/8 copy, applied at "
        "full resolution; brightens and denoises in one pass (34,410 parameters)",
        paper="ours, after Gharbi et al., Deep Bilateral Learning for Real-Time Image Enhancement, SIGGRAPH 2017",
        family="restoration",
        pad_multiple=8,
        min_side=128,
        weights="curve-denoise.pt",
        onnx="curve-denoise.onnx",
        coefficients_onnx="curve-denoise.coefficients.onnx",
    )
)


_register(
    ModelSpec(
        name="nafnet-s",
        summary="NAFNet-S: width 16, 1 block per level, 1 middle block; trained on SICE pairs (1,137,203 parameters)",
        paper="Chen, Chu, Zhang and Sun, Simple Baselines for Image Restoration, ECCV 2022",
        family="restoration",
        pad_multiple=16,
        weights="nafnet-s.pt",
        onnx="nafnet-s.onnx",
    )
)
_register(
    ModelSpec(
        name="nafnet",
        summary="NAFNet with any width and block counts (architecture for training; no shipped weights)",
        paper="Chen, Chu, Zhang and Sun, Simple Baselines for Image Restoration, ECCV 2022",
        family="restoration",
        pad_multiple=16,
    )
)


_register(
    ModelSpec(
        name="mirnet-v2",
        summary="MIRNet-v2, low-light configuration: 80 features, 4 RRGs x 2 MRBs, 3 scales; trained on SICE pairs "
        "(5,354,264 parameters, weights stored in fp16)",
        paper="Zamir et al., Learning Enriched Features for Fast Image Restoration and Enhancement, TPAMI 2022",
        family="restoration",
        pad_multiple=4,
        weights="mirnet-v2.pt",
        onnx="mirnet-v2.onnx",
    )
)


_register(
    ModelSpec(
        name="retinexnet",
        summary="Retinex-Net: Decom-Net + Enhance-Net, R x adjusted I; trained on SICE pairs (444,613 parameters)",
        paper="Wei, Wang, Yang and Liu, Deep Retinex Decomposition for Low-Light Enhancement, BMVC 2018",
        family="restoration",
        pad_multiple=8,
        weights="retinexnet.pt",
        onnx="retinexnet.onnx",
    )
)


def measured_scores() -> dict[str, dict[str, float]]:
    """Each shipped model's measured figures (``weights/SCORES.json``, written by ``benchmarks/scorecard.py``
    from the evaluation results): ``sice_psnr``, ``sice_ssim``, ``video_psnr``, ``video_psnr_denoise``,
    ``phone_noise_ratio``, ``fps_720p``; empty when the file is absent."""
    path = WEIGHTS_DIR / "SCORES.json"
    if not path.is_file():
        return {}
    models: dict[str, dict[str, float]] = json.loads(path.read_text()).get("models", {})
    return models


def list_specs() -> list[ModelSpec]:
    """All registered models, in registration order."""
    return list(_SPECS.values())


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model; an unknown name raises with the closest matches, and anything but a
    string (``Enhancer(None)``, a path) an :class:`~nightvision.errors.InputError` saying what a name is."""
    if not isinstance(name, str):
        raise InputError(
            f"a model is named by a string such as {DEFAULT_MODEL!r} (known: {', '.join(_SPECS)}), got {name!r}"
        )
    try:
        return _SPECS[name]
    except KeyError:
        close = difflib.get_close_matches(name.lower(), list(_SPECS), n=3, cutoff=0.4)  # (names are lower-case)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        known = ", ".join(_SPECS)
        raise ModelNotFoundError(f"unknown model {name!r}{hint} (known: {known})") from None


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _manifest() -> dict[str, dict[str, Any]]:
    path = WEIGHTS_DIR / "MANIFEST.json"
    if not path.is_file():
        return {}
    data: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return data
