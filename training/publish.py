"""Turn a training run into shipped files: weights, ONNX graphs and their sha256 in the manifest.

    python -m nightvision.training.publish zero-dce++ runs/zero-dce++/final.pt

writes ``nightvision/weights/NAME.pt`` (state dict, model arguments, config and final losses: no optimiser
state), ``NAME.onnx`` (the full graph), ``NAME.estimator.onnx`` for shared-curve models, and updates
``nightvision/weights/MANIFEST.json``.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import torch

from nightvision.export import export_curve_estimator, export_onnx
from nightvision.io.atomic import atomic_path
from nightvision.specs import WEIGHTS_DIR, get_spec, sha256_of

log = logging.getLogger(__name__)


def publish(name: str, checkpoint: str | Path) -> list[Path]:
    spec = get_spec(name)
    ckpt: dict[str, Any] = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if ckpt.get("model_name") != name:
        raise ValueError(f"{checkpoint} holds {ckpt.get('model_name')!r}, not {name!r}")
    shipped = {
        k: ckpt[k] for k in ("model", "model_name", "model_args", "config", "final", "step", "epoch") if k in ckpt
    }
    assert spec.weights and spec.onnx
    written = [WEIGHTS_DIR / spec.weights]
    with atomic_path(written[0]) as tmp:
        torch.save(shipped, tmp)
    # The shipped variant's arguments (e.g. the runtime downscale) come from the spec, not the training run.
    written.append(export_onnx(name, WEIGHTS_DIR / spec.onnx))
    if spec.estimator_onnx:
        written.append(export_curve_estimator(name, WEIGHTS_DIR / spec.estimator_onnx))
    manifest_path = WEIGHTS_DIR / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    for path in written:
        manifest[path.name] = {"model": name, "sha256": sha256_of(path), "bytes": path.stat().st_size}
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return written


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    for noisy in ("onnxscript", "onnx_ir", "torch.onnx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if len(sys.argv) != 3:
        sys.exit("usage: python -m nightvision.training.publish MODEL CHECKPOINT")
    for p in publish(sys.argv[1], sys.argv[2]):
        print(p)
