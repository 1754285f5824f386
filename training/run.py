"""What every training loop shares: the run's folder, device and seed, its checkpoints and its logs.

A loop reads the same way in every trainer::

    run = Run(cfg, tensorboard=cfg.tensorboard)  # OUT_DIR made, torch seeded, device and threads chosen
    ...                                          # data, model, optimiser
    if cfg.resume:
        ckpt = run.resume(model, optimizer=optimizer)  # weights and optimiser state from OUT_DIR/last.pt
    ...
    run.log_train(step, loss.item(), parts)  # TensorBoard, every 10 steps
    figures = run.log_eval(figures, step=step)  # one log line, OUT_DIR/log.jsonl, TensorBoard
    run.save("last.pt", model, ..., optimizers={"optimizer": optimizer})  # resumable
    run.save("final.pt", model, ..., final=figures)  # the shipped format: weights, arguments, config, figures
    run.close()

Checkpoints are written through :func:`nightvision.io.atomic.atomic_path`, so a stopped run never leaves half a
file, and load with ``weights_only=True``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch

from nightvision.errors import InputError
from nightvision.io.atomic import atomic_path

__all__ = ["Run", "RunConfig", "load_last", "resolve_device", "save_checkpoint", "tensorboard_writer"]

log = logging.getLogger(__name__)

TRAIN_LOG_EVERY = 10  # steps between training scalars in TensorBoard


class RunConfig(Protocol):
    """The fields of a trainer's config that :class:`Run` reads (every config dataclass has them)."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    out_dir: str
    seed: int
    device: str
    threads: int


def resolve_device(device: str) -> str:
    """``"auto"`` → ``"cuda"`` when torch sees a GPU, else ``"cpu"``; any other name unchanged."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def save_checkpoint(ckpt: dict[str, Any], path: Path) -> None:
    """Write ``ckpt`` to ``path`` through a temporary file beside it, so a stopped run never leaves half a
    checkpoint (and the previous one stays whole)."""
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def load_last(out: Path, device: str) -> dict[str, Any]:
    """The checkpoint ``out/last.pt`` for ``--resume``; a clear error when there is none."""
    last = out / "last.pt"
    if not last.is_file():
        raise InputError(f"--resume: no checkpoint at {last}; start without --resume")
    ckpt: dict[str, Any] = torch.load(last, map_location=device, weights_only=True)
    return ckpt


def tensorboard_writer(out: Path, enabled: bool) -> Any | None:
    """A ``SummaryWriter`` on ``out/tb``, or ``None`` when disabled or tensorboard is not installed."""
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("tensorboard is not installed; figures are only logged to %s", out / "log.jsonl")
        return None
    return SummaryWriter(str(out / "tb"))


class Run:
    """One training run: creates ``cfg.out_dir``, seeds torch with ``cfg.seed``, picks the device
    (``cfg.device``, ``"auto"`` = CUDA when available) and the CPU threads (``cfg.threads``, 0 = torch's
    default), and opens a TensorBoard writer on ``OUT_DIR/tb`` when ``tensorboard`` is true and installed.

    Attributes:
        cfg: the resolved config (saved in every checkpoint).
        out: the run folder.
        device: ``"cpu"``, ``"cuda"``, ...
        writer: the TensorBoard writer, or ``None``.
    """

    def __init__(self, cfg: RunConfig, *, tensorboard: bool = False) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = resolve_device(cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        # Denormal floats (tiny gradients of saturated sigmoids, dark activations) run 10-50x slower on x86
        # CPUs; flushed to zero, nothing a float32 training can see changes (Retinex-Net: 13 s/step → see
        # training/README.md).
        torch.set_flush_denormal(True)
        torch.manual_seed(cfg.seed)
        self.writer = tensorboard_writer(self.out, tensorboard)
        self.started = time.time()

    @property
    def minutes(self) -> float:
        """Wall time since the run started, in minutes."""
        return (time.time() - self.started) / 60

    def init_weights(self, model: torch.nn.Module, path: str, *, resume: bool) -> None:
        """Start ``model`` from the weights of the checkpoint at ``path`` (fine-tuning: a trainer's ``init``);
        nothing when ``path`` is empty or the run resumes (then ``last.pt`` holds the weights)."""
        if path and not resume:
            from nightvision import models

            models.load_checkpoint(model, path)
            log.info("initialised from %s", path)

    def resume(self, model: torch.nn.Module, **optimizers: torch.optim.Optimizer) -> dict[str, Any]:
        """Load ``OUT_DIR/last.pt`` into ``model`` and each optimiser (by its keyword: the key it was saved
        under with :meth:`save`); returns the checkpoint for the loop's own progress counters."""
        ckpt = load_last(self.out, self.device)
        model.load_state_dict(ckpt["model"])
        for key, optimizer in optimizers.items():
            optimizer.load_state_dict(ckpt[key])
        log.info("resumed from %s at step %d", self.out / "last.pt", ckpt.get("step", 0))
        return ckpt

    def save(
        self,
        name: str,
        model: torch.nn.Module,
        *,
        model_name: str,
        model_args: Mapping[str, Any],
        optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
        final: Mapping[str, float] | None = None,
        **progress: Any,
    ) -> Path:
        """Write ``OUT_DIR/name``: the state dict, the model's name and constructor arguments, the resolved
        config and the loop's ``progress`` (step, epoch, best...), then either the ``optimizers``' states
        (``final`` is ``None``: a checkpoint to resume from) or the ``final`` figures (the shipped format,
        no optimiser state)."""
        ckpt: dict[str, Any] = {
            "model": model.state_dict(),
            "model_name": model_name,
            "model_args": dict(model_args),
            "config": dataclasses.asdict(self.cfg),
            **progress,
        }
        if final is None:
            ckpt.update({key: opt.state_dict() for key, opt in (optimizers or {}).items()})
        else:
            ckpt["final"] = dict(final)
        path = self.out / name
        save_checkpoint(ckpt, path)
        return path

    def log_train(self, step: int, loss: float, parts: Mapping[str, Any] | None = None) -> None:
        """Training scalars (``train/total`` and each loss term) to TensorBoard every ten steps."""
        if self.writer is None or step % TRAIN_LOG_EVERY:
            return
        self.writer.add_scalar("train/total", float(loss), step)
        for key, value in (parts or {}).items():
            self.writer.add_scalar(f"train/{key}", float(value), step)

    def log_eval(self, figures: Mapping[str, float], **progress: float) -> dict[str, float]:
        """Record a held-out evaluation: ``figures`` with the loop's ``progress`` (step, epoch...) and the
        minutes so far, as one log line, one line of ``OUT_DIR/log.jsonl`` and ``val/*`` scalars. Returns
        that record."""
        record = {**figures, **progress, "minutes": self.minutes}
        log.info("eval %s", json.dumps({k: round(v, 5) for k, v in record.items()}))
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            step = int(progress.get("step", 0))
            for key, value in record.items():
                self.writer.add_scalar(f"val/{key}", value, step)
        return record

    def close(self) -> None:
        """Flush and close the TensorBoard writer (idempotent)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
