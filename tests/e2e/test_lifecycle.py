"""The model lifecycle on the local stack (moto over HTTP + the SQS worker + the real handler).

Shadow results, a candidate that fails, review marking and export, gate refusal, forced
promotion, and promote-then-rollback, all through the `camsort` commands a person would type.
The live model is the tiny colour model; the candidate is the same graph with its labels rotated
(red -> car), so which model answered is visible in every result.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from camsort.cli import main
from functions import env
from functions.frames.manifest import read_manifest
from infra.local.function_env import function_environment as worker_environment
from infra.local.worker import SqsWorker
from infra.ops.promote import DeployConfig, ModelPin, Stage, function_environment
from infra.ops.review import AwsTarget
from tests.fixtures.local_stack import LENIENT_TIMEOUT_S, TEST_MAX_BYTES
from tests.functional.test_shadow import write_candidate

pytestmark = pytest.mark.e2e
# Nothing here asserts redeliveries: a slow batch on a busy machine must not count as a timeout.
lenient = pytest.mark.parametrize("function_timeout_s", [LENIENT_TIMEOUT_S])
STAGE = "e2e"
RED, GREEN, BLUE, GREY = (255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128)


def jpeg(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), colour).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture
def lifecycle(local_stack, stack_model_uri, tiny_model_dir, tmp_path):
    """A stage whose deploy file pins the tiny model as live; a runner that drains the queue."""
    deploy_dir = tmp_path / "deploy"
    live = read_manifest(tiny_model_dir)
    target = AwsTarget(local_stack.endpoint_url, local_stack.names.table, local_stack.names.review_table)
    stage = Stage(STAGE, deploy_dir, target, local=True)
    stage.write(DeployConfig(live=ModelPin(live.model_version, stack_model_uri, live.model_sha256)))

    def run_worker():
        environment = worker_environment(
            local_stack,
            "overridden by the deploy file",
            extra={
                env.MAX_BYTES: str(TEST_MAX_BYTES),
                env.MODEL_CACHE_DIR: str(tmp_path / "function-model-cache"),
                env.ONNX_THREADS: "1",
                env.WRITE_TAGS: "true",  # tags on, so that "the candidate never tags" is seen
            }
            | function_environment(deploy_dir, STAGE),
        )
        return SqsWorker(local_stack, environment).run_until_drained(idle_s=0.5, max_duration_s=90)

    return stage, run_worker


def cli(stage: Stage, *args: str):
    common = ["--endpoint-url", stage.target.endpoint_url, "--table", stage.target.results_table]
    stage_args = ["--stage", stage.name, "--deploy-dir", str(stage.deploy_dir)]
    command, *rest = args
    if command in ("candidate", "promote", "rollback"):
        return CliRunner().invoke(main, [command, *rest, *common, *stage_args])
    return CliRunner().invoke(main, [*args, *common])


def upload(local_stack, frames: dict[str, tuple]) -> None:
    s3 = local_stack.client("s3")
    for key, colour in frames.items():
        s3.put_object(Bucket=local_stack.names.bucket, Key=f"frames/{key}", Body=jpeg(colour))


def results(local_stack) -> dict[str, dict]:
    from functions.stores.results import deserialize_item

    items = local_stack.client("dynamodb").scan(TableName=local_stack.names.table)["Items"]
    return {item["key"]: item for item in map(deserialize_item, items)}


@lenient
def test_shadow_review_gates_promote_and_rollback(local_stack, lifecycle, tmp_path):
    stage, run_worker = lifecycle
    candidate_dir = write_candidate(tmp_path / "candidate")
    made = cli(stage, "candidate", str(candidate_dir), "--sample-rate", "1")
    assert made.exit_code == 0, made.output
    config = stage.read()
    assert config.candidate.version == "tiny-candidate"
    assert config.candidate.uri == f"s3://{local_stack.names.bucket}/models/tiny-candidate/"

    upload(
        local_stack,
        {"cam-01/red.jpg": RED, "cam-01/grey.jpg": GREY, "cam-02/green.jpg": GREEN, "cam-02/blue.jpg": BLUE},
    )
    stats = run_worker()
    assert stats.reported_failures == 0 and stats.failed_batches == 0  # (+1 message: s3:TestEvent)

    # Shadow results beside the live ones; the candidate never tags.
    found = results(local_stack)
    red = found["frames/cam-01/red.jpg"]
    assert (red["label"], red["model_version"]) == ("bus", "tiny-1")
    assert (red["shadow_label"], red["shadow_model_version"]) == ("car", "tiny-candidate")
    assert all("shadow_label" in item for item in found.values())
    tags = local_stack.client("s3").get_object_tagging(
        Bucket=local_stack.names.bucket, Key="frames/cam-01/red.jpg"
    )
    assert {t["Key"]: t["Value"] for t in tags["TagSet"]}["camsort-label"] == "bus"

    # Review: the grey frame (unknown) was marked and exports with the model's guess.
    exported = cli(
        stage, "review", "export", str(tmp_path / "review"), "--review-table", local_stack.names.review_table
    )
    assert exported.exit_code == 0, exported.output
    files = sorted(p.name for p in (tmp_path / "review" / "_unlabeled" / "cam-01").iterdir())
    assert len(files) == 1 and files[0].endswith("_grey.jpg")
    with (tmp_path / "review" / "_unlabeled" / "guesses.csv").open() as handle:
        assert [(r["label"], r["review_reason"]) for r in csv.DictReader(handle)] == [("unknown", "unknown")]

    # compare: 1 of 4 agree (grey: unknown for both).
    compared = cli(stage, "compare", "--since", "1h", "--json")
    assert compared.exit_code == 0, compared.output
    assert (json.loads(compared.output)["frames"], json.loads(compared.output)["agreeing"]) == (4, 1)

    # Gates: too few frames by default, too little agreement with a low frame floor.
    refused = cli(stage, "promote")
    assert refused.exit_code == 1 and "on 4 frames (needs >= 0.9 on >= 500)" in refused.output
    refused = cli(stage, "promote", "--min-frames", "3")
    assert refused.exit_code == 1 and "agreement 0.250" in refused.output
    assert stage.read().live.version == "tiny-1"  # nothing changed

    forced = cli(stage, "promote", "--force", "--reason", "e2e")
    assert forced.exit_code == 0, forced.output
    config = stage.read()
    assert (config.live.version, config.previous.version, config.candidate) == (
        "tiny-candidate",
        "tiny-1",
        None,
    )
    record = json.loads((stage.deploy_dir / "promotions.jsonl").read_text().splitlines()[-1])
    assert (record["action"], record["forced"], record["reason"]) == ("promote", True, "e2e")
    assert record["who"]["iam"].startswith("arn:aws:") and record["gates"][0]["passed"] is False
    stored = local_stack.client("s3").list_objects_v2(
        Bucket=local_stack.names.bucket, Prefix="models/promotions/"
    )
    assert [o["Key"].endswith(f"-{STAGE}-promote.json") for o in stored["Contents"]] == [True]

    # The promoted model is live for frames processed from now on...
    upload(local_stack, {"cam-01/red-after-promote.jpg": RED})
    run_worker()
    after = results(local_stack)["frames/cam-01/red-after-promote.jpg"]
    assert (after["label"], after["model_version"]) == ("car", "tiny-candidate")
    assert "shadow_label" not in after  # no candidate any more

    # ...and rollback brings the previous one back.
    rolled = cli(stage, "rollback", "--reason", "e2e")
    assert rolled.exit_code == 0, rolled.output
    assert (stage.read().live.version, stage.read().previous.version) == ("tiny-1", "tiny-candidate")
    upload(local_stack, {"cam-01/red-after-rollback.jpg": RED})
    run_worker()
    back = results(local_stack)["frames/cam-01/red-after-rollback.jpg"]
    assert (back["label"], back["model_version"]) == ("bus", "tiny-1")
    actions = [
        json.loads(line)["action"]
        for line in (stage.deploy_dir / "promotions.jsonl").read_text().splitlines()
    ]
    assert actions == ["promote", "rollback"]


@lenient
def test_a_broken_candidate_never_fails_the_live_path(local_stack, lifecycle, tmp_path):
    stage, run_worker = lifecycle
    config = stage.read()
    # Pinned to a sha256 the artifact does not have (as if the file were swapped in S3).
    candidate_dir = write_candidate(tmp_path / "candidate")
    cli(stage, "candidate", str(candidate_dir), "--sample-rate", "1")
    stage.write(
        DeployConfig(
            live=config.live,
            candidate=ModelPin("tiny-candidate", stage.read().candidate.uri, "0" * 64),
            shadow_sample_rate=1.0,
        )
    )
    upload(local_stack, {"cam-01/red.jpg": RED})
    stats = run_worker()
    item = results(local_stack)["frames/cam-01/red.jpg"]
    assert stats.reported_failures == 0 and stats.failed_batches == 0
    assert (item["status"], item["label"]) == ("ok", "bus") and "shadow_label" not in item

    # A candidate whose artifact is missing altogether.
    stage.write(
        DeployConfig(
            live=config.live,
            candidate=ModelPin("gone", f"s3://{local_stack.names.bucket}/models/gone/", "0" * 64),
            shadow_sample_rate=1.0,
        )
    )
    upload(local_stack, {"cam-01/blue.jpg": BLUE})
    stats = run_worker()
    item = results(local_stack)["frames/cam-01/blue.jpg"]
    assert stats.reported_failures == 0 and (item["status"], item["label"]) == ("ok", "empty")
    assert not [k for k in item if k.startswith("shadow_")]
    assert not Path(stage.deploy_dir / "promotions.jsonl").exists()


def test_demo_shadow_deploys_a_candidate_and_prints_the_comparison(moto_server, tiny_model_dir, tmp_path):
    import re
    import uuid

    candidate_dir = write_candidate(tmp_path / "candidate")
    stage = f"demo-shadow-{uuid.uuid4().hex[:8]}"
    demo = CliRunner().invoke(
        main,
        ["demo", "--model", str(tiny_model_dir), "--candidate", str(candidate_dir), "--cameras", "2",
         "--frames", "3", "--rate", "0", "--no-bad-objects", "--no-regions", "--endpoint-url", moto_server.endpoint_url,
         "--stage", stage, "--cache-dir", str(tmp_path)],
    )  # fmt: skip
    assert demo.exit_code == 0, demo.output
    assert "Shadow candidate tiny-candidate" in demo.output
    text = " ".join(demo.output.split())  # rich wraps titles to the terminal's width
    assert "live tiny-1 vs candidate tiny-candidate" in text
    assert "confusion: live (rows) x candidate (columns)" in text
    total = re.search(r"│ all\s*│\s*(\d+) │\s*([\d.]+)% │", demo.output)
    assert total and int(total.group(1)) == 6  # 2 cameras x 3 frames, every invocation scored
    assert (tmp_path / "demo" / "compare.html").read_text().count("<tr>") > 3
    assert json.loads((tmp_path / "demo" / "deploy" / f"{stage}.json").read_text())["candidateVersion"] == (
        "tiny-candidate"
    )
