"""`camsort camera regions set | show | preview`: a camera's regions in ``s3://<model bucket>/cameras/<id>.json``.

The object is what the function reads (functions/stores/camera_configs.py), so ``set`` validates
with the function's own parser (:func:`functions.frames.regions.parse_camera_config`) against
the deployment's model names before it writes anything: a file the function would refuse is
refused here, in one line naming the file and the fix. The deployment's names are ``default``
plus the ``models`` of ``deploy/<stage>.json`` (docs/regions.md); ``--models`` names them for a
stage without a deploy file. Written in the parser's normal form (``camera_config_to_dict``).

``preview`` draws the boxes and names on the camera's latest frame (the newest ``ok`` result in
the results table's camera index), upright as the boxes are meant, into a PNG.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from rich.console import Console
from rich.table import Table

from functions import env
from functions.errors import ConfigurationError
from functions.frames.regions import (
    DEFAULT_MODEL,
    CameraConfig,
    camera_config_to_dict,
    parse_camera_config,
)
from functions.stores.camera_configs import camera_config_key
from functions.stores.results import CAMERA_INDEX, CAMERA_KEY, deserialize_item
from infra.deploy.topology import StackNames

# Newest results looked at for a frame to preview (an `ok` one; rejected frames may not decode).
_PREVIEW_LOOKBACK = 50


@dataclass(frozen=True)
class RegionsTarget:
    """Where a stage keeps its cameras' regions (the model bucket) and its results."""

    bucket: str
    results_table: str
    stage: str | None
    aws: Any  # infra.ops.review.AwsTarget: clients for moto or AWS

    def s3(self) -> Any:
        return self.aws.client("s3")

    def uri(self, camera_id: str) -> str:
        return f"s3://{self.bucket}/{camera_config_key(camera_id)}"


def resolve_regions_target(
    endpoint_url: str | None, table: str | None, bucket: str | None, region: str | None, stage: str | None
) -> RegionsTarget:
    """Explicit options win; otherwise the running demo's stage. The model bucket defaults to the
    stage's bucket (serverless.yml's modelBucket defaults to bucketName)."""
    from infra.ops.results_query import resolve_target
    from infra.ops.review import AwsTarget

    target = resolve_target(endpoint_url, table, region, stage=stage)
    stage = stage or StackNames.stage_of(target.table)
    if not bucket:
        if not stage:
            raise ConfigurationError(
                f"cannot tell the model bucket of results table {target.table!r}; pass --bucket"
            )
        bucket = StackNames.for_stage(stage).bucket
    return RegionsTarget(
        bucket, target.table, stage, AwsTarget(target.endpoint_url, target.table, "", target.region)
    )


def deployment_models(target: RegionsTarget, deploy_dir: Path | None, explicit: str | None) -> set[str]:
    """The model names a region may use: ``default`` + ``--models``, else + deploy/<stage>.json's ``models``."""
    if explicit:
        return {DEFAULT_MODEL, *(name.strip() for name in explicit.split(",") if name.strip())}
    path = _deploy_file(target, deploy_dir)
    if path is None or not path.is_file():
        return {DEFAULT_MODEL}
    try:
        models = json.loads(path.read_text()).get("models") or {}
    except (json.JSONDecodeError, AttributeError) as exc:
        raise ConfigurationError(f"{path}: malformed deploy file ({exc}); fix it or pass --models") from exc
    return {DEFAULT_MODEL, *models}


def _deploy_file(target: RegionsTarget, deploy_dir: Path | None) -> Path | None:
    if not target.stage:
        return None
    if deploy_dir is None:
        from infra import PROJECT_ROOT
        from infra.local.running import default_cache_dir

        local = bool(target.aws.endpoint_url)
        deploy_dir = default_cache_dir() / "demo" / "deploy" if local else PROJECT_ROOT / "deploy"
    return Path(deploy_dir) / f"{target.stage}.json"


def read_regions_file(path: Path, camera_id: str, known_models: set[str]) -> CameraConfig:
    """The file, validated as the function validates it; one-line errors naming the file."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigurationError(f"{path}: no such file; write the regions as JSON first") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"{path}: not valid JSON ({exc}); fix the file and set it again") from exc
    return parse_camera_config(data, camera_id=camera_id, known_models=known_models, source=str(path))


def set_regions(target: RegionsTarget, config: CameraConfig) -> str:
    """Write the camera's object (normal form); returns its ETag."""
    body = json.dumps(camera_config_to_dict(config), indent=2).encode() + b"\n"
    response = target.s3().put_object(
        Bucket=target.bucket,
        Key=camera_config_key(config.camera_id),
        Body=body,
        ContentType="application/json",
    )
    return str(response["ETag"]).strip('"')


def get_regions(target: RegionsTarget, camera_id: str) -> CameraConfig | None:
    """The camera's configuration as stored (None: no object, the whole frame), validated without model names."""
    try:
        response = target.s3().get_object(Bucket=target.bucket, Key=camera_config_key(camera_id))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    data = response["Body"].read()
    try:
        parsed = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"{target.uri(camera_id)}: not valid JSON ({exc}); set it again") from exc
    return parse_camera_config(parsed, camera_id=camera_id, source=target.uri(camera_id))


def set_regions_for(
    camera_id: str, path: Path, target: RegionsTarget, deploy_dir: Path | None, models: str | None
) -> CameraConfig:
    """`camsort camera regions set CAMERA --file FILE [--models a,b]`: checked against the deployment's models."""
    return set_regions_command(camera_id, path, target, deployment_models(target, deploy_dir, models))


def set_regions_command(
    camera_id: str, path: Path, target: RegionsTarget, known_models: set[str], console: Console | None = None
) -> CameraConfig:
    """Validate FILE against ``known_models`` and write it as the camera's regions."""
    _check_camera_id(camera_id)
    config = read_regions_file(path, camera_id, known_models)
    etag = set_regions(target, config)
    (console or Console()).print(
        f"{target.uri(camera_id)}: {len(config.regions)} region(s) set (ETag {etag}); running functions pick "
        f"it up within {env.CAMERA_CONFIG_TTL_SECONDS} ({env.DEFAULT_CAMERA_CONFIG_TTL_SECONDS} s by default)"
    )
    return config


def show_regions_command(
    camera_id: str, target: RegionsTarget, *, as_json: bool, console: Console | None = None
) -> CameraConfig | None:
    """`camsort camera regions show CAMERA`."""
    _check_camera_id(camera_id)
    console = console or Console()
    config = get_regions(target, camera_id)
    if as_json:
        console.print_json(json.dumps(camera_config_to_dict(config or CameraConfig(camera_id))))
        return config
    if config is None or not config.regions:
        console.print(
            f"Camera {camera_id} has no regions ({target.uri(camera_id)}): its frames are answered whole."
        )
        return config
    table = Table(title=f"{camera_id}: {target.uri(camera_id)}")
    for column in ("region", "box [left, top, right, bottom]", "model", "smoothing"):
        table.add_column(column)
    for region in config.regions:
        box = ", ".join(f"{value:g}" for value in region.box.to_list())
        smoothing = json.dumps(dict(region.smoothing)) if region.smoothing else ""
        table.add_row(region.name, f"[{box}]", region.model, smoothing)
    console.print(table)
    return config


def preview_regions_command(
    camera_id: str, target: RegionsTarget, out: Path | None, console: Console | None = None
) -> Path:
    """`camsort camera regions preview CAMERA [--out PNG]`: the boxes and names on the latest frame."""
    _check_camera_id(camera_id)
    config = get_regions(target, camera_id) or CameraConfig(camera_id)
    frame = latest_frame(target, camera_id)
    response = target.s3().get_object(
        Bucket=frame["bucket"],
        Key=frame["key"],
        **({"VersionId": frame["version_id"]} if frame.get("version_id") else {}),
    )
    out = Path(out or f"{camera_id}-regions.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    draw_regions(response["Body"].read(), config, f"s3://{frame['bucket']}/{frame['key']}").save(out, "PNG")
    (console or Console()).print(
        f"{out}: {len(config.effective_regions())} region(s) of {camera_id} on s3://{frame['bucket']}/{frame['key']} "
        f"(captured {frame.get('captured_at')})"
    )
    return out


def latest_frame(target: RegionsTarget, camera_id: str) -> dict[str, Any]:
    """The newest ``ok`` result of the camera (its camera index, newest first)."""
    dynamodb = target.aws.client("dynamodb")
    response = dynamodb.query(
        TableName=target.results_table,
        IndexName=CAMERA_INDEX,
        KeyConditionExpression="#cam = :cam",
        ExpressionAttributeNames={"#cam": CAMERA_KEY},
        ExpressionAttributeValues={":cam": {"S": camera_id}},
        ScanIndexForward=False,
        Limit=_PREVIEW_LOOKBACK,
    )
    for raw in response.get("Items", []):
        item = deserialize_item(raw)
        if item.get("status") == "ok":
            return item
    raise ConfigurationError(
        f"camera {camera_id}: no classified frame among its latest {_PREVIEW_LOOKBACK} results in "
        f"{target.results_table}; upload a frame and wait for its result, then preview again"
    )


def draw_regions(data: bytes, config: CameraConfig, source: str) -> Any:
    """The frame, upright, with each region's box and ``name (model)`` drawn on it."""
    from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

    try:
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ConfigurationError(f"{source}: the camera's latest frame does not decode ({exc})") from exc
    draw = ImageDraw.Draw(image)
    width, height = image.size
    line = max(2, round(min(width, height) / 200))
    font = ImageFont.load_default(size=max(12, round(min(width, height) / 30)))
    for index, region in enumerate(config.effective_regions()):
        colour = _COLOURS[index % len(_COLOURS)]
        left, top, right, bottom = region.box.pixels(width, height)
        draw.rectangle((left, top, right - 1, bottom - 1), outline=colour, width=line)
        label = region.name if region.model == DEFAULT_MODEL else f"{region.name} ({region.model})"
        text_box = draw.textbbox((left + line + 2, top + line + 2), label, font=font)
        draw.rectangle(text_box, fill=(0, 0, 0))
        draw.text((left + line + 2, top + line + 2), label, fill=colour, font=font)
    return image


_COLOURS = ((255, 214, 0), (0, 230, 255), (255, 64, 160), (120, 255, 80), (255, 140, 0), (170, 120, 255))


def _check_camera_id(camera_id: str) -> None:
    if not camera_id or "/" in camera_id:
        raise ConfigurationError(
            f"camera id {camera_id!r}: one key segment (no '/'), as in <frames prefix><id>/..."
        )
