"""What every training loop shares: the run's folder, device and seed, its checkpoints and its logs.

A loop reads the same way in every trainer::

    run = Run(cfg, tensorboard=cfg.tensorboard)  # OUT_DIR checked, torch seeded, device and threads chosen
    ...                                          # data, model, optimiser
    if cfg.resume:
        ckpt = run.resume(model, optimizer=optimizer)  # weights and optimiser state from OUT_DIR/last.pt
    with run.interruptible(lambda: step):  # Ctrl-C says which step last.pt holds
        ...
    run.log_train(step, loss.item(), parts)  # TensorBoard, every 10 steps
    figures = run.log_eval(figures, step=step)  # one log line, OUT_DIR/log.jsonl, TensorBoard
    run.save("last.pt", model, ..., optimizers={"optimizer": optimizer})  # resumable
    run.save("final.pt", model, ..., final=figures)  # the shipped format: weights, arguments, config, figures
    run.close()

Checkpoints are written through :func:`nightvision.io.atomic.atomic_path`, so a stopped run never leaves half a
file, and load with ``weights_only=True``. A checkpoint that cannot be used (unreadable, of another model, without
optimiser state) and an unusable ``out_dir`` or device are one-line errors
(:class:`~nightvision.errors.InputError`, :class:`~nightvision.errors.EngineError` for the device) that name the
file and what to do. ``OUT_DIR`` is made at the first write, so a run refused over its data or settings leaves no
empty folder behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch

from nightvision.backends.pytorch import _resolve_device
from nightvision.errors import InputError, NightvisionError, OutputError
from nightvision.io.atomic import atomic_path

__all__ = [
    "RESUME_FIX",
    "LossDiverged",
    "Run",
    "RunConfig",
    "check_out_dir",
    "learning_rate",
    "load_last",
    "load_weights",
    "optimize",
    "read_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "tensorboard_writer",
]

log = logging.getLogger(__name__)

TRAIN_LOG_EVERY = 10  # steps between training scalars in TensorBoard
RESUME_FIX = "delete it or train without --resume"  # what a refused last.pt tells the user to do


class LossDiverged(NightvisionError, FloatingPointError):
    """The training loss became NaN or infinite. A :class:`~nightvision.errors.NightvisionError`, so that the
    CLI says it in one line with what to change (the learning rate, usually), and still a
    ``FloatingPointError`` for callers who catch that."""


def optimize(optimizer: torch.optim.Optimizer, model: torch.nn.Module, loss: torch.Tensor, *, step: int,
             grad_clip: float | None, lr: float | None = None) -> float:  # fmt: skip
    """One optimiser step on ``loss`` (gradients clipped to ``grad_clip``, unless ``None``; at learning rate
    ``lr`` where given, e.g. :func:`learning_rate`); returns the loss's value, read once (on a GPU each
    ``.item()`` waits for the device). A NaN or infinite loss raises :class:`LossDiverged` before the weights
    are touched."""
    value = loss.item()
    if not math.isfinite(value):
        raise LossDiverged(f"loss is {value} at step {step}; lower --lr")
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return value


class ScheduleConfig(Protocol):
    """The fields of a trainer's config that :func:`learning_rate` reads."""

    lr: float
    lr_min: float
    warmup: int
    steps: int


def learning_rate(cfg: ScheduleConfig, step: int) -> float:
    """Linear warm-up to ``lr`` over ``warmup`` steps, then cosine decay to ``lr_min`` at ``steps``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * t))


_RUN_CONTROL = frozenset(
    {"resume", "out_dir", "workers", "threads", "tensorboard", "checkpoint_every", "eval_every", "val_every",
     "eval_pairs", "device", "max_steps", "epochs", "decom_steps", "enhance_steps", "init"}
)  # fmt: skip
"""Settings a resumed run may change without changing what it learns from (how long, how often, where; not
``steps``, which sets the learning rate's cosine schedule; ``init`` is read by a fresh run only)."""


def changed_settings(saved: Any, now: Mapping[str, Any]) -> str:
    """The training settings of ``now`` that differ from a checkpoint's ``saved`` config, e.g. ``"lr 0.5 (was
    0.001), crop 32 (was 256)"``; empty when none differ or nothing was saved."""
    if not isinstance(saved, Mapping):
        return ""

    def same(key: str, a: Any, b: Any) -> bool:  # (a folder spelled relative once and absolute once is one)
        if key == "data" and isinstance(a, str) and isinstance(b, str):
            return Path(a).resolve() == Path(b).resolve()
        return bool(a == b)

    return ", ".join(
        f"{key} {value!r} (was {saved[key]!r})"
        for key, value in now.items()
        if key not in _RUN_CONTROL and key in saved and not same(key, saved[key], value)
    )


class RunConfig(Protocol):
    """The fields of a trainer's config that :class:`Run` reads (every config dataclass has them)."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    model: str
    out_dir: str
    seed: int
    device: str
    threads: int


def resolve_device(device: str) -> str:
    """``"auto"`` → ``"cuda"`` when torch sees a GPU, else ``"cpu"``; any other name is checked by the torch
    backend's rule, so that ``--device gpu`` or ``--device cuda`` on a torch without CUDA is refused in one line
    before the run starts, not by an assertion deep inside ``Module.to``."""
    return str(_resolve_device(torch, None if device == "auto" else device))


def check_out_dir(out: Path) -> None:
    """Refuse an ``out_dir`` that is a file, or under one, before anything is read or written: ``mkdir`` would
    only say ``[Errno 17] File exists``."""
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                where = "is a file" if folder == out else f"is under {folder}, which is a file"
                raise InputError(f"--out-dir {out} {where}, not a folder; pick another --out-dir")
            return


CHECKPOINTS = ("last.pt", "best.pt", "final.pt")


def check_fresh(out: Path, *, resume: bool) -> None:
    """Refuse a new run (no ``--resume``) in a folder that holds another run's checkpoints: it would overwrite
    them one by one as it goes."""
    if resume:
        return
    held = [name for name in CHECKPOINTS if (out / name).is_file()]
    if held:
        raise InputError(
            f"--out-dir {out} holds a run already ({', '.join(held)}); continue it with --resume, or give another "
            "--out-dir (a new run would overwrite them)"
        )


def save_checkpoint(ckpt: dict[str, Any], path: Path) -> None:
    """Write ``ckpt`` to ``path`` through a temporary file beside it, so a stopped run never leaves half a
    checkpoint (and the previous one stays whole)."""
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def read_checkpoint(path: Path, device: str, *, fix: str) -> dict[str, Any]:
    """The checkpoint at ``path`` as a dictionary with a ``model`` state dict (a bare state dict is wrapped).

    Whatever stops it from being one (missing, unreadable, truncated, a pickle of something else) is one
    :class:`InputError` that names ``path`` and ends with ``fix``, what the user can do about it; torch's own
    errors are many lines long or, for a truncated file, only ``[Errno 22] Invalid argument``."""
    if not path.is_file():
        raise InputError(f"no checkpoint at {path}; {fix}")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except PermissionError as err:
        raise InputError(f"cannot read {path}: permission denied; {fix}") from err
    except MemoryError:
        raise
    except Exception as err:  # a truncated zip, a text file, a pickle of code: torch raises any of 4 types
        raise InputError(f"{path} is not a checkpoint (unreadable or truncated); {fix}") from err
    if isinstance(ckpt, dict) and "model" not in ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        ckpt = {"model": ckpt}  # a bare state dict, as models.load_checkpoint takes it
    if not (isinstance(ckpt, dict) and isinstance(ckpt.get("model"), dict)):
        raise InputError(f"{path} is not a checkpoint of a model (no state dict in it); {fix}")
    return ckpt


def load_weights(model: torch.nn.Module, ckpt: Mapping[str, Any], path: Path, *, model_name: str, fix: str) -> None:
    """Load ``ckpt["model"]`` into ``model`` (``model_name``), refusing in one line a checkpoint of another model
    (by its recorded name) or one whose first key or shape differs (another width, another variant)."""
    owner = ckpt.get("model_name")
    if owner and owner != model_name:
        raise InputError(f"{path} holds a {owner} model, not {model_name}; {fix}")
    state: Mapping[str, Any] = ckpt["model"]
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise InputError(f"{path} does not fit {model_name}: it has no {key}; {fix}")
        if not isinstance(state[key], torch.Tensor) or state[key].shape != tensor.shape:
            got = tuple(state[key].shape) if isinstance(state[key], torch.Tensor) else type(state[key]).__name__
            raise InputError(
                f"{path} does not fit {model_name}: {key} is {got} there, {tuple(tensor.shape)} here; {fix}"
            )
    extra = next((key for key in state if key not in expected), None)
    if extra is not None:
        raise InputError(f"{path} does not fit {model_name}: it has {extra}, which the model has not; {fix}")
    model.load_state_dict(state)


def load_last(out: Path, device: str) -> dict[str, Any]:
    """The checkpoint ``out/last.pt`` for ``--resume``; a clear error when there is none, or it is unreadable."""
    last = out / "last.pt"
    if not last.is_file():
        raise InputError(f"--resume: no checkpoint at {last}; start without --resume")
    return read_checkpoint(last, device, fix=RESUME_FIX)


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
    """One training run: checks ``cfg.out_dir`` (made at the first write), seeds torch with ``cfg.seed``, picks
    the device (``cfg.device``, ``"auto"`` = CUDA when available; refused in one line when torch cannot use it)
    and the CPU threads (``cfg.threads``, 0 = torch's default), and writes TensorBoard scalars to
    ``OUT_DIR/tb`` when ``tensorboard`` is true and installed.

    Attributes:
        cfg: the resolved config (saved in every checkpoint).
        out: the run folder.
        device: ``"cpu"``, ``"cuda"``, ...
        writer: the TensorBoard writer once opened, or ``None``.
        saved_step: the step ``OUT_DIR/last.pt`` holds (written or resumed by this run), or ``None``.
    """

    def __init__(self, cfg: RunConfig, *, tensorboard: bool = False) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out_dir)
        check_out_dir(self.out)
        check_fresh(self.out, resume=bool(getattr(cfg, "resume", False)))
        self.device = resolve_device(cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        # Denormal floats (tiny gradients of saturated sigmoids, dark activations) run 10-50x slower on x86
        # CPUs; flushed to zero, nothing a float32 training can see changes (Retinex-Net: 13 s/step → see
        # training/README.md).
        torch.set_flush_denormal(True)
        torch.manual_seed(cfg.seed)
        self.tensorboard = tensorboard
        self.writer: Any | None = None
        self.saved_step: int | None = None
        self.started = time.time()

    @property
    def minutes(self) -> float:
        """Wall time since the run started, in minutes."""
        return (time.time() - self.started) / 60

    def folder(self) -> Path:
        """``OUT_DIR``, made now if it is not there: at the first write, so that a run refused over its data
        or settings leaves no empty folder."""
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot make the run folder {self.out}: {err.strerror or err}") from err
        return self.out

    def _tb(self) -> Any | None:
        """The TensorBoard writer, opened on first use (``None`` when disabled or not installed)."""
        if self.tensorboard and self.writer is None:
            self.writer = tensorboard_writer(self.folder(), True)
            self.tensorboard = self.writer is not None  # not installed: warned once, not again
        return self.writer

    def init_weights(self, model: torch.nn.Module, path: str, *, resume: bool) -> None:
        """Start ``model`` from the weights of the checkpoint at ``path`` (fine-tuning: a trainer's ``init``);
        nothing when ``path`` is empty or the run resumes (then ``last.pt`` holds the weights)."""
        if path and not resume:
            fix = "check --init (a final.pt, best.pt or shipped .pt of this model)"
            ckpt = read_checkpoint(Path(path), self.device, fix=fix)
            load_weights(model, ckpt, Path(path), model_name=self.cfg.model, fix=fix)
            log.info("initialised from %s", path)

    def resume(self, model: torch.nn.Module, **optimizers: torch.optim.Optimizer) -> dict[str, Any]:
        """Load ``OUT_DIR/last.pt`` into ``model`` and each optimiser (by its keyword: the key it was saved
        under with :meth:`save`); returns the checkpoint for the loop's own progress counters.

        A ``last.pt`` of another model, or without optimiser state (a ``final.pt``/``best.pt`` copied over
        it), or one torch cannot read, is refused in one line that names it."""
        last, name = self.out / "last.pt", self.cfg.model
        ckpt = load_last(self.out, self.device)
        owner = ckpt.get("model_name")
        if owner and owner != name:
            raise InputError(f"{last} holds a {owner} model, not {name}; resume with --model {owner}, or {RESUME_FIX}")
        load_weights(model, ckpt, last, model_name=name, fix=RESUME_FIX)
        missing = [key for key in optimizers if not isinstance(ckpt.get(key), dict)]
        if missing or not isinstance(ckpt.get("step"), int):
            raise InputError(
                f"{last} has no optimizer state (a final/best checkpoint?); {RESUME_FIX} "
                f"(--init {last} would start a fine-tune from its weights)"
            )
        for key, optimizer in optimizers.items():
            try:
                optimizer.load_state_dict(ckpt[key])
            except (ValueError, KeyError, RuntimeError) as err:
                raise InputError(f"{last}: its {key} state does not fit this model; {RESUME_FIX}") from err
        self.saved_step = ckpt["step"]
        log.info("resumed from %s at step %d", last, ckpt["step"])
        changed = changed_settings(ckpt.get("config"), dataclasses.asdict(self.cfg))
        if changed:
            log.warning(
                "resuming with settings that differ from the run's: %s; the rest of the run uses the new ones "
                "(to continue the run as it was, give it the same settings)", changed,
            )  # fmt: skip
        return ckpt

    def finished(self, progress: str, flag: str) -> InputError:
        """The refusal of a ``--resume`` from a ``last.pt`` that has run its course (``progress``, e.g. ``step
        40 of 40``): the loop would do nothing and rewrite ``final.pt`` with the figures of no evaluation."""
        return InputError(f"{self.out / 'last.pt'} has finished ({progress}); raise {flag} to train on")

    @contextlib.contextmanager
    def interruptible(self, step: Callable[[], int]) -> Iterator[None]:
        """Around a training loop: on Ctrl-C (or SIGTERM, from a job scheduler or `kill`), say which step the
        loop reached (``step()``) and which ``last.pt`` holds, and that ``--resume`` continues from there, then
        let the interrupt go on (the CLI exits with 130, or 143). Nothing is saved then: the interrupt may have
        come in the middle of a step."""
        from nightvision.stream.pipeline import SAME_SIGNAL_S, Interrupted

        first: list[float] = []

        def on_term(signum: int, frame: object) -> None:
            if first and time.monotonic() - first[0] < SAME_SIGNAL_S:
                return  # the same request delivered twice (GNU timeout: the command, then its group)
            first.append(time.monotonic())
            raise Interrupted("SIGTERM")

        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, on_term) if main else None
        try:
            yield
        except KeyboardInterrupt:
            last = self.out / "last.pt"
            if self.saved_step is None:
                log.warning(
                    "stopped at step %d, before the first checkpoint (every %d steps): nothing to resume",
                    step(), getattr(self.cfg, "checkpoint_every", 0),
                )  # fmt: skip
            else:
                log.warning(
                    "stopped at step %d; %s holds step %d: the same command with --resume continues from there",
                    step(), last, self.saved_step,
                )  # fmt: skip
            raise
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)

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
        path = self.folder() / name
        save_checkpoint(ckpt, path)
        if name == "last.pt":
            self.saved_step = progress.get("step")
        return path

    def log_train(self, step: int, loss: float, parts: Mapping[str, Any] | None = None) -> None:
        """Training scalars (``train/total`` and each loss term) to TensorBoard every ten steps."""
        if not self.tensorboard or step % TRAIN_LOG_EVERY:
            return
        writer = self._tb()
        if writer is None:
            return
        writer.add_scalar("train/total", float(loss), step)
        for key, value in (parts or {}).items():
            value = value.detach() if isinstance(value, torch.Tensor) else value  # (no autograd warning)
            writer.add_scalar(f"train/{key}", float(value), step)

    def log_eval(self, figures: Mapping[str, float], **progress: float) -> dict[str, float]:
        """Record a held-out evaluation: ``figures`` with the loop's ``progress`` (step, epoch...) and the
        minutes so far, as one log line, one line of ``OUT_DIR/log.jsonl`` and ``val/*`` scalars. Returns
        that record."""
        record = {**figures, **progress, "minutes": self.minutes}
        log.info("eval %s", json.dumps({k: round(v, 5) for k, v in record.items()}))
        with open(self.folder() / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        writer = self._tb()
        if writer is not None:
            step = int(progress.get("step", 0))
            for key, value in record.items():
                writer.add_scalar(f"val/{key}", value, step)
        return record

    def close(self) -> None:
        """Flush and close the TensorBoard writer (idempotent)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
