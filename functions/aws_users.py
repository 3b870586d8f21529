"""Everything the function calls AWS through, in one list.

The function's IAM statements are derived from the ``@requires`` declarations on these
(infra/deploy/policy.py); an adapter the function starts to use belongs here too, or the deployed
role (and the local principal moto enforces) will refuse its calls. A separate module because
the adapters import :mod:`functions.wiring`, which must not import them back.
"""

from __future__ import annotations

from functions.archive.jobs import open_job_model
from functions.archive.shards import ShardStore
from functions.frames.model import fetch_model
from functions.state.camera_state import CameraStates
from functions.state.event_bus import EventPublisher
from functions.stores.results import ResultsTable
from functions.stores.review_queue import ReviewQueue
from functions.stores.storage import FrameStore
from functions.wiring import open_candidate

AWS_USERS: tuple[object, ...] = (
    FrameStore,
    ResultsTable,
    fetch_model,
    open_job_model,
    ShardStore,
    ReviewQueue,
    open_candidate,
    CameraStates,
    EventPublisher,
)
