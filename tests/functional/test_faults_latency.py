"""infra.local.faults: the proxy's fixed added latency applies once to every AWS call (forwarded or faulted).

The sleep is injected and recorded, so nothing here depends on a clock.
"""

from __future__ import annotations

import socket
import threading

import pytest
from botocore.exceptions import ClientError

from infra.local.faults import FaultInjectingProxy, dynamodb_throttling
from tests.fixtures.aws import aws_client


class RecordedSleep:
    def __init__(self):
        self.calls: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.calls.append(seconds)


def test_every_call_waits_the_added_latency_once(aws):
    sleep = RecordedSleep()
    with FaultInjectingProxy(
        aws.endpoint_url, [dynamodb_throttling("GetItem", times=None)], latency_s=0.02, sleep=sleep
    ) as proxy:
        s3 = aws_client("s3", proxy.endpoint_url)
        dynamodb = aws_client("dynamodb", proxy.endpoint_url)
        s3.put_object(Bucket=aws.bucket, Key="frames/x.jpg", Body=b"x")
        assert s3.get_object(Bucket=aws.bucket, Key="frames/x.jpg")["Body"].read() == b"x"
        with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):  # the fault waits too
            dynamodb.get_item(
                TableName=aws.table, Key={"object_id": {"S": "a"}, "object_version": {"S": "b"}}
            )
        stats = proxy.stats

    throttled = stats.injected["dynamodb-throttling-GetItem"]  # the call and botocore's retries
    assert throttled >= 1 and stats.forwarded == 2
    assert sleep.calls == [0.02] * (2 + throttled) and stats.delayed == 2 + throttled


def test_no_latency_by_default_and_negative_refused(aws):
    sleep = RecordedSleep()
    with FaultInjectingProxy(aws.endpoint_url, sleep=sleep) as proxy:
        aws_client("s3", proxy.endpoint_url).list_objects_v2(Bucket=aws.bucket)
    assert sleep.calls == [] and proxy.stats.delayed == 0
    with pytest.raises(ValueError, match="latency_s"):
        FaultInjectingProxy(aws.endpoint_url, latency_s=-1)


def test_the_proxy_sends_without_waiting_for_delayed_acks(aws, monkeypatch):
    """Headers and body go out in two sends: with Nagle's algorithm on, the body waited for the
    client's delayed ACK (~23 ms a call instead of ~2.6, measured), which the perf stage then
    billed as the function's own time."""
    nodelay: list[int] = []
    with FaultInjectingProxy(aws.endpoint_url) as proxy:
        handler = proxy._server.RequestHandlerClass
        original_setup = handler.setup

        def setup(self):
            original_setup(self)
            nodelay.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

        monkeypatch.setattr(handler, "setup", setup)
        aws_client("s3", proxy.endpoint_url).list_objects_v2(Bucket=aws.bucket)
    assert nodelay and all(nodelay)


def test_the_proxy_takes_a_batch_of_connections_at_once(aws):
    """A fresh container's batch opens up to its I/O pool's width of connections at once. With
    socketserver's backlog of 5, the SYNs past it were dropped and retransmitted a second later;
    here 20 clients connect while the proxy accepts none, and the kernel queues them all."""
    proxy = FaultInjectingProxy(aws.endpoint_url)  # not started: nothing accepts
    host, port = proxy._server.server_address[:2]
    clients = []
    try:
        for _ in range(20):
            clients.append(socket.create_connection((host, port), timeout=2))
    finally:
        for client in clients:
            client.close()
        proxy._server.server_close()
    assert len(clients) == 20
