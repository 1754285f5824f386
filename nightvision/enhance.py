"""Enhance files: one image, a folder of images and videos (recursive), or one video.

:func:`enhance_path` is what ``nightvision enhance`` calls. Every output is written to a temporary name and
renamed when complete, so an error or Ctrl-C never leaves a half-written file behind.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from nightvision.enhancer import Enhancer
from nightvision.errors import InputError
from nightvision.evaluation.metrics import mean_luma
from nightvision.io.images import is_image, read_image, write_image
from nightvision.io.video import AudioPacket, VideoFrame, VideoReader, VideoWriter, is_video
from nightvision.stream.stages import Chain

__all__ = ["EnhanceReport", "enhance_path", "enhance_video"]

log = logging.getLogger(__name__)


@dataclass
class EnhanceReport:
    """What an :func:`enhance_path` call did."""

    files: int = 0
    frames: int = 0
    seconds: float = 0.0
    luma_in: float = 0.0  # mean over frames, 0-255
    luma_out: float = 0.0
    outputs: list[Path] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)  # busy time of decode / enhance / write

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def add(self, other: EnhanceReport) -> None:
        total = self.frames + other.frames
        if total:
            self.luma_in = (self.luma_in * self.frames + other.luma_in * other.frames) / total
            self.luma_out = (self.luma_out * self.frames + other.luma_out * other.frames) / total
        self.files += other.files
        self.frames = total
        self.seconds += other.seconds
        self.outputs += other.outputs


def enhance_path(
    source: str | Path,
    output: str | Path,
    *,
    enhancer: Enhancer,
    progress: bool = True,
    crf: int = 18,
) -> EnhanceReport:
    """Enhance an image, a video or a folder into ``output``.

    Args:
        source: an image file, a video file (mp4/mkv/avi/mov/m4v/webm) or a folder (searched recursively).
        output: a file for a file source; a folder for a folder source (relative paths are kept).
        enhancer: the loaded model.
        progress: show a progress bar.
        crf: x264 quality for video outputs.
    """
    source, output = Path(source), Path(output)
    if not source.exists():
        raise InputError(f"no such file or folder: {source}")
    if source.is_dir():
        return _enhance_folder(source, output, enhancer=enhancer, progress=progress, crf=crf)
    if output.is_dir():
        output = output / source.name
    if is_video(source):
        if not is_video(output):
            raise InputError(f"the output of a video must be a video file (.mp4, .mkv, ...), got {output}")
        return enhance_video(source, output, enhancer=enhancer, progress=progress, crf=crf)
    if is_image(source):
        if not is_image(output):
            raise InputError(f"the output of an image must be an image file (.png, .jpg, ...), got {output}")
        return _enhance_image(source, output, enhancer)
    raise InputError(f"unsupported input {source}: expected an image, a video or a folder")


def _enhance_image(source: Path, output: Path, enhancer: Enhancer) -> EnhanceReport:
    t0 = time.perf_counter()
    image = read_image(source)
    out = enhancer.enhance(image)
    seconds = time.perf_counter() - t0
    write_image(output, out)
    return EnhanceReport(
        files=1,
        frames=1,
        seconds=seconds,
        luma_in=_luma(image),
        luma_out=_luma(out),
        outputs=[output],
    )


def _luma(image: np.ndarray) -> float:
    """Mean luma on 0-255 of any image ``read_image`` returns (grey, BGR, BGRA; 8 or 16 bit)."""
    as8 = cv2.convertScaleAbs(image, alpha=255.0 / 65535.0) if image.dtype == np.uint16 else image
    if as8.ndim == 3 and as8.shape[2] == 1:
        as8 = as8[:, :, 0]
    return mean_luma(as8 if as8.ndim == 2 else np.ascontiguousarray(as8[:, :, :3]))


def _enhance_folder(source: Path, output: Path, *, enhancer: Enhancer, progress: bool, crf: int) -> EnhanceReport:
    if output.exists() and not output.is_dir():
        raise InputError(f"the output of a folder must be a folder, and {output} is a file")
    files = sorted(p for p in source.rglob("*") if p.is_file() and (is_image(p) or is_video(p)))
    if not files:
        raise InputError(f"no images or videos in {source}")
    report = EnhanceReport()
    for path in tqdm(files, desc="files", unit="file", disable=not progress or len(files) < 2):
        target = output / path.relative_to(source)
        if is_video(path):
            report.add(enhance_video(path, target, enhancer=enhancer, progress=progress, crf=crf))
        else:
            report.add(_enhance_image(path, target, enhancer))
    return report


def enhance_video(
    source: str | Path, output: str | Path, *, enhancer: Enhancer, progress: bool = True, crf: int = 18
) -> EnhanceReport:
    """Enhance every frame of a video, keeping size, frame count, timestamps and the audio track.

    Decoding, inference and encoding run in three threads joined by bounded queues (lossless, in order).
    """
    source, output = Path(source), Path(output)
    if source.resolve() == output.resolve():
        raise InputError(f"the output would overwrite the input {source}; choose another name")
    report = EnhanceReport(files=1)
    with VideoReader(source, audio=True) as reader:
        info = reader.info
        writer = VideoWriter(
            output,
            info.width,
            info.height,
            info.fps,
            time_base=info.time_base,
            audio_template=reader.audio_stream,
            crf=crf,
        )
        bar = tqdm(
            total=info.frames or None,
            desc=source.name,
            unit="frame",
            disable=not progress,
            dynamic_ncols=True,
        )
        sums = [0.0, 0.0]

        def enhance(item: VideoFrame | AudioPacket) -> Any:
            if isinstance(item, VideoFrame):
                out = enhancer.enhance(item.image)
                sums[0] += mean_luma(item.image)
                sums[1] += mean_luma(out)
                return VideoFrame(out, item.pts, item.index)
            return item

        def write(item: VideoFrame | AudioPacket) -> None:
            if isinstance(item, VideoFrame):
                writer.write(item.image, item.pts)
                bar.update(1)
            else:
                writer.write_audio(item)

        t0 = time.perf_counter()
        chain = Chain(reader, [("enhance", enhance), ("write", write)], depth=8).start()
        try:
            chain.join()
            writer.close()
        except BaseException:
            chain.stop()
            writer.abort()
            raise
        finally:
            bar.close()
        report.seconds = time.perf_counter() - t0
        report.frames = writer.frames_written
        if report.frames:
            report.luma_in, report.luma_out = sums[0] / report.frames, sums[1] / report.frames
        report.outputs.append(output)
        report.stage_seconds = {
            "decode": chain.busy_seconds["source"],
            **{k: v for k, v in chain.busy_seconds.items() if k != "source"},
        }
        log.info(
            "%s: %d frames in %.1f s (%.1f FPS), mean luma %.1f -> %.1f; stage busy seconds %s",
            source.name,
            report.frames,
            report.seconds,
            report.fps,
            report.luma_in,
            report.luma_out,
            {k: round(v, 2) for k, v in chain.busy_seconds.items()},
        )
    return report
