"""Everything each function calls AWS through, in one list per role.

The functions' IAM statements are derived from the ``@requires`` declarations on these
(infra/deploy/policy.py); an adapter a function starts to use belongs here too, or the deployed
role (and the local principal moto enforces) will refuse its calls. A separate module because
the adapters import :mod:`functions.wiring`, which must not import them back.

Methods rather than whole classes where a class also serves other callers: the results
table's ``GetItem`` / ``Query`` readers (``get``, ``iter_camera``) belong to the CLI and the
audit, so neither the classifier nor the HTTP function is granted them.
"""

from __future__ import annotations

from functions.archive.jobs import open_job_model
from functions.archive.shards import ShardStore
from functions.frames.model import fetch_model
from functions.state.camera_state import CameraStates
from functions.state.event_bus import EventPublisher
from functions.stores.camera_configs import CameraConfigObjects
from functions.stores.results import ResultsTable
from functions.stores.review_queue import ReviewQueue
from functions.stores.storage import FrameStore
from functions.wiring import open_candidate, open_named_models

# What the classifier writes and reads around one frame's result, whoever invokes it.
_RESULT_CALLS: tuple[object, ...] = (ResultsTable.put_result, ResultsTable.existing_results)

# `classify` (SQS) and `backfill` (S3 Batch Operations): one role.
AWS_USERS: tuple[object, ...] = (
    FrameStore,
    *_RESULT_CALLS,
    ResultsTable.record_shadow,
    ResultsTable.start_decode,  # a redelivered frame's decode mark (HTTP frames are never redelivered)
    ResultsTable.finish_decode,
    fetch_model,
    open_job_model,
    ShardStore,
    ReviewQueue,
    open_candidate,
    open_named_models,
    CameraConfigObjects.fetch,
    CameraStates,
    EventPublisher,
)

# The Function URL's own function (serverless.yml `http`): it reads frames (and its model) and,
# with write=true, records a result and its side effects. Its stage runs without tags and
# without a shadow candidate (serverless.yml sets both off for it), so it may write no object
# tag, read no other model version and write no feature shard.
HTTP_USERS: tuple[object, ...] = (
    FrameStore.get_frame,
    FrameStore.head_frame,
    *_RESULT_CALLS,
    fetch_model,
    # A frame written on request gets its camera's regions, answered by the named models.
    open_named_models,
    CameraConfigObjects.fetch,
    ReviewQueue,
    CameraStates,
    EventPublisher,
)
