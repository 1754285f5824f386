"""Frame stages: per-frame steps the pipeline runs before and after the model (a temporal denoiser, exposure
control, ...), each in its own thread.

A stage is any object with a ``name``, a ``__call__(frame) -> frame`` and a ``reset()``:

>>> class Invert:
...     name = "invert"
...     def __call__(self, frame): return 255 - frame
...     def reset(self): pass
>>> Pipeline(source, enhancer, sinks, post_stages=[Invert()])

``pre_stages`` get the input frame before the model: ``(H, W, 3)`` BGR, uint8 (video and live sources) or
uint16 (16-bit images), and return the same layout, uint8 or uint16. ``post_stages`` get the enhanced frame,
``(H, W, 3)`` BGR uint8 (uint16 only for 16-bit still images), and return a frame for the sinks. A post
stage with ``takes_input = True`` is called as ``stage(frame, model_input)``, the second being the frame the
model enhanced (after the pre stages), for stages that compare the two (exposure control).

A pre stage with a ``fit_to(enhancer)`` method is called when the pipeline is made, before any frame, with
the pipeline's model if it is the last pre stage (the one that hands frames to the model), else with ``None``
(its frames go to another pre stage, in uint8): the temporal denoiser picks there the dtype of its output.

A stage with ``temporal = True`` works from the frames before the current one (the temporal denoiser): the
pipeline passes still images (an image file, each file of a folder job) by it unchanged, since they have no
past frames and the stage could only change their colours or depth.

A stage that keeps state across frames (a temporal filter) must forget it in ``reset()``. The pipeline calls
``reset()`` on every stage, from the thread that runs it, when a run (or a file of a folder job) starts, when
the frame size changes, when a live source reconnects (``Source.reconnects`` grew) and when a looped file or
folder starts again (``Source.passes``), so no stage ever mixes frames of two different scenes or sizes.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from nightvision.errors import InputError, ShapeError

__all__ = ["FrameStage", "check_stage", "check_stage_output"]


@runtime_checkable
class FrameStage(Protocol):
    """A per-frame step: ``frame -> frame``, with state that ``reset()`` forgets."""

    name: str

    def __call__(self, frame: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


def check_stage(stage: object) -> FrameStage:
    """``stage`` if it has ``name``, ``__call__`` and ``reset``; else an :class:`InputError` saying what lacks."""
    missing = [a for a in ("name", "__call__", "reset") if not hasattr(stage, a)]
    if missing or not isinstance(getattr(stage, "name", None), str):
        raise InputError(
            f"{stage!r} is not a frame stage: it needs a str `name`, `__call__(frame)` and `reset()` "
            f"(missing: {', '.join(missing) or 'a str name'})"
        )
    assert isinstance(stage, FrameStage)
    return stage


def check_stage_output(name: str, frame: object) -> np.ndarray:
    """The frame a stage returned, if it is ``(H, W, 3)`` uint8 or uint16; else a :class:`ShapeError`."""
    if (
        not isinstance(frame, np.ndarray)
        or frame.ndim != 3
        or frame.shape[2] != 3
        or frame.dtype not in (np.uint8, np.uint16)
    ):
        got = f"{frame.shape} {frame.dtype}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ShapeError(f"frame stage {name!r} must return (H, W, 3) uint8 or uint16 BGR, got {got}")
    return frame
