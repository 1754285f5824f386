"""Train Retinex-Net in its two phases on (low, high) pairs.

Phase 1 trains Decom-Net alone with :func:`~nightvision.losses.decomposition_loss` (both images of a pair
decomposed, reflectances pulled together); phase 2 freezes it and trains Enhance-Net with
:func:`~nightvision.losses.relight_loss`. Data as in :mod:`training.supervised` (bracket folder or LOL
layout).

    python -m nightvision.training.retinex --data ../shared/data/sice --decom_steps 2000 --enhance_steps 2000

``OUT_DIR/last.pt`` holds both phases' progress (``--resume`` continues, in either phase);
``OUT_DIR/final.pt`` is in the shipped format, with held-out PSNR/SSIM.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from nightvision import models
from nightvision.errors import InputError
from nightvision.losses import decomposition_loss, relight_loss
from nightvision.models.retinexnet import RetinexNet
from nightvision.training.checkpoints import load_last, save_checkpoint
from nightvision.training.config import load_config
from nightvision.training.data import PairedPatches
from nightvision.training.supervised import evaluate, split_pairs

log = logging.getLogger(__name__)


@dataclass
class Config:
    model: str = "retinexnet"  # the only model this trainer knows
    data: str = "../shared/data/sice"  # exposure brackets, or a LOL-style folder
    patch: int = 96  # the paper trains on 48×48 patches; larger ones fit our 512-px pairs better
    repeat: int = 8  # patches per pair per epoch
    batch_size: int = 8
    lr: float = 1e-3  # Adam, both phases (the paper's setting)
    decom_steps: int = 2000  # phase 1
    enhance_steps: int = 2000  # phase 2
    out_dir: str = "runs/retinexnet"
    seed: int = 1337
    device: str = "auto"
    threads: int = 0
    checkpoint_every: int = 200
    resume: bool = False


def train(cfg: Config) -> dict[str, float]:
    """Run both phases and return the held-out figures of the result."""
    if cfg.model != "retinexnet":
        raise InputError(f"training.retinex trains retinexnet, not {cfg.model!r}")
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)

    train_pairs, held_pairs = split_pairs(cfg.data)
    train_set = PairedPatches(train_pairs, cfg.patch, train=True, repeat=cfg.repeat)
    held_set = PairedPatches(held_pairs, train=False, multiple=8)
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=True, generator=gen)

    model = models.create("retinexnet", pretrained=False).to(device).train()
    assert isinstance(model, RetinexNet)
    decom_opt = torch.optim.Adam(model.decom.parameters(), lr=cfg.lr)
    enhance_opt = torch.optim.Adam(model.enhance.parameters(), lr=cfg.lr)
    step = 0  # over both phases: phase 2 starts at decom_steps
    last = out / "last.pt"
    if cfg.resume:
        ckpt = load_last(out, device)
        model.load_state_dict(ckpt["model"])
        decom_opt.load_state_dict(ckpt["decom_optimizer"])
        enhance_opt.load_state_dict(ckpt["enhance_optimizer"])
        step = ckpt["step"]

    def save(path: Path, figures: dict[str, float] | None = None) -> None:
        ckpt: dict[str, Any] = {
            "model": model.state_dict(),
            "model_name": "retinexnet",
            "model_args": {},
            "config": dataclasses.asdict(cfg),
            "step": step,
        }
        if figures is None:
            ckpt.update(decom_optimizer=decom_opt.state_dict(), enhance_optimizer=enhance_opt.state_dict())
        else:
            ckpt["final"] = figures
        save_checkpoint(ckpt, path)

    t0 = time.time()
    total = cfg.decom_steps + cfg.enhance_steps
    bar = tqdm(total=total, initial=step, desc="retinexnet", unit="step", dynamic_ncols=True)
    while step < total:
        for low, high in loader:
            low, high = low.to(device), high.to(device)
            if step < cfg.decom_steps:  # phase 1: decomposition
                r_low, i_low = model.decom(low)
                r_high, i_high = model.decom(high)
                loss = decomposition_loss(low, high, r_low, i_low, r_high, i_high)
                opt = decom_opt
            else:  # phase 2: relighting, Decom-Net frozen
                with torch.no_grad():
                    r_low, i_low = model.decom(low)
                loss = relight_loss(r_low, model.enhance(r_low, i_low), high)
                opt = enhance_opt
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            bar.update(1)
            bar.set_postfix(phase=1 if step <= cfg.decom_steps else 2, loss=f"{loss.item():.4f}")
            if step % cfg.checkpoint_every == 0:
                save(last)
            if step >= total:
                break
    bar.close()
    figures = evaluate(model, held_set, device) if len(held_set) else {}
    figures.update(step=step, minutes=(time.time() - t0) / 60)
    log.info("eval %s", json.dumps({k: round(v, 4) for k, v in figures.items()}))
    save(last)
    save(out / "final.pt", figures)
    return figures


def main(argv: list[str] | None = None) -> None:
    train(load_config(Config, argv))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    main()
