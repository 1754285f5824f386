"""Recipes: the hyperparameters of each trainer, filled from a TOML file and then from ``--key value`` flags.

Nothing is executed: a recipe is data. An unknown key, a value of the wrong type or out of its range
(:data:`RANGES`, checked whenever a config is built) is a one-line :class:`~nightvision.errors.InputError`.

This module needs no torch: ``nightvision train --help`` lists every key of the four trainers
(:func:`help_text`) on a machine that only runs models. Each trainer reads its dataclass from here:

* :class:`CurveConfig` — :mod:`nightvision.training.zero_reference` (Zero-DCE, Zero-DCE++; no ground truth);
* :class:`SupervisedConfig` — :mod:`nightvision.training.supervised` (NAFNet, MIRNet-v2 on (low, high) pairs);
* :class:`RetinexConfig` — :mod:`nightvision.training.retinex` (Retinex-Net's two phases);
* :class:`CurveDenoiseConfig` — :mod:`nightvision.training.curve_denoise` (CurveDenoise on noisy pairs).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import json
import math
import sys
import textwrap
import tokenize
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from nightvision.errors import InputError
from nightvision.specs import DEFAULT_MODEL, ModelSpec, get_spec, list_specs

__all__ = [
    "FAMILY_TRAINERS",
    "MODEL_TRAINERS",
    "RANGES",
    "TRAINERS",
    "CurveConfig",
    "CurveDenoiseConfig",
    "Range",
    "RetinexConfig",
    "SupervisedConfig",
    "Trainer",
    "help_text",
    "load_config",
    "trainer_for",
]

C = TypeVar("C")


@dataclass
class CurveConfig:
    # --- data
    data: str = "../shared/data/sice"  # folder of (low-light and mixed-exposure) images, recursive
    crop: int = 256  # random square crops of this side
    val_every: int = 20  # every n-th image (in natural order) is held out for evaluation
    darken: float = 0.0  # fraction of training crops shown as a shorter exposure (down to darken_min of the light)
    darken_min: float = 0.05  # darkest exposure of a darkened crop, as a fraction of the light (log-uniform)
    grey: float = 0.0  # fraction of training crops made neutral grey (teaches: a grey input stays grey)
    workers: int = 1  # DataLoader worker processes
    init: str = ""  # start from this checkpoint's weights (fine-tuning); the optimiser starts afresh
    # --- model
    model: str = "zero-dce++"  # a registered curve model
    downscale: int = 0  # Zero-DCE++ only: curve-estimation downscale; 0 = the registered default
    # --- losses (weights of the official code; see nightvision.losses.ZeroReferenceLoss)
    w_smoothness: float = 1600.0  # illumination smoothness of the curve maps
    w_spatial: float = 1.0  # spatial consistency (4x4 regions, 4 neighbours)
    w_colour: float = 5.0  # colour constancy (grey world)
    w_exposure: float = 10.0  # exposure control (16x16 patches)
    w_neutral: float = 0.0  # ours: a grey input gives a grey output, per pixel (acts on grey crops; see grey)
    well_exposed: float = 0.6  # the exposure term's target level
    exposure_power: int = 2  # 2: the official code's squared exposure term; 1: the paper's |Y - E|
    spatial_signed: bool = True  # signed neighbour differences; False: the paper's |.| (allows inverted contrast)
    # --- optimiser: Adam
    lr: float = 1e-4  # learning rate (constant)
    weight_decay: float = 1e-4  # Adam's L2 weight decay
    grad_clip: float = 0.1  # gradient-norm clipping
    batch_size: int = 8  # crops per step
    epochs: int = 100  # passes over the training images
    max_steps: int = 0  # stop after this many steps in total (0 = no limit); handy on a CPU
    # --- run
    out_dir: str = "runs/zero-dce++"  # checkpoints (last.pt, best.pt, final.pt), log.jsonl, tb/
    seed: int = 1337  # torch's seed (initial weights, crops, shuffling)
    device: str = "auto"  # auto = cuda when available, else cpu
    threads: int = 0  # torch CPU threads (0 = torch's default)
    checkpoint_every: int = 200  # steps between mid-epoch checkpoints
    resume: bool = False  # continue from OUT_DIR/last.pt
    tensorboard: bool = True  # scalars in OUT_DIR/tb when tensorboard is installed

    def __post_init__(self) -> None:
        check(self)


@dataclass
class SupervisedConfig:
    # --- data
    data: str = "../shared/data/sice"  # exposure brackets, or a LOL-style folder (low/ and high/)
    patch: int = 128  # side of the random square training patches
    repeat: int = 8  # patches per pair per epoch
    max_input_level: float = 0.25  # bracket pairs: inputs darker than this mean luma (held-out pairs keep 0.25)
    identity_pairs: bool = False  # bracket pairs: also train each target as its own input (keep good exposures)
    grey: float = 0.0  # fraction of training patches with both images made neutral grey (greys stay grey)
    init: str = ""  # start from this checkpoint's weights (fine-tuning); the optimiser starts afresh
    # --- model
    model: str = "nafnet-s"  # a registered restoration model
    # --- losses: total = Σ weight × loss
    w_charbonnier: float = 1.0  # Charbonnier, eps 1e-3
    w_l1: float = 0.0  # mean absolute error
    w_ssim: float = 0.2  # 1 − SSIM
    w_psnr: float = 0.0  # −PSNR/10
    w_neutral: float = 0.0  # ours: the output of a grey pair is grey, per pixel (acts on grey pairs; see grey)
    # --- optimiser and schedule: AdamW, linear warm-up then cosine decay to lr_min
    lr: float = 1e-3  # peak learning rate
    lr_min: float = 1e-6  # learning rate at the end of the cosine
    warmup: int = 200  # steps
    weight_decay: float = 1e-4  # AdamW's decoupled weight decay
    beta1: float = 0.9  # AdamW's first-moment decay
    beta2: float = 0.9  # NAFNet's setting
    grad_clip: float = 0.5  # gradient-norm clipping
    batch_size: int = 8  # patches per step
    steps: int = 6000  # total optimisation steps (the cosine period)
    # --- evaluation
    eval_every: int = 500  # steps between held-out evaluations
    eval_pairs: int = 0  # held-out pairs scored at each evaluation, spread over the set (0: all 68)
    # --- run
    out_dir: str = "runs/nafnet-s"  # checkpoints (last.pt, best.pt, final.pt), log.jsonl, tb/
    seed: int = 1337  # torch's seed (initial weights, patches, shuffling)
    device: str = "auto"  # auto = cuda when available, else cpu
    threads: int = 0  # torch CPU threads (0 = torch's default)
    checkpoint_every: int = 200  # steps between checkpoints to OUT_DIR/last.pt
    resume: bool = False  # continue from OUT_DIR/last.pt
    tensorboard: bool = True  # scalars in OUT_DIR/tb when tensorboard is installed

    def __post_init__(self) -> None:
        check(self)


@dataclass
class RetinexConfig:
    # --- data
    data: str = "../shared/data/sice"  # exposure brackets, or a LOL-style folder
    patch: int = 96  # the paper trains on 48×48 patches; larger ones fit our 512-px pairs better
    repeat: int = 8  # patches per pair per epoch
    grey: float = 0.0  # fraction of training patches with both images made neutral grey (greys stay grey)
    init: str = ""  # start from this checkpoint's weights (fine-tuning); the optimisers start afresh
    # --- model
    model: str = "retinexnet"  # the only model this trainer knows
    # --- optimiser: Adam, both phases (the paper's setting)
    lr: float = 1e-3  # learning rate
    batch_size: int = 8  # patches per step
    w_neutral: float = 0.0  # phase 1, ours: the reflectance of a grey patch is grey (see grey)
    decom_steps: int = 2000  # phase 1: Decom-Net alone
    enhance_steps: int = 2000  # phase 2: Enhance-Net, Decom-Net frozen
    # --- run
    out_dir: str = "runs/retinexnet"  # checkpoints (last.pt, final.pt) and log.jsonl
    seed: int = 1337  # torch's seed (initial weights, patches, shuffling)
    device: str = "auto"  # auto = cuda when available, else cpu
    threads: int = 0  # torch CPU threads (0 = torch's default)
    checkpoint_every: int = 200  # steps between checkpoints to OUT_DIR/last.pt
    resume: bool = False  # continue from OUT_DIR/last.pt (in either phase)

    def __post_init__(self) -> None:
        check(self)


@dataclass
class CurveDenoiseConfig:
    # --- data
    data: str = "../shared/data/sice"  # a folder of exposure brackets
    patch: int = 256  # side of the random square training patches (a multiple of the model's downscale)
    p_pair: float = 0.45  # share of bracket pairs (under-exposed frame + sensor noise → well-exposed frame)
    p_dark: float = 0.40  # share of well-exposed frames made dark and noisy → themselves
    p_identity: float = 0.15  # share of well-exposed frames (light noise half the time) → themselves
    pair_noise: float = 0.8  # probability of sensor noise on a bracket pair's input
    dark_min: float = 1 / 100  # darkest exposure of a "dark" patch, in linear light
    dark_max: float = 1 / 4  # brightest exposure of a "dark" patch
    jpeg: float = 0.3  # share of inputs JPEG-coded (quality 60–95)
    workers: int = 1  # DataLoader worker processes (patches are made while the model trains)
    init: str = ""  # start from this checkpoint's weights (fine-tuning); the optimiser starts afresh
    # --- model
    model: str = "curve-denoise"  # a registered model of this family
    width: int = 8  # LowResNet width
    mid_blocks: int = 2  # LowResNet middle blocks
    downscale: int = 8  # side ratio of the small copy
    blur: int = 3  # base blur (3 or 5)
    # --- losses: total = Σ weight × loss
    w_charbonnier: float = 1.0  # Charbonnier, eps 1e-3
    w_ssim: float = 0.0  # 1 − SSIM (its 11×11 windows cost 5× the rest of a CPU step)
    w_temporal: float = 0.5  # |f(warp(x)) − warp(f(x))| over the pixels in view
    warp_shift: float = 6.0  # largest shift of the random warp, pixels
    warp_rotate: float = 2.0  # largest rotation, degrees
    warp_zoom: float = 0.03  # largest relative zoom
    # --- optimiser and schedule: AdamW, linear warm-up then cosine decay to lr_min
    lr: float = 2e-3  # peak learning rate
    lr_min: float = 1e-5  # learning rate at the end of the cosine
    warmup: int = 100  # steps
    weight_decay: float = 1e-4  # AdamW's decoupled weight decay
    grad_clip: float = 1.0  # gradient-norm clipping
    batch_size: int = 8  # patches per step
    steps: int = 3000  # total optimisation steps (the cosine period)
    # --- evaluation
    eval_every: int = 300  # steps between held-out evaluations
    # --- run
    out_dir: str = "runs/curve-denoise"  # checkpoints (last.pt, best.pt, final.pt), log.jsonl, tb/
    seed: int = 1337  # torch's seed (weights, patches, noise, warps)
    device: str = "auto"  # auto = cuda when available, else cpu
    threads: int = 0  # torch CPU threads (0 = torch's default)
    checkpoint_every: int = 100  # steps between checkpoints to OUT_DIR/last.pt
    resume: bool = False  # continue from OUT_DIR/last.pt
    tensorboard: bool = True  # scalars in OUT_DIR/tb when tensorboard is installed

    def __post_init__(self) -> None:
        check(self)


AnyConfig = CurveConfig | SupervisedConfig | RetinexConfig | CurveDenoiseConfig
"""The config of any trainer."""


@dataclass(frozen=True)
class Trainer:
    """One training loop: its module (``main(argv)`` trains), its config and what it trains."""

    key: str
    module: str
    config: type
    title: str


TRAINERS = {
    "curve": Trainer(
        "curve",
        "nightvision.training.zero_reference",
        CurveConfig,
        "curve models, zero-reference losses (no ground truth)",
    ),
    "supervised": Trainer(
        "supervised",
        "nightvision.training.supervised",
        SupervisedConfig,
        "restoration models on (low, high) pairs",
    ),
    "retinex": Trainer("retinex", "nightvision.training.retinex", RetinexConfig, "Retinex-Net in two phases"),
    "curve-denoise": Trainer(
        "curve-denoise",
        "nightvision.training.curve_denoise",
        CurveDenoiseConfig,
        "CurveDenoise on noisy bracket pairs, with a temporal-consistency term",
    ),
}


FAMILY_TRAINERS = {"curve": "curve", "restoration": "supervised"}
"""The trainer of each model family (a key of :data:`TRAINERS`)."""
MODEL_TRAINERS = {"retinexnet": "retinex", "curve-denoise": "curve-denoise"}
"""Models trained by another trainer than their family's."""


def trainer_for(model: str) -> Trainer:
    """The trainer of a registered model: :data:`MODEL_TRAINERS`, else its family's (:data:`FAMILY_TRAINERS`):
    curve models → ``curve``, ``retinexnet`` → ``retinex``, ``curve-denoise`` → ``curve-denoise``, other
    restoration models → ``supervised``. An unknown name raises with the closest matches."""
    spec = get_spec(model)
    key = _trainer_key(spec)
    if key is None:
        raise InputError(f"no trainer for {spec.name!r} (a {spec.family} model)")
    return TRAINERS[key]


def _trainer_key(spec: ModelSpec) -> str | None:
    return MODEL_TRAINERS.get(spec.name) or FAMILY_TRAINERS.get(spec.family)


def _trained_by(trainer: Trainer) -> list[str]:
    """The registered models ``trainer`` trains."""
    return [spec.name for spec in list_specs() if _trainer_key(spec) == trainer.key]


def _toml(value: Any) -> str:
    """A default as it would be written in a recipe."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def _comments(cls: type) -> dict[str, tuple[str, str]]:
    """``field → (section, comment)`` read from the class source: the ``# --- section`` line above a field and
    the comment after it (empty when the source is not available, e.g. a bytecode-only install)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    notes = {
        tok.start[0]: tok.string.lstrip("#").strip()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    sections = {line: text.lstrip("-").strip() for line, text in notes.items() if text.startswith("---")}
    body = ast.parse(source).body[0]
    out: dict[str, tuple[str, str]] = {}
    if isinstance(body, ast.ClassDef):
        for node in body.body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                above = [line for line in sections if line < node.lineno]
                section = sections[max(above)] if above else ""
                out[node.target.id] = (section, "" if node.lineno in sections else notes.get(node.lineno, ""))
    return out


def _type_name(hint: Any) -> str:
    """``int`` → ``INT``; ``str | None`` → ``STR|NONE``."""
    args = typing.get_args(hint)
    if args:
        return "|".join(_type_name(a) for a in args)
    return "NONE" if hint is type(None) else getattr(hint, "__name__", str(hint)).upper()


def _describe(trainer: Trainer) -> list[str]:
    models = ", ".join(_trained_by(trainer)) or "none registered"
    lines = [f"{trainer.key} trainer — {trainer.title} ({trainer.module}); models: {models}"]
    hints = typing.get_type_hints(trainer.config)
    notes = _comments(trainer.config)
    fields = dataclasses.fields(trainer.config)
    flags = {f.name: f"--{f.name.replace('_', '-')} {_type_name(hints[f.name])}" for f in fields}
    width = max(len(flag) for flag in flags.values())
    section = None
    for f in fields:
        heading, comment = notes.get(f.name, ("", ""))
        if heading != section:
            section = heading
            lines.append(f"  {heading}" if heading else "")
        flag = flags[f.name]
        lines.append(f"    {flag:<{width}}  = {_toml(f.default)}" + (f"  # {comment}" if comment else ""))
    return lines


def help_text(model: str | None = None) -> str:
    """What ``nightvision train --help`` prints: usage, the shipped recipes and every key of the trainer of
    ``model`` (``None``: of all three trainers) with its type, default (as a recipe would write it) and comment.

    Needs no torch. An unknown ``model`` raises :class:`~nightvision.errors.ModelNotFoundError` with the
    closest matches.
    """
    recipes = sorted(p.name for p in (Path(__file__).resolve().parent / "recipes").glob("*.toml"))
    trainers = [trainer_for(model)] if model is not None else list(TRAINERS.values())
    lines = [
        "usage: nightvision train [--config RECIPE.toml] [--KEY VALUE ...]   (needs the train extra: torch)",
        "",
        "The recipe's (or --model's) model picks the trainer. Keys come from the defaults below, then the",
        "recipe (TOML: key = value), then the flags: --key value, --key=value, --no-key for a false bool",
        "(underscores or dashes). The resolved config is saved in every checkpoint.",
        f"shipped recipes (training/recipes/): {', '.join(recipes) or 'none'}",
        f"default model: {DEFAULT_MODEL}",
    ]
    for trainer in trainers:
        lines += ["", *_describe(trainer)]
    return "\n".join(lines) + "\n"


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Convert ``value`` (from TOML or a command-line string) to the field's declared type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):  # X | None
        is_none = value is None or (isinstance(value, str) and value.lower() == "none")
        if is_none and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, value, inner[0])
    try:
        if annotation is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if annotation in (int, float, str):
            if isinstance(value, bool) or (annotation is int and isinstance(value, float)):  # TOML: crop = true
                raise ValueError(value)
            return annotation(value)
    except (TypeError, ValueError):
        raise InputError(f"config {name}: expected {annotation.__name__}, got {value!r}") from None
    return value


@dataclass(frozen=True)
class Range:
    """The values a numeric key accepts: between ``lo`` and ``hi`` (``None``: unbounded; ``open``: excluding
    the bound), or one of ``choices``. ``why`` is added to the refusal: what the bound protects."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[int, ...] = ()
    why: str = ""

    def admits(self, value: float) -> bool:
        if self.choices:
            return value in self.choices
        if not math.isfinite(value):
            return False
        above = self.lo is None or (value > self.lo if self.lo_open else value >= self.lo)
        below = self.hi is None or (value < self.hi if self.hi_open else value <= self.hi)
        return above and below

    def __str__(self) -> str:
        """``>= 1``, ``> 0``, ``from 0 to 1``, ``> 0 and <= 1``, ``1 or 2``."""
        if self.choices:
            return " or ".join(map(str, self.choices[:-1])) + f" or {self.choices[-1]}"
        lo = "" if self.lo is None else _number(self.lo)
        hi = "" if self.hi is None else _number(self.hi)
        if lo and hi and not (self.lo_open or self.hi_open):
            return f"from {lo} to {hi}"
        above = f"{'>' if self.lo_open else '>='} {lo}" if lo else ""
        below = f"{'<' if self.hi_open else '<='} {hi}" if hi else ""
        return " and ".join(b for b in (above, below) if b)


def _number(value: float) -> str:
    """``1.0`` → ``1``, ``4294967295`` → ``4294967295`` (not ``4.29497e+09``), ``0.05`` → ``0.05``."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


_AT_LEAST_0, _AT_LEAST_1, _POSITIVE = Range(0), Range(1), Range(0, lo_open=True)
_FRACTION = Range(0, 1)  # a share or a probability
_LEVEL = Range(0, 1, lo_open=True)  # a level or an exposure: 0 would be black

RANGES: dict[str, Range] = {
    # --- data
    "crop": Range(16, why="the exposure term compares 16x16 patches"),
    "patch": _AT_LEAST_1,
    "val_every": Range(2, why="1 would hold out every image and leave none to train on"),
    "repeat": _AT_LEAST_1,
    "darken": _FRACTION,
    "darken_min": _LEVEL,
    "grey": _FRACTION,
    "max_input_level": _LEVEL,
    "workers": _AT_LEAST_0,
    "p_pair": _AT_LEAST_0,
    "p_dark": _AT_LEAST_0,
    "p_identity": _AT_LEAST_0,
    "pair_noise": _FRACTION,
    "dark_min": _LEVEL,
    "dark_max": _LEVEL,
    "jpeg": _FRACTION,
    # --- model
    "downscale": Range(0, why="0 = the registered default"),
    "width": _AT_LEAST_1,
    "mid_blocks": _AT_LEAST_0,
    "blur": Range(choices=(3, 5)),
    # --- losses
    **dict.fromkeys(
        ["w_smoothness", "w_spatial", "w_colour", "w_exposure", "w_neutral", "w_charbonnier", "w_l1", "w_ssim"],
        _AT_LEAST_0,
    ),
    "w_psnr": _AT_LEAST_0,
    "w_temporal": _AT_LEAST_0,
    "well_exposed": _LEVEL,
    "exposure_power": Range(choices=(1, 2)),
    "warp_shift": _AT_LEAST_0,
    "warp_rotate": _AT_LEAST_0,
    "warp_zoom": Range(0, 1, hi_open=True),
    # --- optimiser and schedule
    "lr": _POSITIVE,
    "lr_min": _AT_LEAST_0,
    "warmup": _AT_LEAST_0,
    "weight_decay": _AT_LEAST_0,
    "beta1": Range(0, 1, hi_open=True),
    "beta2": Range(0, 1, hi_open=True),
    "grad_clip": Range(0, lo_open=True, why="0 would zero every gradient"),
    "batch_size": Range(1, 4096, why="more runs out of memory before the first step"),
    "epochs": _AT_LEAST_1,
    "max_steps": Range(0, why="0 = no limit"),
    "steps": _AT_LEAST_1,
    "decom_steps": _AT_LEAST_0,
    "enhance_steps": _AT_LEAST_0,
    # --- evaluation
    "eval_every": _AT_LEAST_1,
    "eval_pairs": Range(0, why="0 = all"),
    # --- run
    "seed": Range(0, 2**32 - 1),
    "threads": Range(0, why="0 = torch's default"),
    "checkpoint_every": _AT_LEAST_1,
}
"""The range of every numeric key of the four configs (a key means the same in each; :func:`check` adds the
rules that tie keys together)."""
_OWN_RANGES: dict[str, dict[str, Range]] = {
    "CurveDenoiseConfig": {"downscale": Range(1, why="the side ratio of the small copy")},
}
"""Where a trainer's key is narrower than :data:`RANGES` says."""
_NOT_EMPTY = ("data", "model", "out_dir", "device")
"""String keys that must name something (``""`` would mean the current folder, or nothing)."""


def check(cfg: AnyConfig) -> None:
    """Refuse a config (any of the four dataclasses) with a key out of its range, in one line that names the
    key, the range and the value: ``config lr: must be > 0, got -1.0``. Called whenever a config is built, so
    a bad value stops the run before it makes a folder or reads data, instead of failing deep in torch."""
    hints = typing.get_type_hints(type(cfg))
    own = _OWN_RANGES.get(type(cfg).__name__, {})
    for f in dataclasses.fields(cfg):
        value, hint = getattr(cfg, f.name), hints[f.name]
        if hint is bool or hint is str:
            if not isinstance(value, hint):
                raise InputError(f"config {f.name}: expected {hint.__name__}, got {value!r}")
            if hint is str and not value and f.name in _NOT_EMPTY:
                raise InputError(f"config {f.name}: must not be empty")
            continue
        if hint not in (int, float):  # pragma: no cover - every other key is a bool or a string
            continue
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if not numeric or (hint is int and not isinstance(value, int)):
            raise InputError(f"config {f.name}: expected {hint.__name__}, got {value!r}")
        rule = own.get(f.name) or RANGES[f.name]
        if not rule.admits(value):
            why = f" ({rule.why})" if rule.why else ""
            raise InputError(f"config {f.name}: must be {rule}{why}, got {value!r}")
    _check_together(cfg)


def _check_together(cfg: AnyConfig) -> None:
    """The rules that tie keys together: the model is one this trainer trains, the patch fits the model, the
    schedule has a step, some loss has a weight."""
    trainer = trainer_for(cfg.model)  # an unknown model: ModelNotFoundError with the closest names
    if trainer.config is not type(cfg):
        raise InputError(
            f"config model: {cfg.model} is trained by the {trainer.key} trainer ({trainer.module}), not this one; "
            "nightvision train --model picks the right one"
        )
    if not isinstance(cfg, CurveConfig):  # a patch of the model's input multiple, which it needs unpadded
        multiple = cfg.downscale if isinstance(cfg, CurveDenoiseConfig) else get_spec(cfg.model).pad_multiple
        if cfg.patch % multiple:
            fit = max(multiple, cfg.patch - cfg.patch % multiple)
            raise InputError(f"config patch: {cfg.model} needs a multiple of {multiple}, got {cfg.patch}; use {fit}")
    if isinstance(cfg, RetinexConfig) and cfg.decom_steps + cfg.enhance_steps < 1:
        raise InputError("config decom_steps, enhance_steps: both are 0, so nothing would train; set one >= 1")
    if isinstance(cfg, SupervisedConfig | CurveDenoiseConfig) and cfg.lr_min > cfg.lr:
        raise InputError(f"config lr_min: must be <= lr ({cfg.lr:g}), got {cfg.lr_min:g}")
    if isinstance(cfg, CurveDenoiseConfig):
        if cfg.p_pair + cfg.p_dark + cfg.p_identity <= 0:
            raise InputError("config p_pair, p_dark, p_identity: all are 0; set at least one above 0")
        if cfg.dark_min > cfg.dark_max:
            raise InputError(f"config dark_min: must be <= dark_max ({cfg.dark_max:g}), got {cfg.dark_min:g}")
    weights = [f.name for f in dataclasses.fields(cfg) if f.name.startswith("w_") and f.name != "w_neutral"]
    if weights and not any(getattr(cfg, w) for w in weights):  # Retinex-Net's losses are fixed: it has none
        raise InputError(f"config {', '.join(weights)}: all are 0, so nothing would train; set one above 0")


def load_config(cls: type[C], argv: list[str] | None = None) -> C:
    """Build ``cls`` (a dataclass) from ``--config FILE.toml`` and ``--key value`` / ``--key=value`` flags.

    Later sources win: dataclass defaults, then the file, then the flags (``--no-key`` sets a bool false).
    Every value is then checked against its range (:func:`check`).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}

    pairs: list[tuple[str, Any]] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise InputError(f"unexpected argument {arg!r}; options look like --key value")
        key, eq, val = arg[2:].partition("=")
        key = key.replace("-", "_")
        if not eq and key.startswith("no_") and key[3:] in fields and hints[key[3:]] is bool:
            key, val = key[3:], "false"
        elif key != "config" and key not in fields:  # refused here: it must not take the next argument as its value
            raise InputError(_unknown_option(key, fields))
        elif not eq:
            if hints.get(key) is bool and (i + 1 == len(argv) or argv[i + 1].startswith("--")):
                val = "true"
            else:
                if i + 1 >= len(argv):
                    raise InputError(f"option --{key} needs a value")
                i += 1
                val = argv[i]
        pairs.append((key, val))
        i += 1

    for key, val in pairs:
        if key == "config":
            path = Path(val)
            if not path.is_file():
                raise InputError(f"config file not found: {path}")
            try:
                with open(path, "rb") as f:
                    recipe = tomllib.load(f)
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
                raise InputError(f"cannot read the recipe {path}: {err}") from None
            for k, v in recipe.items():
                if k not in fields:
                    raise InputError(f"{path}: unknown key {k!r} (known: {', '.join(fields)})")
                values[k] = _coerce(k, v, hints[k])
    for key, val in pairs:
        if key != "config":
            values[key] = _coerce(key, val, hints[key])
    return cls(**values)


def _unknown_option(key: str, fields: Mapping[str, Any]) -> str:
    """The refusal of ``--key``: the known keys, or how to set a key that takes a value (``--no-crop``)."""
    flag = key.replace("_", "-")
    if key.startswith("no_") and key[3:] in fields:
        name = key[3:].replace("_", "-")
        return f"unknown option --{flag}: {name} is not a true/false key; give it a value, --{name} VALUE"
    return f"unknown option --{flag} (known: {', '.join(fields)})"
