"""The quick-start job: enhance a low-light clip and save a before|after picture.

``nightvision demo [VIDEO] [-o DIR]`` enhances VIDEO (or a synthetic dark clip made on the spot, kept as
``DIR/sample-dark.mp4``) into ``DIR/enhanced.mp4`` through the pipeline (:func:`enhance_path`) and writes
``DIR/side-by-side.png`` from the middle frame. Existing outputs are replaced only with ``overwrite``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from nightvision.errors import InputError
from nightvision.io.images import write_image
from nightvision.io.outputs import check_outputs
from nightvision.io.video import VideoReader, is_video
from nightvision.sample import make_sample_video
from nightvision.stream.frame_stages import FrameStage
from nightvision.stream.jobs import EnhanceReport, EnhancerLike, Progress, enhance_path
from nightvision.stream.pipeline import StopRequest

__all__ = ["DemoResult", "run_demo", "side_by_side"]

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """What :func:`run_demo` made (``picture`` is None when the job was stopped before its end)."""

    source: Path
    enhanced: Path
    picture: Path | None
    report: EnhanceReport


def side_by_side(
    before: np.ndarray, after: np.ndarray, *, labels: tuple[str, str] = ("input", "nightvision")
) -> np.ndarray:
    """``before | after`` with a label in each half (uint8 BGR, same size inputs)."""
    pair = np.hstack([before, after])
    scale = max(0.5, before.shape[0] / 720)
    for i, text in enumerate(labels):
        org = (10 + i * before.shape[1], int(30 * scale))
        cv2.putText(pair, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, (0, 0, 0), int(4 * scale), cv2.LINE_AA)
        cv2.putText(
            pair,
            text,
            org,
            cv2.FONT_HERSHEY_SIMPLEX,
            0.8 * scale,
            (255, 255, 255),
            max(1, int(2 * scale)),
            cv2.LINE_AA,
        )
    return pair


def run_demo(
    video: str | Path | None,
    out_dir: str | Path,
    *,
    enhancer: EnhancerLike,
    overwrite: bool = False,
    stop: StopRequest | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    pre_stages: Sequence[FrameStage] = (),
    post_stages: Sequence[FrameStage] = (),
) -> DemoResult:
    """Enhance ``video`` (default: a synthetic dark clip) and write the side-by-side picture.

    Args:
        video: a low-light clip, or None for the synthetic one.
        out_dir: where ``enhanced.mp4`` and ``side-by-side.png`` go.
        enhancer: the model, or a function that loads it.
        overwrite: replace ``enhanced.mp4`` and ``side-by-side.png`` when they exist (else refused).
        pre_stages, post_stages: frame stages before and after the model (denoiser, exposure control).
        stop, on_progress: see :func:`~nightvision.stream.jobs.enhance_path`.
    """
    out_dir = Path(out_dir)
    if video is not None and Path(video).is_dir():
        raise InputError(f"the demo takes a video, and {video} is a folder; enhance folders with `nightvision enhance`")
    if video is not None and Path(video).is_file() and not is_video(Path(video)):
        raise InputError(f"the demo takes a video, and {video} is not one; enhance an image with `nightvision enhance`")
    enhanced, picture = out_dir / "enhanced.mp4", out_dir / "side-by-side.png"
    check_outputs([video] if video is not None else [], [enhanced, picture], overwrite=overwrite)
    if video is None:
        video = out_dir / "sample-dark.mp4"
        if not video.is_file():
            make_sample_video(video)
            log.info("no video given: made a synthetic dark clip %s", video)
    video = Path(video)
    report = enhance_path(
        video,
        enhanced,
        enhancer=enhancer,
        overwrite=overwrite,
        stop=stop,
        on_progress=on_progress,
        pre_stages=pre_stages,
        post_stages=post_stages,
    )
    if report.stopped_by:
        return DemoResult(video, report.partial or enhanced, None, report)
    with VideoReader(video) as src, VideoReader(enhanced) as dst:
        middle = max(0, report.frames // 2)
        before = next(f.image for f in src.frames() if f.index == middle)
        after = next(f.image for f in dst.frames() if f.index == middle)
    write_image(picture, side_by_side(before, after))
    return DemoResult(video, enhanced, picture, report)
