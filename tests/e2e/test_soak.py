"""The soak, reduced (~200 frames): faults, kills, duplicates, bad objects, overwrites; nothing lost."""

from __future__ import annotations

import json

import pytest

from infra.soak.report import SoakOutcome
from infra.soak.run import SoakSettings, run_soak
from infra.soak.workers import KILL_POINTS

pytestmark = pytest.mark.e2e


def test_reduced_soak_loses_nothing(moto_server, tiny_model_dir, tmp_path):
    settings = SoakSettings(
        frames=200,
        cameras=20,
        workers=2,
        kills=3,
        seed=0,
        model_dir=tiny_model_dir,
        endpoint_url=moto_server.endpoint_url,
        report_path=tmp_path / "soak.json",
        max_duration_s=240,
    )
    outcome = run_soak(settings)

    # What was thrown at it actually happened.
    assert sum(outcome.kills.values()) >= 3 and set(outcome.kills) == set(KILL_POINTS)
    assert sum(outcome.faults.values()) >= 10
    assert outcome.uploads["duplicate_notifications"] >= 5 and outcome.uploads["overwrites"] >= 1
    assert sum(outcome.uploads[k] for k in ("truncated", "empty", "not_an_image", "oversized")) >= 2
    # And nothing was lost, duplicated or written for the wrong version.
    assert outcome.audit["versions"] == outcome.versions_expected == 200 + outcome.uploads["overwrites"]
    assert outcome.lost == 0
    assert (
        outcome.audit["duplicated"] == [] and outcome.audit["orphans"] == [] and outcome.wrong_version == []
    )
    assert outcome.passed
    report = json.loads(settings.report_path.read_text())
    assert report["passed"] is True and report["lost"] == 0 and report["duplicated"] == 0


def test_any_loss_fails_the_soak():
    counts = dict.fromkeys(("ok", "rejected", "superseded", "dead_lettered", "pending", "unaccounted"), 0)
    clean = {"counts": counts | {"ok": 3}, "duplicated": [], "orphans": [], "versions": 3}
    assert SoakOutcome(settings={}, audit=clean, versions_expected=3).passed
    lost = {**clean, "counts": counts | {"ok": 2, "unaccounted": 1}}
    assert not SoakOutcome(settings={}, audit=lost, versions_expected=3).passed
    assert not SoakOutcome(
        settings={}, audit={**clean, "duplicated": [{"key": "k"}]}, versions_expected=3
    ).passed
    assert not SoakOutcome(settings={}, audit=clean, versions_expected=4).passed  # a version never listed
    assert not SoakOutcome(settings={}, audit=clean, versions_expected=3, wrong_version=["k@v"]).passed


def test_reduced_soak_with_a_regions_camera_loses_nothing_and_completes_every_region_set(
    moto_server, tiny_model_dir, tmp_path
):
    settings = SoakSettings(
        frames=100,
        cameras=5,
        workers=2,
        kills=3,
        seed=1,
        model_dir=tiny_model_dir,
        endpoint_url=moto_server.endpoint_url,
        report_path=tmp_path / "soak.json",
        max_duration_s=240,
        regions_cameras=1,  # cam-01: 4 regions, so 4 region items before each of its frame items
    )
    outcome = run_soak(settings)

    assert sum(outcome.kills.values()) >= 3
    assert outcome.lost == 0 and outcome.audit["duplicated"] == [] and outcome.audit["orphans"] == []
    # The audit counts frames: one per object version, whatever the regions.
    assert outcome.audit["versions"] == outcome.versions_expected == 100 + outcome.uploads["overwrites"]
    regions = outcome.regions
    assert regions["frames_with_regions"] >= 15 and regions["incomplete"] == []
    assert regions["region_items"] == 4 * regions["frames_with_regions"] + regions["uncommitted_region_items"]
    assert outcome.passed
