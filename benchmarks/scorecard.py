"""Collect each shipped model's measured figures into ``nightvision/weights/SCORES.json``, which
``nightvision models`` prints.

    python benchmarks/scorecard.py --still eval-results/sice/summary.json --video benchmarks/results/video/video.json \
        --bench benchmarks/results/cpu-2core/models-720p/results.json

* ``--still``: the ``summary.json`` of ``nightvision eval --data ../shared/data/sice --brackets`` (PSNR and SSIM
  on the 40 test pairs);
* ``--video``: the ``video.json`` of ``nightvision eval --video`` (PSNR on the synthetic noisy, moving clips,
  and the noise ratio on the real phone clip; several files may be given);
* ``--bench``: the ``results.json`` of ``nightvision bench --sizes 720p`` (FPS of each model on ONNX Runtime;
  the video table's FPS column is used for models it lacks).

Only figures present in those files are written; nothing is estimated. The files' own settings (machine, load)
travel with them into ``SCORES.json`` so a reader can judge the speed column.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCORES = ROOT / "nightvision" / "weights" / "SCORES.json"
PHONE_CLIP = "night-street-phone.mp4"


def collect(still: Path | None, videos: list[Path], bench: Path | None) -> dict[str, Any]:
    """``{"sources": {...}, "models": {name: {figure: value}}}`` from the result files."""
    from nightvision.specs import list_specs

    shipped = {s.name for s in list_specs() if s.onnx}
    models: dict[str, dict[str, float]] = {name: {} for name in sorted(shipped)}
    sources: dict[str, Any] = {}
    if still is not None:
        rows = json.loads(still.read_text())["rows"]
        sources["still"] = {"file": str(still), "what": "nightvision eval --brackets: SICE test pairs"}
        for row in rows:
            if row.get("method") in models and "psnr" in row:
                models[row["method"]].update(sice_psnr=row["psnr"], sice_ssim=row["ssim"])
    for video in videos:
        payload = json.loads(video.read_text())
        sources.setdefault("video", []).append({"file": str(video), "settings": payload["settings"]})
        for row in payload["rows"]:
            name = row["method"]
            if name in models:
                models[name]["video_psnr"] = row["psnr"]
                if "fps" in row:
                    models[name].setdefault("fps_720p", row["fps"])
            elif name.endswith(" + 3dnr") and name[: -len(" + 3dnr")] in models:
                models[name[: -len(" + 3dnr")]]["video_psnr_denoise"] = row["psnr"]
        for row in payload["real"]:
            if row["clip"] == PHONE_CLIP and row["method"] in models:
                models[row["method"]]["phone_noise_ratio"] = row["noise_ratio"]
    if bench is not None:
        payload = json.loads(bench.read_text())
        sources["bench"] = {"file": str(bench), "what": "nightvision bench --sizes 720p"}
        for cell in payload["cells"]:
            onnx = cell["backend"].startswith("onnxruntime")
            if cell["model"] in models and onnx and cell["size"] == "720p" and cell.get("fps"):
                models[cell["model"]]["fps_720p"] = cell["fps"]
    return {"written": dt.date.today().isoformat(), "sources": sources, "models": models}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--still", type=Path, help="summary.json of nightvision eval --brackets")
    parser.add_argument("--video", type=Path, nargs="*", default=[], help="video.json of nightvision eval --video")
    parser.add_argument("--bench", type=Path, help="results.json of nightvision bench --sizes 720p")
    parser.add_argument("--out", type=Path, default=SCORES)
    args = parser.parse_args()
    card = collect(args.still, args.video, args.bench)
    args.out.write_text(json.dumps(card, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
