"""One graph for the function: backbone (image -> features) + trees (features -> probabilities).

The merged model has input ``image`` and outputs ``probabilities`` and ``features`` (the
pooled features stay visible for debugging and re-training). Every name that came from the
trees graph is prefixed with ``trees/`` so nothing collides with the backbone's names.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from functions.errors import ConfigurationError
from functions.frames.manifest import FEATURES_OUTPUT, INPUT_NAME, PROBABILITIES_OUTPUT

ONNX_DOMAIN = ""  # ai.onnx
ML_DOMAIN = "ai.onnx.ml"
TARGET_ONNX_OPSET = 15  # onnxmltools' ceiling, and what the backbone is exported at
TREES_PREFIX = "trees/"


def _opsets(model) -> dict[str, int]:
    return {opset.domain: opset.version for opset in model.opset_import}


def _domains_used(graph) -> set[str]:
    return {node.domain for node in graph.node}


def prefix_graph_names(graph, keep: set[str], prefix: str = TREES_PREFIX) -> None:
    """Prefix every node, value and initializer name of ``graph`` except ``keep``."""

    def renamed(name: str) -> str:
        # "" marks an omitted optional input/output: it must stay empty.
        return name if not name or name in keep else prefix + name

    for index, node in enumerate(graph.node):
        # onnxmltools leaves some nodes unnamed; onnxruntime wants node names unique.
        node.name = prefix + (node.name or f"{node.op_type}_{index}")
        node.input[:] = [renamed(name) for name in node.input]
        node.output[:] = [renamed(name) for name in node.output]
    for tensor in graph.initializer:
        tensor.name = renamed(tensor.name)
    for value in [*graph.input, *graph.output, *graph.value_info]:
        value.name = renamed(value.name)


def _names(graph) -> set[str]:
    names = {node.name for node in graph.node if node.name}
    names |= {name for node in graph.node for name in [*node.input, *node.output] if name}
    names |= {tensor.name for tensor in graph.initializer}
    return names


def _require_io(model, what: str, inputs: list[str], outputs: list[str]) -> None:
    actual_inputs = [value.name for value in model.graph.input]
    actual_outputs = [value.name for value in model.graph.output]
    if actual_inputs != inputs or not set(outputs) <= set(actual_outputs):
        raise ConfigurationError(
            f"{what} graph has inputs {actual_inputs} and outputs {actual_outputs}; expected inputs "
            f"{inputs} and outputs including {outputs}: export it with export.backbone / export.trees"
        )


def merge_backbone_and_trees(backbone, trees):
    """Fuse the backbone and the trees into one checked ``onnx.ModelProto`` (inputs are not modified)."""
    import onnx
    import onnx.version_converter

    _require_io(backbone, "backbone", [INPUT_NAME], [FEATURES_OUTPUT])
    _require_io(trees, "trees", [FEATURES_OUTPUT], [PROBABILITIES_OUTPUT])
    backbone_opsets, trees_opsets = _opsets(backbone), _opsets(trees)
    if backbone_opsets.get(ONNX_DOMAIN) != TARGET_ONNX_OPSET:
        raise ConfigurationError(
            f"backbone uses ai.onnx opset {backbone_opsets.get(ONNX_DOMAIN)}, expected {TARGET_ONNX_OPSET}: "
            f"export it with opset={TARGET_ONNX_OPSET}"
        )
    # Only ai.onnx operators: the merged model imports ai.onnx (and the trees' ai.onnx.ml),
    # and a backbone fused by onnxruntime (com.microsoft ops) must not ship.
    foreign_domains = _domains_used(backbone.graph) - {ONNX_DOMAIN, "ai.onnx"}
    if foreign_domains:
        raise ConfigurationError(
            f"backbone graph uses operators of {sorted(foreign_domains)}; expected only ai.onnx "
            "(export it with export_backbone / quantize_backbone, never save an onnxruntime-optimized graph)"
        )

    trees = onnx.ModelProto.FromString(trees.SerializeToString())
    if trees_opsets.get(ONNX_DOMAIN, TARGET_ONNX_OPSET) > TARGET_ONNX_OPSET:
        raise ConfigurationError(
            f"trees use ai.onnx opset {trees_opsets[ONNX_DOMAIN]} > {TARGET_ONNX_OPSET}: convert them with "
            f"target_opset={TARGET_ONNX_OPSET}"
        )
    if trees_opsets.get(ONNX_DOMAIN, TARGET_ONNX_OPSET) < TARGET_ONNX_OPSET:
        # onnxmltools declares the lowest opset its few ai.onnx nodes need; bring it up
        # properly (the converter adapts any op whose definition changed) rather than
        # just relabelling the import.
        trees = onnx.version_converter.convert_version(trees, TARGET_ONNX_OPSET)
    prefix_graph_names(trees.graph, keep={FEATURES_OUTPUT, PROBABILITIES_OUTPUT})

    collisions = _names(backbone.graph) & _names(trees.graph) - {FEATURES_OUTPUT}
    if collisions:
        raise ConfigurationError(f"backbone and trees share names {sorted(collisions)[:5]}; cannot merge")

    backbone_output = next(value for value in backbone.graph.output if value.name == FEATURES_OUTPUT)
    trees_output = next(value for value in trees.graph.output if value.name == PROBABILITIES_OUTPUT)
    graph = onnx.helper.make_graph(
        nodes=[*backbone.graph.node, *trees.graph.node],
        name="camsort",
        inputs=list(backbone.graph.input),
        outputs=[trees_output, backbone_output],
        initializer=[*backbone.graph.initializer, *trees.graph.initializer],
        value_info=[*backbone.graph.value_info, *trees.graph.value_info],
        sparse_initializer=[*backbone.graph.sparse_initializer, *trees.graph.sparse_initializer],
    )
    opset_imports = [onnx.helper.make_opsetid(ONNX_DOMAIN, TARGET_ONNX_OPSET)]
    if ML_DOMAIN in trees_opsets:
        opset_imports.append(onnx.helper.make_opsetid(ML_DOMAIN, trees_opsets[ML_DOMAIN]))
    node_names = Counter(node.name for node in graph.node if node.name)
    duplicates = sorted(name for name, count in node_names.items() if count > 1)
    if duplicates:
        raise ConfigurationError(f"merged graph has duplicate node names {duplicates[:5]}; cannot merge")
    merged = onnx.helper.make_model(graph, opset_imports=opset_imports, producer_name="camsort")
    merged.ir_version = max(backbone.ir_version, trees.ir_version)
    onnx.checker.check_model(merged, full_check=True)
    return merged


def _value_summary(value) -> dict[str, Any]:
    import onnx

    tensor_type = value.type.tensor_type
    shape = [
        dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or "?")
        for dim in tensor_type.shape.dim
    ]
    return {
        "name": value.name,
        "dtype": onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name,
        "shape": shape,
    }


def model_io_summary(model) -> dict[str, Any]:
    """Inputs, outputs, opsets, IR version and op counts of a model, as plain data for reports."""
    op_counts = Counter(node.op_type for node in model.graph.node)
    return {
        "inputs": [_value_summary(value) for value in model.graph.input],
        "outputs": [_value_summary(value) for value in model.graph.output],
        "opsets": {opset.domain or "ai.onnx": opset.version for opset in model.opset_import},
        "ir_version": model.ir_version,
        "nodes": len(model.graph.node),
        "op_counts": dict(sorted(op_counts.items())),
    }
