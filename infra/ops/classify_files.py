"""`camsort classify FILES... --model DIR`: a model on your own frames, before it is deployed.

Files and ``s3://bucket/key`` objects (or ``s3://bucket/prefix/``: every .jpg/.jpeg/.png under
it) go through ``functions.frames.on_demand.classify_images``: the function's loader, its limits,
the model session it uses and the decision rule of the manifest's task. Output: a table,
``--json`` (a list of answers) or ``--csv`` (one row per image, one column per label).
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from functions.env import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from functions.errors import BadInputError, StorageError
from functions.familiarity import is_unfamiliar
from functions.frames.manifest import UNFAMILIAR_LABEL
from functions.frames.outputs import label_text

BATCH = 16  # frames per inference: the function's batch size order


def _sources(sources: list[str], s3_client) -> Iterator[str]:
    from training.data.loading import IMAGE_SUFFIXES

    for source in sources:
        if source.startswith("s3://") and source.endswith("/"):
            from botocore.exceptions import BotoCoreError, ClientError

            bucket, _, prefix = source[5:].partition("/")
            try:
                pages = list(
                    s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                )
            except (ClientError, BotoCoreError) as exc:
                raise StorageError(
                    f"{source}: listing failed ({exc}); check the bucket, endpoint and credentials"
                ) from exc
            for page in pages:
                for obj in page.get("Contents", []):
                    if Path(obj["Key"]).suffix.lower() in IMAGE_SUFFIXES:
                        yield f"s3://{bucket}/{obj['Key']}"
        else:
            yield source


def _read(source: str, store, max_bytes: int) -> bytes | dict[str, Any]:
    """The bytes, or a rejected answer naming why they could not be read."""
    if source.startswith("s3://"):
        bucket, _, key = source[5:].partition("/")
        try:
            return store.get_frame(bucket, key, max_bytes=max_bytes).data
        except BadInputError as exc:
            return {"source": source, "status": "rejected", "reason": exc.reason, "detail": str(exc)}
        except StorageError as exc:
            return {"source": source, "status": "rejected", "reason": "unreadable", "detail": str(exc)}
    try:
        return Path(source).expanduser().read_bytes()
    except OSError as exc:
        detail = f"{source}: cannot read the file ({exc.strerror or exc}); check the path"
        return {"source": source, "status": "rejected", "reason": "unreadable", "detail": detail}


def classify_files(
    sources: list[str],
    model_uri: str,
    *,
    endpoint_url: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    s3_client=None,
) -> tuple[list[dict[str, Any]], Any]:
    """Answers for every source, in order, and the model's manifest."""
    from functions.frames.model import ModelSession
    from functions.frames.on_demand import classify_images
    from functions.stores.storage import FrameStore

    needs_s3 = model_uri.startswith("s3://") or any(s.startswith("s3://") for s in sources)
    if s3_client is None and needs_s3:
        import boto3

        # a fresh session: credentials from the environment as it is now
        s3_client = boto3.session.Session().client("s3", endpoint_url=endpoint_url)
    with tempfile.TemporaryDirectory(prefix="camsort-classify-") as cache_dir:
        model = ModelSession.open(model_uri, s3_client=s3_client, cache_dir=cache_dir)
    store = FrameStore(s3_client) if s3_client is not None else None
    answers: list[dict[str, Any]] = []
    pending: list[tuple[int, str, bytes]] = []

    def flush() -> None:
        results = classify_images(
            model, [(source, data) for _, source, data in pending], max_bytes=max_bytes, max_pixels=max_pixels
        )
        for (index, _, _), answer in zip(pending, results, strict=True):
            answers[index] = answer
        pending.clear()

    for source in _sources(sources, s3_client):
        data = _read(source, store, max_bytes)
        answers.append(data if isinstance(data, dict) else {})
        if not isinstance(data, dict):
            pending.append((len(answers) - 1, source, data))
            if len(pending) >= BATCH:
                flush()
    if pending:
        flush()
    for answer in answers:
        answer.setdefault("model_version", model.manifest.model_version)
    return answers, model.manifest


def render(answers: list[dict[str, Any]], manifest, fmt: str, console) -> None:
    if fmt == "json":
        console.file.write(json.dumps(answers, indent=2, sort_keys=True) + "\n")
        return
    if fmt == "csv":
        console.file.write(to_csv(answers, manifest.labels))
        return
    from rich.table import Table

    threshold = (manifest.familiarity or {}).get("threshold")
    title = f"model {manifest.model_version} ({manifest.task}; labels {', '.join(manifest.labels)})"
    columns = ["image", "status", "answer", "conf.", "probabilities / reason"]
    if threshold is not None:  # the model describes its training frames: how far each frame is
        title += f"; unfamiliar above distance {threshold:.3f}"
        columns.insert(4, "distance")
    table = Table(title=title)
    for column in columns:
        table.add_column(
            column, overflow="fold", justify="left" if column in ("image", "answer") else "right"
        )
    for answer in answers:
        if answer["status"] == "ok":
            probabilities = ", ".join(f"{k} {v:.3f}" for k, v in answer["probabilities"].items())
            text = label_text(answer)
            cells = [answer["source"], "ok", f"[bold red]{text}[/]" if is_unfamiliar(answer) else text]
            cells.append(f"{answer['confidence']:.3f}")
            if threshold is not None:
                cells.append(f"{answer['distance']:.3f}")
            table.add_row(*cells, probabilities)
        else:
            padding = [""] * (len(columns) - 3)
            table.add_row(answer["source"], f"[yellow]{answer['status']}[/]", *padding, answer["detail"])
    console.print(table)


def to_csv(answers: list[dict[str, Any]], labels: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["source", "status", "answer", "confidence", *labels, "reason", "detail"])
    for answer in answers:
        probabilities = answer.get("probabilities", {})
        writer.writerow(
            [
                answer["source"],
                answer["status"],
                (
                    UNFAMILIAR_LABEL
                    if answer.get("unfamiliar")
                    else ";".join(answer["labels"])
                    if "labels" in answer
                    else answer.get("label", "")
                ),
                f"{answer['confidence']:.6f}" if "confidence" in answer else "",
                *(f"{probabilities[label]:.6f}" if label in probabilities else "" for label in labels),
                answer.get("reason", ""),
                answer.get("detail", ""),
            ]
        )
    return buffer.getvalue()
