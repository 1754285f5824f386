"""What a better alignment could give the temporal denoiser: its history warped with each clip's *true* motion,
and the best any purely temporal, causal denoiser could do.

    python benchmarks/denoise_oracle_alignment.py --data ../shared/data/sice

The denoiser follows global translations only (:mod:`nightvision.stream.denoise`). On the synthetic video set
(:mod:`nightvision.evaluation.video`) the camera also zooms and turns, and the clips store the homography of
every frame. Three ways to denoise, each followed by ``zero-dce++`` as in the benchmark's ``zero-dce++ + 3dnr``
row (16-bit hand-off):

* ``shipped``: the denoiser as it is;
* ``oracle``: its own alignment switched off and, before each frame, its history planes (luma and both chroma,
  in fixed point) warped onto the frame with the known motion (bilinear): an alignment no estimator beats;
* ``average``: the plain mean of *every* frame so far, each warped onto the current one with the known motion
  (pixels that were out of view are left out): as much temporal averaging as a causal denoiser could do, with
  perfect alignment and no spatial filter (the moving object of the object clip is not followed; the
  temporal error leaves it out).

Measured (2026-12-01, before the coherent-change test, which moved the shipped figures by at most
0.02 in the means and 0.1 on one clip; 448×256, 32 frames; PSNR / GT-mean PSNR dB / temporal error %; the clean clips'
own temporal errors are 0.00, 0.30, 0.35, 1.09, 0.00, mean 0.35; ``zero-dce++`` on the noise-free input in
16 bits, a perfect denoiser: 0.48 % mean):

    clip          shipped (translations)   oracle (true motion)     average (true motion, all frames)
    static-1307   11.10 / 23.00 / 0.74     11.10 / 23.00 / 0.74     11.11 / 22.47 / 0.48
    pan-236       24.32 / 24.05 / 2.26     24.17 / 23.92 / 2.70     24.38 / 24.13 / 0.89
    zoom-1821     16.50 / 16.87 / 6.19     16.55 / 16.94 / 4.97     16.33 / 16.64 / 3.41
    shake-1425    13.17 / 23.86 / 4.21     13.17 / 23.65 / 4.24     13.17 / 23.41 / 2.37
    object-1058   17.66 / 26.81 / 0.88     17.66 / 26.81 / 0.88     16.99 / 22.84 / 0.37
    mean          16.55 / 22.92 / 2.86     16.53 / 22.86 / 2.71     16.39 / 21.90 / 1.50

So exact alignment would not close the gap to the noise-free bound on the zoom clip (the noisiest of the set:
there the noise left, not the alignment, is the error), and warping blurs the history (the pan clip is worse).
Even the mean of every past frame, perfectly aligned, leaves a temporal error of 1.50 %, three times what
1.5× the clean clips' allows (0.53 %): a causal denoiser starts each clip from one noisy frame, and on the
zoom clip 32 frames of averaging still leave a visible noise. Only a denoiser close to the noise-free input,
spatially as well as temporally, would reach that target; it scores lower PSNR than ours (no spatial filter).
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from nightvision.enhancer import Enhancer
from nightvision.evaluation.video import SyntheticClip, _as8, build_video_set, score_clip
from nightvision.stream.denoise import TemporalDenoiser

_HALF = np.diag([2.0, 2.0, 1.0])  # chroma pixel → luma pixel (4:2:0)


def warp_history(denoiser: TemporalDenoiser, relative: np.ndarray) -> None:
    """Warp ``denoiser``'s history planes with ``relative`` (current luma pixel → previous luma pixel)."""
    for i, plane in enumerate(denoiser._planes):
        m = relative if i == 0 else np.linalg.inv(_HALF) @ relative @ _HALF
        h, w = plane.hist.shape
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        plane.hist = np.ascontiguousarray(
            cv2.warpAffine(plane.hist, m[:2], (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
        )


def average_of_all(clip: SyntheticClip, t: int) -> np.ndarray:
    """The mean of the noisy frames ``0..t`` warped onto frame ``t`` with the clip's known motion, as 16 bits
    (the 8-bit levels × 257); a pixel takes the frames in which it was in view."""
    h, w = clip.noisy.shape[1:3]
    total = np.zeros((h, w, 3), np.float64)
    count = np.zeros((h, w, 1), np.float64)
    to_s = np.eye(3)  # frame t's pixel → frame s's pixel
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    for s in range(t, -1, -1):
        if s < t:
            to_s = clip.relative(s + 1) @ to_s
        frame = cv2.warpPerspective(clip.noisy[s].astype(np.float32), to_s, (w, h), flags=flags)
        seen = cv2.warpPerspective(np.ones((h, w), np.float32), to_s, (w, h), flags=flags, borderValue=0)
        inside = (seen > 0.999)[..., None]
        total += frame * inside
        count += inside
    mean = total / np.maximum(count, 1.0)
    out: np.ndarray = np.clip(np.floor(mean * 257.0 + 0.5), 0, 65535).astype(np.uint16)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="the SICE folder (as for nightvision eval --video)")
    args = parser.parse_args()
    enhancer = Enhancer("zero-dce++", backend="onnxruntime")

    def brighten(frame: np.ndarray) -> np.ndarray:
        return _as8(enhancer.postprocess(enhancer.infer(enhancer.preprocess(frame))))

    print("clip          method    PSNR  GT-mean  temporal %")
    scores: dict[str, list[tuple[float, float, float]]] = {}
    for clip in build_video_set(args.data):
        for name in ("shipped", "oracle", "average"):
            denoiser = TemporalDenoiser(output_dtype=np.uint16, align=name == "shipped")
            outs = []
            for t in range(clip.frames):
                if name == "average":
                    outs.append(brighten(average_of_all(clip, t)))
                    continue
                if name == "oracle" and t > 0:
                    warp_history(denoiser, clip.relative(t))
                outs.append(brighten(denoiser(clip.noisy[t])))
            figures = score_clip(clip, outs)
            p, g, te = figures["psnr"], figures["psnr_gt_mean"], figures["temporal_error"]
            scores.setdefault(name, []).append((p, g, te))
            print(f"{clip.name:13s} {name:8s} {p:5.2f}  {g:6.2f}  {te:6.2f}", flush=True)
    for name, rows in scores.items():
        p, g, te = np.mean(rows, axis=0)
        print(f"{'mean':13s} {name:8s} {p:5.2f}  {g:6.2f}  {te:6.2f}")


if __name__ == "__main__":
    main()
