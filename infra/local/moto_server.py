"""moto's server, started by the project itself on 127.0.0.1 at a free port.

It runs in a child process (moto's own ``moto.server.main``) so that the code under test
talks to it over real HTTP exactly as it would talk to AWS, and so that its state dies with it.

IAM: the server starts with one IAM user, ``camsort-local-admin``, allowed everything, whose
access key is :data:`LOCAL_AWS_ENV`'s (moto cannot be given a chosen key through its API, so
the child process adds the key to moto's IAM backend before it serves, and again after every
``/moto-api/reset``). So every client the project builds keeps working, unchanged, once
:func:`enforce_iam` turns moto's IAM checks on (the local stack does: the function then runs
under its own role, see infra/local/iam.py).

Presigned requests: moto 5.2.5 answers 500 to any S3 request without an ``Authorization``
header once IAM is enforced. So the server runs moto's app behind
:class:`infra.local.presigned_gateway.PresignedGateway`, which checks presigned URLs and POST forms
as S3 does and forwards what passes as its signer (docs/presigned-uploads.md).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from infra import checkout_environment

HOST = "127.0.0.1"
# The local admin's credentials and the region. Not secrets: they only open a moto server on
# 127.0.0.1. No session token: they are an IAM user's long-term key, and moto (like AWS)
# refuses a user's key sent with a token.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
ADMIN_USER = "camsort-local-admin"
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
# The child process: seed the admin, then moto's own server main().
# Loopback is never reached through a proxy. (urllib.request.urlopen's global opener reads the
# proxy variables once, on first use, and keeps them: a process that once ran with a proxy set
# would send every later call to the moto server to that proxy.)
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))

_SERVER_MAIN = "import sys; from infra.local.moto_server import serve; serve(sys.argv[1:])"


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class MotoServerError(RuntimeError):
    pass


def set_iam_enforcement(endpoint_url: str, enforced: bool) -> None:
    """Turn moto's IAM checks on or off (server mode: ``POST /moto-api/reset-auth``).

    The body is moto's INITIAL_NO_AUTH_ACTION_COUNT: how many more requests pass unchecked
    (0: every request from now on is authenticated and authorized; "inf": none is).
    The body must be sent as text: moto reads the raw request data.
    """
    request = urllib.request.Request(
        f"{endpoint_url}/moto-api/reset-auth",
        data=b"0" if enforced else b"inf",
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    LOOPBACK.open(request, timeout=10).read()


def enforce_iam(endpoint_url: str) -> None:
    set_iam_enforcement(endpoint_url, True)


def seed_admin() -> None:
    """In the server process: the admin user with LOCAL_AWS_ENV's key, allowed everything."""
    import json

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    backend = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    if ADMIN_USER in backend.users:
        return
    backend.create_user(LOCAL_AWS_ENV["AWS_DEFAULT_REGION"], ADMIN_USER)
    backend.put_user_policy(ADMIN_USER, "administrator", json.dumps(ADMIN_POLICY))
    key = backend.create_access_key(ADMIN_USER)
    backend.access_keys.pop(key.physical_resource_id, None)
    key.access_key_id = LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"]
    key.secret_access_key = LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"]
    backend.access_keys[key.physical_resource_id] = key


def make_dynamodb_writes_atomic() -> None:
    """Run moto's DynamoDB writes one at a time, as DynamoDB applies each item's writes.

    DynamoDB evaluates a write's condition and applies the write atomically. moto's server
    answers requests on several threads and checks a condition, then writes, with nothing in
    between held: two concurrent ``ADD #n :one`` updates conditional on ``#n < :limit`` both
    passed it (the review quota let 3 of a 2-frame quota through). One lock over every write
    (a stronger order than DynamoDB's per item, which no caller can tell apart) closes that.

    Re-entrant: moto's ``transact_write_items`` applies its writes through the backend's own
    ``put_item`` / ``update_item`` / ``delete_item``, which are wrapped too; a plain lock would
    be taken twice by the same thread and hang the first transaction for ever. The outermost
    write holds the lock until the whole transaction (its rollback included) is done.
    """
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        write = getattr(DynamoDBBackend, name)

        def atomic(self, *args, _write=write, **kwargs):
            with lock:
                return _write(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, functools.wraps(write)(atomic))


def serve_presigned_requests() -> None:
    """Put :class:`infra.local.presigned_gateway.PresignedGateway` in front of moto's WSGI app.

    moto's server main() builds its app and hands it to werkzeug's ``run_simple``; wrapping the
    app there keeps moto's own main() (options, threading, request handler) unchanged.
    """
    import moto.server

    from infra.local.presigned_gateway import PresignedGateway

    run_simple = moto.server.run_simple

    def run_behind_gateway(host, port, application, **options):
        return run_simple(host, port, PresignedGateway(application), **options)

    moto.server.run_simple = run_behind_gateway


def serve(argv: list[str]) -> None:
    """The child process: moto's server with the admin seeded (and re-seeded after a reset)."""
    import moto.server
    from moto.moto_api._internal.models import MotoAPIBackend

    reset = MotoAPIBackend.reset

    def reset_and_seed(self) -> None:
        reset(self)
        seed_admin()

    MotoAPIBackend.reset = reset_and_seed
    seed_admin()
    make_dynamodb_writes_atomic()
    serve_presigned_requests()
    if "--name" in argv:  # a label for the process list only
        index = argv.index("--name")
        del argv[index : index + 2]
    moto.server.main(argv)


class MotoServer:
    """`with MotoServer() as server: boto3.client("s3", endpoint_url=server.endpoint_url)`."""

    def __init__(self, port: int | None = None, log_path: Path | None = None, startup_timeout: float = 90.0):
        self.port = port or free_port()
        self.endpoint_url = f"http://{HOST}:{self.port}"
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen | None = None
        self._log_handle = None

    def start(self) -> MotoServer:
        env = checkout_environment({**os.environ, **LOCAL_AWS_ENV})
        env.pop("AWS_SESSION_TOKEN", None)
        # Kept open for the server's lifetime and closed in stop().
        self._log_handle = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(
            # "moto.server" stays on the command line: tools recognise the process by it.
            [sys.executable, "-c", _SERVER_MAIN, "-H", HOST, "-p", str(self.port), "--name", "moto.server"],
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise MotoServerError(
                    f"moto server exited with code {self._process.returncode} while starting on port {self.port}"
                    + (f"; see {self.log_path}" if self.log_path else "")
                )
            try:
                LOOPBACK.open(f"{self.endpoint_url}/moto-api/data.json", timeout=1).read()
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.stop()
        raise MotoServerError(
            f"moto server did not answer on {self.endpoint_url} within {self.startup_timeout}s"
        )

    @property
    def pid(self) -> int | None:
        """The server process id while it runs (the demo's --keep-running records it)."""
        return self._process.pid if self._process else None

    def reset(self) -> None:
        """Drop every resource (moto's own reset API); the admin user is seeded again."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        LOOPBACK.open(request, timeout=10).read()

    def enforce_iam(self) -> None:
        enforce_iam(self.endpoint_url)

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log_handle not in (None, subprocess.DEVNULL):
            self._log_handle.close()
        self._process = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
