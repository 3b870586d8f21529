"""A fine-tuned ResNet50's ONNX backbone, from the frozen one's graph: no second tf2onnx conversion.

Fine-tuning changes weights, never the graph. tf2onnx folds every BatchNormalization into the
convolution before it (``W' = W * gamma / sqrt(var + eps)``, ``b' = (b - mean) * gamma /
sqrt(var + eps) + beta``), transposes the kernel to ONNX's [out, in, kh, kw] and drops a bias that
is all zeros. So the fine-tuned backbone is the frozen graph with each Conv's initializers
replaced by the fine-tuned network's folded weights (a bias input added where the frozen graph
had none). Every Conv of the graph is rewritten, whichever stages were trained.

A conversion costs ~40 s and ~2.4 GB in a child process (export.backbone.export_backbone_in_child);
this costs ~1 s and one copy of the weights. The parity gate (export.parity) checks the result
against the fine-tuned Keras network like any converted backbone. ``TunedGraphMismatch``: the
frozen graph does not have the layout described above (another tf2onnx, another architecture);
the caller then converts instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

# tf2onnx names a Conv's folded kernel after the Keras layer: "resnet50_1/conv5_block3_2_conv_1/...".
_CONV_LAYER = re.compile(r"(?:^|/)(conv\d_(?:block\d+_\d_)?conv)_\d+/")


class TunedGraphMismatch(ValueError):
    """The frozen ONNX graph cannot take the fine-tuned weights (see the module's docstring)."""


def folded_conv(conv, batch_norm) -> tuple[np.ndarray, np.ndarray]:
    """A Keras Conv2D followed by its BatchNormalization, as one ONNX Conv's (kernel, bias)."""
    weights = conv.get_weights()
    kernel = weights[0].astype(np.float32)  # [kh, kw, in, out]
    bias = weights[1].astype(np.float32) if len(weights) > 1 else np.zeros(kernel.shape[-1], np.float32)
    gamma, beta, mean, variance = (w.astype(np.float32) for w in batch_norm.get_weights())
    scale = gamma / np.sqrt(variance + np.float32(batch_norm.epsilon))
    folded_kernel = np.ascontiguousarray((kernel * scale).transpose(3, 2, 0, 1))
    return folded_kernel, ((bias - mean) * scale + beta).astype(np.float32)


def tuned_backbone(frozen_path: Path | str, keras_model, out_path: Path | str) -> Path:
    """Write ``keras_model``'s weights into the frozen backbone's graph at ``out_path``."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(frozen_path))
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    convs = {}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        match = _CONV_LAYER.search(node.input[1])
        if match is None or node.input[1] not in initializers or match.group(1) in convs:
            raise TunedGraphMismatch(
                f"Conv {node.name}: its kernel {node.input[1]!r} names no single Keras layer"
            )
        convs[match.group(1)] = node
    layers = [layer for layer in keras_model.layers if layer.__class__.__name__ == "Conv2D"]
    if sorted(convs) != sorted(layer.name for layer in layers):
        raise TunedGraphMismatch(
            f"the frozen graph has {len(convs)} Conv nodes, the network {len(layers)} Conv2D layers"
        )
    for layer in layers:
        node = convs[layer.name]
        kernel, bias = folded_conv(layer, keras_model.get_layer(layer.name.removesuffix("_conv") + "_bn"))
        frozen_kernel = initializers[node.input[1]]
        if tuple(frozen_kernel.dims) != kernel.shape:
            raise TunedGraphMismatch(
                f"{layer.name}: kernel {kernel.shape} vs the graph's {tuple(frozen_kernel.dims)}"
            )
        frozen_kernel.CopyFrom(numpy_helper.from_array(kernel, frozen_kernel.name))
        if len(node.input) > 2:
            initializers[node.input[2]].CopyFrom(numpy_helper.from_array(bias, node.input[2]))
        else:
            name = f"{layer.name}/folded_bias"
            graph.initializer.append(numpy_helper.from_array(bias, name))
            node.input.append(name)
    onnx.checker.check_model(model)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    staged = out_path.with_name(out_path.name + ".partial")
    onnx.save(model, str(staged))
    staged.replace(out_path)
    return out_path
