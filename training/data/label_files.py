"""Labels files: which frame carries which labels, as rows of (path, labels). Pure parsing.

Three formats, told apart by the file name:

* ``.jsonl`` / ``.ndjson``: one ``{"path": ..., "labels": [...]}`` per line (other keys are
  kept by their writers and ignored here). This is what ``camsort label`` writes
  (``SET/labels.jsonl``) and what ``--labels-file`` has always read.
* ``.csv``: ``path,labels`` with the labels joined by ``;`` (an empty cell is the empty set).
* ``.json``: a Label Studio JSON export (the list of tasks, as documented at
  labelstud.io/guide/export: ``data``, ``annotations[].result[]`` with ``type: "choices"``
  and ``value.choices``); single-choice and multiple-choice templates alike.

A row's path is the frame: a local path (absolute, or relative to the dataset root or the
labels file's folder) or an ``s3://bucket/key`` URI. Reading the bytes and building the
loader's candidates is :mod:`training.data.loading`'s job; this module only turns text into rows.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from functions.errors import CamsortError

CSV_LABEL_SEP = ";"
JSONL_SUFFIXES = (".jsonl", ".ndjson")
LABEL_STUDIO_SUFFIX = ".json"
LABELS_FILE_SUFFIXES = (*JSONL_SUFFIXES, LABEL_STUDIO_SUFFIX, ".csv")
# The task field camsort's own Label Studio tasks carry: the frame itself, whatever URL the
# image field holds (a presigned or locally served one expires; the key does not).
CAMSORT_KEY_FIELD = "camsort_key"
_LOCAL_FILES_PATH = "/data/local-files/"  # Label Studio's local-storage URL: ?d=<path>

LabelRow = tuple[str, tuple[str, ...]]


class DatasetError(CamsortError):
    """The training set cannot be used as given (too few labels or images per label, a bad labels
    file). Defined here, the lowest training module that raises it; ``training.data.loading`` imports it from here."""


def is_labels_file(source: str) -> bool:
    """True for a training source that names a labels file rather than a folder or prefix."""
    if not source.lower().endswith(LABELS_FILE_SUFFIXES):
        return False
    return source.startswith("s3://") or Path(source).expanduser().is_file()


def parse_labels_text(text: str, name: str) -> list[LabelRow]:
    """Rows of ``name``'s text, by its suffix (see the module docstring)."""
    lowered = name.lower()
    if lowered.endswith(JSONL_SUFFIXES):
        rows = parse_jsonl(text, name)
    elif lowered.endswith(LABEL_STUDIO_SUFFIX):
        rows = parse_label_studio(text, name)
    else:
        rows = parse_csv(text, name)
    if not rows:
        raise DatasetError(f"{name}: no labelled frames; write one frame per line: path, labels")
    return rows


def labels_tuple(values: Any, where: str) -> tuple[str, ...]:
    labels = [str(value).strip() for value in values]
    if any(not label for label in labels):
        raise DatasetError(f"{where}: an empty label name; remove it (an empty list means no label)")
    return tuple(sorted(set(labels)))


def parse_jsonl(text: str, name: str) -> list[LabelRow]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{name} line {number}"
        try:
            record = json.loads(line)
            path, labels = record["path"], record["labels"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DatasetError(f'{where}: expected {{"path": ..., "labels": [...]}} ({exc})') from exc
        if not isinstance(labels, list):
            raise DatasetError(f"{where}: labels must be a list (an empty list means no label)")
        rows.append((str(path), labels_tuple(labels, where)))
    return rows


def parse_csv(text: str, name: str) -> list[LabelRow]:
    rows = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or not row[0].strip():
            continue
        if number == 1 and row[0].strip().lower() in ("path", "key", "uri"):
            continue  # a header
        cell = row[1] if len(row) > 1 else ""
        labels = list(cell.split(CSV_LABEL_SEP)) if cell.strip() else []
        rows.append((row[0].strip(), labels_tuple(labels, f"{name} line {number}")))
    return rows


# --- Label Studio -------------------------------------------------------------------------------


def parse_label_studio(text: str, name: str) -> list[LabelRow]:
    """Rows of a Label Studio JSON export: one per task with a submitted, not cancelled annotation.

    The annotation taken is a ``ground_truth`` one if any, else the latest (``updated_at``, then
    ``created_at``, then ``id``); its labels are the union of its ``choices`` results. Tasks
    nobody annotated are left out: they are not labelled yet.
    """
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{name}: not JSON ({exc}); export the project as 'JSON' from Label Studio"
        ) from exc
    if not isinstance(tasks, list):
        raise DatasetError(
            f"{name}: a Label Studio JSON export is a list of tasks; export the project as 'JSON' "
            "(not JSON-MIN, CSV or COCO)"
        )
    rows = []
    for index, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise DatasetError(f"{name}: task #{index} has no 'data' object; is this a Label Studio export?")
        where = f"{name} task {task.get('id', f'#{index}')}"
        annotation = _chosen_annotation(task.get("annotations") or [])
        if annotation is None:
            continue
        choices = [
            choice
            for result in annotation.get("result") or []
            if isinstance(result, dict) and result.get("type") == "choices"
            for choice in (result.get("value") or {}).get("choices") or []
        ]
        rows.append((task_frame(task["data"], where), labels_tuple(choices, where)))
    return rows


def _chosen_annotation(annotations: list[Any]) -> dict[str, Any] | None:
    live = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled")]
    if not live:
        return None
    return max(
        live,
        key=lambda a: (
            bool(a.get("ground_truth")),
            a.get("updated_at") or "",
            a.get("created_at") or "",
            str(a.get("id", "")),
        ),
    )


def task_frame(data: dict[str, Any], where: str) -> str:
    """The frame a task shows: camsort's own key, an s3:// URI, or a Label Studio local-files path."""
    if isinstance(data.get(CAMSORT_KEY_FIELD), str):
        return data[CAMSORT_KEY_FIELD]
    image = data.get("image")
    if not isinstance(image, str):
        image = next((value for value in data.values() if isinstance(value, str)), None)
    if image is None:
        raise DatasetError(f"{where}: the task's data names no image; expected data.image")
    if image.startswith("s3://"):
        return image
    parts = urlsplit(image)
    if parts.path.startswith(_LOCAL_FILES_PATH):
        paths = parse_qs(parts.query).get("d")
        if paths:
            return paths[0]
    raise DatasetError(
        f"{where}: image {image!r} is neither s3://bucket/key nor a Label Studio local-files path, so camsort "
        f"cannot fetch the frame; import tasks with s3:// or local storage, or add data.{CAMSORT_KEY_FIELD}"
    )


# --- links back to the labelling page -----------------------------------------------------------

LABEL_PAGE_PORT = 8765  # `camsort label`'s default port
SET_MARKER = "set.json"  # a labels file beside it belongs to a labelling set (`camsort sample`)


def link_to_label_sets(frames: list, sources: str | list[str] | tuple[str, ...]) -> list:
    """``frames`` (report.WorstFrame) with ``label_link`` set for those labelled in a local set.

    The link opens the frame in ``camsort label SET`` (default port): ``http://127.0.0.1:8765/#f-<id>``.
    """
    import dataclasses

    links: dict[str, tuple[str, str]] = {}
    for source in [sources] if isinstance(sources, str) else sources:
        path = Path(source).expanduser()
        if source.startswith("s3://") or not path.is_file() or not (path.parent / SET_MARKER).is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else {}
            if row.get("id") and row.get("path"):
                uri = (
                    row["path"]
                    if row["path"].startswith("s3://")
                    else str((path.parent / row["path"]).resolve())
                )
                links[uri] = (f"http://127.0.0.1:{LABEL_PAGE_PORT}/#f-{row['id']}", str(path.parent))
    return [
        dataclasses.replace(frame, label_link=links[frame.uri][0], label_set=links[frame.uri][1])
        if frame.uri in links
        else frame
        for frame in frames
    ]
