"""Put the rows of a partial ``nightvision eval`` run into a recorded table (``NAME.json`` and ``NAME.md``).

    python benchmarks/merge_rows.py benchmarks/results/eval/sice runs/eval-sice-new/summary.json
    python benchmarks/merge_rows.py benchmarks/results/video/video runs/video-mirnet/video.json --only mirnet-v2

After retraining one model, re-scoring it alone takes a minute where the whole table (official weights,
MIRNet-v2) takes most of an hour. Rows of the same method are replaced; new methods go before the first
reference row; ``--only`` keeps the update's methods whose names contain one of the given strings (substrings:
``zero-dce++`` also matches the bound row "zero-dce++ on the noise-free input (16-bit)", which replaces all
recorded bounds, and "official zero-dce++"; name a method fully, e.g. ``mirnet-v2``). Both tables
must be of the same kind (paired or not; images or video): rows of different data never mix. A video table
(``nightvision eval --video``) takes the methods' per-clip and real-clip figures along (an update run with
``--no-fps`` keeps the recorded timings), and its settings list what was merged and on which machine; its
contact sheet stays as it was.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from nightvision.evaluation.evaluate import EvalResult
from nightvision.evaluation.video import VideoEvalResult
from nightvision.io.atomic import atomic_path


def _place(rows: list[dict[str, Any]], row: dict[str, Any]) -> None:
    """Replace the row of ``row``'s method, or insert it before the first reference row."""
    at = next((i for i, r in enumerate(rows) if r["method"] == row["method"]), None)
    if at is None:
        at = next((i for i, r in enumerate(rows) if r["kind"] == "reference"), len(rows))
        rows.insert(at, row)
    else:
        rows[at] = row


_TIMINGS = ("ms", "fps", "denoise_ms")  # a video row's timing figures


def _wanted(method: str, only: list[str] | None) -> bool:
    return only is None or any(s in method for s in only)


def merge(table: Path, update: Path, only: list[str] | None = None) -> list[str]:
    """Merge ``update`` (a ``summary.json`` or ``video.json``) into ``table`` + ``.json`` / ``.md``, the methods
    whose names contain one of ``only`` (default: all); returns the methods replaced or added."""
    old = json.loads(table.with_suffix(".json").read_text())
    new = json.loads(update.read_text())
    if ("per_clip" in old) != ("per_clip" in new):
        raise SystemExit(f"error: one of {update} and {table} is a video table, the other is not")
    if "per_clip" in old:
        return _merge_video(table, old, new, only)
    if old["paired"] != new["paired"]:
        raise SystemExit(f"error: {update} is {'paired' if new['paired'] else 'unpaired'}, {table} is not")
    rows: list[dict] = old["rows"]
    changed = []
    for row in new["rows"]:
        if not _wanted(row["method"], only):
            continue
        if row["kind"] == "classical" and any(r["method"] == row["method"] for r in rows):
            continue  # the same classical baselines on the same data: keep the recorded timings
        _place(rows, row)
        changed.append(row["method"])
    result = EvalResult(paired=old["paired"], rows=rows)
    with atomic_path(table.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps({"paired": result.paired, "rows": rows}, indent=2) + "\n")
    with atomic_path(table.with_suffix(".md")) as tmp:
        tmp.write_text(result.markdown())
    return changed


def _merge_video(table: Path, old: dict[str, Any], new: dict[str, Any], only: list[str] | None) -> list[str]:
    keep = ("seed", "frames", "size", "bpp", "real_frames")
    if any(old["settings"].get(k) != new["settings"].get(k) for k in keep):
        raise SystemExit(f"error: the update was made with other settings ({', '.join(keep)}) than {table}")
    if [c["name"] for c in old["clips"]] != [c["name"] for c in new["clips"]]:
        raise SystemExit(f"error: the update scored other clips than {table}")
    changed = [r["method"] for r in new["rows"] if _wanted(r["method"], only)]
    if not changed:
        raise SystemExit(f"error: no method of the update matches --only {','.join(only or [])}")
    removed = list(changed)
    if any(r["kind"] == "bound" for r in new["rows"] if r["method"] in changed):
        # the bounds of the newer run replace all recorded ones (a bound may have been redefined and renamed)
        removed += [r["method"] for r in old["rows"] if r["kind"] == "bound"]
        bounds = [r for r in new["rows"] if r["kind"] == "bound"]
        old["rows"] = bounds + [r for r in old["rows"] if r["kind"] != "bound"]
        changed = list(dict.fromkeys(changed + [r["method"] for r in bounds]))
    timed = any("fps" in r for r in new["rows"])
    recorded = {r["method"]: r for r in old["rows"]}
    for row in new["rows"]:
        if row["method"] in changed and row["kind"] != "bound":
            if not timed:  # a run without timings (--no-fps) keeps the recorded ones
                row.update({k: v for k, v in recorded.get(row["method"], {}).items() if k in _TIMINGS})
            _place(old["rows"], row)
    for key in ("per_clip", "real"):  # a method the update has no such figures for keeps its recorded ones
        fresh = [r for r in new[key] if r["method"] in changed]
        stale = set(removed) - set(changed) | {r["method"] for r in fresh}
        old[key] = [r for r in old[key] if r["method"] not in stale] + fresh
    merged = {"methods": changed, "machine": new["settings"].get("machine")}
    if not timed:
        merged["timings"] = "recorded ones kept (the update ran without them)"
    old["settings"].setdefault("merged", []).append(merged)
    result = VideoEvalResult(old["rows"], old["clips"], old["per_clip"], old["real"], old["settings"])
    with atomic_path(table.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(old, indent=1) + "\n")
    with atomic_path(table.with_suffix(".md")) as tmp:
        tmp.write_text(result.markdown())
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", type=Path, help="the recorded table, without suffix (e.g. results/eval/sice)")
    parser.add_argument("update", type=Path, help="summary.json (or video.json) of the partial run")
    parser.add_argument("--only", help="comma-separated substrings: merge only the methods whose names contain one")
    args = parser.parse_args()
    only = [x for x in args.only.split(",") if x] if args.only else None
    print("updated:", ", ".join(merge(args.table, args.update, only)) or "nothing")


if __name__ == "__main__":
    main()
