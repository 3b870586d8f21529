"""`camsort dashboard`: one self-contained HTML page of every camera (or served on 127.0.0.1).

Per camera: its current state and since when, a timeline of its events, its latest frames as
thumbnails with label and confidence, and its latest rejected frames with their reason. A
camera with regions shows each region's state, since when, and its own timeline. It
reads the same sources as `camsort results` (the demo left running, a local endpoint, AWS):
the state table, the results table (``by_camera`` index, newest first) and the frames
themselves (thumbnails are embedded as data URIs, so the written file stands alone).
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from functions.frames.regions import DEFAULT_REGION as WHOLE_FRAME  # not the AWS region
from functions.state.smoothing import IDLE
from functions.stores.results import CAMERA_INDEX, deserialize_item
from infra.ops.camera_views import StateSource, camera_events, camera_states, frame_object

THUMBNAIL = (160, 90)
COLOURS = {"bus": "#e0a800", "car": "#2b7bd6", IDLE: "#d9dde3"}
_OTHER = "#8a56c2"


@dataclass
class CameraView:
    camera_id: str
    state: str
    since: str | None
    events: list[dict[str, Any]]
    last_at: str | None = None  # capture time of the camera's newest frame
    health: str | None = None  # the camera's health (docs/camera-health.md); None: not told
    health_since: str | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)  # latest ok results, newest first
    rejected: list[dict[str, Any]] = field(default_factory=list)
    regions: list[dict[str, Any]] = field(default_factory=list)  # each region's state item, by name


def collect(
    source: StateSource, *, frames: int = 6, s3: Any = None, dynamodb: Any = None
) -> list[CameraView]:
    """Everything the page shows, read once."""
    dynamodb = dynamodb or source.dynamodb()
    views = []
    cameras: dict[str, dict[str, Any]] = {}
    for item in camera_states(source, dynamodb, regions=True):
        entry = cameras.setdefault(item["camera_id"], {"state": {}, "regions": []})
        if item.get("region") and item["region"] != WHOLE_FRAME:
            entry["regions"].append(item)
        else:
            entry["state"] = item
    for camera_id, entry in cameras.items():
        item, regions = entry["state"], entry["regions"]
        latest = _latest_results(dynamodb, source.results_table, camera_id, limit=max(frames * 4, 20))
        newest = [(r.get("last_frame") or {}).get("t") for r in [item, *regions]]
        view = CameraView(
            camera_id=camera_id,
            state=item.get("state", IDLE),
            since=item.get("since"),
            last_at=max((t for t in newest if t), default=None),
            health=item.get("health"),
            health_since=item.get("health_since"),
            events=camera_events(source, camera_id, dynamodb=dynamodb),
            frames=[r for r in latest if r.get("status") == "ok"][:frames],
            rejected=[r for r in latest if r.get("status") == "rejected"][:frames],
            regions=regions,
        )
        if s3 is not None:
            for result in view.frames:
                result["thumbnail"] = _thumbnail(s3, result)
        views.append(view)
    return views


def _latest_results(dynamodb: Any, table: str, camera_id: str, *, limit: int) -> list[dict[str, Any]]:
    response = dynamodb.query(
        TableName=table,
        IndexName=CAMERA_INDEX,
        KeyConditionExpression="camera_id = :c",
        ExpressionAttributeValues={":c": {"S": camera_id}},
        ScanIndexForward=False,
        Limit=limit,
    )
    return [deserialize_item(item) for item in response.get("Items", [])]


def _thumbnail(s3: Any, result: dict[str, Any]) -> str | None:
    """A small JPEG of the frame as a data URI; None when it cannot be read (the page says so)."""
    from PIL import Image

    try:
        params = {"Bucket": result["bucket"], "Key": result["key"]}
        if result.get("version_id"):
            params["VersionId"] = result["version_id"]
        data = s3.get_object(**params)["Body"].read()
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", THUMBNAIL)
            small = image.convert("RGB")
            small.thumbnail(THUMBNAIL)
            out = io.BytesIO()
            small.save(out, "JPEG", quality=80)
    except Exception:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def render(views: list[CameraView], *, title: str, now: datetime | None = None) -> str:
    """The page as one HTML string (inline CSS and SVG, no scripts, nothing fetched)."""
    now = now or datetime.now(UTC)
    body = [
        f"<h1>{_e(title)}</h1>",
        f"<p class=meta>{len(views)} camera(s), rendered {now:%Y-%m-%d %H:%M:%S} UTC</p>",
    ]
    if not views:
        body.append(
            "<p>No camera has a state yet: is camera state on for this stage (CAMSORT_STATE_TABLE)?</p>"
        )
    for view in views:
        body.append(_camera_section(view))
    return _PAGE.format(title=_e(title), body="\n".join(body))


def _health_badge(view: CameraView) -> str:
    """The camera's health beside its state: red when it is not ok."""
    if view.health is None:
        return ""
    colour = "#3a9a4b" if view.health == "ok" else "#c8322d"
    since = (
        f" <small>since {_e(view.health_since)}</small>" if view.health != "ok" and view.health_since else ""
    )
    return f' <span class="state health" style="background:{colour};color:#fff">camera {_e(view.health)}</span>{since}'


def _camera_section(view: CameraView) -> str:
    whole = [e for e in view.events if (e.get("region") or WHOLE_FRAME) == WHOLE_FRAME]
    parts = [f'<section class=camera id="{_e(view.camera_id)}">']
    if view.regions and not whole and view.since is None:  # regions only: no whole-frame state
        parts.append(
            f"<h2>{_e(view.camera_id)} <small>{len(view.regions)} regions</small>{_health_badge(view)}</h2>"
        )
    else:
        parts += [
            f"<h2>{_e(view.camera_id)} {_chip(view.state)} <small>since {_e(view.since or '-')}</small>"
            f"{_health_badge(view)}</h2>",
            _timeline(whole, view.last_at),
        ]
    if view.regions:
        parts.append(
            "<table class=regions><tr><th>region</th><th>state</th><th>since</th><th>events</th></tr>"
        )
        for region in view.regions:
            name = region["region"]
            events = [e for e in view.events if e.get("region") == name]
            parts.append(
                f"<tr><td>{_e(name)}</td><td>{_chip(region.get('state', IDLE))}</td>"
                f"<td><small>{_e(region.get('since') or '-')}</small></td><td>{_timeline(events, view.last_at, 420, 14, detail=False)}</td></tr>"
            )
        parts.append("</table>")
    parts.append("<h3>latest frames</h3><div class=frames>")
    for result in view.frames:
        thumb = result.get("thumbnail")
        image = (
            f'<img src="{thumb}" alt="{_e(result["key"])}">'
            if thumb
            else "<div class=noimg>no thumbnail</div>"
        )
        answer = result.get("label") or "; ".join(
            f"{k}={v}" for k, v in sorted((result.get("regions") or {}).items())
        )
        parts.append(
            f"<figure>{image}<figcaption>{_e(answer)} "
            f"{float(result.get('confidence', 0)):.2f}<br><small>{_e(result.get('captured_at', ''))}</small>"
            "</figcaption></figure>"
        )
    parts.append("</div>")
    if view.rejected:
        parts.append(
            "<h3>rejected frames</h3><table class=rejected><tr><th>captured</th><th>object</th><th>reason</th></tr>"
        )
        for result in view.rejected:
            parts.append(
                f"<tr><td>{_e(result.get('captured_at') or '')}</td><td>{_e(result['key'].rsplit('/', 1)[-1])}</td>"
                f'<td title="{_e(result.get("detail", ""))}">{_e(result.get("reason", ""))}</td></tr>'
            )
        parts.append("</table>")
    parts.append("</section>")
    return "\n".join(parts)


def _chip(state: str) -> str:
    return f'<span class=state style="background:{COLOURS.get(state, _OTHER)}">{_e(state)}</span>'


def _timeline(
    events: list[dict[str, Any]],
    last_at: str | None,
    width: int = 900,
    height: int = 28,
    *,
    detail: bool = True,
) -> str:
    """One bar per event across the camera's time span; the open event runs to the last frame.
    ``detail``: the heading, the span and the table of events too (a region's row: the bars only)."""
    if not events:
        return "<p class=meta>no events yet</p>"
    starts = [_seconds(e["start"]) for e in events]
    ends = [_seconds(e.get("end") or last_at or e["start"]) for e in events]
    low, high = min(starts), max(max(ends), max(starts))
    span = max(high - low, 1.0)
    bars, rows = [], []
    for event, start, end in zip(events, starts, ends, strict=True):
        x = (start - low) / span * width
        w = max((max(end, start) - start) / span * width, 3.0)
        colour = COLOURS.get(event["state"], _OTHER)
        label = f"{event['state']} {event['start']} .. {event.get('end') or 'now'} ({event.get('frame_count', 0)} frames)"
        bars.append(
            f'<rect x="{x:.1f}" y="2" width="{w:.1f}" height="{height - 4}" fill="{colour}"><title>{_e(label)}</title></rect>'
        )
        if event["state"] != IDLE:
            mean = event.get("mean_confidence")
            rows.append(
                f"<tr><td>{_e(event['state'])}</td><td>{_e(event['start'])}</td><td>{_e(event.get('end') or '(now)')}</td>"
                f"<td>{event.get('frame_count', '')}</td><td>{f'{float(mean):.2f}' if mean is not None else ''}</td>"
                f"<td>{_e(frame_object(event.get('first_key') or ''))}</td></tr>"
            )
    svg = (
        f'<svg class=timeline width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="timeline of events">{"".join(bars)}</svg>'
    )
    if not detail:
        return svg
    table = (
        "<table class=events><tr><th>state</th><th>start</th><th>end</th><th>frames</th><th>mean conf.</th>"
        f"<th>first frame</th></tr>{''.join(rows)}</table>"
        if any(rows)
        else ""
    )
    return f"<h3>timeline</h3>{svg}<p class=meta>{_e(events[0]['start'])} .. {_e(events[-1].get('end') or 'now')}</p>{table}"


def write_dashboard(source: StateSource, out: Path, *, frames: int = 6, s3: Any = None) -> Path:
    views = collect(source, frames=frames, s3=s3)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(views, title=f"camsort: {source.state_table}"))
    return out


def serve_dashboard(source: StateSource, *, port: int, frames: int = 6, s3: Any = None) -> None:
    """Serve the page on 127.0.0.1 (built afresh on every request) until interrupted."""
    from http.server import BaseHTTPRequestHandler

    from infra.local.servers import LocalHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            page = render(
                collect(source, frames=frames, s3=s3), title=f"camsort: {source.state_table}"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format, *args):  # noqa: A002
            pass

    with LocalHTTPServer(("127.0.0.1", port), Handler) as server:
        print(f"camsort dashboard on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C to stop)")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


def dashboard_command(
    *,
    endpoint_url: str | None,
    table: str | None,
    state_table: str | None,
    region: str | None,
    out: Path,
    serve: bool,
    port: int,
    frames: int,
) -> Path | None:
    from infra.local.stack import DEFAULT_REGION, local_client
    from infra.ops.camera_views import resolve_source

    source = resolve_source(endpoint_url, table, state_table, region)
    if source.endpoint_url:
        s3 = local_client("s3", source.endpoint_url, source.region or DEFAULT_REGION)
    else:
        import boto3

        s3 = boto3.session.Session(region_name=source.region).client("s3")
    if serve:
        serve_dashboard(source, port=port, frames=frames, s3=s3)
        return None
    path = write_dashboard(source, out, frames=frames, s3=s3)
    print(f"wrote {path}")
    return path


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; background: #f6f7f9; color: #1d2330; }}
h1 {{ margin: 0 0 4px; }} .meta {{ color: #5b6475; font-size: 13px; }}
section.camera {{ background: #fff; border-radius: 8px; padding: 12px 18px; margin: 16px 0;
  box-shadow: 0 1px 3px rgba(0,0,0,.12); }}
.state {{ padding: 2px 10px; border-radius: 12px; font-size: 16px; }}
svg.timeline {{ background: #eef0f3; border-radius: 4px; max-width: 100%; }}
.frames {{ display: flex; flex-wrap: wrap; gap: 10px; }}
figure {{ margin: 0; font-size: 12px; text-align: center; }}
figure img, .noimg {{ width: 160px; height: 90px; object-fit: cover; border-radius: 4px; background: #ccd; }}
table {{ border-collapse: collapse; font-size: 13px; margin: 6px 0; }}
td, th {{ border-bottom: 1px solid #e3e6ea; padding: 3px 10px; text-align: left; }}
table.rejected td:last-child {{ color: #b3261e; }}
</style></head>
<body>
{body}
</body></html>
"""
