"""Graph rewrites of exported ONNX files: same outputs, fewer copies."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from nightvision.onnx_rewrites import split_concat_convs  # noqa: E402
from nightvision.specs import WEIGHTS_DIR  # noqa: E402


def _graph(depthwise: bool, second_consumer: bool = False) -> onnx.ModelProto:
    """image (3 ch) → two convs (4 and 6 ch) → Concat → Conv (plain 3×3, or depthwise 3×3 then 1×1) → out."""
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(size=shape).astype(np.float32), name)

    inits = [weight("wa", 4, 3, 3, 3), weight("wb", 6, 3, 1, 1), weight("ba", 4)]
    nodes = [
        # (named as the rewrite would first name a new tensor: new names must not collide with old ones)
        helper.make_node("Conv", ["image", "wa", "ba"], ["conv_split_0"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["image", "wb"], ["b"]),
        helper.make_node("Concat", ["conv_split_0", "b"], ["cat"], axis=1),
    ]
    if depthwise:
        inits += [weight("wd", 10, 1, 3, 3), weight("bd", 10), weight("wp", 5, 10, 1, 1), weight("bp", 5)]
        nodes += [
            helper.make_node("Conv", ["cat", "wd", "bd"], ["dw"], group=10, pads=[1, 1, 1, 1]),
            helper.make_node("Conv", ["dw", "wp", "bp"], ["conv"]),
        ]
    else:
        inits += [weight("wc", 5, 10, 3, 3), weight("bc", 5)]
        nodes.append(helper.make_node("Conv", ["cat", "wc", "bc"], ["conv"], pads=[1, 1, 1, 1], strides=[1, 1]))
    nodes.append(helper.make_node("Relu", ["conv"], ["out"]))
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 5, "h", "w"])]
    if second_consumer:
        nodes.append(helper.make_node("Relu", ["cat"], ["cat_out"]))
        outputs.append(helper.make_tensor_value_info("cat_out", TensorProto.FLOAT, [1, 10, "h", "w"]))
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "h", "w"])
    graph = helper.make_graph(nodes, "g", [image], outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x})  # type: ignore[no-any-return]


@pytest.mark.parametrize("depthwise", [False, True])
def test_a_conv_over_a_concatenation_becomes_a_sum_with_the_same_output(depthwise: bool) -> None:
    model = _graph(depthwise)
    x = np.random.default_rng(1).normal(size=(1, 3, 17, 23)).astype(np.float32)
    before = _run(model, x)
    assert split_concat_convs(model) == 1
    onnx.checker.check_model(model, full_check=True)
    ops = [n.op_type for n in model.graph.node]
    assert "Concat" not in ops and ops.count("Add") == 1
    assert ops.count("Conv") == 2 + (4 if depthwise else 2)
    assert {t.name for t in model.graph.initializer}.isdisjoint({"wc", "wd", "wp"})  # the old weights are gone
    np.testing.assert_allclose(_run(model, x)[0], before[0], rtol=1e-5, atol=1e-5)


def test_a_concatenation_used_elsewhere_stays() -> None:
    model = _graph(True, second_consumer=True)
    assert split_concat_convs(model) == 0
    assert [n.op_type for n in model.graph.node].count("Concat") == 1


def test_the_shipped_zero_dce_plus_plus_estimator_has_no_concatenation() -> None:
    model = onnx.load(str(WEIGHTS_DIR / "zero-dce++.estimator.onnx"))
    assert [n.op_type for n in model.graph.node].count("Concat") == 0
