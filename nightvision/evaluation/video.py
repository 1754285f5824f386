"""A paired low-light *video* benchmark that sees noise and motion, built locally from still images.

**The clips.** Each clip is a well-exposed image of a SICE *test* scene (the split of
:mod:`nightvision.evaluation.pairs`; training scenes are never used) seen through a moving virtual camera:

* ``static`` (tripod), ``pan`` (a few pixels a frame, sub-pixel speeds), ``zoom`` (zooming in),
  ``shake`` (hand shake: a smooth random wobble of position and a fraction of a degree of rotation),
* ``object``: a tripod view with an independently moving object (a textured disc cut from another test
  scene, on its own path), which exposes ghosting.

The camera of frame ``t`` is a homography ``H_t`` from clip pixels to source-image pixels (stored), so any
frame can be warped onto the next exactly. The clean clip is the ground truth; the input is the same clip
made dark and noisy by :func:`nightvision.evaluation.noise.degrade` (inverse sRGB, exposure 1/10–1/100,
shot + read noise with Unprocessing's camera levels, sRGB, 8 bits), per clip one exposure and one set of
levels (stratified over their ranges, shuffled by the seed), then H.264-encoded (libx264, one pass at a
phone's average bitrate, 0.27 bit per pixel = 17 Mbit/s at 1080p30) and decoded again. At that rate part of
the noise of still regions is frozen from frame to frame by the encoder's skip blocks, as in real clips
(the clips in ``../shared/videos`` run at 0.07–0.15 bit per pixel), so temporal averaging alone cannot
remove all of it. Everything is deterministic for a seed and cached under the user's cache
folder (:func:`nightvision.cache.cache_dir`), so it is built once, in seconds.

**The figures** (per method, over all frames of all clips):

* PSNR and SSIM against the clean clip;
* temporal-consistency error: the previous output frame warped onto the current one with the known camera
  motion, mean absolute difference over the pixels that stayed in view (and away from the moving object),
  relative to the mean level of the current output (so a darker output does not score better by being
  dark), in percent; the clean clip's own figure (warping and sampling only) is the floor;
* on the ``object`` clip, PSNR inside the moving region (where the object is and has just been, so a
  ghost trail counts);
* on real clips (``../shared/videos``): the no-reference noise ratio and flicker
  (:mod:`nightvision.evaluation.metrics`);
* FPS at 720p on this machine.

    python -m nightvision.evaluation.video --out benchmarks/results/video
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from nightvision.errors import InputError, NightvisionError
from nightvision.evaluation.noise import (
    NoiseLevels,
    degrade,
    linear_to_srgb,
    sample_exposure,
    sample_levels,
    srgb_to_linear,
)
from nightvision.io.atomic import atomic_path

__all__ = [
    "FFMPEG_PEERS",
    "MOTIONS",
    "SyntheticClip",
    "VideoEvalResult",
    "VideoMethod",
    "build_video_set",
    "camera_path",
    "decode_frames",
    "evaluate_video",
    "ffmpeg_filter",
    "gt_mean",
    "model_methods",
    "object_path",
    "peer_methods",
    "reference_video_methods",
    "region_psnr",
    "synthesize_clip",
    "temporal_error",
    "test_scene_images",
]

log = logging.getLogger(__name__)

MOTIONS = ("static", "pan", "zoom", "shake", "object")
_SET_VERSION = 3  # bump when the synthesis changes, so old caches are not reused
CACHE_KIND = "video-eval"
PHONE_BPP = 0.27  # bits per pixel of a phone's H.264 recording: 17 Mbit/s at 1080p30


# --- camera and object paths


def _similarity(cx: float, cy: float, scale: float, angle_deg: float, width: int, height: int) -> np.ndarray:
    """Homography from clip pixels to source pixels: the clip centre lands on ``(cx, cy)``, one clip pixel
    covers ``scale`` source pixels, rotated by ``angle_deg``."""
    a = math.radians(angle_deg)
    c, s = math.cos(a) * scale, math.sin(a) * scale
    to_centre = np.array([[1, 0, -(width - 1) / 2], [0, 1, -(height - 1) / 2], [0, 0, 1]], np.float64)
    rot_scale = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], np.float64)
    to_source = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]], np.float64)
    h: np.ndarray = to_source @ rot_scale @ to_centre
    return h


def camera_path(
    motion: str, frames: int, size: tuple[int, int], source: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Per-frame homographies ``(frames, 3, 3)`` (clip pixel → source pixel) of a virtual camera.

    Args:
        motion: one of :data:`MOTIONS` (``object`` has a still camera; the object moves on its own).
        frames: number of frames.
        size: clip ``(width, height)``.
        source: source image ``(width, height)``; the view stays inside it.
        rng: random source for the speeds, directions and wobble.
    """
    if motion not in MOTIONS:
        raise InputError(f"unknown motion {motion!r} (known: {', '.join(MOTIONS)})")
    w, h = size
    sw, sh = source
    t = np.arange(frames, dtype=np.float64)
    fit = min(sw / w, sh / h)  # the largest scale whose view fits in the source
    cx = np.full(frames, (sw - 1) / 2)
    cy = np.full(frames, (sh - 1) / 2)
    angle = np.zeros(frames)
    if motion in ("static", "object"):
        scale = np.full(frames, 0.9 * fit)
    elif motion == "pan":
        scale = np.full(frames, 0.75 * fit)
        margin_x, margin_y = (sw - w * scale[0]) / 2 - 2, (sh - h * scale[0]) / 2 - 2
        direction = rng.uniform(0, 2 * math.pi)
        speed = min(rng.uniform(1.5, 3.5), 2 * margin_x / max(frames - 1, 1), 2 * margin_y / max(frames - 1, 1))
        travel = (t - (frames - 1) / 2) * speed
        cx += np.clip(travel * math.cos(direction), -margin_x, margin_x)
        cy += np.clip(travel * math.sin(direction) * 0.4, -margin_y, margin_y)
    elif motion == "zoom":
        scale = 0.95 * fit * np.exp(np.log(0.7) * t / max(frames - 1, 1))  # zoom in by 1/0.7 over the clip
    else:  # shake: two slow sinusoids per axis and per rotation, random phases, plus a little jitter
        scale = np.full(frames, 0.8 * fit)
        margin = min((sw - w * scale[0]) / 2, (sh - h * scale[0]) / 2) - 4
        amp = min(6.0, margin / 2)

        def wobble(amplitude: float) -> np.ndarray:
            f1, f2 = rng.uniform(0.05, 0.12), rng.uniform(0.15, 0.3)
            p1, p2 = rng.uniform(0, 2 * math.pi, 2)
            return amplitude * (0.7 * np.sin(2 * math.pi * f1 * t + p1) + 0.3 * np.sin(2 * math.pi * f2 * t + p2))

        cx += wobble(amp) + rng.normal(0, 0.3, frames)
        cy += wobble(amp) + rng.normal(0, 0.3, frames)
        angle = wobble(0.4)
    homographies = np.stack([_similarity(cx[i], cy[i], scale[i], angle[i], w, h) for i in range(frames)])
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], np.float64).T
    mapped = np.einsum("tij,jk->tik", homographies, corners)
    xy = mapped[:, :2] / mapped[:, 2:]
    if xy.min() < -0.5 or (xy[:, 0] > sw - 0.5).any() or (xy[:, 1] > sh - 0.5).any():  # pragma: no cover
        raise InputError(f"the {motion} camera leaves the {sw}×{sh} source; use a smaller clip size")
    return homographies


def object_path(frames: int, size: tuple[int, int], radius: int, rng: np.random.Generator) -> np.ndarray:
    """Centres ``(frames, 2)`` of a moving object: a straight crossing with a gentle curve, 3–5 px a frame."""
    w, h = size
    speed = rng.uniform(3.0, 5.0)
    length = speed * (frames - 1)
    direction = rng.choice([-1.0, 1.0])
    x0 = (w - length) / 2 if direction > 0 else (w + length) / 2
    t = np.arange(frames, dtype=np.float64)
    x = x0 + direction * speed * t
    y = h / 2 + (h / 2 - radius - 2) * 0.6 * np.sin(math.pi * t / max(frames - 1, 1) + rng.uniform(-0.5, 0.5))
    return np.stack([np.clip(x, radius, w - 1 - radius), y], axis=1)


def _disc_mask(size: tuple[int, int], centre: np.ndarray, radius: float) -> np.ndarray:
    """Anti-aliased disc, float32 ``(H, W)`` in ``[0, 1]``."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dist = np.sqrt((xx - np.float32(centre[0])) ** 2 + (yy - np.float32(centre[1])) ** 2)
    mask: np.ndarray = np.clip(np.float32(radius) + 0.5 - dist, 0.0, 1.0)
    return mask


# --- clips


@dataclass(eq=False)
class SyntheticClip:
    """One clip of the benchmark.

    Attributes:
        name: e.g. ``"pan-1108"``.
        motion: one of :data:`MOTIONS`.
        source: the image it was made from.
        exposure: linear-light exposure scale of the input.
        levels: sensor noise levels of the input.
        homographies: ``(T, 3, 3)`` float64, clip pixel → source pixel, per frame.
        clean: ``(T, H, W, 3)`` uint8 BGR, the ground truth.
        noisy: ``(T, H, W, 3)`` uint8 BGR, the input (dark, noisy, H.264-coded and decoded).
        object_centres: ``(T, 2)`` centres of the moving object (``object`` clips), else ``None``.
        object_radius: its radius in pixels (0 when there is none).
    """

    name: str
    motion: str
    source: str
    exposure: float
    levels: NoiseLevels
    homographies: np.ndarray
    clean: np.ndarray
    noisy: np.ndarray
    object_centres: np.ndarray | None = None
    object_radius: float = 0.0

    @property
    def frames(self) -> int:
        return int(self.clean.shape[0])

    def relative(self, t: int) -> np.ndarray:
        """Homography from frame ``t``'s pixels to frame ``t − 1``'s (for warping frame ``t − 1`` onto ``t``)."""
        m: np.ndarray = np.linalg.inv(self.homographies[t - 1]) @ self.homographies[t]
        return m

    def object_mask(self, t: int, *, grow: float = 0.0) -> np.ndarray:
        """Boolean ``(H, W)`` mask of the object at frame ``t`` (disc radius + ``grow``); all False without one."""
        h, w = self.clean.shape[1:3]
        if self.object_centres is None:
            return np.zeros((h, w), bool)
        out: np.ndarray = _disc_mask((w, h), self.object_centres[t], self.object_radius + grow) > 0
        return out

    def moving_region(self, t: int, *, trail: int = 4, grow: float = 3.0) -> np.ndarray:
        """Where the object is at frame ``t`` or was in the ``trail`` frames before (a ghost would be there)."""
        mask = self.object_mask(t, grow=grow)
        for s in range(max(0, t - trail), t):
            mask |= self.object_mask(s, grow=grow)
        return mask

    def meta(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "motion": self.motion,
            "source": self.source,
            "exposure": self.exposure,
            "levels": asdict(self.levels),
            "homographies": self.homographies.tolist(),
            "object_centres": None if self.object_centres is None else self.object_centres.tolist(),
            "object_radius": self.object_radius,
        }


def synthesize_clip(
    image: np.ndarray,
    motion: str,
    *,
    frames: int,
    size: tuple[int, int],
    exposure: float,
    levels: NoiseLevels,
    seed: int,
    name: str = "",
    source: str = "",
    patch: np.ndarray | None = None,
    bpp: float | None = PHONE_BPP,
    video_path: Path | None = None,
) -> SyntheticClip:
    """Make one clip from a well-exposed image.

    Args:
        image: ``(H, W, 3)`` uint8 BGR source, larger than ``size``.
        motion: one of :data:`MOTIONS`.
        frames: clip length.
        size: clip ``(width, height)``, even numbers.
        exposure, levels: the darkening (:func:`nightvision.evaluation.noise.degrade`).
        seed: seeds the camera path, the object path and the noise.
        patch: ``object`` clips: the object's texture (a BGR image at least ``2·radius`` square); default: a
            flipped crop of ``image``.
        bpp: H.264 bitrate of the input in bits per pixel (default: a phone's, :data:`PHONE_BPP`); ``None``
            keeps the noisy frames uncompressed.
        video_path: keep the H.264 input there (else it is written to a temporary folder and deleted).
    """
    w, h = size
    if w % 2 or h % 2:
        raise InputError(f"clip size must be even (H.264 4:2:0), got {w}×{h}")
    rng = np.random.default_rng(seed)
    homographies = camera_path(motion, frames, size, (image.shape[1], image.shape[0]), rng)
    clean = np.stack(
        [
            cv2.warpPerspective(
                image, hm, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT
            )
            for hm in homographies
        ]
    )
    centres, radius = None, 0.0
    if motion == "object":
        radius = float(round(min(w, h) * 0.16))
        centres = object_path(frames, size, int(radius), rng)
        side = int(2 * radius + 4)
        texture = patch if patch is not None else image[::-1, ::-1]
        th, tw = texture.shape[:2]
        y0, x0 = (th - side) // 2, (tw - side) // 2
        tile = np.ascontiguousarray(texture[y0 : y0 + side, x0 : x0 + side]).astype(np.float32)
        for i in range(frames):
            shift = np.array([[1, 0, centres[i, 0] - side / 2], [0, 1, centres[i, 1] - side / 2]], np.float64)
            placed = cv2.warpAffine(tile, shift, (w, h), flags=cv2.INTER_LINEAR)
            alpha = _disc_mask(size, centres[i], radius)[:, :, None]
            clean[i] = np.floor(clean[i] * (1 - alpha) + placed * alpha + 0.5).astype(np.uint8)
    noise_rng = np.random.default_rng([seed, 1])
    dark = np.stack([degrade(f, exposure=exposure, levels=levels, rng=noise_rng) for f in clean])
    noisy = dark if bpp is None else _h264_roundtrip(dark, bpp, video_path)
    return SyntheticClip(
        name=name or motion,
        motion=motion,
        source=source,
        exposure=exposure,
        levels=levels,
        homographies=homographies,
        clean=clean,
        noisy=noisy,
        object_centres=centres,
        object_radius=radius,
    )


_ENCODE = """
import sys
from fractions import Fraction
import av
import numpy as np
path, w, h, n, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
data = np.frombuffer(sys.stdin.buffer.read(), np.uint8).reshape(n, h * 3 // 2, w)
with av.open(path, mode="w", format="mp4") as container:
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt, stream.bit_rate = w, h, "yuv420p", rate
    stream.options = {"preset": "medium", "threads": "1"}
    for i, planes in enumerate(data):
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts, frame.time_base = i, Fraction(1, 30)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
"""


def _h264_roundtrip(frames: np.ndarray, bpp: float, path: Path | None) -> np.ndarray:
    """Encode ``(T, H, W, 3)`` uint8 BGR frames with libx264 (30 fps, yuv420p, one-pass average bitrate of
    ``bpp`` bits per pixel, one thread) to ``path`` (or a temporary file), and decode them.

    The encoder runs in a fresh Python process: x264's decisions depend on the floating-point state of the
    calling thread, which other libraries in this process change (measured: the same frames encoded twice in
    one process that had loaded ONNX Runtime gave different bitstreams), and the set must be reproducible.
    """
    import subprocess
    import tempfile

    t, h, w = frames.shape[:3]
    yuv = np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2YUV_I420) for f in frames])
    with tempfile.TemporaryDirectory() as tmp:
        target = path if path is not None else Path(tmp) / "clip.mp4"
        with atomic_path(target) as partial:
            args = [sys.executable, "-c", _ENCODE, str(partial), str(w), str(h), str(t), str(round(bpp * w * h * 30))]
            proc = subprocess.run(args, input=yuv.tobytes(), capture_output=True, check=False)
            if proc.returncode != 0:
                raise InputError(f"H.264 encoding failed: {proc.stderr.decode(errors='replace').strip()[-300:]}")
        decoded = _decode(target)
    if decoded.shape != frames.shape:  # pragma: no cover - libx264 keeps every frame
        raise InputError(f"H.264 round trip changed the clip from {frames.shape} to {decoded.shape}")
    return decoded


def decode_frames(path: str | Path, limit: int | None = None) -> np.ndarray:
    """The first ``limit`` frames (all when ``None``) of a video as ``(T, H, W, 3)`` uint8 BGR.

    Frames are decoded as YUV 4:2:0 and converted with OpenCV (BT.601, limited range): PyAV's own ``bgr24``
    conversion (swscale with default flags) darkens dark greys by up to 4 levels (13 → 9, 12, 10), which
    matters for footage whose mean level is 5.
    """
    import av

    out = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
                    out.append(cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2BGR_I420))
                else:
                    out.append(frame.to_ndarray(format="bgr24"))
                if limit is not None and len(out) >= limit:
                    break
    except (av.error.FFmpegError, IndexError) as err:
        raise InputError(f"cannot decode video {path}: {err}") from err
    if not out:
        raise InputError(f"cannot decode video {path}: no frames")
    return np.stack(out)


def _decode(path: Path) -> np.ndarray:
    return decode_frames(path)


# --- the set


def test_scene_images(data: str | Path) -> list[Path]:
    """The well-exposed targets of the SICE *test* scenes of ``data`` (sorted by path; never training scenes)."""
    from nightvision.evaluation.pairs import build_pairs

    pairs = [p for p in build_pairs(data) if p.split == "test"]
    if not pairs:
        raise InputError(f"{data}: no test pairs found in these brackets")
    return sorted({p.high for p in pairs}, key=str)


def _folder_key(data: Path) -> str:
    digest = hashlib.sha256()
    for p in sorted(data.iterdir()):
        if p.is_file():
            st = p.stat()
            digest.update(f"{p.name}:{st.st_size}:{int(st.st_mtime)}\n".encode())
    return digest.hexdigest()[:16]


def _set_key(
    data: Path, seed: int, frames: int, size: tuple[int, int], bpp: float | None, motions: Sequence[str]
) -> str:
    text = json.dumps([_SET_VERSION, _folder_key(data), seed, frames, list(size), bpp, list(motions)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_video_set(
    data: str | Path,
    *,
    seed: int = 0,
    frames: int = 32,
    size: tuple[int, int] = (448, 256),
    bpp: float | None = PHONE_BPP,
    motions: Sequence[str] = MOTIONS,
    cache: bool = True,
    cache_root: str | Path | None = None,
) -> list[SyntheticClip]:
    """Build (or load from the cache) the synthetic video set: one clip per motion in ``motions``.

    Args:
        data: the SICE folder (exposure brackets); its test scenes give the images.
        seed: picks the scenes, camera paths, objects, exposures, noise levels and noise.
        frames: frames per clip.
        size: clip ``(width, height)``.
        bpp: H.264 bitrate of the inputs in bits per pixel (``None``: uncompressed).
        motions: which clips, in order.
        cache: load from and save to the cache folder.
        cache_root: the cache folder (default: ``cache_dir("video-eval")`` of :mod:`nightvision.cache`).
    """
    data = Path(data)
    if not data.is_dir():
        raise InputError(f"SICE folder not found: {data} (the video benchmark is built from its test scenes)")
    for m in motions:
        if m not in MOTIONS:
            raise InputError(f"unknown motion {m!r} (known: {', '.join(MOTIONS)})")
    key = _set_key(data, seed, frames, size, bpp, motions)
    folder = (Path(cache_root) if cache_root is not None else _cache_folder()) / key
    if cache and (folder / "meta.json").is_file():
        try:
            clips = _load(folder)
            log.info("video set loaded from %s", folder)
            return clips
        except (OSError, ValueError, KeyError, InputError) as err:
            log.warning("video set cache %s unreadable (%s); rebuilding", folder, err)
    images = test_scene_images(data)
    if len(images) < len(motions) + 1:  # a clip per motion, and one more image for the moving object's patch
        raise InputError(
            f"{data} has {len(images)} test scene(s); the video set needs {len(motions) + 1} (one per motion and "
            "one for the moving object): give the whole SICE folder"
        )
    if cache:
        folder.mkdir(parents=True, exist_ok=True)
    try:
        clips = _synthesize_set(images, motions, seed, frames, size, bpp, folder if cache else None)
    except BaseException:
        if cache and not (folder / "meta.json").is_file():  # (no half-built set left in the cache)
            shutil.rmtree(folder, ignore_errors=True)
        raise
    if cache:
        _save(folder, clips, compressed=bpp is not None)
    return clips


def _synthesize_set(
    images: list[Path],
    motions: Sequence[str],
    seed: int,
    frames: int,
    size: tuple[int, int],
    bpp: float | None,
    folder: Path | None,
) -> list[SyntheticClip]:
    """One clip per motion from ``images`` (the test scenes), their H.264 inputs kept in ``folder`` if given."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(images), size=len(motions) + 1, replace=False)
    n = len(motions)
    # stratified levels and exposures: clip i gets the i-th slice of each range, the two shuffled apart
    shot_q = (rng.permutation(n) + rng.uniform(size=n)) / n
    exp_q = (rng.permutation(n) + rng.uniform(size=n)) / n
    patch = cv2.imread(str(images[picks[-1]]), cv2.IMREAD_COLOR)
    clips = []
    for i, motion in enumerate(motions):
        path = images[picks[i]]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"cannot read image {path}")
        levels = sample_levels(rng, u=float(shot_q[i]))
        exposure = sample_exposure(rng, u=float(exp_q[i]))
        clips.append(
            synthesize_clip(
                image,
                motion,
                frames=frames,
                size=size,
                exposure=exposure,
                levels=levels,
                seed=seed * 1000 + i,
                name=f"{motion}-{path.stem}",
                source=str(path),
                patch=patch,
                bpp=bpp,
                video_path=folder / f"{i}-input.mp4" if folder is not None and bpp is not None else None,
            )
        )
    return clips


def _cache_folder() -> Path:
    try:
        from nightvision.cache import cache_dir
    except ImportError:  # pragma: no cover - older layout
        root = os.environ.get("NIGHTVISION_CACHE") or str(Path.home() / ".cache" / "nightvision")
        path = Path(root) / CACHE_KIND
        path.mkdir(parents=True, exist_ok=True)
        return path
    return cache_dir(CACHE_KIND)


def _save(folder: Path, clips: list[SyntheticClip], compressed: bool) -> None:
    """Clean clips as ``.npy``; the inputs are the H.264 files already there (or ``.npy`` when uncompressed)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, clip in enumerate(clips):
        with atomic_path(folder / f"{i}-clean.npy") as tmp:
            np.save(tmp, clip.clean)
        if not compressed:
            with atomic_path(folder / f"{i}-input.npy") as tmp:
                np.save(tmp, clip.noisy)
    with atomic_path(folder / "meta.json") as tmp:  # written last: its presence marks a complete set
        tmp.write_text(json.dumps([c.meta() for c in clips], indent=1) + "\n")


def _load(folder: Path) -> list[SyntheticClip]:
    metas = json.loads((folder / "meta.json").read_text())
    clips = []
    for i, m in enumerate(metas):
        centres = m["object_centres"]
        clips.append(
            SyntheticClip(
                name=m["name"],
                motion=m["motion"],
                source=m["source"],
                exposure=float(m["exposure"]),
                levels=NoiseLevels(**m["levels"]),
                homographies=np.array(m["homographies"], np.float64),
                clean=np.load(folder / f"{i}-clean.npy"),
                noisy=_decode(folder / f"{i}-input.mp4")
                if (folder / f"{i}-input.mp4").is_file()
                else np.load(folder / f"{i}-input.npy"),
                object_centres=None if centres is None else np.array(centres, np.float64),
                object_radius=float(m["object_radius"]),
            )
        )
    return clips


# --- figures


def gt_mean(output: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``output`` scaled by one gain so that its mean luma equals ``target``'s (clipped, rounded to uint8):
    the "GT-mean" protocol of low-light papers (KinD, LLFlow), which scores noise, colour and detail apart
    from the overall exposure a model picked."""
    from nightvision.evaluation.metrics import mean_luma

    gain = mean_luma(target) / max(mean_luma(output), 1e-3)
    out: np.ndarray = np.floor(np.clip(output.astype(np.float32) * np.float32(gain), 0, 255) + 0.5).astype(np.uint8)
    return out


def temporal_error(clip: SyntheticClip, frames: Sequence[np.ndarray], *, margin: int = 2) -> float:
    """Temporal-consistency error of a sequence of ``clip.frames`` outputs, in percent.

    For each frame ``t ≥ 1``, the output of ``t − 1`` is warped onto ``t`` with the clip's known camera motion
    (bilinear); the mean absolute difference over the pixels that stayed in view (``margin`` pixels inside)
    and away from the moving object (its position at ``t − 1`` and ``t``) is divided by the mean level of
    output ``t`` there. Lower is steadier; the clean clip's own figure is the floor (warping and sampling).
    """
    h, w = clip.clean.shape[1:3]
    ones = np.full((h, w), 255, np.uint8)
    kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    errors = []
    for t in range(1, clip.frames):
        m = clip.relative(t)
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        prev = cv2.warpPerspective(frames[t - 1], m, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT)
        valid = cv2.erode(cv2.warpPerspective(ones, m, (w, h), flags=flags, borderValue=0), kernel) == 255
        if clip.object_centres is not None:
            valid &= ~(clip.object_mask(t, grow=3.0) | clip.object_mask(t - 1, grow=3.0))
        cur = frames[t].astype(np.float32)
        diff = np.abs(prev.astype(np.float32) - cur)[valid]
        level = float(cur[valid].mean())
        errors.append(100.0 * float(diff.mean()) / max(level, 1.0))
    return float(np.mean(errors)) if errors else float("nan")


def region_psnr(clip: SyntheticClip, frames: Sequence[np.ndarray], *, first: int = 1) -> float:
    """PSNR (dB) over the moving region (:meth:`SyntheticClip.moving_region`) of every frame from ``first``,
    pooled (one MSE over all those pixels); ``nan`` for a clip without an object."""
    if clip.object_centres is None:
        return float("nan")
    sq, count = 0.0, 0
    for t in range(first, clip.frames):
        region = clip.moving_region(t)
        diff = frames[t].astype(np.float64)[region] - clip.clean[t].astype(np.float64)[region]
        sq += float((diff**2).sum())
        count += diff.size
    mse = sq / max(count, 1)
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def score_clip(clip: SyntheticClip, outs: Sequence[np.ndarray] | np.ndarray) -> dict[str, float]:
    """A method's figures on one clip from its output frames (uint8, as the clip's): mean PSNR, GT-mean PSNR and
    SSIM against the clean frames, the temporal error and the moving region's PSNR (``nan`` without an object)."""
    from nightvision.evaluation.metrics import psnr, ssim

    pairs = list(zip(outs, clip.clean, strict=True))
    return {
        "psnr": float(np.mean([psnr(o, g) for o, g in pairs])),
        "psnr_gt_mean": float(np.mean([psnr(gt_mean(o, g), g) for o, g in pairs])),
        "ssim": float(np.mean([ssim(o, g) for o, g in pairs])),
        "temporal_error": temporal_error(clip, list(outs)),
        "region_psnr": region_psnr(clip, list(outs)),
    }


# --- methods

ClipRunner = Callable[[np.ndarray], np.ndarray]  # (T, H, W, 3) uint8 BGR → same, one clip, fresh state


@dataclass
class VideoMethod:
    """One row of the table.

    Attributes:
        name: e.g. ``"zero-dce++ + 3dnr"``.
        kind: ``"ours"``, ``"ours + 3dnr"``, ``"reference"``, ``"peer"`` (a classical denoiser, then
            zero-dce++) or ``"bound"`` (the clean clip, or zero-dce++ on the noise-free input).
        make: returns a fresh :data:`ClipRunner` (state, such as the denoiser's, does not cross clips).
        frame_cost: returns a function that processes one 720p frame (for the FPS figure), or ``None``.
        denoise_cost: returns the denoiser's time per 720p frame in ms (the denoising stage alone), or ``None``.
        source: ``"input"``, or ``"noise-free"`` for the bound that sees the clip without noise.
    """

    name: str
    kind: str
    make: Callable[[], ClipRunner]
    frame_cost: Callable[[], Callable[[np.ndarray], Any]] | None = None
    denoise_cost: Callable[[Sequence[np.ndarray]], float] | None = None
    source: str = "input"  # or "noise-free": the clip's input without noise and H.264, in 16 bits (a bound)


def _per_frame(make_fn: Callable[[], Callable[[np.ndarray], np.ndarray]]) -> Callable[[], ClipRunner]:
    def make() -> ClipRunner:
        fn = make_fn()

        def run(frames: np.ndarray) -> np.ndarray:
            return np.stack([_as8(fn(f)) for f in frames])

        return run

    return make


def _as8(image: np.ndarray) -> np.ndarray:
    """uint16 frames (16-bit path) are scored as uint8, rounded."""
    if image.dtype == np.uint8:
        return image
    out: np.ndarray = np.floor(image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    return out


Frame = Callable[[np.ndarray], np.ndarray]


def _returning(fn: Frame) -> Callable[[], Frame]:
    def make() -> Frame:
        return fn

    return make


def _denoise_cost(dtype: type = np.uint8) -> Callable[[Sequence[np.ndarray]], float]:
    from nightvision.stream.denoise import TemporalDenoiser

    def cost(seq: Sequence[np.ndarray]) -> float:
        return _time_stream(TemporalDenoiser(output_dtype=dtype), seq)

    return cost


def _chain(*stages: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    def run(x: np.ndarray) -> np.ndarray:
        for stage in stages:
            x = stage(x)
        return x

    return run


def model_methods(models: Sequence[str], *, denoise: bool = True, sixteen_bit: bool = True) -> list[VideoMethod]:
    """Our shipped models through :class:`nightvision.Enhancer` (ONNX Runtime), each alone and after the
    temporal denoiser as ``--denoise`` runs it: the staged API of the pipeline, the denoiser handing its frames
    over in :attr:`~nightvision.Enhancer.hand_off_dtype`; zero-dce++ also with an 8-bit hand-off, for
    comparison (``sixteen_bit``)."""
    from nightvision.enhancer import Enhancer
    from nightvision.stream.denoise import TemporalDenoiser

    methods = []
    for name in models:
        enhancer = Enhancer(name, backend="onnxruntime")
        methods.append(
            VideoMethod(name, "ours", _per_frame(_returning(enhancer.enhance)), _returning(enhancer.enhance))
        )
        if not denoise:
            continue
        variants = [(enhancer.hand_off_dtype, "")]
        if sixteen_bit and name == "zero-dce++" and variants[0][0] != np.uint8:
            variants.append((np.uint8, " (8-bit hand-off)"))
        for dtype, suffix in variants:

            def make_fn(e: Any = enhancer, dt: Any = dtype) -> Callable[[np.ndarray], np.ndarray]:
                def staged(frame: np.ndarray) -> np.ndarray:
                    return e.postprocess(e.infer(e.preprocess(frame)))

                return _chain(TemporalDenoiser(output_dtype=dt), staged)

            methods.append(
                VideoMethod(
                    f"{name} + 3dnr{suffix}",
                    "ours + 3dnr",
                    _per_frame(make_fn),
                    make_fn,
                    _denoise_cost(dtype),
                )
            )
    return methods


def reference_video_methods(root: str | Path, *, denoise: bool = True) -> list[VideoMethod]:
    """The official Zero-DCE, Zero-DCE++ and SCI weights under ``root`` in eager PyTorch
    (:func:`nightvision.evaluation.evaluate.reference_networks`); the official Zero-DCE++ also after the
    denoiser. Needs torch. Sets PyTorch to one intra-op thread for this process (its pool spin-waits; on a CPU
    shared with other work two threads were slower still)."""
    from nightvision.evaluation.evaluate import reference_networks
    from nightvision.stream.denoise import TemporalDenoiser

    networks = reference_networks(root)  # one line, not a traceback, without torch
    import torch

    torch.set_num_threads(1)
    methods = []
    for name, (_, run) in networks.items():
        methods.append(VideoMethod(name, "reference", _per_frame(_returning(run)), _returning(run)))
        if denoise and name == "official zero-dce++":

            def make_fn(r: Frame = run) -> Frame:
                return _chain(TemporalDenoiser(), r)

            methods.append(VideoMethod(name + " + 3dnr", "reference", _per_frame(make_fn), make_fn, _denoise_cost()))
    return methods


# ffmpeg's GPL denoisers (Debian's ffmpeg has them; PyAV's bundled FFmpeg does not), on YUV 4:2:0 frames
FFMPEG_PEERS = {
    "hqdn3d": "hqdn3d",  # defaults 4:3:6:4.5
    "atadenoise": "atadenoise",  # defaults: 9 frames, thresholds 0.02/0.04
    "nlmeans": "nlmeans=s=3:p=7:r=9",  # default s=1 is too weak for these inputs; r 9 instead of 15 for speed
}


def ffmpeg_path() -> str | None:
    """The ``ffmpeg`` binary if it has the peers' filters, else ``None``."""
    import shutil
    import subprocess

    path = shutil.which("ffmpeg")
    if path is None:
        return None
    try:
        filters = subprocess.run([path, "-hide_banner", "-filters"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return path if all(f" {name} " in filters for name in FFMPEG_PEERS) else None


def ffmpeg_filter(frames: np.ndarray, vf: str, *, ffmpeg: str = "ffmpeg") -> np.ndarray:
    """Run an ffmpeg video filter over ``(T, H, W, 3)`` uint8 BGR frames (even sizes), through raw YUV 4:2:0
    pipes converted with OpenCV (ffmpeg's own RGB conversion shifts dark levels)."""
    import subprocess

    t, h, w = frames.shape[:3]
    yuv = np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2YUV_I420) for f in frames])
    size = f"{w}x{h}"
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", size,
           "-r", "30", "-i", "-", "-vf", vf, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"]  # fmt: skip
    proc = subprocess.run(cmd, input=yuv.tobytes(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise InputError(f"ffmpeg -vf {vf} failed: {proc.stderr.decode(errors='replace').strip()[-300:]}")
    out = np.frombuffer(proc.stdout, np.uint8)
    if out.size != yuv.size:
        raise InputError(f"ffmpeg -vf {vf} returned {out.size // (h * w * 3 // 2)} frames for {t}")
    return np.stack([cv2.cvtColor(f, cv2.COLOR_YUV2BGR_I420) for f in out.reshape(yuv.shape)])


def _ffmpeg_ms(frames: Sequence[np.ndarray], vf: str, ffmpeg: str) -> float:
    """ffmpeg's time per frame for a filter: the piped run with it minus the same run with ``null``."""
    stack = np.stack(list(frames))
    timings = {}
    for name in (vf, "null"):
        best = math.inf
        for _ in range(2):
            t0 = time.perf_counter()
            ffmpeg_filter(stack, name, ffmpeg=ffmpeg)
            best = min(best, time.perf_counter() - t0)
        timings[name] = best
    return max(0.0, 1000.0 * (timings[vf] - timings["null"]) / len(stack))


def peer_methods(then: Callable[[np.ndarray], np.ndarray], then_name: str = "zero-dce++") -> list[VideoMethod]:
    """ffmpeg's ``hqdn3d``, ``atadenoise``, ``nlmeans`` (when the binary has them) and OpenCV's
    ``fastNlMeansDenoisingColored``, each followed by ``then`` (zero-dce++)."""
    methods = []
    ffmpeg = ffmpeg_path()
    if ffmpeg is None:
        log.warning(
            "ffmpeg with hqdn3d/atadenoise/nlmeans not found: the ffmpeg peers are left out (apt-get install ffmpeg)"
        )
    else:
        for name, vf in FFMPEG_PEERS.items():

            def make(vf: str = vf, path: str = ffmpeg) -> ClipRunner:
                def run(frames: np.ndarray) -> np.ndarray:
                    return np.stack([then(f) for f in ffmpeg_filter(frames, vf, ffmpeg=path)])

                return run

            def cost(seq: Sequence[np.ndarray], vf: str = vf, path: str = ffmpeg) -> float:
                return _ffmpeg_ms(seq, vf, path)

            methods.append(VideoMethod(f"ffmpeg {name} → {then_name}", "peer", make, None, cost))

    def nlm(bgr: np.ndarray) -> np.ndarray:
        out: np.ndarray = cv2.fastNlMeansDenoisingColored(bgr, None, 4, 6, 7, 21)
        return out

    def nlm_cost(seq: Sequence[np.ndarray]) -> float:
        return _time_stream(nlm, seq, limit=3)

    chained = _returning(_chain(nlm, then))
    methods.append(VideoMethod(f"OpenCV fastNlMeans → {then_name}", "peer", _per_frame(chained), chained, nlm_cost))
    return methods


def _time_stream(fn: Callable[[np.ndarray], Any], frames: Sequence[np.ndarray], *, limit: int | None = None) -> float:
    """Median ms per frame of ``fn`` over ``frames`` in order (after 3 warm-up frames; at most ``limit``)."""
    seq = list(frames)
    for f in seq[:3]:
        fn(f)
    times = []
    for f in seq[3:] if limit is None else seq[3 : 3 + limit]:
        t0 = time.perf_counter()
        fn(f)
        times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times))


# --- the evaluation


@dataclass
class VideoEvalResult:
    """Figures of every method (``rows``), per clip (``per_clip``) and per real clip (``real``)."""

    rows: list[dict[str, Any]]
    clips: list[dict[str, Any]]
    per_clip: list[dict[str, Any]] = field(default_factory=list)
    real: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)

    def markdown(self) -> str:
        """The tables: the synthetic set (with FPS), the real clips, and the clips themselves."""
        real_names = [r["clip"] for r in self.real if r["method"] == self.rows[0]["method"]] if self.real else []
        cols = ["method", "kind", "PSNR (dB)", "PSNR GT-mean (dB)", "SSIM", "temporal error (%)",
                "moving-region PSNR (dB)", "denoise ms @720p", "FPS @720p"]  # fmt: skip
        keys = ["method", "kind", "psnr", "psnr_gt_mean", "ssim", "temporal_error", "region_psnr", "denoise_ms",
                "fps"]  # fmt: skip
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_cell(k, row.get(k)) for k in keys) + " |" for row in self.rows]
        out = "\n".join(lines) + "\n"
        if real_names:
            short = [Path(n).stem for n in real_names]
            cols = ["method"] + [f"noise ratio {s}" for s in short] + [f"flicker {s}" for s in short]
            lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            for row in self.rows:
                mine = {r["clip"]: r for r in self.real if r["method"] == row["method"]}
                if not mine:
                    continue
                cells = [row["method"]]
                cells += [_cell("ratio", mine.get(n, {}).get("noise_ratio")) for n in real_names]
                cells += [_cell("flicker", mine.get(n, {}).get("flicker")) for n in real_names]
                lines.append("| " + " | ".join(cells) + " |")
            out += "\n" + "\n".join(lines) + "\n"
        cols = ["clip", "motion", "exposure", "shot", "read", "input PSNR (dark, dB)", "clean temporal error (%)"]
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for c in self.clips:
            lines.append(
                f"| {c['name']} | {c['motion']} | 1/{1 / c['exposure']:.0f} | {c['shot']:.2e} | {c['read']:.2e} "
                f"| {c['input_psnr']:.2f} | {c['clean_temporal_error']:.2f} |"
            )
        return out + "\n" + "\n".join(lines) + "\n"


def _cell(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    if key in ("ssim", "ratio"):
        return f"{value:.3f}"
    if key == "flicker":
        return f"{value:.4f}"
    if key in ("fps", "denoise_ms"):
        return f"{value:.3f}" if value < 0.1 else f"{value:.1f}" if value < 100 else f"{value:.0f}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def bound_methods(enhance: Frame) -> list[VideoMethod]:
    """Rows that bound the others: the dark input itself, and zero-dce++ on the noise-free input in 16 bits
    (what a perfect denoiser before zero-dce++ would score: ours hands it 16-bit frames, and averaging noisy
    frames recovers what rounding the dark frame to 8 bits would lose). The clean clip's own temporal error
    is in the clips table."""

    def identity(frames: np.ndarray) -> np.ndarray:
        return frames

    def identity_runner() -> ClipRunner:
        return identity

    return [
        VideoMethod("input (dark, no enhancement)", "bound", identity_runner),
        VideoMethod(
            "zero-dce++ on the noise-free input (16-bit)",
            "bound",
            _per_frame(_returning(enhance)),
            source="noise-free",
        ),
    ]


def _noise_free(clip: SyntheticClip, *, bits: int = 8) -> np.ndarray:
    """The clip's input without noise and without H.264: the exposure (in linear light) and rounding to
    ``bits`` (8 or 16) only; in 8 bits, :func:`~nightvision.evaluation.noise.degrade` without noise."""
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    top = (1 << bits) - 1
    lut = linear_to_srgb(srgb_to_linear(np.arange(256, dtype=np.float32) / 255.0) * np.float32(clip.exposure))
    table = np.floor(np.clip(lut, 0.0, 1.0) * top + 0.5).astype(np.uint8 if bits == 8 else np.uint16)
    return table[clip.clean]


def evaluate_video(
    data: str | Path,
    out_dir: str | Path,
    *,
    videos: Sequence[str | Path] = (),
    references: str | Path | None = None,
    models: Sequence[str] = ("zero-dce++", "zero-dce", "nafnet-s"),
    peers: bool = True,
    real_frames: int = 24,
    fps: bool = True,
    seed: int = 0,
    frames: int = 32,
    size: tuple[int, int] = (448, 256),
    only: Sequence[str] | None = None,
    real_skip: Sequence[str] = ("official zero-dce",),
) -> VideoEvalResult:
    """Build (or load) the synthetic set, score every method, and write ``video.md``, ``video.json`` and
    ``contact-sheet.jpg`` to ``out_dir``.

    Args:
        data: the SICE folder (test scenes only are used).
        out_dir: where the table and the picture go.
        videos: real clips for the no-reference figures (noise ratio, flicker), first ``real_frames`` frames.
        references: folder of the official weights (``zero-dce/``, ``zero-dce-pp/``, ``sci/``); needs torch.
        models: our shipped models to score, each with and without the denoiser.
        peers: score the ffmpeg and OpenCV denoisers (each followed by zero-dce++).
        fps: measure the time per 720p frame of each method on this machine.
        seed, frames, size: the synthetic set (:func:`build_video_set`).
        only: keep the methods whose name contains one of these strings (default: all).
        real_skip: methods (exact names) left out on the real clips: by default the official Zero-DCE, which
            runs every convolution at full resolution in eager PyTorch (seconds per frame of a real clip here).
    """
    from nightvision.enhancer import Enhancer
    from nightvision.evaluation.metrics import colour_cast, flicker, mean_luma, noise_ratio, psnr

    out = Path(out_dir)
    clips = build_video_set(data, seed=seed, frames=frames, size=size)
    zdce = Enhancer("zero-dce++", backend="onnxruntime")
    methods = bound_methods(zdce.enhance) + model_methods(list(models))
    if references is not None:
        methods += reference_video_methods(references)
    if peers:
        methods += peer_methods(zdce.enhance)
    if only:
        methods = [m for m in methods if m.kind == "bound" or any(s in m.name for s in only)]
    names = [m.name for m in methods]
    if len(set(names)) != len(names):  # pragma: no cover - the lists above have distinct names
        raise InputError(f"duplicate method names: {names}")
    # the contact sheet: one frame of the moving-object clip (ghosts) above one of the hand-shake clip (noise)
    sheet = [c for c in clips if c.motion in ("object", "shake")] or clips[:1]
    sheet_t = [min(c.frames - 1, (2 * c.frames) // 3) for c in sheet]

    def stacked(images: list[np.ndarray]) -> np.ndarray:
        return np.vstack(images)

    tiles: list[tuple[str, np.ndarray]] = [
        ("clean", stacked([c.clean[t] for c, t in zip(sheet, sheet_t, strict=True)])),
        ("input (dark, as recorded)", stacked([c.noisy[t] for c, t in zip(sheet, sheet_t, strict=True)])),
    ]
    sheet_frames: dict[str, list[np.ndarray]] = {}
    per_clip: list[dict[str, Any]] = []
    clip_rows = []
    for clip in clips:
        clean_tc = temporal_error(clip, list(clip.clean))
        clip_rows.append(
            {
                "name": clip.name,
                "motion": clip.motion,
                "source": Path(clip.source).name,
                "exposure": clip.exposure,
                "shot": clip.levels.shot,
                "read": clip.levels.read,
                "frames": clip.frames,
                "input_psnr": float(np.mean([psnr(a, b) for a, b in zip(clip.noisy, _noise_free(clip), strict=True)])),
                "clean_temporal_error": clean_tc,
            }
        )
    for method in methods:
        log.info("scoring %s", method.name)
        t0 = time.perf_counter()
        for clip in clips:
            outs = method.make()(_noise_free(clip, bits=16) if method.source == "noise-free" else clip.noisy)
            per_clip.append({"method": method.name, "clip": clip.name, **score_clip(clip, outs)})
            at = {c.name: t for c, t in zip(sheet, sheet_t, strict=True)}
            if clip.name in at and method.name != "input (dark, no enhancement)":
                sheet_frames.setdefault(method.name, []).append(outs[at[clip.name]])
        log.info("  %.1f s", time.perf_counter() - t0)
        if method.name in sheet_frames:
            tiles.append((method.name, stacked(sheet_frames.pop(method.name))))
    real: list[dict[str, Any]] = []
    for path in videos:
        clip_frames = decode_frames(path, real_frames)
        if clip_frames.shape[1] % 2 or clip_frames.shape[2] % 2:
            clip_frames = clip_frames[:, : clip_frames.shape[1] // 2 * 2, : clip_frames.shape[2] // 2 * 2]
        for method in methods:
            if method.source != "input" or method.name in real_skip:
                continue
            log.info("real clip %s: %s", Path(path).name, method.name)
            outs = method.make()(clip_frames)
            real.append(
                {
                    "method": method.name,
                    "clip": str(Path(path).name),
                    "frames": len(clip_frames),
                    "noise_ratio": float(np.mean([noise_ratio(o, i) for o, i in zip(outs, clip_frames, strict=True)])),
                    "flicker": flicker(list(outs)),
                    "input_flicker": flicker(list(clip_frames)),
                    "mean_luma": float(np.mean([mean_luma(o) for o in outs])),
                    "colour_cast": float(np.mean([colour_cast(o) for o in outs])),
                }
            )
    timing = _speeds(methods, clips, zdce.enhance) if fps else {}
    rows = []
    for method in methods:
        mine = [r for r in per_clip if r["method"] == method.name]
        region = [r["region_psnr"] for r in mine if math.isfinite(r["region_psnr"])]
        row: dict[str, Any] = {"method": method.name, "kind": method.kind}
        for key in ("psnr", "psnr_gt_mean", "ssim", "temporal_error"):
            row[key] = float(np.mean([r[key] for r in mine]))
        row["region_psnr"] = region[0] if region else math.nan
        row.update(timing.get(method.name, {}))
        rows.append(row)
    settings = {"seed": seed, "frames": frames, "size": list(size), "bpp": PHONE_BPP, "real_frames": real_frames,
                "videos": [str(v) for v in videos], "ffmpeg_peers": FFMPEG_PEERS, "machine": _machine()}  # fmt: skip
    result = VideoEvalResult(rows, clip_rows, per_clip, real, settings)
    result.paths = _write(result, tiles, out)
    return result


def _speeds(
    methods: list[VideoMethod], clips: list[SyntheticClip], zdce: Callable[[np.ndarray], np.ndarray]
) -> dict[str, dict[str, float]]:
    """ms per 720p frame of each method (model and denoiser, one after the other, this process) and FPS."""
    source = max(clips, key=lambda c: float(c.noisy.mean()))
    seq = [cv2.resize(f, (1280, 720), interpolation=cv2.INTER_LINEAR) for f in source.noisy[:24]]
    zdce_ms = _time_stream(zdce, seq)
    out: dict[str, dict[str, float]] = {}
    for method in methods:
        if method.kind == "bound":
            continue
        log.info("timing %s at 720p", method.name)
        entry: dict[str, float] = {}
        if method.denoise_cost is not None:
            entry["denoise_ms"] = method.denoise_cost(seq)
        if method.frame_cost is not None:
            fn = method.frame_cost()
            t0 = time.perf_counter()
            fn(seq[0])
            first = time.perf_counter() - t0
            limit = 2 if first > 0.3 else 5 if first > 0.05 else None
            entry["ms"] = _time_stream(fn, seq, limit=limit)
        elif "denoise_ms" in entry:
            entry["ms"] = entry["denoise_ms"] + zdce_ms
        if "ms" in entry:
            entry["fps"] = 1000.0 / entry["ms"]
        out[method.name] = entry
    return out


def _machine() -> dict[str, Any]:
    import platform

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average_1_5_15_min": list(os.getloadavg()),  # other work sharing the CPU during the run
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "numpy": np.__version__,
    }


def _label(image: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((22, image.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text[:60], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, image])


def _write(result: VideoEvalResult, tiles: list[tuple[str, np.ndarray]], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "video.md", out / "video.json", out / "contact-sheet.jpg"]
    with atomic_path(paths[0]) as tmp:
        tmp.write_text(result.markdown())
    payload = {"settings": result.settings, "rows": result.rows, "clips": result.clips, "per_clip": result.per_clip,
               "real": result.real}  # fmt: skip
    with atomic_path(paths[1]) as tmp:
        tmp.write_text(json.dumps(payload, indent=1, default=float) + "\n")
    cols = 4
    labelled = [_label(img, name) for name, img in tiles]
    blank = np.full_like(labelled[0], 255)
    rows = [np.hstack(labelled[i : i + cols] + [blank] * (cols - len(labelled[i : i + cols])))
            for i in range(0, len(labelled), cols)]  # fmt: skip
    ok, data = cv2.imencode(".jpg", np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:  # pragma: no cover
        raise InputError("could not encode the contact sheet")
    with atomic_path(paths[2]) as tmp:
        tmp.write_bytes(data.tobytes())
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m nightvision.evaluation.video``: build the set, score the methods, write the results."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m nightvision.evaluation.video",
        description="Paired low-light video benchmark: synthetic clips from SICE test scenes, real clips, peers.",
    )
    parser.add_argument("--data", required=True, help="the SICE folder (exposure brackets)")
    parser.add_argument("--out", required=True, help="output folder for video.md, video.json, contact-sheet.jpg")
    parser.add_argument("--videos", nargs="*", default=[], help="real clips for the noise ratio and flicker")
    parser.add_argument("--references", help="folder of the official weights (needs torch)")
    parser.add_argument("--models", default="zero-dce++,zero-dce,nafnet-s", help="comma-separated shipped models")
    parser.add_argument("--no-peers", action="store_true", help="leave out the ffmpeg/OpenCV denoisers")
    parser.add_argument("--no-fps", action="store_true", help="skip the 720p timing")
    parser.add_argument("--real-frames", type=int, default=24, help="frames of each real clip (default 24)")
    parser.add_argument("--frames", type=int, default=32, help="frames per synthetic clip (default 32)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", help="comma-separated substrings: score only the methods whose names contain one")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        result = evaluate_video(
            args.data,
            args.out,
            videos=args.videos,
            references=args.references,
            models=[m for m in args.models.split(",") if m],
            peers=not args.no_peers,
            real_frames=args.real_frames,
            fps=not args.no_fps,
            seed=args.seed,
            frames=args.frames,
            only=args.only.split(",") if args.only else None,
        )
    except NightvisionError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from err
    print(result.markdown())
    print("written: " + ", ".join(str(p) for p in result.paths))


if __name__ == "__main__":
    main()
