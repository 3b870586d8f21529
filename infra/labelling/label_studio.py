"""A labelling set as Label Studio tasks, for teams that already label there.

``camsort sample --format label-studio`` writes, beside the set:

* ``label-studio-tasks.json``: one task per frame, in Label Studio's import format
  (labelstud.io/guide/tasks): ``data.image`` is a URL Label Studio's browser can open (a
  presigned GET for an ``s3://`` frame; for a local frame, ``camsort label SET`` serving it
  at ``/frames/<id>``), ``data.camsort_key`` is the frame itself (the URL expires, the key
  does not), and the live model's guess rides along as a ``predictions`` entry, so Label
  Studio pre-selects it;
* ``label-studio-config.xml``: the image-classification labelling config (``Choices``) for
  the set's labels, to paste into the project's settings.

Label Studio's JSON export of that project is then a labels source for ``camsort train``
(:mod:`training.data.label_files`).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from infra.labelling.label_set import write_atomically
from training.data.label_files import CAMSORT_KEY_FIELD

TASKS_FILE = "label-studio-tasks.json"
CONFIG_FILE = "label-studio-config.xml"
FROM_NAME, TO_NAME = "choice", "image"
PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's longest: a labelling project lasts days


def task_for(row: dict[str, Any], image_url: str, model_version: str | None) -> dict[str, Any]:
    task: dict[str, Any] = {
        "data": {
            "image": image_url,
            CAMSORT_KEY_FIELD: row["key"],
            "camera": row.get("camera"),
            "captured_at": row.get("captured_at"),
            "camsort_id": row["id"],
        }
    }
    if row.get("guess"):
        task["predictions"] = [
            {
                "model_version": model_version or "live",
                "score": row.get("confidence"),
                "result": [
                    {
                        "from_name": FROM_NAME,
                        "to_name": TO_NAME,
                        "type": "choices",
                        "value": {"choices": [row["guess"]]},
                    }
                ],
            }
        ]
    return task


def labelling_config(labels: list[str], *, multiple: bool = False) -> str:
    choices = "\n".join(f'    <Choice value="{html.escape(label, quote=True)}"/>' for label in labels)
    mode = "multiple" if multiple else "single-radio"
    return (
        f'<View>\n  <Image name="{TO_NAME}" value="$image"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="{mode}" showInline="true">\n{choices}\n  </Choices>\n</View>\n'
    )


def image_url(row: dict[str, Any], *, s3_client: Any, local_base_url: str) -> str:
    key = row["key"]
    if key.startswith("s3://"):
        bucket, _, name = key[len("s3://") :].partition("/")
        return s3_client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": name}, ExpiresIn=PRESIGN_SECONDS
        )
    return f"{local_base_url.rstrip('/')}/frames/{row['id']}"


def write_tasks(
    directory: Path,
    rows: list[dict[str, Any]],
    labels: list[str],
    *,
    s3_client: Any,
    local_base_url: str,
    model_version: str | None,
) -> Path:
    tasks = [
        task_for(row, image_url(row, s3_client=s3_client, local_base_url=local_base_url), model_version)
        for row in rows
    ]
    path = Path(directory) / TASKS_FILE
    write_atomically(path, json.dumps(tasks, indent=2) + "\n")
    write_atomically(Path(directory) / CONFIG_FILE, labelling_config(labels))
    return path
