"""Score enhancement methods side by side: ours, classical baselines and the official reference models.

Paired data (a LOL-style folder, or exposure brackets whose test split :mod:`nightvision.evaluation.pairs` builds)
gets full-reference figures: PSNR and SSIM (:mod:`nightvision.evaluation.metrics`, which agree with scikit-image
within 1e-3). Unpaired folders get no-reference figures: mean luma (of all images, and of those darker than
:data:`DARK_INPUT`), clipped fraction, the noise ratio and colour cast of :mod:`nightvision.evaluation.metrics`
(median and mean), colourfulness (Hasler and Süsstrunk 2003) and the entropy of the luma histogram; no learnt no-
reference quality score (BRISQUE, NIQE) is computed, because none of the libraries that ship one run offline here
without downloading models.

Every method also gets its parameter count, GFLOPs at 1920×1080 and its CPU latency per image (median over
the images scored, in this process, one image at a time).

    nightvision eval --data ../shared/data/sice --brackets --references ../shared/reference-weights
    nightvision eval --data ../shared/data/unpaired/DICM

Our models run through the runtime (:class:`nightvision.Enhancer` on ONNX Runtime), as users run them.
Reference rows need torch (the ``train`` extra) and the official weights, which are never shipped.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from nightvision.errors import InputError
from nightvision.evaluation.complexity import complexity, conv_gflops
from nightvision.evaluation.metrics import clipped_fraction, colour_cast, mean_luma, noise_ratio, psnr, ssim
from nightvision.evaluation.pairs import build_pairs, list_images, lol_pairs
from nightvision.io.atomic import atomic_path
from nightvision.io.images import read_image

DARK_INPUT = 30.0
"""Inputs darker than this mean luma (0-255) get their own mean output luma in the unpaired table."""

__all__ = ["DARK_INPUT", "EvalResult", "Method", "classical_methods", "colourfulness", "evaluate", "luma_entropy"]

log = logging.getLogger(__name__)
Runner = Callable[[np.ndarray], np.ndarray]


@dataclass
class Method:
    """One row of the table: a name, what it is, and a function from a BGR uint8 image to one."""

    name: str
    kind: str  # "ours", "classical" or "reference"
    run: Runner
    params: int | None = None
    gflops_1080p: float | None = None


@dataclass
class EvalResult:
    paired: bool
    rows: list[dict[str, Any]]  # one per method: means and the method's figures
    per_image: list[dict[str, Any]] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (image, why): unreadable, left out

    def markdown(self) -> str:
        if self.paired:
            cols = ["method", "kind", "PSNR (dB)", "SSIM", "params", "GFLOPs @1080p", "CPU ms/image"]
            keys = ["method", "kind", "psnr", "ssim", "params", "gflops_1080p", "cpu_ms"]
        else:
            cols = ["method", "kind", "mean luma", f"luma, inputs < {DARK_INPUT:.0f}", "clipped %", "noise ratio",
                    "colour cast", "colourfulness", "entropy (bits)", "params", "GFLOPs @1080p",
                    "CPU ms/image"]  # fmt: skip
            keys = ["method", "kind", "luma", "luma_dark", "clipped_pct", "noise_ratio", "colour_cast",
                    "colourfulness", "entropy", "params", "gflops_1080p", "cpu_ms"]  # fmt: skip
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for row in self.rows:
            lines.append("| " + " | ".join(_fmt(k, row.get(k)) for k in keys) + " |")
        return "\n".join(lines) + "\n"


def _fmt(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if key == "params":
        return f"{int(value):,}"
    if key in ("psnr", "luma", "luma_dark", "cpu_ms", "colourfulness", "noise_ratio", "colour_cast"):
        return f"{value:.2f}" if key != "cpu_ms" else f"{value:.1f}"
    if key in ("ssim", "entropy", "clipped_pct"):
        return f"{value:.3f}"
    if key == "gflops_1080p":
        return f"{value:.2f}"
    return str(value)


# --- no-reference figures


def colourfulness(bgr: np.ndarray) -> float:
    """Hasler and Süsstrunk's colourfulness of a BGR uint8 image (0 for grey; ~20 moderate, ~60 very)."""
    b, g, r = (bgr[:, :, i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def luma_entropy(bgr: np.ndarray) -> float:
    """Shannon entropy (bits) of the 256-bin luma histogram; higher means the levels are better used."""
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
    hist = np.bincount(grey.ravel(), minlength=256).astype(np.float64)
    p = hist[hist > 0] / hist.sum()
    return float(-(p * np.log2(p)).sum())


# --- methods


def classical_methods() -> list[Method]:
    """The input itself, CLAHE on L of Lab, and a global gamma that maps the mean luma to 0.5."""
    clahe = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8))

    def identity(bgr: np.ndarray) -> np.ndarray:
        return bgr

    def clahe_lab(bgr: np.ndarray) -> np.ndarray:
        lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2LAB)
        lab[:, :, 0] = clahe.apply(np.ascontiguousarray(lab[:, :, 0]))
        return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)

    def auto_gamma(bgr: np.ndarray) -> np.ndarray:
        mean = min(max(mean_luma(bgr) / 255.0, 1e-3), 0.999)
        gamma = math.log(0.5) / math.log(mean)
        table = np.clip(((np.arange(256) / 255.0) ** gamma) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return cv2.LUT(bgr, table)

    return [
        Method("input", "classical", identity, 0, 0.0),
        Method("clahe", "classical", clahe_lab, 0, None),
        Method("auto-gamma", "classical", auto_gamma, 0, None),
    ]


def our_methods(names: list[str], threads: int = 0) -> list[Method]:
    """Our shipped models on ONNX Runtime, through :class:`nightvision.Enhancer`."""
    from nightvision.enhancer import Enhancer

    methods = []
    for name in names:
        enhancer = Enhancer(name, backend="onnxruntime", threads=threads)
        params, gflops = complexity(name)
        methods.append(Method(name, "ours", enhancer.enhance, params, gflops))
    return methods


def reference_networks(root: str | Path) -> dict[str, tuple[Any, Runner]]:
    """The official Zero-DCE, Zero-DCE++ (curve estimated at 1/12, the official test setting) and SCI
    (``medium``) weights under ``root``: ``name → (module, run)``, ``run`` a BGR uint8 → BGR uint8 function in
    eager PyTorch. Needs torch.

    Sets, for this process, PyTorch to flush denormal floats to zero (dark inputs drive the activations of the
    full-resolution Zero-DCE into denormals: 13.2 s a 448×256 frame here, 0.28 s flushed, the same output to 8
    bits)."""
    try:
        import torch
    except ImportError as err:
        raise InputError("reference models need torch: pip install 'nightvision[train]'") from err
    from nightvision.models.sci import load_reference as load_sci
    from nightvision.models.zero_dce import load_reference as load_dce

    torch.set_flush_denormal(True)
    root = Path(root)
    found = {
        "official zero-dce": root / "zero-dce" / "Epoch99.pth",
        "official zero-dce++": root / "zero-dce-pp" / "Epoch99.pth",
        "official sci (medium)": root / "sci" / "medium.pt",
    }
    missing = [str(p) for p in found.values() if not p.is_file()]
    if missing:
        raise InputError(f"reference weights not found: {', '.join(missing)}")
    nets = {
        "official zero-dce": load_dce(str(found["official zero-dce"]), plus_plus=False),
        "official zero-dce++": load_dce(str(found["official zero-dce++"]), plus_plus=True, downscale=12),
        "official sci (medium)": load_sci(found["official sci (medium)"]),
    }

    def runner(net: Any) -> Runner:
        def run(bgr: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1])).permute(2, 0, 1)[None].float() / 255.0
            with torch.no_grad():
                y = net(x)[0].permute(1, 2, 0).numpy()[:, :, ::-1]
            return np.ascontiguousarray(np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8))

        return run

    return {name: (net, runner(net)) for name, net in nets.items()}


def reference_methods(root: str | Path) -> list[Method]:
    """The official weights of :func:`reference_networks` as methods, with parameters and GFLOPs at 1080p."""
    methods = []
    for name, (net, run) in reference_networks(root).items():
        params = sum(p.numel() for p in net.parameters())
        curve = 4 * 8 * 3 * 1080 * 1920 / 1e9 if "zero-dce" in name else 0.0  # as for ours (complexity())
        methods.append(Method(name, "reference", run, params, conv_gflops(net, 1080, 1920) + curve))
    return methods


# --- evaluation


def find_inputs(
    data: str | Path, *, brackets: bool = False, output: str | Path | None = None
) -> tuple[list[Path], list[Path] | None]:
    """(inputs, targets or None): the test split of a bracket folder, a LOL folder, or an unpaired folder.
    ``output``: the folder the results go to, refused when it is ``data`` (its grid.png would be scored next
    time) and left out of the inputs when it lies inside."""
    root = Path(data)
    if root.is_file():
        raise InputError(f"--data takes a folder (LOL-style low/ and high/, exposure brackets or images), not {root}")
    if not root.is_dir():
        raise InputError(f"evaluation data folder not found: {root}")
    out = Path(output).resolve() if output is not None else None
    if out == root.resolve():
        raise InputError(f"-o {output} is the data folder: its grid.png would be scored next time; give another")
    if brackets:
        pairs = [p for p in build_pairs(root) if p.split == "test"]
        if not pairs:
            raise InputError(f"{root}: no test pairs found in these brackets")
        inputs, targets = [p.low for p in pairs], [p.high for p in pairs]
    elif (root / "low").is_dir() and (root / "high").is_dir():
        lol = lol_pairs(root)
        inputs, targets = [a for a, _ in lol], [b for _, b in lol]
    else:
        inputs, targets = list_images(root), []
    keep = [i for i, path in enumerate(inputs) if out is None or out not in path.resolve().parents]
    return [inputs[i] for i in keep], ([targets[i] for i in keep] if targets else None)


def _colour(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image[:, :, :3] if image.shape[2] == 4 else image


def evaluate(
    methods: list[Method],
    inputs: list[Path],
    targets: list[Path] | None,
    out_dir: str | Path,
    *,
    grid_rows: int = 4,
    grid_side: int = 192,
) -> EvalResult:
    """Run every method on every input; write ``per_image.csv``, ``summary.md``, ``summary.json`` and
    ``grid.png`` (``grid_rows`` images: input, each method, and the target when paired) to ``out_dir``."""
    if not methods:
        raise InputError("no methods to evaluate")
    out = Path(out_dir)
    paired = targets is not None
    per_image: list[dict[str, Any]] = []
    grid_picks = set(np.linspace(0, len(inputs) - 1, min(grid_rows, len(inputs))).round().astype(int).tolist())
    grid: dict[int, list[np.ndarray]] = {}
    tile_size: tuple[int, int] | None = None
    timings: dict[str, list[float]] = {m.name: [] for m in methods}
    skipped: list[tuple[Path, str]] = []
    for i, path in enumerate(inputs):
        try:  # an unreadable file is left out and listed, as a folder job of `enhance` does
            image = _colour(read_image(path))
            target = _colour(read_image(targets[i])) if targets is not None else None
        except InputError as err:
            log.warning("left out of the evaluation: %s", err)
            skipped.append((path, str(err)))
            continue
        if target is not None and target.shape != image.shape:
            raise InputError(f"{path}: input {image.shape[:2]} and target {target.shape[:2]} differ in size")
        tiles = [image]
        for method in methods:
            t0 = time.perf_counter()
            enhanced = method.run(image)
            timings[method.name].append(time.perf_counter() - t0)
            row: dict[str, Any] = {"image": str(path), "method": method.name}
            if target is not None:
                row.update(psnr=psnr(enhanced, target), ssim=ssim(enhanced, target))
            row.update(
                input_luma=mean_luma(image),
                luma=mean_luma(enhanced),
                clipped_pct=100 * clipped_fraction(enhanced),
                noise_ratio=noise_ratio(enhanced, image),
                colour_cast=colour_cast(enhanced),
                colourfulness=colourfulness(enhanced),
                entropy=luma_entropy(enhanced),
            )
            per_image.append(row)
            if method.name != "input":
                tiles.append(enhanced)
        if target is not None:
            tiles.append(target)
        if i in grid_picks:
            if tile_size is None:  # the first picked image sets the tiles' shape, its longer side grid_side
                scale = grid_side / max(image.shape[:2])
                tile_size = (round(image.shape[0] * scale), round(image.shape[1] * scale))
            grid[i] = [_tile(t, tile_size) for t in tiles]
    if len(skipped) == len(inputs):
        raise InputError(f"none of the {len(inputs)} images could be read (e.g. {skipped[0][1]})")
    rows = []
    for method in methods:
        mine = [r for r in per_image if r["method"] == method.name]
        row = {"method": method.name, "kind": method.kind, "params": method.params}
        row["gflops_1080p"] = method.gflops_1080p
        row["cpu_ms"] = 1000 * float(np.median(timings[method.name]))
        for key in ("psnr", "ssim", "luma", "clipped_pct", "colour_cast", "colourfulness", "entropy"):
            if mine and key in mine[0]:
                row[key] = float(np.mean([r[key] for r in mine]))
        finite = [r["noise_ratio"] for r in mine if math.isfinite(r["noise_ratio"])]
        row["noise_ratio"] = float(np.median(finite)) if finite else math.nan  # a median: flat images give ∞
        dark = [r["luma"] for r in mine if r["input_luma"] < DARK_INPUT]
        row["luma_dark"] = float(np.mean(dark)) if dark else math.nan
        rows.append(row)
    result = EvalResult(paired, rows, per_image, skipped=skipped)
    out.mkdir(parents=True, exist_ok=True)  # (only now: a refused run leaves no empty folder)
    result.paths = _save(result, methods, grid, out, paired)
    return result


def check_readable(inputs: list[Path]) -> None:
    """Refuse a set of which no image can be read, reading them only until one can (before models load)."""
    if not inputs:
        raise InputError("no images to evaluate")
    first_error = ""
    for path in inputs:
        try:
            read_image(path)
            return
        except InputError as err:
            first_error = first_error or str(err)
    raise InputError(f"none of the {len(inputs)} images could be read (e.g. {first_error})")


def _tile(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled to fit ``size`` (height, width), centred on black."""
    th, tw = size
    h, w = image.shape[:2]
    s = min(th / h, tw / w)
    small = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((th, tw, 3), np.uint8)
    y, x = (th - small.shape[0]) // 2, (tw - small.shape[1]) // 2
    canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
    return canvas


def _save(
    result: EvalResult, methods: list[Method], grid: dict[int, list[np.ndarray]], out: Path, paired: bool
) -> list[Path]:
    paths = [out / "per_image.csv", out / "summary.md", out / "summary.json", out / "grid.png"]
    with atomic_path(paths[0]) as tmp, open(tmp, "w", newline="") as f:
        keys = list(result.per_image[0]) if result.per_image else ["image", "method"]
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(result.per_image)
    with atomic_path(paths[1]) as tmp:
        tmp.write_text(result.markdown())
    with atomic_path(paths[2]) as tmp:
        tmp.write_text(json.dumps({"paired": paired, "rows": result.rows}, indent=2) + "\n")
    labels = ["input"] + [m.name for m in methods if m.name != "input"] + (["target"] if paired else [])
    side = next(iter(grid.values()))[0].shape[1] if grid else 192
    header = np.full((28, side * len(labels), 3), 255, np.uint8)
    for j, label in enumerate(labels):
        cv2.putText(header, label[:26], (j * side + 4, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    picture = np.vstack([header] + [np.hstack(tiles) for _, tiles in sorted(grid.items())])
    with atomic_path(paths[3]) as tmp:
        ok, data = cv2.imencode(".png", picture)
        if not ok:  # pragma: no cover - PNG encoding of a uint8 image does not fail
            raise InputError("could not encode the grid picture")
        tmp.write_bytes(data.tobytes())
    return paths
