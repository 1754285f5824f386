"""Export a registered model to ONNX (needs the ``train`` extra: torch, onnx, onnxscript).

The graph has one input ``image`` and one output ``enhanced``, both ``(N, 3, H, W)`` float32 RGB in
``[0, 1]`` with dynamic N, H and W; padding to the model's multiple happens outside the graph. The model
name, its constructor arguments and the preprocessing are recorded in the ONNX metadata, which the runtime
reads back (``OnnxRuntimeBackend.metadata``; :func:`record_in_manifest` for the manifest).

Every export goes to a ``.onnx`` file, and is refused before anything is built or written when the
``manifest.json`` beside it (where :func:`record_in_manifest` records it) is not nightvision's: someone else's
file is never edited, and an export never fails half-way with the graph written but not recorded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from nightvision.errors import EngineError, InputError, OutputError
from nightvision.io.atomic import atomic_path, describe_os_error
from nightvision.onnx_rewrites import split_concat_convs
from nightvision.specs import get_spec

__all__ = [
    "DEFAULT_OPSET",
    "FP32_OPS",
    "convert_to_fp16",
    "export_curve_coefficients",
    "export_curve_estimator",
    "export_module",
    "export_onnx",
    "manifest_for",
    "normalisation_nodes",
    "read_manifest",
    "record_in_manifest",
    "store_weights_fp16",
]

FP32_OPS = [
    # normalisation and its building blocks stay fp32: LayerNorm in fp16 is a known source of NaN in TensorRT
    "LayerNormalization",
    "BatchNormalization",
    "InstanceNormalization",
    "GroupNormalization",
    "ReduceMean",
    "ReduceSumSquare",
    "Pow",
    "Sqrt",
    "Reciprocal",
]

log = logging.getLogger(__name__)
DEFAULT_OPSET = 18


def export_onnx(
    name: str,
    output: str | Path,
    *,
    weights: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    sample_size: tuple[int, int] = (64, 96),
    **model_kwargs: Any,
) -> Path:
    """Export model ``name`` to ``output`` and check it with ``onnx.checker``.

    Args:
        name: registered model name.
        output: destination ``.onnx`` file (written atomically; see the module docstring for what is refused).
        weights: a checkpoint to load instead of the shipped weights (``None``: shipped weights).
        opset: ONNX opset, at least 17.
        sample_size: H×W of the example input used for tracing (any size works afterwards).
        **model_kwargs: constructor overrides (e.g. ``downscale=8`` for Zero-DCE++).

    Returns:
        The path written.
    """
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError as err:
        raise EngineError("export needs torch and onnx: pip install 'nightvision[train]'") from err
    from nightvision import models

    _check_destination(output)  # before the model is built: a refusal costs nothing
    spec = get_spec(name)
    if weights is None:
        model = models.create(name, pretrained=True, **model_kwargs)
        args = {**dict(spec.kwargs), **model_kwargs}
    else:
        ckpt_args = _checkpoint_args(Path(weights), name)
        args = {**ckpt_args, **model_kwargs}
        model = models.create(name, pretrained=False, **args)
        models.load_checkpoint(model, weights)
    return export_module(model, name, output, model_args=args, opset=opset, sample_size=sample_size)


def export_curve_estimator(
    name: str, output: str | Path, *, weights: str | Path | None = None, opset: int = DEFAULT_OPSET
) -> Path:
    """Export only the curve estimator of a shared-curve model (Zero-DCE++): image in, curve map out.

    The graph maps ``(N, 3, h, w)`` RGB in ``[0, 1]`` to the ``(N, 3, h, w)`` curve map in ``[-1, 1]`` at the
    same size; the caller downscales the frame, upsamples the map and applies the curve
    (:class:`nightvision.curves.FastCurvePath`).
    """

    _check_destination(output)
    spec = get_spec(name)
    if not spec.curve_iterations:
        raise InputError(f"model {name!r} has no shared curve map; only the full graph can be exported")
    model = _load_model(name, weights)
    return export_module(
        model.net,
        name,
        output,
        model_args={"graph": "curve-estimator", "iterations": spec.curve_iterations},
        opset=opset,
    )


def export_curve_coefficients(
    name: str, output: str | Path, *, weights: str | Path | None = None, opset: int = DEFAULT_OPSET
) -> Path:
    """Export only the learnt part of CurveDenoise: the 1/8 copy's pooled features in, its two maps out.

    The graph maps ``(N, 4, h, w)`` float32 (``avgpool(x)`` as RGB, then ``avgpool(|detail|)``, in ``[0, 1]``)
    to ``(N, 2, h, w)``: ``log g`` and ``t²`` (:meth:`CurveDenoise.small_maps`); the caller computes the features
    and applies the maps at full resolution (:class:`nightvision.curve_denoise_fast.FastCurveDenoise`).
    """
    import torch

    from nightvision.models.curve_denoise import CurveDenoise

    _check_destination(output)
    spec = get_spec(name)
    if not spec.coefficients_onnx:
        raise InputError(f"model {name!r} has no coefficients graph; only the full graph can be exported")
    model = _load_model(name, weights)
    if not isinstance(model, CurveDenoise):
        raise InputError(f"model {name!r} has no small_maps(); its coefficients cannot be exported alone")
    small_maps, downscale = model.small_maps, model.downscale

    class Coefficients(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model  # registered, so that export sees its weights

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = small_maps(x[:, :3], x[:, 3:])
            return out

    return export_module(
        Coefficients(),
        name,
        output,
        model_args={"graph": "curve-coefficients", "downscale": downscale},
        opset=opset,
        sample_size=(12, 16),
        in_channels=4,
        multiple=1,
        output_name="maps",
    )


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """Keep the exporter's own progress and warnings (torch.onnx, onnxscript) off the terminal."""
    names = ("torch.onnx", "torch._export", "torch.export", "onnxscript", "onnx_ir")
    saved = {n: logging.getLogger(n).level for n in names}
    try:
        for n in names:
            logging.getLogger(n).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


def export_module(
    model: Any,
    name: str,
    output: str | Path,
    *,
    model_args: dict[str, Any] | None = None,
    opset: int = DEFAULT_OPSET,
    sample_size: tuple[int, int] = (64, 96),
    in_channels: int = 3,
    multiple: int | None = None,
    output_name: str | None = None,
) -> Path:
    """Export an already-built module of registered model ``name`` (see :func:`export_onnx`); ``in_channels``,
    ``multiple`` (default: the spec's ``pad_multiple``) and ``output_name`` for graphs of a model's part."""
    import onnx
    import torch

    from nightvision import __version__

    if opset < 17:
        raise InputError(f"opset must be >= 17, got {opset}")
    output = _check_destination(output)
    spec = get_spec(name)
    if output_name is None:
        output_name = "curves" if (model_args or {}).get("graph") == "curve-estimator" else "enhanced"
    model.eval()
    m = spec.pad_multiple if multiple is None else multiple  # H and W reach the graph as multiples of this
    x = torch.rand(1, in_channels, *(-(-side // m) * m for side in sample_size))
    batch = torch.export.Dim("batch", min=1, max=64)
    height: Any = torch.export.Dim("height", min=1, max=16384 // m)
    width: Any = torch.export.Dim("width", min=1, max=16384 // m)
    if m > 1:
        height, width = m * height, m * width
    with quiet_exporter():
        program = torch.onnx.export(
            model,
            (x,),
            dynamo=True,
            input_names=["image"],
            output_names=[output_name],
            dynamic_shapes={"x": {0: batch, 2: height, 3: width}},
            opset_version=opset,
            verbose=False,
        )
    if program is None:  # pragma: no cover - dynamo=True always returns a program
        raise EngineError("torch.onnx.export returned no program")
    proto = program.model_proto
    split_concat_convs(proto)  # same arithmetic, no concatenated copies (Zero-DCE++'s estimator 13 % faster)
    metadata = {
        "nightvision.model": name,
        "nightvision.model_args": json.dumps(model_args or {}, sort_keys=True),
        "nightvision.version": __version__,
        "nightvision.input_range": json.dumps(list(spec.input_range)),
        "nightvision.colour_order": spec.colour_order,
        "nightvision.layout": "NCHW",
        "nightvision.pad_multiple": str(m),
    }
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "nightvision"
    proto.doc_string = f"{name}: {spec.summary}. {spec.paper}."
    onnx.checker.check_model(proto, full_check=True)
    with atomic_path(output) as tmp:
        onnx.save(proto, str(tmp))
    log.info("exported %s (opset %d) to %s", name, opset, output)
    return output


def convert_to_fp16(onnx_path: str | Path, output: str | Path) -> Path:
    """An fp16 copy of an fp32 graph: weights and activations in fp16, inputs and outputs still fp32,
    normalisation ops (:data:`FP32_OPS`, and every node of a normalisation module, :func:`normalisation_nodes`)
    in fp32. Needs ``onnxconverter-common`` (the ``train`` extra)."""
    import onnx

    try:
        from onnxconverter_common import float16
    except ImportError as err:
        raise EngineError("fp16 export needs onnxconverter-common: pip install 'nightvision[train]'") from err
    model = onnx.load(str(onnx_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns for every tiny weight it rounds to fp16's range
        half = float16.convert_float_to_float16(
            model, keep_io_types=True, op_block_list=FP32_OPS, node_block_list=normalisation_nodes(model)
        )
    entry = half.metadata_props.add()
    entry.key, entry.value = "nightvision.precision", "fp16"
    onnx.checker.check_model(half)
    output = _onnx_file(output)
    with atomic_path(output) as tmp:
        onnx.save(half, str(tmp))
    return output


def store_weights_fp16(onnx_path: str | Path, output: str | Path, *, min_elements: int = 1024) -> Path:
    """A copy of an fp32 graph whose large weights are *stored* in fp16 and cast back to fp32 when the session
    loads (ONNX Runtime folds the ``Cast`` nodes into constants): half the file, fp32 arithmetic, outputs
    within fp16's rounding of the weights. For shipping large models (MIRNet-v2) in a small package; the
    precision of the computation is unchanged (unlike :func:`convert_to_fp16`). Initializers with fewer than
    ``min_elements`` values (biases, scales) stay fp32. The nodes' metadata (the exporter's provenance, which
    :func:`normalisation_nodes` reads for :func:`convert_to_fp16`) is dropped."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    output = _onnx_file(output)
    model = onnx.load(str(onnx_path))
    graph = model.graph
    casts, kept = [], []
    for init in graph.initializer:
        values = numpy_helper.to_array(init)
        if init.data_type != TensorProto.FLOAT or values.size < min_elements:
            kept.append(init)
            continue
        half = numpy_helper.from_array(values.astype(np.float16), f"{init.name}__fp16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for node in graph.node:  # the exporter's per-node provenance (~3 MB for MIRNet-v2): not needed to run
        del node.metadata_props[:]
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    entry = model.metadata_props.add()
    entry.key, entry.value = "nightvision.weights_storage", "fp16"
    onnx.checker.check_model(model)
    with atomic_path(output) as tmp:
        onnx.save(model, str(tmp))
    return output


def normalisation_nodes(model: Any) -> list[str]:
    """Names of the nodes that a normalisation module was exported to (e.g. every Sub, Mul, ReduceMean, Sqrt
    and Div of NAFNet's plain-op :class:`~nightvision.models.layers.LayerNorm2d`), from the exporter's
    ``pkg.torch.onnx.class_hierarchy`` metadata. :func:`convert_to_fp16` keeps them in fp32."""
    names = []
    for node in model.graph.node:
        for prop in node.metadata_props:
            if prop.key == "pkg.torch.onnx.class_hierarchy" and ("LayerNorm" in prop.value or "Norm2d" in prop.value):
                names.append(node.name)
    return names


def record_in_manifest(onnx_path: str | Path, manifest: str | Path | None = None) -> Path:
    """Add an exported graph to ``manifest.json`` beside it (or ``manifest``): model, opset, input range,
    colour order, padding multiple, model arguments and sha256, read back from the graph itself. A manifest
    that is not nightvision's is refused (:func:`read_manifest`) and left as it is."""
    import onnx

    from nightvision.specs import sha256_of

    onnx_path = Path(onnx_path)
    manifest = Path(manifest) if manifest else manifest_for(onnx_path)
    data = read_manifest(manifest)  # first: a foreign file is refused before the graph is even read
    proto = onnx.load(str(onnx_path), load_external_data=False)
    meta = {p.key.removeprefix("nightvision."): p.value for p in proto.metadata_props}
    entry = {
        "model": meta.get("model"),
        "opset": max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
        "input_range": json.loads(meta.get("input_range", "[0, 1]")),
        "colour_order": meta.get("colour_order"),
        "layout": meta.get("layout"),
        "pad_multiple": int(meta.get("pad_multiple", "1")),
        "model_args": json.loads(meta.get("model_args", "{}")),
        "precision": meta.get("precision", "fp32"),
        "sha256": sha256_of(onnx_path),
        "bytes": onnx_path.stat().st_size,
    }
    data[onnx_path.name] = entry
    with atomic_path(manifest) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return manifest


def manifest_for(onnx_path: str | Path) -> Path:
    """The manifest that :func:`record_in_manifest` records ``onnx_path`` in by default: ``manifest.json``
    beside it."""
    return Path(onnx_path).parent / "manifest.json"


def read_manifest(path: str | Path) -> dict[str, dict[str, Any]]:
    """The entries of nightvision manifest ``path`` (``{}`` when there is no such file).

    Ours is a JSON object mapping file names to objects that hold at least ``sha256`` (a string) and
    ``bytes`` (an integer): what :func:`record_in_manifest` and ``training/publish.py`` (``weights/MANIFEST.json``)
    have always written. Anything else by that name (a web app's ``manifest.json``) belongs to someone else.

    Raises:
        OutputError: the file cannot be read, is not JSON, or is not a nightvision manifest.
    """
    path = Path(path)
    if not path.exists():
        return {}
    if not path.is_file():
        raise OutputError(f"{path} is not a file; move it or export to another folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise OutputError(f"cannot read {path}: {describe_os_error(err)}") from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise OutputError(
            f"{path} is not valid JSON, so not a nightvision manifest; fix or move it, or export to another folder"
        ) from err
    if not _is_nightvision_manifest(data):
        raise OutputError(
            f"{path} is not a nightvision manifest and is left as it is; move it or export to another folder"
        )
    entries: dict[str, dict[str, Any]] = data
    return entries


def _is_nightvision_manifest(data: Any) -> bool:
    """Whether parsed JSON has the manifest's shape: ``{file name: {"sha256": str, "bytes": int, ...}, ...}``,
    with at least one entry (nightvision never writes an empty one)."""
    if not isinstance(data, dict) or not data:
        return False
    return all(
        isinstance(entry, dict)
        and isinstance(entry.get("sha256"), str)
        and isinstance(entry.get("bytes"), int)
        and not isinstance(entry.get("bytes"), bool)
        for entry in data.values()
    )


def _onnx_file(output: str | Path) -> Path:
    """``output`` as a path, refused unless it names a ``.onnx`` file: ``nightvision build`` tells a graph from
    a model name by that suffix, and a graph saved as ``x.txt`` is one nobody will recognise as a model."""
    output = Path(output)
    if output.suffix != ".onnx":
        raise InputError(f"the output must be a .onnx file, got {str(output)!r}; e.g. -o {output.stem or 'model'}.onnx")
    return output


def _check_destination(output: str | Path) -> Path:
    """``output`` as a ``.onnx`` path whose default manifest, if there is one, is nightvision's: checked before
    the export, so that nothing is written when recording it would fail or edit someone else's file."""
    output = _onnx_file(output)
    read_manifest(manifest_for(output))
    return output


def _load_model(name: str, weights: str | Path | None) -> Any:
    """Registered model ``name`` with its shipped weights, or with the checkpoint ``weights`` (its arguments)."""
    from nightvision import models

    if weights is None:
        return models.create(name, pretrained=True)
    model = models.create(name, pretrained=False, **_checkpoint_args(Path(weights), name))
    models.load_checkpoint(model, weights)
    return model


def _checkpoint_args(path: Path, name: str) -> dict[str, Any]:
    """The model arguments of checkpoint ``path``, once it is checked to be one of model ``name`` (a file that is
    no checkpoint, or one of another model, is one line saying so)."""
    from nightvision.enhancer import check_checkpoint

    if not path.is_file():
        raise InputError(f"no such checkpoint: {path}")
    return check_checkpoint(path, get_spec(name), use_args=True)
