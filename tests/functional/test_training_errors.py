"""Training's input errors: one clear line naming what to fix, never a traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from camsort.cli import main
from infra.moto_server import free_port
from tests.fixtures.aws import aws_client
from training.dataset import DatasetError, load_dataset


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
