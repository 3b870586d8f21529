"""LightGBM classifier -> ONNX (onnxmltools), with the names the merged model exposes.

The graph takes ``features`` float32 [N, n_features] and gives ``probabilities`` float32
[N, C], one column per label in ``labels`` order (class ``i`` is ``labels[i]``), and
``label`` int64 [N]. Binary classifiers also give [N, 2]. ZipMap is off: downstream wants
a plain tensor.
"""

from __future__ import annotations

from functions.errors import ConfigurationError
from functions.frames.manifest import FEATURES_OUTPUT, PROBABILITIES_OUTPUT

LABEL_OUTPUT = "label"
DEFAULT_TARGET_OPSET = 15


def _rename_value(graph, old_name: str, new_name: str) -> None:
    """Rename a value everywhere it is produced, consumed or declared."""
    for node in graph.node:
        node.input[:] = [new_name if name == old_name else name for name in node.input]
        node.output[:] = [new_name if name == old_name else name for name in node.output]
    for value in [*graph.input, *graph.output, *graph.value_info]:
        if value.name == old_name:
            value.name = new_name


def lightgbm_to_onnx(
    classifier, n_features: int, labels: list[str], target_opset: int = DEFAULT_TARGET_OPSET
):
    """Convert a fitted ``lightgbm.LGBMClassifier`` trained on labels 0..C-1 (``labels`` order)."""
    import onnx
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    classes = getattr(classifier, "classes_", None)
    if classes is None:
        raise ConfigurationError("lightgbm_to_onnx: the classifier is not fitted; fit it before exporting")
    if len(labels) < 2 or list(classes) != list(range(len(labels))):
        raise ConfigurationError(
            f"lightgbm_to_onnx: classifier classes {list(classes)} must be the label indices "
            f"0..{len(labels) - 1} of labels {labels}; encode y as labels.index(label)"
        )
    if classifier.n_features_in_ != n_features:
        raise ConfigurationError(
            f"lightgbm_to_onnx: classifier was fitted on {classifier.n_features_in_} features, "
            f"the backbone gives {n_features}; retrain on the features of this backbone"
        )
    model = convert_lightgbm(
        classifier,
        name="lightgbm",
        initial_types=[(FEATURES_OUTPUT, FloatTensorType([None, n_features]))],
        target_opset=target_opset,
        zipmap=False,
    )
    graph = model.graph
    label_output, probabilities_output = (output.name for output in graph.output)
    _rename_value(graph, probabilities_output, PROBABILITIES_OUTPUT)
    _rename_value(graph, label_output, LABEL_OUTPUT)
    # onnxmltools leaves the batch dimension blank and declares label as [1]; declare what
    # the graph really takes and gives: features [N, F], label [N], probabilities [N, C].
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    for output in graph.output:
        dims = output.type.tensor_type.shape.dim
        del dims[:]
        dims.add().dim_param = "N"
        if output.name == PROBABILITIES_OUTPUT:
            if output.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
                raise ConfigurationError(f"onnxmltools gave {PROBABILITIES_OUTPUT} of a non-float32 type")
            dims.add().dim_value = len(labels)
    onnx.checker.check_model(model)
    return model
