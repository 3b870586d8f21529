"""`camsort compare`: the live model against the shadow candidate, on the frames both scored.

Reads result items carrying ``shadow_*`` attributes (functions/frames/shadow.py) captured since a
time: with ``--camera`` through the ``by_camera`` index, otherwise one Scan of the results
table filtered on ``shadow_label`` (a full read of the table: fine for a review, not for a
dashboard). :func:`compare_items` is pure; the printing, JSON and HTML sit beside it.

Agreement = the fraction of frames where both answered the same label (``unknown`` included:
a candidate that is unsure where live was sure disagrees). Disagreement strength = the total
variation distance between the two probability vectors (labels missing on one side count 0).
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.table import Table

from functions.errors import ConfigurationError
from functions.frames.keys import format_timestamp
from functions.frames.regions import DEFAULT_MODEL
from functions.stores.dynamo import table_error
from functions.stores.results import ResultsTable, deserialize_item


@dataclass(frozen=True)
class FrameComparison:
    bucket: str
    key: str
    version_id: str | None
    camera_id: str
    captured_at: str
    live_label: str
    candidate_label: str
    live_confidence: float
    candidate_confidence: float
    distance: float  # total variation between the probability vectors, 0..1


@dataclass
class Comparison:
    candidate_version: str | None
    candidate_sha256: str | None
    live_versions: list[str]
    frames: int
    agreeing: int
    per_camera: dict[str, dict[str, float]]  # camera -> {"frames", "agreeing", "agreement"}
    confusion: dict[str, dict[str, int]]  # live label -> candidate label -> frames
    worst: list[FrameComparison] = field(default_factory=list)
    other_candidates: dict[str, int] = field(default_factory=dict)  # versions left out -> frames

    @property
    def agreement(self) -> float | None:
        return self.agreeing / self.frames if self.frames else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"agreement": self.agreement}


def _distance(live: dict[str, Any], candidate: dict[str, Any]) -> float:
    labels = set(live) | set(candidate)
    return 0.5 * sum(abs(float(live.get(k, 0.0)) - float(candidate.get(k, 0.0))) for k in labels)


def compare_items(
    items: list[dict[str, Any]], *, candidate_version: str | None = None, worst: int = 20
) -> Comparison:
    """Compare live and candidate on ``items`` (result items). Pure.

    Only one candidate version is compared: ``candidate_version``, else the one that scored
    the most recent frame; frames scored by other candidates are counted in ``other_candidates``.
    """
    scored = [i for i in items if i.get("status", "ok") == "ok" and i.get("shadow_label") is not None]
    if candidate_version is None and scored:
        candidate_version = max(scored, key=lambda i: str(i.get("shadow_at", "")))["shadow_model_version"]
    chosen = [i for i in scored if i.get("shadow_model_version") == candidate_version]
    others = Counter(
        str(i.get("shadow_model_version"))
        for i in scored
        if i.get("shadow_model_version") != candidate_version
    )
    confusion: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    cameras: dict[str, Counter] = defaultdict(Counter)
    frames = []
    for item in chosen:
        live, candidate = str(item["label"]), str(item["shadow_label"])
        confusion[live][candidate] += 1
        camera = str(item.get("camera_id") or item.get("region_camera_id") or "")
        cameras[camera]["frames"] += 1
        cameras[camera]["agreeing"] += live == candidate
        frames.append(
            FrameComparison(
                bucket=str(item.get("bucket", "")),
                key=str(item.get("key", "")),
                version_id=item.get("version_id"),
                camera_id=camera,
                captured_at=str(item.get("captured_at") or item.get("region_captured_at") or ""),
                live_label=live,
                candidate_label=candidate,
                live_confidence=float(item.get("confidence") or 0.0),
                candidate_confidence=float(item.get("shadow_confidence") or 0.0),
                distance=round(
                    _distance(item.get("probabilities") or {}, item.get("shadow_probabilities") or {}), 6
                ),
            )
        )
    frames.sort(key=lambda f: (f.live_label != f.candidate_label, f.distance), reverse=True)
    return Comparison(
        candidate_version=candidate_version,
        candidate_sha256=str(chosen[0]["shadow_model_sha256"]) if chosen else None,
        live_versions=sorted({str(i.get("model_version")) for i in chosen}),
        frames=len(chosen),
        agreeing=sum(f.live_label == f.candidate_label for f in frames),
        per_camera={
            camera: {
                "frames": c["frames"],
                "agreeing": c["agreeing"],
                "agreement": c["agreeing"] / c["frames"],
            }
            for camera, c in sorted(cameras.items())
        },
        confusion={live: dict(sorted(row.items())) for live, row in sorted(confusion.items())},
        worst=[f for f in frames[:worst] if f.distance > 0 or f.live_label != f.candidate_label],
        other_candidates=dict(sorted(others.items())),
    )


# --- reading ---------------------------------------------------------------------------------------


def shadow_items(
    dynamodb: Any, table: str, since: datetime, camera: str | None = None, *, model_name: str = DEFAULT_MODEL
) -> list[dict[str, Any]]:
    """Result items with a candidate answer, captured at or after ``since``.

    A named model answers for regions: its items are the region items (``model_name``), which
    carry ``region_camera_id`` / ``region_captured_at`` and stay out of the camera index, so they
    are read by a Scan filtered on those.
    """
    if model_name != DEFAULT_MODEL:
        names = {"#shadow": "shadow_label", "#at": "region_captured_at", "#model": "model_name"}
        values = {":since": {"S": format_timestamp(since)}, ":model": {"S": model_name}}
        expression = "attribute_exists(#shadow) AND #model = :model AND #at >= :since"
        if camera:
            names["#camera"], values[":camera"] = "region_camera_id", {"S": camera}
            expression += " AND #camera = :camera"
        return _scan(dynamodb, table, expression, names, values)
    if camera:
        return [
            item
            for item in ResultsTable(table, dynamodb).iter_camera(camera, since)
            if item.get("shadow_label") is not None
        ]
    return _scan(
        dynamodb, table, "attribute_exists(#shadow) AND #at >= :since",
        {"#shadow": "shadow_label", "#at": "captured_at"}, {":since": {"S": format_timestamp(since)}},
    )  # fmt: skip


def _scan(dynamodb: Any, table: str, expression: str, names: dict, values: dict) -> list[dict[str, Any]]:
    params: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": expression,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
    found = []
    while True:
        try:
            response = dynamodb.scan(**params)
        except (ClientError, BotoCoreError) as exc:
            raise table_error(exc, table, "Scan", "--table (the stage's results table)") from exc
        found += [deserialize_item(raw) for raw in response.get("Items", [])]
        if not response.get("LastEvaluatedKey"):
            return found
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


# --- showing ---------------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def comparison_tables(comparison: Comparison) -> list[Table]:
    head = Table(
        title=f"live {', '.join(comparison.live_versions) or '-'} vs candidate {comparison.candidate_version}"
    )
    head.add_column("camera")
    head.add_column("frames", justify="right")
    head.add_column("agreement", justify="right")
    for camera, row in comparison.per_camera.items():
        head.add_row(camera, str(int(row["frames"])), _percent(row["agreement"]))
    head.add_section()
    head.add_row(
        "[bold]all[/]", f"[bold]{comparison.frames}[/]", f"[bold]{_percent(comparison.agreement)}[/]"
    )

    labels = sorted(set(comparison.confusion) | {c for row in comparison.confusion.values() for c in row})
    matrix = Table(title="confusion: live (rows) x candidate (columns)")
    matrix.add_column("live \\ candidate")
    for label in labels:
        matrix.add_column(label, justify="right")
    for live in labels:
        row = comparison.confusion.get(live, {})
        matrix.add_row(
            live, *[(f"[bold]{row.get(c, 0)}[/]" if c == live else str(row.get(c, 0))) for c in labels]
        )

    differing = sum(f.live_label != f.candidate_label for f in comparison.worst)
    worst = Table(
        title=f"the {len(comparison.worst)} frames they differ on most ({differing} with other labels)"
    )
    worst.add_column("captured_at", no_wrap=True)
    worst.add_column("camera")
    worst.add_column("live")
    worst.add_column("candidate")
    worst.add_column("dist.", no_wrap=True)
    worst.add_column("frame", overflow="fold", min_width=12)  # the file name: the camera has its column
    for f in comparison.worst:
        worst.add_row(
            f.captured_at,
            f.camera_id,
            f"{f.live_label} {f.live_confidence:.2f}",
            f"{f.candidate_label} {f.candidate_confidence:.2f}",
            f"{f.distance:.3f}",
            f.key.rsplit("/", 1)[-1],
        )
    return [head, matrix, worst]


def thumbnail_jpeg(data: bytes, size: int = 192) -> bytes:
    """A small JPEG of an image (decoded at the smallest JPEG draft scale that still covers ``size``)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (size, size))
        small = image.convert("RGB")
    small.thumbnail((size, size))
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def thumbnail_data_uri(data: bytes, size: int = 192) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(thumbnail_jpeg(data, size)).decode()


def thumbnail_sources(s3: Any, frames: list[FrameComparison], mode: str) -> dict[str, str]:
    """key -> <img src>: a presigned URL (valid 1 h) or the frame downloaded and inlined."""
    sources = {}
    for f in frames:
        params = {"Bucket": f.bucket, "Key": f.key} | ({"VersionId": f.version_id} if f.version_id else {})
        if mode == "presigned":
            sources[f.key] = s3.generate_presigned_url("get_object", Params=params, ExpiresIn=3600)
        else:
            try:
                sources[f.key] = thumbnail_data_uri(s3.get_object(**params)["Body"].read())
            except Exception:  # a missing frame shows as a blank cell, the row stays
                sources[f.key] = ""
    return sources


def comparison_html(comparison: Comparison, images: dict[str, str]) -> str:
    e = html.escape
    labels = sorted(set(comparison.confusion) | {c for row in comparison.confusion.values() for c in row})
    cameras = "".join(
        f"<tr><td>{e(c)}</td><td>{int(r['frames'])}</td><td>{_percent(r['agreement'])}</td></tr>"
        for c, r in comparison.per_camera.items()
    )
    matrix = "".join(
        f"<tr><th>{e(live)}</th>"
        + "".join(
            f"<td{' class=diag' if c == live else ''}>{comparison.confusion.get(live, {}).get(c, 0)}</td>"
            for c in labels
        )
        + "</tr>"
        for live in labels
    )
    worst = "".join(
        f"<tr><td>{f'<img src={chr(34)}{e(images[f.key])}{chr(34)}>' if images.get(f.key) else ''}</td>"
        f"<td>{e(f.captured_at)}<br>{e(f.camera_id)}<br><small>{e(f.key)}</small></td>"
        f"<td>{e(f.live_label)} {f.live_confidence:.2f}</td><td>{e(f.candidate_label)} {f.candidate_confidence:.2f}</td>"
        f"<td>{f.distance:.3f}</td></tr>"
        for f in comparison.worst
    )
    title = f"live {', '.join(comparison.live_versions)} vs candidate {comparison.candidate_version}"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>camsort compare: {e(title)}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}.diag{background:#dfd}"
        "img{max-width:192px}</style></head><body>"
        f"<h1>{e(title)}</h1><p>{comparison.frames} frames, agreement <b>{_percent(comparison.agreement)}</b>; "
        f"candidate sha256 <code>{e(comparison.candidate_sha256 or '-')}</code></p>"
        f"<h2>Per camera</h2><table><tr><th>camera</th><th>frames</th><th>agreement</th></tr>{cameras}</table>"
        f"<h2>Confusion (live rows x candidate columns)</h2><table><tr><th></th>"
        + "".join(f"<th>{e(c)}</th>" for c in labels)
        + f"</tr>{matrix}</table>"
        f"<h2>Where they disagree most</h2><table><tr><th>frame</th><th>when / where</th><th>live</th>"
        f"<th>candidate</th><th>distance</th></tr>{worst}</table></body></html>\n"
    )


def compare_command(
    target: Any,
    *,
    since: datetime,
    camera: str | None,
    candidate_version: str | None,
    worst: int,
    as_json: bool,
    html_path: Path | None,
    thumbnails: str,
    console: Console | None = None,
    model_name: str = DEFAULT_MODEL,
) -> Comparison:
    """`camsort compare`: read, compare, print (table or JSON), optionally write the HTML page."""
    console = console or Console()
    items = shadow_items(
        target.client("dynamodb"), target.results_table, since, camera, model_name=model_name
    )
    comparison = compare_items(items, candidate_version=candidate_version, worst=worst)
    if not comparison.frames:
        raise ConfigurationError(
            f"{target.results_table}: no frame since {format_timestamp(since)} has a candidate answer"
            + (f" from {candidate_version}" if candidate_version else "")
            + "; set the stage's candidate (CAMSORT_CANDIDATE_MODEL_URI + _SHA256) and let frames arrive"
        )
    if as_json:
        console.file.write(json.dumps(comparison.to_dict(), indent=2, sort_keys=True) + "\n")
    else:
        for table in comparison_tables(comparison):
            console.print(table)
        if comparison.other_candidates:
            console.print(f"Left out, scored by other candidates: {comparison.other_candidates}")
    if html_path:
        images = thumbnail_sources(target.client("s3"), comparison.worst, thumbnails)
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(comparison_html(comparison, images))
        if not as_json:
            console.print(f"HTML page with thumbnails: {html_path}")
    return comparison
