"""Train a curve model (Zero-DCE, Zero-DCE++) with the zero-reference losses: no ground truth needed.

Read it top to bottom: config, data, model, optimiser, evaluation, loop.

    python -m nightvision.training.zero_reference --config training/recipes/zero-dce++.toml --data ../shared/data/sice
    nightvision train --config training/recipes/zero-dce++.toml --data DIR --resume

Every hyperparameter lives in :class:`~nightvision.training.config.CurveConfig` (torch-free, so that
``nightvision train --help`` lists them anywhere); a recipe file sets some, ``--key value`` flags override.
Checkpoints go to ``OUT_DIR/last.pt`` every epoch (and every ``checkpoint_every`` steps); ``--resume``
continues from there, with the images in the order the uninterrupted run has
(:class:`~nightvision.training.data.EpochShuffle`). ``OUT_DIR/best.pt`` (lowest held-out loss so far) and
``OUT_DIR/final.pt`` (the last step) are in the shipped format: state dict, model arguments, config and
evaluation figures.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from nightvision import models
from nightvision.losses import ZeroReferenceLoss
from nightvision.training.config import CurveConfig as Config
from nightvision.training.config import load_config
from nightvision.training.data import EpochShuffle, ImageFolder, check_batches, check_crop, list_images
from nightvision.training.run import Run, optimize

__all__ = ["Config", "evaluate", "main", "model_args", "train"]

log = logging.getLogger(__name__)


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
    run = Run(cfg, tensorboard=cfg.tensorboard)  # OUT_DIR, seed, device, threads, TensorBoard
    device = run.device

    # --- data: every val_every-th image held out; the shuffle is a function of (seed, epoch), for --resume
    files = list_images(cfg.data)
    val_files = files[:: cfg.val_every]
    train_files = [f for i, f in enumerate(files) if i % cfg.val_every]
    what = f"{len(train_files)} training images ({len(files)} found, every {cfg.val_every}th held out)"
    check_batches(len(train_files), cfg.batch_size, what, "lower --batch-size or add images")
    check_crop(files, cfg.crop)
    steps_per_epoch = len(train_files) // cfg.batch_size  # the last partial batch is dropped
    sampler = EpochShuffle(len(train_files), cfg.seed)
    train_loader = DataLoader(
        ImageFolder(train_files, cfg.crop, train=True, darken=cfg.darken, darken_min=cfg.darken_min, grey=cfg.grey),
        batch_size=cfg.batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=cfg.workers,
        persistent_workers=cfg.workers > 0,
    )
    val_loader = DataLoader(ImageFolder(val_files, cfg.crop, train=False), batch_size=cfg.batch_size)
    log.info("data: %d training and %d held-out images from %s", len(train_files), len(val_files), cfg.data)

    # --- model, loss, optimiser
    margs = model_args(cfg)
    model = models.create(cfg.model, pretrained=False, **margs).to(device).train()
    run.init_weights(model, cfg.init, resume=cfg.resume)
    criterion = ZeroReferenceLoss(
        w_smoothness=cfg.w_smoothness,
        w_spatial=cfg.w_spatial,
        w_colour=cfg.w_colour,
        w_exposure=cfg.w_exposure,
        well_exposed=cfg.well_exposed,
        exposure_power=cfg.exposure_power,
        spatial_signed=cfg.spatial_signed,
        w_neutral=cfg.w_neutral,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    params = sum(p.numel() for p in model.parameters())
    log.info("model %s %s: %d parameters, device %s", cfg.model, margs, params, device)

    # --- resume
    step, epoch = 0, 0
    best = float("inf")  # lowest held-out total so far; OUT_DIR/best.pt holds that model
    if cfg.resume:
        ckpt = run.resume(model, optimizer=optimizer)
        step, epoch, best = ckpt["step"], ckpt.get("epoch", 0), ckpt.get("best", best)
        if epoch >= cfg.epochs or (cfg.max_steps and step >= cfg.max_steps):
            of_max = f" of {cfg.max_steps}" if cfg.max_steps else ""
            raise run.finished(f"epoch {epoch} of {cfg.epochs}, step {step}{of_max}", "--epochs or --max-steps")

    def save(name: str, final: dict[str, float] | None = None) -> None:
        """OUT_DIR/name: resumable (with the optimiser) or, given the final figures, in the shipped format."""
        optimizers = {"optimizer": optimizer}
        run.save(name, model, model_name=cfg.model, model_args=margs, optimizers=optimizers, final=final,
                 step=step, epoch=epoch, best=best)  # fmt: skip

    # --- loop
    done = False
    stats: dict[str, float] = {}
    with run.interruptible(lambda: step):  # Ctrl-C: which step last.pt holds
        while epoch < cfg.epochs and not done:
            skip = min(max(0, step - epoch * steps_per_epoch), steps_per_epoch)  # trained on before a resume
            sampler.set_epoch(epoch, start=skip * cfg.batch_size)
            desc = f"epoch {epoch + 1}/{cfg.epochs}"
            bar = tqdm(train_loader, desc, total=steps_per_epoch, initial=skip, unit="batch", dynamic_ncols=True)
            for x in bar:
                x = x.to(device, non_blocking=True)
                y, curves = model.forward_with_curves(x)  # type: ignore[operator]
                loss, parts = criterion(y, x, curves)
                value = optimize(optimizer, model, loss, step=step + 1, grad_clip=cfg.grad_clip)
                step += 1
                bar.set_postfix(loss=f"{value:.4f}", luma=f"{y.mean().item():.3f}")
                run.log_train(step, value, parts)
                if step % cfg.checkpoint_every == 0:
                    save("last.pt")
                if cfg.max_steps and step >= cfg.max_steps:
                    done = True
                    break
            else:
                epoch += 1
            stats = run.log_eval(evaluate(model, val_loader, criterion, device), step=step, epoch=epoch)
            if stats["total"] < best:
                best = stats["total"]
                save("best.pt", final=stats)
            save("last.pt")

    save("final.pt", final=stats)
    run.close()
    log.info("done in %.1f min; shipped-format weights in %s", run.minutes, run.out / "final.pt")
    return stats


def main(argv: list[str] | None = None) -> None:
    cfg = load_config(Config, argv)
    train(cfg)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    main()
