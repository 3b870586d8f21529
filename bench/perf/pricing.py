"""What a million frames cost on AWS: the measured requests per frame, priced, plus compute.

Prices: us-east-1, on-demand, list prices without free tiers, as published on the pages named
in ``PRICES`` (read 2026-12-01; they were last changed in Nov 2024, DynamoDB on-demand -50 %).
Change a constant and its ``source`` together.

Requests are not assumed: bench/requests.py runs frames through the whole local system behind a
counting proxy and reports every request per frame (or per invocation, for the SQS batch calls)
and the bytes of every DynamoDB item written. :func:`bill_lines` prices each of them:

* DynamoDB on-demand bills a write per 1 KB of the item (rounded up, per item), and a global
  secondary index with projection ALL writes the same item again (the results table's
  ``by_camera``); a read is up to 4 KB, strongly consistent, 1 unit (an upper bound: the
  function's reads are of small items);
* EventBridge bills PutEvents per entry (64 KB chunks), not per request;
* SQS bills every request (64 KB chunks; ours are small): S3's SendMessage per frame, the
  event source's ReceiveMessage and DeleteMessageBatch per batch;
* S3 bills GETs (GetObject) and PUTs (PutObjectTagging, when tags are on) per request;
* CloudWatch Logs bills the bytes the function writes (its JSON log line and EMF metrics).

Left out, and said so in the output: the model's download per cold start, the event source's
empty receives (per queue and time, not per frame), storage (GB-months of frames and items),
and the cameras' own PutObject ($5.00 per million uploads, paid with or without camsort).

Lambda bills memory x wall time (1 ms granularity) and gives CPU in proportion to memory:
1,769 MB is one full vCPU (AWS Lambda docs, "Memory and computing power"). So the bench's
per-frame seconds measured at ``threads`` intra-op threads estimate a function with that many
vCPUs. It is an estimate from this CPU: Graviton (arm64) and Lambda's x86 fleet run the same
code at their own speed; the arm64 figure uses this machine's time at arm64's price.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

from functions import env

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
    "eventbridge_event": Price(
        1.00 / 1e6,
        "custom event published (PutEvents entry, 64 KB chunk)",
        "https://aws.amazon.com/eventbridge/pricing/",
    ),
    "cloudwatch_logs_gb": Price(
        0.50, "GB of logs ingested (Standard)", "https://aws.amazon.com/cloudwatch/pricing/"
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


# Measured operations -> the price that bills them ("" = billed through another line).
_PRICE_OF_OPERATION = {
    "s3:GetObject": "s3_get_request",
    "s3:HeadObject": "s3_get_request",
    "s3:GetObjectTagging": "s3_get_request",
    "s3:PutObjectTagging": "s3_put_request",
    "s3:PutObject": "s3_put_request",
    "sqs": "sqs_request",
    "dynamodb:GetItem": "dynamodb_read_unit",
    "dynamodb:BatchGetItem": "dynamodb_read_unit",
    "dynamodb:Query": "dynamodb_read_unit",
    "dynamodb:PutItem": "",  # by the item's size: see ``dynamodb_items``
    "dynamodb:UpdateItem": "",
    "dynamodb:DeleteItem": "",
    "dynamodb:BatchWriteItem": "",
    "events:PutEvents": "",  # per entry: the "entries" line
}


@dataclass(frozen=True)
class Line:
    """One billed thing: ``per_frame`` units, plus ``per_invocation`` units shared by a batch."""

    name: str
    price: str  # key of PRICES
    per_frame: float = 0.0
    per_invocation: float = 0.0

    def units_per_frame(self, batch_size: int) -> float:
        return self.per_frame + self.per_invocation / batch_size


def dynamodb_item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it, from its wire form ({"name": {"S": "..."}, ...}).

    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html:
    names and strings by their UTF-8 bytes, numbers about 1 byte per two significant digits + 1,
    binary by its bytes, booleans and nulls 1 byte, lists and maps 3 bytes + 1 byte per element.
    """
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: dict[str, Any]) -> int:
    (kind, content), *_ = value.items()
    if kind == "S":
        return len(content.encode())
    if kind == "N":
        digits = content.lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(base64.b64decode(content)) if isinstance(content, str) else len(content)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_value_bytes({kind[0]: element}) for element in content)
    if kind == "L":
        return 3 + sum(1 + _value_bytes(element) for element in content)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + _value_bytes(element) for name, element in content.items())
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def write_units(item_bytes: int) -> int:
    """On-demand write request units for one item: 1 per KB, rounded up, at least 1."""
    return max(1, math.ceil(item_bytes / 1024))


# The fleet a bill per frame is for: each camera uploads a frame every 10 s (360 an hour).
FLEET_FRAMES_PER_CAMERA_HOUR = 360
REVIEW_SCOPE = "review"


def review_share_cap(
    review_per_hour: int = env.DEFAULT_REVIEW_PER_HOUR,
    frames_per_camera_hour: int = FLEET_FRAMES_PER_CAMERA_HOUR,
) -> float:
    """The largest share of a camera's frames the review queue marks, however unsure the model:
    at most ``review_per_hour`` marks per camera and UTC hour (CAMSORT_REVIEW_PER_HOUR)."""
    return min(1.0, review_per_hour / frames_per_camera_hour)


def review_scale(measured: dict[str, Any], cap: float) -> float:
    """What scales the measured review lines to the fleet's: a short bench run marks every
    frame it may (its cameras never reach an hour's quota); a fleet's camera marks at most
    ``cap`` of its frames, then asks no more that hour (functions/stores/review_queue.py)."""
    marks = (
        measured["dynamodb_items"].get(f"dynamodb:PutItem {REVIEW_SCOPE}", {}).get("writes_per_frame", 0.0)
    )
    return min(1.0, cap / marks) if marks > 0 else 1.0


def bill_lines(measured: dict[str, Any], review_cap: float | None = None) -> tuple[Line, ...]:
    """The priced lines of a bench/requests.py measurement (its ``per_frame`` / ``per_invocation``).

    ``review_cap`` (default: :func:`review_share_cap` of the default deployment) bounds the review
    queue's lines to the fleet's rate; 1.0 prices them as measured."""
    scale = review_scale(measured, review_share_cap() if review_cap is None else review_cap)
    lines = [Line("Lambda requests", "lambda_request", per_invocation=1.0)]
    for per, counts in (("per_frame", measured["per_frame"]), ("per_invocation", measured["per_invocation"])):
        for name, count in counts.items():
            operation = name.split(" ", 1)[0]
            if operation == "events:PutEvents" and "entries" in name:
                lines.append(Line(name.replace(" entries", ""), "eventbridge_event", **{per: count}))
                continue
            key = _PRICE_OF_OPERATION.get(operation, _PRICE_OF_OPERATION.get(operation.split(":")[0]))
            if key is None:
                raise ValueError(f"{name}: no price for {operation}; add it to bench/perf/pricing.py")
            if key:
                lines.append(Line(name, key, **{per: count}))
    for name, written in measured["dynamodb_items"].items():
        units = written["write_units_per_frame"]
        lines.append(Line(f"{name} (write units)", "dynamodb_write_unit", per_frame=units))
    lines = [_scaled(line, scale) if REVIEW_SCOPE in line.name.split() else line for line in lines]
    lines.append(
        Line(
            "CloudWatch Logs ingestion", "cloudwatch_logs_gb", per_frame=measured["log_bytes_per_frame"] / 1e9
        )
    )
    return tuple(lines)


def _scaled(line: Line, scale: float) -> Line:
    if scale >= 1.0:
        return line
    return Line(
        line.name, line.price, per_frame=line.per_frame * scale, per_invocation=line.per_invocation * scale
    )


@dataclass(frozen=True)
class CostPerMillion:
    """USD per million frames: Lambda compute, and each measured line."""

    lambda_compute: float
    lines: dict[str, float]

    @property
    def total(self) -> float:
        return self.lambda_compute + sum(self.lines.values())

    def by_service(self) -> dict[str, float]:
        services = {"Lambda compute": self.lambda_compute}
        for name, usd in self.lines.items():
            service = _service(name)
            services[service] = services.get(service, 0.0) + usd
        return services

    def as_dict(self) -> dict[str, Any]:
        return {
            "lambda_compute": round(self.lambda_compute, 4),
            "lines": {name: round(usd, 4) for name, usd in self.lines.items()},
            "by_service": {name: round(usd, 4) for name, usd in self.by_service().items()},
            "total": round(self.total, 4),
        }


def _service(line_name: str) -> str:
    prefix = line_name.split(":")[0].split(" ")[0]
    return {"s3": "S3", "sqs": "SQS", "dynamodb": "DynamoDB", "events": "EventBridge",
            "Lambda": "Lambda requests", "CloudWatch": "CloudWatch Logs"}.get(prefix, prefix)  # fmt: skip


def billed_seconds(seconds: float) -> float:
    """Lambda rounds each invocation's duration up to the next millisecond."""
    return math.ceil(seconds * 1000.0 - 1e-9) / 1000.0


def cost_per_million(
    seconds_per_batch: float, batch_size: int, memory_mb: int, arch: str, lines: tuple[Line, ...]
) -> CostPerMillion:
    """Cost of a million frames processed ``batch_size`` to an invocation of ``seconds_per_batch``."""
    if batch_size < 1 or seconds_per_batch <= 0 or memory_mb <= 0:
        raise ValueError("batch_size, seconds_per_batch and memory_mb must be positive")
    invocations = MILLION / batch_size
    gb_s = PRICES[f"lambda_gb_s_{arch}"].usd
    return CostPerMillion(
        lambda_compute=invocations * billed_seconds(seconds_per_batch) * memory_mb / 1024.0 * gb_s,
        lines={
            line.name: MILLION * line.units_per_frame(batch_size) * PRICES[line.price].usd for line in lines
        },
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
    options: list[Option], lines: tuple[Line, ...], peak_rss_mib: float | None = None, arch: str = "arm64"
) -> dict[str, object]:
    """The cheapest measured configuration per million frames, with the memory it needs."""
    if not options:
        raise ValueError("no measured configurations to choose from")
    priced = []
    for option in options:
        memory = memory_for_vcpus(option.threads, peak_rss_mib)
        cost = cost_per_million(option.seconds_per_batch, option.batch_size, memory, arch, lines)
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
        "estimate": f"from this machine's wall time and measured requests; prices as of {PRICES_AS_OF}",
    }
