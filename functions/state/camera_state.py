"""DynamoDB adapter for camera state and events (the state table), plus the one entry point
the classifier calls after an ``ok`` result is written.

Why a table of its own rather than items in the results table: the results table is keyed
by object and its ``by_camera`` index projects everything, so state and event items there
would either pollute the index or need sentinel attributes to stay out of it; a separate
table lets the function's role grant GetItem/PutItem/UpdateItem on state without widening
what it may do to results, can be switched off by leaving it out of a stage, and keeps
per-camera reads (``camsort cameras`` / ``events``) off the results table's hot partitions.

Layout (``infra/deploy/topology.py``): partition ``camera_id``, sort ``item``:
``state`` (one per camera: window, committed state, open episode, version; its wire form,
under 1 KB, is :mod:`functions.state.state_item`) and ``event#<number>`` (one per episode,
numbered per camera: the events; a time range is a filter on ``start``/``end``, since a late
frame may move an episode's start earlier). A camera with regions (docs/regions.md) has one
state per region beside them, ``state#<region>``, and its events ``event#<region>#<number>``.

One camera's frames of one invocation = one consistent read of the state item + one PutItem of
it, on the condition that its ``version`` is still the one read (or that it does not exist
yet): that write is the commit point. The frames are applied in capture order in between,
exactly as one at a time (:func:`functions.state.episodes.advance_batch`): the smoothing is per
frame, only the writes are per batch. A lost race (ConditionalCheckFailed) re-reads and redoes
the batch with jittered backoff, so two concurrent invocations never lose a frame. What the
changes mean for the event items and the bus rides in the item's outbox and is written /
published right after (idempotently, at least once), then cleared.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import single_metric
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from functions import env
from functions.errors import ResultsTableError, TransientError
from functions.frames.image_health import FrameHealth
from functions.frames.keys import format_timestamp
from functions.frames.regions import DEFAULT_REGION
from functions.iam import requires
from functions.observability import NAMESPACE, logger, metrics
from functions.state.camera_health import HealthConfig
from functions.state.episodes import BatchAdvance, CameraState, Episode, advance_batch
from functions.state.event_bus import DETAIL_TYPE, HEALTH_DETAIL_TYPE, EventPublisher
from functions.state.outbox import bounded, detail_type_of, due, published_form, queued
from functions.state.smoothing import Frame, Rule, SmoothingConfig
from functions.state.state_item import (
    PARTITION_KEY,
    SORT_KEY,
    state_from_item,
    state_sort_key,
    state_to_item,
)
from functions.stores.dynamo import conditional_write, table_error
from functions.stores.results import deserialize_item, serialize_item
from functions.stores.storage import error_code

EVENT_PREFIX = "event#"
# Each round of a race has one winner, so n concurrent writers of one camera need about n
# attempts; the bound is generous because a frame that gives up is missing from the state.
MAX_ATTEMPTS = 30
MAX_BACKOFF_S = 0.25


class StateTableError(ResultsTableError):
    """A non-transient DynamoDB failure on the state table."""


class StateConflictError(TransientError):
    """Still losing the race for one camera's item after every retry: SQS retries the frame."""


def event_sort_key(episode: Episode) -> str:
    # By number, not start time: a late frame can move an episode's start earlier. A region's
    # events are numbered on their own: event#<region>#<number> (the whole frame: event#<number>).
    if episode.region == DEFAULT_REGION:
        return f"{EVENT_PREFIX}{episode.number:09d}"
    return f"{EVENT_PREFIX}{episode.region}#{episode.number:09d}"


def _summary(batch: BatchAdvance) -> str:
    """One word for a batch: ``added`` when any frame was, else the first frame's outcome."""
    outcomes = [outcome for _key, outcome in batch.outcomes]
    return "added" if "added" in outcomes else (outcomes[0] if outcomes else "skipped")


@dataclass(frozen=True)
class Observation:
    camera_id: str
    outcome: str  # added (any frame of the batch) | duplicate | late | skipped
    state: str | None = None
    changed: bool = False
    published: int = 0
    attempts: int = 0


class CameraStates:
    """State items and event items of one stage's state table."""

    def __init__(
        self,
        table_name: str,
        dynamodb_client: Any,
        smoothing: SmoothingConfig,
        publisher: EventPublisher | None = None,
        *,
        health: HealthConfig | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.table_name = table_name
        self._ddb = dynamodb_client
        self.smoothing = smoothing
        self.publisher = publisher
        self.health = health  # None: camera health off
        self._now = now
        self._sleep = sleep

    # --- the classifier's entry point ------------------------------------------------------

    def observe_frames(
        self,
        camera_id: str,
        frames: Sequence[Frame],
        measures: Mapping[str, FrameHealth] | None = None,
        region: str = DEFAULT_REGION,
        rule: Rule | None = None,
        measured_only: Sequence[tuple[str, str]] = (),
    ) -> Observation | None:
        """:meth:`observe`, never raising (the results are already committed).

        Called again when a redelivery finds the results already written: the window insert is
        idempotent, and the redelivery flushes what the frames' first writer left in the
        outbox. A failure is logged with the keys and counted (``StateFailures``): the frames
        are then missing from the state, which the next frames of the camera outvote.
        """
        try:
            return self.observe(camera_id, frames, measures, region, rule, measured_only)
        except Exception as exc:
            keys = [frame.key for frame in frames] + [key for _at, key in measured_only]
            self.failed(camera_id, ", ".join(keys), exc)
            return None

    def observe(
        self,
        camera_id: str,
        frames: Sequence[Frame],
        measures: Mapping[str, FrameHealth] | None = None,
        region: str = DEFAULT_REGION,
        rule: Rule | None = None,
        measured_only: Sequence[tuple[str, str]] = (),
    ) -> Observation:
        """Count one invocation's frames of a camera: one read, one conditional write.

        The frames are applied in capture order (:func:`advance_batch`), exactly as if they had
        come one at a time; the write commits all of them at once, on the condition that the
        item is still the version read. A lost race re-reads and redoes the whole batch.
        ``measures`` (by frame id) feed the camera's health in the same write, and so do the
        ``measured_only`` frames (capture time, frame id: a camera with regions' whole frames).
        """
        if rule is None:  # a region's own rule is given; else the camera's
            rule = self.smoothing.rule_for(camera_id)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            current = self.load(camera_id, region)
            # The camera's health is the whole frame's (its state item): a region's has none.
            health = self.health if region == DEFAULT_REGION else None
            batch = advance_batch(current, frames, rule, measures, health, measured_only)
            outcome = _summary(batch)
            if batch.state == current:
                # Already counted: a redelivery. Its first writer may have died between the
                # commit and the flush, so write the open event and publish what it queued.
                duplicates = batch.duplicates
                published = self._flush(current, own_frames=duplicates) if duplicates else 0
                return Observation(camera_id, outcome, current.state, published=published, attempts=attempt)
            committed = self._commit(current, batch)
            if committed is not None:
                published = self._flush(
                    committed, previous=current, own_version=committed.version, own_frames=batch.duplicates
                )
                changed = bool(batch.opened or batch.health_changes)
                return Observation(camera_id, outcome, committed.state, changed, published, attempt)
            # Lost the race: someone else wrote this camera since we read it. Back off a little
            # (jittered, so two writers do not collide again in lockstep) and redo it on theirs.
            self._sleep(random.uniform(0, min(MAX_BACKOFF_S, 0.005 * 2**attempt)))
        raise StateConflictError(
            f"{self.table_name}/{camera_id}: {MAX_ATTEMPTS} conflicting writes in a row for "
            f"{len(frames)} frame(s); they will be retried"
        )

    def failed(self, camera_id: str, keys: str, exc: Exception) -> None:
        """Log and count frames the state could not take (``StateFailures``)."""
        logger.error(f"{self.table_name}/{camera_id}: camera state not updated for {keys}: {exc}")
        metrics.add_metric(name="StateFailures", unit=MetricUnit.Count, value=1)

    # --- reads -----------------------------------------------------------------------------

    @requires("dynamodb:GetItem", resource="state-table")
    def load(self, camera_id: str, region: str = DEFAULT_REGION) -> CameraState:
        """The camera's whole-frame state item, or one region's (``state#<region>``)."""
        try:
            response = self._ddb.get_item(
                TableName=self.table_name,
                Key={PARTITION_KEY: {"S": camera_id}, SORT_KEY: {"S": state_sort_key(region)}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, camera_id, "GetItem") from exc
        item = response.get("Item")
        return state_from_item(deserialize_item(item)) if item else CameraState(camera_id, region=region)

    # --- writes ----------------------------------------------------------------------------

    @requires("dynamodb:PutItem", resource="state-table")
    def flush_outbox(self, camera_id: str, region: str = DEFAULT_REGION) -> int:
        """Write and publish what a camera's outbox (or one region's) still holds (the scheduled
        audit, so that a quiet camera's event goes out): the open event, every unwritten closed
        one, and the changes whose writers are gone (:func:`functions.state.outbox.due`). Returns
        the number published. Raises on a failed read; the writes and the publish keep what fails."""
        return self._flush(self.load(camera_id, region))

    def _commit(self, current: CameraState, batch: BatchAdvance) -> CameraState | None:
        """Write the state item on the condition that it is still the version read.

        One item, one conditional PutItem: the commit point. (Not a transaction with the event
        items: the events ride in the item's outbox and are written right after, idempotently.
        Besides, moto rolls a failed transaction back by restoring a snapshot of the whole
        table, which would erase a concurrent writer's commit.) None: lost the race.
        """
        new_state, dropped = batch.state, 0
        if batch.closed:
            unwritten, dropped = bounded((*new_state.unwritten, *(e.to_item() for e in batch.closed)))
            new_state = replace(new_state, unwritten=unwritten)
        if batch.opened or batch.health_changes:
            version, at = current.version + 1, self._now()
            entries = [
                queued(episode.detail(), version=version, frame=frame, at=at)
                for episode, frame in batch.opened
            ]
            entries += [
                queued(change, version=version, frame=frame, at=at, detail_type=HEALTH_DETAIL_TYPE)
                for change, frame in batch.health_changes
            ]
            unpublished, lost = bounded((*new_state.unpublished, *entries))
            new_state = replace(new_state, unpublished=unpublished)
            # Without a bus the changes wait for a stage that adds one: the bound is expected there.
            dropped += lost if self.publisher is not None else 0
        new_state = replace(new_state, version=current.version + 1)
        if current.version == 0:
            condition = "attribute_not_exists(#v)"
            values = None
        else:
            condition = "#v = :v"
            values = {":v": {"N": str(current.version)}}
        item = state_to_item(new_state, updated_at=format_timestamp(self._now()))
        written = conditional_write(
            lambda: self._ddb.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#v": "version"},
                **({"ExpressionAttributeValues": values} if values else {}),
            ),
            lambda exc: self._error(exc, current.camera_id, "PutItem"),
        )
        if written:
            self._report_health(batch.health_changes)
        if written and dropped:  # the bound pushed events out: they are never written / published
            logger.error(
                f"{self.table_name}/{current.camera_id}: outbox full, {dropped} oldest event(s) dropped"
            )
            metrics.add_metric(name="OutboxDropped", unit=MetricUnit.Count, value=dropped)
        return new_state if written else None

    def _report_health(self, changes: Sequence[tuple[dict[str, Any], str]]) -> None:
        """Log each committed health change and count it (EMF ``CameraHealthChanged``, by health)."""
        for change, _frame in changes:
            logger.warning(
                f"{self.table_name}/{change['camera_id']}: camera health {change['previous_health']} -> "
                f"{change['health']} since {change['since']}",
                extra={"camera_id": change["camera_id"], "health": change["health"]},
            )
            with single_metric(
                name="CameraHealthChanged", unit=MetricUnit.Count, value=1, namespace=NAMESPACE
            ) as metric:
                metric.add_dimension(name="health", value=str(change["health"]))

    def _flush(
        self,
        state: CameraState,
        previous: CameraState | None = None,
        *,
        own_version: int | None = None,
        own_frames: Sequence[str] = (),
    ) -> int:
        """Write the event items, publish the changes that are due, clear the outbox.

        After a commit (``previous``: the state it replaced, ``own_version``: its version), on a
        redelivery (``own_frames``) or from the audit (neither). Every step is idempotent and
        anything that fails stays in the outbox for a later flush (events at least once:
        subscribers dedupe on ``event_id``). Returns the number of events published.
        """
        episodes = [Episode.from_item(state.camera_id, item, state.region) for item in state.unwritten]
        # The open episode's item is written when it opens (and again by a redelivery or the
        # audit: its writer may have died first); while it stays open its running count lives in
        # the state item, which readers merge (infra/ops/camera_views.py), so a batch that only
        # counts frames into it costs no event write. Closing writes it with its end (unwritten).
        opened = (
            previous is None
            or previous.episode is None
            or (state.episode is not None and state.episode.number != previous.episode.number)
        )
        if state.episode and opened:
            episodes.append(state.episode)
        written = True
        for episode in episodes:
            written = self._put_event(episode, state.version) and written
        chosen = due(
            state.unpublished,
            version=state.version,
            now=self._now(),
            own_version=own_version,
            own_frames=own_frames,
        )
        published: list[str] = []
        if chosen and self.publisher is not None:
            try:
                self.publisher.publish(
                    [published_form(d) for d in chosen], [detail_type_of(d, DETAIL_TYPE) for d in chosen]
                )
                published = [str(d["event_id"]) for d in chosen]
            except Exception as exc:
                logger.warning(f"{self.table_name}/{state.camera_id}: events kept for a later publish: {exc}")
        written_numbers = [int(item["number"]) for item in state.unwritten] if written else []
        if written_numbers or published:
            self._clear(state.camera_id, written_numbers, published, state.region)
        return len(published)

    @requires("dynamodb:PutItem", resource="state-table")
    def _put_event(self, episode: Episode, version: int) -> bool:
        """Event item as of state ``version``; never overwrites what a newer version wrote."""
        try:
            self._ddb.put_item(
                TableName=self.table_name,
                Item=serialize_item(event_item(episode) | {"state_version": version}),
                ConditionExpression="attribute_not_exists(#sv) OR #sv <= :v",
                ExpressionAttributeNames={"#sv": "state_version"},
                ExpressionAttributeValues={":v": {"N": str(version)}},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return True  # a newer state already wrote it
            logger.warning(f"{self.table_name}/{episode.event_id}: event item kept for a later write: {exc}")
            return False
        except BotoCoreError as exc:
            logger.warning(f"{self.table_name}/{episode.event_id}: event item kept for a later write: {exc}")
            return False
        return True

    @requires("dynamodb:GetItem", "dynamodb:PutItem", resource="state-table")
    def _clear(
        self, camera_id: str, written: list[int], published: list[str], region: str = DEFAULT_REGION
    ) -> None:
        """Take the flushed entries out of the outbox, on whatever version is current now.

        Re-read + conditional PutItem (a new version), retried when another frame commits in
        between: a conditional UpdateItem ... REMOVE would do on DynamoDB, but moto applies it
        as a read-modify-write of the whole item, which can overwrite a concurrent commit.
        """
        for _attempt in range(MAX_ATTEMPTS):
            state = self.load(camera_id, region)
            unwritten = tuple(e for e in state.unwritten if int(e["number"]) not in written)
            unpublished = tuple(d for d in state.unpublished if str(d["event_id"]) not in published)
            if (unwritten, unpublished) == (state.unwritten, state.unpublished):
                return
            cleared = replace(state, version=state.version + 1, unwritten=unwritten, unpublished=unpublished)
            try:
                self._ddb.put_item(
                    TableName=self.table_name,
                    Item=state_to_item(cleared, updated_at=format_timestamp(self._now())),
                    ConditionExpression="#v = :v",
                    ExpressionAttributeNames={"#v": "version"},
                    ExpressionAttributeValues={":v": {"N": str(state.version)}},
                )
                return
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    logger.warning(f"{self.table_name}/{camera_id}: outbox not cleared: {exc}")
                    return
            except BotoCoreError as exc:
                logger.warning(f"{self.table_name}/{camera_id}: outbox not cleared: {exc}")
                return
            self._sleep(random.uniform(0, 0.02))
        logger.warning(f"{self.table_name}/{camera_id}: outbox not cleared after {MAX_ATTEMPTS} attempts")

    def _error(self, exc: Exception, camera_id: str, operation: str) -> Exception:
        where = f"{self.table_name}/{camera_id}"
        return table_error(
            exc, where, operation, f"the state table name ({env.STATE_TABLE})", StateTableError
        )


def event_item(episode: Episode) -> dict[str, Any]:
    return {
        PARTITION_KEY: episode.camera_id,
        SORT_KEY: event_sort_key(episode),
        **episode.detail(),
        "number": episode.number,
    }
