"""The ``compact`` function: feature shards -> Parquet (functions/archive/compaction.py).

Invoked on a schedule (an EventBridge ``Scheduled Event``: every backbone folder under
``features/``) and by ``camsort backfill --mode featurize`` when its job ends
(``{"backboneSha256": "<64 hex>"}``: that backbone only). It ships in its own artifact
(``build/archive-<arch>.zip``: pyarrow + numpy + functions/), never in the classify one, and runs
under its own role, derived from :data:`functions.archive.compaction.COMPACTION_CALLS`.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3

from functions import env
from functions.archive.compaction import COMPACTION_CALLS, MAX_POINTERS, FeatureArchive, compact_features
from functions.concurrency import CLIENT_CONFIG
from functions.errors import ConfigurationError
from functions.iam import declared_permissions
from functions.observability import logger

FEATURES_PREFIX = "features/"


def compaction_permissions():
    return declared_permissions(*COMPACTION_CALLS)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bucket = os.environ.get(env.FRAMES_BUCKET)
    if not bucket:
        raise ConfigurationError(f"{env.FRAMES_BUCKET} is not set: the bucket holding features/")
    return compact_bucket(FeatureArchive(_s3()), bucket, event.get("backboneSha256"))


def compact_bucket(
    archive: FeatureArchive,
    bucket: str,
    backbone_sha256: str | None = None,
    *,
    max_pointers: int = MAX_POINTERS,
) -> dict[str, Any]:
    """Compact one backbone's shards, or every backbone's; the reports by backbone."""
    backbones = [backbone_sha256] if backbone_sha256 else archive.list_backbones(bucket, FEATURES_PREFIX)
    reports = {}
    for backbone in backbones:
        report = compact_features(
            archive, bucket, backbone, features_prefix=FEATURES_PREFIX, max_pointers=max_pointers
        )
        logger.info("compacted", extra=report.to_dict())
        reports[backbone] = report.to_dict()
    return {"bucket": bucket, "backbones": reports}


@cache
def _s3() -> Any:
    """Once per container."""
    return boto3.client("s3", config=CLIENT_CONFIG)
