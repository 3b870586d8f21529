"""`make bench`: the notebook way (a) vs our handler path, fp32 (b) and int8 (c), in one run.

What one run does, in order (all on this machine, so the ratios are same-machine):

1. frames: 200 synthetic 1280x720 JPEG bench frames and a separate synthetic training set
   (both cached under ``.cache/bench``; the same seed gives the same bytes);
2. models: ``training.pipeline.train`` once per precision (fp32, int8) on the training set,
   random-init weights unless told otherwise, cached;
3. training featurization throughput: the training frames through each backbone (Keras
   ``predict`` for (a), onnxruntime for (b) and (c)); (a)'s features also train the
   notebook's LightGBM Booster;
4. Lambda package size (``infra.package``) and, for (a), the installed size of its
   dependency closure;
5. a moto server on 127.0.0.1 with the real topology (``infra.local_stack``); the models
   are uploaded to its bucket, as deployed. For each path the frames are uploaded under
   fresh keys, the S3 -> SQS notifications moto emits are collected and wrapped into
   Lambda-shaped SQS events (batch 1 and batch 10), and a fresh child process per path
   (``bench.runner``) times them: cold start, warm latency, throughput, per-stage split,
   peak RSS. Every frame's DynamoDB item is checked afterwards: a path whose frames did not
   all end as ``ok`` results is an error, never a figure;
6. results.json + results.md (markdown tables) + the rich tables on the terminal.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench import stats
from bench.report import FP32, INT8, PATHS, REFERENCE
from functions.errors import CamsortError

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_VERSION = 1
PRECISIONS = (FP32, INT8)
# The notebook way's runtime dependencies (its package is these plus their closure).
REFERENCE_DISTRIBUTIONS = ("tensorflow-cpu", "keras", "lightgbm", "pillow", "numpy", "boto3")
WEIGHTS_NOTE = (
    "weights `{weights}`: speed does not depend on the weight values, labels do; with random-init "
    "weights the labels (and the draft-vs-full agreement) say nothing about an ImageNet model's."
)


class BenchError(CamsortError):
    """A bench step failed; the message names the step, the file or key, and where to look."""


@dataclass(frozen=True)
class BenchConfig:
    frames: int = 200
    width: int = 1280
    height: int = 720
    train_per_label: int = 30
    weights: str = "none"
    seed: int = 0
    cold_starts: int = 3
    warmup: int = 5
    stage_frames: int = 50
    profile_frames: int = 20
    batch_size: int = 10
    featurize_batch: int = 16
    profile: bool = True
    package: bool = True
    out_dir: Path = REPO_ROOT / "bench"
    work_dir: Path = REPO_ROOT / "bench" / "work"
    cache_dir: Path = REPO_ROOT / ".cache" / "bench"
    paths: tuple[str, ...] = PATHS

    def validate(self) -> None:
        problems = []
        if self.frames < self.batch_size:
            problems.append(f"--frames {self.frames} must be at least the batch size {self.batch_size}")
        if self.frames % self.batch_size:
            problems.append(f"--frames {self.frames} must be a multiple of the batch size {self.batch_size}")
        if self.train_per_label < 10:
            problems.append(f"--train-per-label {self.train_per_label}: cross-validation needs at least 10")
        if self.cold_starts < 1:
            problems.append("--cold-starts must be at least 1")
        unknown = set(self.paths) - set(PATHS)
        if unknown or not self.paths:
            problems.append(f"--paths {sorted(unknown)} unknown; choose from {', '.join(PATHS)}")
        if problems:
            raise BenchError("; ".join(problems))


# --- frames ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchFrame:
    path: Path
    label: str

    def read(self) -> bytes:
        return self.path.read_bytes()


def bench_frames(config: BenchConfig) -> list[BenchFrame]:
    """The bench frames, labels in rotation, written once and reused (deterministic bytes)."""
    from training.synthetic import LABELS, frame_jpeg, frame_seed

    root = config.cache_dir / f"frames-{frames_tag(config)}"
    root.mkdir(parents=True, exist_ok=True)
    frames = []
    for index in range(config.frames):
        label = LABELS[index % len(LABELS)]
        path = root / f"frame-{index:05d}-{label}.jpg"
        if not path.is_file():
            # A seed space apart from the training set's, so no bench frame is a training frame.
            data = frame_jpeg(
                label, frame_seed(config.seed + 1_000_003, label, index), config.width, config.height
            )
            _atomic_write(path, data)
        frames.append(BenchFrame(path, label))
    return frames


def training_set(config: BenchConfig) -> Path:
    from training.synthetic import LABELS, write_dataset

    root = config.cache_dir / f"train-{training_tag(config)}"
    done = root / ".complete"
    if not done.is_file():
        write_dataset(
            root, config.train_per_label, seed=config.seed, width=config.width, height=config.height
        )
        done.write_text(json.dumps({label: config.train_per_label for label in LABELS}) + "\n")
    return root


def training_files(root: Path) -> list[tuple[Path, str]]:
    return [(path, path.parent.name) for path in sorted(root.glob("*/*.jpg"))]


@functools.cache
def renderer_fingerprint() -> str:
    """The frames' bytes depend on the renderer's code: a change there must not reuse the cache.

    Computed once per process, so one run uses one key throughout.
    """
    from training import synthetic

    return hashlib.sha256(Path(synthetic.__file__).read_bytes()).hexdigest()[:10]


def frames_tag(config: BenchConfig) -> str:
    return f"s{config.seed}-{config.width}x{config.height}-r{renderer_fingerprint()}"


def training_tag(config: BenchConfig) -> str:
    return f"n{config.train_per_label}-{frames_tag(config)}"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --- models ---------------------------------------------------------------------------------------


def model_dir_for(config: BenchConfig, precision: str) -> Path:
    return config.cache_dir / "models" / f"{precision}-{weights_tag(config.weights)}-{training_tag(config)}"


def weights_tag(weights: str) -> str:
    """Part of the model cache key: a different .h5 file must not reuse a cached model."""
    if weights in ("imagenet", "none"):
        return weights
    return "h5-" + hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:12]


def training_cache_dir(config: BenchConfig) -> Path:
    """The pipeline's backbone + feature cache for this bench configuration.

    One per (weights, training set): the int8 backbone is cached there under a key of its
    calibration frames, so this directory holds exactly the bench's backbones.
    """
    return config.cache_dir / "training-cache" / f"{weights_tag(config.weights)}-{training_tag(config)}"


def ensure_model(config: BenchConfig, precision: str, train_root: Path) -> Path:
    """The bench's model for ``precision``, trained once by the real pipeline and cached.

    The pipeline's own output (steps, CV table) goes to ``work_dir/train-<precision>.log``.
    """
    from rich.console import Console

    from functions.manifest import load_verified
    from training.pipeline import train

    out_dir = model_dir_for(config, precision)
    try:
        load_verified(out_dir)
        return out_dir
    except CamsortError:
        pass  # not trained yet (or damaged): train it
    if out_dir.exists():
        shutil.rmtree(out_dir)
    config.work_dir.mkdir(parents=True, exist_ok=True)
    with open(config.work_dir / f"train-{precision}.log", "w") as log:
        train(
            str(train_root),
            out_dir,
            weights=config.weights,
            seed=config.seed,
            precision=precision,
            cache_dir=training_cache_dir(config),
            progress=False,  # the bench's own progress bar is live; rich allows one at a time
            console=Console(file=log, width=120),
        )
    load_verified(out_dir)
    return out_dir


def backbone_paths(config: BenchConfig) -> dict[str, Path]:
    """The fp32 and int8 backbones the pipeline trained the bench's models with."""
    from export.backbone import cached_backbone

    cache = training_cache_dir(config)
    fp32 = cached_backbone(config.weights, cache, seed=config.seed)  # a cache hit once trained
    int8 = sorted((cache / "int8").glob(f"{fp32.stem}-int8-*.onnx"), key=lambda path: path.stat().st_mtime)
    if not int8:
        raise BenchError(f"{cache / 'int8'}: no int8 backbone; delete {cache} and run `camsort bench` again")
    return {FP32: fp32, INT8: int8[-1]}


# --- featurization --------------------------------------------------------------------------------


def reference_featurization(config: BenchConfig, train_root: Path, reference_dir: Path) -> float:
    """(a): the training frames through Keras ``predict`` (batch ``featurize_batch``, after a
    warm-up batch); trains the notebook's Booster on those features. Returns frames/s through
    the backbone (decode excluded, as for (b) and (c))."""
    from bench.reference import decode_like_notebook, keras_predict_features, save_reference, train_booster
    from training.pipeline import keras_backbone

    files = training_files(train_root)
    labels = sorted({label for _, label in files})
    pixels = np.stack([decode_like_notebook(path.read_bytes()) for path, _ in files])
    model = keras_backbone(config.weights, config.seed)  # the one training built, if any
    keras_predict_features(model, pixels[: config.featurize_batch])  # warm-up: graph tracing
    start = time.perf_counter()
    features = np.concatenate(
        [
            keras_predict_features(model, pixels[i : i + config.featurize_batch])
            for i in range(0, len(pixels), config.featurize_batch)
        ]
    )
    seconds = time.perf_counter() - start
    label_ids = np.array([labels.index(label) for _, label in files])
    save_reference(reference_dir, train_booster(features, label_ids, len(labels), seed=config.seed), labels)
    return stats.throughput(len(pixels), seconds)


def onnx_featurization(config: BenchConfig, backbone_path: Path, pixels: np.ndarray) -> dict[str, float]:
    """(b)/(c): the training frames through the backbone with onnxruntime.

    ``steady_fps``: the backbone alone at batch ``featurize_batch`` after a warm-up batch,
    with the session options training uses (comparable with (a)'s Keras figure);
    ``end_to_end_fps``: ``training.featurize.featurize`` itself on a fresh cache (session
    creation and cache writes included), what a first training run sees.
    """
    import onnxruntime as ort

    from functions.manifest import FEATURES_OUTPUT, INPUT_NAME
    from training.featurize import featurize

    session = ort.InferenceSession(
        str(backbone_path), ort.SessionOptions(), providers=["CPUExecutionProvider"]
    )
    batches = [pixels[i : i + config.featurize_batch] for i in range(0, len(pixels), config.featurize_batch)]
    session.run([FEATURES_OUTPUT], {INPUT_NAME: batches[0]})  # warm-up: kernel selection, allocations
    start = time.perf_counter()
    for batch in batches:
        session.run([FEATURES_OUTPUT], {INPUT_NAME: np.ascontiguousarray(batch)})
    steady = stats.throughput(len(pixels), time.perf_counter() - start)
    del session

    sha256s = [hashlib.sha256(p.tobytes()).hexdigest() for p in pixels]
    with tempfile.TemporaryDirectory(prefix="bench-featurize-") as cache:
        start = time.perf_counter()
        featurize(
            pixels,
            sha256s,
            backbone_path,
            cache_dir=Path(cache),
            batch_size=config.featurize_batch,
            progress=False,
        )
        end_to_end = stats.throughput(len(pixels), time.perf_counter() - start)
    return {"steady_fps": steady, "end_to_end_fps": end_to_end}


# --- package size ---------------------------------------------------------------------------------


def handler_package_mib(config: BenchConfig) -> tuple[float | None, str]:
    """Unzipped size of the Lambda artifact `camsort package` builds (arm64, the deployed one)."""
    from infra.package import build_lambda_package

    try:
        report = build_lambda_package(architecture="arm64", out_dir=config.work_dir / "package")
    except CamsortError as exc:
        return None, f"Lambda package not measured: {exc}"
    return round(
        report.unzipped_bytes / stats.MIB, 1
    ), f"Lambda package: {report.artifact.name}, arm64, unzipped"


def installed_closure_mib(distributions: tuple[str, ...]) -> float:
    """Installed size of ``distributions`` and everything they require, in this venv."""
    from importlib import metadata

    from packaging.requirements import Requirement

    seen: set[str] = set()
    pending = [d.lower() for d in distributions]
    total = 0
    while pending:
        name = pending.pop().replace("_", "-").lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for file in dist.files or []:
            located = Path(dist.locate_file(file))
            if located.is_file():
                total += located.stat().st_size
        for raw in dist.requires or []:
            requirement = Requirement(raw)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return round(total / stats.MIB, 1)


# --- the moto stack and the events ----------------------------------------------------------------


def camera_for(path: str, group: str) -> str:
    return f"{path}-{group}"


def upload_group(stack, frames: list[bytes], camera: str) -> list[dict[str, Any]]:
    """Upload ``frames`` under ``<prefix><camera>/``; return moto's S3 -> SQS messages, in order."""
    s3 = stack.client("s3")
    keys = []
    for index, data in enumerate(frames):
        key = f"{stack.names.frames_prefix}{camera}/frame-{index:05d}.jpg"
        s3.put_object(Bucket=stack.names.bucket, Key=key, Body=data, ContentType="image/jpeg")
        keys.append(key)
    return collect_notifications(stack, keys)


def collect_notifications(stack, keys: list[str], attempts: int = 200) -> list[dict[str, Any]]:
    """Receive (and delete) the notification of each key; BenchError if any never arrives."""
    from urllib.parse import unquote_plus

    sqs = stack.client("sqs")
    wanted = set(keys)
    found: dict[str, dict[str, Any]] = {}
    for _ in range(attempts):
        if len(found) == len(wanted):
            break
        messages = sqs.receive_message(
            QueueUrl=stack.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        for message in messages:
            body = json.loads(message["Body"])
            for record in body.get("Records", []):
                key = unquote_plus(record["s3"]["object"]["key"])
                if key in wanted:
                    found[key] = message
        if messages:
            sqs.delete_message_batch(
                QueueUrl=stack.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
    missing = [key for key in keys if key not in found]
    if missing:
        raise BenchError(
            f"no S3 notification arrived for {len(missing)} key(s), e.g. s3://{stack.names.bucket}/{missing[0]}; "
            "check the bucket notification configuration (infra.local_stack) and the moto log in bench/work/"
        )
    return [found[key] for key in keys]


def sqs_events(stack, messages: list[dict[str, Any]], batch_size: int) -> list[dict[str, Any]]:
    """Lambda-shaped SQS events of ``batch_size`` records each (infra.worker's record shape)."""
    from infra.worker import sqs_record

    records = [sqs_record(m, stack.queue_arn, stack.region) for m in messages]
    return [{"Records": records[i : i + batch_size]} for i in range(0, len(records), batch_size)]


def frame_refs(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """bucket / key / etag of each frame, for the per-stage split (no handler involved)."""
    from urllib.parse import unquote_plus

    refs = []
    for message in messages:
        s3 = json.loads(message["Body"])["Records"][0]["s3"]
        refs.append(
            {
                "bucket": s3["bucket"]["name"],
                "key": unquote_plus(s3["object"]["key"]),
                "etag": s3["object"].get("eTag", "").strip('"'),
            }
        )
    return refs


def verify_results(stack, camera: str, expected: int) -> dict[str, int]:
    """Every frame uploaded for ``camera`` must have exactly one ``ok`` item; returns label counts."""
    from functions.results import ResultsTable

    table = ResultsTable(stack.names.table, stack.client("dynamodb"))
    items = table.query_camera(camera)
    statuses = [item.get("status") for item in items]
    if len(items) != expected or any(status != "ok" for status in statuses):
        raise BenchError(
            f"{stack.names.table}: camera {camera} has {len(items)} result(s) (statuses {sorted(set(map(str, statuses)))}), "
            f"expected {expected} 'ok'; see the child log in bench/work/logs/"
        )
    counts: dict[str, int] = {}
    for item in items:
        counts[item["label"]] = counts.get(item["label"], 0) + 1
    return counts


def delete_group(stack, camera: str) -> None:
    """Free moto's memory once a path is done with its frames."""
    s3 = stack.client("s3")
    prefix = f"{stack.names.frames_prefix}{camera}/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.names.bucket, Prefix=prefix):
        objects = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if objects:
            s3.delete_objects(Bucket=stack.names.bucket, Delete={"Objects": objects, "Quiet": True})


# --- child processes ------------------------------------------------------------------------------


@dataclass
class ChildRun:
    marks_s: dict[str, float] = field(default_factory=dict)  # seconds since spawn
    result: dict[str, Any] = field(default_factory=dict)
    peak_rss_mib: float = 0.0
    returncode: int = 0


def spawn(
    plan: dict[str, Any],
    environment: dict[str, str],
    log_path: Path,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> ChildRun:
    """Run ``bench.runner`` on ``plan`` in a fresh process; marks are seconds since spawn.

    Peak RSS is the child's own high-water mark (VmHWM, reported by the child at its end),
    not RUSAGE_CHILDREN / wait4's ru_maxrss: on Linux those start from the parent's RSS
    for a vfork + exec'd child (measured: every path read the 3 GB of this process).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path = log_path.with_suffix(".plan.json")
    plan_path.write_text(json.dumps(plan))
    read_fd, write_fd = os.pipe()
    run = ChildRun()
    error: dict[str, Any] | None = None
    with open(log_path, "wb") as log:
        spawned_at = time.time()
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.runner", str(plan_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**environment, "BENCH_REPORT_FD": str(write_fd)},
            pass_fds=(write_fd,),
            cwd=REPO_ROOT,
        )
        os.close(write_fd)
        with os.fdopen(read_fd) as reports:
            for line in reports:
                message = json.loads(line)
                kind = message.pop("event")
                if kind == "mark":
                    run.marks_s[message["name"]] = message["t"] - spawned_at
                elif kind == "progress" and on_progress:
                    on_progress(message["phase"], message["done"], message["total"])
                elif kind == "phase" and on_progress:
                    on_progress(message["name"], 0, 0)
                elif kind == "result":
                    run.result = message
                elif kind == "error":
                    error = message
        run.returncode = process.wait()
    if "peak_rss_kib" in run.result:
        run.peak_rss_mib = stats.rss_mib(run.result.pop("peak_rss_kib"))
    if error or run.returncode != 0:
        what = f"{error['type']}: {error['message']}" if error else f"exit code {run.returncode}"
        raise BenchError(f"bench child for {plan['path']} ({plan['mode']}) failed: {what}; see {log_path}")
    return run


def child_environment(stack, path: str, model_uri: str | None, model_cache: Path) -> dict[str, str]:
    """The environment Lambda gives the function (infra.worker), for the handler paths;
    the same endpoint and credentials for the notebook way."""
    from functions import env
    from infra.worker import function_environment

    base = {name: value for name, value in os.environ.items() if not name.startswith(("CAMSORT_", "AWS_"))}
    base["PYTHONUNBUFFERED"] = "1"
    base.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if path == REFERENCE:
        # The notebook's process: the endpoint and credentials, none of the function's settings.
        function_env = function_environment(stack, "unused")
        keep = {
            name: value
            for name, value in function_env.items()
            if name.startswith("AWS_") and "LAMBDA" not in name
        }
        return {**base, **keep}
    return {
        **base,
        **function_environment(stack, model_uri, extra={env.MODEL_CACHE_DIR: str(model_cache)}),
    }


# --- import cost ----------------------------------------------------------------------------------

# What each path imports before it can do anything, in the order it imports it.
IMPORT_STATEMENTS = {
    "handler": (
        "import functions.handler",
        ("numpy", "PIL.Image", "onnxruntime", "boto3", "aws_lambda_powertools", "functions.handler"),
    ),
    REFERENCE: (
        "import numpy, tensorflow, keras, lightgbm, boto3",
        ("numpy", "tensorflow", "keras", "lightgbm", "boto3"),
    ),
}


def parse_importtime(stderr: str, modules: tuple[str, ...]) -> dict[str, float]:
    """Cumulative import seconds of ``modules`` from ``python -X importtime`` output.

    Each module is imported once, so its line's cumulative column is its whole import
    (minus what something imported before it already loaded).
    """
    found: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        name, cumulative = name.strip(), cumulative.strip()
        if name in modules and cumulative.isdigit():
            found[name] = int(cumulative) / 1e6
    return {module: round(found[module], 3) for module in modules if module in found}


def import_times(path: str, environment: dict[str, str]) -> dict[str, float]:
    """One fresh interpreter's import cost for ``path`` (no container state is built)."""
    from functions import env

    statement, modules = IMPORT_STATEMENTS[REFERENCE if path == REFERENCE else "handler"]
    # Without the Lambda marker the handler module does not build its app at import.
    environment = {name: value for name, value in environment.items() if name != env.AWS_LAMBDA_FUNCTION_NAME}
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if completed.returncode != 0:
        raise BenchError(f"`python -c {statement!r}` failed for {path}: {completed.stderr[-500:]}")
    return parse_importtime(completed.stderr, modules)


# --- one path -------------------------------------------------------------------------------------


def run_path(
    config: BenchConfig,
    stack,
    path: str,
    frames: list[BenchFrame],
    model_uri: str | None,
    reference_dir: Path,
    progress,
) -> dict[str, Any]:
    """Cold starts, then the full warm run, then (optionally) the profile run, for one path."""
    frame_bytes = [frame.read() for frame in frames]
    logs = config.work_dir / "logs"
    base_plan = {
        "path": path,
        "weights": config.weights,
        "seed": config.seed,
        "table": stack.names.table,
        "reference_dir": str(reference_dir),
    }
    task = progress.add_task(f"{path}: cold starts", total=config.cold_starts)

    cold_runs: list[ChildRun] = []
    for attempt in range(config.cold_starts):
        camera = camera_for(path, f"cold{attempt}")
        (message,) = upload_group(stack, frame_bytes[attempt : attempt + 1], camera)
        plan = {**base_plan, "mode": "cold", "cold_event": sqs_events(stack, [message], 1)[0]}
        with tempfile.TemporaryDirectory(prefix="bench-model-cache-") as model_cache:
            environment = child_environment(stack, path, model_uri, Path(model_cache))
            cold_runs.append(spawn(plan, environment, logs / f"{path}-cold{attempt}.log"))
        verify_results(stack, camera, 1)
        progress.advance(task)

    progress.update(task, description=f"{path}: import cost", completed=0, total=None)
    with tempfile.TemporaryDirectory(prefix="bench-model-cache-") as model_cache:
        imports = import_times(path, child_environment(stack, path, model_uri, Path(model_cache)))

    progress.update(task, description=f"{path}: uploading frames", completed=0, total=None)
    groups = {
        "warmup": frame_bytes[: config.warmup],
        "cold": frame_bytes[config.warmup : config.warmup + 1],
        "batch1": frame_bytes,
        "batch10": frame_bytes,
        "stages": frame_bytes[: config.stage_frames],
    }
    messages = {name: upload_group(stack, data, camera_for(path, name)) for name, data in groups.items()}
    plan = {
        **base_plan,
        "mode": "full",
        "cold_event": sqs_events(stack, messages["cold"], 1)[0],
        "warmup_events": sqs_events(stack, messages["warmup"], 1),
        "batch_1_events": sqs_events(stack, messages["batch1"], 1),
        "batch_10_events": sqs_events(stack, messages["batch10"], config.batch_size),
        "stage_frames": frame_refs(messages["stages"]),
        "draft_frame_paths": [str(frame.path) for frame in frames] if path != REFERENCE else [],
    }

    def on_progress(phase: str, done: int, total: int) -> None:
        progress.update(task, description=f"{path}: {phase}", completed=done, total=total or None)

    with tempfile.TemporaryDirectory(prefix="bench-model-cache-") as model_cache:
        environment = child_environment(stack, path, model_uri, Path(model_cache))
        full = spawn(plan, environment, logs / f"{path}-full.log", on_progress)
    labels = {}
    for name, data in groups.items():
        # The stage split writes its items itself, one per frame, like the handler would.
        labels[name] = verify_results(stack, camera_for(path, name), len(data))

    profile = None
    if config.profile:
        camera = camera_for(path, "profile")
        profile_messages = upload_group(stack, frame_bytes[: config.profile_frames + 1], camera)
        plan = {
            **base_plan,
            "mode": "profile",
            "cold_event": sqs_events(stack, profile_messages[:1], 1)[0],
            "profile_events": sqs_events(stack, profile_messages[1:], 1),
            "profile_path": str(config.work_dir / f"profile-{path}.txt"),
            "onnx_profile_frames": [str(frame.path) for frame in frames[: config.profile_frames]],
        }
        progress.update(task, description=f"{path}: profiling", completed=0, total=None)
        with tempfile.TemporaryDirectory(prefix="bench-model-cache-") as model_cache:
            environment = child_environment(stack, path, model_uri, Path(model_cache))
            profile = spawn(plan, environment, logs / f"{path}-profile.log").result
        verify_results(stack, camera, len(profile_messages))
        delete_group(stack, camera)

    for name in groups:
        delete_group(stack, camera_for(path, name))
    for attempt in range(config.cold_starts):
        delete_group(stack, camera_for(path, f"cold{attempt}"))
    progress.update(task, description=f"{path}: done", completed=1, total=1)
    summary = summarize_path(cold_runs, full, profile, labels["batch1"])
    summary["cold_start_s"]["imports_s"] = imports
    return summary


# Per-frame sums of stages, so the split answers "network or compute?" directly.
STAGE_GROUPS = {
    "S3 + DynamoDB calls": ("dup_check", "get_object", "tag", "write"),
    "compute (decode + inference + decide)": ("decode", "inference", "decide"),
    "all stages": ("dup_check", "get_object", "decode", "inference", "decide", "tag", "write"),
}


def stage_group_summaries(stages_s: dict[str, list[float]]) -> dict[str, dict[str, float | int]]:
    """Summaries of the per-frame sums of each stage group (stages a path lacks count as 0)."""
    frames = max((len(samples) for samples in stages_s.values()), default=0)
    summaries = {}
    for group, names in STAGE_GROUPS.items():
        present = [stages_s[name] for name in names if stages_s.get(name)]
        if frames and present:
            summaries[group] = stats.summarize_ms([sum(parts) for parts in zip(*present, strict=True)])
    return summaries


def summarize_path(
    cold_runs: list[ChildRun],
    full: ChildRun,
    profile: dict[str, Any] | None,
    labels: dict[str, int],
) -> dict[str, Any]:
    """Raw child measurements -> the figures of one path (pure)."""
    result = full.result
    per_frame_batch_10 = [
        seconds / size for seconds, size in zip(result["batch_10_s"], result["batch_10_sizes"], strict=True)
    ]
    frames_batch_10 = sum(result["batch_10_sizes"])
    cold = [run.marks_s["first_result"] for run in cold_runs]
    phases = {
        name: [run.marks_s[name] for run in cold_runs]
        for name in ("started", "imported", "first_result")
        if all(name in run.marks_s for run in cold_runs)
    }
    stages = {name: stats.summarize_ms(samples) for name, samples in result["stages_s"].items() if samples}
    stages.update(stage_group_summaries(result["stages_s"]))
    summary = {
        "warm_batch_1": stats.summarize_ms(result["batch_1_s"]),
        "warm_batch_10_per_frame": stats.summarize_ms(per_frame_batch_10),
        "throughput_fps": {
            "batch_1": stats.throughput(len(result["batch_1_s"]), result["batch_1_wall_s"]),
            "batch_10": stats.throughput(frames_batch_10, result["batch_10_wall_s"]),
        },
        "cold_start_s": {
            "runs": [round(value, 3) for value in cold],
            "median": round(stats.median(cold), 3),
            # Median over the cold runs of each mark: process start -> imports done -> first result.
            "phases_median_s": {name: round(stats.median(values), 3) for name, values in phases.items()},
            "full_run_first_result_s": round(full.marks_s["first_result"], 3)
            if "first_result" in full.marks_s
            else None,
        },
        "peak_rss_mib": full.peak_rss_mib,
        "stages": stages,
        "labels": labels,
    }
    if result.get("draft"):
        summary["draft_raw"] = result["draft"]
    if profile:
        summary["profile"] = {key: value for key, value in profile.items() if key != "event"}
    return summary


# --- draft ------------------------------------------------------------------------------------------


def summarize_draft(paths: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Decode times (both handler children's samples pooled) and label agreement per model."""
    raws = {
        path: paths[path].pop("draft_raw")
        for path in PRECISIONS
        if path in paths and "draft_raw" in paths[path]
    }
    if not raws:
        return None
    draft_s = [s for raw in raws.values() for s in raw["decode_draft_s"]]
    full_s = [s for raw in raws.values() for s in raw["decode_full_s"]]
    return {
        "decode": {"draft": stats.summarize_ms(draft_s), "full": stats.summarize_ms(full_s)},
        "agreement": {
            path: {
                "n": len(raw["labels_draft"]),
                "labels": stats.agreement(raw["labels_draft"], raw["labels_full"]),
                "top_labels": stats.agreement(raw["top_labels_draft"], raw["top_labels_full"]),
                "max_abs_probability_diff": raw["max_abs_probability_diff"],
            }
            for path, raw in raws.items()
        },
    }


# --- the whole run ----------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    import onnxruntime

    info = {
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": _cpu_model(),
        # What onnxruntime's int8 kernels can use: VNNI makes u8 x s8 products much cheaper.
        "cpu_flags": _cpu_flags(("avx2", "avx512f", "avx512_vnni", "avx_vnni", "fma")),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
    except ImportError:
        pass
    return info


def _cpu_flags(wanted: tuple[str, ...]) -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in wanted if flag in present]
    except OSError:
        pass
    return []


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_bench(config: BenchConfig = BenchConfig(), console=None) -> dict[str, Any]:  # noqa: B008 - frozen
    """The whole bench; writes results.json and results.md under ``config.out_dir``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bench.report import render_markdown, rich_table, rich_targets_table
    from functions.image_loader import load_image
    from infra.local_stack import create_local_stack, upload_model
    from infra.moto_server import MotoServer
    from infra.topology import StackNames

    config.validate()
    console = console or Console()
    started = time.perf_counter()
    config.work_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine_info(),
        "settings": {
            key: str(value) if isinstance(value, Path) else value for key, value in asdict(config).items()
        },
        "paths": {},
        "notes": [WEIGHTS_NOTE.format(weights=config.weights)],
    }
    if results["machine"]["load_average_at_start"][0] > 0.5 * results["machine"]["cpus"]:
        results["notes"].append(
            f"load average {results['machine']['load_average_at_start']} at start: other work was running, "
            "the timings are noisy"
        )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("frames", total=None)
        frames = bench_frames(config)
        train_root = training_set(config)
        model_dirs = {}
        for precision in PRECISIONS:
            progress.update(
                task, description=f"{precision} model (cached; else trained, log in {config.work_dir})"
            )
            model_dirs[precision] = ensure_model(config, precision, train_root)

        progress.update(task, description="training featurization throughput")
        reference_dir = config.work_dir / "reference"
        files = training_files(train_root)
        if REFERENCE in config.paths:
            results["paths"].setdefault(REFERENCE, {})["featurization_fps"] = reference_featurization(
                config, train_root, reference_dir
            )
        pixels = np.stack([load_image(path.read_bytes(), source=str(path)) for path, _ in files])
        backbones = backbone_paths(config)
        for precision in PRECISIONS:
            if precision in config.paths:
                figures = onnx_featurization(config, backbones[precision], pixels)
                results["paths"].setdefault(precision, {}).update(
                    featurization_fps=figures["steady_fps"],
                    featurization_end_to_end_fps=figures["end_to_end_fps"],
                )

        if config.package:
            progress.update(task, description="Lambda package size")
            package_mib, note = handler_package_mib(config)
            results["notes"].append(note)
            for precision in PRECISIONS:
                results["paths"].setdefault(precision, {})["package_mib"] = package_mib
            results["paths"].setdefault(REFERENCE, {})["package_mib"] = installed_closure_mib(
                REFERENCE_DISTRIBUTIONS
            )
            results["notes"].append(
                "(a)'s package: installed size of "
                + ", ".join(REFERENCE_DISTRIBUTIONS)
                + " and their dependencies in this venv (TensorFlow alone is over Lambda's 250 MB zip limit)."
            )
        progress.update(task, description="preparation done", completed=1, total=1)

        with MotoServer(log_path=config.work_dir / "moto.log") as server:
            stack = create_local_stack(server.endpoint_url, StackNames.for_stage("bench"))
            collect_test_event(stack)
            model_uris = {
                precision: upload_model(stack, model_dirs[precision], version=f"bench-{precision}")
                for precision in PRECISIONS
            }
            for path in config.paths:
                measured = run_path(
                    config, stack, path, frames, model_uris.get(path), reference_dir, progress
                )
                results["paths"].setdefault(path, {}).update(measured)

    draft = summarize_draft(results["paths"])
    if draft:
        results["draft"] = draft
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["duration_s"] = round(time.perf_counter() - started, 1)
    add_titles(results)

    config.out_dir.mkdir(parents=True, exist_ok=True)
    (config.out_dir / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (config.out_dir / "results.md").write_text(render_markdown(results))
    console.print(rich_table(results))
    console.print(rich_targets_table(results))
    console.print(f"wrote {config.out_dir / 'results.json'} and {config.out_dir / 'results.md'}")
    return results


def collect_test_event(stack) -> None:
    """Drop the s3:TestEvent S3 sends when the notification is configured."""
    sqs = stack.client("sqs")
    for message in sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    ).get("Messages", []):
        sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"])


def add_titles(results: dict[str, Any]) -> None:
    titles = {
        REFERENCE: "(a) the notebook way: keras load_img + preprocess_input + model.predict per frame + LightGBM Booster",
        FP32: "(b) functions.handler.lambda_handler, fp32 model.onnx",
        INT8: "(c) functions.handler.lambda_handler, int8 (QDQ) model.onnx",
    }
    for path, title in titles.items():
        if path in results["paths"]:
            results["paths"][path]["title"] = title
