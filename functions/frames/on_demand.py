"""Classify images outside the event path: the same loader, model call and decision rule.

``camsort classify`` and the HTTP endpoint (``functions.http_api``) both come here, so an
answer on demand is exactly the answer the S3 event path would write: ``load_image`` with the
deployment's limits, one batched ``ModelSession.predict``, ``ModelSession.decide`` (the manifest's task, then familiarity),
``functions.frames.outputs.answer_fields`` for the shape. Bad input is an answer too (``status:
rejected`` with the loader's reason code and message), never an exception.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from functions.errors import BadInputError
from functions.frames.image_loader import load_image
from functions.frames.outputs import answer_fields


def classify_images(
    model, images: list[tuple[str, bytes]], *, max_bytes: int, max_pixels: int
) -> list[dict[str, Any]]:
    """One answer per ``(source, data)``, in order: ``ok`` (with the answer fields) or ``rejected``."""
    answers: list[dict[str, Any] | None] = [None] * len(images)
    loaded, positions = [], []
    for index, (source, data) in enumerate(images):
        try:
            loaded.append(load_image(data, source=source, max_bytes=max_bytes, max_pixels=max_pixels))
            positions.append(index)
        except BadInputError as exc:
            answers[index] = rejected(source, exc)
    if loaded:
        decisions = model.decide(*model.predict(np.stack(loaded)))
        for index, decision in zip(positions, decisions, strict=True):
            answers[index] = {"source": images[index][0], "status": "ok", **answer_fields(decision)}
    for answer in answers:
        assert answer is not None
        answer.update(model_version=model.manifest.model_version, model_sha256=model.sha256)
    return answers  # type: ignore[return-value]


def rejected(source: str, error: BadInputError) -> dict[str, Any]:
    return {"source": source, "status": "rejected", "reason": error.reason, "detail": str(error)}
