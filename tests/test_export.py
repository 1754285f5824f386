"""ONNX export: checker-clean, opset >= 17, dynamic size and batch, metadata, parity with PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from nightvision import models  # noqa: E402
from nightvision.errors import InputError  # noqa: E402
from nightvision.export import export_module  # noqa: E402
from nightvision.specs import get_spec  # noqa: E402

SIZES = [(33, 17), (64, 96), (101, 77), (1, 1)]


@pytest.fixture(scope="module", params=models.list_models())
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, object, Path]:
    name = request.param
    torch.manual_seed(0)
    net = models.create(name, pretrained=False)
    path = export_module(net, name, tmp_path_factory.mktemp("onnx") / f"{name}.onnx", model_args={"seed": 0})
    return name, net, path


def test_graph_is_valid_with_dynamic_shape(exported: tuple[str, object, Path]) -> None:
    name, _, path = exported
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param != "" for d in dims] == [True, False, True, True]  # N, 3, H, W
    assert len(proto.graph.input) == 1 and len(proto.graph.output) == 1
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["nightvision.model"] == name
    assert meta["nightvision.colour_order"] == "RGB"
    assert json.loads(meta["nightvision.input_range"]) == [0.0, 1.0]


def test_parity_with_pytorch(exported: tuple[str, object, Path]) -> None:
    name, net, path = exported
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    m = get_spec(name).pad_multiple  # the graph's contract: the runtime pads H and W to this multiple
    for batch, (h, w) in zip([1, 2, 1, 3], SIZES, strict=True):
        x = rng.random((batch, 3, -(-h // m) * m, -(-w // m) * m), dtype=np.float32)
        with torch.no_grad():
            ref = net(torch.from_numpy(x)).numpy()  # type: ignore[operator]
        out = session.run(None, {"image": x})[0]
        assert out.shape == x.shape
        assert float(np.abs(out - ref).max()) <= 1e-4


def test_low_opset_is_refused(tmp_path: Path) -> None:
    net = models.create("zero-dce++", pretrained=False)
    with pytest.raises(InputError, match="opset must be >= 17"):
        export_module(net, "zero-dce++", tmp_path / "x.onnx", opset=13)
    assert not (tmp_path / "x.onnx").exists()


def test_manifest_records_what_the_runtime_needs(exported: tuple[str, object, Path]) -> None:
    import hashlib

    from nightvision.export import record_in_manifest

    name, _, path = exported
    manifest = record_in_manifest(path)
    entry = json.loads(manifest.read_text())[path.name]
    assert entry["model"] == name and entry["opset"] >= 17 and entry["input_range"] == [0.0, 1.0]
    assert entry["pad_multiple"] == get_spec(name).pad_multiple and entry["colour_order"] == "RGB"
    assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_fp16_variant_runs_on_onnxruntime_cpu(exported: tuple[str, object, Path], tmp_path: Path) -> None:
    from nightvision.export import convert_to_fp16, record_in_manifest

    name, _, path = exported
    half = convert_to_fp16(path, tmp_path / f"{name}-fp16.onnx")
    onnx.checker.check_model(onnx.load(str(half)))
    s32 = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    s16 = ort.InferenceSession(str(half), providers=["CPUExecutionProvider"])
    assert s16.get_inputs()[0].type == "tensor(float)"  # fp32 in and out
    x = np.random.default_rng(1).random((1, 3, 64, 48), dtype=np.float32) * 0.4
    a, b = s16.run(None, {"image": x})[0], s32.run(None, {"image": x})[0]
    assert not np.isnan(a).any() and float(np.abs(a - b).max()) <= 1e-2
    assert json.loads(record_in_manifest(half).read_text())[half.name]["precision"] == "fp16"


@pytest.mark.shared
def test_shipped_fp16_on_real_low_light_images(tmp_path: Path) -> None:
    import cv2

    from nightvision.export import convert_to_fp16
    from nightvision.preprocess import to_tensor
    from nightvision.specs import list_specs
    from tests.conftest import shared_path

    files = sorted(
        p for p in shared_path("data", "unpaired").rglob("*") if p.suffix.lower() in (".jpg", ".png", ".bmp")
    )
    # mirnet-v2 ships fp16-stored weights already (and takes ~30 s a photo here): the others are converted
    for spec in [s for s in list_specs() if s.has_onnx and s.name != "mirnet-v2"]:
        half = convert_to_fp16(spec.onnx_path, tmp_path / f"{spec.name}-fp16.onnx")
        s16 = ort.InferenceSession(str(half), providers=["CPUExecutionProvider"])
        s32 = ort.InferenceSession(str(spec.onnx_path), providers=["CPUExecutionProvider"])
        for f in files[:: 1 if spec.name == "zero-dce++" else 6]:  # the others are slow at full size on a CPU
            blob = to_tensor(cv2.imread(str(f)), multiple=spec.pad_multiple)
            a, b = s16.run(None, {"image": blob})[0], s32.run(None, {"image": blob})[0]
            assert not np.isnan(a).any(), f
            assert float(np.abs(a - b).max()) <= 1e-2, f


def test_fp16_keeps_plain_op_layernorm_in_fp32(tmp_path: Path) -> None:
    from nightvision.export import convert_to_fp16, normalisation_nodes

    torch.manual_seed(0)
    path = export_module(models.create("nafnet-s", pretrained=False), "nafnet-s", tmp_path / "n.onnx")
    norm_nodes = set(normalisation_nodes(onnx.load(str(path))))
    assert {"Sub", "Mul", "Div", "Sqrt", "ReduceMean"} <= {
        n.op_type for n in onnx.load(str(path)).graph.node if n.name in norm_nodes
    }
    half = onnx.load(str(convert_to_fp16(path, tmp_path / "n16.onnx")))
    # every float input of a LayerNorm node is computed in fp32: a Cast to float, another LayerNorm node, or an
    # fp32 initialiser (integer inputs such as ReduceMean's axes aside)
    producer = {o: n for n in half.graph.node for o in n.output}
    init = {i.name: i.data_type for i in half.graph.initializer}
    checked = 0
    for node in (n for n in half.graph.node if n.name in norm_nodes):
        for name in node.input:
            if name in init:
                assert init[name] in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT64), (node.name, name)
                continue
            src = producer[name]
            to = next((a.i for a in src.attribute if a.name == "to"), None)
            assert src.name in norm_nodes or (src.op_type == "Cast" and to == onnx.TensorProto.FLOAT), (node.name, name)
            checked += 1
    assert checked > 0
    assert onnx.TensorProto.FLOAT16 in init.values()  # the rest is converted


def test_weights_stored_in_fp16_halve_the_file_and_keep_fp32_arithmetic(tmp_path: Path) -> None:
    import onnxruntime as ort

    from nightvision.export import store_weights_fp16
    from tests.conftest import dark_frame

    source = get_spec("nafnet-s").onnx_path
    assert source is not None
    small = store_weights_fp16(source, tmp_path / "half.onnx")
    assert small.stat().st_size < 0.6 * source.stat().st_size  # small tensors stay fp32
    x = dark_frame(64, 96).transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    full, half = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (source, small))
    a, b = (s.run(None, {s.get_inputs()[0].name: x})[0] for s in (full, half))
    assert b.dtype == np.float32 and a.shape == b.shape
    assert 0 < np.abs(a - b).max() < 2e-3  # fp16 rounding of the weights only: well under an 8-bit level


def _foreign_manifest(folder: Path, text: str) -> tuple[Path, bytes]:
    """A ``manifest.json`` that is not nightvision's, and its bytes (to check it is left as it was)."""
    manifest = folder / "manifest.json"
    manifest.write_text(text)
    return manifest, manifest.read_bytes()


@pytest.mark.parametrize(
    ("text", "match"),
    [('{"name": "my-web-app", "icons": []}\n', "not a nightvision manifest"), ("{not json", "not valid JSON")],
)
def test_a_foreign_or_broken_manifest_is_refused_before_anything_is_written(
    exported: tuple[str, object, Path], tmp_path: Path, text: str, match: str
) -> None:
    from nightvision.errors import OutputError
    from nightvision.export import export_onnx, record_in_manifest

    manifest, before = _foreign_manifest(tmp_path, text)
    with pytest.raises(OutputError, match=match):  # refused before the model is even built
        export_onnx("zero-dce++", tmp_path / "x.onnx")
    with pytest.raises(OutputError, match=match):
        export_module(models.create("zero-dce++", pretrained=False), "zero-dce++", tmp_path / "x.onnx")
    with pytest.raises(OutputError, match=match):
        record_in_manifest(exported[2], manifest)
    assert manifest.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]  # no graph, no temporary file


def test_cli_export_refuses_a_foreign_manifest_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nightvision.cli import main

    manifest, before = _foreign_manifest(tmp_path, '{"name": "my-web-app"}')
    assert main(["export", "zero-dce++", "-o", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a nightvision manifest" in err and "Traceback" not in err
    assert manifest.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


def test_an_output_that_is_not_a_onnx_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nightvision.cli import main
    from nightvision.export import export_onnx

    with pytest.raises(InputError, match=r"must be a \.onnx file, got .*x\.txt"):
        export_onnx("zero-dce++", tmp_path / "x.txt")
    with pytest.raises(InputError, match=r"must be a \.onnx file"):
        export_module(models.create("zero-dce++", pretrained=False), "zero-dce++", tmp_path / "x.txt")
    assert main(["export", "zero-dce++", "-o", str(tmp_path / "x.txt")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_record_merges_into_our_own_manifests_old_and_new(exported: tuple[str, object, Path], tmp_path: Path) -> None:
    from nightvision.export import read_manifest, record_in_manifest
    from nightvision.specs import WEIGHTS_DIR

    _, _, path = exported
    shipped = json.loads((WEIGHTS_DIR / "MANIFEST.json").read_text())  # training/publish.py's format
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(shipped))
    data = json.loads(record_in_manifest(path, manifest).read_text())
    assert {k: v for k, v in data.items() if k != path.name} == {k: v for k, v in shipped.items() if k != path.name}
    assert data[path.name]["sha256"] == read_manifest(manifest)[path.name]["sha256"]
    # and record_in_manifest's own format, beside the graph: a second graph joins the first
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(path.read_bytes())
    record_in_manifest(copy, manifest)
    assert {path.name, copy.name} <= set(read_manifest(manifest))


def test_weights_of_another_model_or_no_checkpoint_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``export zero-dce++ --weights`` of a curve-denoise checkpoint, or of a text file, was a traceback."""
    from nightvision.cli import main
    from tests.conftest import save_checkpoint

    other = save_checkpoint(tmp_path / "other.pt", "zero-dce")
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    for weights, said in ((other, "does not match zero-dce++"), (text, "is not a PyTorch checkpoint")):
        out = tmp_path / "out.onnx"
        assert main(["export", "zero-dce++", "--weights", str(weights), "-o", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], err
        assert not out.exists()
