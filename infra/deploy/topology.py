"""The shape of the system, shared by the local moto stack and the checks on serverless.yml.

serverless.yml is what deploys; `infra/local/stack.py` builds the same topology on moto.
Both are checked against these values (tests/e2e/test_serverless.py), so they cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass

# Results table.
TABLE_PARTITION_KEY = "object_id"  # "<bucket>/<key>"
TABLE_SORT_KEY = "object_version"  # versionId, else the ETag without quotes
CAMERA_INDEX = "by_camera"
CAMERA_INDEX_PARTITION_KEY = "camera_id"
CAMERA_INDEX_SORT_KEY = "captured_at"  # ISO 8601 UTC, millisecond precision, "Z"

# Review queue table (functions/stores/review_queue.py): frames to label and per-camera quotas.
REVIEW_PARTITION_KEY = "camera_id"
REVIEW_SORT_KEY = "entry"
REVIEW_TTL_ATTRIBUTE = "expires_at"
# State table (camera state + events, functions/state/camera_state.py) and the events bus.
STATE_PARTITION_KEY = "camera_id"
STATE_SORT_KEY = "item"  # "state" | "event#<number, 9 digits>"
EVENT_SOURCE = "camsort"
EVENT_DETAIL_TYPE = "camsort.state-changed"
HEALTH_EVENT_DETAIL_TYPE = "camsort.camera-health-changed"

# Queue and dead-letter queue.
MAX_RECEIVE_COUNT = 3
# Lambda's advice: visibility timeout at least 6x the function timeout.
VISIBILITY_TIMEOUT_FACTOR = 6
# serverless.yml's default memorySize, which the classify and backfill functions both run with
# (and the local worker processes run the function under):
# one vCPU (Lambda gives one per 1,769 MB) for one onnxruntime thread. Backfill cost estimates
# use it; tests/e2e/test_serverless.py checks that serverless.yml agrees.
FUNCTION_MEMORY_MB = 1769

# S3 -> SQS notification: ONE rule, the frames prefix only, no suffix filter. S3 suffix
# filters are case-sensitive (a camera or `aws s3 sync` picking `.Jpeg` or no extension fell
# through every rule and vanished without a result or a DLQ entry), so every object created
# under the prefix goes to the function, which decides by content (`not_jpeg_or_png`).
NOTIFICATION_EVENTS = ("s3:ObjectCreated:*",)


def notification_filter_rules(frames_prefix: str) -> list[dict[str, str]]:
    """The S3 key filter of the one notification rule (serverless.yml holds the same)."""
    return [{"Name": "prefix", "Value": frames_prefix}]


@dataclass(frozen=True)
class StackNames:
    """Names of one deployment's resources (a stage locally or on AWS)."""

    bucket: str = "camsort-frames-local"
    queue: str = "camsort-frames-local"
    dead_letter_queue: str = "camsort-frames-local-dlq"
    table: str = "camsort-results-local"
    review_table: str = "camsort-review-local"
    frames_prefix: str = "frames/"
    models_prefix: str = "models/"
    state_table: str = "camsort-state-local"
    event_bus: str = "camsort.events"
    # Locally, the bus delivers to this queue (a rule with an SQS target): what the tests and
    # the demo read to see what a subscriber would get.
    events_queue: str = "camsort-events-local"

    @property
    def health_events_queue(self) -> str:
        """Locally, the camera health changes' queue (their own rule on the bus)."""
        return f"{self.events_queue}-health"

    @classmethod
    def for_stage(cls, stage: str) -> StackNames:
        return cls(
            bucket=f"camsort-frames-{stage}",
            queue=f"camsort-frames-{stage}",
            dead_letter_queue=f"camsort-frames-{stage}-dlq",
            table=f"camsort-results-{stage}",
            review_table=f"camsort-review-{stage}",
            state_table=f"camsort-state-{stage}",
            # One account holds many stages (tests, demo): each gets its own bus.
            event_bus=f"camsort.events.{stage}",
            events_queue=f"camsort-events-{stage}",
        )

    @staticmethod
    def stage_of(results_table: str) -> str | None:
        """``camsort-results-<stage>`` -> ``<stage>``; None for a table not named that way."""
        prefix = "camsort-results-"
        return results_table[len(prefix) :] or None if results_table.startswith(prefix) else None
