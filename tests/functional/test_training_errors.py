"""Training's input errors: one clear line naming what to fix, never a traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from camsort.cli import main
from infra.local.moto_server import free_port
from tests.fixtures.aws import aws_client
from training.data.dataset import load_dataset
from training.data.loading import DatasetError


def test_train_reports_a_bad_dataset_without_a_traceback(tmp_path):
    (tmp_path / "data" / "car").mkdir(parents=True)
    (tmp_path / "data" / "car" / "a.jpg").write_bytes(b"not a jpeg")
    result = CliRunner().invoke(
        main, ["train", str(tmp_path / "data"), "--out", str(tmp_path / "model"), "--weights", "none"]
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert str(tmp_path / "data") in result.output
    assert not (tmp_path / "model").exists()


def test_unreachable_endpoint_is_a_clear_error():
    client = aws_client("s3", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(DatasetError, match="listing failed.*check the endpoint"):
        load_dataset("s3://frames/train/", s3_client=client, progress=False)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--backbone-from", "s3://frames/models/v1/"], "it needs --features"),
        (["--features", "s3://frames/features/" + "a" * 64 + "/", "--precision", "int8"], "drop --weights"),
        (["--features", "s3://frames/features/" + "a" * 64 + "/", "--task", "multilabel"], "not supported"),
    ],
)
def test_feature_shard_options_are_checked_before_any_work(tmp_path, extra, message):
    result = CliRunner().invoke(
        main, ["train", "s3://frames/training/", "--out", str(tmp_path / "model"), *extra]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "model").exists()
