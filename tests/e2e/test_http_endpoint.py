"""The HTTP endpoint over real HTTP: `camsort serve`'s server (127.0.0.1) -> Function-URL events ->
the Lambda handler, with the tiny real models and S3/DynamoDB on the moto server."""

from __future__ import annotations

import dataclasses
import http.client
import json
import threading
from pathlib import Path

import pytest

from functions import wiring
from functions.handler import handle
from functions.settings import Settings
from infra.ops.serve import MAX_PAYLOAD_BYTES, function_url_event, make_server
from tests.functional.test_handler import TIME_PATTERN, item_of, jpeg, tags_of

pytestmark = pytest.mark.e2e
EVENTS = Path(__file__).resolve().parents[1] / "events"
YELLOW, RED = (255, 255, 0), (255, 0, 0)


def build_app(aws, model, **overrides):
    settings = Settings(model_uri="injected", results_table=aws.table, key_pattern=TIME_PATTERN)
    settings = dataclasses.replace(settings, **overrides)
    return wiring.build_app(settings, s3_client=aws.s3, dynamodb_client=aws.dynamodb, model=model)


@pytest.fixture
def serve():
    servers = []

    def start(app):
        server = make_server(app, port=0)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return server.server_port

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()
    wiring.install_app(None)


def post(port: int, body: bytes, content_type: str, path: str = "/", method: str = "POST"):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request(method, path, body=body, headers={"content-type": content_type})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, json.loads(data) if data else None


def test_an_image_body_gets_the_label_set(aws, serve, tiny_multilabel_model):
    port = serve(build_app(aws, tiny_multilabel_model))
    status, answer = post(port, jpeg(YELLOW), "image/jpeg")
    assert status == 200
    assert answer["labels"] == ["bus", "car"] and answer["top_label"] in ("bus", "car")
    assert set(answer["probabilities"]) == {"bus", "car", "night"}
    assert answer["model_version"] == "tiny-ml-1" and answer["model_sha256"] == tiny_multilabel_model.sha256


def test_a_multiclass_model_answers_with_one_label(aws, serve, tiny_model):
    port = serve(build_app(aws, tiny_model))
    status, answer = post(port, jpeg(RED), "image/jpeg")
    assert status == 200 and answer["label"] == "bus" and "labels" not in answer
    assert answer["confidence"] == pytest.approx(answer["probabilities"]["bus"])


def test_bad_input_gets_a_4xx_with_the_loaders_reason(aws, serve, tiny_multilabel_model):
    port = serve(build_app(aws, tiny_multilabel_model, max_bytes=50_000))
    status, answer = post(port, b"GIF89a not a frame", "image/gif")
    assert status == 415 and answer["reason"] == "not_jpeg_or_png" and "JPEG or PNG" in answer["detail"]
    good = jpeg(YELLOW)
    status, answer = post(port, good[: len(good) // 2], "image/jpeg")
    assert status == 400 and answer["reason"] == "truncated_or_corrupt"
    status, answer = post(port, b"", "image/jpeg")
    assert status == 400 and answer["reason"] == "empty"
    status, answer = post(port, jpeg(YELLOW, size=(1600, 1200)) + b"\0" * 60_000, "image/jpeg")
    assert status == 413 and answer["reason"] == "too_many_bytes"
    status, answer = post(port, b"", "image/jpeg", method="GET")
    assert status == 405
    status, answer = post(port, b'{"bucket": "x"}', "application/json")
    assert status == 400 and "s3://bucket/key" in answer["detail"]


def test_a_payload_above_lambdas_6_mb_is_refused_before_the_function(aws, serve, tiny_multilabel_model):
    port = serve(build_app(aws, tiny_multilabel_model))
    status, answer = post(port, b"\xff" * (MAX_PAYLOAD_BYTES // 4 * 3 + 1024), "image/jpeg")  # base64 > 6 MB
    assert status == 413 and "smaller than 6291456 bytes" in answer["detail"]


def test_an_s3_key_is_classified_without_writing_unless_asked(aws, serve, tiny_multilabel_model):
    key = "frames/cam-07/20261122T080000000Z.jpg"
    put = aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=jpeg(YELLOW))
    etag = put["ETag"].strip('"')
    port = serve(build_app(aws, tiny_multilabel_model, write_tags=True))  # a stage that tags frames
    request = json.dumps({"s3": f"s3://{aws.bucket}/{key}"}).encode()
    status, answer = post(port, request, "application/json")
    assert status == 200 and answer["labels"] == ["bus", "car"] and answer["written"] is False
    assert item_of(aws, key, etag) is None and tags_of(aws, key) == {}  # nothing written

    status, answer = post(port, request, "application/json", path="/?write=true")
    assert status == 200 and answer["written"] is True and answer["labels"] == ["bus", "car"]
    item = item_of(aws, key, etag)
    assert item["labels"] == ["bus", "car"] and item["camera_id"] == "cam-07"
    assert item["event_name"] == "http:ClassifyRequest"
    assert tags_of(aws, key)["camsort-labels"] == "bus+car"

    status, answer = post(
        port, json.dumps({"s3": f"s3://{aws.bucket}/frames/none.jpg"}).encode(), "application/json"
    )
    assert status == 404 and answer["reason"] == "superseded"


def test_the_recorded_function_url_events(aws, tiny_multilabel_model):
    app = build_app(aws, tiny_multilabel_model)
    image_event = json.loads((EVENTS / "function_url_post_image.json").read_text())
    response = handle(image_event, lambda: app)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["labels"] == ["bus", "car"]  # the recorded body is a yellow frame
    s3_event = json.loads((EVENTS / "function_url_post_s3.json").read_text())
    # pointed at the test's bucket, as the handler tests do with recorded S3 events
    key = json.loads(s3_event["body"])["s3"].split("/", 3)[3]
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=jpeg(RED))
    s3_event["body"] = json.dumps({"s3": f"s3://{aws.bucket}/{key}"})
    response = handle(s3_event, lambda: app)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["labels"] == ["bus"]


def test_serve_builds_events_shaped_like_the_recorded_one():
    recorded = json.loads((EVENTS / "function_url_post_image.json").read_text())
    built = function_url_event(
        method="POST",
        path="/",
        query="",
        headers={"Content-Type": "image/jpeg"},
        body=b"\xff\xd8",
        source_ip="127.0.0.1",
        host="h",
    )
    assert set(built) == set(recorded)
    assert set(built["requestContext"]) == set(recorded["requestContext"])
    assert set(built["requestContext"]["http"]) == set(recorded["requestContext"]["http"])
    assert set(built["requestContext"]["authorizer"]["iam"]) == set(
        recorded["requestContext"]["authorizer"]["iam"]
    )
    assert built["isBase64Encoded"] is True and built["headers"] == {"content-type": "image/jpeg"}


def test_write_is_strict_other_prefixes_are_refused_and_a_5xx_names_only_the_request(aws, serve, tiny_model):
    key = "frames/cam-08/20261122T080000000Z.jpg"
    etag = aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=jpeg(RED))["ETag"].strip('"')
    port = serve(build_app(aws, tiny_model))
    uri = f"s3://{aws.bucket}/{key}"

    status, answer = post(port, json.dumps({"s3": uri, "write": "false"}).encode(), "application/json")
    assert (
        status == 200 and answer["written"] is False and item_of(aws, key, etag) is None
    )  # "false" is false
    for bad in ("yes", 1, None):
        status, answer = post(port, json.dumps({"s3": uri, "write": bad}).encode(), "application/json")
        assert status == 400 and '"write" must be true or false' in answer["detail"]
    status, answer = post(port, json.dumps({"s3": uri}).encode(), "application/json", path="/?write=1")
    assert status == 400 and "?write= must be true or false" in answer["detail"]
    assert item_of(aws, key, etag) is None

    # Outside the frames prefix: refused before any read (the object exists and the role could read it).
    aws.s3.put_object(Bucket=aws.bucket, Key="models/v1/manifest.json", Body=b"{}")
    status, answer = post(
        port, json.dumps({"s3": f"s3://{aws.bucket}/models/v1/manifest.json"}).encode(), "application/json"
    )
    assert status == 403 and answer["error"] == "forbidden" and "frames/" in answer["detail"]

    # A failure the caller cannot fix: 502 with a request id to quote, no internal text.
    port = serve(build_app(aws, tiny_model, results_table="camsort-no-such-table"))
    status, answer = post(port, json.dumps({"s3": uri, "write": True}).encode(), "application/json")
    assert status == 502 and answer["error"] == "internal_error" and answer["request_id"]
    assert "camsort-no-such-table" not in json.dumps(answer) and "DynamoDB" not in json.dumps(answer)
