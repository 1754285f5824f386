"""Where the time of one zero-dce++ frame goes on the CPU fast path, step by step.

    python benchmarks/profile_fast_path.py --sizes 480p,720p,1080p

Prints the median milliseconds of each step of :class:`nightvision.curves.FastCurvePath` (resize down,
estimator graph, curve-map conversion, resize up, table lookup) and of the whole ``Enhancer.enhance``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from nightvision import Enhancer, keep_freed_memory
from nightvision.evaluation.bench import _frame, parse_size


def median_ms(fn: Callable[[], Any], n: int = 30) -> float:
    fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="480p,720p,1080p")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    keep_freed_memory()  # as the CLI does
    enhancer = Enhancer("zero-dce++", "onnxruntime", threads=args.threads)
    print("| size | estimator input | resize down | estimator | to rows | resize up | lookup | whole enhance |")
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        print(profile(enhancer, size))


def profile(enhancer: Enhancer, size: str) -> str:
    """One markdown row of step timings for frames of ``size``."""
    fast = enhancer._fast
    assert fast is not None
    h, w = parse_size(size)
    frame = _frame(size)
    blob = fast.small_input(frame)
    out = fast.estimator.run(blob)
    rows_small = fast.rows_from_output(out)
    rows = cv2.resize(rows_small, (w, h))
    steps = [
        median_ms(lambda: fast.small_input(frame)),
        median_ms(lambda: fast.estimator.run(blob)),
        median_ms(lambda: fast.rows_from_output(out)),
        median_ms(lambda: cv2.resize(rows_small, (w, h))),
        median_ms(lambda: fast.table.apply(frame, rows)),
        median_ms(lambda: enhancer.enhance(frame)),
    ]
    cells = " | ".join(f"{t:.2f}" for t in steps)
    return f"| {size} | {blob.shape[3]}x{blob.shape[2]} | {cells} |"


if __name__ == "__main__":
    main()
