"""compare_items: agreement, per camera, confusion, worst disagreements, one candidate at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from camsort.commands.compare import parse_since
from infra.ops.compare import compare_items, comparison_html


def item(
    camera, live, candidate, *, live_p=0.9, cand_p=0.9, version="c2", at="2026-11-22T08:00:00.000Z", key=None
):
    other = {"bus": "car", "car": "bus", "unknown": "bus"}
    return {
        "status": "ok",
        "bucket": "b",
        "key": key or f"frames/{camera}/{live}-{candidate}-{live_p}.jpg",
        "camera_id": camera,
        "captured_at": "2026-11-22T07:00:00.000Z",
        "model_version": "v1",
        "label": live,
        "confidence": live_p,
        "probabilities": {live if live != "unknown" else "bus": live_p, other[live]: 1 - live_p},
        "shadow_label": candidate,
        "shadow_confidence": cand_p,
        "shadow_probabilities": {
            candidate if candidate != "unknown" else "bus": cand_p,
            other[candidate]: 1 - cand_p,
        },
        "shadow_model_version": version,
        "shadow_model_sha256": "f" * 64,
        "shadow_at": at,
    }


def test_agreement_confusion_and_worst():
    items = [
        item("cam-1", "bus", "bus"),
        item("cam-1", "bus", "car", cand_p=0.99),
        item("cam-1", "car", "car"),
        item("cam-2", "car", "bus", cand_p=0.6),
        item("cam-2", "bus", "bus"),
        {"status": "ok", "label": "bus"},  # never shadow-scored: not part of it
    ]
    comparison = compare_items(items, worst=2)
    assert (comparison.frames, comparison.agreeing, comparison.agreement) == (5, 3, 0.6)
    assert comparison.per_camera == {
        "cam-1": {"frames": 3, "agreeing": 2, "agreement": 2 / 3},
        "cam-2": {"frames": 2, "agreeing": 1, "agreement": 0.5},
    }
    assert comparison.confusion == {"bus": {"bus": 2, "car": 1}, "car": {"bus": 1, "car": 1}}
    assert [(f.live_label, f.candidate_label) for f in comparison.worst] == [("bus", "car"), ("car", "bus")]
    assert comparison.worst[0].distance > comparison.worst[1].distance
    assert comparison.live_versions == ["v1"] and comparison.candidate_version == "c2"


def test_only_one_candidate_version_the_latest_by_default():
    items = [
        item("cam-1", "bus", "car", version="c1", at="2026-11-22T08:00:00.000Z"),
        item("cam-1", "bus", "bus", version="c2", at="2026-11-22T09:00:00.000Z"),
    ]
    latest = compare_items(items)
    assert (latest.candidate_version, latest.frames, latest.agreement) == ("c2", 1, 1.0)
    assert latest.other_candidates == {"c1": 1}
    older = compare_items(items, candidate_version="c1")
    assert (older.frames, older.agreement) == (1, 0.0)


def test_html_lists_the_disagreements_with_their_thumbnails():
    comparison = compare_items([item("cam-1", "bus", "car", key="frames/cam-1/x<y>.jpg")])
    page = comparison_html(comparison, {"frames/cam-1/x<y>.jpg": "data:image/jpeg;base64,AAAA"})
    assert '<img src="data:image/jpeg;base64,AAAA">' in page
    assert "x&lt;y&gt;.jpg" in page and "0.0%" in page


def test_since_takes_a_time_or_a_duration():
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("2026-11-22T07:00:00Z", now) == datetime(2026, 11, 22, 7, tzinfo=UTC)
