"""A named model's backfill, over a moto server with the real handler and `camsort backfill`:
`--model bay --model-version bay-2` re-answers the regions of each frame's camera that ``bay``
answers, with bay-2 (pinned by sha256), beside the live results; a camera without a ``bay``
region succeeds with a note and gets nothing; the default model's backfill is as before.

The frame is four colour quadrants (tests/functional/test_regions_function.py): ``default`` answers
red -> bus, green -> car, blue -> empty, grey -> unknown; bay-1 (live) red -> occupied, green -> free,
blue -> dark; bay-2 has bay-1's labels reversed: red -> dark, green -> free, blue -> occupied.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from camsort.cli import main
from functions.frames.manifest import read_manifest
from functions.frames.outputs import region_sort_key
from functions.stores.camera_configs import camera_config_key
from functions.stores.results import ResultsTable, result_sort_key
from infra.demo.accounting import scan_results
from infra.local.batch_report import read_report
from infra.local.stack import pinned_sha256, upload_model
from infra.ops.compare import shadow_items
from infra.soak.report import region_sets
from tests.e2e.test_backfill import SECOND, backfill, jpeg
from tests.fixtures.tiny_model import TINY_LABELS, write_tiny_model
from tests.functional.test_handler import RED
from tests.functional.test_regions_function import BLUE, GREEN, GREY, REGIONS, quadrants

pytestmark = pytest.mark.e2e

BAY_LABELS = ["occupied", "free", "dark"]
LIVE_BAY, JOB_BAY = "bay-1", "bay-2"
# Per frame of cam-r: the quadrants' colours, and what bay-2 answers for bay's regions q2 and q3.
FRAMES = {
    "frames/cam-r/20261122T120000000Z.jpg": ((RED, GREEN, BLUE, GREY), {"q2": "free", "q3": "occupied"}),
    "frames/cam-r/20261122T120100000Z.jpg": ((RED, BLUE, GREEN, GREY), {"q2": "occupied", "q3": "free"}),
}
WHOLE = "frames/cam-w/20261122T120000000Z.jpg"  # a camera without regions


def scan(stack) -> dict[tuple[str, str], dict]:
    return {(item["object_id"], item["object_version"]): item for item in scan_results(stack)}


def uploaded(s3, bucket: str, key: str, body: bytes) -> str:
    """The frame's version as a Batch Operations task keys its results: the version id, else the ETag."""
    response = s3.put_object(Bucket=bucket, Key=key, Body=body)
    return response.get("VersionId") or response["ETag"].strip('"')


def test_a_named_models_backfill_answers_its_regions_beside_the_live_results(
    local_stack, stack_model_uri, moto_server, tmp_path
):
    stack, endpoint = local_stack, moto_server.endpoint_url
    s3, bucket = stack.client("s3"), stack.names.bucket
    uris = {}
    for version, labels in ((LIVE_BAY, BAY_LABELS), (JOB_BAY, list(reversed(BAY_LABELS)))):
        directory = write_tiny_model(tmp_path / version, labels, version)
        uris[version] = upload_model(
            stack, directory, version=f"bay/{read_manifest(directory).model_version}"
        )
    named = json.dumps({"bay": {"uri": uris[LIVE_BAY], "sha256": pinned_sha256(uris[LIVE_BAY])}})
    function = ("--function-named-models", named)  # the stage's CAMSORT_NAMED_MODELS, as deployed

    # The archive, uploaded while no notification was configured; cam-r has regions, cam-w none.
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    s3.put_object(Bucket=bucket, Key=camera_config_key("cam-r"), Body=json.dumps(REGIONS).encode())
    versions = {}
    for key, (colours, _answers) in FRAMES.items():
        versions[key] = uploaded(s3, bucket, key, quadrants(colours=colours))
    versions[WHOLE] = uploaded(s3, bucket, WHOLE, jpeg(RED))

    # 1. The live results (the live models, bay-1 for bay's regions), then the default model's v2.
    live = backfill(endpoint, stack, stack_model_uri, *function)
    assert (live["selected"], live["succeeded"], live["failed"]) == (3, 3, 0)
    default_dir = write_tiny_model(tmp_path / "second", list(reversed(TINY_LABELS)), SECOND)
    upload_model(stack, default_dir, version=SECOND)
    second = backfill(endpoint, stack, stack_model_uri, "--model-version", SECOND, *function)
    assert (second["selected"], second["succeeded"], second["failed"]) == (3, 3, 0)
    before = scan(stack)
    # The default model's v2 answers every region of cam-r (bay's by the live bay-1), as before.
    for key in FRAMES:
        object_id, v2 = f"{bucket}/{key}", result_sort_key(versions[key], SECOND)
        assert set(before[(object_id, v2)]["regions"]) == {"q1", "q2", "q3", "q4"}
        bay_region = before[(object_id, region_sort_key(v2, "q2"))]
        assert (bay_region["model_name"], bay_region["model_version"]) == ("bay", LIVE_BAY)
    assert len(before) == 2 * (2 * 5 + 1)  # live and v2: per regions frame 4 regions + frame, 1 whole

    # 2. bay-2 over the whole prefix: bay's regions of cam-r, nothing for cam-w.
    job = backfill(endpoint, stack, stack_model_uri, "--model", "bay", "--model-version", JOB_BAY, *function)
    assert (job["selected"], job["succeeded"], job["failed"]) == (3, 3, 0)
    rows = {
        r.key: r.message for r in read_report(s3, bucket, f"batch/reports/job-{job['job_id']}/manifest.json")
    }
    assert (
        rows[WHOLE]
        == "ok: camera cam-w has no region answered by model bay: nothing to answer, nothing written"
    )
    after = scan(stack)
    assert {key: after[key] for key in before} == before  # the live and the v2 results untouched
    added = {key: item for key, item in after.items() if key not in before}
    assert len(added) == 2 * 3  # per regions frame: q2, q3 and their commit item
    for key, (_colours, answers) in FRAMES.items():
        object_id, sort_key = f"{bucket}/{key}", result_sort_key(versions[key], JOB_BAY, "bay")
        commit = added[(object_id, sort_key)]
        assert commit["regions"] == answers and "camera_id" not in commit and "captured_at" not in commit
        assert (commit["model_name"], commit["model_version"]) == ("bay", JOB_BAY)
        for region, label in answers.items():
            item = added[(object_id, region_sort_key(sort_key, region))]
            assert (item["label"], item["model_name"], item["model_version"]) == (label, "bay", JOB_BAY)
            # Out of every per-camera read, as the default model's other versions are.
            assert "region_camera_id" not in item and "review_reason" not in item
    # Every committed regions item has its whole set; no region item lacks its commit item.
    assert (region_sets(stack)["incomplete"], region_sets(stack)["uncommitted_region_items"]) == ([], 0)
    # The camera index (and so the audit) still sees one live item per frame.
    table = ResultsTable(stack.names.table, stack.client("dynamodb"))
    assert [i["object_version"] for i in table.query_camera("cam-r")] == [versions[k] for k in FRAMES]

    # 3. `camsort results --model bay --model-version bay-2` reads them through the live index.
    shown = CliRunner().invoke(
        main,
        ["results", "--camera", "cam-r", "--endpoint-url", endpoint, "--table", stack.names.table]
        + ["--model", "bay", "--model-version", JOB_BAY, "--json"],
    )
    assert shown.exit_code == 0, shown.output
    assert {r["key"]: r["regions"] for r in json.loads(shown.output)} == {
        k: a for k, (_c, a) in FRAMES.items()
    }

    # `camsort compare --model bay` reads live region items with a candidate's answer: none of these.
    since = datetime(2000, 1, 1, tzinfo=UTC)
    assert shadow_items(stack.client("dynamodb"), stack.names.table, since, model_name="bay") == []

    # 4. Re-running writes nothing new; --only-missing selects only the frame bay never answers.
    again = backfill(
        endpoint, stack, stack_model_uri, "--model", "bay", "--model-version", JOB_BAY, *function
    )
    rows = {
        r.key: r.message
        for r in read_report(s3, bucket, f"batch/reports/job-{again['job_id']}/manifest.json")
    }
    assert {rows[key] for key in FRAMES} == {"duplicate: result already recorded"}
    assert scan(stack) == after
    missing = backfill(
        endpoint,
        stack,
        stack_model_uri,
        "--model",
        "bay",
        "--model-version",
        JOB_BAY,
        "--only-missing",
        *function,
    )
    assert (missing["selected"], missing["succeeded"]) == (1, 1)

    # The audit accounts for each frame by its live item alone: 3 ok, nothing duplicated or orphaned.
    stage = bucket.removeprefix("camsort-frames-")
    audit = CliRunner().invoke(
        main, ["audit", "--stage", stage, "--endpoint-url", endpoint, "--grace", "0s", "--json"]
    )
    assert audit.exit_code == 0, audit.output
    report = json.loads(audit.output)
    assert (report["counts"]["ok"], report["counts"]["unaccounted"]) == (3, 0)
    assert (report["duplicated"], report["orphans"]) == ([], [])
