"""scikit-learn heads (logistic regression, calibrated linear SVM) -> ONNX with skl2onnx.

Same interface as ``export.trees.lightgbm_to_onnx``: input ``features`` float32 [N, F],
output ``probabilities`` float32 [N, C] (ZipMap off), plus ``label``. ai.onnx opset 15 (the
merged model's), ai.onnx.ml as skl2onnx needs it.
"""

from __future__ import annotations

from export.trees import DEFAULT_TARGET_OPSET, LABEL_OUTPUT, _rename_value
from functions.errors import ConfigurationError
from functions.frames.manifest import FEATURES_OUTPUT, PROBABILITIES_OUTPUT


def sklearn_to_onnx(model, n_features: int, target_opset: int = DEFAULT_TARGET_OPSET):
    import onnx
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    if getattr(model, "n_features_in_", n_features) != n_features:
        raise ConfigurationError(
            f"sklearn_to_onnx: the head was fitted on {model.n_features_in_} features, the backbone gives "
            f"{n_features}; retrain it on the features of this backbone"
        )
    proto = convert_sklearn(
        model,
        "head",
        initial_types=[(FEATURES_OUTPUT, FloatTensorType([None, n_features]))],
        target_opset={"": target_opset, "ai.onnx.ml": 3},
        # float64 inside would not match sklearn bit for bit either; float32 stays within the
        # parity tolerance (measured in tests/functional/test_heads.py)
        options={id(model): {"zipmap": False}},
    )
    graph = proto.graph
    label_output, probabilities_output = (output.name for output in graph.output)
    _rename_value(graph, probabilities_output, PROBABILITIES_OUTPUT)
    _rename_value(graph, label_output, LABEL_OUTPUT)
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    onnx.checker.check_model(proto)
    return proto
