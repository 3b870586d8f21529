"""The Keras side of fine-tuning: split the ResNet50 at a stage, cache the frozen part, train the top.

The frozen part (the input up to the end of the stage before ``from_stage``) is run once per
frame and augmented view and cached on disk, keyed like the feature cache (content sha256 x the
backbone's weights and seed x the split x the augmentation recipe x the view); each epoch then
runs only the stages being trained. The trained layers are the ResNet50's own layers (of a
copy): after training, the copy *is* the fine-tuned backbone, exported like any other.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from functions.errors import ConfigurationError
from training.fit.augment import Augmentation, augmented_view

# The stage to train from -> the layer whose output feeds it (Keras ResNet50's layer names).
STAGE_INPUTS = {
    "conv5": "conv4_block6_out",
    "conv4": "conv3_block4_out",
    "conv3": "conv2_block3_out",
    "conv2": "pool1_pool",
}
ACTIVATION_CACHE_VERSION = 1


@dataclass(frozen=True)
class TuneSettings:
    from_stage: str = "conv5"
    epochs: int = 20  # at most: early stopping ends sooner
    patience: int = 4  # epochs without a better validation score before stopping
    views: int = 4  # the frame + 3 augmented views; each epoch trains on one view per frame
    batch_size: int = 16
    learning_rate: float = 1e-3  # Adam, cosine decay to 0 over the planned steps
    dropout: float = 0.5
    validation_fraction: float = 0.2  # of the training frames' near-duplicate groups
    seed: int = 0

    def __post_init__(self) -> None:
        if self.from_stage not in STAGE_INPUTS:
            raise ConfigurationError(
                f"--fine-tune-from {self.from_stage!r}: choose one of {', '.join(STAGE_INPUTS)} "
                "(conv5 trains the last stage only, the cheapest)"
            )
        if self.epochs < 1 or self.views < 1 or self.patience < 1:
            raise ConfigurationError("fine-tuning needs epochs >= 1, views >= 1 and patience >= 1")


@dataclass
class TuneRun:
    """One training of the top: its epochs, the best one, and what it cost."""

    history: list[dict[str, float]] = field(default_factory=list)  # per epoch: loss, accuracy, val_*
    best_epoch: int = 0  # 1-based; the weights kept are this epoch's
    seconds: float = 0.0
    frames_trained: int = 0  # views through the trained stages, forward and backward

    @property
    def frames_per_second(self) -> float:
        return self.frames_trained / self.seconds if self.seconds else 0.0


def preprocess(pixels: np.ndarray) -> np.ndarray:
    """uint8 RGB -> the ResNet50's input (caffe preprocessing, as inside the exported graph)."""
    import keras

    return keras.applications.resnet50.preprocess_input(pixels.astype(np.float32))


def copy_backbone(keras_model):
    """A copy with the same weights: fine-tuning never changes the frozen baseline's model."""
    import keras

    copy = keras.models.clone_model(keras_model)
    copy.set_weights(keras_model.get_weights())
    return copy


def frozen_activations(
    keras_model,
    pixels: np.ndarray,
    sha256s: list[str],
    *,
    from_stage: str,
    views: int,
    backbone_key: str,
    augmentation: Augmentation,
    seed: int,
    cache_dir: Path,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 16,
) -> np.ndarray:
    """float16 [views, N, h, w, c]: the frozen part's output for each frame and view, cached."""
    import keras

    boundary = keras_model.get_layer(STAGE_INPUTS[from_stage]).output
    frozen = keras.Model(keras_model.input, boundary)
    folder = cache_dir / "activations"
    folder.mkdir(parents=True, exist_ok=True)
    out = np.zeros((views, len(pixels), *boundary.shape[1:]), dtype=np.float16)
    todo: list[tuple[int, int, Path]] = []
    for view in range(views):
        for i, sha in enumerate(sha256s):
            path = folder / f"{_cache_key(sha, backbone_key, from_stage, augmentation, seed, view)}.npy"
            if path.is_file():
                out[view, i] = np.load(path)
            else:
                todo.append((view, i, path))
    done = len(sha256s) * views - len(todo)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        batch = np.stack(
            [
                augmented_view(
                    pixels[i], seed=_frame_seed(sha256s[i], seed), view=v, augmentation=augmentation
                )
                for v, i, _ in chunk
            ]
        )
        values = frozen.predict(preprocess(batch), batch_size=batch_size, verbose=0).astype(np.float16)
        for (view, i, path), value in zip(chunk, values, strict=True):
            out[view, i] = value
            staged = path.with_suffix(".tmp.npy")
            np.save(staged, value)
            staged.replace(path)
        done += len(chunk)
        if progress:
            progress(done, len(sha256s) * views)
    return out


def _frame_seed(sha256: str, seed: int) -> int:
    # The views of a frame follow its content, not its position in the listing.
    return int(sha256[:8], 16) ^ seed


def _cache_key(
    sha: str, backbone_key: str, stage: str, augmentation: Augmentation, seed: int, view: int
) -> str:
    import keras

    recipe = f"v{ACTIVATION_CACHE_VERSION}|{sha}|{backbone_key}|{stage}|{augmentation.key()}|{seed}|{view}|keras {keras.__version__}"
    return hashlib.sha256(recipe.encode()).hexdigest()


class TrainableTop:
    """The stages after the split, on the copy's own layers, plus a temporary head."""

    def __init__(self, backbone, from_stage: str, n_outputs: int, *, multilabel: bool, dropout: float):
        import keras

        boundary = STAGE_INPUTS[from_stage]
        names = [layer.name for layer in backbone.layers]
        top_layers = backbone.layers[names.index(boundary) + 1 :]
        inputs = keras.Input(backbone.get_layer(boundary).output.shape[1:])
        tensors: dict[str, Any] = {boundary: inputs}
        for layer in top_layers:
            # ResNet50 is a DAG (residual adds): feed each layer what fed it in the backbone.
            inbound = layer._inbound_nodes[0].input_tensors
            args = [tensors[tensor._keras_history.operation.name] for tensor in inbound]
            tensors[layer.name] = layer(args if len(args) > 1 else args[0])
        features = tensors[top_layers[-1].name]
        hidden = keras.layers.Dropout(dropout)(features)
        activation = "sigmoid" if multilabel else "softmax"
        # Zero-initialised: training starts from uniform answers (loss ln C), not from a random
        # head whose large first gradients shake the stages being tuned (measured, 300 synthetic
        # frames from a random network: first-epoch loss 1.38 instead of 2.86, validation
        # accuracy as good or better at every later epoch).
        outputs = keras.layers.Dense(
            n_outputs, activation=activation, kernel_initializer="zeros", name="fine_tune_head"
        )(hidden)
        self.layers = top_layers
        self.model = keras.Model(inputs, outputs)
        self.features = keras.Model(inputs, features)
        self.multilabel = multilabel
        self._initial = [layer.get_weights() for layer in top_layers]
        self._head = self.model.get_layer("fine_tune_head")

    def reset(self, seed: int) -> None:
        """Back to the backbone's weights and a fresh (seeded) temporary head."""
        import keras

        for layer, weights in zip(self.layers, self._initial, strict=True):
            layer.set_weights(weights)
        keras.utils.set_random_seed(seed)  # the dropout masks
        self._head.set_weights([np.zeros_like(values) for values in self._head.get_weights()])

    def recalibrate(self, activations: np.ndarray, *, chunk: int = 64, most: int = 512) -> None:
        """Set the trained stages' BatchNorm statistics to the frames' own (at most ``most`` of them).

        Keras updates a BatchNorm's moving statistics by 1 % a step: after the few hundred steps
        of a fine-tuning they still hold much of their starting values (0 and 1 for a random
        network), and inference, which normalises with them, then differs from training (measured
        on 300 synthetic frames, conv5 from a random network: validation accuracy 0.39 without,
        0.69 with, at the same epoch). So after each epoch the statistics are recomputed: chunk k
        of the frames enters with weight 1/k, the exact mean of the chunks' batch statistics.
        """
        batch_norms = [layer for layer in self.layers if layer.__class__.__name__ == "BatchNormalization"]
        momenta = [layer.momentum for layer in batch_norms]
        sample = activations[:most]
        try:
            for k, start in enumerate(range(0, len(sample), chunk), start=1):
                for layer in batch_norms:
                    layer.momentum = (k - 1) / k
                self.features(sample[start : start + chunk].astype(np.float32), training=True)
        finally:
            for layer, momentum in zip(batch_norms, momenta, strict=True):
                layer.momentum = momentum

    def weights(self) -> list[list[np.ndarray]]:
        return [layer.get_weights() for layer in self.layers]

    def set_weights(self, weights: list[list[np.ndarray]]) -> None:
        for layer, values in zip(self.layers, weights, strict=True):
            layer.set_weights(values)

    def pooled_features(self, activations: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """float32 [N, 2048]: the tuned backbone's features from the cached frozen activations."""
        return self.features.predict(activations.astype(np.float32), batch_size=batch_size, verbose=0)

    def fit(
        self,
        activations: np.ndarray,
        targets: np.ndarray,
        train_idx: np.ndarray,
        valid_idx: np.ndarray | None,
        settings: TuneSettings,
        *,
        epochs: int | None = None,
        report: Callable[[int, int, dict[str, float]], None] | None = None,
    ) -> TuneRun:
        """Train on one random view per frame per epoch; keep the best validation epoch's weights.

        ``activations``: float16 [views, N, ...]; ``targets``: int [N] (class) or uint8 [N, L]
        (multi-label). With ``valid_idx`` None, train ``epochs`` epochs and keep the last.
        """
        import keras

        self.reset(settings.seed)
        epochs = epochs or settings.epochs
        steps = epochs * int(np.ceil(len(train_idx) / settings.batch_size))
        schedule = keras.optimizers.schedules.CosineDecay(settings.learning_rate, max(steps, 1))
        loss = "binary_crossentropy" if self.multilabel else "sparse_categorical_crossentropy"
        self.model.compile(keras.optimizers.Adam(schedule), loss=loss, metrics=["accuracy"])
        weights = None if self.multilabel else _class_weights(targets[train_idx])
        rng = np.random.default_rng(settings.seed)
        run = TuneRun()
        # The validation score: accuracy first, loss to break ties. On the ~40 frames a fold holds
        # back, the loss alone is noisy and punishes confidence: with the zero-initialised head
        # epoch 1 (uniform answers, loss ~ln C) beat every later epoch of one fold on loss
        # while its accuracy rose (300 synthetic frames: that fold stopped at epoch 1).
        best_score, best_weights, since_best = (-np.inf, -np.inf), None, 0
        started = time.perf_counter()
        for epoch in range(1, epochs + 1):
            view_of = rng.integers(0, activations.shape[0], size=len(train_idx))
            order = rng.permutation(len(train_idx))
            x = activations[view_of[order], train_idx[order]].astype(np.float32)
            fitted = self.model.fit(
                x,
                targets[train_idx[order]],
                batch_size=settings.batch_size,
                epochs=1,
                verbose=0,
                class_weight=weights,
                shuffle=False,
            ).history
            self.recalibrate(activations[0, train_idx])
            record = {
                "epoch": epoch,
                "loss": float(fitted["loss"][0]),
                "accuracy": float(fitted["accuracy"][0]),
            }
            run.frames_trained += len(train_idx)
            if valid_idx is not None and len(valid_idx):
                val_loss, val_accuracy = self.model.evaluate(
                    activations[0, valid_idx].astype(np.float32), targets[valid_idx], verbose=0, batch_size=32
                )
                record |= {"val_loss": float(val_loss), "val_accuracy": float(val_accuracy)}
                score = (round(float(val_accuracy), 6), -float(val_loss))
                if score > best_score:
                    best_score, best_weights, since_best, run.best_epoch = score, self.weights(), 0, epoch
                else:
                    since_best += 1
            else:
                run.best_epoch = epoch
            run.history.append(record)
            if report:
                report(epoch, epochs, record)
            if valid_idx is not None and since_best >= settings.patience:
                break
        if best_weights is not None:
            self.set_weights(best_weights)
        run.seconds = time.perf_counter() - started
        return run


def _class_weights(y: np.ndarray) -> dict[int, float]:
    """Balanced weights: every class counts as much as the others, whatever its frame count."""
    classes, counts = np.unique(y, return_counts=True)
    return {int(c): float(len(y) / (len(classes) * n)) for c, n in zip(classes, counts, strict=True)}
