"""The Lambda entry point: ``functions.handler.lambda_handler(event, context)``.

Thin: parse the event (:mod:`functions.frames.events`), classify its frames as one batch
(:mod:`functions.frames.classify`), answer in the shape the event source expects:

* SQS -> ``{"batchItemFailures": [{"itemIdentifier": messageId}, ...]}`` naming only the
  messages with a failed frame (transient or error) or an unparseable body; SQS retries
  those and, after maxReceiveCount, moves them to the DLQ. Rejected and duplicate frames
  are acknowledged.
* S3 Batch Operations (schema 1.0 / 2.0) -> ``invocationSchemaVersion``, ``treatMissingKeysAs``,
  ``invocationId`` and per task ``Succeeded`` (ok / duplicate), ``TemporaryFailure``
  (transient: Batch Operations retries) or ``PermanentFailure`` (rejected, error).
* direct S3 notification / EventBridge (asynchronous invokes) -> a summary; when a frame
  failed, the first failure is raised so Lambda's asynchronous retries take over.
* ``s3:TestEvent`` -> acknowledged and ignored. An unrecognised payload -> logged and raised.

The context must carry Lambda's ``function_name``, ``memory_limit_in_mb``,
``invoked_function_arn`` and ``aws_request_id`` (Powertools logs them); outside Lambda use
``functions.observability.LocalLambdaContext()``.

Why not Powertools' ``BatchProcessor`` for SQS: it handles records one at a time, which
would run one inference per frame; classifying the whole batch at once is the point. We
keep Powertools for parsing (event data classes), logging and metrics, and build
``batchItemFailures`` ourselves.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Literal

from aws_lambda_powertools.utilities.data_classes.s3_batch_operation_event import (
    S3BatchOperationResponseRecord,
)

from functions import env, wiring
from functions.archive.jobs import job_app, parse_job_arguments
from functions.archive.shards import featurize_frames
from functions.errors import CamsortError, TransientError
from functions.frames.classify import classify_frames
from functions.frames.events import ParsedEvent, UnsupportedEventError, parse_event
from functions.frames.outcome import FrameOutcome, Status
from functions.http_api import handle_http, is_function_url_event
from functions.observability import (
    log_outcome,
    logger,
    metrics,
    record_http_answer,
    record_invocation_error,
    record_metrics,
)
from functions.wiring import App

_RESULT_STRING_LIMIT = 1024
ResultCode = Literal["Succeeded", "TemporaryFailure", "PermanentFailure"]


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, wiring.default_app)


def handle(event: Any, get_app: Callable[[], App]) -> dict[str, Any]:
    """Parse, classify, respond. ``get_app`` is only called when there are frames."""
    if is_function_url_event(event):  # the HTTP endpoint (functions.http_api)
        response = handle_http(event, get_app)
        record_http_answer(response["statusCode"])
        return response
    try:
        parsed = parse_event(event)
    except (UnsupportedEventError, KeyError, TypeError, ValueError) as exc:
        logger.error(f"unsupported or malformed event: {exc}", extra={"event_keys": _keys_of(event)})
        record_invocation_error()
        raise
    for warning in parsed.warnings:
        logger.warning(warning)
    for invalid in parsed.invalid:
        logger.error(
            f"{invalid.error}; the message will be retried, then dead-lettered",
            extra={"source_id": invalid.source_id},
        )
    outcomes = _process(parsed, _app(get_app)) if parsed.frames else []
    for outcome in outcomes:
        log_outcome(outcome)
    record_metrics(outcomes)
    if parsed.kind == "sqs":
        return sqs_response(parsed, outcomes)
    if parsed.kind == "batch":
        return batch_response(parsed, outcomes)
    return direct_response(parsed, outcomes)


def _app(get_app: Callable[[], App]) -> App:
    try:
        return get_app()
    except Exception as exc:
        # Configuration or model problems fail the whole invocation: every message is
        # retried and, if it persists, dead-lettered; nothing is acknowledged unprocessed.
        logger.exception(f"cannot set up the function: {exc}")
        record_invocation_error()
        raise


def _process(parsed: ParsedEvent, app: App) -> list[FrameOutcome]:
    """Classify; a Batch Operations job's userArguments may pick the mode and the model."""
    if parsed.batch is None:
        return classify_frames(parsed.frames, app)
    try:
        arguments = parse_job_arguments(parsed.batch.user_arguments)
        app = job_app(app, arguments)
    except CamsortError as exc:  # every task of this job fails alike: say why on each
        logger.error(f"Batch Operations job arguments: {exc}")
        status: Status = "transient" if isinstance(exc, TransientError) else "error"
        return [
            FrameOutcome(frame, status, detail=f"job arguments: {exc}", error=exc) for frame in parsed.frames
        ]
    if arguments.mode == "featurize":
        return featurize_frames(parsed.frames, app, arguments)
    return classify_frames(parsed.frames, app)


def sqs_response(parsed: ParsedEvent, outcomes: list[FrameOutcome]) -> dict[str, Any]:
    failed = {o.frame.source_id for o in outcomes if o.failed}
    failed.update(invalid.source_id for invalid in parsed.invalid)
    return {"batchItemFailures": [{"itemIdentifier": mid} for mid in parsed.source_ids if mid in failed]}


def batch_response(parsed: ParsedEvent, outcomes: list[FrameOutcome]) -> dict[str, Any]:
    assert parsed.batch is not None
    by_task = {o.frame.source_id: o for o in outcomes}
    invalid = {i.source_id: i.error for i in parsed.invalid}
    results = []
    for task_id in parsed.batch.task_ids:
        code: ResultCode
        if task_id in invalid:
            code, text = "PermanentFailure", invalid[task_id]
        else:
            code, text = _task_result(by_task[task_id])
        record = S3BatchOperationResponseRecord(
            task_id=task_id, result_code=code, result_string=text[:_RESULT_STRING_LIMIT]
        )
        results.append(record.asdict())
    return {
        "invocationSchemaVersion": parsed.batch.schema_version,
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": parsed.batch.invocation_id,
        "results": results,
    }


def _task_result(outcome: FrameOutcome) -> tuple[ResultCode, str]:
    if outcome.status == "ok" and outcome.confidence is None:  # featurize mode: no label
        return "Succeeded", f"ok: {outcome.detail}"
    if outcome.status == "ok":
        answer = outcome.label if outcome.labels is None else "{" + ", ".join(outcome.labels) + "}"
        return "Succeeded", f"ok: {answer} ({outcome.confidence:.4f})"
    if outcome.status == "duplicate":
        return "Succeeded", "duplicate: result already recorded"
    if outcome.status == "transient":
        return "TemporaryFailure", f"transient: {outcome.detail}"
    if outcome.status == "rejected":
        return "PermanentFailure", f"rejected ({outcome.reason}): {outcome.detail}"
    return "PermanentFailure", f"error: {outcome.detail}"


def direct_response(parsed: ParsedEvent, outcomes: list[FrameOutcome]) -> dict[str, Any]:
    failures = [o for o in outcomes if o.failed]
    if failures:
        raise failures[0].error or RuntimeError(
            failures[0].detail
        )  # asynchronous invoke: Lambda retries, then the on-failure destination
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return {"frames": len(outcomes), "ignored": parsed.ignored, **counts}


def _keys_of(event: Any) -> list[str]:
    return sorted(event)[:20] if isinstance(event, dict) else [type(event).__name__]


# Inside Lambda, build the clients and load the model during the init phase (full CPU,
# before the first event waits on it). Elsewhere (tests, local worker) it happens lazily.
if os.environ.get(env.AWS_LAMBDA_FUNCTION_NAME):
    wiring.default_app()
