"""The quick-start job: enhance a low-light clip and save a before|after picture.

``nightvision demo [VIDEO] [-o DIR]`` enhances VIDEO (or a synthetic dark clip made on the spot) into
``DIR/enhanced.mp4`` and writes ``DIR/side-by-side.png`` from the middle frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from nightvision.enhance import EnhanceReport, enhance_video
from nightvision.enhancer import Enhancer
from nightvision.io.images import write_image
from nightvision.io.video import VideoReader
from nightvision.sample import make_sample_video

__all__ = ["DemoResult", "run_demo", "side_by_side"]

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    source: Path
    enhanced: Path
    picture: Path
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


def run_demo(video: str | Path | None, out_dir: str | Path, *, enhancer: Enhancer, progress: bool = True) -> DemoResult:
    """Enhance ``video`` (default: a synthetic dark clip) and write the side-by-side picture."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if video is None:
        video = make_sample_video(out_dir / "sample-dark.mp4")
        log.info("no video given: made a synthetic dark clip %s", video)
    video = Path(video)
    enhanced = out_dir / "enhanced.mp4"
    report = enhance_video(video, enhanced, enhancer=enhancer, progress=progress)
    with VideoReader(video) as src, VideoReader(enhanced) as dst:
        middle = max(0, report.frames // 2)
        before = next(f.image for f in src.frames() if f.index == middle)
        after = next(f.image for f in dst.frames() if f.index == middle)
    picture = out_dir / "side-by-side.png"
    write_image(picture, side_by_side(before, after))
    return DemoResult(video, enhanced, picture, report)
