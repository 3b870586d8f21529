"""The soak's outcome and its account: the wrong-version check, the JSON report, the table."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from infra.local.stack import LocalStack
from infra.soak.uploads import BAD_KINDS


@dataclass
class SoakOutcome:
    settings: dict[str, Any]
    uploads: Counter[str] = field(default_factory=Counter)
    faults: dict[str, int] = field(default_factory=dict)
    kills: Counter[str] = field(default_factory=Counter)
    worker_exits: list[int | None] = field(default_factory=list)  # non-kill exits of worker processes
    audit: dict[str, Any] = field(default_factory=dict)
    wrong_version: list[str] = field(default_factory=list)
    versions_expected: int = 0
    duration_s: float = 0.0
    # Frames of cameras with regions: region_sets' figures (incomplete sets fail the soak).
    regions: dict[str, Any] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return self.audit["counts"]["unaccounted"] + self.audit["counts"]["pending"]

    @property
    def passed(self) -> bool:
        return (
            self.lost == 0
            and not self.audit["duplicated"]
            and not self.audit["orphans"]
            and not self.wrong_version
            and self.audit["versions"] == self.versions_expected
            and not self.regions.get("incomplete")
        )


def wrong_versions(stack: LocalStack) -> list[str]:
    """Results whose ETag differs from the ETag of the object version they are keyed by."""
    from infra.demo.accounting import scan_results

    etags: dict[tuple[str, str], str] = {}
    s3 = stack.client("s3")
    for page in s3.get_paginator("list_object_versions").paginate(
        Bucket=stack.names.bucket, Prefix=stack.names.frames_prefix
    ):
        for entry in page.get("Versions", []):
            etags[(entry["Key"], entry["VersionId"])] = entry["ETag"].strip('"')
    by_key: dict[str, set[str]] = {}
    for (key, _vid), etag in etags.items():
        by_key.setdefault(key, set()).add(etag)
    wrong = []
    for item in scan_results(stack):
        key, version = item["key"], item["object_version"]
        expected = {etags[(key, version)]} if (key, version) in etags else by_key.get(key, set())
        if item.get("etag") not in expected:
            wrong.append(f"{key}@{version}: result for ETag {item.get('etag')}")
    return wrong


def region_sets(stack: LocalStack) -> dict[str, Any]:
    """Every committed frame item of a camera with regions must have all its regions' items, of its
    own event (same sequencer): a kill between them is completed by the redelivery. Region items
    whose frame item is not there are counted (a frame superseded before its redelivery read it
    leaves them, unreferenced); they are not results of any frame."""
    from functions.frames.outputs import is_region_item, region_sort_key
    from infra.demo.accounting import scan_results

    items = scan_results(stack)
    by_key = {(item["object_id"], item["object_version"]): item for item in items}
    frames = [item for item in items if item.get("regions")]
    incomplete = []
    for frame in frames:
        for name in frame["regions"]:
            region = by_key.get((frame["object_id"], region_sort_key(frame["object_version"], name)))
            if region is None or region.get("sequencer", "") != frame.get("sequencer", ""):
                incomplete.append(f"{frame['key']}@{frame['object_version']}: region {name}")
    regions = [item for item in items if is_region_item(item)]
    committed = {
        (frame["object_id"], frame["object_version"]) for frame in items if not is_region_item(frame)
    }
    uncommitted = [
        item
        for item in regions
        if (item["object_id"], item["object_version"].split("#region#")[0]) not in committed
    ]
    return {
        "frames_with_regions": len(frames),
        "region_items": len(regions),
        "incomplete": incomplete,
        "uncommitted_region_items": len(uncommitted),
    }


def outcome_json(outcome: SoakOutcome) -> dict[str, Any]:
    return {
        "passed": outcome.passed,
        "lost": outcome.lost,
        "duplicated": len(outcome.audit["duplicated"]),
        "wrong_version": outcome.wrong_version,
        "versions_expected": outcome.versions_expected,
        "uploads": dict(outcome.uploads),
        "faults_injected": outcome.faults,
        "kills": dict(outcome.kills),
        "worker_exits_other_than_kills": outcome.worker_exits,
        "duration_s": outcome.duration_s,
        "regions": outcome.regions,
        "audit": outcome.audit,
        "settings": outcome.settings,
    }


def soak_table(outcome: SoakOutcome) -> Table:
    counts = outcome.audit["counts"]
    table = Table(title=f"Soak: {'PASSED' if outcome.passed else 'FAILED'} in {outcome.duration_s:.0f} s")
    table.add_column("what", style="bold")
    table.add_column("count", justify="right")
    uploads = outcome.uploads
    rows = [
        ("uploads (objects)", uploads["uploads"]),
        ("  of which bad (corrupt/empty/not an image/oversized)", sum(uploads[k] for k in BAD_KINDS)),
        ("  overwrites (a second version)", uploads["overwrites"]),
        ("  duplicated notifications", uploads["duplicate_notifications"]),
        ("object versions expected / listed", f"{outcome.versions_expected} / {outcome.audit['versions']}"),
        ("faults injected (all kinds)", sum(outcome.faults.values())),
        *[(f"  {name}", n) for name, n in sorted(outcome.faults.items())],
        ("worker processes SIGKILLed", sum(outcome.kills.values())),
        *[(f"  {point}", n) for point, n in sorted(outcome.kills.items())],
        ("accounted: ok", counts["ok"]),
        ("accounted: rejected", counts["rejected"]),
        ("accounted: superseded", counts["superseded"]),
        ("accounted: dead-lettered", counts["dead_lettered"]),
        ("LOST (no result, no DLQ entry)", outcome.lost),
        ("DUPLICATED (2+ results, or result + DLQ)", len(outcome.audit["duplicated"])),
        ("results for the WRONG version", len(outcome.wrong_version) + len(outcome.audit["orphans"])),
    ]
    if outcome.regions.get("frames_with_regions"):
        rows += [
            (
                "frames with regions / their region items",
                f"{outcome.regions['frames_with_regions']} / {outcome.regions['region_items']}",
            ),
            ("  INCOMPLETE region sets", len(outcome.regions["incomplete"])),
            ("  region items without their frame's commit", outcome.regions["uncommitted_region_items"]),
        ]
    for name, value in rows:
        table.add_row(name, str(value))
    return table
