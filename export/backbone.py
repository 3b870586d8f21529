"""Keras ResNet50 feature extractor -> ONNX backbone.

The exported graph takes what the function has after decoding a frame (``image``: uint8
RGB NHWC [N, 224, 224, 3]) and does every numeric step itself: cast to float32,
``keras.applications.resnet50.preprocess_input`` (caffe mode: RGB -> BGR, subtract the
ImageNet means [103.939, 116.779, 123.68]), ResNet50 without its top, global average
pooling. Output: ``features`` float32 [N, 2048].

``keras_features`` is the reference path the exported graph is checked against.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from export.child import child_exit_code
from functions.errors import ConfigurationError
from functions.frames.manifest import FEATURE_SIZE, FEATURES_OUTPUT, IMAGE_SIZE, INPUT_NAME, sha256_file

# Weight specs besides a path to an .h5 file.
IMAGENET = "imagenet"
RANDOM_INIT = "none"
DEFAULT_OPSET = 15


def _h5_path(weights: str) -> Path:
    """The .h5 file a weights spec names; raises ConfigurationError if it is unusable."""
    path = Path(weights).expanduser()
    if path.suffix.lower() not in (".h5", ".hdf5"):
        raise ConfigurationError(
            f"weights {weights!r}: expected 'imagenet', 'none' or a path to an .h5 file "
            "(the notop ResNet50 weights, e.g. resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5)"
        )
    if not path.is_file():
        raise ConfigurationError(
            f"weights file {path} does not exist: pass an existing notop ResNet50 .h5 file, "
            "'--weights imagenet' (needs internet once) or '--weights none' (seeded random init)"
        )
    import h5py

    # Checked before building a ResNet50 so a wrong file fails at once.
    if not h5py.is_hdf5(path):
        raise ConfigurationError(
            f"weights file {path} is not an HDF5 file: pass the notop ResNet50 weights "
            "(resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5) or '--weights none'"
        )
    return path


def weights_label(weights: str) -> str:
    """How the manifest names the weights: imagenet | none | <file name>@sha256:<prefix>."""
    if weights in (IMAGENET, RANDOM_INIT):
        return weights
    path = _h5_path(weights)
    return f"{path.name}@sha256:{sha256_file(path)[:12]}"


def build_keras_backbone(weights: str, seed: int = 0):
    """ResNet50 without its top, global-average pooled: float32 [N,224,224,3] -> [N,2048].

    ``weights``:
    * ``"imagenet"``: Keras downloads the notop ImageNet weights on first use (cached in
      ``~/.keras/models``). Without internet this raises ConfigurationError.
    * ``"none"``: random initialisation, reproducible: the same ``seed`` gives the same weights.
    * a path to an ``.h5`` file: the notop ResNet50 weights, either Keras' own
      ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`` (legacy HDF5: one group per
      weighted layer, loaded in layer order, so it must come from the same architecture) or
      a ``*.weights.h5`` saved by ``model.save_weights`` from a model built here.
    """
    import keras

    # Seed even for pretrained weights: nothing random should remain, but it costs nothing.
    keras.utils.set_random_seed(seed)
    common = {"include_top": False, "pooling": "avg", "input_shape": (IMAGE_SIZE, IMAGE_SIZE, 3)}
    if weights == IMAGENET:
        try:
            return keras.applications.ResNet50(weights="imagenet", **common)
        # Keras' get_file raises a bare Exception for every download failure (DNS, HTTP,
        # hash mismatch), so there is no narrower type to catch here.
        except Exception as error:
            raise ConfigurationError(
                f"could not get the ImageNet ResNet50 weights ({error}). Without internet use "
                "'--weights none' (seeded random init) or '--weights /path/to/"
                "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5' (a local copy)"
            ) from error
    if weights == RANDOM_INIT:
        return keras.applications.ResNet50(weights=None, **common)
    path = _h5_path(weights)
    try:
        return keras.applications.ResNet50(weights=str(path), **common)
    except (ValueError, OSError, KeyError) as error:
        raise ConfigurationError(
            f"weights file {path} could not be loaded into a notop ResNet50 ({error}): it must hold "
            "the notop ResNet50 weights (resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5)"
        ) from error


def _serving_function(model):
    """uint8 image -> features, with preprocess_input inside: the function tf2onnx converts."""
    import keras
    import tensorflow as tf

    @tf.function(
        input_signature=[tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.uint8, name=INPUT_NAME)]
    )
    def serve(image):
        pixels = keras.applications.resnet50.preprocess_input(tf.cast(image, tf.float32))
        return model(pixels, training=False)

    return serve


def _rename_output(model_proto, new_name: str) -> None:
    """Give the graph's single output a contract name, rewiring every consumer."""
    (output,) = model_proto.graph.output
    old_name = output.name
    for node in model_proto.graph.node:
        node.output[:] = [new_name if name == old_name else name for name in node.output]
        node.input[:] = [new_name if name == old_name else name for name in node.input]
    output.name = new_name


@contextmanager
def progress_status(message: str, enabled: bool):
    """A rich spinner around a long step without its own progress (tf2onnx, quantization)."""
    if not enabled:
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


def export_backbone(
    model_or_weights,
    out_path: Path | str,
    *,
    seed: int = 0,
    opset: int = DEFAULT_OPSET,
    progress: bool = False,
) -> Path:
    """Convert the backbone to ONNX (tf2onnx) and save it to ``out_path``.

    ``model_or_weights``: a Keras model from ``build_keras_backbone`` or a weights spec for it.
    The file is saved as converted (plain onnx), never after onnxruntime's ALL-level
    optimizations, which would tie it to the CPU that saved it.
    """
    import onnx
    import tf2onnx

    model = (
        build_keras_backbone(model_or_weights, seed=seed)
        if isinstance(model_or_weights, str)
        else model_or_weights
    )
    serve = _serving_function(model)
    with progress_status("Converting ResNet50 to ONNX (tf2onnx, ~1 min)", progress), _no_graph_copies():
        model_proto, _ = tf2onnx.convert.from_function(
            serve, input_signature=serve.input_signature, opset=opset
        )
    _rename_output(model_proto, FEATURES_OUTPUT)
    (graph_input,) = model_proto.graph.input
    if graph_input.name != INPUT_NAME:
        raise ConfigurationError(
            f"tf2onnx named the backbone input {graph_input.name!r}, expected {INPUT_NAME!r}"
        )
    # tf2onnx names the batch dimension "unk__<n>"; give input and output the same name.
    for value in (graph_input, model_proto.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    onnx.checker.check_model(model_proto)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model_proto, str(out_path))
    return out_path


@contextmanager
def _no_graph_copies():
    """tf2onnx without a deep copy of the whole graph (weights included) before every optimizer pass.

    tf2onnx copies the graph so that it can skip a pass that raises; the copies are freed only by
    a full garbage collection, so they pile up: converting a ResNet50 peaked at 5.3 GB RSS with
    them and 2.7 GB without (measured, one process, TensorFlow and the model included). Without
    the copies a failing pass raises instead of being skipped; none fails on ResNet50, and the
    graph is the same (tests/functional/test_backbone_export.py checks the features).
    ``TF2ONNX_CATCH_ERRORS`` is tf2onnx's own switch (tf2onnx.constants); set only for the call.
    """
    previous = os.environ.get(_CATCH_ERRORS)
    os.environ[_CATCH_ERRORS] = "FALSE"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_CATCH_ERRORS, None)
        else:
            os.environ[_CATCH_ERRORS] = previous


_CATCH_ERRORS = "TF2ONNX_CATCH_ERRORS"


def export_backbone_in_child(
    weights: str, out_path: Path | str, *, seed: int = 0, opset: int = DEFAULT_OPSET, progress: bool = False
) -> Path:
    """``export_backbone(weights)`` in a child process that exits when done (export.child).

    The conversion is the heaviest step of a training run (TensorFlow, the ResNet50 and tf2onnx's
    graphs: ~2.4 GB in the child); the caller, which has not loaded TensorFlow yet, stays small
    meanwhile. The child builds the same network from (weights, seed) (a seeded build; the
    parity gate later checks the graph against the caller's own Keras model).
    """
    from export.child import run_child

    weights_label(weights)  # an unusable .h5 path fails here, before a child loads TensorFlow
    out_path = Path(out_path)
    with progress_status("Converting ResNet50 to ONNX (tf2onnx, in a child process)", progress):
        run_child(
            "export.backbone",
            [weights, str(out_path), "--seed", str(seed), "--opset", str(opset)],
            f"converting the ResNet50 (weights {weights}, seed {seed}) to ONNX",
        )
    return out_path


def backbone_cache_key(weights: str, *, seed: int = 0, opset: int = DEFAULT_OPSET) -> str:
    """Everything the exported bytes depend on, hashed: weights (+ .h5 content), seed, opset, tools."""
    import keras
    import onnx
    import tensorflow as tf
    import tf2onnx

    spec = {
        "weights": weights if weights in (IMAGENET, RANDOM_INIT) else "h5:" + sha256_file(_h5_path(weights)),
        "seed": seed,
        "opset": opset,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tf2onnx": tf2onnx.__version__,
        "onnx": onnx.__version__,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def cached_backbone(
    weights: str,
    cache_dir: Path | str,
    *,
    seed: int = 0,
    opset: int = DEFAULT_OPSET,
    model=None,
    progress: bool = False,
) -> Path:
    """The exported backbone for (weights, seed, opset, tool versions), converted once.

    ``model``: the Keras model these weights/seed already built, converted in this process on a
    cache miss; without it the conversion runs in a child process (``export_backbone_in_child``). The file is written to a temporary name and renamed into place, so a
    crash or a concurrent export never leaves a half-written backbone in the cache.
    """
    cache_dir = Path(cache_dir)
    label = weights if weights in (IMAGENET, RANDOM_INIT) else _h5_path(weights).stem
    target = cache_dir / f"backbone-{label}-{backbone_cache_key(weights, seed=seed, opset=opset)}.onnx"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        if model is not None:
            export_backbone(model, tmp, opset=opset, progress=progress)
        else:  # nothing built here yet: convert in a child process (export_backbone_in_child)
            export_backbone_in_child(weights, tmp, seed=seed, opset=opset, progress=progress)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def keras_features(
    model, images_uint8: np.ndarray, batch_size: int = 16, *, progress: bool = False
) -> np.ndarray:
    """The reference features: ``preprocess_input(images.astype(float32))`` then the model.

    Returns float32 [N, 2048]. ``progress`` shows a rich progress bar (batches).
    """
    import keras

    images_uint8 = np.asarray(images_uint8)
    if (
        images_uint8.dtype != np.uint8
        or images_uint8.ndim != 4
        or images_uint8.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3)
    ):
        raise ConfigurationError(
            f"keras_features expects uint8 [N,{IMAGE_SIZE},{IMAGE_SIZE},3] images, got "
            f"{images_uint8.dtype} {images_uint8.shape}: load frames with functions.frames.image_loader.load_image"
        )
    starts = range(0, len(images_uint8), batch_size)
    out = np.empty((len(images_uint8), FEATURE_SIZE), dtype=np.float32)

    def run(start: int) -> None:
        batch = keras.applications.resnet50.preprocess_input(
            images_uint8[start : start + batch_size].astype(np.float32)
        )
        out[start : start + batch_size] = np.asarray(model(batch, training=False), dtype=np.float32)

    if not progress:
        for start in starts:
            run(start)
        return out
    from rich.progress import track

    for start in track(starts, description="Keras features"):
        run(start)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m export.backbone WEIGHTS OUT [--seed N] [--opset N]``: what export_backbone_in_child runs."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("weights")
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    args = parser.parse_args(argv)
    return child_exit_code(lambda: export_backbone(args.weights, args.out, seed=args.seed, opset=args.opset))


if __name__ == "__main__":
    sys.exit(main())
