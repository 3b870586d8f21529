"""training.data.dataset from s3://bucket/prefix/ on a moto server over HTTP (127.0.0.1)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.aws import aws_client, unique_name
from training.data.dataset import load_dataset
from training.data.loading import DatasetError

pytestmark = pytest.mark.e2e

PAGE_SIZE = 7


def upload_folder(s3_client, bucket: str, prefix: str, root: Path) -> int:
    count = 0
    for path in sorted(root.rglob("*.jpg")):
        s3_client.put_object(
            Bucket=bucket, Key=prefix + path.relative_to(root).as_posix(), Body=path.read_bytes()
        )
        count += 1
    return count


def relative(uri: str, root: str) -> str:
    return uri[len(root) :].lstrip("/")


def count_list_calls(s3_client) -> list[int]:
    calls: list[int] = []
    s3_client.meta.events.register("after-call.s3.ListObjectsV2", lambda **_: calls.append(1))
    return calls


def test_s3_dataset_equals_the_local_one(s3_client, frames_bucket, synthetic_frames_dir, synthetic_dataset):
    prefix = "training/v1/"
    uploaded = upload_folder(s3_client, frames_bucket, prefix, synthetic_frames_dir)
    good = next((synthetic_frames_dir / "car").glob("*.jpg")).read_bytes()
    extra = {
        f"{prefix}car/cut-in-half.jpg": good[: len(good) // 2],
        f"{prefix}bus/": b"",  # a console-made "folder" placeholder: not a file
        f"{prefix}bus/index.html": b"<html/>",  # ignored: not an image name
        f"{prefix}stray.jpg": good,  # ignored: no label folder
        "elsewhere/bus/other.jpg": good,  # outside the prefix: never listed
    }
    for key, body in extra.items():
        s3_client.put_object(Bucket=frames_bucket, Key=key, Body=body)
    list_calls = count_list_calls(s3_client)

    source = f"s3://{frames_bucket}/{prefix}"
    dataset = load_dataset(source, s3_client=s3_client, page_size=PAGE_SIZE, max_workers=4, progress=False)

    listed = uploaded + 4  # the objects under the prefix
    assert len(list_calls) == math.ceil(listed / PAGE_SIZE) > 1  # pagination really happened
    assert dataset.labels == synthetic_dataset.labels
    assert dataset.summary() == {
        **synthetic_dataset.summary(),
        "source": source,
        "skipped": 1,
        "skipped_reasons": {"truncated_or_corrupt": 1},
        "ignored_files": 2,
    }
    [skipped] = dataset.skipped
    assert skipped.uri == f"{source}car/cut-in-half.jpg" and skipped.uri in skipped.detail
    local_root = str(synthetic_frames_dir)
    assert [relative(i.uri, source) for i in dataset.items] == [
        relative(i.uri, local_root) for i in synthetic_dataset.items
    ]
    assert dataset.sha256s() == synthetic_dataset.sha256s()
    assert [i.label for i in dataset.items] == [i.label for i in synthetic_dataset.items]
    assert np.array_equal(dataset.pixels(), synthetic_dataset.pixels())


def test_default_client_follows_aws_endpoint_url(aws_env, s3_client, frames_bucket, synthetic_frames_dir):
    upload_folder(s3_client, frames_bucket, "", synthetic_frames_dir)
    # no client passed: boto3.client("s3") reads AWS_ENDPOINT_URL (set by aws_env) -> moto
    dataset = load_dataset(f"s3://{frames_bucket}", progress=False, min_per_label=12)
    assert dataset.counts() == {"bus": 12, "car": 12, "empty": 12}
    assert dataset.items[0].uri == f"s3://{frames_bucket}/bus/bus-0-00000.jpg"


def test_empty_prefix_is_a_clear_error(s3_client, frames_bucket):
    s3_client.put_object(Bucket=frames_bucket, Key="train/bus/a.txt", Body=b"x")
    with pytest.raises(DatasetError, match=r"no \.jpg/\.jpeg/\.png images.*1 other file") as error:
        load_dataset(f"s3://{frames_bucket}/train/", s3_client=s3_client, progress=False)
    assert frames_bucket in str(error.value)


def test_missing_bucket_is_a_clear_error(s3_client):
    bucket = unique_name("camsort-missing")
    with pytest.raises(DatasetError, match="does not exist") as error:
        load_dataset(f"s3://{bucket}/train/", s3_client=s3_client, progress=False)
    assert bucket in str(error.value)


def test_object_deleted_between_listing_and_download_is_skipped(
    s3_client, frames_bucket, synthetic_frames_dir
):
    upload_folder(s3_client, frames_bucket, "t/", synthetic_frames_dir)
    doomed = "t/car/car-0-00003.jpg"
    deleter = aws_client("s3", s3_client.meta.endpoint_url)

    def delete_just_before_get(params, **_):
        # a real race on the real server: the object goes away after it was listed
        if params.get("Key") == doomed:
            deleter.delete_object(Bucket=frames_bucket, Key=doomed)

    s3_client.meta.events.register("before-parameter-build.s3.GetObject", delete_just_before_get)
    dataset = load_dataset(f"s3://{frames_bucket}/t/", s3_client=s3_client, progress=False)
    [skipped] = dataset.skipped
    assert (skipped.uri, skipped.reason, skipped.label) == (
        f"s3://{frames_bucket}/{doomed}",
        "missing",
        "car",
    )
    assert dataset.counts() == {"bus": 12, "car": 11, "empty": 12}
