"""Train a restoration model (NAFNet, MIRNet-v2, Retinex-Net's Enhance-Net...) on (low, high) pairs.

Read it top to bottom: config, data, model, optimiser and schedule, evaluation, loop.

    python -m nightvision.training.supervised --config training/recipes/nafnet-s.toml --data ../shared/data/sice
    nightvision train --config training/recipes/nafnet-s.toml --resume

Data: a folder of exposure brackets (pairs built by :mod:`nightvision.evaluation.pairs`: its ``train`` scenes train,
scenes with ``k % 10 == 5`` among them are held out for checkpoint selection, and its ``test`` scenes are
never seen here; ``nightvision eval`` scores them), or a LOL-style folder with ``low/`` and ``high/`` (with
``eval/`` or ``test/`` beside ``train/`` when present).

Every hyperparameter lives in :class:`~nightvision.training.config.SupervisedConfig` (torch-free, so that
``nightvision train --help`` lists them anywhere); a recipe file sets some, ``--key value`` flags override.
``OUT_DIR/last.pt`` is written every ``checkpoint_every`` steps and at each evaluation; ``--resume``
continues from it. ``OUT_DIR/best.pt`` (highest held-out PSNR) and ``OUT_DIR/final.pt`` are in the shipped
format: state dict, model arguments, config and evaluation figures.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from nightvision import models
from nightvision.errors import InputError
from nightvision.losses import charbonnier_loss, l1_loss, neutral_loss, psnr, psnr_loss, ssim, ssim_loss
from nightvision.specs import get_spec
from nightvision.training.config import SupervisedConfig as Config
from nightvision.training.config import load_config
from nightvision.training.data import PairedPatches, check_batches, lol_pairs
from nightvision.training.run import Run, learning_rate, optimize

__all__ = ["Config", "criterion", "evaluate", "learning_rate", "main", "split_pairs", "train"]

log = logging.getLogger(__name__)


def split_pairs(
    data: str | Path, *, max_input_level: float = 0.25, identity_pairs: bool = False
) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """(train, held-out) pairs of a bracket folder or a LOL-style folder (see the module docstring).

    For brackets, ``max_input_level`` and ``identity_pairs`` widen the *training* pairs only; the held-out
    pairs always follow the default rule, so that figures stay comparable between runs."""
    root = Path(data)
    if (root / "low").is_dir():
        return lol_pairs(root), []
    if (root / "train" / "low").is_dir():
        held_dir = next((root / s for s in ("eval", "val", "test") if (root / s / "low").is_dir()), None)
        return lol_pairs(root / "train"), (lol_pairs(held_dir) if held_dir else [])
    if not root.is_dir():
        raise InputError(f"training data folder not found: {root}")
    from nightvision.evaluation.pairs import build_pairs

    pairs = [p for p in build_pairs(root) if p.split == "train"]
    held = [(p.low, p.high) for p in pairs if p.scene % 10 == 5]
    if max_input_level != 0.25:
        pairs = [p for p in build_pairs(root, max_input_level=max_input_level) if p.split == "train"]
    train = [(p.low, p.high) for p in pairs if p.scene % 10 != 5]
    if identity_pairs:
        train += [(high, high) for high in sorted({h for _, h in train})]
    return train, held


def criterion(cfg: Config, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the configured losses, and each term's value for the logs."""
    terms = {
        "charbonnier": (cfg.w_charbonnier, charbonnier_loss),
        "l1": (cfg.w_l1, l1_loss),
        "ssim": (cfg.w_ssim, ssim_loss),
        "psnr": (cfg.w_psnr, psnr_loss),
        "neutral": (cfg.w_neutral, neutral_loss),  # a grey target (a grey pair) asks for a grey output
    }
    total = pred.new_zeros(())
    parts: dict[str, float] = {}
    for name, (weight, fn) in terms.items():
        if weight:
            value = fn(pred, target)
            total = total + weight * value
            parts[name] = float(value.detach())
    return total, parts


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataset: PairedPatches, device: str) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM over the held-out pairs, whole images, output clamped to [0, 1]."""
    model.eval()
    p, s = [], []
    for i in range(len(dataset)):
        x, y = (t[None].to(device) for t in dataset[i])
        out = model(x).clamp(0, 1)
        p.append(float(psnr(out, y)))
        s.append(float(ssim(out, y)))
    model.train()
    return {"psnr": sum(p) / max(1, len(p)), "ssim": sum(s) / max(1, len(s))}


def train(cfg: Config) -> dict[str, float]:
    """Train and return the final held-out figures."""
    run = Run(cfg, tensorboard=cfg.tensorboard)  # OUT_DIR, seed, device, threads, TensorBoard
    device = run.device

    # --- data
    spec = get_spec(cfg.model)
    train_pairs, held_pairs = split_pairs(
        cfg.data, max_input_level=cfg.max_input_level, identity_pairs=cfg.identity_pairs
    )
    train_set = PairedPatches(train_pairs, cfg.patch, train=True, repeat=cfg.repeat, grey=cfg.grey)
    what = f"{len(train_set)} training patches per epoch ({len(train_pairs)} pairs x --repeat {cfg.repeat})"
    check_batches(len(train_set), cfg.batch_size, what, "lower --batch-size, raise --repeat or add pairs")
    if cfg.eval_pairs and cfg.eval_pairs < len(held_pairs):  # evenly spread: every scene keeps its chance
        held_pairs = [held_pairs[round(i * len(held_pairs) / cfg.eval_pairs)] for i in range(cfg.eval_pairs)]
    held_set = PairedPatches(held_pairs, train=False, multiple=spec.pad_multiple)
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=True, generator=gen)
    log.info("data: %d training pairs, %d held out, from %s", len(train_pairs), len(held_pairs), cfg.data)

    # --- model and optimiser
    margs = dict(spec.kwargs)
    model = models.create(cfg.model, pretrained=False, **margs).to(device).train()
    run.init_weights(model, cfg.init, resume=cfg.resume)
    betas = (cfg.beta1, cfg.beta2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=betas)
    log.info("model %s: %d parameters, device %s", cfg.model, sum(p.numel() for p in model.parameters()), device)

    # --- resume
    step, best = 0, -math.inf  # best = highest held-out PSNR so far
    if cfg.resume:
        ckpt = run.resume(model, optimizer=optimizer)
        step, best = ckpt["step"], ckpt.get("best", best)
        if step >= cfg.steps:
            raise run.finished(f"step {step} of {cfg.steps}", "--steps")
        gen.manual_seed(cfg.seed + step)

    def save(name: str, final: dict[str, float] | None = None) -> None:
        """OUT_DIR/name: resumable (with the optimiser) or, given the final figures, in the shipped format."""
        optimizers = {"optimizer": optimizer}
        run.save(name, model, model_name=cfg.model, model_args=margs, optimizers=optimizers, final=final,
                 step=step, best=best)  # fmt: skip

    # --- loop: step-based (small datasets), evaluate every eval_every steps
    figures: dict[str, float] = {}
    bar = tqdm(total=cfg.steps, initial=step, desc=cfg.model, unit="step", dynamic_ncols=True)
    with run.interruptible(lambda: step):  # Ctrl-C: which step last.pt holds
        while step < cfg.steps:
            for x, y in loader:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                loss, parts = criterion(cfg, model(x), y)
                lr = learning_rate(cfg, step)
                value = optimize(optimizer, model, loss, step=step, grad_clip=cfg.grad_clip, lr=lr)
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4f}")
                run.log_train(step, value, parts)
                if step % cfg.eval_every == 0 or step == cfg.steps:
                    held = evaluate(model, held_set, device) if len(held_set) else {}
                    figures = run.log_eval(held, step=step, loss=value)
                    if figures.get("psnr", -math.inf) > best or not len(held_set):
                        best = figures.get("psnr", best)
                        save("best.pt", final=figures)
                    save("last.pt")
                elif step % cfg.checkpoint_every == 0:
                    save("last.pt")
                if step >= cfg.steps:
                    break
    bar.close()
    save("final.pt", final=figures)
    run.close()
    log.info("done in %.1f min; best held-out PSNR %.2f dB in %s", run.minutes, best, run.out / "best.pt")
    return figures


def main(argv: list[str] | None = None) -> None:
    cfg = load_config(Config, argv)
    train(cfg)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    main()
