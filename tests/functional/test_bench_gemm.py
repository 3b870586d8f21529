"""bench.perf.gemm: the GEMM models compute what they claim; FLOPs are counted from the graph."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bench.perf.gemm import _session, fraction_of_limit, gemm_models, gemm_rates, model_flops
from tests.fixtures.tiny_model import tiny_model_proto


def test_gemm_models_compute_the_products():
    models = gemm_models(size=64, seed=1)
    model, feeds = models["fp32_matmul"]
    b = numpy_helper.to_array(model.graph.initializer[0])
    np.testing.assert_allclose(_session(model, 1).run(None, feeds)[0], feeds["A"] @ b, rtol=1e-4, atol=1e-3)
    model, feeds = models["int8_matmulinteger"]
    b = numpy_helper.to_array(model.graph.initializer[0]).astype(np.int64)
    expected = (feeds["A"].astype(np.int64) - 128) @ b
    np.testing.assert_array_equal(_session(model, 1).run(None, feeds)[0], expected)


def test_gemm_rates_report_every_kind():
    rates = gemm_rates(threads=1, size=64, repeats=2)
    assert set(rates) == {"fp32_matmul", "int8_matmulinteger", "int8_qlinearmatmul"}
    assert all(r["gflops"] >= r["median_gflops"] > 0 for r in rates.values())


def test_model_flops_of_the_tiny_model(tmp_path):
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_model_proto(), path)
    assert model_flops(path) == 2 * 3 * 2048 + 2 * 3 * 3  # the two matmuls


def test_model_flops_of_a_strided_grouped_conv(tmp_path):
    weight = np.zeros((8, 2, 3, 3), dtype=np.float32)  # 8 out, 4 in, 2 groups
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1], group=2)],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(weight, "w")],
    )
    path = tmp_path / "conv.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)], ir_version=8), path)
    assert model_flops(path) == 2 * 8 * 16 * 16 * 2 * 3 * 3


def test_fraction_of_limit():
    assert fraction_of_limit(8e9, 0.1, 100.0) == {"achieved_gflops": 80.0, "fraction": 0.8}
    with pytest.raises(ZeroDivisionError):
        fraction_of_limit(8e9, 0.0, 100.0)
