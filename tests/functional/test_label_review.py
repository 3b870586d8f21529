"""`camsort label --review` and `camsort sample s3://... --format label-studio` on the moto server."""

from __future__ import annotations

import json
import urllib.request

import pytest

from infra.labelling.label_server import frame_fetcher, serving
from infra.labelling.label_set import LABELS_FILE, LabelStore
from infra.labelling.review_set import build_review_set, dequeue_resolved
from infra.labelling.sample import SampleOptions, sample_command
from infra.local.stack import create_review_table
from infra.ops.review import AwsTarget, ReviewQueueReader
from tests.fixtures.aws import unique_name
from tests.functional.test_handler import GREY, jpeg
from tests.functional.test_review_export import queue_frames


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_the_review_queue_as_a_set_dequeues_what_is_labelled(aws, tmp_path):
    table = unique_name("camsort-review-test")
    create_review_table(aws.dynamodb, table)
    queue_frames(aws, table)
    target = AwsTarget(aws.endpoint_url, "unused", table)
    assert build_review_set(target, tmp_path / "set") == 4
    reader = ReviewQueueReader(table, aws.dynamodb)
    store = LabelStore.open(tmp_path / "set", on_labelled=dequeue_resolved(reader))
    frames = {f["key"].rsplit("/", 1)[-1]: f for f in store.state()["frames"]}
    assert store.labels == ["bus", "car", "empty"]
    assert frames["b.jpg"]["guess"] == "bus" and frames["b.jpg"]["confidence"] == 0.52
    assert frames["b.jpg"]["margin"] == 0.22 and frames["b.jpg"]["review"]["reason"] == "near_threshold"
    assert (tmp_path / "set" / frames["a.jpg"]["thumbnail"]).is_file()
    assert not (tmp_path / "set" / frames["gone.jpg"]["thumbnail"]).exists()  # deleted since it was queued
    with serving(store, fetch_frame=frame_fetcher(aws.s3)) as url:
        _post(f"{url}/api/label", {"ids": [frames["a.jpg"]["id"], frames["c.jpg"]["id"]], "label": "empty"})
        _post(f"{url}/api/skip", {"ids": [frames["b.jpg"]["id"]]})
        with urllib.request.urlopen(f"{url}/frames/{frames['a.jpg']['id']}", timeout=10) as response:
            assert response.read() == jpeg(GREY)
    left = sorted(e["key"] for e in reader.iter_entries())
    assert left == ["frames/cam-01/b.jpg", "frames/cam-02/gone.jpg"]  # the skipped one stays queued
    rows = [json.loads(line) for line in (tmp_path / "set" / LABELS_FILE).read_text().splitlines()]
    assert [(r["path"], r["labels"]) for r in rows] == [
        (f"s3://{aws.bucket}/frames/cam-01/a.jpg", ["empty"]),
        (f"s3://{aws.bucket}/frames/cam-02/c.jpg", ["empty"]),
    ]
    # the next session rebuilds the set from what is still queued; the labels given stay
    assert build_review_set(target, tmp_path / "set") == 2
    again = LabelStore.open(tmp_path / "set")
    assert sorted(f["key"].rsplit("/", 1)[-1] for f in again.state()["frames"]) == ["b.jpg", "gone.jpg"]
    again.label([next(f["id"] for f in again.state()["frames"] if f["key"].endswith("b.jpg"))], "bus")
    rows = [json.loads(line) for line in (tmp_path / "set" / LABELS_FILE).read_text().splitlines()]
    assert sorted((r["path"].rsplit("/", 1)[-1], r["labels"][0]) for r in rows) == [
        ("a.jpg", "empty"), ("b.jpg", "bus"), ("c.jpg", "empty"),
    ]  # fmt: skip


def test_label_studio_tasks_of_s3_frames_carry_presigned_urls(aws, tmp_path):
    for camera in ("cam-01", "cam-02"):
        for i in range(3):
            aws.s3.put_object(
                Bucket=aws.bucket, Key=f"frames/{camera}/2026112{i}T120000000Z.jpg", Body=jpeg(GREY)
            )
    options = SampleOptions(per_camera=2, candidates=3, labels=("bus", "car"))
    rows = sample_command(
        f"s3://{aws.bucket}/frames/", tmp_path / "set", options, model_uri=None, output_format="label-studio",
        s3_client=aws.s3,
    )  # fmt: skip
    assert len(rows) == 4 and all(r["key"].startswith(f"s3://{aws.bucket}/frames/cam-0") for r in rows)
    tasks = json.loads((tmp_path / "set" / "label-studio-tasks.json").read_text())
    for task, row in zip(tasks, rows, strict=True):
        assert task["data"]["camsort_key"] == row["key"]
        assert "Signature=" in task["data"]["image"]  # presigned (SigV2 or SigV4, as the client signs)
        assert task["data"]["image"].startswith(f"{aws.endpoint_url}/{aws.bucket}/frames/")
    with urllib.request.urlopen(
        tasks[0]["data"]["image"], timeout=10
    ) as response:  # what Label Studio fetches
        assert response.read() == jpeg(GREY)


def test_a_taken_port_is_one_sentence(tmp_path):
    import socket

    from rich.console import Console

    from functions.errors import ConfigurationError
    from infra.labelling.label_server import serve_label_set
    from infra.labelling.label_set import write_set

    write_set(tmp_path / "set", labels=["bus", "car"], frames=[], info={})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            ConfigurationError,
            match=rf"127.0.0.1:{port}: cannot serve the labelling page .*pass another --port",
        ):
            serve_label_set(LabelStore.open(tmp_path / "set"), port=port, s3_client=None, console=Console())
