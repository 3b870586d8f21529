"""A labelling set on disk, and the store that records every labelling action at once.

A set is a directory::

    SET/set.json          labels to choose from, where the frames came from, how they were picked
    SET/manifest.jsonl    one frame per line: id, key, camera, captured_at, guess, confidence,
                          margin, probabilities, thumbnail (and, from the review queue, its entry)
    SET/thumbs/<id>.jpg   the thumbnails the page shows
    SET/labels.jsonl      what a person decided: {"path": key, "labels": [label], "id", "camera",
                          "labelled_at"}: the labels-file format `camsort train` reads
    SET/session.json      skipped frames and the undo history

Every action rewrites ``labels.jsonl`` then ``session.json``, each atomically (a temporary
file, fsync, ``os.replace``, fsync of the directory): killing the server or closing the tab
at any moment leaves either the state before the action or after it, never half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from functions.errors import CamsortError
from functions.frames.keys import format_timestamp

SET_FILE, MANIFEST_FILE, LABELS_FILE, SESSION_FILE, THUMBS_DIR = (
    "set.json", "manifest.jsonl", "labels.jsonl", "session.json", "thumbs",
)  # fmt: skip
UNDO_DEPTH = 500  # actions kept for undo (each holds the previous state of the frames it touched)


class LabelSetError(CamsortError):
    """A labelling set directory is missing or damaged, or an action names what is not in it."""


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` so that a crash leaves the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def refuse_labelled(directory: Path) -> None:
    """A new sample into a set that holds labels would give its ids to other frames: refuse."""
    if (Path(directory) / LABELS_FILE).exists():
        raise LabelSetError(
            f"{directory}: already holds labels ({LABELS_FILE}) for the frames sampled before; sample into "
            "another directory, so that no label lands on another frame"
        )


def write_set(
    directory: Path,
    *,
    labels: list[str],
    frames: list[dict[str, Any]],
    info: dict[str, Any],
    stable_ids: bool = False,
) -> Path:
    """Write set.json and manifest.jsonl (the thumbnails are written by the sampler).

    ``stable_ids``: the ids name the frames themselves (the review queue's), so a set rebuilt
    over its own labels keeps them on the right frames."""
    if not stable_ids:
        refuse_labelled(directory)
    if len(labels) < 2:
        raise LabelSetError(
            f"{directory}: a labelling set needs at least 2 labels to choose from, got {labels}"
        )
    write_atomically(
        directory / SET_FILE, json.dumps({"labels": labels, **info}, indent=2, sort_keys=True) + "\n"
    )
    write_atomically(directory / MANIFEST_FILE, "".join(json.dumps(f, sort_keys=True) + "\n" for f in frames))
    return directory


def read_set(directory: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(set.json, the manifest's frames) of a set directory, or a LabelSetError naming what is wrong."""
    directory = Path(directory)
    try:
        info = json.loads((directory / SET_FILE).read_text())
        lines = (directory / MANIFEST_FILE).read_text().splitlines()
    except FileNotFoundError as exc:
        raise LabelSetError(
            f"{directory}: not a labelling set ({exc.filename} is missing); make one with camsort sample"
        ) from exc
    except json.JSONDecodeError as exc:
        raise LabelSetError(f"{directory / SET_FILE}: not valid JSON ({exc}); sample the set again") from exc
    frames = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                frames.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise LabelSetError(f"{directory / MANIFEST_FILE} line {number}: not JSON ({exc})") from exc
    return info, frames


@dataclass
class LabelStore:
    """The decisions on one set, held in memory and written through on every change.

    ``on_labelled``: called with the frames an action labelled (after the files are written),
    e.g. to take review-queue entries off the queue.
    """

    directory: Path
    labels: list[str]
    frames: dict[str, dict[str, Any]]  # id -> manifest row, in manifest order
    decided: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> labels.jsonl row
    skipped: set[str] = field(default_factory=set)
    history: list[dict[str, Any]] = field(default_factory=list)  # undo stack: previous states
    on_labelled: Callable[[list[dict[str, Any]]], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, directory: Path, on_labelled=None) -> LabelStore:
        info, rows = read_set(directory)
        store = cls(
            Path(directory), list(info["labels"]), {row["id"]: row for row in rows}, on_labelled=on_labelled
        )
        labels_path, session_path = store.directory / LABELS_FILE, store.directory / SESSION_FILE
        try:
            if labels_path.exists():
                for line in labels_path.read_text().splitlines():
                    if line.strip():
                        row = json.loads(line)
                        store.decided[row["id"]] = row
            if session_path.exists():
                session = json.loads(session_path.read_text())
                store.skipped = set(session.get("skipped", []))
                store.history = list(session.get("history", []))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise LabelSetError(
                f"{store.directory}: {LABELS_FILE} or {SESSION_FILE} is not what camsort label writes ({exc}); "
                "restore it, or move it away to start the set's labels afresh"
            ) from exc
        return store

    def state(self) -> dict[str, Any]:
        """What the page needs: the labels, every frame with its decision, the progress."""
        with self._lock:
            frames = [
                {
                    **row,
                    "label": (self.decided.get(i) or {}).get("labels", [None])[0],
                    "skipped": i in self.skipped,
                }
                for i, row in self.frames.items()
            ]
            return {"labels": self.labels, "frames": frames, "progress": self._progress()}

    def _progress(self) -> dict[str, int]:
        return {
            "labelled": len(self.decided),
            "skipped": len(self.skipped - set(self.decided)),
            "total": len(self.frames),
        }

    def label(self, ids: Iterable[str], label: str) -> dict[str, int]:
        if label not in self.labels:
            raise LabelSetError(f"label {label!r} is not one of this set's labels ({', '.join(self.labels)})")
        ids = self._known(ids)
        now = format_timestamp(datetime.now(UTC))
        with self._lock:
            self._remember("label", ids)
            for i in ids:
                row = self.frames[i]
                self.decided[i] = {
                    "path": row["key"], "labels": [label], "id": i, "camera": row.get("camera"), "labelled_at": now,
                }  # fmt: skip
                self.skipped.discard(i)
            self._write()
            progress = self._progress()
        if self.on_labelled is not None:
            self.on_labelled([self.frames[i] for i in ids])
        return progress

    def skip(self, ids: Iterable[str]) -> dict[str, int]:
        ids = self._known(ids)
        with self._lock:
            self._remember("skip", ids)
            self.skipped.update(ids)
            self._write()
            return self._progress()

    def undo(self) -> dict[str, Any]:
        """Put back the frames of the last action as they were; ``undone`` is that action (or None)."""
        with self._lock:
            if not self.history:
                return {"undone": None, "progress": self._progress()}
            action = self.history.pop()
            for i, before in action["before"].items():
                if before["decided"] is None:
                    self.decided.pop(i, None)
                else:
                    self.decided[i] = before["decided"]
                (self.skipped.add if before["skipped"] else self.skipped.discard)(i)
            self._write()
            return {
                "undone": {"action": action["action"], "ids": list(action["before"])},
                "progress": self._progress(),
            }

    def _known(self, ids: Iterable[str]) -> list[str]:
        ids = list(dict.fromkeys(ids))
        unknown = [i for i in ids if i not in self.frames]
        if unknown:
            raise LabelSetError(f"{self.directory}: no frame {unknown[0]!r} in this set")
        if not ids:
            raise LabelSetError("no frame given: select or focus a frame first")
        return ids

    def _remember(self, action: str, ids: list[str]) -> None:
        before = {i: {"decided": self.decided.get(i), "skipped": i in self.skipped} for i in ids}
        self.history.append({"action": action, "before": before})
        del self.history[:-UNDO_DEPTH]

    def _write(self) -> None:
        # manifest order, then decisions on frames no longer in the manifest (a review set rebuilt
        # after its entries were resolved): a label once given is kept for training
        ordered = [self.decided[i] for i in self.frames if i in self.decided]
        ordered += [row for i, row in self.decided.items() if i not in self.frames]
        write_atomically(
            self.directory / LABELS_FILE, "".join(json.dumps(r, sort_keys=True) + "\n" for r in ordered)
        )
        session = {"skipped": sorted(self.skipped), "history": self.history}
        write_atomically(self.directory / SESSION_FILE, json.dumps(session, sort_keys=True) + "\n")
