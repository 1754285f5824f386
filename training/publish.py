"""Turn a training run into shipped files: weights, ONNX graphs and their sha256 in the manifest.

    python -m nightvision.training.publish zero-dce++ runs/zero-dce++/final.pt

writes ``nightvision/weights/NAME.pt`` (state dict, model arguments, config and final losses: no optimiser
state), ``NAME.onnx`` (the full graph), ``NAME.estimator.onnx`` for shared-curve models, ``NAME.coefficients.onnx``
for CurveDenoise (the fast path's network on the 1/8 copy), and updates
``nightvision/weights/MANIFEST.json``. Files that would exceed :data:`FP16_STORAGE_ABOVE` bytes (MIRNet-v2's 5.4 M
parameters) store their weights in fp16: the state dict's floats are halved (they load into the fp32 model),
and the graph's large initializers are stored in fp16 and cast to fp32 at load
(:func:`~nightvision.export.store_weights_fp16`), so the arithmetic stays fp32.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import torch

from nightvision.export import export_curve_coefficients, export_curve_estimator, export_onnx, store_weights_fp16
from nightvision.io.atomic import atomic_path
from nightvision.specs import WEIGHTS_DIR, get_spec, sha256_of

log = logging.getLogger(__name__)

FP16_STORAGE_ABOVE = 12_000_000
"""Shipped files larger than this (bytes, in fp32) store their weights in fp16."""


def publish(name: str, checkpoint: str | Path) -> list[Path]:
    spec = get_spec(name)
    ckpt: dict[str, Any] = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if ckpt.get("model_name") != name:
        raise ValueError(f"{checkpoint} holds {ckpt.get('model_name')!r}, not {name!r}")
    shipped = {
        k: ckpt[k] for k in ("model", "model_name", "model_args", "config", "final", "step", "epoch") if k in ckpt
    }
    assert spec.weights and spec.onnx
    state = shipped["model"]
    if sum(t.numel() * t.element_size() for t in state.values()) > FP16_STORAGE_ABOVE:
        shipped["model"] = {k: t.half() if t.is_floating_point() else t for k, t in state.items()}
        log.info("%s: weights stored in fp16", spec.weights)
    written = [WEIGHTS_DIR / spec.weights]
    with atomic_path(written[0]) as tmp:
        torch.save(shipped, tmp)
    # The shipped variant's arguments (e.g. the runtime downscale) come from the spec, not the training run.
    graph = export_onnx(name, WEIGHTS_DIR / spec.onnx)  # from the file just written (fp16 loads into fp32)
    if graph.stat().st_size > FP16_STORAGE_ABOVE:
        store_weights_fp16(graph, graph)
        log.info("%s: weights stored in fp16", graph.name)
    written.append(graph)
    if spec.estimator_onnx:
        written.append(export_curve_estimator(name, WEIGHTS_DIR / spec.estimator_onnx))
    if spec.coefficients_onnx:
        written.append(export_curve_coefficients(name, WEIGHTS_DIR / spec.coefficients_onnx))
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
