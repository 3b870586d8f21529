"""Multi-label training sets on S3 (moto server over HTTP): folder names and a labels file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.e2e.test_dataset_s3 import upload_folder
from training.data.dataset import load_multilabel_dataset, parse_label_set
from training.data.synthetic import write_multilabel_dataset

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("ml-s3")
    write_multilabel_dataset(root, 2, seed=5, width=160, height=90)
    return root


def test_s3_folders_and_s3_labels_file_equal_the_local_tree(s3_client, frames_bucket, tree):
    prefix = "ml/v1/"
    assert upload_folder(s3_client, frames_bucket, prefix, tree) == 16
    local = load_multilabel_dataset(str(tree), progress=False)

    from_folders = load_multilabel_dataset(
        f"s3://{frames_bucket}/{prefix}", s3_client=s3_client, progress=False
    )
    rows = [
        {"path": uri.split(str(tree) + "/")[1], "labels": list(item.labels)}
        for uri, item in ((item.uri, item) for item in local.items)
    ]
    # one row by its full s3:// URI, the others relative to the prefix
    rows[0]["path"] = f"s3://{frames_bucket}/{prefix}{rows[0]['path']}"
    s3_client.put_object(
        Bucket=frames_bucket, Key="ml/labels.jsonl", Body="".join(json.dumps(r) + "\n" for r in rows).encode()
    )
    from_file = load_multilabel_dataset(
        f"s3://{frames_bucket}/{prefix}",
        labels_file=f"s3://{frames_bucket}/ml/labels.jsonl",
        s3_client=s3_client,
        progress=False,
    )
    for dataset in (from_folders, from_file):
        assert dataset.labels == local.labels
        assert [i.sha256 for i in dataset.items] == [i.sha256 for i in local.items]
        assert np.array_equal(dataset.targets(), local.targets())
        assert all(item.labels == parse_label_set(item.uri.split("/")[-2]) for item in dataset.items)
