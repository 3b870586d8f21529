"""(a) The reference notebook's way, kept as the baseline the bench compares against.

This is how the DataSphere video-recognition tutorial this project grew from classifies a
frame: Keras' ``load_img`` decodes the whole JPEG and resizes it to 224x224 (nearest
neighbour, Keras' default), ``preprocess_input`` runs in numpy, ``model.predict`` runs
the Keras ResNet50 on one frame at a time, and a LightGBM ``Booster`` trained on the
Keras features predicts the class. It is deliberately *not* optimised: it is the
baseline, and it reuses nothing from ``functions/`` on the inference side.

Only the Keras model construction comes from ``export.backbone`` so that ``--weights
none`` means the very same seeded random initialisation as the exported model.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from functions.errors import ModelArtifactError

BOOSTER_FILENAME = "booster.txt"
LABELS_FILENAME = "labels.json"
IMAGE_SIZE = 224
# Same round count as a typical notebook cell; the tree count hardly moves the timing
# (the trees cost well under a millisecond next to the ResNet50).
NUM_BOOST_ROUND = 100


def decode_like_notebook(data: bytes) -> np.ndarray:
    """bytes -> float32 [224, 224, 3] RGB, exactly as ``keras.utils.load_img(..., target_size)``."""
    from keras.utils import img_to_array, load_img

    image = load_img(io.BytesIO(data), target_size=(IMAGE_SIZE, IMAGE_SIZE))
    return img_to_array(image)


def keras_predict_features(model, batch: np.ndarray) -> np.ndarray:
    """preprocess_input + model.predict on a float32 [N, 224, 224, 3] RGB batch -> [N, 2048]."""
    from keras.applications.resnet50 import preprocess_input

    # preprocess_input rewrites its argument in place; the caller's pixels stay untouched.
    return np.asarray(model.predict(preprocess_input(np.array(batch, dtype=np.float32)), verbose=0))


def train_booster(features: np.ndarray, label_ids: np.ndarray, n_labels: int, *, seed: int = 0):
    """The notebook's classifier: a multiclass LightGBM Booster on the Keras features."""
    import lightgbm

    params = {
        "objective": "multiclass",
        "num_class": n_labels,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 1,
        "verbose": -1,
        # A small training set: let leaves form at all.
        "min_data_in_leaf": 5,
    }
    dataset = lightgbm.Dataset(np.asarray(features, dtype=np.float32), label=np.asarray(label_ids))
    return lightgbm.train(params, dataset, num_boost_round=NUM_BOOST_ROUND)


def save_reference(out_dir: Path, booster, labels: list[str]) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(out_dir / BOOSTER_FILENAME))
    (out_dir / LABELS_FILENAME).write_text(json.dumps(labels) + "\n")
    return out_dir


@dataclass
class ReferenceClassifier:
    """Keras ResNet50 + LightGBM Booster, used the notebook way."""

    model: Any  # keras.Model
    booster: Any  # lightgbm.Booster
    labels: list[str]

    @classmethod
    def load(cls, reference_dir: Path, *, weights: str, seed: int = 0) -> ReferenceClassifier:
        import lightgbm

        from export.backbone import build_keras_backbone

        reference_dir = Path(reference_dir)
        booster_path = reference_dir / BOOSTER_FILENAME
        labels_path = reference_dir / LABELS_FILENAME
        for path in (booster_path, labels_path):
            if not path.is_file():
                raise ModelArtifactError(
                    f"{path}: missing; run `camsort bench` to train the reference booster"
                )
        booster = lightgbm.Booster(model_file=str(booster_path))
        labels = json.loads(labels_path.read_text())
        return cls(model=build_keras_backbone(weights, seed=seed), booster=booster, labels=labels)

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """float32 [N, 224, 224, 3] from ``decode_like_notebook`` -> probabilities [N, C]."""
        features = keras_predict_features(self.model, pixels)
        return np.asarray(self.booster.predict(features), dtype=np.float64).reshape(
            len(pixels), len(self.labels)
        )

    def label_of(self, probabilities_row: np.ndarray) -> str:
        return self.labels[int(np.argmax(probabilities_row))]
