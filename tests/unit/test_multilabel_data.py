"""Multi-label data: label sets from folder names or a labels file, the empty set, the synthetic tree."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from training.data.dataset import load_multilabel_dataset, parse_label_set
from training.data.loading import DatasetError
from training.data.synthetic import (
    folder_name,
    frame_jpeg,
    label_sets,
    multilabel_frame_jpeg,
    write_multilabel_dataset,
)

SMALL = {"width": 160, "height": 90}


def test_single_label_frames_are_unchanged_by_the_multilabel_renderer():
    # The multi-label renderer shares render_scene with render_frame; the single-label
    # frames (and so every existing training set and figure) must stay byte for byte.
    digests = [
        hashlib.sha256(frame_jpeg(label, seed, 320, 180)).hexdigest()[:12]
        for label in ("bus", "car", "empty")
        for seed in range(2)
    ]
    assert digests == [
        "1dede8f331bf",
        "25d416a18615",
        "448b42d407f1",
        "702025971e3a",
        "82f7a5cdaaac",
        "0799c0d0a053",
    ]


def test_label_sets_cover_every_subset_once():
    sets = label_sets()
    assert len(sets) == 8 and len(set(sets)) == 8
    assert () in sets and ("bus", "car", "night") in sets
    assert folder_name(()) == "none" and folder_name(("car", "bus")) == "bus_car"


def test_multilabel_frames_are_seeded_and_night_is_darker():
    assert multilabel_frame_jpeg(("bus", "car"), 7, **SMALL) == multilabel_frame_jpeg(
        ("bus", "car"), 7, **SMALL
    )
    assert multilabel_frame_jpeg(("bus", "car"), 7, **SMALL) != multilabel_frame_jpeg(("bus",), 7, **SMALL)
    from functions.frames.image_loader import load_image

    night = [load_image(multilabel_frame_jpeg(("night",), s, **SMALL), source="n").mean() for s in range(6)]
    day = [load_image(multilabel_frame_jpeg((), s, **SMALL), source="d").mean() for s in range(6)]
    assert max(night) < min(day)


def test_unknown_labels_are_refused():
    with pytest.raises(ValueError, match="truck"):
        multilabel_frame_jpeg(("truck",), 0)
    with pytest.raises(ValueError, match="unknown label-set folder"):
        write_multilabel_dataset("/nonexistent", {"car_truck": 1})


def test_parse_label_set():
    assert parse_label_set("car_bus") == ("bus", "car")
    assert parse_label_set("none") == ()
    assert parse_label_set("red-dress", sep="-") == ("dress", "red")
    assert parse_label_set("car", sep="") == ("car",)
    with pytest.raises(DatasetError, match="empty label"):
        parse_label_set("car__bus")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("multilabel")
    write_multilabel_dataset(root, 2, seed=3, **SMALL)
    return root


def test_folder_names_give_label_sets(tree):
    dataset = load_multilabel_dataset(str(tree), progress=False)
    assert dataset.labels == ["bus", "car", "night"]
    assert len(dataset) == 16
    assert dataset.counts() == {"bus": 8, "car": 8, "night": 8}
    assert dataset.combinations()["{}"] == 2 and dataset.combinations()["bus+car+night"] == 2
    y = dataset.targets()
    assert y.shape == (16, 3) and y.dtype == np.uint8
    for item, row in zip(dataset.items, y, strict=True):
        folder = item.uri.split("/")[-2]
        assert tuple(np.array(dataset.labels)[row.astype(bool)]) == parse_label_set(folder)
    assert dataset.summary()["empty_set"] == 2


def test_labels_file_csv_and_jsonl_agree(tree, tmp_path):
    files = sorted(p.relative_to(tree) for p in tree.rglob("*.jpg"))
    csv_file = tmp_path / "labels.csv"
    lines = ["path,labels"] + [f"{p},{';'.join(parse_label_set(p.parts[0]))}" for p in files]
    csv_file.write_text("\n".join(lines) + "\n")
    jsonl_file = tmp_path / "labels.jsonl"
    jsonl_file.write_text(
        "".join(
            json.dumps({"path": str(tree / p), "labels": list(parse_label_set(p.parts[0]))}) + "\n"
            for p in files
        )
    )
    from_folders = load_multilabel_dataset(str(tree), progress=False)
    from_csv = load_multilabel_dataset(str(tree), labels_file=str(csv_file), progress=False)
    from_jsonl = load_multilabel_dataset(str(tree), labels_file=str(jsonl_file), progress=False)
    for dataset in (from_csv, from_jsonl):
        assert [i.uri for i in dataset.items] == [i.uri for i in from_folders.items]
        assert np.array_equal(dataset.targets(), from_folders.targets())


def test_labels_file_problems_are_named(tree, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"path": "a.jpg", "labels": "car"}\n')
    with pytest.raises(DatasetError, match="line 1: labels must be a list"):
        load_multilabel_dataset(str(tree), labels_file=str(bad), progress=False)
    twice = tmp_path / "twice.csv"
    twice.write_text("none/none-3-00000.jpg,\nnone/none-3-00000.jpg,car\n")
    with pytest.raises(DatasetError, match="more than once"):
        load_multilabel_dataset(str(tree), labels_file=str(twice), progress=False)


def test_a_missing_file_in_the_labels_file_is_skipped_not_fatal(tree, tmp_path):
    files = sorted(p.relative_to(tree) for p in tree.rglob("*.jpg"))
    labels = tmp_path / "labels.csv"
    rows = [f"{p},{';'.join(parse_label_set(p.parts[0]))}" for p in files] + ["gone/missing.jpg,car"]
    labels.write_text("\n".join(rows) + "\n")
    dataset = load_multilabel_dataset(str(tree), labels_file=str(labels), progress=False)
    assert len(dataset) == 16
    assert [s.reason for s in dataset.skipped] == ["unreadable"]
    assert "missing.jpg" in dataset.skipped[0].detail


def test_a_label_on_every_frame_cannot_be_learned(tmp_path):
    write_multilabel_dataset(tmp_path, {"car": 3, "bus_car": 3}, **SMALL)
    with pytest.raises(DatasetError, match="'car' is on 6 of 6"):
        load_multilabel_dataset(str(tmp_path), progress=False)


def test_camsort_results_shows_label_sets():
    import io

    from rich.console import Console

    from infra.ops.results_query import results_table

    items = [
        {"key": "frames/cam-01/a.jpg", "captured_at": "2026-12-01T02:28:30.195Z", "status": "ok",
         "labels": ["bus", "car"], "confidence": 0.97, "latency_ms": 100.0},
        {"key": "frames/cam-01/b.jpg", "captured_at": "2026-12-01T02:28:31.195Z", "status": "ok",
         "labels": [], "confidence": 0.31, "latency_ms": 90.0},
        {"key": "frames/cam-01/c.jpg", "captured_at": "2026-12-01T02:28:32.195Z", "status": "ok",
         "label": "bus", "confidence": 0.9, "latency_ms": 80.0},
    ]  # fmt: skip
    buffer = io.StringIO()
    Console(file=buffer, width=80, color_system=None).print(results_table(items, "cam-01"))
    rows = {line.split()[-2]: line for line in buffer.getvalue().splitlines() if ".jpg" in line}
    assert "{bus, car}" in rows["a.jpg"] and "{}" in rows["b.jpg"] and " bus " in rows["c.jpg"]
