"""Train Retinex-Net in its two phases on (low, high) pairs.

Phase 1 trains Decom-Net alone with :func:`~nightvision.losses.decomposition_loss` (both images of a pair
decomposed, reflectances pulled together); phase 2 freezes it and trains Enhance-Net with
:func:`~nightvision.losses.relight_loss`. Data as in :mod:`nightvision.training.supervised` (bracket folder or LOL
layout).

    python -m nightvision.training.retinex --data ../shared/data/sice --decom_steps 2000 --enhance_steps 2000

Every hyperparameter lives in :class:`~nightvision.training.config.RetinexConfig` (torch-free).
``OUT_DIR/last.pt`` holds both phases' progress (``--resume`` continues, in either phase);
``OUT_DIR/final.pt`` is in the shipped format, with held-out PSNR/SSIM (also in ``OUT_DIR/log.jsonl``).
"""

from __future__ import annotations

import logging

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from nightvision import models
from nightvision.errors import InputError
from nightvision.losses import decomposition_loss, neutral_loss, relight_loss
from nightvision.models.retinexnet import RetinexNet
from nightvision.training.config import RetinexConfig as Config
from nightvision.training.config import load_config
from nightvision.training.data import PairedPatches, check_batches
from nightvision.training.run import Run, optimize
from nightvision.training.supervised import evaluate, split_pairs

__all__ = ["Config", "main", "train"]

log = logging.getLogger(__name__)


def train(cfg: Config) -> dict[str, float]:
    """Run both phases and return the held-out figures of the result."""
    if cfg.model != "retinexnet":
        raise InputError(f"training.retinex trains retinexnet, not {cfg.model!r}")
    run = Run(cfg)  # OUT_DIR, seed, device, threads
    device = run.device

    # --- data
    train_pairs, held_pairs = split_pairs(cfg.data)
    train_set = PairedPatches(train_pairs, cfg.patch, train=True, repeat=cfg.repeat, grey=cfg.grey)
    what = f"{len(train_set)} training patches per epoch ({len(train_pairs)} pairs x --repeat {cfg.repeat})"
    check_batches(len(train_set), cfg.batch_size, what, "lower --batch-size, raise --repeat or add pairs")
    held_set = PairedPatches(held_pairs, train=False, multiple=8)
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=True, generator=gen)

    # --- model and one optimiser per phase
    model = models.create("retinexnet", pretrained=False).to(device).train()
    if not isinstance(model, RetinexNet):
        raise TypeError(f"the registry built {type(model).__name__} for retinexnet")
    run.init_weights(model, cfg.init, resume=cfg.resume)
    decom_opt = torch.optim.Adam(model.decom.parameters(), lr=cfg.lr)
    enhance_opt = torch.optim.Adam(model.enhance.parameters(), lr=cfg.lr)

    # --- resume
    step = 0  # over both phases: phase 2 starts at decom_steps
    total = cfg.decom_steps + cfg.enhance_steps
    if cfg.resume:
        step = run.resume(model, decom_optimizer=decom_opt, enhance_optimizer=enhance_opt)["step"]
        if step >= total:
            raise run.finished(f"step {step} of {total}", "--enhance-steps")

    def save(name: str, final: dict[str, float] | None = None) -> None:
        """OUT_DIR/name: resumable (with both optimisers) or, given the final figures, in the shipped format."""
        optimizers = {"decom_optimizer": decom_opt, "enhance_optimizer": enhance_opt}
        run.save(name, model, model_name="retinexnet", model_args={}, optimizers=optimizers, final=final, step=step)

    # --- loop: phase 1 then phase 2, step-based
    bar = tqdm(total=total, initial=step, desc="retinexnet", unit="step", dynamic_ncols=True)
    with run.interruptible(lambda: step):  # Ctrl-C: which step last.pt holds
        while step < total:
            for low, high in loader:
                low, high = low.to(device), high.to(device)
                if step < cfg.decom_steps:  # phase 1: decomposition
                    r_low, i_low = model.decom(low)
                    r_high, i_high = model.decom(high)
                    loss = decomposition_loss(low, high, r_low, i_low, r_high, i_high)
                    if cfg.w_neutral:  # the output is reflectance × illumination: a tinted grey comes from here
                        loss = loss + cfg.w_neutral * (neutral_loss(r_low, low) + neutral_loss(r_high, high))
                    opt = decom_opt
                else:  # phase 2: relighting, Decom-Net frozen
                    with torch.no_grad():
                        r_low, i_low = model.decom(low)
                    loss = relight_loss(r_low, model.enhance(r_low, i_low), high)
                    opt = enhance_opt
                value = optimize(opt, model, loss, step=step + 1, grad_clip=None)  # (the paper's recipe: no clip)
                step += 1
                bar.update(1)
                bar.set_postfix(phase=1 if step <= cfg.decom_steps else 2, loss=f"{value:.4f}")
                if step % cfg.checkpoint_every == 0:
                    save("last.pt")
                if step >= total:
                    break
    bar.close()

    # --- evaluation of the result
    figures = run.log_eval(evaluate(model, held_set, device) if len(held_set) else {}, step=step)
    save("last.pt")
    save("final.pt", final=figures)
    run.close()
    return figures


def main(argv: list[str] | None = None) -> None:
    train(load_config(Config, argv))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    main()
