"""The Keras side of fine-tuning: split the ResNet50 at a stage, train the top.

The frozen part (the input up to the end of the stage before ``from_stage``) is run once per
frame and augmented view and cached on disk (training/fit/frozen_part.py); each epoch then
runs only the stages being trained. The trained layers are the ResNet50's own layers (of a
copy): after training, the copy *is* the fine-tuned backbone, exported like any other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from functions.cpu import cpu_flags
from functions.errors import ConfigurationError
from training.fit.stopping import best_epoch, should_stop

# The stage to train from -> the layer whose output feeds it (Keras ResNet50's layer names).
STAGE_INPUTS = {
    "conv5": "conv4_block6_out",
    "conv4": "conv3_block4_out",
    "conv3": "conv2_block3_out",
    "conv2": "pool1_pool",
}
COMPUTE_CHOICES = ("auto", "float32", "mixed_bfloat16")
# x86 flags of CPUs with bfloat16 arithmetic oneDNN uses (AVX-512 BF16 dot products, AMX tiles).
BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_has_bfloat16(flags: frozenset[str] | None = None) -> bool:
    return bool(BFLOAT16_FLAGS & (cpu_flags() if flags is None else flags))


@dataclass(frozen=True)
class TuneSettings:
    from_stage: str = "conv5"
    epochs: int = 20  # at most: early stopping ends sooner
    patience: int = 4  # epochs without a better validation score before stopping
    # Less noisy stopping (training.fit.stopping): no stop before this many epochs, and an epoch's
    # validation score is the mean over it and the epochs before it (a trailing window).
    min_epochs: int = 8
    smoothing: int = 3
    views: int = 4  # the frame + 3 augmented views; each epoch trains on one view per frame
    batch_size: int = 16
    learning_rate: float = 1e-3  # Adam, cosine decay to 0 over the planned steps
    dropout: float = 0.5
    # The BatchNorm statistics each epoch's validation reads are recomputed from this many of the
    # fold's training frames (a seeded sample); what ships is recomputed from all of them.
    recalibration_frames: int = 64
    validation_fraction: float = 0.2  # of the training frames' near-duplicate groups
    seed: int = 0
    # The trained stages' arithmetic: "auto" = bfloat16 (mixed: float32 weights) where the CPU
    # has bfloat16 instructions (AVX-512 BF16 / AMX), else float32. The evaluation's features and
    # the BatchNorm statistics that ship are always computed in float32 (TrainableTop).
    compute: str = "auto"

    def __post_init__(self) -> None:
        if self.from_stage not in STAGE_INPUTS:
            raise ConfigurationError(
                f"--fine-tune-from {self.from_stage!r}: choose one of {', '.join(STAGE_INPUTS)} "
                "(conv5 trains the last stage only, the cheapest)"
            )
        if min(self.epochs, self.views, self.patience, self.min_epochs, self.smoothing) < 1:
            raise ConfigurationError(
                "fine-tuning needs epochs, views, patience, min_epochs and smoothing >= 1"
            )
        if self.compute not in COMPUTE_CHOICES:
            raise ConfigurationError(
                f"fine-tuning compute {self.compute!r}: choose one of {', '.join(COMPUTE_CHOICES)}"
            )

    def compute_dtype(self) -> str:
        """The Keras dtype policy the trained stages run under."""
        if self.compute == "auto":
            return "mixed_bfloat16" if cpu_has_bfloat16() else "float32"
        return self.compute


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


def copy_backbone(keras_model):
    """A copy with the same weights: fine-tuning never changes the frozen baseline's model."""
    import keras

    copy = keras.models.clone_model(keras_model)
    copy.set_weights(keras_model.get_weights())
    return copy


class TrainableTop:
    """The stages after the split, on the copy's own layers, plus a temporary head.

    ``compute="mixed_bfloat16"``: training runs on a twin of those layers under Keras' mixed
    bfloat16 policy (float32 weights, bfloat16 arithmetic: ~4x the float32 rate on this CPU's
    AMX/AVX-512 BF16, measured on a 3x3 convolution), and every run ends by copying the twin's
    weights into the copy's float32 layers and recomputing their BatchNorm statistics in float32.
    So what is evaluated (``pooled_features``) and what ships is the float32 network.

    The training model is compiled once: each run resets the optimizer's state and the cosine
    schedule's length instead (a compile retraces the training step: ~20 s a run, measured).
    """

    def __init__(
        self,
        backbone,
        from_stage: str,
        n_outputs: int,
        *,
        multilabel: bool,
        dropout: float,
        compute: str = "float32",
    ):
        import keras

        boundary = STAGE_INPUTS[from_stage]
        names = [layer.name for layer in backbone.layers]
        top_layers = backbone.layers[names.index(boundary) + 1 :]
        inputs = keras.Input(backbone.get_layer(boundary).output.shape[1:])
        features = _wire(top_layers, boundary, inputs)
        self.layers = top_layers
        self.features = keras.Model(inputs, features)
        if compute == "float32":
            self.trained, train_inputs, train_features = top_layers, inputs, features
        else:
            self.trained = [
                layer.__class__.from_config({**layer.get_config(), "dtype": compute}) for layer in top_layers
            ]
            train_inputs = keras.Input(backbone.get_layer(boundary).output.shape[1:])
            train_features = _wire(self.trained, boundary, train_inputs, like=top_layers)
            for twin, layer in zip(self.trained, top_layers, strict=True):
                twin.set_weights(layer.get_weights())
        hidden = keras.layers.Dropout(dropout)(train_features)
        activation = "sigmoid" if multilabel else "softmax"
        # Zero-initialised: training starts from uniform answers (loss ln C), not from a random
        # head whose large first gradients shake the stages being tuned (measured, 300 synthetic
        # frames from a random network: first-epoch loss 1.38 instead of 2.86, validation
        # accuracy as good or better at every later epoch). float32: the probabilities and the loss.
        outputs = keras.layers.Dense(
            n_outputs,
            activation=activation,
            kernel_initializer="zeros",
            name="fine_tune_head",
            dtype="float32",
        )(hidden)
        self.model = keras.Model(train_inputs, outputs)
        self._train_features = (
            self.features if compute == "float32" else keras.Model(train_inputs, train_features)
        )
        self.multilabel = multilabel
        self.compute = compute
        self._initial = [layer.get_weights() for layer in top_layers]
        self._head = self.model.get_layer("fine_tune_head")
        self._schedule: Any = None  # _restartable_cosine(), once compiled

    def reset(self, seed: int) -> None:
        """Back to the backbone's weights and a fresh (seeded) temporary head."""
        import keras

        for layer, weights in zip(self.trained, self._initial, strict=True):
            layer.set_weights(weights)
        keras.utils.set_random_seed(seed)  # the dropout masks
        self._head.set_weights([np.zeros_like(values) for values in self._head.get_weights()])

    def recalibrate(
        self, activations: np.ndarray, *, chunk: int = 64, most: int = 512, float32: bool = False
    ) -> None:
        """Set the trained stages' BatchNorm statistics to the frames' own (at most ``most`` of them).

        Keras updates a BatchNorm's moving statistics by 1 % a step: after the few hundred steps
        of a fine-tuning they still hold much of their starting values (0 and 1 for a random
        network), and inference, which normalises with them, then differs from training (measured
        on 300 synthetic frames, conv5 from a random network: validation accuracy 0.39 without,
        0.69 with, at the same epoch). So after each epoch the statistics are recomputed: chunk k
        of the frames enters with weight 1/k, the exact mean of the chunks' batch statistics.
        ``float32``: the float32 layers' statistics (else those of the layers being trained).
        """
        layers, network = (self.layers, self.features) if float32 else (self.trained, self._train_features)
        batch_norms = [layer for layer in layers if layer.__class__.__name__ == "BatchNormalization"]
        momenta = [layer.momentum for layer in batch_norms]
        sample = activations[:most]
        try:
            for k, start in enumerate(range(0, len(sample), chunk), start=1):
                for layer in batch_norms:
                    layer.momentum = (k - 1) / k
                network(sample[start : start + chunk].astype(np.float32), training=True)
        finally:
            for layer, momentum in zip(batch_norms, momenta, strict=True):
                layer.momentum = momentum

    def weights(self) -> list[list[np.ndarray]]:
        return [layer.get_weights() for layer in self.trained]

    def set_weights(self, weights: list[list[np.ndarray]]) -> None:
        for layer, values in zip(self.trained, weights, strict=True):
            layer.set_weights(values)

    def pooled_features(self, activations: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """float32 [N, 2048]: the tuned backbone's features from the cached frozen activations."""
        return self.features.predict(activations.astype(np.float32), batch_size=batch_size, verbose=0)

    def _compiled(self, settings: TuneSettings, steps: int) -> None:
        """Compile once; later runs restart the optimizer and the schedule (same traced step)."""
        import keras

        if self._schedule is None:
            self._schedule = _restartable_cosine()
            loss = "binary_crossentropy" if self.multilabel else "sparse_categorical_crossentropy"
            self.model.compile(keras.optimizers.Adam(self._schedule), loss=loss, metrics=["accuracy"])
        else:
            for variable in self.model.optimizer.variables:
                variable.assign(np.zeros(variable.shape, dtype=variable.dtype))
        self._schedule.restart(settings.learning_rate, max(steps, 1))

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
        (multi-label). With ``valid_idx`` None, train ``epochs`` epochs and keep the last. The
        float32 layers end with the kept weights and their own BatchNorm statistics.
        """
        self.reset(settings.seed)
        epochs = epochs or settings.epochs
        self._compiled(settings, epochs * int(np.ceil(len(train_idx) / settings.batch_size)))
        weights = None if self.multilabel else _class_weights(targets[train_idx])
        rng = np.random.default_rng(settings.seed)
        run = TuneRun()
        # The validation score: accuracy first, loss to break ties. On the ~40 frames a fold holds
        # back, the loss alone is noisy and punishes confidence: with the zero-initialised head
        # epoch 1 (uniform answers, loss ~ln C) beat every later epoch of one fold on loss
        # while its accuracy rose (300 synthetic frames: that fold stopped at epoch 1). Both are
        # smoothed over settings.smoothing epochs (training.fit.stopping).
        best_weights = None
        validating = valid_idx is not None and len(valid_idx) > 0
        # The validation's statistics: a seeded sample (its own generator: the epochs' draws stay
        # as they were), the same every epoch so that the epochs' scores compare.
        scored_on = np.sort(
            np.random.default_rng(settings.seed + 1).choice(
                train_idx, size=min(settings.recalibration_frames, len(train_idx)), replace=False
            )
        )
        started = time.perf_counter()
        for epoch in range(1, epochs + 1):
            record = {
                "epoch": epoch,
                **self._train_epoch(activations, targets, train_idx, settings, weights, rng),
            }
            run.frames_trained += len(train_idx)
            if validating:
                # Only inference reads the moving statistics (training normalises by each batch's
                # own): recomputed for each epoch's validation from a fixed sample of the training
                # frames, and for what the run keeps from all of them, once, at its end (_settle).
                # Measured, the demo's final run: 53 s with a recalibration every epoch.
                self.recalibrate(activations[0, scored_on])
                val_loss, val_accuracy = self.model.evaluate(
                    activations[0, valid_idx].astype(np.float32), targets[valid_idx], verbose=0, batch_size=32
                )
                record |= {"val_loss": float(val_loss), "val_accuracy": float(val_accuracy)}
                run.history.append(record)
                if best_epoch(run.history, settings.smoothing) == epoch:
                    best_weights, run.best_epoch = self.weights(), epoch
            else:
                run.history.append(record)
                run.best_epoch = epoch
            if report:
                report(epoch, epochs, record)
            stop = should_stop(
                run.best_epoch, epoch, patience=settings.patience, min_epochs=settings.min_epochs
            )
            if validating and stop:
                break
        if best_weights is not None:
            self.set_weights(best_weights)
        self._settle(activations[0, train_idx])
        run.seconds = time.perf_counter() - started
        return run

    def _train_epoch(
        self, activations: np.ndarray, targets: np.ndarray, train_idx: np.ndarray, settings: TuneSettings,
        weights: dict[int, float] | None, rng: np.random.Generator,
    ) -> dict[str, float]:  # fmt: skip
        """One epoch on one random view per frame, in a random order: its loss and accuracy."""
        view_of = rng.integers(0, activations.shape[0], size=len(train_idx))
        order = rng.permutation(len(train_idx))
        fitted = self.model.fit(
            activations[view_of[order], train_idx[order]].astype(np.float32),
            targets[train_idx[order]],
            batch_size=settings.batch_size,
            epochs=1,
            verbose=0,
            class_weight=weights,
            shuffle=False,
        ).history
        return {"loss": float(fitted["loss"][0]), "accuracy": float(fitted["accuracy"][0])}

    def _settle(self, frames: np.ndarray) -> None:
        """The float32 layers end with the kept weights (the bfloat16 twin's, copied) and their
        own BatchNorm statistics, computed in float32 from all the run's training frames."""
        if self.trained is not self.layers:
            for layer, twin in zip(self.layers, self.trained, strict=True):
                layer.set_weights(twin.get_weights())
        self.recalibrate(frames, float32=True)


def _wire(layers: list[Any], boundary: str, inputs, like: list[Any] | None = None):
    """Call ``layers`` on ``inputs`` in the backbone's DAG (``like``: the layers whose connections
    to follow, when ``layers`` are their twins); returns the last layer's output."""
    tensors: dict[str, Any] = {boundary: inputs}
    for layer, original in zip(layers, like or layers, strict=True):
        # ResNet50 is a DAG (residual adds): feed each layer what fed it in the backbone.
        inbound = original._inbound_nodes[0].input_tensors
        args = [tensors[tensor._keras_history.operation.name] for tensor in inbound]
        tensors[original.name] = layer(args if len(args) > 1 else args[0])
    return tensors[(like or layers)[-1].name]


def _restartable_cosine() -> Any:
    """Keras' CosineDecay (alpha 0) whose rate and length are variables, restarted for each run
    without recompiling: ``rate * (1 + cos(pi * min(step, steps) / steps)) / 2``."""
    import keras
    from keras import ops

    class RestartableCosine(keras.optimizers.schedules.LearningRateSchedule):
        def __init__(self) -> None:
            self.rate = keras.Variable(1e-3, trainable=False, dtype="float32", name="cosine_rate")
            self.steps = keras.Variable(1.0, trainable=False, dtype="float32", name="cosine_steps")

        def restart(self, rate: float, steps: int) -> None:
            self.rate.assign(rate)
            self.steps.assign(float(steps))

        def __call__(self, step):
            done = ops.minimum(ops.cast(step, "float32"), self.steps) / self.steps
            return self.rate * 0.5 * (1.0 + ops.cos(np.pi * done))

        def get_config(self) -> dict[str, Any]:
            return {}

    return RestartableCosine()


def _class_weights(y: np.ndarray) -> dict[int, float]:
    """Balanced weights: every class counts as much as the others, whatever its frame count."""
    classes, counts = np.unique(y, return_counts=True)
    return {int(c): float(len(y) / (len(classes) * n)) for c, n in zip(classes, counts, strict=True)}
