"""`camsort camera regions set | show | preview` through click's runner, against moto's server."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from click.testing import CliRunner
from PIL import Image

from camsort.cli import main
from functions.stores.camera_configs import camera_config_key
from functions.stores.results import ResultsTable
from infra.deploy.topology import StackNames
from tests.fixtures.aws import aws_client, create_results_table

pytestmark = pytest.mark.e2e

REGIONS = {
    "regions": [
        {"name": "bay1", "box": [0.1, 0.5, 0.4, 0.9], "model": "bay"},
        {"name": "gate", "box": [0.6, 0.1, 0.9, 0.4]},
    ]
}


@pytest.fixture
def stage(moto_server, tmp_path):
    """A stage's bucket and results table, and a deploy file naming its model ``bay``."""
    name = f"regions-{uuid.uuid4().hex[:8]}"
    names = StackNames.for_stage(name)
    aws_client("s3", moto_server.endpoint_url).create_bucket(Bucket=names.bucket)
    create_results_table(aws_client("dynamodb", moto_server.endpoint_url), names.table)
    (tmp_path / f"{name}.json").write_text(json.dumps({"modelVersion": "v1", "models": {"bay": {}}}))
    return names, ["--endpoint-url", moto_server.endpoint_url, "--stage", name]


def run(*args: str, ok: bool = True) -> str:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(main, list(args), catch_exceptions=False)
    assert (result.exit_code == 0) == ok, result.output
    return result.output


def write(tmp_path, data, name="regions.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_set_then_show_reads_back_what_the_function_reads(stage, tmp_path, moto_server):
    names, target = stage
    deploy = ["--deploy-dir", str(tmp_path)]
    output = run("camera", "regions", "set", "cam-7", "--file", write(tmp_path, REGIONS), *deploy, *target)
    assert "2 region(s) set" in output and "CAMSORT_CAMERA_CONFIG_TTL_SECONDS" in output
    stored = aws_client("s3", moto_server.endpoint_url).get_object(
        Bucket=names.bucket, Key=camera_config_key("cam-7")
    )
    normal = {
        "regions": [
            {"name": "bay1", "box": [0.1, 0.5, 0.4, 0.9], "model": "bay"},
            {"name": "gate", "box": [0.6, 0.1, 0.9, 0.4], "model": "default"},  # the normal form
        ]
    }
    assert json.loads(stored["Body"].read()) == normal
    assert json.loads(run("camera", "regions", "show", "cam-7", "--json", *target)) == normal
    table = run("camera", "regions", "show", "cam-7", *target)
    assert "bay1" in table and "[0.1, 0.5, 0.4, 0.9]" in table and "bay" in table
    assert "has no regions" in run("camera", "regions", "show", "cam-8", *target)


@pytest.mark.parametrize(
    ("regions", "message"),
    [
        ({"regions": [{"name": "bay1", "box": [0.1, 0.5, 1.4, 0.9]}]}, "is outside the frame"),
        (
            {"regions": [{"name": "bay1", "box": [0.1, 0.5, 0.4, 0.9], "model": "gate"}]},
            "unknown model 'gate'",
        ),
        ({"regions": [REGIONS["regions"][1], REGIONS["regions"][1]]}, "the name 'gate' is used twice"),
    ],
)
def test_set_refuses_what_the_function_would_refuse_in_one_line_and_writes_nothing(
    stage, tmp_path, moto_server, regions, message
):
    names, target = stage
    path = write(tmp_path, regions)
    output = run(
        "camera", "regions", "set", "cam-9", "--file", path, "--deploy-dir", str(tmp_path), *target, ok=False
    )
    assert message in output and path in output and "Traceback" not in output
    assert len(output.strip().splitlines()) == 1
    listed = aws_client("s3", moto_server.endpoint_url).list_objects_v2(
        Bucket=names.bucket, Prefix="cameras/"
    )
    assert listed.get("KeyCount", 0) == 0


def test_without_a_deploy_file_only_default_is_known_unless_models_are_named(stage, tmp_path):
    _names, target = stage
    path = write(tmp_path, REGIONS)
    assert "unknown model 'bay'" in run(
        "camera", "regions", "set", "cam-9", "--file", path, *target, ok=False
    )
    assert "2 region(s) set" in run(
        "camera", "regions", "set", "cam-9", "--file", path, "--models", "bay", *target
    )


def test_preview_draws_the_boxes_on_the_cameras_latest_frame(stage, tmp_path, moto_server):
    names, target = stage
    s3 = aws_client("s3", moto_server.endpoint_url)
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), (0, 0, 0)).save(buffer, "PNG")
    table = ResultsTable(names.table, aws_client("dynamodb", moto_server.endpoint_url))
    for second, status in ((1, "ok"), (2, "rejected")):  # the newest is rejected: the ok one is drawn
        key = f"frames/cam-5/{second}.png"
        put = s3.put_object(Bucket=names.bucket, Key=key, Body=buffer.getvalue())
        table.put_result(
            {
                "object_id": f"{names.bucket}/{key}",
                "object_version": put["ETag"].strip('"'),
                "bucket": names.bucket,
                "key": key,
                "camera_id": "cam-5",
                "captured_at": f"2026-11-22T08:00:0{second}.000Z",
                "status": status,
                "sequencer": "",
            }
        )
    run("camera", "regions", "set", "cam-5", "--file", write(tmp_path, REGIONS), "--models", "bay", *target)
    out = tmp_path / "preview.png"

    output = run("camera", "regions", "preview", "cam-5", "--out", str(out), *target)

    assert "frames/cam-5/1.png" in output
    image = Image.open(out).convert("RGB")
    assert image.size == (400, 300)
    # bay1's box [0.1, 0.5, 0.4, 0.9] is outlined at x = 40 from y = 150 to 270; inside it stays black.
    assert image.getpixel((40, 220)) != (0, 0, 0) and image.getpixel((100, 230)) == (0, 0, 0)
    assert image.getpixel((240, 80)) != (0, 0, 0)  # gate's left edge (x = 240)
    assert image.getpixel((200, 20)) == (0, 0, 0)  # outside every box


def test_preview_of_a_camera_without_frames_says_what_to_do(stage):
    _names, target = stage
    output = run("camera", "regions", "preview", "cam-none", *target, ok=False)
    assert "no classified frame" in output and "upload a frame" in output
