"""What the bench's child processes do besides invoking a handler: the notebook way's own
event handling, per-stage timers, the draft-vs-full decode comparison and profiling.

Per-stage timers live here, in the bench, never in ``functions/``: the function stays
free of benchmarking code, and the split is measured by calling the same components the
handler calls, one stage at a time, on frames uploaded for this purpose.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from functions.frames.keys import format_timestamp

STAGES_HANDLER = (
    "dup_check", "get_object", "decode", "inference", "familiarity", "decide", "tag", "write"
)  # fmt: skip
STAGES_REFERENCE = ("get_object", "decode", "inference", "decide", "write")


class Stopwatch:
    """Accumulates the durations of named stages: ``with watch("decode"): ...``."""

    def __init__(self, names: tuple[str, ...]):
        self.samples: dict[str, list[float]] = {name: [] for name in names}
        self._name = ""
        self._start = 0.0

    def __call__(self, name: str) -> Stopwatch:
        self._name = name
        return self

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc_info) -> None:
        self.samples[self._name].append(time.perf_counter() - self._start)


# --- the notebook way ---------------------------------------------------------------------------


def s3_objects_of(event: dict) -> list[tuple[str, str]]:
    """(bucket, key) of every ObjectCreated record in an SQS event, by the function's own parser."""
    from functions.frames.events import parse_event

    return [(frame.bucket, frame.key) for frame in parse_event(event).frames]


def reference_item(
    bucket: str, key: str, etag: str, last_modified: datetime, labels: list[str], probabilities: np.ndarray
) -> dict[str, Any]:
    """The result row the notebook way writes: same table, same keys, plain PutItem."""
    label = labels[int(np.argmax(probabilities))]
    camera = key.split("/")[1] if key.count("/") >= 2 else "unknown"
    return {
        "object_id": {"S": f"{bucket}/{key}"},
        "object_version": {"S": etag.strip('"')},
        "bucket": {"S": bucket},
        "key": {"S": key},
        "camera_id": {"S": camera},
        "captured_at": {"S": format_timestamp(last_modified)},
        "status": {"S": "ok"},
        "label": {"S": label},
        "confidence": {"N": repr(float(np.max(probabilities)))},
        "probabilities": {
            "M": {name: {"N": repr(float(p))} for name, p in zip(labels, probabilities, strict=True)}
        },
        "processed_at": {"S": format_timestamp(datetime.now(UTC))},
    }


def reference_handle(event: dict, classifier, s3, dynamodb, table: str) -> None:
    """One invocation the notebook way: download, load_img, one predict for the batch, write."""
    from bench.reference import decode_like_notebook

    objects = s3_objects_of(event)
    responses = [s3.get_object(Bucket=bucket, Key=key) for bucket, key in objects]
    pixels = np.stack([decode_like_notebook(response["Body"].read()) for response in responses])
    probabilities = classifier.predict(pixels)
    for (bucket, key), response, row in zip(objects, responses, probabilities, strict=True):
        item = reference_item(bucket, key, response["ETag"], response["LastModified"], classifier.labels, row)
        dynamodb.put_item(TableName=table, Item=item)


def reference_stage_split(frames: list[dict], classifier, s3, dynamodb, table: str) -> dict[str, list[float]]:
    """The notebook way one stage at a time, one frame at a time."""
    from bench.reference import decode_like_notebook

    watch = Stopwatch(STAGES_REFERENCE)
    for frame in frames:
        bucket, key = frame["bucket"], frame["key"]
        with watch("get_object"):
            response = s3.get_object(Bucket=bucket, Key=key)
            data = response["Body"].read()
        with watch("decode"):
            pixels = decode_like_notebook(data)
        with watch("inference"):
            probabilities = classifier.predict(pixels[None])[0]
        with watch("decide"):
            item = reference_item(
                bucket, key, response["ETag"], response["LastModified"], classifier.labels, probabilities
            )
        with watch("write"):
            dynamodb.put_item(TableName=table, Item=item)
    return watch.samples


# --- profiling ------------------------------------------------------------------------------------


def cprofile_pass(path, events: list[dict], out_path: str, top: int = 25) -> list[dict[str, Any]]:
    """cProfile over warm batch-1 invocations; writes the full listing, returns the top entries."""
    profiler = cProfile.Profile()
    profiler.enable()
    for index, event in enumerate(events):
        path.invoke(event, f"profile-{index}")
    profiler.disable()
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer).sort_stats("cumulative")
    stats.print_stats(60)
    Path(out_path).write_text(buffer.getvalue())
    return top_functions(stats, len(events), top)


# Where a cold start goes: (file path suffix, function, what it is), looked up in the
# cProfile of the profile run's cold start.
COLD_BREAKDOWN = {
    "handler": (
        ("bench/runner.py", "import_code", "import the handler module (incl. the container state)"),
        ("functions/wiring.py", "make_clients", "boto3 clients"),
        ("functions/frames/model.py", "fetch_model", "model.onnx + manifest.json from S3"),
        ("functions/frames/manifest.py", "load_verified", "manifest + sha256 of model.onnx"),
        ("onnxruntime_inference_collection.py", "_create_inference_session", "onnxruntime session creation"),
        ("functions/frames/model.py", "predict", "model.predict (warm-up + first frame)"),
        ("functions/frames/classify.py", "classify_frames", "first event: classify_frames"),
    ),
    "reference": (
        ("bench/runner.py", "import_code", "import TensorFlow, Keras, LightGBM, boto3"),
        ("export/backbone.py", "build_keras_backbone", "build the Keras ResNet50"),
        ("lightgbm/basic.py", "__init__", "load the LightGBM Booster"),
        ("keras/src/backend/tensorflow/trainer.py", "predict", "Keras model.predict (first call traces)"),
        ("bench/stages.py", "reference_handle", "first event, end to end"),
    ),
}


def named_cumulative(stats: pstats.Stats, wanted: tuple[tuple[str, str, str], ...]) -> list[dict[str, Any]]:
    """Cumulative seconds of each wanted function (the largest entry when several match)."""
    rows = []
    for suffix, function, what in wanted:
        matches = [
            cumulative
            for (filename, _, name), (_, _, _, cumulative, _) in stats.stats.items()  # type: ignore[attr-defined]
            if name == function and filename.replace("\\", "/").endswith(suffix)
        ]
        if matches:
            rows.append({"what": what, "cumulative_s": round(max(matches), 3)})
    return rows


def cold_profile_summary(profiler: cProfile.Profile, plan: dict) -> dict[str, Any]:
    """The cold start under cProfile: the listing on disk, the named parts in the result."""
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer).sort_stats("cumulative")
    stats.print_stats(80)
    Path(plan["profile_path"]).with_name(Path(plan["profile_path"]).stem + "-cold.txt").write_text(
        buffer.getvalue()
    )
    kind = "reference" if plan["path"] == "reference" else "handler"
    return {"total_s": round(stats.total_tt, 3), "parts": named_cumulative(stats, COLD_BREAKDOWN[kind])}  # type: ignore[attr-defined]


def top_functions(stats: pstats.Stats, frames: int, top: int) -> list[dict[str, Any]]:
    """The ``top`` functions by cumulative time, in ms per frame."""
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{Path(filename).name}:{line}({name})",
                "calls": calls,
                "own_ms_per_frame": round(1000 * own / frames, 3),
                "cumulative_ms_per_frame": round(1000 * cumulative / frames, 3),
            }
        )
    rows.sort(key=lambda row: row["cumulative_ms_per_frame"], reverse=True)
    return rows[:top]


def summarize_onnxruntime_profile(events: list[dict[str, Any]], runs: int) -> list[dict[str, Any]]:
    """onnxruntime's profile (chrome-trace JSON) -> time per operator type, ms per run."""
    per_op: dict[str, float] = {}
    for event in events:
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        op = event.get("args", {}).get("op_name", "?")
        per_op[op] = per_op.get(op, 0.0) + float(event.get("dur", 0)) / 1000.0
    total = sum(per_op.values()) or 1.0
    rows = [
        {"op": op, "ms_per_run": round(ms / runs, 3), "share_pct": round(100.0 * ms / total, 1)}
        for op, ms in per_op.items()
    ]
    rows.sort(key=lambda row: row["ms_per_run"], reverse=True)
    return rows


def time_calls(function: Callable[[], Any], repeat: int) -> list[float]:
    durations = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        durations.append(time.perf_counter() - start)
    return durations


# --- the handler paths ------------------------------------------------------------------------------


def handler_stage_split(frames: list[dict], plan: dict) -> dict[str, list[float]]:
    """The handler's steps for one frame at a time, each timed, on the container's own app.

    Same components and the same order as ``functions.frames.classify`` (duplicate look-up,
    GetObject, decode, one inference, decision, tags, conditional write); the item and the
    tags are built by the function's own builders. One frame per "invocation", as in the batch-1 pass.
    """
    from functions import wiring
    from functions.frames.classify import base_item, frame_tags, ok_item
    from functions.frames.decision import decide, with_distances
    from functions.frames.events import FrameEvent
    from functions.frames.image_loader import load_image
    from functions.frames.keys import parse_key
    from functions.stores.results import object_id

    app = wiring.default_app()
    settings, model = app.settings, app.model
    watch = Stopwatch(STAGES_HANDLER)
    for frame in frames:
        bucket, key, etag = frame["bucket"], frame["key"], frame["etag"]
        source = f"s3://{bucket}/{key}"
        with watch("dup_check"):
            app.table.existing_results([(object_id(bucket, key), etag)])  # as the handler reads it
        with watch("get_object"):
            stored = app.store.get_frame(bucket, key, etag=etag, max_bytes=settings.max_bytes)
        with watch("decode"):
            pixels = load_image(
                stored.data, source=source, max_bytes=settings.max_bytes, max_pixels=settings.max_pixels
            )
        with watch("inference"):
            probabilities, features = model.predict(pixels[None])
        with watch("familiarity"):  # the distance to the training frames (functions/familiarity.py)
            distances = model.familiarity.distances(features) if model.familiarity else None
        with watch("decide"):
            (decision,) = decide(probabilities, model.labels, model.manifest.thresholds)
            if distances is not None:
                (decision,) = with_distances([decision], distances, model.familiarity.threshold)
            info = parse_key(key, prefix=settings.frames_prefix, pattern=settings.key_pattern)
            event = FrameEvent(
                bucket=bucket,
                key=key,
                size=None,
                etag=etag,
                version_id=None,
                sequencer="",
                event_time=None,
                event_name="ObjectCreated:Put",
                source_id=None,
            )
            base = base_item(event, app, object_version=stored.etag, key_info=info, stored=stored, size=None)
            item = ok_item(base, decision, latency_ms=None)
        with watch("tag"):
            if settings.write_tags:
                app.store.tag_frame(bucket, key, frame_tags(decision, model))
        with watch("write"):
            app.table.put_result(item)
    if not settings.write_tags:
        del watch.samples["tag"]
    if model.familiarity is None:  # an older model: no distance is computed
        del watch.samples["familiarity"]
    return watch.samples


def draft_comparison(frame_paths: list[str], plan: dict, batch_size: int = 10) -> dict[str, Any]:
    """JPEG draft decoding (what the function does) vs a full decode, same frames, same model.

    Decode times per frame for each, and the labels the container's model gives each way.
    """
    from functions import wiring
    from functions.frames.decision import decide
    from functions.frames.image_loader import load_image

    model = wiring.default_app().model
    datas = [Path(path).read_bytes() for path in frame_paths]
    pixels: dict[bool, list[np.ndarray]] = {True: [], False: []}
    seconds: dict[bool, list[float]] = {True: [], False: []}
    for path, data in zip(frame_paths, datas, strict=True):
        for draft in (True, False):
            start = time.perf_counter()
            pixels[draft].append(load_image(data, source=path, draft=draft))
            seconds[draft].append(time.perf_counter() - start)
    out: dict[str, Any] = {"decode_draft_s": seconds[True], "decode_full_s": seconds[False]}
    probabilities: dict[bool, np.ndarray] = {}
    for draft in (True, False):
        batches = [
            model.predict(np.stack(pixels[draft][i : i + batch_size]))[0]
            for i in range(0, len(datas), batch_size)
        ]
        probabilities[draft] = np.concatenate(batches)
        decisions = decide(probabilities[draft], model.labels, model.manifest.thresholds)
        suffix = "draft" if draft else "full"
        out[f"labels_{suffix}"] = [d.label for d in decisions]
        out[f"top_labels_{suffix}"] = [d.top_label for d in decisions]
    out["max_abs_probability_diff"] = round(
        float(np.max(np.abs(probabilities[True] - probabilities[False]))), 6
    )
    return out


def onnxruntime_op_profile(plan: dict, runs: int | None = None) -> list[dict[str, Any]]:
    """onnxruntime's own profiler on the container's model file, one frame per run.

    A second session with the same options as the function's plus profiling; the frames are
    decoded by the function's loader. Answers "which operators take the inference time".
    """
    import onnxruntime as ort

    from functions import wiring
    from functions.frames.image_loader import load_image
    from functions.frames.model import session_options

    app = wiring.default_app()
    paths = plan["onnx_profile_frames"][: runs or len(plan["onnx_profile_frames"])]
    options = session_options(app.model.threads)  # the function's, plus profiling
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(plan["profile_path"]).with_suffix("")) + "-onnxruntime"
    session = ort.InferenceSession(str(app.model.model_path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for path in paths:
        session.run(None, {name: load_image(Path(path).read_bytes(), source=path)[None]})
    profile_file = session.end_profiling()
    events = json.loads(Path(profile_file).read_text())
    return summarize_onnxruntime_profile(events, len(paths))
