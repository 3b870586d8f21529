"""The demo's regions camera: a car park (6 bays and a gate) answered by two named models.

1. ``ensure_region_models``: ``bay`` and ``gate`` trained once (then cached) on a few dozen
   synthetic frames of the camera's own view, on the backbone the demo's default model ships
   (``training.backbone_source.ModelBackbone``: no second ResNet50, no tf2onnx conversion, no
   fine-tuning; the crops' features are cached like every featurization).
2. ``deploy_regions``: the models under ``models/<name>/<version>/``, the camera's regions as
   ``cameras/<camera_id>.json`` in the model bucket, and the pins (CAMSORT_NAMED_MODELS) for
   the function's environment.
3. ``upload_sequence``: the camera's frames in time order (a bay fills or empties now and then,
   the gate opens and closes), keys carrying their capture times.
4. ``score_regions``: per region, the answers' and the smoothed states' accuracy against the
   ground truth, and the state-change events' precision and recall (pure).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from functions.frames.keys import frame_key
from functions.frames.manifest import read_manifest
from infra.demo.region_models import (
    REGIONS_CAMERA,
    BackgroundTraining,
    RegionsSettings,
    ensure_region_models,
    wait_for_region_models,
)
from infra.deploy.deploy_file import DeployConfig, ModelPin, ModelSlot, model_prefix
from infra.deploy.model_upload import upload_model_dir
from infra.local.stack import LocalStack
from training.data.carpark import BAY_MODEL, EMPTY
from training.data.synthetic_regions import (
    CAMERAS_FILENAME,
    Event,
    RegionFrame,
    write_regions_sequence,
)


@dataclass(frozen=True)
class RegionsDeployment:
    config: DeployConfig  # the stage's pins, named models included
    camera_config_key: str

    def function_environment(self) -> dict[str, str]:
        return self.config.function_environment()


def deploy_regions(
    stack: LocalStack, live: DeployConfig, models: Mapping[str, Path], regions: dict
) -> RegionsDeployment:
    """Upload the named models and the camera's regions; the stage's pins with them."""
    s3 = stack.client("s3")
    config = live
    for name, path in models.items():
        manifest = read_manifest(path)
        version = manifest.model_sha256[:12]
        upload = upload_model_dir(
            s3, path, stack.names.bucket, model_prefix(stack.names.models_prefix, name, version)
        )
        config = config.with_slot(name, ModelSlot(ModelPin(version, upload.uri, upload.sha256)))
    key = f"cameras/{REGIONS_CAMERA}.json"
    s3.put_object(
        Bucket=stack.names.bucket, Key=key, Body=json.dumps(regions).encode(), ContentType="application/json"
    )
    return RegionsDeployment(config, key)


@dataclass(frozen=True)
class RegionsSequence:
    frames: list[RegionFrame]
    events: list[Event]
    keys: list[str]  # the bucket keys, in time order
    regions: dict  # the camera's regions (the JSON form)


def upload_sequence(
    stack: LocalStack, settings: RegionsSettings, work_dir: Path, start: datetime
) -> RegionsSequence:
    """The camera's frames, in time order, under keys that carry their capture times."""
    shutil.rmtree(work_dir, ignore_errors=True)
    frames, events = write_regions_sequence(
        work_dir,
        settings.live_frames,
        seed=settings.seed,
        bays=settings.bays,
        hold=settings.hold,
        camera_id=REGIONS_CAMERA,
    )
    s3, keys = stack.client("s3"), []
    for index, frame in enumerate(frames):
        key = frame_key(
            stack.names.frames_prefix,
            REGIONS_CAMERA,
            start + timedelta(seconds=index * settings.frame_interval_s),
        )
        s3.put_object(
            Bucket=stack.names.bucket,
            Key=key,
            Body=(work_dir / frame.key).read_bytes(),
            ContentType="image/jpeg",
        )
        keys.append(key)
    regions = json.loads((work_dir / CAMERAS_FILENAME).read_text())["cameras"][REGIONS_CAMERA]
    return RegionsSequence(frames, events, keys, regions)


# --- what the function answered, smoothed by the function's own rule ----------------------------------


def region_answers(stack: LocalStack, sequence: RegionsSequence) -> list[dict[str, tuple[str, float]]]:
    """Per frame of the sequence: region -> (label, confidence), from the function's region items."""
    from functions.stores.results import deserialize_item

    index = {key: i for i, key in enumerate(sequence.keys)}
    answers: list[dict[str, tuple[str, float]]] = [{} for _ in sequence.keys]
    dynamodb = stack.client("dynamodb")
    params: dict[str, Any] = {
        "TableName": stack.names.table,
        "FilterExpression": "#camera = :camera AND attribute_exists(#region)",
        "ExpressionAttributeNames": {"#camera": "region_camera_id", "#region": "region"},
        "ExpressionAttributeValues": {":camera": {"S": REGIONS_CAMERA}},
    }
    while True:
        page = dynamodb.scan(**params)
        for item in map(deserialize_item, page.get("Items", [])):
            if item.get("key") in index and item.get("status", "ok") == "ok":
                answers[index[item["key"]]][str(item["region"])] = (
                    str(item.get("label")),
                    float(item.get("confidence") or 0),
                )
        if not page.get("LastEvaluatedKey"):
            return answers
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def smoothed(
    answers: Sequence[Mapping[str, tuple[str, float]]],
    captured: Sequence[str],
    regions: dict,
    rule: Any = None,
) -> tuple[list[dict[str, str]], list[Event]]:
    """The states and state changes the function's smoothing rule makes of the answers, per region
    (functions.state.smoothing.replay, the reference loop; a region's own ``smoothing`` applies).

    ``captured[i]``: frame i's capture time (ISO 8601). A bay's idle state is ``empty`` (the
    rule ignores the background label); the gate has none (``none`` until it is established). The first change within the rule's first ``k`` frames
    establishes the state the sequence started in: it is not an event.
    """
    from functions.state.smoothing import IDLE, Frame, Rule, replay

    index = {stamp: i for i, stamp in enumerate(captured)}
    states: list[dict[str, str]] = [{} for _ in answers]
    events: list[Event] = []
    for region in regions["regions"]:
        name = region["name"]
        region_rule = Rule.from_dict(region.get("smoothing") or {}, base=rule or Rule(), where=name)
        frames = [
            Frame(captured[i], f"{name}@{i}", *answers[i][name])
            for i in range(len(answers))
            if name in answers[i]
        ]
        previous = None
        for frame, evaluation in replay(frames, region_rule):
            i = index[frame.captured_at]
            state = (
                EMPTY if evaluation.state == IDLE and region.get("model") == BAY_MODEL else evaluation.state
            )
            states[i][name] = state
            if evaluation.changed and previous is not None and i >= region_rule.k:
                events.append(Event(name, i, previous, state))
            previous = state
    return states, events


# --- the score -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionScore:
    region: str
    frames: int  # frames with an answer for the region
    answers_correct: int  # the model's answer per frame
    states_correct: int  # the smoothed state after each frame
    true_events: int
    found_events: int
    matched_events: int

    @property
    def answer_accuracy(self) -> float | None:
        return self.answers_correct / self.frames if self.frames else None

    @property
    def state_accuracy(self) -> float | None:
        return self.states_correct / self.frames if self.frames else None


def match_events(truth: Sequence[Event], found: Sequence[Event], tolerance: int) -> int:
    """Found events that match a true one of the same region and new state, at most ``tolerance``
    frames after it (a smoothing rule needs a few frames to agree); each true event matches once."""
    unmatched = sorted(truth, key=lambda e: e.frame)
    matched = 0
    for event in sorted(found, key=lambda e: e.frame):
        for candidate in unmatched:
            if (candidate.region, candidate.new) == (
                event.region,
                event.new,
            ) and 0 <= event.frame - candidate.frame <= tolerance:
                unmatched.remove(candidate)
                matched += 1
                break
    return matched


def score_regions(
    truth: Sequence[Mapping[str, str]],
    true_events: Sequence[Event],
    answers: Sequence[Mapping[str, tuple[str, float]]],
    states: Sequence[Mapping[str, str]],
    found_events: Sequence[Event],
    *,
    tolerance: int,
) -> list[RegionScore]:
    """Per region: answers and smoothed states frame by frame against ``truth``, and events. Pure."""
    scores = []
    for region in sorted({name for frame in truth for name in frame}):
        frames = [i for i, frame in enumerate(answers) if region in frame]
        mine_true = [e for e in true_events if e.region == region]
        mine_found = [e for e in found_events if e.region == region]
        scores.append(
            RegionScore(
                region=region,
                frames=len(frames),
                answers_correct=sum(answers[i][region][0] == truth[i][region] for i in frames),
                states_correct=sum(states[i].get(region) == truth[i][region] for i in frames),
                true_events=len(mine_true),
                found_events=len(mine_found),
                matched_events=match_events(mine_true, mine_found, tolerance),
            )
        )
    return scores


def score_table(scores: Sequence[RegionScore]) -> Table:
    table = Table("region", "frames", "answer accuracy", "state accuracy", "events (true / found / matched)", "precision", "recall", title=f"regions of {REGIONS_CAMERA} against the ground truth")  # fmt: skip

    def percent(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    for s in scores:
        precision = s.matched_events / s.found_events if s.found_events else None
        recall = s.matched_events / s.true_events if s.true_events else None
        table.add_row(s.region, str(s.frames), percent(s.answer_accuracy), percent(s.state_accuracy),
                      f"{s.true_events} / {s.found_events} / {s.matched_events}", percent(precision), percent(recall))  # fmt: skip
    return table


def totals(scores: Sequence[RegionScore]) -> dict[str, Any]:
    frames = sum(s.frames for s in scores)
    true, found, matched = (
        sum(getattr(s, f) for s in scores) for f in ("true_events", "found_events", "matched_events")
    )
    return {
        "answer_accuracy": sum(s.answers_correct for s in scores) / frames if frames else None,
        "state_accuracy": sum(s.states_correct for s in scores) / frames if frames else None,
        "event_precision": matched / found if found else None,
        "event_recall": matched / true if true else None,
    }


# --- the demo's step ------------------------------------------------------------------------------


def run_regions_camera(
    demo_settings: Any,
    stack: LocalStack,
    environment: Mapping[str, str],
    default_model: Path,
    console: Console,
    training: BackgroundTraining | None = None,
) -> dict[str, Any] | None:
    """Train (or reuse) ``bay`` and ``gate``, deploy them with the camera's regions, send the
    camera's sequence through the function, and score what it answered; the totals, or None
    when the function wrote no region answers. ``training``: the models' training started
    earlier in a child (``start_region_models``), joined here."""
    from datetime import UTC

    from functions import env
    from functions.frames.keys import format_timestamp
    from infra.local.worker import SqsWorker

    settings = RegionsSettings(seed=demo_settings.seed)
    cache_dir = Path(demo_settings.cache_dir)
    if training is not None:
        wait_for_region_models(training, console)
    models = ensure_region_models(settings, default_model, cache_dir, console)
    live = read_manifest(default_model)
    pins = DeployConfig(
        live=ModelPin(live.model_version, environment[env.MODEL_URI], environment[env.MODEL_SHA256])
    )
    start = datetime.now(UTC).replace(microsecond=0)
    sequence = upload_sequence(stack, settings, demo_settings.demo_dir / "regions-sequence", start)
    deployment = deploy_regions(stack, pins, models, sequence.regions)
    console.print(
        f"Regions camera {REGIONS_CAMERA}: {len(sequence.regions['regions'])} regions "
        f"(s3://{stack.names.bucket}/{deployment.camera_config_key}), models "
        + ", ".join(f"{name} {slot.live.version}" for name, slot in sorted(deployment.config.models.items()))
        + f"; {len(sequence.keys)} frames, {len(sequence.events)} state changes"
    )
    function_log = demo_settings.demo_dir / "function.log"
    with open(function_log, "a") as log:
        SqsWorker(
            stack, {**environment, **deployment.function_environment()}, batch_size=settings.batch_size,
            batching_window_s=demo_settings.batching_window_s, function_output=log,
        ).run_until_drained(idle_s=1.0, max_duration_s=600)  # fmt: skip
    answers = region_answers(stack, sequence)
    if not any(answers):
        console.print(
            f"[yellow]The function wrote no region answers for {REGIONS_CAMERA}[/] (see {function_log})."
        )
        return None
    captured = [
        format_timestamp(start + timedelta(seconds=i * settings.frame_interval_s))
        for i in range(len(answers))
    ]
    states, found = smoothed(answers, captured, sequence.regions)
    truth = [frame.states for frame in sequence.frames]
    scores = score_regions(truth, sequence.events, answers, states, found, tolerance=4)
    console.print(score_table(scores))
    figures = totals(scores)
    console.print(
        "all regions: "
        + ", ".join(
            f"{name.replace('_', ' ')} {value:.0%}" for name, value in figures.items() if value is not None
        )
        + " (states and events: the stage's smoothing rule on the answers, as the function applies it)"
    )
    return figures
