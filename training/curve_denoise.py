"""Train CurveDenoise (:mod:`nightvision.models.curve_denoise`): brighten and denoise, consistent over time.

Read it top to bottom: config, data, losses, evaluation, loop (the schedule: training.run.learning_rate).

    python -m nightvision.training.curve_denoise --config training/recipes/curve-denoise.toml
    python -m nightvision.training.curve_denoise --config training/recipes/curve-denoise.toml --resume

**Data** (exposure brackets, paired by :mod:`nightvision.evaluation.pairs`; its ``test`` scenes are never read
here, and the ``train`` scenes with ``k % 10 == 5`` are held out, the rule of the supervised trainer, so the
figures of both compare). Each training patch is one of three kinds, drawn with the configured
probabilities:

* **pair** — an under-exposed frame of the brackets with sensor noise added
  (:func:`nightvision.evaluation.noise.degrade` at exposure 1: shot + read noise in linear light with
  Unprocessing's camera levels, sRGB, 8 bits) → the well-exposed frame of the same scene;
* **dark** — a well-exposed frame made dark and noisy by the same model (exposure ``dark_min``–``dark_max``,
  log-uniform; the F1 video benchmark uses 1/100–1/10) → itself, clean. SICE has few frames as dark as
  night footage;
* **identity** — a well-exposed frame, with light noise half of the time → itself: visible pictures are
  left (nearly) alone.

A fraction ``jpeg`` of the inputs is JPEG-coded (quality 60–95), a stand-in for the video codec.

**Losses**: Charbonnier (and optionally 1 − SSIM) against the target, and the temporal-consistency term of
StableLLVE (Zhang et al., CVPR 2021) on half of each batch: warp the input by a random small similarity
transform (shift, rotation, zoom) and penalise ``|f(warp(x)) − warp(f(x))|`` over the pixels that stay in view.

**Evaluation** every ``eval_every`` steps on the held-out scenes, deterministic (fixed seeds): PSNR/SSIM of
the clean bracket pairs (as ``nightvision eval --brackets``), PSNR of the same pairs with sensor noise, PSNR
of held-out well-exposed frames made dark (F1's recipe: exposure 1/100–1/10, stratified) with the output's
mean luma, noise ratio and clipped fraction, and PSNR of the identity. ``best.pt`` keeps the highest mean of
the noisy-pair and dark PSNRs. Checkpoints: ``OUT_DIR/last.pt`` (resumable), ``best.pt`` and ``final.pt``
(shipped format: ``python -m nightvision.training.publish curve-denoise OUT_DIR/best.pt``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from nightvision import models
from nightvision.errors import InputError
from nightvision.evaluation import metrics
from nightvision.evaluation.noise import EXPOSURE_RANGE, degrade, sample_levels
from nightvision.evaluation.pairs import build_pairs
from nightvision.losses import charbonnier_loss, psnr, ssim, ssim_loss
from nightvision.models import curve_denoise as _registers_curve_denoise  # noqa: F401
from nightvision.specs import get_spec
from nightvision.training.config import CurveDenoiseConfig as Config
from nightvision.training.config import load_config
from nightvision.training.run import Run, learning_rate, optimize

__all__ = ["Config", "HeldOut", "NoisyPatches", "evaluate", "main", "temporal_loss", "train"]

log = logging.getLogger(__name__)


# --- data


def _read(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"cannot read image {path}")
    return bgr


def _to_tensor(bgr: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 BGR → ``(3, H, W)`` float RGB in ``[0, 1]``."""
    return torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1])).permute(2, 0, 1).float().div_(255.0)


def _jpeg(bgr: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 image
        return bgr
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return bgr if decoded is None else decoded


def split_brackets(data: str | Path) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """(train, held-out) (low, high) pairs of the bracket folder's ``train`` scenes; held out: ``k % 10 == 5``."""
    root = Path(data)
    if not root.is_dir():
        raise InputError(f"training data folder not found: {root}")
    pairs = [p for p in build_pairs(root) if p.split == "train"]
    train = [(p.low, p.high) for p in pairs if p.scene % 10 != 5]
    held = [(p.low, p.high) for p in pairs if p.scene % 10 == 5]
    if not train:
        raise InputError(f"{root}: no bracket pairs to train on (see python -m nightvision.evaluation.pairs)")
    if not held:
        raise InputError(
            f"{root}: {len(train)} bracket pairs to train on, but none held out to evaluate on (every tenth scene "
            "is: the 6th, the 16th, ...): give more scenes, e.g. the whole SICE folder"
        )
    return train, held


class NoisyPatches(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Random ``(input, target)`` patches, ``(3, patch, patch)`` float RGB in ``[0, 1]``, of the three kinds of
    the module docstring. Images are read once and kept in memory (uint8). Every item draws its randomness
    from torch's generator, so a seeded run is reproducible.

    Args:
        pairs: (low, high) bracket pairs.
        cfg: the probabilities, exposure range, JPEG share and patch size.
        length: items per epoch.
    """

    def __init__(self, pairs: list[tuple[Path, Path]], cfg: Config, length: int) -> None:
        paths = sorted({p for pair in pairs for p in pair})
        images = {p: _read(p) for p in paths}
        smallest = min(paths, key=lambda p: min(images[p].shape[:2]))  # a smaller one: a patch no batch can stack
        h, w = images[smallest].shape[:2]
        if cfg.patch > min(h, w):
            raise InputError(
                f"patch {cfg.patch} is larger than the smallest training image, {smallest} ({w}x{h}); "
                f"lower --patch to {min(h, w)} or less"
            )
        self.pairs = [(images[a], images[b]) for a, b in pairs]
        self.bright = [images[p] for p in sorted({b for _, b in pairs})]
        self.cfg = cfg
        self.length = length
        total = cfg.p_pair + cfg.p_dark + cfg.p_identity  # > 0: the config refuses all three at 0
        self.cum = np.cumsum([cfg.p_pair, cfg.p_dark, cfg.p_identity]) / total

    def __len__(self) -> int:
        return self.length

    def _crop(self, *images: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        h, w = images[0].shape[:2]
        p = min(self.cfg.patch, h, w)
        top, left = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
        return [im[top : top + p, left : left + p] for im in images]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        kind = int(np.searchsorted(self.cum, rng.uniform(), side="right"))
        if kind == 0:  # a bracket pair, with sensor noise on the input
            low, high = self.pairs[int(rng.integers(len(self.pairs)))]
            low, high = self._crop(low, high, rng=rng)
            x = (
                degrade(low, exposure=1.0, levels=sample_levels(rng), rng=rng)
                if rng.uniform() < cfg.pair_noise
                else low
            )
        elif kind == 1:  # a well-exposed frame made dark and noisy
            (high,) = self._crop(self.bright[int(rng.integers(len(self.bright)))], rng=rng)
            exposure = math.exp(rng.uniform(math.log(cfg.dark_min), math.log(cfg.dark_max)))
            x = degrade(high, exposure=exposure, levels=sample_levels(rng), rng=rng)
        else:  # identity, light noise half of the time
            (high,) = self._crop(self.bright[int(rng.integers(len(self.bright)))], rng=rng)
            x = high
            if rng.uniform() < 0.5:
                x = degrade(high, exposure=1.0, levels=sample_levels(rng, u=0.3 * rng.uniform()), rng=rng)
        if rng.uniform() < cfg.jpeg:
            x = _jpeg(np.ascontiguousarray(x), int(rng.integers(60, 96)))
        xt, yt = _to_tensor(x), _to_tensor(high)
        k = int(rng.integers(8))  # one of the 8 symmetries of the square
        if k >= 4:
            xt, yt = xt.transpose(1, 2), yt.transpose(1, 2)
        return torch.rot90(xt, k % 4, (1, 2)).contiguous(), torch.rot90(yt, k % 4, (1, 2)).contiguous()


@dataclass
class HeldOut:
    """The fixed held-out sets, ``(3, H, W)`` float RGB tensors (whole images, cropped to the multiple).

    Attributes:
        pairs: clean (low, high) bracket pairs.
        noisy_pairs: the same lows with sensor noise (seeded), and their highs.
        dark: the held-out well-exposed frames made dark and noisy at F1's exposures (1/100–1/10,
            stratified), and the clean frames.
        bright: the held-out well-exposed frames (identity).
    """

    pairs: list[tuple[torch.Tensor, torch.Tensor]]
    noisy_pairs: list[tuple[torch.Tensor, torch.Tensor]]
    dark: list[tuple[torch.Tensor, torch.Tensor]]
    bright: list[torch.Tensor]

    @classmethod
    def build(cls, pairs: list[tuple[Path, Path]], multiple: int, seed: int = 0) -> HeldOut:
        def crop(im: np.ndarray) -> np.ndarray:
            h, w = im.shape[:2]
            return np.ascontiguousarray(im[: h - h % multiple, : w - w % multiple])

        rng = np.random.default_rng(seed)
        lows = [crop(_read(a)) for a, _ in pairs]
        highs = [crop(_read(b)) for _, b in pairs]
        bright = [crop(_read(b)) for b in sorted({b for _, b in pairs})]
        noisy = [degrade(lo, exposure=1.0, levels=sample_levels(rng), rng=rng) for lo in lows]
        n = len(bright)
        lo, hi = math.log(EXPOSURE_RANGE[0]), math.log(EXPOSURE_RANGE[1])
        dark = [
            degrade(
                im,
                exposure=math.exp(lo + (i + 0.5) / n * (hi - lo)),
                levels=sample_levels(rng, u=((i * 7) % n + 0.5) / n),
                rng=rng,
            )
            for i, im in enumerate(bright)
        ]
        return cls(
            pairs=[(_to_tensor(a), _to_tensor(b)) for a, b in zip(lows, highs, strict=True)],
            noisy_pairs=[(_to_tensor(a), _to_tensor(b)) for a, b in zip(noisy, highs, strict=True)],
            dark=[(_to_tensor(a), _to_tensor(b)) for a, b in zip(dark, bright, strict=True)],
            bright=[_to_tensor(b) for b in bright],
        )


# --- losses


def random_warp(x: torch.Tensor, cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampling grids of a random similarity transform per image, and the mask of pixels that stay in view.

    Args:
        x: ``(B, C, H, W)``; only its shape, device and dtype are used.
        cfg: the largest shift (pixels), rotation (degrees) and zoom.

    Returns:
        ``grid`` ``(B, H, W, 2)`` for :func:`torch.nn.functional.grid_sample` and ``mask`` ``(B, 1, H, W)``,
        1 where the warped image has all its samples inside the source (eroded by one pixel).
    """
    b, _, h, w = x.shape
    rand = torch.rand(b, 4, device=x.device, dtype=x.dtype) * 2 - 1
    angle = rand[:, 0] * math.radians(cfg.warp_rotate)
    scale = 1 + rand[:, 1] * cfg.warp_zoom
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin * h / w, rand[:, 2] * 2 * cfg.warp_shift / w], 1),
            torch.stack([sin * w / h, cos, rand[:, 3] * 2 * cfg.warp_shift / h], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
    ones = torch.ones(b, 1, h, w, device=x.device, dtype=x.dtype)
    inside = F.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    mask = (-F.max_pool2d(-inside, 3, stride=1, padding=1) > 0.999).to(x.dtype)
    return grid, mask


def temporal_loss(model: torch.nn.Module, x: torch.Tensor, pred: torch.Tensor, cfg: Config) -> torch.Tensor:
    """StableLLVE's consistency: ``|f(warp(x)) − warp(f(x))|`` averaged over the pixels in view.

    Args:
        model: the network ``f``.
        x: the inputs, ``(B, 3, H, W)`` float RGB in ``[0, 1]``.
        pred: ``f(x)``, same shape.
        cfg: warp ranges.
    """
    grid, mask = random_warp(x, cfg)
    warped_in = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    warped_out = F.grid_sample(pred, grid, mode="bilinear", padding_mode="border", align_corners=False)
    diff = (model(warped_in) - warped_out).abs() * mask
    return diff.sum() / (3 * mask.sum()).clamp_min(1.0)


def criterion(
    cfg: Config, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted sum of the losses for a batch ``(x, y)``, and each term's value for the logs."""
    pred = model(x)
    parts = {"charbonnier": charbonnier_loss(pred, y)}
    if cfg.w_ssim:
        parts["ssim"] = ssim_loss(pred, y)
    if cfg.w_temporal:  # on half of the batch: a second forward pass costs as much as the first
        half = max(1, x.shape[0] // 2)
        parts["temporal"] = temporal_loss(model, x[:half], pred[:half], cfg)
    weights = {"charbonnier": cfg.w_charbonnier, "ssim": cfg.w_ssim, "temporal": cfg.w_temporal}
    total = sum((weights[k] * v for k, v in parts.items()), start=pred.new_zeros(()))
    return total, {k: float(v.detach()) for k, v in parts.items()}


# --- evaluation


def _bgr8(x: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` float RGB in ``[0, 1]`` → ``(H, W, 3)`` uint8 BGR, rounded as the runtime does."""
    rgb = (x.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(rgb[:, :, ::-1])


@torch.no_grad()
def evaluate(model: torch.nn.Module, held: HeldOut, device: str) -> dict[str, float]:
    """Held-out figures (see the module docstring); PSNR in dB, luma in 8-bit levels, clipped in %."""
    model.eval()

    def run(x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = model(x[None].to(device))[0].clamp(0, 1).cpu()
        return out

    def scores(items: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[list[float], list[float]]:
        p, s = [], []
        for x, y in items:
            out = run(x)
            p.append(float(psnr(out[None], y[None])))
            s.append(float(ssim(out[None], y[None])))
        return p, s

    figures: dict[str, float] = {}
    p, s = scores(held.pairs)
    figures.update(psnr_pairs=float(np.mean(p)), ssim_pairs=float(np.mean(s)))
    p, _ = scores(held.noisy_pairs)
    figures["psnr_noisy_pairs"] = float(np.mean(p))
    dark_psnr, luma, ratio, clipped = [], [], [], []
    for x, y in held.dark:
        out = run(x)
        dark_psnr.append(float(psnr(out[None], y[None])))
        out8, in8 = _bgr8(out), _bgr8(x)
        luma.append(metrics.mean_luma(out8))
        ratio.append(metrics.noise_ratio(out8, in8))
        clipped.append(100.0 * metrics.clipped_fraction(out8))
    figures.update(
        psnr_dark=float(np.mean(dark_psnr)),
        luma_dark=float(np.mean(luma)),
        noise_ratio_dark=float(np.median(ratio)),
        clipped_dark=float(np.mean(clipped)),
    )
    figures["psnr_identity"] = float(np.mean([float(psnr(run(b)[None], b[None])) for b in held.bright]))
    figures["score"] = 0.5 * (figures["psnr_noisy_pairs"] + figures["psnr_dark"])
    model.train()
    return figures


# --- loop


def train(cfg: Config) -> dict[str, float]:
    """Train and return the final held-out figures."""
    run = Run(cfg, tensorboard=cfg.tensorboard)  # OUT_DIR, seed, device, threads, TensorBoard
    device = run.device

    # --- data
    spec = get_spec(cfg.model)
    margs = {"width": cfg.width, "mid_blocks": cfg.mid_blocks, "downscale": cfg.downscale, "blur": cfg.blur}
    train_pairs, held_pairs = split_brackets(cfg.data)
    train_set = NoisyPatches(train_pairs, cfg, length=cfg.batch_size * max(1, cfg.eval_every))
    held = HeldOut.build(held_pairs, multiple=max(spec.pad_multiple, cfg.downscale))
    loader = DataLoader(
        train_set,
        batch_size=cfg.batch_size,
        drop_last=True,
        num_workers=cfg.workers,
        persistent_workers=cfg.workers > 0,
    )
    log.info(
        "data: %d training pairs (%d well-exposed frames), %d held-out pairs (%d frames), from %s",
        len(train_pairs), len(train_set.bright), len(held_pairs), len(held.bright), cfg.data,
    )  # fmt: skip

    # --- model and optimiser
    model = models.create(cfg.model, pretrained=False, **margs).to(device).train()
    run.init_weights(model, cfg.init, resume=cfg.resume)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    log.info(
        "model %s %s: %d parameters, device %s", cfg.model, margs, sum(p.numel() for p in model.parameters()), device
    )

    # --- resume
    step, best = 0, -math.inf  # best = highest held-out score so far
    if cfg.resume:
        ckpt = run.resume(model, optimizer=optimizer)
        step, best = ckpt["step"], ckpt.get("best", best)
        if step >= cfg.steps:
            raise run.finished(f"step {step} of {cfg.steps}", "--steps")
        torch.manual_seed(cfg.seed + step)

    def save(name: str, final: dict[str, float] | None = None) -> None:
        """OUT_DIR/name: resumable (with the optimiser) or, given the final figures, in the shipped format."""
        run.save(name, model, model_name=cfg.model, model_args=margs, optimizers={"optimizer": optimizer},
                 final=final, step=step, best=best)  # fmt: skip

    # --- loop: step-based, evaluate every eval_every steps
    figures: dict[str, float] = {}
    bar = tqdm(total=cfg.steps, initial=step, desc=cfg.model, unit="step", dynamic_ncols=True)
    with run.interruptible(lambda: step):  # Ctrl-C: which step last.pt holds
        while step < cfg.steps:
            for x, y in loader:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                loss, parts = criterion(cfg, model, x, y)
                lr = learning_rate(cfg, step)
                value = optimize(optimizer, model, loss, step=step, grad_clip=cfg.grad_clip, lr=lr)
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4f}")
                run.log_train(step, value, parts)
                if step % cfg.eval_every == 0 or step == cfg.steps:
                    figures = run.log_eval(evaluate(model, held, device), step=step, loss=value)
                    if figures["score"] > best:
                        best = figures["score"]
                        save("best.pt", final=figures)
                    save("last.pt")
                elif step % cfg.checkpoint_every == 0:
                    save("last.pt")
                if step >= cfg.steps:
                    break
    bar.close()
    save("final.pt", final=figures)
    run.close()
    log.info("done in %.1f min; best held-out score %.2f dB in %s", run.minutes, best, run.out / "best.pt")
    return figures


def main(argv: list[str] | None = None) -> None:
    cfg = load_config(Config, argv)
    train(cfg)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    main()
