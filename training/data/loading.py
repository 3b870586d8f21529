"""Listing and loading training frames from a local folder or an S3 prefix.

    root/
      bus/  a.jpg  b.PNG  nested/c.jpeg
      car/  ...

Every image goes through :func:`functions.frames.image_loader.load_image`, the loader the Lambda
function uses, so training sees exactly the pixels production sees. An unreadable image never
stops the load: it becomes a :class:`SkippedImage` with the loader's reason code. Files that are
not ``.jpg``/``.jpeg``/``.png`` (any case), hidden files, files directly under the root and files
under ``_unlabeled/`` (frames exported by ``camsort review export`` that nobody has sorted into a
label folder yet) are ignored and counted. A source may also be a labels file (``camsort label``'s
``labels.jsonl``, a CSV, or a Label Studio JSON export, parsed by ``training.data.label_files``)
naming each frame and its labels. ``training.data.dataset`` turns what is loaded here into a
training set of either task.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from functions.env import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from functions.errors import BadInputError
from functions.frames.image_loader import load_image
from training.data.label_files import DatasetError, parse_labels_text

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
# Reason codes of skipped files that the loader did not produce (the loader's come from
# functions.errors: empty, not_jpeg_or_png, truncated_or_corrupt, too_many_bytes, too_many_pixels).
UNREADABLE = "unreadable"  # the file could not be read (permissions, I/O error)
MISSING = "missing"  # listed, but gone by the time it was fetched
DEFAULT_PAGE_SIZE = 1000  # S3's own maximum per ListObjectsV2 page
# Not a label: where `camsort review export` puts frames still waiting for a person.
UNLABELED_FOLDER = "_unlabeled"


@dataclass(frozen=True)
class LabeledImage:
    uri: str
    label: str
    sha256: str  # of the raw file bytes: the featurization cache key and the near-duplicate audit
    pixels: np.ndarray  # uint8 [224, 224, 3] RGB, from load_image


@dataclass(frozen=True)
class SkippedImage:
    uri: str
    reason: str  # a BadInputError.reason code, or UNREADABLE / MISSING
    detail: str  # the error message: names the file and what to do
    label: str = ""  # the folder it was found in


@dataclass(frozen=True)
class Candidate:
    uri: str
    label: str
    fetch: Callable[[], bytes]


def load_candidates(
    candidates: list[Candidate],
    *,
    max_workers: int,
    progress: bool,
    what: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft: bool = True,
) -> tuple[list[LabeledImage], list[SkippedImage]]:
    """Fetch and decode every candidate through the function's loader, in parallel, sorted by uri."""

    def load_one(candidate: Candidate) -> LabeledImage | SkippedImage:
        try:
            data = candidate.fetch()
        except MissingObject as exc:
            detail = f"{candidate.uri}: {exc}; it was deleted while loading"
            return SkippedImage(candidate.uri, MISSING, detail, candidate.label)
        except OSError as exc:
            detail = f"{candidate.uri}: cannot read the file ({exc}); fix its permissions"
            return SkippedImage(candidate.uri, UNREADABLE, detail, candidate.label)
        try:
            pixels = load_image(
                data, source=candidate.uri, max_bytes=max_bytes, max_pixels=max_pixels, draft=draft
            )
        except BadInputError as exc:
            return SkippedImage(candidate.uri, exc.reason, str(exc), candidate.label)
        return LabeledImage(candidate.uri, candidate.label, hashlib.sha256(data).hexdigest(), pixels)

    results = run_parallel(load_one, candidates, max_workers=max_workers, progress=progress, what=what)
    items = sorted((r for r in results if isinstance(r, LabeledImage)), key=lambda item: item.uri)
    skipped = sorted((r for r in results if isinstance(r, SkippedImage)), key=lambda s: s.uri)
    return items, skipped


def run_parallel(load_one, candidates: Sequence, *, max_workers: int, progress: bool, what: str) -> list:
    """``load_one`` over ``candidates`` on a thread pool, with a progress bar when asked."""
    results = []
    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        futures = [pool.submit(load_one, candidate) for candidate in candidates]
        try:
            _collect(futures, results, progress=progress, what=what)
        except BaseException:
            # A fatal error (e.g. the endpoint went away): do not fetch the rest first.
            for future in futures:
                future.cancel()
            raise
    return results


def _collect(futures: list, results: list, *, progress: bool, what: str) -> None:
    if not progress:
        results.extend(future.result() for future in futures)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns) as bar:
        task = bar.add_task(f"loading {what}", total=len(futures))
        for future in as_completed(futures):
            results.append(future.result())
            bar.advance(task)


# --- local folders ----------------------------------------------------------------------------


def _is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def _is_labeled_image(parts: Sequence[str]) -> bool:
    """``<label>/.../<name>.<jpg|jpeg|png>``: not hidden, not directly under the root, not unlabeled."""
    return (
        len(parts) >= 2
        and parts[0] != UNLABELED_FOLDER
        and not any(part.startswith(".") for part in parts)
        and _is_image_name(parts[-1])
    )


def list_local(source: str) -> tuple[list[Candidate], int]:
    root = Path(source).expanduser()
    if not root.exists():
        raise DatasetError(
            f"{source}: no such folder; pass a folder holding one sub-folder per label, or s3://bucket/prefix/"
        )
    if not root.is_dir():
        raise DatasetError(f"{source}: not a folder; pass the folder that holds one sub-folder per label")
    root = root.resolve()
    candidates, ignored = [], 0
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        parts = path.relative_to(root).parts
        if not _is_labeled_image(parts):
            ignored += 1
            continue
        candidates.append(Candidate(str(path), parts[0], path.read_bytes))
    return candidates, ignored


# --- S3 ---------------------------------------------------------------------------------------


class MissingObject(Exception):
    """Listed, but gone when fetched: the frame becomes a ``MISSING`` skip, not an error."""


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ("bucket", "some/prefix/") (the prefix always ends in /)."""
    rest = uri[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise DatasetError(f"{uri}: no bucket name; write s3://bucket/prefix/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def list_s3(source: str, *, s3_client, page_size: int) -> tuple[list[Candidate], int]:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = parse_s3_uri(source)
    if s3_client is None:
        import boto3

        s3_client = boto3.client("s3")  # honours AWS_ENDPOINT_URL (moto locally)

    candidates, ignored = [], 0
    try:
        pages = s3_client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}
        )
        for key in _keys(pages):
            relative = key[len(prefix) :]
            parts = relative.split("/")
            if key.endswith("/"):
                continue  # a "folder" placeholder object, not a file
            if not _is_labeled_image(parts):
                ignored += 1
                continue
            candidates.append(Candidate(f"s3://{bucket}/{key}", parts[0], s3_fetcher(s3_client, bucket, key)))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        what = "the bucket does not exist" if code == "NoSuchBucket" else f"listing failed ({code})"
        raise DatasetError(
            f"{source}: {what}; check the bucket name, the endpoint and the credentials"
        ) from exc
    except BotoCoreError as exc:
        raise DatasetError(f"{source}: listing failed ({exc}); check the endpoint/network and retry") from exc
    return sorted(candidates, key=lambda c: c.uri), ignored


def s3_fetcher(s3_client, bucket: str, key: str) -> Callable[[], bytes]:
    """A thunk that downloads s3://bucket/key, mapping errors to skips (gone) or DatasetError."""
    from botocore.exceptions import BotoCoreError, ClientError

    def fetch() -> bytes:
        try:
            return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                raise MissingObject(f"s3://{bucket}/{key} no longer exists") from exc
            raise DatasetError(
                f"s3://{bucket}/{key}: GetObject failed ({code}); check the credentials and retry"
            ) from exc
        except BotoCoreError as exc:
            raise DatasetError(
                f"s3://{bucket}/{key}: download failed ({exc}); check the endpoint/network and retry"
            ) from exc

    return fetch


def _keys(pages: Iterable[dict]) -> Iterable[str]:
    for page in pages:
        for obj in page.get("Contents", []):
            yield obj["Key"]


# --- labels files -----------------------------------------------------------------------------


def read_labels_file(labels_file: str, s3_client) -> list[tuple[str, tuple[str, ...]]]:
    """The rows of a local or s3:// labels file (:func:`training.data.label_files.parse_labels_text`)."""
    if labels_file.startswith("s3://"):
        bucket, key = parse_s3_uri(labels_file)
        key = key.rstrip("/")
        try:
            text = s3_fetcher(s3_client, bucket, key)().decode("utf-8")
        except (MissingObject, DatasetError) as exc:  # either way the file is unusable
            raise DatasetError(f"{labels_file}: cannot read the labels file ({exc}); check the key") from exc
    else:
        try:
            text = Path(labels_file).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise DatasetError(f"{labels_file}: cannot read the labels file ({exc})") from exc
    return parse_labels_text(text, labels_file)


def labelled_candidate(root: str, path: str, label: str, s3_client) -> Candidate:
    """The frame a labels-file row names: ``s3://`` as is, else relative to ``root`` (folder or prefix)."""
    if path.startswith("s3://") or root.startswith("s3://"):
        if path.startswith("s3://"):
            bucket, key = parse_s3_uri(path)
            key = key.rstrip("/")
        else:
            bucket, prefix = parse_s3_uri(root)
            key = prefix + path.lstrip("/")
        return Candidate(f"s3://{bucket}/{key}", label, s3_fetcher(s3_client, bucket, key))
    file = Path(path).expanduser()
    if not file.is_absolute():
        file = Path(root).expanduser() / file
    file = file.resolve()
    return Candidate(str(file), label, file.read_bytes)


def list_labels_file(labels_file: str, *, s3_client) -> list[Candidate]:
    """One candidate per row of a single-label labels file; relative paths are beside the file."""
    root = (
        labels_file.rsplit("/", 1)[0] + "/"
        if labels_file.startswith("s3://")
        else str(Path(labels_file).expanduser().parent)
    )
    if s3_client is None and labels_file.startswith("s3://"):
        s3_client = _default_s3_client()
    rows = read_labels_file(labels_file, s3_client)
    if s3_client is None and any(path.startswith("s3://") for path, _ in rows):
        s3_client = _default_s3_client()  # a local labels file naming frames on S3 (a sampled bucket)
    candidates = []
    for path, labels in rows:
        if len(labels) != 1:
            raise DatasetError(
                f"{labels_file}: {path} has {len(labels)} labels ({', '.join(labels) or 'none'}); one label per "
                "frame trains a classifier: fix the row, or train with --task multilabel --labels-file"
            )
        candidates.append(labelled_candidate(root, path, labels[0], s3_client))
    repeated = [uri for uri, n in Counter(c.uri for c in candidates).items() if n > 1]
    if repeated:
        raise DatasetError(f"{labels_file}: {repeated[0]} is listed more than once; list each frame once")
    return candidates


def _default_s3_client():
    import boto3

    return boto3.client("s3")  # honours AWS_ENDPOINT_URL (moto locally)
