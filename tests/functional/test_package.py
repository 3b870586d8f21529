"""The Lambda artifact: real pinned wheels for the Lambda platform, pruned, zipped, checked.

The artifact is built for CPython 3.12 on Linux (arm64 as deployed, x86_64 for the run
check). Its compiled wheels cannot import into this venv's Python 3.11, so the checks are:

* arm64: wheel tags (cp312 / abi3 / pure) and the ELF machine of every shared library, the
  exact pinned versions, what is left out, the size limits, byte-for-byte reproducibility;
* x86_64, when a python3.12 exists on this (x86_64) machine: the artifact, built with the
  tiny test model embedded (``--embed-model``), is unzipped and put alone on ``sys.path`` of
  ``python3.12 -I -S`` (no site-packages); the packaged ``functions.handler.lambda_handler``
  loads the embedded model and classifies a frame end to end against the moto server,
  exactly as Lambda would call it.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import textwrap
import zipfile

import pytest
from click.testing import CliRunner
from PIL import Image

from camsort.cli import main as camsort_main
from functions.errors import ConfigurationError
from functions.frames.manifest import read_manifest, sha256_file
from infra.deploy import package as lambda_package_module
from infra.deploy.package import (
    LAMBDA_UNZIPPED_LIMIT_BYTES,
    PROJECT_ROOT,
    PackageTooLargeError,
    build_lambda_package,
    check_size,
    elf_machine,
    measure_zip,
    pinned_requirements,
    platform_tags,
    wheel_tags,
)
from infra.local.moto_server import LOCAL_AWS_ENV
from tests.fixtures.aws import aws_client, unique_name

REQUIREMENTS = PROJECT_ROOT / "requirements.txt"
# Project folders that must never ship: the function imports functions/ only.
NOT_SHIPPED = ("training/", "export/", "infra/", "camsort/", "tests/", "bench/", "node_modules/")
PRUNED = ("onnxruntime/tools/", "onnxruntime/transformers/", "onnxruntime/quantization/", "bin/")


def _pins() -> dict[str, str]:
    return {
        name.lower().replace("_", "-"): version
        for name, version in (
            line.split("==") for line in pinned_requirements(REQUIREMENTS, include_boto=True)
        )
    }


# --- pure parts ----------------------------------------------------------------------------


def test_platform_tags_cover_manylinux_up_to_amazon_linux_2023_glibc():
    tags = platform_tags("arm64")
    assert tags[0] == "manylinux2014_aarch64"
    assert "manylinux_2_28_aarch64" in tags  # onnxruntime 1.31's only aarch64 wheel tag
    assert tags[-1] == "manylinux_2_34_aarch64"  # AL2023's glibc; nothing newer may run
    assert all(tag.endswith("_x86_64") for tag in platform_tags("x86_64"))


def test_unknown_architecture_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="arm32"):
        platform_tags("arm32")


def test_runtime_boto_drops_exactly_the_runtime_provided_distributions():
    with_boto = pinned_requirements(REQUIREMENTS, include_boto=True)
    without = pinned_requirements(REQUIREMENTS, include_boto=False)
    dropped = {line.split("==")[0].lower().replace("_", "-") for line in set(with_boto) - set(without)}
    assert dropped == {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
    assert any(line.startswith("onnxruntime==") for line in without)


def test_unpinned_requirement_is_refused_naming_the_file(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy==2.4.6\npillow>=12\n")
    with pytest.raises(ConfigurationError, match=r"requirements\.txt: 'pillow>=12' is not pinned"):
        pinned_requirements(requirements, include_boto=True)


def test_size_limits_fail_above_250_mb_and_warn_above_150_mb(tmp_path):
    artifact = tmp_path / "lambda-arm64.zip"
    assert check_size(artifact, 100 * 1024 * 1024) == []
    warnings = check_size(artifact, 200 * 1024 * 1024)
    assert len(warnings) == 1 and "200.0 MB" in warnings[0] and str(artifact) in warnings[0]
    assert check_size(artifact, LAMBDA_UNZIPPED_LIMIT_BYTES) != []  # exactly at the limit is allowed
    with pytest.raises(PackageTooLargeError, match=r"lambda-arm64\.zip: 250\.0 MB unzipped"):
        check_size(artifact, LAMBDA_UNZIPPED_LIMIT_BYTES + 1)


def test_deterministic_zip_ignores_clock_and_file_modes(tmp_path):
    root = tmp_path / "root"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "b.py").write_text("b = 2\n")
    (root / "pkg" / "a.py").write_text("a = 1\n")
    first, second = tmp_path / "one.zip", tmp_path / "two.zip"
    lambda_package_module.write_deterministic_zip(root, first)
    (root / "pkg" / "a.py").chmod(0o600)
    (root / "pkg" / "a.py").touch()
    lambda_package_module.write_deterministic_zip(root, second)
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        assert archive.namelist() == ["pkg/a.py", "pkg/b.py"]
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert [(e.name, e.files, e.unzipped_bytes) for e in measure_zip(first)] == [("pkg", 2, 12)]


def test_embed_model_without_model_files_fails_before_any_download(tmp_path):
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    result = CliRunner().invoke(
        camsort_main, ["package", "--embed-model", str(empty), "--out-dir", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert f"{empty / 'model.onnx'} is missing" in result.output
    assert not (tmp_path / "lambda-arm64.zip").exists()


# --- the real arm64 artifact ----------------------------------------------------------------


def test_arm64_artifact_holds_the_pinned_wheels_and_functions_only(arm64_package):
    with zipfile.ZipFile(arm64_package.artifact) as archive:
        names = archive.namelist()
    assert names == sorted(names)
    shipped_functions = {n for n in names if n.startswith("functions/")}
    expected_functions = {
        f"functions/{p.relative_to(PROJECT_ROOT / 'functions').as_posix()}"
        for p in (PROJECT_ROOT / "functions").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert shipped_functions == expected_functions
    assert "functions/handler.py" in shipped_functions
    assert not [n for n in names if n.startswith(NOT_SHIPPED)]
    assert not [n for n in names if n.startswith(PRUNED) or "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if re.search(r"(^|/)tests?/", n)]
    assert not [n for n in names if n.startswith("model/")]  # the model is referenced in S3

    # Every pinned distribution, at its pinned version, and nothing else.
    installed = {}
    for name in names:
        match = re.fullmatch(r"([^/]+)-([^-/]+)\.dist-info/METADATA", name)
        if match:
            installed[match.group(1).lower().replace("_", "-")] = match.group(2)
    assert installed == _pins()


def _runs_on_lambda_312_arm64(tag: str) -> bool:
    interpreter, abi, plat = tag.split("-")
    if not (interpreter in {"py3", "cp312"} or (abi == "abi3" and interpreter.startswith("cp3"))):
        return False
    if plat == "any":
        return True
    glibc = re.fullmatch(r"manylinux_2_(\d+)_aarch64", plat)
    return plat == "manylinux2014_aarch64" or (glibc is not None and int(glibc.group(1)) <= 34)


def test_arm64_artifact_is_built_for_cpython_312_on_aarch64(arm64_package, tmp_path):
    with zipfile.ZipFile(arm64_package.artifact) as archive:
        archive.extractall(tmp_path)
    tags = wheel_tags(tmp_path)
    assert len(tags) == len(_pins())
    for dist, dist_tags in tags.items():
        # A WHEEL file lists one line per tag (e.g. py2-none-any and py3-none-any): none may
        # name another platform, and one must run on CPython 3.12 / manylinux <= 2.34 aarch64.
        assert all(tag.endswith(("-any", "_aarch64")) for tag in dist_tags), (dist, dist_tags)
        assert any(_runs_on_lambda_312_arm64(tag) for tag in dist_tags), (dist, dist_tags)
    shared_libraries = [
        p for p in tmp_path.rglob("*") if p.is_file() and (p.suffix == ".so" or ".so." in p.name)
    ]
    assert len(shared_libraries) > 10  # onnxruntime, numpy, pillow and their bundled libs
    assert {elf_machine(p) for p in shared_libraries} == {183}  # EM_AARCH64
    # Executable bits survive the zip (Lambda loads .so files as they are extracted).
    with zipfile.ZipFile(arm64_package.artifact) as archive:
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    assert modes["functions/handler.py"] == 0o100644
    assert all(modes[p.relative_to(tmp_path).as_posix()] == 0o100755 for p in shared_libraries)


def test_arm64_artifact_size_report_matches_the_zip(arm64_package):
    report = arm64_package
    assert report.unzipped_bytes < LAMBDA_UNZIPPED_LIMIT_BYTES
    with zipfile.ZipFile(report.artifact) as archive:
        infos = archive.infolist()
    assert report.unzipped_bytes == sum(i.file_size for i in infos)
    assert sum(e.files for e in report.entries) == len(infos)
    assert report.entries[0].name == "onnxruntime"  # the biggest item, as measured
    saved = json.loads(report.artifact.with_suffix(".json").read_text())
    assert saved["sha256"] == report.sha256 and saved["unzipped_bytes"] == report.unzipped_bytes


def test_rebuilding_gives_the_same_bytes(arm64_package, tmp_path):
    again = build_lambda_package(architecture="arm64", out_dir=tmp_path)
    assert again.sha256 == arm64_package.sha256
    assert again.artifact.read_bytes() == arm64_package.artifact.read_bytes()


# --- the packaged function runs (x86_64 artifact, python3.12, moto) ---------------------------

RUN_HANDLER = textwrap.dedent(
    """
    import json, sys
    root, event_path, out_path = sys.argv[1:4]
    sys.path.insert(0, root)
    import functions.handler

    from functions.observability import LocalLambdaContext  # from the artifact too

    context = LocalLambdaContext("camsort-test-classify", 3538, aws_request_id="package-test")
    response = functions.handler.lambda_handler(json.load(open(event_path)), context)
    paths = {m: getattr(sys.modules[m], "__file__", None) for m in ("numpy", "onnxruntime", "PIL", "boto3")}
    json.dump({"response": response, "paths": paths, "version": list(sys.version_info[:2])}, open(out_path, "w"))
    """
)


def _red_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (255, 0, 0)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.mark.e2e
def test_packaged_handler_classifies_a_frame_under_python_312(
    lambda_package,
    python312,
    host_architecture,
    moto_server,
    frames_bucket,
    results_table,
    tiny_model_dir,
    tmp_path,
):
    if python312 is None or host_architecture != "x86_64":
        pytest.skip(
            "needs CPython 3.12 on an x86_64 machine to import the x86_64 artifact "
            "(set CAMSORT_TEST_PYTHON312); the arm64 artifact's tags and ELF headers are checked above"
        )
    report = lambda_package("x86_64", embed_model=tiny_model_dir)
    root = tmp_path / "var-task"
    with zipfile.ZipFile(report.artifact) as archive:
        archive.extractall(root)

    # A real S3 -> SQS notification from moto, wrapped as Lambda's SQS event source would.
    s3, sqs = aws_client("s3", moto_server.endpoint_url), aws_client("sqs", moto_server.endpoint_url)
    queue_url = sqs.create_queue(QueueName=unique_name("camsort-package"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=frames_bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    key = "frames/cam-7/frame 0001.jpg"
    s3.put_object(Bucket=frames_bucket, Key=key, Body=_red_jpeg())
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=5)["Messages"]
    records = [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": "us-east-1",
        }
        for m in messages
        if "Records" in json.loads(m["Body"])  # skip moto's s3:TestEvent
    ]
    assert len(records) == 1
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps({"Records": records}))

    environment = {
        "PATH": "/usr/bin:/bin",
        # The local admin's key (infra/local/moto_server.py): valid whether IAM is enforced or not.
        "AWS_ACCESS_KEY_ID": LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_server.endpoint_url,
        # The embedded model, as /var/task/model/ on Lambda.
        "CAMSORT_MODEL_URI": str(root / "model"),
        "CAMSORT_MODEL_SHA256": read_manifest(root / "model").model_sha256,
        "CAMSORT_RESULTS_TABLE": results_table,
        "CAMSORT_FRAMES_PREFIX": "frames/",
        "CAMSORT_ONNX_THREADS": "1",
        "CAMSORT_WRITE_TAGS": "true",  # the artifact's tag writes are checked below
        "CAMSORT_MODEL_CACHE_DIR": str(tmp_path / "model-cache"),
        "POWERTOOLS_SERVICE_NAME": "camsort",
        "POWERTOOLS_METRICS_NAMESPACE": "camsort-package-test",
    }
    out_path = tmp_path / "out.json"
    script = tmp_path / "run_handler.py"
    script.write_text(RUN_HANDLER)
    # -I -S: no site-packages, no PYTHONPATH, no user site: only the stdlib and the artifact.
    result = subprocess.run(
        [python312, "-I", "-S", str(script), str(root), str(event_path), str(out_path)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert sorted(p.name for p in (root / "model").iterdir()) == ["manifest.json", "model.onnx"]
    output = json.loads(out_path.read_text())
    assert output["version"] == [3, 12]
    assert output["response"] == {"batchItemFailures": []}
    assert all(path.startswith(str(root)) for path in output["paths"].values()), output["paths"]

    dynamodb = aws_client("dynamodb", moto_server.endpoint_url)
    items = dynamodb.scan(TableName=results_table)["Items"]
    assert len(items) == 1
    item = items[0]
    assert item["object_id"]["S"] == f"{frames_bucket}/{key}"
    assert item["status"]["S"] == "ok"
    assert item["label"]["S"] == "bus"
    assert item["camera_id"]["S"] == "cam-7"
    assert item["model_sha256"]["S"] == sha256_file(tiny_model_dir / "model.onnx")
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=frames_bucket, Key=key)["TagSet"]}
    assert tags.get("camsort-label") == "bus"
