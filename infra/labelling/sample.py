"""`camsort sample SOURCE --per-camera N`: the frames worth labelling, written as a labelling set.

Per camera: ``--candidates`` frames spread over the camera's time span (time-balanced), then
the N most different of those (farthest-point sampling in the live model's ``features``
space, or on dhash bits when no model is given), or with ``--uncertain`` the N the live model
was least sure of (smallest top-1 minus top-2 margin). Every frame is decoded by the function's
own loader and scored by the function's own :class:`functions.frames.model.ModelSession`.

Where frames come from is a :class:`FrameSource`: today the whole frames of a folder or an S3
prefix (``<root>/<camera>/<name>``). Regions do not exist yet; when they do, a crop source
plugs in here (its ``frames()`` yields one ref per (frame, region) with ``region`` set, its
``pixels()`` crops with the shared crop function) and nothing after it changes: the set's
rows carry ``region`` already (``default`` = the whole frame).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from functions.errors import BadInputError, ConfigurationError, StorageError, UnexpectedKeyError
from functions.frames.dhash import dhash
from functions.frames.image_loader import load_image
from functions.frames.keys import format_timestamp, parse_capture_time
from infra.labelling import selection
from infra.labelling.label_set import THUMBS_DIR, refuse_labelled, write_set
from infra.ops.compare import thumbnail_jpeg
from training.data.label_files import LABEL_PAGE_PORT

THUMBNAIL_SIZE = 256
DEFAULT_CANDIDATES = 100  # per camera, as Frigate's wizard: 100 moments, then the most different
WHOLE_FRAME = "default"
_BATCH = 16


@dataclass(frozen=True)
class FrameRef:
    key: str  # an absolute local path or s3://bucket/key: what labels.jsonl's "path" holds
    camera: str
    captured_at: datetime
    fetch: Callable[[], bytes]
    region: str = WHOLE_FRAME


class FrameSource(Protocol):
    def frames(self) -> list[FrameRef]: ...

    def pixels(self, frame: FrameRef, data: bytes) -> np.ndarray: ...


class WholeFrames:
    """Frames under a folder or an S3 prefix, laid out ``<root>/<camera>/<name>.<jpg|jpeg|png>``.

    Capture time: the name's stem when it is one (``20261122T120000000Z``, ISO, epoch ms: the
    function's own parser), else the file's mtime / the object's LastModified.
    """

    def __init__(self, source: str, *, s3_client: Any = None):
        self.source = source
        self.s3 = s3_client

    def frames(self) -> list[FrameRef]:
        refs = self._s3_frames() if self.source.startswith("s3://") else self._local_frames()
        if not refs:
            raise ConfigurationError(
                f"{self.source}: no .jpg/.jpeg/.png frames under <camera>/ folders; lay frames out as "
                f"{self.source.rstrip('/')}/<camera>/<name>.jpg"
            )
        return refs

    def pixels(self, frame: FrameRef, data: bytes) -> np.ndarray:
        return load_image(data, source=frame.key)

    def _local_frames(self) -> list[FrameRef]:
        root = Path(self.source).expanduser()
        if not root.is_dir():
            raise ConfigurationError(
                f"{self.source}: no such folder; pass a folder of <camera>/ folders or s3://bucket/prefix/"
            )
        refs = []
        for path in sorted(root.resolve().rglob("*")):
            parts = path.relative_to(root.resolve()).parts
            if path.is_file() and _is_frame(parts):
                modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                refs.append(
                    FrameRef(str(path), parts[0], _capture_time(path.name, modified), path.read_bytes)
                )
        return refs

    def _s3_frames(self) -> list[FrameRef]:
        from training.data.loading import parse_s3_uri, s3_fetcher

        if self.s3 is None:
            raise ConfigurationError(f"{self.source}: an s3:// source needs an S3 client")
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, prefix = parse_s3_uri(self.source)
        refs = []
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    parts = tuple(obj["Key"][len(prefix) :].split("/"))
                    if _is_frame(parts):
                        captured = _capture_time(parts[-1], obj["LastModified"].astimezone(UTC))
                        fetch = s3_fetcher(self.s3, bucket, obj["Key"])
                        refs.append(FrameRef(f"s3://{bucket}/{obj['Key']}", parts[0], captured, fetch))
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(
                f"{self.source}: cannot list the frames ({exc}); check the bucket, the endpoint and the credentials"
            ) from exc
        return refs


def _is_frame(parts: tuple[str, ...]) -> bool:
    return (
        len(parts) >= 2
        and not any(p.startswith((".", "_")) for p in parts)
        and parts[-1].lower().endswith((".jpg", ".jpeg", ".png"))
    )


def _capture_time(name: str, fallback: datetime) -> datetime:
    try:
        return parse_capture_time(name.rsplit(".", 1)[0], name)
    except UnexpectedKeyError:
        return fallback


@dataclass(frozen=True)
class SampleOptions:
    per_camera: int
    candidates: int = DEFAULT_CANDIDATES
    uncertain: bool = False
    labels: tuple[str, ...] = ()  # the choices when there is no model (a model's labels otherwise)


@dataclass
class Scored:
    ref: FrameRef
    pixels: np.ndarray
    data: bytes
    probabilities: np.ndarray | None = None
    features: np.ndarray | None = None


def sample(
    source: FrameSource, options: SampleOptions, *, model: Any = None, out: Path, info: dict[str, Any]
) -> list[dict[str, Any]]:
    """Pick the frames and write the set into ``out``; returns the manifest rows."""
    if options.uncertain and model is None:
        raise ConfigurationError("--uncertain ranks by the live model's margin: give the model with --model")
    refuse_labelled(out)
    labels = list(model.labels) if model is not None else list(options.labels)
    if len(labels) < 2:
        raise ConfigurationError("no model to take the labels from: name them with --labels bus,car,empty")
    per_camera: dict[str, list[FrameRef]] = defaultdict(list)
    for ref in source.frames():
        per_camera[ref.camera].append(ref)
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    for camera in sorted(per_camera):
        refs = per_camera[camera]
        candidates = selection.time_balanced(refs, [r.captured_at for r in refs], options.candidates)
        scored = _score(source, candidates, model, skipped)
        for item in _choose(scored, options):
            rows.append(_row(len(rows), item, labels, out))
    how = "uncertain" if options.uncertain else ("diverse-features" if model is not None else "diverse-dhash")
    write_set(out, labels=labels, frames=rows, info={**info, "selection": how, "unreadable": skipped})
    return rows


def _score(source: FrameSource, refs: list[FrameRef], model: Any, skipped: list[str]) -> list[Scored]:
    scored = []
    for ref in refs:
        try:
            data = ref.fetch()
            scored.append(Scored(ref, source.pixels(ref, data), data))
        except BadInputError as exc:  # a bad frame is reported in set.json, never fatal
            skipped.append(f"{ref.key}: {exc.reason}")
    if model is not None:
        for start in range(0, len(scored), _BATCH):
            batch = scored[start : start + _BATCH]
            probabilities, features = model.predict(np.stack([s.pixels for s in batch]))
            for item, p, f in zip(batch, probabilities, features, strict=True):
                item.probabilities, item.features = p, f
    return scored


def _choose(scored: list[Scored], options: SampleOptions) -> list[Scored]:
    if not scored:
        return []
    if options.uncertain:
        picked = selection.most_uncertain(_stack([s.probabilities for s in scored]), options.per_camera)
    elif scored[0].features is not None:
        picked = selection.farthest_point(_stack([s.features for s in scored]), options.per_camera)
    else:
        bits = np.stack([dhash(s.pixels) for s in scored]).astype(np.float64)
        picked = selection.farthest_point(bits, options.per_camera, metric="hamming")
    chosen = [scored[i] for i in picked]
    # the most uncertain first; a diverse pick reads best in time order
    return chosen if options.uncertain else sorted(chosen, key=lambda s: s.ref.captured_at)


def _stack(values: list[np.ndarray | None]) -> np.ndarray:
    present = [v for v in values if v is not None]
    if len(present) != len(values):
        raise ValueError("every candidate must be scored by the model before choosing by its outputs")
    return np.stack(present)


def _row(index: int, item: Scored, labels: list[str], out: Path) -> dict[str, Any]:
    frame_id = f"f{index + 1:04d}"
    thumbnail = Path(THUMBS_DIR) / f"{frame_id}.jpg"
    (out / THUMBS_DIR).mkdir(parents=True, exist_ok=True)
    (out / thumbnail).write_bytes(thumbnail_jpeg(item.data, THUMBNAIL_SIZE))
    row: dict[str, Any] = {
        "id": frame_id,
        "key": item.ref.key,
        "camera": item.ref.camera,
        "region": item.ref.region,
        "captured_at": format_timestamp(item.ref.captured_at),
        "thumbnail": str(thumbnail),
        "guess": None,
        "confidence": None,
        "margin": None,
    }
    if item.probabilities is not None:
        p = item.probabilities
        row |= {
            "guess": labels[int(np.argmax(p))],
            "confidence": round(float(np.max(p)), 4),
            "margin": round(float(selection.margins(p[None, :])[0]), 4),
            "probabilities": {label: round(float(v), 4) for label, v in zip(labels, p, strict=True)},
        }
    return row


# `camsort label`'s default port: the local image URLs of Label Studio tasks point there.
DEFAULT_LABEL_PORT = LABEL_PAGE_PORT


def sample_command(
    source: str,
    out: Path,
    options: SampleOptions,
    *,
    model_uri: str | None,
    output_format: str,
    s3_client: Any,
    label_port: int = DEFAULT_LABEL_PORT,
    console: Any = None,
) -> list[dict[str, Any]]:
    """`camsort sample`: open the live model (if any), pick the frames, write the set (and Label Studio tasks)."""
    import tempfile

    from rich.console import Console

    from functions.frames.model import ModelSession

    console = console or Console()
    model = None
    if model_uri:
        with tempfile.TemporaryDirectory(prefix="camsort-sample-") as cache_dir:
            model = ModelSession.open(model_uri, s3_client=s3_client, cache_dir=cache_dir)
    info: dict[str, Any] = {
        "source": source,
        "model_uri": model_uri,
        "model_version": model.manifest.model_version if model is not None else None,
        "per_camera": options.per_camera,
        "candidates_per_camera": options.candidates,
        "created_at": format_timestamp(datetime.now(UTC)),
    }
    rows = sample(WholeFrames(source, s3_client=s3_client), options, model=model, out=Path(out), info=info)
    cameras = len({row["camera"] for row in rows})
    console.print(
        f"Wrote {len(rows)} frame(s) from {cameras} camera(s) into {out} (manifest.jsonl, thumbs/)."
    )
    if output_format == "label-studio":
        from infra.labelling.label_studio import write_tasks

        labels = list(model.labels) if model is not None else list(options.labels)
        version = model.manifest.model_version if model is not None else None
        path = write_tasks(
            Path(out),
            rows,
            labels,
            s3_client=s3_client,
            local_base_url=f"http://127.0.0.1:{label_port}",
            model_version=version,
        )
        console.print(f"Label Studio tasks: {path} (labelling config beside it).")
        if any(not row["key"].startswith("s3://") for row in rows):
            console.print(
                f"Local frames are served to Label Studio by: camsort label {out} --port {label_port}"
            )
    else:
        console.print(f"Label them: camsort label {out}")
    return rows


def s3_client_for(source: str, model_uri: str | None, endpoint_url: str | None) -> Any:
    """An S3 client when anything is on S3 (presigned Label Studio URLs need one too), else None."""
    if not (source.startswith("s3://") or (model_uri or "").startswith("s3://")):
        return None
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url)
