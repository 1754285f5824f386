"""Train a curve model (Zero-DCE, Zero-DCE++) with the zero-reference losses: no ground truth needed.

Read it top to bottom: config, data, model, optimiser, evaluation, loop.

    python -m nightvision.training.zero_reference --config training/recipes/zero-dce++.toml --data ../shared/data/sice
    nightvision train --config training/recipes/zero-dce++.toml --data DIR --resume

Every hyperparameter lives in :class:`Config`; a recipe file sets some, ``--key value`` flags override.
Checkpoints go to ``OUT_DIR/last.pt`` every epoch (and every ``checkpoint_every`` steps); ``--resume``
continues from there. ``OUT_DIR/best.pt`` (lowest held-out loss so far) and ``OUT_DIR/final.pt`` (the last
step) are in the shipped format: state dict, model arguments, config and evaluation figures.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from nightvision import models
from nightvision.losses import ZeroReferenceLoss
from nightvision.training.checkpoints import load_last, save_checkpoint, tensorboard_writer
from nightvision.training.config import load_config
from nightvision.training.data import ImageFolder, list_images

log = logging.getLogger(__name__)


@dataclass
class Config:
    # --- data
    data: str = "../shared/data/sice"  # folder of (low-light and mixed-exposure) images, recursive
    crop: int = 256  # random square crops of this side
    val_every: int = 20  # every n-th image (in natural order) is held out for evaluation
    darken: float = 0.0  # fraction of training crops shown as a shorter exposure (down to darken_min of the light)
    darken_min: float = 0.05
    workers: int = 1  # DataLoader worker processes
    # --- model
    model: str = "zero-dce++"  # a registered curve model
    downscale: int = 0  # Zero-DCE++ only: curve-estimation downscale; 0 = the registered default
    # --- losses (weights of the official code; see nightvision.losses.ZeroReferenceLoss)
    w_smoothness: float = 1600.0
    w_spatial: float = 1.0
    w_colour: float = 5.0
    w_exposure: float = 10.0
    well_exposed: float = 0.6
    exposure_power: int = 2  # 2: the official code's squared exposure term; 1: the paper's |Y - E|
    spatial_signed: bool = True  # signed neighbour differences; False: the paper's |.| (allows inverted contrast)
    # --- optimiser
    lr: float = 1e-4
    weight_decay: float = 1e-4
    grad_clip: float = 0.1
    batch_size: int = 8
    epochs: int = 100
    max_steps: int = 0  # stop after this many steps in total (0 = no limit); handy on a CPU
    # --- run
    out_dir: str = "runs/zero-dce++"
    seed: int = 1337
    device: str = "auto"  # auto = cuda when available, else cpu
    threads: int = 0  # torch CPU threads (0 = torch's default)
    checkpoint_every: int = 200  # steps between mid-epoch checkpoints
    resume: bool = False  # continue from OUT_DIR/last.pt
    tensorboard: bool = True  # scalars in OUT_DIR/tb when tensorboard is installed


def model_args(cfg: Config) -> dict[str, Any]:
    """Constructor arguments of the trained model (stored in every checkpoint)."""
    from nightvision.specs import get_spec

    args = dict(get_spec(cfg.model).kwargs)
    if cfg.downscale:
        args["downscale"] = cfg.downscale
    return args


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: DataLoader, criterion: ZeroReferenceLoss, device: str) -> dict[str, float]:
    """Mean losses and mean output luma over the held-out images."""
    model.eval()
    sums: dict[str, float] = {}
    n = 0
    for x in loader:
        x = x.to(device)
        y, curves = model.forward_with_curves(x)  # type: ignore[operator]
        total, parts = criterion(y, x, curves)
        stats = {"total": total, **parts, "luma_in": x.mean(), "luma_out": y.mean()}
        for k, v in stats.items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(x)
        n += len(x)
    model.train()
    return {k: v / max(n, 1) for k, v in sums.items()}


def train(cfg: Config) -> dict[str, float]:
    """Train and return the final evaluation figures."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)

    # --- data: every val_every-th image held out
    files = list_images(cfg.data)
    val_files = files[:: cfg.val_every]
    train_files = [f for i, f in enumerate(files) if i % cfg.val_every]
    gen = torch.Generator().manual_seed(cfg.seed)
    train_loader = DataLoader(
        ImageFolder(train_files, cfg.crop, train=True, darken=cfg.darken, darken_min=cfg.darken_min),
        batch_size=cfg.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=cfg.workers,
        generator=gen,
        persistent_workers=cfg.workers > 0,
    )
    val_loader = DataLoader(ImageFolder(val_files, cfg.crop, train=False), batch_size=cfg.batch_size)
    log.info("data: %d training and %d held-out images from %s", len(train_files), len(val_files), cfg.data)

    # --- model, loss, optimiser
    margs = model_args(cfg)
    model = models.create(cfg.model, pretrained=False, **margs).to(device).train()
    criterion = ZeroReferenceLoss(
        w_smoothness=cfg.w_smoothness,
        w_spatial=cfg.w_spatial,
        w_colour=cfg.w_colour,
        w_exposure=cfg.w_exposure,
        well_exposed=cfg.well_exposed,
        exposure_power=cfg.exposure_power,
        spatial_signed=cfg.spatial_signed,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    params = sum(p.numel() for p in model.parameters())
    log.info("model %s %s: %d parameters, device %s", cfg.model, margs, params, device)

    # --- resume
    step, epoch = 0, 0
    best = float("inf")  # lowest held-out total so far; OUT_DIR/best.pt holds that model
    last = out / "last.pt"
    if cfg.resume:
        ckpt = load_last(out, device)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step, epoch = ckpt["step"], ckpt["epoch"]
        best = ckpt.get("best", best)
        gen.manual_seed(cfg.seed + epoch)
        log.info("resumed from %s at epoch %d, step %d", last, epoch, step)

    def save(path: Path, final_stats: dict[str, float] | None = None) -> None:
        ckpt = {
            "model": model.state_dict(),
            "model_name": cfg.model,
            "model_args": margs,
            "config": dataclasses.asdict(cfg),
            "step": step,
            "epoch": epoch,
            "best": best,
        }
        if final_stats is None:
            ckpt["optimizer"] = optimizer.state_dict()
        else:
            ckpt["final"] = final_stats
        save_checkpoint(ckpt, path)

    writer = tensorboard_writer(out, cfg.tensorboard)

    # --- loop
    t0 = time.time()
    done = False
    stats: dict[str, float] = {}
    while epoch < cfg.epochs and not done:
        skip = step - epoch * len(train_loader)  # batches of this epoch already seen before a resume
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", dynamic_ncols=True)
        for i, x in enumerate(bar):
            if i < skip:
                continue
            x = x.to(device, non_blocking=True)
            y, curves = model.forward_with_curves(x)  # type: ignore[operator]
            loss, parts = criterion(y, x, curves)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"loss is {float(loss)} at step {step}; lower the learning rate")
            bar.set_postfix(loss=f"{loss.item():.4f}", luma=f"{y.mean().item():.3f}")
            if writer is not None and step % 10 == 0:
                writer.add_scalar("train/total", loss.item(), step)
                for k, v in parts.items():
                    writer.add_scalar(f"train/{k}", v.item(), step)
            if step % cfg.checkpoint_every == 0:
                save(last)
            if cfg.max_steps and step >= cfg.max_steps:
                done = True
                break
        else:
            epoch += 1
        stats = evaluate(model, val_loader, criterion, device)
        stats.update(step=step, epoch=epoch, minutes=(time.time() - t0) / 60)
        log.info("eval %s", json.dumps({k: round(v, 5) for k, v in stats.items()}))
        with open(out / "log.jsonl", "a") as f:
            f.write(json.dumps(stats) + "\n")
        if writer is not None:
            for k, v in stats.items():
                writer.add_scalar(f"val/{k}", v, step)
        if stats["total"] < best:
            best = stats["total"]
            save(out / "best.pt", final_stats=stats)
        save(last)

    save(out / "final.pt", final_stats=stats)
    if writer is not None:
        writer.close()
    log.info("done in %.1f min; shipped-format weights in %s", (time.time() - t0) / 60, out / "final.pt")
    return stats


def main(argv: list[str] | None = None) -> None:
    cfg = load_config(Config, argv)
    train(cfg)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    main()
