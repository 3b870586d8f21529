"""Training sets, one per task: one label per frame (``Dataset``) or a set of labels (``MultiLabelDataset``).

One label per frame: the label is the first folder under the root, or a labels file's one label
(``camsort label``'s ``labels.jsonl``, a CSV, a Label Studio export); several sources combine
into one set (e.g. the original data and a review export), labels merged by name.

A set of labels per frame, locally or on S3, said in one of two ways:

* folder names split on a separator (``--label-sep _``)::

      root/bus_car/0001.jpg   -> {bus, car}
      root/night/0002.jpg     -> {night}
      root/none/0003.jpg      -> {}          (the empty-set folder, ``--empty-name``)

* a labels file (``--labels-file``): CSV, JSONL or a Label Studio JSON export
  (``training.data.label_files``).

Both load every frame through ``training.data.loading`` (the function's own loader): an
unreadable file becomes a skip with the loader's reason, never a crash; the counts show up in
each set's ``summary()``, which goes into manifest.json.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from functions.env import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from functions.frames.manifest import UNKNOWN_LABEL
from training.data.label_files import is_labels_file
from training.data.loading import (
    DEFAULT_PAGE_SIZE,
    DatasetError,
    LabeledImage,
    SkippedImage,
    labelled_candidate,
    list_labels_file,
    list_local,
    list_s3,
    load_candidates,
    read_labels_file,
)

DEFAULT_LABEL_SEP = "_"
DEFAULT_EMPTY_NAME = "none"


class LoadedFrames:
    """What both tasks' training sets hold alike: the loaded frames (``items``) and the skips."""

    items: Sequence[LabeledImage] | Sequence[MultiLabeledImage]
    skipped: list[SkippedImage]

    def __len__(self) -> int:
        return len(self.items)

    def pixels(self) -> np.ndarray:
        """All images stacked: uint8 [N, 224, 224, 3], in item order."""
        if not self.items:
            return np.zeros((0, 224, 224, 3), np.uint8)
        return np.stack([item.pixels for item in self.items])

    def sha256s(self) -> list[str]:
        return [item.sha256 for item in self.items]

    def same_fold_keys(self) -> list[str] | None:
        """Keys of items that must share a fold whatever their near-duplicate groups (region crops:
        their frame); None: the groups alone decide."""
        return None

    def skipped_reasons(self) -> dict[str, int]:
        return dict(sorted(Counter(s.reason for s in self.skipped).items()))


@dataclass
class Dataset(LoadedFrames):
    items: list[LabeledImage]
    skipped: list[SkippedImage]
    labels: list[str]
    source: str = ""
    ignored_files: int = 0
    _label_index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._label_index = {label: i for i, label in enumerate(self.labels)}

    def targets(self) -> np.ndarray:
        """Index of each item's label in ``labels``: int64 [N]."""
        return np.array([self._label_index[item.label] for item in self.items], dtype=np.int64)

    def counts(self) -> dict[str, int]:
        per_label = Counter(item.label for item in self.items)
        return {label: per_label.get(label, 0) for label in self.labels}

    def summary(self) -> dict:
        """Counts per label, skipped files and why, ignored files: goes into manifest.json."""
        return {
            "source": self.source,
            "labels": list(self.labels),
            "per_label": self.counts(),
            "total": len(self.items),
            "skipped": len(self.skipped),
            "skipped_reasons": self.skipped_reasons(),
            "ignored_files": self.ignored_files,
        }


def load_dataset(
    source: str | Sequence[str],
    *,
    min_per_label: int = 2,
    s3_client=None,
    max_workers: int = 8,
    progress: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    page_size: int = DEFAULT_PAGE_SIZE,
    draft: bool = True,
) -> Dataset:
    """Load every image under ``source`` (a folder or ``s3://bucket/prefix/``, or several), in parallel.

    Raises ``DatasetError`` when a source does not exist or none holds images, when fewer
    than 2 labels are found, or when a label has fewer than ``min_per_label`` usable images.
    """
    sources = [source] if isinstance(source, str) else list(source)
    if not sources:
        raise DatasetError("no training source given; pass a folder or s3://bucket/prefix/")
    candidates, ignored = [], 0
    for one in sources:
        if is_labels_file(one):
            found, skipped_files = list_labels_file(one, s3_client=s3_client), 0
        elif one.startswith("s3://"):
            found, skipped_files = list_s3(one, s3_client=s3_client, page_size=page_size)
        else:
            found, skipped_files = list_local(one)
        candidates += found
        ignored += skipped_files
    source = " + ".join(sources)
    if not candidates:
        raise DatasetError(
            f"{source}: no .jpg/.jpeg/.png images in label folders ({ignored} other file(s) ignored); "
            "put the images in <source>/<label>/... with one folder per label"
        )

    items, skipped = load_candidates(
        candidates,
        max_workers=max_workers,
        progress=progress,
        what=source,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        draft=draft,
    )
    labels = sorted({c.label for c in candidates})
    dataset = Dataset(items=items, skipped=skipped, labels=labels, source=source, ignored_files=ignored)
    validate_dataset(dataset, min_per_label)
    return dataset


def validate_dataset(dataset: Dataset, min_per_label: int) -> None:
    """Refuse a set with fewer than 2 labels or a label with fewer than ``min_per_label`` frames."""
    source = dataset.source
    if len(dataset.labels) < 2:
        found = ", ".join(dataset.labels) or "none"
        raise DatasetError(
            f"{source}: found {len(dataset.labels)} label folder(s) ({found}); a classifier needs at least 2: "
            "add one folder per label under the root (e.g. <source>/car/, <source>/empty/)"
        )
    skipped_per_label = Counter(s.label for s in dataset.skipped)
    for label, count in dataset.counts().items():
        if count < min_per_label:
            skipped = skipped_per_label.get(label, 0)
            raise DatasetError(
                f"{source}: label '{label}' has {count} usable image(s)"
                + (f" ({skipped} more were skipped as unreadable)" if skipped else "")
                + f"; at least {min_per_label} are needed: add images to its folder or remove the folder"
            )


@dataclass(frozen=True)
class MultiLabeledImage:
    uri: str
    labels: tuple[str, ...]  # sorted, possibly empty
    sha256: str
    pixels: np.ndarray


@dataclass
class MultiLabelDataset(LoadedFrames):
    items: list[MultiLabeledImage]
    skipped: list[SkippedImage]
    labels: list[str]  # every label seen, sorted: the columns of Y and of the model's output
    source: str = ""
    ignored_files: int = 0
    label_source: str = ""  # "folders (sep '_')" or the labels file

    def targets(self) -> np.ndarray:
        """The label matrix Y: uint8 [N, L], Y[i, k] = 1 when frame i holds labels[k]."""
        index = {label: k for k, label in enumerate(self.labels)}
        y = np.zeros((len(self.items), len(self.labels)), dtype=np.uint8)
        for i, item in enumerate(self.items):
            y[i, [index[label] for label in item.labels]] = 1
        return y

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
            "skipped_reasons": self.skipped_reasons(),
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
    _validate_multilabel(dataset, min_per_label)
    return dataset


def _validate_multilabel(dataset: MultiLabelDataset, min_per_label: int) -> None:
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
