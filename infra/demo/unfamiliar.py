"""The demo's unfamiliar frames: a handful of frames no model was trained on, among the cameras'.

``upload_unfamiliar`` puts ``per_kind`` frames of each kind of ``training.data.unfamiliar``
(photographs of other subjects, noise, uniform frames, other scenes) under the cameras' prefixes
(``frames/<camera>/unfamiliar/<kind>-<i>.jpg``, round-robin over the cameras), while the cameras
upload theirs; the function sees them as any other frame. ``report_unfamiliar`` then reads the
results back and prints how many came back ``unfamiliar`` (per kind) against the false alarms on
the cameras' own frames, with the model's threshold and its calibrated false-alarm rate.

It costs the uploads and one model call per frame, like any frame: the model's ``features`` are
computed anyway, and the distance is a few matrix products (`camsort bench`).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from functions.familiarity import is_unfamiliar
from functions.frames.manifest import Manifest
from infra.demo.simulator import FRAME, SimulationManifest, UploadedObject
from infra.local.stack import LocalStack

UNFAMILIAR_KIND = "unfamiliar"  # the simulation manifest's kind for these uploads


def upload_unfamiliar(
    stack: LocalStack, cameras: list[str], *, per_kind: int, seed: int
) -> list[UploadedObject]:
    """``per_kind`` frames of each unfamiliar kind, spread over ``cameras``; their manifest entries."""
    from training.data.unfamiliar import KINDS, frame_seed, unfamiliar_jpeg

    s3, uploaded = stack.client("s3"), []
    for index, (kind, i) in enumerate((kind, i) for i in range(per_kind) for kind in KINDS):
        camera = cameras[index % len(cameras)]
        key = f"{stack.names.frames_prefix}{camera}/{UNFAMILIAR_KIND}/{kind}-{i}.jpg"
        body = unfamiliar_jpeg(kind, frame_seed(seed, kind, i))
        response = s3.put_object(Bucket=stack.names.bucket, Key=key, Body=body, ContentType="image/jpeg")
        uploaded.append(
            UploadedObject(
                key=key,
                camera_id=camera,
                kind=UNFAMILIAR_KIND,
                label=kind,
                size=len(body),
                etag=response["ETag"].strip('"'),
                captured_at=datetime.now(UTC),
                uploaded_at=time.time(),
            )  # fmt: skip
        )
    return uploaded


def unfamiliar_figures(results: list[dict[str, Any]], simulated: SimulationManifest) -> dict[str, Any]:
    """Detected per unfamiliar kind; the frames of tampered cameras (covered, turned: infra/demo/
    tamper.py) found unfamiliar per tamper; false alarms on the healthy cameras' frames (ok results)."""
    by_key = simulated.by_key()
    detected: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    tampered: Counter[str] = Counter()
    tampered_found: Counter[str] = Counter()
    alarms = frames = 0
    for item in results:
        uploaded = by_key.get(item.get("key", ""))
        if uploaded is None or item.get("status") != "ok":
            continue
        if uploaded.kind == UNFAMILIAR_KIND:
            sent[str(uploaded.label)] += 1
            detected[str(uploaded.label)] += is_unfamiliar(item)
        elif uploaded.kind == FRAME and uploaded.tamper:
            tampered[str(uploaded.tamper)] += 1
            tampered_found[str(uploaded.tamper)] += is_unfamiliar(item)
        elif uploaded.kind == FRAME:
            frames += 1
            alarms += is_unfamiliar(item)
    return {
        "sent": dict(sent), "detected": dict(detected), "tampered": dict(tampered),
        "tampered_unfamiliar": dict(tampered_found), "frames": frames, "false_alarms": alarms,
    }  # fmt: skip


def report_unfamiliar(
    stack: LocalStack, simulated: SimulationManifest, manifest: Manifest, console: Any
) -> dict[str, Any] | None:
    """Print the unfamiliar-frame figures of this run (None: the model describes no training frames)."""
    from infra.demo.accounting import scan_results

    familiarity = manifest.familiarity
    if not familiarity:
        console.print(
            "unfamiliar frames: this model carries no familiarity description (trained before it existed)"
        )
        return None
    figures = unfamiliar_figures(scan_results(stack), simulated)
    table = Table(
        title=f"unfamiliar frames (distance threshold {familiarity['threshold']:.3f}, calibrated at "
        f"{familiarity['false_alarm_rate']:.0%} out-of-fold false alarms)"
    )
    for column in ("frames", "sent", "came back unfamiliar", "rate"):
        table.add_column(column, justify="left" if column == "frames" else "right")
    for kind, sent in sorted(figures["sent"].items()):
        found = figures["detected"].get(kind, 0)
        table.add_row(f"unfamiliar: {kind}", str(sent), str(found), f"{found / sent:.0%}")
    for tamper, count in sorted(figures["tampered"].items()):
        found = figures["tampered_unfamiliar"].get(tamper, 0)
        table.add_row(f"tampered camera: {tamper}", str(count), str(found), f"{found / count:.0%}")
    frames, alarms = figures["frames"], figures["false_alarms"]
    table.add_row(
        "the healthy cameras' frames (false alarms)",
        str(frames),
        str(alarms),
        f"{alarms / frames:.1%}" if frames else "-",
    )
    console.print(table)
    return figures
