"""`camsort serve`: the function's Function URL, played locally on 127.0.0.1.

Each HTTP request becomes a Function-URL-shaped event (payload format 2.0, binary bodies
base64-encoded, lower-case headers: ``tests/events/function_url_post_*.json``) and goes to the
very same ``functions.handler.lambda_handler`` the deployment runs; its response becomes the
HTTP response. Like a Function URL, a request whose payload would exceed Lambda's 6 MB gets
413 before the function runs.

What it does not play: the IAM (SigV4) authentication a Function URL with ``AuthType:
AWS_IAM`` performs. It listens on 127.0.0.1 only, and the event carries a fixed local caller
in ``requestContext.authorizer.iam``.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit
LOCAL_HOST = "127.0.0.1"
LOCAL_CALLER = {
    "accessKey": "local",
    "accountId": "000000000000",
    "callerId": "local",
    "cognitoIdentity": None,
    "principalOrgId": None,
    "userArn": "arn:aws:iam::000000000000:user/camsort-serve-local",
    "userId": "local",
}
TEXT_TYPES = ("application/json", "text/")


def function_url_event(
    *, method: str, path: str, query: str, headers: dict[str, str], body: bytes, source_ip: str, host: str
) -> dict[str, Any]:
    """The event a Function URL gives Lambda for this request (payload format 2.0)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    text = lowered.get("content-type", "").startswith(TEXT_TYPES)
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "authorizer": {"iam": dict(LOCAL_CALLER)},
            "domainName": host,
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": body.decode("utf-8", errors="replace") if text else base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": not text,
    }


def make_server(app, *, port: int = 8080) -> HTTPServer:
    """An HTTP server on 127.0.0.1:``port`` (0: a free port) answering through the Lambda handler."""
    from functions import wiring
    from functions.handler import lambda_handler
    from functions.observability import LocalLambdaContext

    wiring.install_app(app)
    context = LocalLambdaContext()

    class FunctionUrl(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            path, _, query = self.path.partition("?")
            event = function_url_event(
                method=self.command,
                path=path,
                query=query,
                headers=dict(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
                host=f"{LOCAL_HOST}:{self.server.server_port}",
            )
            if len(json.dumps(event)) > MAX_PAYLOAD_BYTES:
                detail = (
                    f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation"
                )
                self._send(
                    413,
                    {"content-type": "application/json"},
                    json.dumps({"error": "too_large", "detail": detail}).encode(),
                )
                return
            response = lambda_handler(event, context)
            payload = response.get("body") or ""
            data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode("utf-8")
            self._send(int(response.get("statusCode", 200)), response.get("headers") or {}, data)

        def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_GET = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
            pass  # the handler logs every answer as JSON already

    return HTTPServer((LOCAL_HOST, port), FunctionUrl)


def build_local_app(
    model_uri: str, *, endpoint_url: str | None = None, table: str | None = None, region: str | None = None
):
    """The function's App for a local model, with S3/DynamoDB clients on ``endpoint_url`` (moto) if given."""
    import tempfile

    import boto3

    from functions import wiring
    from functions.frames.model import ModelSession
    from functions.settings import Settings

    session = boto3.session.Session(
        region_name=region or "us-east-1"
    )  # credentials as the environment has them now
    s3 = session.client("s3", endpoint_url=endpoint_url)
    dynamodb = session.client("dynamodb", endpoint_url=endpoint_url)
    with tempfile.TemporaryDirectory(prefix="camsort-serve-") as cache_dir:
        model = ModelSession.open(model_uri, s3_client=s3, cache_dir=cache_dir)
    settings = Settings(model_uri=model_uri, results_table=table or "")
    return wiring.build_app(settings, s3_client=s3, dynamodb_client=dynamodb, model=model)


def serve(
    model_uri: str, *, port: int, endpoint_url: str | None, table: str | None, region: str | None, console
) -> None:
    app = build_local_app(model_uri, endpoint_url=endpoint_url, table=table, region=region)
    server = make_server(app, port=port)
    manifest = app.model.manifest
    url = f"http://{LOCAL_HOST}:{server.server_port}/"
    console.print(
        f"serving model {manifest.model_version} ({manifest.task}: {', '.join(manifest.labels)}) on {url}"
    )
    console.print(f"  curl --data-binary @frame.jpg -H 'content-type: image/jpeg' {url}")
    console.print(f"""  curl -H 'content-type: application/json' -d '{{"s3": "s3://bucket/key"}}' {url}""")
    console.print("Ctrl-C stops it.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
