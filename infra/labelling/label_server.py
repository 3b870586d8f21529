"""`camsort label SET`: the labelling page and its HTTP API, on 127.0.0.1 (stdlib http.server).

Routes (JSON in and out; the page uses nothing else, and neither does ``camsort demo --loop``):

* ``GET  /``                 the page (:mod:`infra.labelling.label_page`)
* ``GET  /api/set``          labels, every frame with its guess and decision, the progress
* ``POST /api/label``        ``{"ids": [...], "label": "bus"}``
* ``POST /api/skip``         ``{"ids": [...]}``
* ``POST /api/undo``         the last action, put back
* ``GET  /thumbs/<id>.jpg``  a thumbnail; ``GET /frames/<id>`` the frame itself (Label Studio's image URL)

Each POST is written to the set's files before the answer goes out (:class:`LabelStore`).
"""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from functions.errors import CamsortError, ConfigurationError
from infra.labelling.label_page import page_html
from infra.labelling.label_set import THUMBS_DIR, LabelStore
from infra.local.servers import LocalHTTPServer

HOST = "127.0.0.1"
_MAX_BODY = 1_000_000


def make_label_server(store: LabelStore, *, port: int = 0, fetch_frame=None) -> LocalHTTPServer:
    """A server for ``store`` on 127.0.0.1:``port`` (0: a free port); ``fetch_frame(key) -> bytes``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0]
            if path == "/":
                self._send(200, "text/html; charset=utf-8", page_html(store.directory.name).encode())
            elif path == "/api/set":
                self._json(200, store.state())
            elif path.startswith(f"/{THUMBS_DIR}/"):
                self._file(store.directory / THUMBS_DIR / Path(path).name)
            elif path.startswith("/frames/"):
                self._frame(path.rsplit("/", 1)[-1])
            else:
                self._json(404, {"error": f"no such page {path}"})

        def do_POST(self) -> None:  # noqa: N802
            try:
                length = int(self.headers.get("content-length") or 0)
                if length > _MAX_BODY:
                    raise ValueError("request body too large")
                body = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("expected a JSON object")
                if self.path == "/api/label":
                    answer: dict[str, Any] = {"progress": store.label(_ids(body), str(body.get("label")))}
                elif self.path == "/api/skip":
                    answer = {"progress": store.skip(_ids(body))}
                elif self.path == "/api/undo":
                    answer = store.undo()
                else:
                    self._json(404, {"error": f"no such action {self.path}"})
                    return
            except (ValueError, CamsortError) as exc:  # bad request or unknown frame/label: say which
                self._json(400, {"error": str(exc)})
                return
            self._json(200, answer)

        def _frame(self, frame_id: str) -> None:
            row = store.frames.get(frame_id)
            if row is None or fetch_frame is None:
                self._json(404, {"error": f"no frame {frame_id}"})
                return
            try:
                data = fetch_frame(row["key"])
            except Exception as exc:  # gone or unreadable: the page shows a broken image, the server stays up
                self._json(502, {"error": f"{row['key']}: {exc}"})
                return
            kind = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
            self._send(200, kind, data)

        def _file(self, path: Path) -> None:
            if not path.is_file():
                self._json(404, {"error": f"no file {path.name}"})
                return
            self._send(200, "image/jpeg", path.read_bytes())

        def _json(self, status: int, payload: Any) -> None:
            self._send(status, "application/json", json.dumps(payload).encode())

        def _send(self, status: int, kind: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):  # noqa: A002
            pass

    return LocalHTTPServer((HOST, port), Handler)


def _ids(body: dict[str, Any]) -> list[str]:
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError('"ids" must be a list of frame ids')
    return ids


@contextlib.contextmanager
def serving(store: LabelStore, *, port: int = 0, fetch_frame=None):
    """The server in a background thread for the ``with`` block; yields its base URL."""
    server = make_label_server(store, port=port, fetch_frame=fetch_frame)
    thread = threading.Thread(target=server.serve_forever, name="label-server", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def frame_fetcher(s3_client: Any):
    """``key -> bytes`` for a set's keys: a local path or ``s3://bucket/key``."""

    def fetch(key: str) -> bytes:
        if key.startswith("s3://"):
            bucket, _, name = key[len("s3://") :].partition("/")
            return s3_client.get_object(Bucket=bucket, Key=name)["Body"].read()
        return Path(key).read_bytes()

    return fetch


def serve_label_set(store: LabelStore, *, port: int, s3_client: Any, console) -> None:
    """Serve until Ctrl-C; every action is already on disk, so stopping loses nothing."""
    try:
        server = make_label_server(store, port=port, fetch_frame=frame_fetcher(s3_client))
    except OSError as exc:  # the port is taken (another camsort label, another server)
        raise ConfigurationError(
            f"127.0.0.1:{port}: cannot serve the labelling page ({exc.strerror}); pass another --port"
        ) from exc
    url = f"http://{HOST}:{server.server_address[1]}/"
    progress = store.state()["progress"]
    console.print(
        f"Labelling {store.directory} ({progress['labelled']}/{progress['total']} labelled) on {url} "
        f"(Ctrl-C to stop); labels go to {store.directory / 'labels.jsonl'}"
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.server_close()
