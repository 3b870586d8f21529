"""Per-label binary classifiers -> one ONNX graph ``features`` [N, F] -> ``probabilities`` [N, L].

Each label's classifier is converted on its own (``export.trees.lightgbm_to_onnx`` for
LightGBM; any converter giving ``probabilities`` [N, 2] works), brought to the merged
model's opset, its names prefixed ``label<k>/``, and the positive-class column of each is
gathered and concatenated in label order. Columns are independent probabilities: rows do
not sum to 1. The result has the same interface as a single classifier's graph, so
``export.merge.merge_backbone_and_trees`` fuses it into the backbone unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from functions.errors import ConfigurationError
from functions.frames.manifest import FEATURES_OUTPUT, PROBABILITIES_OUTPUT

ONNX_DOMAIN = ""


def per_label_to_onnx(per_label_models: list, labels: list[str], convert: Callable[[object], object]):
    """Combine ``convert(model)`` (a ModelProto features -> probabilities [N, 2]) of every label."""
    import numpy as np
    import onnx
    import onnx.version_converter
    from onnx import TensorProto, helper

    from export.merge import TARGET_ONNX_OPSET, prefix_graph_names

    if len(per_label_models) != len(labels) or not labels:
        raise ConfigurationError(f"{len(per_label_models)} per-label models for labels {labels}: one each")
    nodes, initializers, value_info, columns = [], [], [], []
    opsets: dict[str, int] = {}
    features_input = None
    ir_version = 0
    for k, model in enumerate(per_label_models):
        proto = convert(model)
        proto_opsets = {o.domain: o.version for o in proto.opset_import}
        if proto_opsets.get(ONNX_DOMAIN, TARGET_ONNX_OPSET) < TARGET_ONNX_OPSET:
            proto = onnx.version_converter.convert_version(proto, TARGET_ONNX_OPSET)
            proto_opsets = {o.domain: o.version for o in proto.opset_import}
        for domain, version in proto_opsets.items():
            if domain != ONNX_DOMAIN:
                opsets[domain] = max(opsets.get(domain, 0), version)
        ir_version = max(ir_version, proto.ir_version)
        graph = proto.graph
        features_input = features_input or graph.input[0]
        prefix = f"label{k}/"
        prefix_graph_names(graph, keep={FEATURES_OUTPUT}, prefix=prefix)
        nodes.extend(graph.node)
        initializers.extend(graph.initializer)
        value_info.extend(graph.value_info)
        index = prefix + "positive_index"
        initializers.append(helper.make_tensor(index, TensorProto.INT64, [1], np.array([1], np.int64)))
        column = prefix + "positive"
        nodes.append(
            helper.make_node(
                "Gather",
                [prefix + PROBABILITIES_OUTPUT, index],
                [column],
                axis=1,
                name=prefix + "gather_positive",
            )
        )
        columns.append(column)
    nodes.append(helper.make_node("Concat", columns, [PROBABILITIES_OUTPUT], axis=1, name="labels/concat"))
    output = helper.make_tensor_value_info(PROBABILITIES_OUTPUT, TensorProto.FLOAT, ["N", len(labels)])
    graph = helper.make_graph(
        nodes, "multilabel", [features_input], [output], initializer=initializers, value_info=value_info
    )
    opset_imports = [helper.make_opsetid(ONNX_DOMAIN, TARGET_ONNX_OPSET)]
    opset_imports += [helper.make_opsetid(domain, version) for domain, version in sorted(opsets.items())]
    combined = helper.make_model(graph, opset_imports=opset_imports, producer_name="camsort")
    combined.ir_version = ir_version
    onnx.checker.check_model(combined, full_check=True)
    return combined


def multilabel_lightgbm_to_onnx(classifiers: list, n_features: int, labels: list[str]):
    """One binary ``LGBMClassifier`` per label (classes 0/1) -> probabilities [N, L]."""
    from export.trees import lightgbm_to_onnx

    return per_label_to_onnx(
        classifiers, labels, lambda classifier: lightgbm_to_onnx(classifier, n_features, ["no", "yes"])
    )
