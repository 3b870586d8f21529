"""The worst mistakes of a cross-validation: confidently wrong out-of-fold answers, with thumbnails."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from training.fit.crossval import CVResult


@dataclass(frozen=True)
class WorstFrame:
    """A confidently wrong out-of-fold answer, with a small JPEG of the frame as seen by the model."""

    uri: str
    true_label: str
    predicted_label: str
    confidence: float
    thumbnail_jpeg: bytes
    # Where the label can be fixed: the frame in its labelling set's page (`camsort label SET`).
    label_link: str = ""
    label_set: str = ""


class FrameSource(Protocol):
    """Frame i's pixels (uint8 [224, 224, 3]) on demand, e.g. downloaded when asked."""

    def __getitem__(self, i: int) -> np.ndarray: ...


def select_worst_frames(
    cv: CVResult,
    uris: list[str],
    pixels: np.ndarray | FrameSource,
    *,
    limit: int = 12,
    thumbnail_size: int = 112,
) -> list[WorstFrame]:
    """The ``limit`` wrong OOF answers with the highest confidence (the most misleading ones).

    ``pixels``: every frame's (uint8 [N, 224, 224, 3]), or a ``FrameSource`` (only the chosen
    frames are asked for: training from feature shards downloads just those)."""
    from PIL import Image

    predicted = cv.oof_probabilities.argmax(axis=1)
    confidence = cv.oof_probabilities.max(axis=1)
    wrong = np.flatnonzero(predicted != cv.y)
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:limit]
    frames = []
    for i in order:
        image = Image.fromarray(np.asarray(pixels[i], dtype=np.uint8)).resize(
            (thumbnail_size, thumbnail_size), Image.Resampling.BILINEAR
        )
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        frames.append(
            WorstFrame(
                uri=uris[i],
                true_label=cv.labels[int(cv.y[i])],
                predicted_label=cv.labels[int(predicted[i])],
                confidence=float(confidence[i]),
                thumbnail_jpeg=buffer.getvalue(),
            )
        )
    return frames
