"""What a million frames cost on AWS, estimated from the wall time measured on this CPU.

Prices: us-east-1, on-demand, list prices without free tiers, as published on the pages named
in ``PRICES`` (read 2026-12-01; they were last changed in Nov 2024, DynamoDB on-demand -50 %).
Change a constant and its ``source`` together.

Per frame the function makes (after the call cuts): one GetObject, one
PutObjectTagging (when tags are written; GetObjectTagging only for objects that already have
tags, counted as none here), one conditional PutItem of a ~1 KB item that the ``by_camera``
GSI (projection ALL) writes a second time, no BatchGetItem on first deliveries. SQS: S3's
SendMessage per frame, and Lambda's ReceiveMessage + DeleteMessageBatch per batch (the poller's
empty receives are per queue, not per frame, and are left out).

Lambda bills memory x wall time (1 ms granularity) and gives CPU in proportion to memory:
1,769 MB is one full vCPU (AWS Lambda docs, "Memory and computing power"). So the bench's
per-frame seconds measured at ``threads`` intra-op threads estimate a function with that many
vCPUs. It is an estimate from this CPU: Graviton (arm64) and Lambda's x86 fleet run the same
code at their own speed; the arm64 figure uses this machine's time at arm64's price.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

PRICES_AS_OF = "2026-12-01"


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    source: str


PRICES = {
    "lambda_gb_s_arm64": Price(0.0000133334, "GB-second", "https://aws.amazon.com/lambda/pricing/"),
    "lambda_gb_s_x86": Price(0.0000166667, "GB-second", "https://aws.amazon.com/lambda/pricing/"),
    "lambda_request": Price(0.20 / 1e6, "request", "https://aws.amazon.com/lambda/pricing/"),
    "dynamodb_write_unit": Price(
        0.625 / 1e6, "write request unit (1 KB)", "https://aws.amazon.com/dynamodb/pricing/on-demand/"
    ),
    "dynamodb_read_unit": Price(
        0.125 / 1e6,
        "read request unit (4 KB, strongly consistent)",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    ),
    "s3_put_request": Price(
        0.005 / 1000,
        "PUT, COPY, POST, LIST request (PutObjectTagging is one)",
        "https://aws.amazon.com/s3/pricing/",
    ),
    "s3_get_request": Price(
        0.0004 / 1000,
        "GET and all other requests (GetObject, GetObjectTagging)",
        "https://aws.amazon.com/s3/pricing/",
    ),
    "sqs_request": Price(
        0.40 / 1e6, "standard queue request (64 KB chunk)", "https://aws.amazon.com/sqs/pricing/"
    ),
    "rekognition_detect_labels": Price(
        1.00 / 1000,
        "image, DetectLabels, first 1 M images a month",
        "https://aws.amazon.com/rekognition/pricing/",
    ),
}
MB_PER_VCPU = 1769  # Lambda: 1,769 MB of memory is one vCPU's worth of CPU
LAMBDA_MAX_MB = 10240
MILLION = 1_000_000


@dataclass(frozen=True)
class FrameCalls:
    """AWS requests per frame (the function's own, plus SQS around it)."""

    s3_get: float = 1.0  # GetObject
    s3_put: float = 1.0  # PutObjectTagging
    dynamodb_write_units: float = 2.0  # PutItem of a <= 1 KB item + the by_camera GSI's copy
    dynamodb_read_units: float = 0.0  # BatchGetItem only on redeliveries
    sqs_per_batch: float = 2.0  # ReceiveMessage + DeleteMessageBatch
    sqs_per_frame: float = 1.0  # S3's SendMessage


def frame_calls(*, write_tags: bool = True) -> FrameCalls:
    return FrameCalls(s3_put=1.0 if write_tags else 0.0)


@dataclass(frozen=True)
class CostPerMillion:
    """USD per million frames, by part."""

    lambda_compute: float
    lambda_requests: float
    s3: float
    dynamodb: float
    sqs: float

    @property
    def total(self) -> float:
        return self.lambda_compute + self.lambda_requests + self.s3 + self.dynamodb + self.sqs

    def as_dict(self) -> dict[str, float]:
        return {**{k: round(v, 4) for k, v in asdict(self).items()}, "total": round(self.total, 4)}


def billed_seconds(seconds: float) -> float:
    """Lambda rounds each invocation's duration up to the next millisecond."""
    return math.ceil(seconds * 1000.0 - 1e-9) / 1000.0


def cost_per_million(
    seconds_per_batch: float,
    batch_size: int,
    memory_mb: int,
    arch: str = "arm64",
    calls: FrameCalls = FrameCalls(),  # noqa: B008 - frozen
) -> CostPerMillion:
    """Cost of a million frames processed ``batch_size`` to an invocation of ``seconds_per_batch``."""
    if batch_size < 1 or seconds_per_batch <= 0 or memory_mb <= 0:
        raise ValueError("batch_size, seconds_per_batch and memory_mb must be positive")
    gb_s = PRICES[f"lambda_gb_s_{arch}"].usd
    invocations = MILLION / batch_size
    return CostPerMillion(
        lambda_compute=invocations * billed_seconds(seconds_per_batch) * memory_mb / 1024.0 * gb_s,
        lambda_requests=invocations * PRICES["lambda_request"].usd,
        s3=MILLION
        * (calls.s3_get * PRICES["s3_get_request"].usd + calls.s3_put * PRICES["s3_put_request"].usd),
        dynamodb=MILLION
        * (
            calls.dynamodb_write_units * PRICES["dynamodb_write_unit"].usd
            + calls.dynamodb_read_units * PRICES["dynamodb_read_unit"].usd
        ),
        sqs=(invocations * calls.sqs_per_batch + MILLION * calls.sqs_per_frame) * PRICES["sqs_request"].usd,
    )


def rekognition_per_million() -> float:
    return MILLION * PRICES["rekognition_detect_labels"].usd


def memory_for_vcpus(vcpus: int, peak_rss_mib: float | None = None) -> int:
    """The smallest memory giving ``vcpus`` full vCPUs (and room for the measured peak RSS)."""
    memory = vcpus * MB_PER_VCPU
    if peak_rss_mib is not None:
        memory = max(memory, int(math.ceil(peak_rss_mib * 1.25 / 64.0)) * 64)  # 25 % headroom
    return min(memory, LAMBDA_MAX_MB)


@dataclass(frozen=True)
class Option:
    """One measured configuration: ``threads`` intra-op threads ~ a function with that many vCPUs."""

    threads: int
    batch_size: int
    seconds_per_batch: float  # measured wall time of one invocation


def recommend(
    options: list[Option], peak_rss_mib: float | None = None, arch: str = "arm64", write_tags: bool = True
) -> dict[str, object]:
    """The cheapest measured configuration per million frames, with the memory it needs."""
    if not options:
        raise ValueError("no measured configurations to choose from")
    priced = []
    for option in options:
        memory = memory_for_vcpus(option.threads, peak_rss_mib)
        cost = cost_per_million(
            option.seconds_per_batch, option.batch_size, memory, arch, frame_calls(write_tags=write_tags)
        )
        priced.append((cost.total, option, memory, cost))
    total, best, memory, cost = min(priced, key=lambda entry: entry[0])
    return {
        "memory_mb": memory,
        "onnx_threads": best.threads,
        "batch_size": best.batch_size,
        "seconds_per_batch": round(best.seconds_per_batch, 4),
        "usd_per_million": cost.as_dict(),
        "rekognition_ratio": round(rekognition_per_million() / total, 1),
        "arch": arch,
        "estimate": f"from this machine's wall time; prices as of {PRICES_AS_OF}",
    }
