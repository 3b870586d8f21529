"""`camsort drift`: per camera and per day, how far the answers have moved from the training data.

From the results table (the camera index, one Query per camera), per (camera, UTC day):

* the label mix against the training prior (the manifest's ``familiarity.prior``): the
  Jensen-Shannon divergence (base 2, 0 = the same mix, 1 = nothing in common) and the PSI
  (population stability index, sum (p - q) ln(p / q), both mixes floored at ``EPSILON``; the
  usual reading: < 0.1 stable, 0.1-0.25 moving, > 0.25 shifted);
* the share of ``unknown`` frames (between labels) and of ``unfamiliar`` frames (unlike the
  training frames), and the mean confidence of the labelled ones.

A label mix counts each frame once per label (a multi-label frame once for each label in its set),
over the frames that got a label: ``unknown`` and ``unfamiliar`` frames are counted by their own
rates, not in the mix. ``drift_rows`` and the divergences are pure; ``drift_command`` reads the
table, prints the table and writes the HTML report (one plot per camera).
"""

from __future__ import annotations

import html
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from functions.errors import ConfigurationError
from functions.familiarity import is_unfamiliar
from functions.frames.manifest import UNKNOWN_LABEL

EPSILON = 1e-4  # floor of a share in the PSI (a label never seen would make it infinite)
JS_ALERT = 0.1  # a day whose mix is this far (Jensen-Shannon) from the prior is flagged


def mix(counts: dict[str, float], labels: Iterable[str]) -> np.ndarray:
    """Shares of ``labels`` (in that order) from ``counts``; all zero when nothing was counted."""
    values = np.array([float(counts.get(label, 0.0)) for label in labels])
    total = values.sum()
    return values / total if total > 0 else values


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """JS divergence, base 2 (in [0, 1]); zero shares are fine (0 log 0 = 0)."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nonzero = a > 0
        return float(np.sum(a[nonzero] * np.log2(a[nonzero] / m[nonzero])))

    return max(0.0, (kl(p) + kl(q)) / 2)


def psi(p: np.ndarray, q: np.ndarray) -> float:
    """Population stability index of ``p`` (observed) against ``q`` (expected), shares floored."""
    p = np.maximum(np.asarray(p, dtype=np.float64), EPSILON)
    q = np.maximum(np.asarray(q, dtype=np.float64), EPSILON)
    return float(np.sum((p - q) * np.log(p / q)))


@dataclass
class DriftRow:
    camera: str
    day: str  # YYYY-MM-DD (UTC, from captured_at)
    frames: int = 0  # ok frames
    counts: Counter = field(default_factory=Counter)  # label -> frames (labelled frames only)
    unknown: int = 0
    unfamiliar: int = 0
    confidence_sum: float = 0.0
    labelled: int = 0
    js: float | None = None
    psi: float | None = None

    @property
    def unknown_rate(self) -> float:
        return self.unknown / self.frames if self.frames else 0.0

    @property
    def unfamiliar_rate(self) -> float:
        return self.unfamiliar / self.frames if self.frames else 0.0

    @property
    def mean_confidence(self) -> float | None:
        return self.confidence_sum / self.labelled if self.labelled else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "camera": self.camera, "day": self.day, "frames": self.frames, "label_counts": dict(self.counts),
            "unknown_rate": self.unknown_rate, "unfamiliar_rate": self.unfamiliar_rate,
            "mean_confidence": self.mean_confidence, "js": self.js, "psi": self.psi,
        }  # fmt: skip


def drift_rows(items: Iterable[dict[str, Any]], prior: dict[str, float] | None) -> list[DriftRow]:
    """One row per (camera, day) of ``ok`` result items, with the divergences from ``prior``
    (None: no divergence, the model's manifest carries no prior)."""
    rows: dict[tuple[str, str], DriftRow] = {}
    for item in items:
        if item.get("status") != "ok" or not item.get("camera_id"):
            continue
        camera, day = str(item["camera_id"]), str(item.get("captured_at") or "")[:10]
        row = rows.setdefault((camera, day), DriftRow(camera, day))
        row.frames += 1
        if is_unfamiliar(item):
            row.unfamiliar += 1
            continue
        if item.get("label") == UNKNOWN_LABEL:
            row.unknown += 1
            continue
        labels = item["labels"] if item.get("labels") is not None else [item.get("label")]
        row.counts.update(label for label in labels if label)
        row.labelled += 1
        row.confidence_sum += float(item.get("confidence") or 0.0)
    ordered = [rows[key] for key in sorted(rows)]
    if prior:
        names = sorted(set(prior) | {label for row in ordered for label in row.counts})
        expected = mix(prior, names)
        for row in ordered:
            if sum(row.counts.values()):
                observed = mix(row.counts, names)
                row.js, row.psi = jensen_shannon(observed, expected), psi(observed, expected)
    return ordered


# --- the command --------------------------------------------------------------------------------


def prior_of(
    model_uri: str | None, s3: Any, bucket: str | None, shas: set[str], prefix: str = "models/"
) -> tuple[dict[str, float] | None, str]:
    """The training prior and where it came from: ``model_uri``'s manifest, else the manifest under
    ``s3://bucket/<prefix>`` whose model.onnx the results name (the deployment's own uploads)."""
    from infra.ops.promote import read_manifest_at

    if model_uri:
        manifest = read_manifest_at(model_uri, s3)
        return (manifest.familiarity or {}).get("prior") or None, model_uri
    if bucket is None or not shas:
        return None, "no model given (--model)"
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for entry in page.get("Contents", []):
            if not entry["Key"].endswith("/manifest.json"):
                continue
            body = json.loads(s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read())
            if body.get("model_sha256") in shas:
                uri = f"s3://{bucket}/{entry['Key']}"
                return (body.get("familiarity") or {}).get("prior") or None, uri
    return None, f"no manifest under s3://{bucket}/{prefix} for the results' model (pass --model)"


def drift_table(rows: list[DriftRow], title: str):
    from rich.table import Table

    table = Table(title=title)
    for column in (
        "camera",
        "day",
        "frames",
        "label mix",
        "JS",
        "PSI",
        "unknown",
        "unfamiliar",
        "mean conf.",
    ):
        table.add_column(column, justify="left" if column in ("camera", "day", "label mix") else "right")
    for row in rows:
        total = sum(row.counts.values()) or 1
        shares = ", ".join(f"{label} {count / total:.0%}" for label, count in row.counts.most_common(4))
        js = "" if row.js is None else f"{row.js:.3f}"
        table.add_row(
            row.camera, row.day, str(row.frames), shares, f"[bold red]{js}[/]" if (row.js or 0) >= JS_ALERT else js,
            "" if row.psi is None else f"{row.psi:.3f}", f"{row.unknown_rate:.1%}",
            f"[bold red]{row.unfamiliar_rate:.1%}[/]" if row.unfamiliar else "0.0%",
            "" if row.mean_confidence is None else f"{row.mean_confidence:.3f}",
        )  # fmt: skip
    return table


def plot_camera(rows: list[DriftRow], prior: dict[str, float] | None) -> bytes:
    """One camera: the daily figures (left) and the label mix of each day beside the prior (right)."""
    from training.report.plots import new_figure, png_bytes

    figure, (left, right) = new_figure(1, 2, (11, 3.6))
    days = [row.day for row in rows]
    for name, values in (
        ("Jensen-Shannon", [row.js for row in rows]),
        ("unknown rate", [row.unknown_rate for row in rows]),
        ("unfamiliar rate", [row.unfamiliar_rate for row in rows]),
        ("mean confidence", [row.mean_confidence for row in rows]),
    ):
        left.plot(days, [np.nan if v is None else v for v in values], marker="o", label=name)
    left.set(ylim=(0, 1.05), title=f"{rows[0].camera}: per day", xlabel="day (UTC)")
    left.tick_params(axis="x", labelrotation=45)
    left.legend(fontsize="small")
    labels = sorted(set(prior or {}) | {label for row in rows for label in row.counts})
    columns = ([("training prior", mix(prior, labels))] if prior else []) + [
        (row.day, mix(row.counts, labels)) for row in rows
    ]
    bottom = np.zeros(len(columns))
    for index, label in enumerate(labels):
        heights = np.array([shares[index] for _, shares in columns])
        right.bar([name for name, _ in columns], heights, bottom=bottom, label=label)
        bottom += heights
    right.set(title="label mix", ylim=(0, 1.05))
    right.tick_params(axis="x", labelrotation=45)
    right.legend(fontsize="small")
    return png_bytes(figure)


def drift_html(rows: list[DriftRow], prior: dict[str, float] | None, prior_source: str, title: str) -> str:
    import base64

    from training.report.html_page import STYLE, rows_table

    e = html.escape
    header = ["camera", "day", "frames", "JS", "PSI", "unknown", "unfamiliar", "mean conf."]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>Training prior from {e(prior_source)}: "
        + (e(", ".join(f"{k} {v:.1%}" for k, v in sorted(prior.items()))) if prior else "none")
        + f". Jensen-Shannon (base 2) and PSI of each day's label mix against it; a JS of {JS_ALERT} or more "
        "is flagged in the table on screen.</p>",
    ]
    by_camera: dict[str, list[DriftRow]] = defaultdict(list)
    for row in rows:
        by_camera[row.camera].append(row)
    for camera, camera_rows in by_camera.items():
        png = base64.b64encode(plot_camera(camera_rows, prior)).decode()
        table_rows = [
            [r.camera, r.day, r.frames, _fmt(r.js), _fmt(r.psi), f"{r.unknown_rate:.1%}", f"{r.unfamiliar_rate:.1%}",
             _fmt(r.mean_confidence)]
            for r in camera_rows
        ]  # fmt: skip
        parts += [
            f"<h2>{e(camera)}</h2>",
            f"<img class='plot' alt='{e(camera)}' src='data:image/png;base64,{png}'>",
            rows_table(header, table_rows),
        ]
    parts.append("</body></html>")
    return "".join(parts)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


@dataclass(frozen=True)
class DriftReport:
    rows: list[DriftRow]
    prior: dict[str, float] | None
    prior_source: str


def drift_report(
    *, cameras: list[str], since: datetime | None, until: datetime | None, dynamodb: Any, s3: Any,
    table: str, bucket: str | None, model_uri: str | None, models_prefix: str = "models/",
) -> DriftReport:  # fmt: skip
    """Read every camera's results in [since, until] and compute the rows."""
    from functions.stores.results import ResultsTable

    if not cameras:
        raise ConfigurationError("no camera to report on: pass --camera (no camera state was found either)")
    results = ResultsTable(table, dynamodb)
    items = [item for camera in cameras for item in results.iter_camera(camera, since, until)]
    shas = {str(item["model_sha256"]) for item in items if item.get("model_sha256")}
    prior, source = prior_of(model_uri, s3, bucket, shas, models_prefix)
    return DriftReport(drift_rows(items, prior), prior, source)


def drift_command(
    *, cameras: list[str], since: datetime | None, until: datetime | None, endpoint_url: str | None,
    table: str | None, state_table: str | None, region: str | None, model_uri: str | None,
    html_path: Path | None, as_json: bool, console: Any = None,
) -> DriftReport:  # fmt: skip
    """`camsort drift`: the rows for ``cameras`` (default: every camera with a state), printed;
    the HTML report written to ``html_path`` when given."""
    from rich.console import Console

    from infra.deploy.topology import StackNames
    from infra.ops.camera_views import RESULTS_PREFIX, camera_states, resolve_source
    from infra.ops.results_query import iso_utc

    console = console or Console()
    source = resolve_source(endpoint_url, table, state_table, region)
    dynamodb = source.dynamodb()
    if not cameras:
        cameras = [str(state["camera_id"]) for state in camera_states(source, dynamodb)]
    stage = (
        source.results_table[len(RESULTS_PREFIX) + 1 :]
        if source.results_table.startswith(RESULTS_PREFIX)
        else None
    )
    names = StackNames.for_stage(stage) if stage else None
    report = drift_report(
        cameras=cameras, since=since, until=until, dynamodb=dynamodb, s3=_s3(source), table=source.results_table,
        bucket=names.bucket if names else None, model_uri=model_uri,
        models_prefix=names.models_prefix if names else "models/",
    )  # fmt: skip
    window = " .. ".join(iso_utc(t) if t else "open" for t in (since, until))
    title = f"drift of {source.results_table}, {window}"
    if as_json:
        payload = {
            "prior": report.prior,
            "prior_source": report.prior_source,
            "rows": [r.to_dict() for r in report.rows],
        }
        console.file.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    else:
        console.print(f"training prior: {report.prior_source}")
        console.print(drift_table(report.rows, title))
    if html_path is not None:
        Path(html_path).write_text(drift_html(report.rows, report.prior, report.prior_source, title))
        if not as_json:
            console.print(f"report: {html_path}")
    return report


def _s3(source: Any) -> Any:
    from infra.local.stack import DEFAULT_REGION, local_client

    if source.endpoint_url:
        return local_client("s3", source.endpoint_url, source.region or DEFAULT_REGION)
    import boto3

    return boto3.session.Session(region_name=source.region).client("s3")
