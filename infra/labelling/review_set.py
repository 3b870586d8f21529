"""`camsort label SET` and `camsort label --review`: serve a set, or the review queue as one.

The review queue (frames the live model left ``unknown`` or decided near a threshold,
:mod:`functions.stores.review_queue`) becomes a labelling set: one row per queued frame, with
the live model's guess, its confidence and margin, and the queue entry it came from. Labelling
a frame on the page resolves its entry: it is taken off the queue (as ``camsort review export
--dequeue`` does), after the label is on disk. A skipped frame stays queued.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from functions.errors import StorageError
from functions.stores.review_queue import PARTITION_KEY, SORT_KEY
from infra.labelling.label_server import serve_label_set
from infra.labelling.label_set import THUMBS_DIR, LabelStore, write_set
from infra.labelling.sample import THUMBNAIL_SIZE
from infra.labelling.selection import margins
from infra.ops.compare import thumbnail_jpeg
from infra.ops.review import AwsTarget, ReviewQueueReader


def review_rows(
    entries: list[dict[str, Any]], s3_client: Any, out: Path
) -> tuple[list[str], list[dict[str, Any]]]:
    """(labels, manifest rows) of the queued frames; thumbnails written under ``out/thumbs``."""
    labels = sorted({label for e in entries for label in (e.get("probabilities") or {})})
    rows: list[dict[str, Any]] = []
    (out / THUMBS_DIR).mkdir(parents=True, exist_ok=True)
    for entry in sorted(entries, key=lambda e: (e.get("captured_at") or "", e[PARTITION_KEY])):
        # the queue entry names the frame: the same id every time the set is rebuilt
        frame_id = "r" + hashlib.sha256(f"{entry[PARTITION_KEY]}#{entry[SORT_KEY]}".encode()).hexdigest()[:12]
        try:
            data = s3_client.get_object(Bucket=entry["bucket"], Key=entry["key"])["Body"].read()
            (out / THUMBS_DIR / f"{frame_id}.jpg").write_bytes(thumbnail_jpeg(data, THUMBNAIL_SIZE))
        except Exception:  # gone since it was queued, or not an image: the page shows a blank thumbnail
            pass
        probabilities = {k: float(v) for k, v in (entry.get("probabilities") or {}).items()}
        row_p = np.array([[probabilities.get(label, 0.0) for label in labels]]) if probabilities else None
        rows.append(
            {
                "id": frame_id,
                "key": f"s3://{entry['bucket']}/{entry['key']}",
                "camera": entry[PARTITION_KEY],
                "region": "default",
                "captured_at": entry.get("captured_at") or "",
                "thumbnail": f"{THUMBS_DIR}/{frame_id}.jpg",
                "guess": entry.get("top_label") or entry.get("label"),
                "confidence": round(float(entry["confidence"]), 4)
                if entry.get("confidence") is not None
                else None,
                "margin": round(float(margins(row_p)[0]), 4)
                if row_p is not None and len(labels) > 1
                else None,
                "probabilities": probabilities,
                "review": {
                    "camera_id": entry[PARTITION_KEY],
                    "entry": entry[SORT_KEY],
                    "reason": entry.get("review_reason"),
                },
            }
        )
    return labels, rows


def build_review_set(target: AwsTarget, out: Path, *, camera: str | None = None) -> int:
    """Write the queue as a set into ``out``; the number of frames (0: nothing queued, nothing written)."""
    reader = ReviewQueueReader(target.review_table, target.client("dynamodb"))
    entries = list(reader.iter_entries(camera))
    if not entries:
        return 0
    labels, rows = review_rows(entries, target.client("s3"), Path(out))
    write_set(
        Path(out),
        labels=labels,
        frames=rows,
        info={"source": f"review queue {target.review_table}", "selection": "review"},
        stable_ids=True,
    )
    return len(rows)


def dequeue_resolved(reader: ReviewQueueReader):
    """The store's ``on_labelled``: take each labelled frame's entry off the review queue."""

    def resolve(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            if row.get("review"):
                reader.remove_entry(row["review"]["camera_id"], row["review"]["entry"])

    return resolve


def label_command(
    set_dir: Path | None, *, review: AwsTarget | None, camera: str | None, port: int, s3_client: Any, console
) -> None:
    """`camsort label`: serve ``set_dir``; with ``review``, first (re)build it from the review queue."""
    on_labelled = None
    if review is not None:
        set_dir = Path(set_dir or Path.cwd() / "review-set")
        count = build_review_set(review, set_dir, camera=camera)
        if not count:
            console.print(f"The review queue {review.review_table} is empty: nothing to label.")
            return
        console.print(
            f"{count} queued frame(s) from {review.review_table} in {set_dir}; labelling one takes it off the queue."
        )
        on_labelled = dequeue_resolved(ReviewQueueReader(review.review_table, review.client("dynamodb")))
        s3_client = review.client("s3")
    if set_dir is None:
        raise StorageError("camsort label: give the set directory (camsort sample --out SET), or --review")
    store = LabelStore.open(set_dir, on_labelled=on_labelled)
    serve_label_set(store, port=port, s3_client=s3_client, console=console)
