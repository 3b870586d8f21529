"""Labelling: the selection functions, the label store on disk, labels files and Label Studio exports."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from infra.labelling import selection
from infra.labelling.label_set import LABELS_FILE, SESSION_FILE, LabelSetError, LabelStore
from infra.labelling.sample import SampleOptions, sample_command
from training.data.dataset import load_dataset, load_multilabel_dataset
from training.data.label_files import parse_label_studio, parse_labels_text
from training.data.loading import DatasetError

EVENTS = Path(__file__).resolve().parents[1] / "events" / "label_studio"
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_time_balanced_spreads_over_the_span_not_over_the_frames():
    # 50 frames in a one-minute burst, then 5 frames over the next hour
    times = [T0 + timedelta(seconds=i) for i in range(50)] + [
        T0 + timedelta(minutes=12 * k) for k in range(1, 6)
    ]
    picked = selection.time_balanced(list(range(55)), times, 5)
    assert picked == [
        49,
        50,
        51,
        52,
        53,
    ]  # one from the burst (its nearest to minute 6), the rest spread over the hour
    assert selection.time_balanced([3, 1], [T0 + timedelta(1), T0], 5) == [
        1,
        3,
    ]  # fewer than asked: all, in time order


def test_farthest_point_picks_one_per_cluster_first():
    rng = np.random.default_rng(0)
    centres = np.eye(4) * 10
    points = np.concatenate([c + rng.normal(0, 0.1, (6, 4)) for c in centres])
    picked = selection.farthest_point(points, 4, metric="cosine")
    assert sorted(p // 6 for p in picked) == [0, 1, 2, 3]
    bits = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1], [1, 1, 1, 0]], dtype=float)
    assert sorted(selection.farthest_point(bits, 2, metric="hamming")) in ([0, 2], [0, 3], [1, 2], [1, 3])
    assert selection.farthest_point(bits, 9, metric="hamming") == [0, 1, 2, 3]


def test_margins_and_most_uncertain():
    p = np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25], [0.5, 0.5, 0.0]])
    assert np.allclose(selection.margins(p), [0.85, 0.05, 0.0])
    assert selection.most_uncertain(p, 2) == [2, 1]


@pytest.fixture
def frames_dir(tmp_path) -> Path:
    from training.data.synthetic import frame_jpeg

    for c, camera in enumerate(("cam-01", "cam-02")):
        for i in range(8):
            path = tmp_path / "frames" / camera / f"{T0 + timedelta(minutes=i):%Y%m%dT%H%M%S}000Z.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(frame_jpeg(("bus", "car", "empty")[(i + c) % 3], c * 100 + i))
    return tmp_path / "frames"


def _sample(frames_dir: Path, out: Path, output_format: str = "camsort") -> list[dict]:
    options = SampleOptions(per_camera=3, candidates=6, labels=("bus", "car", "empty"))
    return sample_command(
        str(frames_dir), out, options, model_uri=None, output_format=output_format, s3_client=None
    )


def test_sample_without_a_model_writes_a_set_by_dhash(frames_dir, tmp_path):
    rows = _sample(frames_dir, tmp_path / "set")
    assert [r["camera"] for r in rows] == ["cam-01"] * 3 + ["cam-02"] * 3
    assert all((tmp_path / "set" / r["thumbnail"]).is_file() and Path(r["key"]).is_file() for r in rows)
    assert all(r["guess"] is None and r["region"] == "default" for r in rows)
    info = json.loads((tmp_path / "set" / "set.json").read_text())
    assert info["selection"] == "diverse-dhash" and info["labels"] == ["bus", "car", "empty"]
    assert [r["key"] for r in rows] == [
        r["key"] for r in _sample(frames_dir, tmp_path / "again")
    ]  # deterministic


def test_the_store_writes_every_action_and_reopens_where_it_stopped(frames_dir, tmp_path):
    rows = _sample(frames_dir, tmp_path / "set")
    ids = [r["id"] for r in rows]
    store = LabelStore.open(tmp_path / "set")
    store.label(ids[:2], "bus")
    store.skip([ids[2]])
    store.label([ids[2], ids[3]], "car")
    store.undo()
    again = LabelStore.open(tmp_path / "set")  # as after a killed server
    assert {i: r["labels"] for i, r in again.decided.items()} == {ids[0]: ["bus"], ids[1]: ["bus"]}
    assert again.skipped == {ids[2]} and len(again.history) == 2
    again.undo()
    assert json.loads((tmp_path / "set" / SESSION_FILE).read_text())["skipped"] == []
    with pytest.raises(LabelSetError, match="'lorry' is not one of"):
        again.label(ids[:1], "lorry")
    with pytest.raises(LabelSetError, match="no frame 'nope'"):
        again.skip(["nope"])
    lines = (tmp_path / "set" / LABELS_FILE).read_text().splitlines()
    assert [json.loads(line)["path"] for line in lines] == [rows[0]["key"], rows[1]["key"]]
    with pytest.raises(LabelSetError, match="already holds labels"):
        _sample(frames_dir, tmp_path / "set")  # a new sample would give these ids to other frames
    (tmp_path / "set" / SESSION_FILE).write_text("{not json")
    with pytest.raises(LabelSetError, match="not what camsort label writes"):
        LabelStore.open(tmp_path / "set")


def test_the_labels_file_is_a_training_source(frames_dir, tmp_path):
    rows = _sample(frames_dir, tmp_path / "set")
    store = LabelStore.open(tmp_path / "set")
    for row, label in zip(rows, ["bus", "car", "bus", "car", "bus", "car"], strict=True):
        store.label([row["id"]], label)
    dataset = load_dataset(str(tmp_path / "set" / LABELS_FILE), progress=False, min_per_label=3)
    assert dataset.labels == ["bus", "car"] and dataset.counts() == {"bus": 3, "car": 3}
    assert sorted(i.uri for i in dataset.items) == sorted(r["key"] for r in rows)


def test_label_studio_export_as_documented_single_choice():
    rows = parse_label_studio((EVENTS / "export_single_choice.json").read_text(), "export.json")
    assert rows == [
        ("cam-01/20261122T120000000Z.jpg", ("car",)),  # the latest of two annotations
        ("s3://frames-bucket/frames/cam-02/20261122T120100000Z.jpg", ("empty",)),  # ground truth wins
        ("/srv/frames/cam-01/20261122T120200000Z.jpg", ("car",)),  # camsort's own task: its key
    ]  # task 4 was cancelled, task 5 never annotated


def test_label_studio_export_as_documented_multiple_choice():
    rows = parse_labels_text((EVENTS / "export_multiple_choice.json").read_text(), "x.json")
    assert rows == [("cam-01/a.jpg", ("bus", "car")), ("cam-01/b.jpg", ()), ("cam-02/c.jpg", ("car",))]


def test_label_studio_problems_are_one_sentence():
    with pytest.raises(DatasetError, match="list of tasks"):
        parse_label_studio('{"data": {}}', "e.json")
    task = [{"id": 9, "data": {"image": "https://example.com/1.jpg"}, "annotations": [{"result": []}]}]
    with pytest.raises(DatasetError, match="e.json task 9: image 'https://example.com/1.jpg' is neither"):
        parse_label_studio(json.dumps(task), "e.json")


def test_sampled_label_studio_tasks_round_trip_through_an_export(frames_dir, tmp_path):
    rows = _sample(frames_dir, tmp_path / "set", output_format="label-studio")
    tasks = json.loads((tmp_path / "set" / "label-studio-tasks.json").read_text())
    assert tasks[0]["data"]["image"] == f"http://127.0.0.1:8765/frames/{rows[0]['id']}"
    assert (
        '<Choices name="choice" toName="image"' in (tmp_path / "set" / "label-studio-config.xml").read_text()
    )
    # what Label Studio exports once a person has chosen (the documented annotation shape)
    for n, task in enumerate(tasks):
        task["id"] = n + 1
        choice = ["bus", "car", "empty"][n % 3]
        task["annotations"] = [
            {"id": 100 + n, "result": [{"from_name": "choice", "to_name": "image", "type": "choices",
             "value": {"choices": [choice]}}], "was_cancelled": False, "ground_truth": False}
        ]  # fmt: skip
    export = tmp_path / "project-1-at-2026-11-22.json"
    export.write_text(json.dumps(tasks))
    dataset = load_dataset(str(export), progress=False, min_per_label=2)
    assert dataset.counts() == {"bus": 2, "car": 2, "empty": 2}
    assert {i.uri: i.label for i in dataset.items}[rows[4]["key"]] == "car"
    multi = load_multilabel_dataset(str(frames_dir), labels_file=str(export), progress=False, min_per_label=2)
    assert multi.counts() == {"bus": 2, "car": 2, "empty": 2}


def test_the_reports_worst_mistakes_link_back_to_the_labelling_page(frames_dir, tmp_path):
    from training.data.label_files import link_to_label_sets
    from training.report.worst_frames import WorstFrame

    rows = _sample(frames_dir, tmp_path / "set")
    LabelStore.open(tmp_path / "set").label([rows[2]["id"]], "car")
    frames = [
        WorstFrame(rows[2]["key"], "car", "bus", 0.9, b""),
        WorstFrame("/elsewhere/x.jpg", "car", "bus", 0.8, b""),
    ]
    linked = link_to_label_sets(frames, [str(frames_dir), str(tmp_path / "set" / LABELS_FILE)])
    assert linked[0].label_link == f"http://127.0.0.1:8765/#f-{rows[2]['id']}"
    assert linked[0].label_set == str(tmp_path / "set") and linked[1].label_link == ""
