"""Flicker and motion with and without temporal smoothing, on real clips.

    python benchmarks/flicker.py ../shared/videos/*.mp4 --frames 300

For each clip, the first N frames are enhanced twice with the shipped zero-dce++ (fast curve path): frame by
frame, and with :class:`nightvision.stream.temporal.CurveSmoother`. Prints :func:`nightvision.stream.temporal.flicker`
(brightness pumping, output over input: lower is steadier) and :func:`nightvision.stream.temporal.motion`
(frame-to-frame pixel change, output over input: smoothing should leave it about where it was).
"""

from __future__ import annotations

import argparse
from itertools import islice

from nightvision import Enhancer
from nightvision.io.video import VideoReader
from nightvision.stream.temporal import CurveSmoother, flicker, motion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("videos", nargs="+")
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    enhancer = Enhancer("zero-dce++")
    print("| clip | frames | flicker, per frame | flicker, smoothed | motion, per frame | motion, smoothed |")
    print("|---|---|---|---|---|---|")
    for path in args.videos:
        with VideoReader(path) as reader:
            frames = [f.image for f in islice(reader.frames(), args.frames)]
        raw, smooth, smoother = [], [], CurveSmoother()
        for f in frames:
            job = enhancer.infer(enhancer.preprocess(f))
            raw.append(enhancer.postprocess(job))
            smooth.append(enhancer.postprocess(smoother(enhancer.infer(enhancer.preprocess(f)))))
        print(
            f"| {path.rsplit('/', 1)[-1]} | {len(frames)} | {flicker(frames, raw):.3f} | {flicker(frames, smooth):.3f} "
            f"| {motion(frames, raw):.3f} | {motion(frames, smooth):.3f} |"
        )


if __name__ == "__main__":
    main()
