"""The account (functions/archive/accounting.py): each version's category from what the stores hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from functions.archive.accounting import DeadLetter, ObjectVersion, dead_letters_in, reconcile

BUCKET = "frames-bucket"
T0 = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)


def version(key: str, *, vid: str | None = None, etag: str = "e1", minutes: int = 0, latest: bool = True):
    return ObjectVersion(
        key=key,
        version_id=vid,
        etag=etag,
        size=10,
        last_modified=T0 + timedelta(minutes=minutes),
        is_latest=latest,
    )


def item(key: str, object_version: str, status: str = "ok", reason: str | None = None, **extra):
    return {"object_id": f"{BUCKET}/{key}", "object_version": object_version, "key": key, "status": status,
            "reason": reason, **extra}  # fmt: skip


def run(versions, items=(), letters=(), *, grace=timedelta(minutes=15), window_results=()):
    results = {(i["object_id"], i["object_version"]): i for i in items}
    return reconcile(
        BUCKET, "frames/", list(versions), results, list(letters),
        since=T0, until=NOW, now=NOW, grace=grace, window_results=list(window_results),
    )  # fmt: skip


def categories(report):
    return {(v.key, v.version_id): v.category for v in report.versions}


def test_each_category():
    versions = [
        version("frames/c/ok.jpg", vid="v1"),
        version("frames/c/bad.txt", vid="v2"),
        version("frames/c/old.jpg", vid="v3", etag="e3", latest=False),
        version("frames/c/dead.jpg", vid="v4", etag="e4"),
        version("frames/c/young.jpg", vid="v5", minutes=50),
        version("frames/c/lost.jpg", vid="v6", etag="e6"),
    ]
    items = [
        item("frames/c/ok.jpg", "v1"),
        item("frames/c/bad.txt", "v2", "rejected", "not_jpeg_or_png"),
        item("frames/c/old.jpg", "v3", "rejected", "superseded"),
    ]
    report = run(versions, items, [DeadLetter("frames/c/dead.jpg", "e4", "v4")])
    assert categories(report) == {
        ("frames/c/ok.jpg", "v1"): "ok",
        ("frames/c/bad.txt", "v2"): "rejected",
        ("frames/c/old.jpg", "v3"): "superseded",
        ("frames/c/dead.jpg", "v4"): "dead_lettered",
        ("frames/c/young.jpg", "v5"): "pending",
        ("frames/c/lost.jpg", "v6"): "unaccounted",
    }
    assert [v.key for v in report.unaccounted] == ["frames/c/lost.jpg"]
    assert report.rejected_reasons == {"not_jpeg_or_png": 1}
    assert not report.clean
    assert report.to_json()["counts"]["unaccounted"] == 1


def test_a_version_is_found_under_its_etag_when_the_event_carried_no_version_id():
    # moto's events carry no versionId: the function keyed the item by ETag.
    report = run([version("frames/c/a.jpg", vid="v1", etag="abc")], [item("frames/c/a.jpg", "abc")])
    assert categories(report) == {("frames/c/a.jpg", "v1"): "ok"}
    assert report.clean


def test_identical_overwrite_found_under_a_shared_etag_is_superseded_by_its_owner():
    versions = [
        version("frames/c/a.jpg", vid="v1", etag="same", latest=False),
        version("frames/c/a.jpg", vid="v2", etag="same", minutes=1),
    ]
    report = run(versions, [item("frames/c/a.jpg", "same", version_id="v2")])
    assert categories(report) == {("frames/c/a.jpg", "v1"): "superseded", ("frames/c/a.jpg", "v2"): "ok"}
    assert report.duplicated == []


def test_two_results_for_one_version_or_a_result_and_a_dlq_entry_are_duplicates():
    versions = [
        version("frames/c/a.jpg", vid="v1", etag="e1"),
        version("frames/c/b.jpg", vid="v2", etag="e2"),
    ]
    items = [item("frames/c/a.jpg", "v1"), item("frames/c/a.jpg", "e1"), item("frames/c/b.jpg", "v2")]
    report = run(versions, items, [DeadLetter("frames/c/b.jpg", "e2", None)])
    assert sorted(v.key for v in report.duplicated) == ["frames/c/a.jpg", "frames/c/b.jpg"]
    assert not report.clean


def test_a_result_whose_version_is_gone_is_an_orphan_and_outside_the_window_is_not_classified():
    versions = [version("frames/c/a.jpg", vid="v1"), version("frames/c/early.jpg", vid="v0", minutes=-10)]
    window = [
        item("frames/c/a.jpg", "v1"),
        item("frames/c/early.jpg", "v0"),
        item("frames/c/deleted.jpg", "v9"),
    ]
    report = run(versions, window[:1], window_results=window)
    assert categories(report) == {("frames/c/a.jpg", "v1"): "ok"}
    assert [o["key"] for o in report.orphans] == ["frames/c/deleted.jpg"]
    assert not report.clean


def test_dead_letters_are_read_from_s3_notification_bodies_plain_or_sns_wrapped():
    body = json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {
        "key": "frames/c/red+flower.jpg", "eTag": '"e1"', "versionId": "v1"}}}]})  # fmt: skip
    expected = [DeadLetter("frames/c/red flower.jpg", "e1", "v1")]
    assert dead_letters_in(body) == expected
    assert dead_letters_in(json.dumps({"Type": "Notification", "Message": body})) == expected
    assert dead_letters_in("not json") == []
    assert dead_letters_in(json.dumps({"Event": "s3:TestEvent"})) == []
