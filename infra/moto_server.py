"""moto's server, started by the project itself on 127.0.0.1 at a free port.

It runs in a child process (`python -m moto.server`) so that the code under test talks to
it over real HTTP exactly as it would talk to AWS, and so that its state dies with it.
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

HOST = "127.0.0.1"
# Credentials and region for talking to moto. They are not secrets: moto accepts anything.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class MotoServerError(RuntimeError):
    pass


class MotoServer:
    """`with MotoServer() as server: boto3.client("s3", endpoint_url=server.endpoint_url)`."""

    def __init__(self, port: int | None = None, log_path: Path | None = None, startup_timeout: float = 30.0):
        self.port = port or free_port()
        self.endpoint_url = f"http://{HOST}:{self.port}"
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen | None = None
        self._log_handle = None

    def start(self) -> MotoServer:
        env = {**os.environ, **LOCAL_AWS_ENV}
        # Kept open for the server's lifetime and closed in stop().
        self._log_handle = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)],
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
                urllib.request.urlopen(f"{self.endpoint_url}/moto-api/data.json", timeout=1).read()
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
        """Drop every resource (moto's own reset API)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).read()

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
