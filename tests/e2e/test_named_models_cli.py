"""Named models through the commands a person types, against moto: upload, candidate, promote, rollback.

A stage runs the tiny model as ``default``; ``bay`` is uploaded under models/bay/<version>/,
pinned into the deploy file by ``candidate --live-uri``, promoted (forced past the agreement gate,
which no shadow answer has fed) and rolled back, each touching ``bay`` only.
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from camsort.cli import main
from functions.frames.manifest import read_manifest
from infra.deploy.deploy_file import NAMED_MODELS_VARIABLE
from infra.ops.promote import DeployConfig, ModelPin, Stage
from infra.ops.review import AwsTarget
from tests.functional.test_shadow import write_candidate

STAGE = "e2e"


def _cli(stack, stage, *args):
    common = ["--endpoint-url", stack.endpoint_url, "--table", stack.names.table]
    stage_args = ["--stage", stage.name, "--deploy-dir", str(stage.deploy_dir)]
    return CliRunner().invoke(main, [*args, *common, *stage_args], terminal_width=200)


def test_a_named_model_is_uploaded_pinned_promoted_and_rolled_back_alone(
    local_stack, stack_model_uri, tiny_model_dir, tmp_path
):
    bucket, s3 = local_stack.names.bucket, local_stack.client("s3")
    live = read_manifest(tiny_model_dir)
    stage = Stage(STAGE, tmp_path / "deploy", AwsTarget(local_stack.endpoint_url, local_stack.names.table, local_stack.names.review_table), local=True)  # fmt: skip
    default = ModelPin(live.model_version, stack_model_uri, live.model_sha256)
    stage.write(DeployConfig(live=default))

    uploaded = CliRunner().invoke(
        main,
        ["upload-model", str(tiny_model_dir), "--model", "bay", "--version", "v1", "--bucket", bucket,
         "--endpoint-url", local_stack.endpoint_url],
        terminal_width=200,
    )  # fmt: skip
    assert uploaded.exit_code == 0, uploaded.output
    bay_v1 = f"s3://{bucket}/models/bay/v1/"
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="models/bay/")["Contents"]} == {
        "models/bay/v1/model.onnx",
        "models/bay/v1/manifest.json",
    }
    assert (
        json.dumps({"bay": {"modelVersion": "v1", "modelUri": bay_v1, "modelSha256": live.model_sha256}})
        in uploaded.output
    )

    unpinned = _cli(local_stack, stage, "candidate", str(write_candidate(tmp_path / "c")), "--model", "bay")
    assert unpinned.exit_code == 1 and "runs no model named 'bay' yet; pass --live-uri" in unpinned.output

    candidate_dir = write_candidate(tmp_path / "candidate")
    made = _cli(
        local_stack,
        stage,
        "candidate",
        str(candidate_dir),
        "--model",
        "bay",
        "--live-uri",
        bay_v1,
        "--sample-rate",
        "0.5",
    )
    assert made.exit_code == 0, made.output
    config = stage.read()
    bay = config.slot("bay")
    candidate_sha = read_manifest(candidate_dir).model_sha256
    assert bay.live == ModelPin(live.model_version, bay_v1, live.model_sha256)
    assert bay.candidate == ModelPin(
        "tiny-candidate", f"s3://{bucket}/models/bay/tiny-candidate/", candidate_sha
    )
    assert config.live == default and config.candidate is None  # the default model is untouched
    assert s3.head_object(Bucket=bucket, Key="models/bay/tiny-candidate/model.onnx")["ContentLength"] > 0
    assert json.loads(config.function_environment()[NAMED_MODELS_VARIABLE]) == {
        "bay": {
            "uri": bay_v1,
            "sha256": live.model_sha256,
            "candidate_uri": bay.candidate.uri,
            "candidate_sha256": candidate_sha,
        }
    }

    refused = _cli(local_stack, stage, "promote", "--model", "bay", "--min-frames", "1")
    assert refused.exit_code == 1 and "not promoting bay tiny-candidate" in refused.output
    promoted = _cli(local_stack, stage, "promote", "--model", "bay", "--force", "--reason", "e2e")
    assert promoted.exit_code == 0, promoted.output
    assert "of model bay" in promoted.output and "FORCED" in promoted.output
    config = stage.read()
    assert (config.slot("bay").live, config.slot("bay").previous) == (bay.candidate, bay.live)
    assert config.slot("bay").candidate is None and config.live == default

    rolled = _cli(local_stack, stage, "rollback", "--model", "bay")
    assert rolled.exit_code == 0, rolled.output
    config = stage.read()
    assert (config.slot("bay").live, config.slot("bay").previous) == (bay.live, bay.candidate)
    assert config.live == default

    records = [json.loads(line) for line in (stage.deploy_dir / "promotions.jsonl").read_text().splitlines()]
    assert [(r["action"], r["model"], r["to"]["version"]) for r in records] == [
        ("promote", "bay", "tiny-candidate"),
        ("rollback", "bay", live.model_version),
    ]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="models/promotions/")["Contents"]]
    assert sorted(k.rsplit("-", 3)[1:] for k in keys) == [
        [STAGE, "bay", "promote.json"],
        [STAGE, "bay", "rollback.json"],
    ]

    unknown = _cli(local_stack, stage, "rollback", "--model", "gate")
    assert unknown.exit_code == 1 and "runs no model named 'gate' (it runs default, bay)" in unknown.output
