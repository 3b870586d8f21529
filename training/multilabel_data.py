"""Multi-label training sets: every frame carries a *set* of labels, possibly empty.

Two ways to say which labels a frame holds, locally or on S3:

* folder names split on a separator (``--label-sep _``)::

      root/bus_car/0001.jpg   -> {bus, car}
      root/night/0002.jpg     -> {night}
      root/none/0003.jpg      -> {}          (the empty-set folder, ``--empty-name``)

* a labels file (``--labels-file``), CSV, JSONL or a Label Studio export, one frame per row: the path (relative to
  the dataset root, or absolute) or the S3 key (relative to the prefix, or a full
  ``s3://bucket/key``), then the label list. CSV: ``path,labels`` with the labels joined by
  ``;`` (an empty cell is the empty set); JSONL: ``{"path": ..., "labels": [...]}``; or a
  Label Studio JSON export (``.json``, the ``choices`` template: :mod:`training.label_files`).

Images go through the same loader as every other training image (``training.dataset``), so
unreadable files become skips with the loader's reason, never a crash.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from functions.env import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from functions.frames.manifest import UNKNOWN_LABEL
from training.dataset import (
    DEFAULT_PAGE_SIZE,
    DatasetError,
    SkippedImage,
    labelled_candidate,
    list_local,
    list_s3,
    load_candidates,
    read_labels_file,
)

DEFAULT_LABEL_SEP = "_"
DEFAULT_EMPTY_NAME = "none"


@dataclass(frozen=True)
class MultiLabeledImage:
    uri: str
    labels: tuple[str, ...]  # sorted, possibly empty
    sha256: str
    pixels: np.ndarray


@dataclass
class MultiLabelDataset:
    items: list[MultiLabeledImage]
    skipped: list[SkippedImage]
    labels: list[str]  # every label seen, sorted: the columns of Y and of the model's output
    source: str = ""
    ignored_files: int = 0
    label_source: str = ""  # "folders (sep '_')" or the labels file

    def __len__(self) -> int:
        return len(self.items)

    def pixels(self) -> np.ndarray:
        if not self.items:
            return np.zeros((0, 224, 224, 3), np.uint8)
        return np.stack([item.pixels for item in self.items])

    def targets(self) -> np.ndarray:
        """The label matrix Y: uint8 [N, L], Y[i, k] = 1 when frame i holds labels[k]."""
        index = {label: k for k, label in enumerate(self.labels)}
        y = np.zeros((len(self.items), len(self.labels)), dtype=np.uint8)
        for i, item in enumerate(self.items):
            y[i, [index[label] for label in item.labels]] = 1
        return y

    def sha256s(self) -> list[str]:
        return [item.sha256 for item in self.items]

    def counts(self) -> dict[str, int]:
        per_label = Counter(label for item in self.items for label in item.labels)
        return {label: per_label.get(label, 0) for label in self.labels}

    def combinations(self) -> dict[str, int]:
        """Frames per label set, keyed ``bus+car`` ("" for the empty set shown as ``{}``)."""
        per_set = Counter("+".join(item.labels) or "{}" for item in self.items)
        return dict(sorted(per_set.items()))

    def summary(self) -> dict:
        return {
            "source": self.source,
            "task": "multilabel",
            "label_source": self.label_source,
            "labels": list(self.labels),
            "per_label": self.counts(),
            "per_label_set": self.combinations(),
            "empty_set": sum(1 for item in self.items if not item.labels),
            "total": len(self.items),
            "skipped": len(self.skipped),
            "skipped_reasons": dict(sorted(Counter(s.reason for s in self.skipped).items())),
            "ignored_files": self.ignored_files,
        }


def parse_label_set(name: str, *, sep: str = DEFAULT_LABEL_SEP, empty_name: str = DEFAULT_EMPTY_NAME):
    """``"car_bus"`` -> ("bus", "car"); the empty-set name -> (); duplicates collapse."""
    if name == empty_name:
        return ()
    parts = [part.strip() for part in (name.split(sep) if sep else [name])]
    if any(not part for part in parts):
        raise DatasetError(
            f"label folder {name!r}: an empty label between separators {sep!r}; rename the folder "
            f"(e.g. bus{sep}car) or use {empty_name!r} for frames with no label"
        )
    return tuple(sorted(set(parts)))


def load_multilabel_dataset(
    source: str,
    *,
    label_sep: str = DEFAULT_LABEL_SEP,
    empty_name: str = DEFAULT_EMPTY_NAME,
    labels_file: str | None = None,
    min_per_label: int = 2,
    s3_client=None,
    max_workers: int = 8,
    progress: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> MultiLabelDataset:
    """Load a multi-label set from folder names (split on ``label_sep``) or from ``labels_file``.

    Raises ``DatasetError`` when nothing usable is found, when a label is named ``unknown``
    (reserved), or when a label holds fewer than ``min_per_label`` frames (a label every frame
    holds, or none, cannot be learned either: each label needs frames without it as well).
    """
    if s3_client is None and (source.startswith("s3://") or (labels_file or "").startswith("s3://")):
        import boto3

        s3_client = boto3.client("s3")
    if labels_file:
        rows = read_labels_file(labels_file, s3_client)
        candidates = [labelled_candidate(source, path, "+".join(labels), s3_client) for path, labels in rows]
        repeated = [uri for uri, n in Counter(c.uri for c in candidates).items() if n > 1]
        if repeated:
            raise DatasetError(f"{labels_file}: {repeated[0]} is listed more than once; list each frame once")
        sets = {candidate.uri: labels for candidate, (_, labels) in zip(candidates, rows, strict=True)}
        ignored, label_source = 0, f"labels file {labels_file}"
    else:
        if source.startswith("s3://"):
            candidates, ignored = list_s3(source, s3_client=s3_client, page_size=page_size)
        else:
            candidates, ignored = list_local(source)
        sets = {c.uri: parse_label_set(c.label, sep=label_sep, empty_name=empty_name) for c in candidates}
        label_source = f"folder names split on {label_sep!r} ({empty_name!r} = no label)"
    if not candidates:
        raise DatasetError(
            f"{source}: no .jpg/.jpeg/.png images found ({ignored} other file(s) ignored); put them in "
            f"folders named for their labels (bus{label_sep}car/) or list them in a labels file"
        )
    loaded, skipped = load_candidates(
        candidates,
        max_workers=max_workers,
        progress=progress,
        what=source,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
    )
    items = [MultiLabeledImage(item.uri, sets[item.uri], item.sha256, item.pixels) for item in loaded]
    labels = sorted({label for labels in sets.values() for label in labels})
    dataset = MultiLabelDataset(items, skipped, labels, source, ignored, label_source)
    _validate(dataset, min_per_label)
    return dataset


def _validate(dataset: MultiLabelDataset, min_per_label: int) -> None:
    if not dataset.labels:
        raise DatasetError(f"{dataset.source}: no frame carries any label; a multi-label model needs labels")
    if UNKNOWN_LABEL in dataset.labels:
        raise DatasetError(f"{dataset.source}: {UNKNOWN_LABEL!r} is reserved; rename that label")
    n = len(dataset.items)
    for label, count in dataset.counts().items():
        if count < min_per_label or n - count < min_per_label:
            raise DatasetError(
                f"{dataset.source}: label {label!r} is on {count} of {n} usable frames; each label needs at "
                f"least {min_per_label} frames with it and {min_per_label} without it: add frames or drop the label"
            )
