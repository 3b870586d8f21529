"""`camsort classify`: files and s3:// keys (moto over HTTP) through the function's loader and rules."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from camsort.cli import main
from tests.functional.test_handler import jpeg

pytestmark = pytest.mark.e2e
YELLOW, BLACK, RED = (255, 255, 0), (0, 0, 0), (255, 0, 0)


def run(*args):
    return CliRunner().invoke(main, ["classify", *args], catch_exceptions=False, terminal_width=200)


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, data in {
        "yellow.jpg": jpeg(YELLOW),
        "black.jpg": jpeg(BLACK),
        "broken.jpg": jpeg(RED)[:300],
    }.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    return paths


def test_json_answers_for_files_and_s3_keys(
    files, tiny_multilabel_model_dir, aws_env, moto_server, s3_client, frames_bucket
):
    s3_client.put_object(Bucket=frames_bucket, Key="review/a.jpg", Body=jpeg(RED))
    s3_client.put_object(Bucket=frames_bucket, Key="review/b.jpg", Body=jpeg(BLACK))
    s3_client.put_object(Bucket=frames_bucket, Key="review/notes.txt", Body=b"skip me")
    sources = [
        str(files["yellow.jpg"]),
        str(files["broken.jpg"]),
        f"s3://{frames_bucket}/review/",
        f"s3://{frames_bucket}/gone.jpg",
    ]
    result = run(
        *sources,
        "--model",
        str(tiny_multilabel_model_dir),
        "--json",
        "--endpoint-url",
        moto_server.endpoint_url,
    )
    assert result.exit_code == 0, result.output
    answers = json.loads(result.output)
    assert [a["source"] for a in answers] == [
        str(files["yellow.jpg"]),
        str(files["broken.jpg"]),
        f"s3://{frames_bucket}/review/a.jpg",
        f"s3://{frames_bucket}/review/b.jpg",
        f"s3://{frames_bucket}/gone.jpg",
    ]
    assert (
        answers[0]["labels"] == ["bus", "car"]
        and answers[2]["labels"] == ["bus"]
        and answers[3]["labels"] == ["night"]
    )
    assert answers[1]["status"] == "rejected" and answers[1]["reason"] == "truncated_or_corrupt"
    assert answers[4]["status"] == "rejected" and answers[4]["reason"] == "superseded"
    assert all(a["model_version"] == "tiny-ml-1" for a in answers)


def test_csv_has_one_probability_column_per_label(files, tiny_multilabel_model_dir):
    result = run(
        str(files["yellow.jpg"]), str(files["black.jpg"]), "--model", str(tiny_multilabel_model_dir), "--csv"
    )
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["answer"] for r in rows] == ["bus;car", "night"]
    assert float(rows[1]["night"]) > 0.99 and float(rows[1]["bus"]) < 0.01


def test_table_for_a_multiclass_model(files, tiny_model_dir):
    result = run(str(files["yellow.jpg"]), str(files["broken.jpg"]), "--model", str(tiny_model_dir))
    assert result.exit_code == 0
    assert "multiclass" in result.output and result.output.count("rejected") == 1
    # yellow is half bus, half car for the tiny colour model: below both thresholds
    assert "unknown" in result.output
