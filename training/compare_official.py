"""Our curve models against the official weights on real low-light photos (no ground truth).

    python -m nightvision.training.compare_official --data ../shared/data/unpaired/DICM --downscale 4

For each image: mean luma (0-255, BT.601) and the fraction of clipped pixels (a channel at 255), for our
shipped weights and the official ones (``../shared/reference-weights``; non-commercial, used only here), both
through the same PyTorch modules and the same curve-estimation downscale. Prints a markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from nightvision import models
from nightvision.evaluation.metrics import clipped_fraction, mean_luma
from nightvision.io.images import read_image
from nightvision.models.zero_dce import load_reference
from nightvision.training.data import list_images

REFERENCE = {"zero-dce": ("zero-dce", False), "zero-dce++": ("zero-dce-pp", True)}


@torch.no_grad()
def figures(net: torch.nn.Module, files: list[Path]) -> tuple[float, float]:
    lumas, clips = [], []
    for f in files:
        bgr = read_image(f)
        x = torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1])).permute(2, 0, 1)[None].float() / 255
        y = (net(x)[0].permute(1, 2, 0).numpy()[:, :, ::-1] * 255).round().clip(0, 255).astype(np.uint8)
        lumas.append(mean_luma(y))
        clips.append(clipped_fraction(y))
    return float(np.mean(lumas)), float(np.mean(clips))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data/unpaired/DICM")
    parser.add_argument("--reference", default="../shared/reference-weights")
    parser.add_argument("--downscale", type=int, default=0, help="zero-dce++ curve downscale (0: our default)")
    parser.add_argument("--models", default="zero-dce++,zero-dce")
    args = parser.parse_args()
    files = list_images(args.data)
    inputs = [read_image(f) for f in files]
    print(
        f"{len(files)} images from {args.data}; input mean luma {np.mean([mean_luma(i) for i in inputs]):.1f}, "
        f"clipped {np.mean([clipped_fraction(i) for i in inputs]):.4f}\n"
    )
    print("| model | weights | downscale | mean luma | clipped fraction |")
    print("|---|---|---|---|---|")
    for name in args.models.split(","):
        folder, plus = REFERENCE[name]
        ds = args.downscale or get_default_downscale(name)
        kw: dict[str, int] = {"downscale": ds} if plus else {}
        ours = models.create(name, pretrained=True, **kw)
        official = load_reference(str(Path(args.reference) / folder / "Epoch99.pth"), plus_plus=plus, **kw)
        for label, net in (("ours", ours), ("official", official)):
            luma, clip = figures(net, files)
            print(f"| {name} | {label} | {ds if plus else '-'} | {luma:.1f} | {clip:.4f} |")


def get_default_downscale(name: str) -> int:
    from nightvision.specs import get_spec

    return get_spec(name).downscale


if __name__ == "__main__":
    main()
