"""No object, however crafted, takes a batch down: the local system with its workers in processes of
their own, each under the deployed memory size (RLIMIT_AS), as the soak runs them.

* ten decompression bombs inside the pixel limit, beside healthy frames: the bombs are rejected
  before any pixel is decoded, the healthy frames end ``ok``, nothing reaches the DLQ;
* a frame that kills the worker while it decodes (the soak's armed kill, at that frame's
  decode): rejected ``decoder_crash`` after at most two kills, every other frame ``ok``, DLQ 0;
* a batch that would run out of memory on Lambda (the per-frame limit lifted) dies here too,
  and comes back decoded one frame at a time;
* objects S3 will not serve (an archived storage class, SSE-C) are rejected, not retried.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from PIL import Image
from rich.console import Console

from bench.crafted import PngCase, crafted_png
from functions import env
from infra.demo.accounting import scan_results
from infra.deploy.topology import FUNCTION_MEMORY_MB
from infra.local.faults import FaultInjectingProxy, s3_customer_key_required
from infra.local.worker import ADDRESS_SPACE_ALLOWANCE_MIB
from infra.soak.run import SoakSettings, wait_drained
from infra.soak.workers import DECODE_KILL, Kill, WorkerPool
from tests.fixtures.local_stack import LENIENT_TIMEOUT_S, worker_environment
from tests.fixtures.tiny_model import COLOUR_LABELS

pytestmark = pytest.mark.e2e

# Ten bombs of 40 MP (the default pixel limit), a few kB to 300 kB each, of every kind whose decode
# costs more than the per-frame limit: alpha, colour keys, palettes.
BOMBS = [PngCase(6, 8), PngCase(6, 16), PngCase(4, 8), PngCase(4, 16), PngCase(2, 8, True),
         PngCase(2, 16, True), PngCase(3, 8), PngCase(3, 1), PngCase(3, 8, True), PngCase(3, 4, True)]  # fmt: skip
HEALTHY = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


def jpeg(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (1280, 720), colour).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def upload_healthy(stack, count: int, camera: str = "cam-01") -> dict[str, str]:
    """``count`` solid-colour frames; key -> the label the tiny model gives it."""
    s3, expected = stack.client("s3"), {}
    for index in range(count):
        colour = HEALTHY[index % len(HEALTHY)]
        key = f"{stack.names.frames_prefix}{camera}/healthy-{index:02d}.jpg"
        s3.put_object(Bucket=stack.names.bucket, Key=key, Body=jpeg(colour))
        expected[key] = COLOUR_LABELS[colour]
    return expected


def run_workers(stack, model_uri: str, tmp_path: Path, plan: list[Kill], *, extra=None, endpoint_url=None):
    """One worker process at a time (replaced when it dies), each under the deployed memory size."""
    environment = worker_environment(stack, model_uri, tmp_path, endpoint_url=endpoint_url, extra=extra)
    assert environment[env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE] == str(FUNCTION_MEMORY_MB)
    pool = WorkerPool(stack, environment, SoakSettings(workers=1, kills=0), tmp_path, plan=plan)
    pool.start()
    limits = []
    try:
        deadline = time.monotonic() + 240
        while not limits and time.monotonic() < deadline:  # the running worker's own limit, from /proc
            limits = [line for pid in pool.pids() for line in Path(f"/proc/{pid}/limits").read_text().splitlines()
                      if line.startswith("Max address space") and "unlimited" not in line]  # fmt: skip
        wait_drained(stack, pool, Console(quiet=True), deadline=deadline)
    finally:
        pool.stop()
    (limit,) = limits
    assert int(limit.split()[3]) == (FUNCTION_MEMORY_MB + ADDRESS_SPACE_ALLOWANCE_MIB) << 20
    return pool


def results_by_key(stack) -> dict[str, dict]:
    items = {}
    for item in scan_results(stack):
        assert not item["object_version"].endswith("#decode-attempts") or item.get("attempts", 0) >= 2, item
        if not item["object_version"].endswith("#decode-attempts"):
            assert item["key"] not in items, f"{item['key']}: two results"
            items[item["key"]] = item
    return items


def dead_letters(stack) -> int:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.dead_letter_queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


@pytest.mark.parametrize("function_timeout_s", [LENIENT_TIMEOUT_S])
def test_ten_bombs_inside_the_pixel_limit_are_rejected_and_the_healthy_frames_end_ok(
    local_stack, stack_model_uri, tmp_path
):
    s3 = local_stack.client("s3")
    bombs = {}
    for index, case in enumerate(BOMBS):
        key = f"{local_stack.names.frames_prefix}cam-02/bomb-{index:02d}.png"
        data = crafted_png(case, 8000, 5000)
        assert len(data) < 320_000
        s3.put_object(Bucket=local_stack.names.bucket, Key=key, Body=data)
        bombs[key] = case
    healthy = upload_healthy(local_stack, 10)

    pool = run_workers(local_stack, stack_model_uri, tmp_path, plan=[])

    results = results_by_key(local_stack)
    assert {key: (results[key]["status"], results[key]["reason"]) for key in bombs} == dict.fromkeys(
        bombs, ("rejected", "too_much_decode_memory")
    )
    assert "more than the limit of 192 MiB per frame" in results[next(iter(bombs))]["detail"]
    assert {key: (results[key]["status"], results[key]["label"]) for key in healthy} == {
        key: ("ok", label) for key, label in healthy.items()
    }
    assert dead_letters(local_stack) == 0
    assert pool.other_exits == [] and not pool.kills  # no worker died on the way


@pytest.mark.parametrize("function_timeout_s", [3])  # redelivery after 18 s
def test_a_frame_that_kills_the_decoder_twice_is_rejected_and_every_other_frame_ends_ok(
    local_stack, stack_model_uri, tmp_path
):
    healthy = upload_healthy(local_stack, 9)
    poison = f"{local_stack.names.frames_prefix}cam-01/poison.jpg"
    local_stack.client("s3").put_object(Bucket=local_stack.names.bucket, Key=poison, Body=jpeg((255, 0, 0)))

    # The first two worker processes die as they start decoding the poison frame (a native
    # decoder crash); the third decodes it fine if asked to: only the crash rule keeps it out.
    pool = run_workers(local_stack, stack_model_uri, tmp_path, plan=[(DECODE_KILL, "poison")] * 2)

    assert pool.kills[DECODE_KILL] == 2
    results = results_by_key(local_stack)
    assert (results[poison]["status"], results[poison]["reason"]) == ("rejected", "decoder_crash")
    assert {key: (results[key]["status"], results[key]["label"]) for key in healthy} == {
        key: ("ok", label) for key, label in healthy.items()
    }
    assert dead_letters(local_stack) == 0


@pytest.mark.parametrize("function_timeout_s", [LENIENT_TIMEOUT_S])
def test_a_batch_that_runs_out_of_memory_dies_as_on_lambda_and_comes_back_one_frame_at_a_time(
    local_stack, stack_model_uri, tmp_path
):
    # With the per-frame limit lifted far above the function's memory, the budget is no longer
    # a bound: ten 229 MiB decodes at once need 2.3 GB in a 1,769 MB function. Lambda would kill
    # it; the worker process dies too, and the redelivery decodes the frames alone, within memory.
    s3 = local_stack.client("s3")
    keys = []
    for index in range(10):
        key = f"{local_stack.names.frames_prefix}cam-03/rgba-{index:02d}.png"
        s3.put_object(Bucket=local_stack.names.bucket, Key=key, Body=crafted_png(PngCase(6, 8), 6000, 5000))
        keys.append(key)

    pool = run_workers(local_stack, stack_model_uri, tmp_path, plan=[], extra={env.MAX_DECODE_MIB: "100000"})

    assert pool.other_exits and set(pool.other_exits) == {-9}  # killed, not failed
    results = results_by_key(local_stack)
    assert {key: results[key]["status"] for key in keys} == dict.fromkeys(keys, "ok")
    assert dead_letters(local_stack) == 0


def test_objects_s3_will_never_serve_are_rejected_not_retried(local_stack, run_worker):
    s3, prefix = local_stack.client("s3"), local_stack.names.frames_prefix
    archived = {f"{prefix}cam-04/glacier.jpg": "GLACIER", f"{prefix}cam-04/deep.jpg": "DEEP_ARCHIVE"}
    for key, storage_class in archived.items():  # moto answers InvalidObjectState, as S3 does
        s3.put_object(
            Bucket=local_stack.names.bucket, Key=key, Body=jpeg((0, 255, 0)), StorageClass=storage_class
        )
    encrypted = f"{prefix}cam-04/sse-c.jpg"  # moto does not keep SSE-C: the proxy answers as S3 does
    s3.put_object(Bucket=local_stack.names.bucket, Key=encrypted, Body=jpeg((0, 255, 0)))
    healthy = upload_healthy(local_stack, 2, camera="cam-04")

    with FaultInjectingProxy(local_stack.endpoint_url, [s3_customer_key_required(encrypted)]) as proxy:
        stats = run_worker(endpoint_url=proxy.endpoint_url)

    results = results_by_key(local_stack)
    reasons = {key: (results[key]["status"], results[key]["reason"]) for key in [*archived, encrypted]}
    assert reasons == {
        **dict.fromkeys(archived, ("rejected", "archived_storage_class")),
        encrypted: ("rejected", "encrypted_with_customer_key"),
    }
    assert all(results[key]["status"] == "ok" for key in healthy)
    assert stats.reported_failures == 0 and stats.failed_batches == 0  # never retried
    assert proxy.injected(f"s3-InvalidRequest-{encrypted}") == 1
    assert dead_letters(local_stack) == 0
