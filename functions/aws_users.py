"""Everything the function calls AWS through, in one list.

The function's IAM statements are derived from the ``@requires`` declarations on these
(infra/policy.py); an adapter the function starts to use belongs here too, or the deployed
role (and the local principal moto enforces) will refuse its calls. A separate module because
the adapters import :mod:`functions.wiring`, which must not import them back.
"""

from __future__ import annotations

from functions.camera_state import CameraStates
from functions.event_bus import EventPublisher
from functions.jobs import open_job_model
from functions.model import fetch_model
from functions.results import ResultsTable
from functions.review_queue import ReviewQueue
from functions.shards import ShardStore
from functions.storage import FrameStore
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
