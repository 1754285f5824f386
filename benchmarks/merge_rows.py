"""Put the rows of a partial ``nightvision eval`` run into a recorded table (``NAME.json`` and ``NAME.md``).

    python benchmarks/merge_rows.py benchmarks/results/eval/sice runs/eval-sice-new/summary.json

After retraining one model, re-scoring it alone takes a minute where the whole table (official weights,
MIRNet-v2) takes most of an hour. Rows of the same method are replaced; new methods go before the first
reference row. Both tables must be of the same kind (paired or not): rows of different data never mix.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nightvision.evaluation.evaluate import EvalResult
from nightvision.io.atomic import atomic_path


def merge(table: Path, update: Path) -> list[str]:
    """Merge ``update`` (a ``summary.json``) into ``table`` + ``.json`` / ``.md``; returns the methods replaced
    or added."""
    old = json.loads(table.with_suffix(".json").read_text())
    new = json.loads(update.read_text())
    if old["paired"] != new["paired"]:
        raise SystemExit(f"error: {update} is {'paired' if new['paired'] else 'unpaired'}, {table} is not")
    rows: list[dict] = old["rows"]
    changed = []
    for row in new["rows"]:
        if row["kind"] == "classical" and any(r["method"] == row["method"] for r in rows):
            continue  # the same classical baselines on the same data: keep the recorded timings
        at = next((i for i, r in enumerate(rows) if r["method"] == row["method"]), None)
        if at is None:
            at = next((i for i, r in enumerate(rows) if r["kind"] == "reference"), len(rows))
            rows.insert(at, row)
        else:
            rows[at] = row
        changed.append(row["method"])
    result = EvalResult(paired=old["paired"], rows=rows)
    with atomic_path(table.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps({"paired": result.paired, "rows": rows}, indent=2) + "\n")
    with atomic_path(table.with_suffix(".md")) as tmp:
        tmp.write_text(result.markdown())
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", type=Path, help="the recorded table, without suffix (e.g. results/eval/sice)")
    parser.add_argument("update", type=Path, help="summary.json of the partial run")
    args = parser.parse_args()
    print("updated:", ", ".join(merge(args.table, args.update)))


if __name__ == "__main__":
    main()
