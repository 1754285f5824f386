"""Every shipped model on the real night clips, as a user runs them: one before/after picture and a table.

    nice python benchmarks/clips.py --out benchmarks/results/clips

For each clip in ``../shared/videos`` the first ``--frames`` frames go through each model with the default
exposure control (``--exposure auto``: dark input lifted to a mean luma of 110, visible input left nearly
alone, a grey source kept grey), as ``nightvision enhance`` does. Per clip and model, over those frames:

* mean luma of input and output, and the output/input brightness ratio;
* noise ratio (:func:`nightvision.evaluation.metrics.noise_ratio`, median over frames: below 1 removes noise);
* colour cast and the mean ``|a* − 128|``, ``|b* − 128|`` (8-bit CIELAB; a grey source should stay ≤ 2);
* clipped pixels, %.

Writes ``clips.md`` and ``clips.json`` to ``--out``, and the picture (the last frame of each clip: input, then
each model) to ``--picture`` (default ``docs/local/clips.jpg``, git-ignored: the clips are not ours to
redistribute, so neither are their frames; the table is).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from nightvision.enhancer import Enhancer
from nightvision.evaluation.metrics import clipped_fraction, colour_cast, lab_offset, mean_luma, noise_ratio
from nightvision.evaluation.video import decode_frames
from nightvision.specs import DEFAULT_MODEL, list_specs
from nightvision.stream.exposure import ExposureControl

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "videos"


def run_clip(model: str, frames: np.ndarray, threads: int) -> tuple[dict[str, float], np.ndarray]:
    """Figures of ``model`` with exposure control over ``frames``, and its last output frame."""
    enhancer, exposure = Enhancer(model, backend="onnxruntime", threads=threads), ExposureControl()
    outs = [exposure(enhancer.enhance(f), f) for f in frames]
    enhancer.close()
    a_b = np.array([lab_offset(o) for o in outs])
    ratios = [noise_ratio(o, f) for o, f in zip(outs, frames, strict=True)]
    figures = {
        "input_luma": float(np.mean([mean_luma(f) for f in frames])),
        "luma": float(np.mean([mean_luma(o) for o in outs])),
        "noise_ratio": float(np.median([r for r in ratios if np.isfinite(r)])),
        "colour_cast": float(np.mean([colour_cast(o) for o in outs])),
        "abs_a": float(np.abs(a_b[:, 0]).mean()),
        "abs_b": float(np.abs(a_b[:, 1]).mean()),
        "clipped_pct": float(100 * np.mean([clipped_fraction(o) for o in outs])),
    }
    figures["brightness_ratio"] = figures["luma"] / max(figures["input_luma"], 1e-6)
    return figures, outs[-1]


def _label(image: np.ndarray, text: str, width: int) -> np.ndarray:
    scale = width / image.shape[1]
    tile = cv2.resize(image, (width, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    bar = np.full((24, width, 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, tile])


def markdown(rows: list[dict[str, Any]]) -> str:
    cols = ["clip", "model", "input luma", "output luma", "× brightness", "noise ratio", "colour cast",
            "|a*|, |b*|", "clipped %"]  # fmt: skip
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append(
            f"| {r['clip']} | {r['model']} | {r['input_luma']:.1f} | {r['luma']:.1f} | {r['brightness_ratio']:.2f} | "
            f"{r['noise_ratio']:.2f} | {r['colour_cast']:.2f} | {r['abs_a']:.1f}, {r['abs_b']:.1f} | "
            f"{r['clipped_pct']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=Path, default=VIDEOS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "clips")
    parser.add_argument("--picture", type=Path, default=ROOT / "docs" / "local" / "clips.jpg")
    parser.add_argument("--frames", type=int, default=20, help="frames of each clip (default 20)")
    parser.add_argument("--models", help="comma-separated (default: every shipped model)")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    models = args.models.split(",") if args.models else [s.name for s in list_specs() if s.has_onnx]
    clips = sorted(args.videos.glob("*.mp4"))
    if not clips:
        raise SystemExit(f"no clips in {args.videos}")
    rows: list[dict[str, Any]] = []
    picture_rows = []
    for clip in clips:
        frames = decode_frames(clip, args.frames)
        tiles = [_label(frames[-1], f"{clip.stem}: input", 320)]
        for model in models:
            figures, last = run_clip(model, frames, args.threads)
            rows.append({"clip": clip.name, "model": model + (" (default)" if model == DEFAULT_MODEL else ""),
                         "frames": len(frames), **figures})  # fmt: skip
            tiles.append(_label(last, model, 320))
            print(markdown(rows[-1:]).splitlines()[-1], flush=True)
        height = max(t.shape[0] for t in tiles)
        tiles = [np.vstack([t, np.full((height - t.shape[0], t.shape[1], 3), 255, np.uint8)]) for t in tiles]
        picture_rows.append(np.hstack(tiles))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "clips.md").write_text(markdown(rows))
    (args.out / "clips.json").write_text(json.dumps({"frames": args.frames, "rows": rows}, indent=1) + "\n")
    width = max(r.shape[1] for r in picture_rows)
    picture = np.vstack([np.hstack([r, np.full((r.shape[0], width - r.shape[1], 3), 255, np.uint8)])
                         for r in picture_rows])  # fmt: skip
    args.picture.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.picture), picture, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.out / 'clips.md'}, {args.out / 'clips.json'}, {args.picture}")


if __name__ == "__main__":
    main()
