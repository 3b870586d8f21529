"""A tiny HTTP proxy on 127.0.0.1 in front of moto that answers chosen requests with real-shaped errors.

Point the function's ``AWS_ENDPOINT_URL`` at the proxy and every AWS call it makes goes through
here: most are forwarded to moto unchanged, the ones a :class:`Fault` matches get the error AWS
would send (same status, same protocol-specific error body), so botocore's own retry logic and
the function's error mapping run exactly as they would against AWS.

``latency_s`` adds a fixed delay to every call before it is answered (forwarded or faulted),
e.g. 0.020 for an in-region round trip: moto on 127.0.0.1 answers in about a millisecond,
AWS in 10-30 ms, and hiding that wait is what the function's concurrent I/O is for. The
server is threaded, so concurrent calls wait side by side, as they would on a network.

``proxy.requests`` counts every request it receives by ``service:Operation`` (and keeps the
DynamoDB writes' items): what a run would be billed for (infra/local/operations.py).
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import struct
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from infra.local.moto_server import HOST
from infra.local.operations import RequestCounter
from infra.local.servers import LocalHTTPServer

# Hop-by-hop headers (RFC 9110) are about one connection and are never relayed.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


@dataclass(frozen=True)
class ProxiedRequest:
    method: str
    path: str  # path + query, as sent
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def amz_target(self) -> str:
        """``X-Amz-Target`` of JSON-protocol services, e.g. ``DynamoDB_20120810.PutItem``."""
        return self.headers.get("x-amz-target", "")

    @property
    def s3_bucket_and_key(self) -> tuple[str, str] | None:
        """(bucket, key) of a path-style S3 object request, else None."""
        path = urllib.parse.urlsplit(self.path).path
        parts = path.lstrip("/").split("/", 1)
        if len(parts) != 2 or not parts[1]:
            return None
        return parts[0], urllib.parse.unquote(parts[1])


@dataclass
class Fault:
    """Answer requests that ``matches`` with this response, ``times`` times (None: always)."""

    name: str
    matches: Callable[[ProxiedRequest], bool]
    status: int
    content_type: str
    body: bytes
    times: int | None = 1
    injected: int = 0
    # "respond": answer with status/body; "reset": close the connection with a TCP RST, no
    # answer; "delay": forward, but only after ``delay_s`` (slower than the client waits).
    action: str = "respond"
    delay_s: float = 0.0

    def take(self, request: ProxiedRequest) -> bool:
        if self.times is not None and self.injected >= self.times:
            return False
        if not self.matches(request):
            return False
        self.injected += 1
        return True


def dynamodb_throttling(operation: str = "PutItem", *, times: int = 1) -> Fault:
    """DynamoDB's ProvisionedThroughputExceededException (a 400 botocore retries) on ``operation``."""
    target = f"DynamoDB_20120810.{operation}"
    return Fault(
        name=f"dynamodb-throttling-{operation}",
        matches=lambda request: request.amz_target == target,
        status=400,
        content_type="application/x-amz-json-1.0",
        body=json.dumps(
            {
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "The level of configured provisioned throughput for the table was exceeded. "
                "Consider increasing your provisioning level with the UpdateTable API.",
            }
        ).encode(),
        times=times,
    )


def s3_access_denied(key: str, *, times: int | None = None) -> Fault:
    """S3's 403 AccessDenied for every request on object ``key`` (a non-transient failure)."""
    return s3_object_error(key, "AccessDenied", 403, "Access Denied", times=times)


def s3_customer_key_required(key: str, *, times: int | None = None) -> Fault:
    """What S3 answers a GetObject without the key of an SSE-C object: 400 InvalidRequest."""
    message = (
        "The object was stored using a form of Server Side Encryption. "
        "The correct parameters must be provided to retrieve the object."
    )
    return s3_object_error(key, "InvalidRequest", 400, message, times=times)


def s3_object_error(key: str, code: str, status: int, message: str, *, times: int | None = None) -> Fault:
    """S3's ``status`` ``code`` error for every request on object ``key``."""

    def matches(request: ProxiedRequest) -> bool:
        target = request.s3_bucket_and_key
        return target is not None and target[1] == key

    return Fault(
        name=f"s3-{code}-{key}",
        matches=matches,
        status=status,
        content_type="application/xml",
        body=_s3_error(code, message),
        times=times,
    )


def _is_dynamodb(request: ProxiedRequest) -> bool:
    return request.amz_target.startswith("DynamoDB_")


def _is_s3(request: ProxiedRequest) -> bool:
    # The function talks to S3 and DynamoDB only; S3 is the REST protocol (no X-Amz-Target).
    return not request.amz_target


def _s3_error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    ).encode()


def random_faults(
    rates: dict[str, float], *, seed: int, slow_s: float, max_slow: int | None = None
) -> list[Fault]:
    """Faults on a random share of requests, one rule per kind (rates per request, 0..1).

    Kinds: ``s3-slowdown`` (S3 503 SlowDown), ``dynamodb-throttling`` (400
    ProvisionedThroughputExceededException), ``internal-error`` (500: S3 InternalError or
    DynamoDB InternalServerError), ``connection-reset`` (a TCP RST, no answer), ``slow``
    (the answer comes after ``slow_s``, longer than the client's read timeout; at most
    ``max_slow`` times). Each kind draws from its own seeded generator: the rules are checked
    in order, each with its own probability.
    """
    known = {"s3-slowdown", "dynamodb-throttling", "internal-error", "connection-reset", "slow"}
    if unknown := set(rates) - known:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; expected some of {sorted(known)}")

    def sometimes(kind: str, applies: Callable[[ProxiedRequest], bool]) -> Callable[[ProxiedRequest], bool]:
        rng = random.Random(f"{seed}-{kind}")
        rate = rates.get(kind, 0.0)
        return lambda request: applies(request) and rng.random() < rate

    faults = []
    if rates.get("s3-slowdown"):
        faults.append(Fault("s3-slowdown", sometimes("s3-slowdown", _is_s3), 503, "application/xml",
                            _s3_error("SlowDown", "Please reduce your request rate."), times=None))  # fmt: skip
    if rates.get("dynamodb-throttling"):
        throttled = dynamodb_throttling("PutItem")
        faults.append(Fault("dynamodb-throttling", sometimes("dynamodb-throttling", _is_dynamodb), 400,
                            throttled.content_type, throttled.body, times=None))  # fmt: skip
    if rates.get("internal-error"):
        # Half S3, half DynamoDB, each in its own protocol's shape.
        faults.append(Fault("internal-error-s3", sometimes("internal-error", _is_s3), 500, "application/xml",
                            _s3_error("InternalError", "We encountered an internal error. Please try again."),
                            times=None))  # fmt: skip
        body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                           "message": "Internal server error"}).encode()  # fmt: skip
        faults.append(Fault("internal-error-dynamodb", sometimes("internal-error", _is_dynamodb), 500,
                            "application/x-amz-json-1.0", body, times=None))  # fmt: skip
    if rates.get("connection-reset"):
        faults.append(Fault("connection-reset", sometimes("connection-reset", lambda r: True), 0, "", b"",
                            times=None, action="reset"))  # fmt: skip
    if rates.get("slow"):
        faults.append(Fault("slow", sometimes("slow", lambda r: True), 0, "", b"", times=max_slow,
                            action="delay", delay_s=slow_s))  # fmt: skip
    return faults


@dataclass
class ProxyStats:
    forwarded: int = 0
    injected: dict[str, int] = field(default_factory=dict)
    delayed: int = 0  # calls that waited latency_s


class FaultInjectingProxy:
    """``with FaultInjectingProxy(moto.endpoint_url, [dynamodb_throttling(times=8)]) as proxy: ...``."""

    def __init__(
        self,
        upstream_url: str,
        faults: list[Fault] | None = None,
        host: str = HOST,
        *,
        latency_s: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        upstream = urllib.parse.urlsplit(upstream_url)
        if upstream.scheme != "http" or upstream.hostname is None:
            raise ValueError(f"upstream_url must be http://host:port, got {upstream_url!r}")
        if latency_s < 0:
            raise ValueError(f"latency_s must be >= 0, got {latency_s}")
        self.latency_s = latency_s
        self._sleep = sleep
        self.upstream_host = upstream.hostname
        self.upstream_port = upstream.port or 80
        self.faults = list(faults or [])
        self.stats = ProxyStats()
        self.requests = RequestCounter()
        self._lock = threading.Lock()
        self._server = LocalHTTPServer((host, 0), self._handler_class())
        self.endpoint_url = f"http://{host}:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def injected(self, name: str) -> int:
        with self._lock:
            return self.stats.injected.get(name, 0)

    def start(self) -> FaultInjectingProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FaultInjectingProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _delay(self) -> None:
        """The round trip a real network would add (outside the lock: calls wait side by side)."""
        if self.latency_s > 0:
            self._sleep(self.latency_s)
            with self._lock:
                self.stats.delayed += 1

    def _pick_fault(self, request: ProxiedRequest) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.take(request):
                    self.stats.injected[fault.name] = self.stats.injected.get(fault.name, 0) + 1
                    return fault
            self.stats.forwarded += 1
            return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_RelayHandler,), {"proxy": self})


class _RelayHandler(BaseHTTPRequestHandler):
    """One request: recorded, delayed, then answered by a fault or relayed to the upstream server."""

    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: the handler writes the headers and the body in two sends; with Nagle's
    # algorithm the body waits for the client's delayed ACK of the headers (~40 ms on Linux), so
    # every proxied call cost ~23 ms instead of ~2.6 (measured; bench/perf's handler at added latency).
    disable_nagle_algorithm = True
    proxy: FaultInjectingProxy  # set on the subclass each proxy makes

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        pass  # quiet: tests and the demo read outcomes, not access logs

    def _relay(self) -> None:
        request = ProxiedRequest(
            method=self.command,
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self._read_body(),
        )
        self.proxy.requests.record(request.method, request.path, request.headers, request.body)
        self.proxy._delay()
        fault = self.proxy._pick_fault(request)
        if fault is not None and fault.action == "delay":
            time.sleep(fault.delay_s)  # the client has given up by now; then answer anyway
            fault = None
        if fault is None:
            self._forward(request)
        elif fault.action == "reset":
            # SO_LINGER 0: close() sends a RST, as a dropped connection does.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
        else:
            self._respond(
                fault.status,
                [("Content-Type", fault.content_type), ("x-amzn-RequestId", str(uuid.uuid4()))],
                fault.body,
            )

    def _forward(self, request: ProxiedRequest) -> None:
        connection = http.client.HTTPConnection(
            self.proxy.upstream_host, self.proxy.upstream_port, timeout=60
        )
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            if request.body or self.command in ("PUT", "POST"):
                headers["Content-Length"] = str(len(request.body))
            connection.request(self.command, self.path, body=request.body, headers=headers)
            response = connection.getresponse()
            body = response.read()
            # A HEAD answer keeps upstream's Content-Length (the object's size) with no body.
            keep_length = self.command == "HEAD"
            relayed = [
                (k, v)
                for k, v in response.getheaders()
                if k.lower() not in _HOP_BY_HOP and (keep_length or k.lower() != "content-length")
            ]
            try:
                self._respond(response.status, relayed, body, add_length=not keep_length)
            except OSError:
                self.close_connection = True  # the client left (it timed out first)
        finally:
            connection.close()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    # Trailers end with an empty line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _respond(
        self, status: int, headers: list[tuple[str, str]], body: bytes, add_length: bool = True
    ) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if add_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _relay
