"""This machine's matrix-multiply limit, measured with onnxruntime, and inference against it.

A ResNet50 is almost all convolutions, which onnxruntime runs as GEMMs (im2col + MLAS
kernels). So the fastest a frame can go here is (the model's multiply-adds) / (the rate of a
large GEMM in the same runtime, same threads). ``gemm_rates`` measures that rate for fp32
(``MatMul``) and int8 (``MatMulInteger`` u8 x s8 -> s32, and ``QLinearMatMul`` u8 x s8 -> u8,
the op a QDQ model's matmuls become); ``model_flops`` counts the model's FLOPs (2 per
multiply-add) from its ONNX graph; ``fraction_of_limit`` turns a measured inference time into
the share of the GEMM rate it reached.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

# Large enough that the kernels, not call overhead or cache misses at the edges, set the rate:
# one fp32 run is 2 * 2048^3 = 17 GFLOP.
GEMM_SIZE = 2048
GEMM_REPEATS = 5


def _session(model, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    return ort.InferenceSession(
        model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )


def gemm_models(size: int = GEMM_SIZE, seed: int = 0) -> dict[str, tuple[Any, dict[str, np.ndarray]]]:
    """{kind: (ModelProto, feeds)} for ``fp32`` MatMul, ``int8`` MatMulInteger and QLinearMatMul."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    a_f = rng.standard_normal((size, size), dtype=np.float32)
    b_f = rng.standard_normal((size, size), dtype=np.float32)
    a_u8 = rng.integers(0, 256, (size, size), dtype=np.uint8)
    b_s8 = rng.integers(-128, 128, (size, size), dtype=np.int8)

    def model(nodes, inputs, output, initializers):
        graph = helper.make_graph(nodes, "gemm", inputs, [output], initializer=initializers)
        # IR 8 (opset 15): what the runtime reads, whatever the onnx package would default to.
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)], ir_version=8)

    fp32 = model(
        [helper.make_node("MatMul", ["A", "B"], ["Y"])],
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [size, size])],
        helper.make_tensor_value_info("Y", TensorProto.FLOAT, [size, size]),
        [numpy_helper.from_array(b_f, "B")],
    )
    integer = model(
        [helper.make_node("MatMulInteger", ["A", "B", "a_zero", "b_zero"], ["Y"])],
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [size, size])],
        helper.make_tensor_value_info("Y", TensorProto.INT32, [size, size]),
        [
            numpy_helper.from_array(b_s8, "B"),
            numpy_helper.from_array(np.array(128, dtype=np.uint8), "a_zero"),
            numpy_helper.from_array(np.array(0, dtype=np.int8), "b_zero"),
        ],
    )
    scalars = [
        numpy_helper.from_array(np.array(0.02, dtype=np.float32), "a_scale"),
        numpy_helper.from_array(np.array(128, dtype=np.uint8), "a_zero"),
        numpy_helper.from_array(np.array(0.01, dtype=np.float32), "b_scale"),
        numpy_helper.from_array(np.array(0, dtype=np.int8), "b_zero"),
        numpy_helper.from_array(np.array(0.5, dtype=np.float32), "y_scale"),
        numpy_helper.from_array(np.array(128, dtype=np.uint8), "y_zero"),
    ]
    qlinear = model(
        [
            helper.make_node(
                "QLinearMatMul",
                ["A", "a_scale", "a_zero", "B", "b_scale", "b_zero", "y_scale", "y_zero"],
                ["Y"],
            )
        ],
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [size, size])],
        helper.make_tensor_value_info("Y", TensorProto.UINT8, [size, size]),
        [numpy_helper.from_array(b_s8, "B"), *scalars],
    )
    return {
        "fp32_matmul": (fp32, {"A": a_f}),
        "int8_matmulinteger": (integer, {"A": a_u8}),
        "int8_qlinearmatmul": (qlinear, {"A": a_u8}),
    }


def gemm_rates(
    threads: int, size: int = GEMM_SIZE, repeats: int = GEMM_REPEATS, seed: int = 0
) -> dict[str, dict[str, float]]:
    """{kind: {"gflops": best rate, "median_gflops": ..., "ms": best time}} at ``threads`` threads.

    The best of ``repeats`` runs is the limit (on a shared machine the median is also
    reported; other processes only ever slow a run down).
    """
    flops = 2.0 * size**3
    rates = {}
    for kind, (model, feeds) in gemm_models(size, seed).items():
        session = _session(model, threads)
        session.run(None, feeds)  # warm-up: packing of the constant B, allocations
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            session.run(None, feeds)
            seconds.append(time.perf_counter() - start)
        rates[kind] = {
            "gflops": round(flops / min(seconds) / 1e9, 1),
            "median_gflops": round(flops / float(np.median(seconds)) / 1e9, 1),
            "ms": round(min(seconds) * 1000.0, 2),
        }
    return rates


def model_flops(model_path: Path | str, image_size: int = 224) -> float:
    """FLOPs (2 x multiply-adds) of one image through ``model_path``'s Conv / MatMul / Gemm nodes.

    Works for fp32 and QDQ int8 graphs alike (a QDQ Conv keeps its fp32 shapes). The batch
    dimension is fixed to 1 for shape inference; everything else comes from the graph.
    """
    import onnx
    from onnx import numpy_helper, shape_inference

    model = onnx.load(str(model_path))
    for graph_input in model.graph.input:
        dims = graph_input.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].dim_value = 1
    inferred = shape_inference.infer_shapes(model)
    shapes: dict[str, list[int]] = {}
    for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        shapes[info.name] = [d.dim_value for d in info.type.tensor_type.shape.dim]
    for initializer in inferred.graph.initializer:
        shapes[initializer.name] = list(numpy_helper.to_array(initializer).shape)
    total = 0.0
    for node in inferred.graph.node:
        if node.op_type == "Conv":
            weight, output = shapes.get(node.input[1]), shapes.get(node.output[0])
            if not weight or not output or len(output) != 4 or 0 in output or 0 in weight:
                raise ValueError(f"{model_path}: no shape for Conv {node.name!r}; cannot count its FLOPs")
            out_channels, in_per_group, kh, kw = weight
            total += 2.0 * out_channels * output[2] * output[3] * in_per_group * kh * kw
        elif node.op_type in ("MatMul", "Gemm"):
            a, b = shapes.get(node.input[0]), shapes.get(node.input[1])
            if not a or not b or 0 in b:
                continue  # the trees' small matmuls have no static shape: negligible
            transposed = node.op_type == "Gemm" and any(
                attribute.name == "transB" and attribute.i for attribute in node.attribute
            )
            k, n = (b[1], b[0]) if transposed else (b[-2], b[-1])
            rows = int(np.prod([d for d in a[:-1] if d])) or 1
            total += 2.0 * rows * k * n
    return total


def fraction_of_limit(
    flops_per_frame: float, seconds_per_frame: float, limit_gflops: float
) -> dict[str, float]:
    """The rate inference reached and its share of the measured GEMM limit."""
    achieved = flops_per_frame / seconds_per_frame / 1e9
    return {"achieved_gflops": round(achieved, 1), "fraction": round(achieved / limit_gflops, 3)}
