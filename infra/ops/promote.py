"""The stage's model pins: set a shadow candidate, promote it with evidence, roll back.

One file per stage, ``deploy/<stage>.json``, holds what the function runs: the live model's
version, URI and sha256 pin, the shadow candidate's (and its sample rate and since when it is
scored), and the previous live model for ``camsort rollback``. The same file drives both
deployments:

* AWS: serverless.yml reads its params from ``deploy/<stage>.json`` (``${file(...)}`` with the
  defaults after the comma), so after writing it ``npx serverless deploy --stage <stage>`` runs
  (``--no-deploy`` only prints the command). The Lambda update starts new containers, which load
  the new model (and candidate) once each.
* local (moto): the file lives in the demo's state directory and the local worker's environment
  is built from it (:func:`function_environment`); a worker started after the change loads the
  new model, as a new Lambda container would.

Every change is recorded: an append to ``deploy/promotions.jsonl`` beside the file, and one
object per change under ``s3://<model bucket>/models/promotions/`` (one object each, never a
read-modify-write of a shared log, so two operators cannot lose each other's record). Who = the
IAM caller identity (STS) and the local user; what evidence = the gates' figures.
"""

from __future__ import annotations

import getpass
import json
import subprocess
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from functions.errors import CamsortError, ConfigurationError
from functions.frames.keys import format_timestamp
from functions.frames.manifest import MANIFEST_FILENAME, MODEL_FILENAME, Manifest, load_verified
from infra import PROJECT_ROOT
from infra.deploy.deploy_file import DEFAULT_MODEL, DeployConfig, ModelPin, ModelSlot, model_prefix
from infra.deploy.topology import StackNames

__all__ = ["DeployConfig", "ModelPin", "ModelSlot"]  # where the demo and the tests have always found them
RECORDS_PREFIX = "models/promotions/"
RECORDS_FILE = "promotions.jsonl"


class PromotionRefusedError(CamsortError):
    """The candidate does not meet the gates; ``--force`` overrides (and is recorded)."""


@dataclass(frozen=True)
class Stage:
    """One deployment: its name, where its deploy file lives, and how to reach AWS (or moto)."""

    name: str
    deploy_dir: Path
    target: Any  # infra.ops.review.AwsTarget
    local: bool  # True: moto + local worker; False: AWS + serverless deploy

    @property
    def path(self) -> Path:
        return self.deploy_dir / f"{self.name}.json"

    def read(self) -> DeployConfig:
        try:
            return DeployConfig.from_file(json.loads(self.path.read_text()))
        except FileNotFoundError:
            raise ConfigurationError(
                f"{self.path}: no deploy file for stage {self.name}; set a candidate first "
                "(camsort candidate MODEL_DIR --live-uri ... on a new stage)"
            ) from None
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigurationError(
                f"{self.path}: malformed deploy file ({exc!r}); fix or delete it"
            ) from exc

    def write(self, config: DeployConfig) -> None:
        self.deploy_dir.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.part")
        temporary.write_text(json.dumps(config.to_file(), indent=2) + "\n")
        temporary.replace(self.path)


def function_environment(deploy_dir: Path, stage: str) -> dict[str, str]:
    """The local worker's model variables from ``deploy_dir/<stage>.json`` (empty when there is none)."""
    path = Path(deploy_dir) / f"{stage}.json"
    if not path.exists():
        return {}
    return DeployConfig.from_file(json.loads(path.read_text())).function_environment()


# --- gates -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gates:
    kind: str = "agreement"  # "agreement" | "cv" | "all"
    min_agreement: float = 0.9
    min_frames: int = 500
    cv_metric: str = "balanced_accuracy"


@dataclass
class GateResult:
    name: str
    passed: bool
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)


def agreement_gate(comparison: Any, gates: Gates) -> GateResult:
    frames, agreement = comparison.frames, comparison.agreement
    passed = frames >= gates.min_frames and agreement is not None and agreement >= gates.min_agreement
    shown = "-" if agreement is None else f"{agreement:.3f}"
    return GateResult(
        "agreement",
        passed,
        f"agreement {shown} on {frames} frames (needs >= {gates.min_agreement} on >= {gates.min_frames})",
        {
            "frames": frames,
            "agreement": agreement,
            "per_camera": comparison.per_camera,
            "confusion": comparison.confusion,
        },
    )


def cv_gate(live: Manifest, candidate: Manifest, gates: Gates) -> GateResult:
    metric = gates.cv_metric
    live_value = live.cv_summary.get("mean", {}).get(metric)
    candidate_value = candidate.cv_summary.get("mean", {}).get(metric)
    if live_value is None or candidate_value is None:
        return GateResult("cv", False, f"cross-validation {metric} missing from a manifest", {})
    lower_is_better = metric in ("log_loss",)
    passed = candidate_value <= live_value if lower_is_better else candidate_value >= live_value
    return GateResult(
        "cv",
        passed,
        f"cross-validation {metric}: candidate {candidate_value:.4f} vs live {live_value:.4f}",
        {"metric": metric, "candidate": candidate_value, "live": live_value},
    )


# --- the operations --------------------------------------------------------------------------------


def read_manifest_at(uri: str, s3: Any) -> Manifest:
    """manifest.json of a model directory or ``s3://bucket/prefix/``."""
    if not uri.startswith("s3://"):
        return Manifest.from_dict(json.loads((Path(uri) / MANIFEST_FILENAME).read_text()), uri)
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    key = prefix.rstrip("/") + "/" + MANIFEST_FILENAME if prefix else MANIFEST_FILENAME
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return Manifest.from_dict(json.loads(body), f"s3://{bucket}/{key}")


def set_candidate(
    stage: Stage,
    model_dir: Path,
    *,
    version: str | None,
    sample_rate: float,
    live_uri: str | None,
    now: datetime,
    model_name: str = DEFAULT_MODEL,
) -> DeployConfig:
    """Upload a verified model directory as the shadow candidate of ``model_name`` on the stage
    (``models/<version>/``, a named model's ``models/<name>/<version>/``).

    ``live_uri`` names the model running now where the deploy file has none yet: the stage's
    default model (no deploy file), or a named model the stage does not pin yet.
    """
    model_path, manifest = load_verified(Path(model_dir))  # the pin is the file's real sha256
    s3 = stage.target.client("s3")
    config = _config_with_live(stage, model_name, live_uri, s3)
    slot = config.slot(model_name)
    assert slot is not None
    if not slot.live.uri.startswith("s3://"):
        raise ConfigurationError(
            f"live model {slot.live.uri} is not in S3; the candidate is uploaded beside it"
        )
    bucket = slot.live.uri[len("s3://") :].partition("/")[0]
    version = version or manifest.model_version
    prefix = model_prefix(StackNames().models_prefix, model_name, version)
    for name, path in (
        (MODEL_FILENAME, model_path),
        (MANIFEST_FILENAME, Path(model_dir) / MANIFEST_FILENAME),
    ):
        s3.upload_file(str(path), bucket, prefix + name)
    # Whole seconds: the gate compares it with captured_at, which for most frames is S3's
    # LastModified (second resolution); a frame uploaded in the same second as this
    # command was otherwise left out of the evidence.
    since = format_timestamp(now.replace(microsecond=0))
    candidate = ModelPin(version, f"s3://{bucket}/{prefix}", manifest.model_sha256)
    updated = replace(
        config.with_slot(model_name, replace(slot, candidate=candidate, candidate_since=since)),
        shadow_sample_rate=sample_rate,
    )
    stage.write(updated)
    return updated


def _config_with_live(stage: Stage, model_name: str, live_uri: str | None, s3: Any) -> DeployConfig:
    """The stage's deploy file, with ``model_name``'s live model taken from ``live_uri`` when the
    file does not pin it yet; a ConfigurationError saying what to pass otherwise."""
    if not stage.path.exists():
        if model_name != DEFAULT_MODEL or not live_uri:
            raise ConfigurationError(
                f"{stage.path}: no deploy file yet; set the default model's candidate first with "
                "--live-uri (the model the stage runs now)"
            )
        live = read_manifest_at(live_uri, s3)
        return DeployConfig(live=ModelPin(live.model_version, live_uri, live.model_sha256))
    config = stage.read()
    if config.slot(model_name) is not None:
        return config
    if not live_uri:
        raise ConfigurationError(
            f"{stage.path}: stage {stage.name} runs no model named {model_name!r} yet; pass --live-uri "
            f"(its first version, uploaded with camsort upload-model --model {model_name})"
        )
    live = read_manifest_at(live_uri, s3)
    return config.with_slot(model_name, ModelSlot(ModelPin(live.model_version, live_uri, live.model_sha256)))


def _slot(stage: Stage, config: DeployConfig, model_name: str) -> ModelSlot:
    slot = config.slot(model_name)
    if slot is None:
        raise ConfigurationError(
            f"{stage.path}: stage {stage.name} runs no model named {model_name!r} "
            f"(it runs {', '.join([DEFAULT_MODEL, *sorted(config.models)])})"
        )
    return slot


def evaluate_gates(
    stage: Stage, slot: ModelSlot, gates: Gates, now: datetime, model_name: str = DEFAULT_MODEL
) -> list[GateResult]:
    from infra.ops.compare import compare_items, shadow_items

    assert slot.candidate is not None
    results = []
    if gates.kind in ("agreement", "all"):
        since = datetime.fromisoformat(
            (slot.candidate_since or "1970-01-01T00:00:00Z").replace("Z", "+00:00")
        )
        items = shadow_items(
            stage.target.client("dynamodb"), stage.target.results_table, since, model_name=model_name
        )
        results.append(agreement_gate(compare_items(items, candidate_version=slot.candidate.version), gates))
    if gates.kind in ("cv", "all"):
        s3 = stage.target.client("s3")
        results.append(
            cv_gate(read_manifest_at(slot.live.uri, s3), read_manifest_at(slot.candidate.uri, s3), gates)
        )
    return results


def who(stage: Stage) -> dict[str, str | None]:
    try:
        arn = stage.target.client("sts").get_caller_identity()["Arn"]
    except Exception as exc:  # the record still names the local user
        arn = f"unknown ({type(exc).__name__})"
    return {"iam": arn, "user": getpass.getuser()}


def record(stage: Stage, entry: dict[str, Any]) -> str | None:
    """Append to deploy/promotions.jsonl and put one object under models/promotions/; returns its URI."""
    line = json.dumps(entry, sort_keys=True, default=str)
    stage.deploy_dir.mkdir(parents=True, exist_ok=True)
    with (stage.deploy_dir / RECORDS_FILE).open("a") as handle:
        handle.write(line + "\n")
    live_uri = entry["to"]["uri"]
    if not live_uri.startswith("s3://"):
        return None
    bucket = live_uri[len("s3://") :].partition("/")[0]
    stamp = entry["at"].replace(":", "").replace("-", "").replace(".", "")
    model = entry.get("model", DEFAULT_MODEL)
    named = "" if model == DEFAULT_MODEL else f"-{model}"
    key = f"{RECORDS_PREFIX}{stamp}-{stage.name}{named}-{entry['action']}.json"
    stage.target.client("s3").put_object(
        Bucket=bucket, Key=key, Body=line.encode(), ContentType="application/json"
    )
    return f"s3://{bucket}/{key}"


def promote(
    stage: Stage,
    gates: Gates,
    *,
    force: bool,
    reason: str | None,
    now: datetime,
    model_name: str = DEFAULT_MODEL,
) -> dict[str, Any]:
    """Make ``model_name``'s candidate live (the old live kept for rollback); refuses on failed
    gates unless forced. The stage's other models stay as they are."""
    config = stage.read()
    slot = _slot(stage, config, model_name)
    if slot.candidate is None:
        raise ConfigurationError(
            f"{stage.path}: model {model_name} of stage {stage.name} has no candidate; set one with camsort candidate"
            + ("" if model_name == DEFAULT_MODEL else f" --model {model_name}")
        )
    results = evaluate_gates(stage, slot, gates, now, model_name)
    failed = [r for r in results if not r.passed]
    if failed and not force:
        raise PromotionRefusedError(
            f"not promoting {model_name} {slot.candidate.version} on {stage.name}: "
            + "; ".join(r.detail for r in failed)
            + ". Let more frames be scored, or pass --force (recorded)"
        )
    updated = config.with_slot(model_name, ModelSlot(live=slot.candidate, previous=slot.live))
    entry = _entry(
        stage, "promote", slot.live, slot.candidate, now, reason, force and bool(failed), results, model_name
    )
    stage.write(updated)
    entry["record_uri"] = record(stage, entry)
    return entry


def rollback(
    stage: Stage, *, reason: str | None, now: datetime, model_name: str = DEFAULT_MODEL
) -> dict[str, Any]:
    """Make ``model_name``'s previous live model live again (the rolled-back one becomes the previous)."""
    config = stage.read()
    slot = _slot(stage, config, model_name)
    if slot.previous is None:
        raise ConfigurationError(
            f"{stage.path}: model {model_name} of stage {stage.name} has no previous version to roll back to"
        )
    updated = config.with_slot(model_name, replace(slot, live=slot.previous, previous=slot.live))
    entry = _entry(stage, "rollback", slot.live, slot.previous, now, reason, False, [], model_name)
    stage.write(updated)
    entry["record_uri"] = record(stage, entry)
    return entry


def _entry(
    stage: Stage,
    action: str,
    before: ModelPin,
    after: ModelPin,
    now: datetime,
    reason: str | None,
    forced: bool,
    results: list[GateResult],
    model_name: str = DEFAULT_MODEL,
) -> dict[str, Any]:
    return {
        "action": action,
        "stage": stage.name,
        "model": model_name,
        "at": format_timestamp(now),
        "who": who(stage),
        "from": asdict(before),
        "to": asdict(after),
        "forced": forced,
        "reason": reason,
        "gates": [asdict(r) for r in results],
    }


def serverless_deploy(stage: Stage, *, run: bool) -> list[str]:
    """AWS only: the deploy that applies the file (run, or just returned to print)."""
    command = ["npx", "serverless", "deploy", "--stage", stage.name]
    if run:
        subprocess.run(command, cwd=PROJECT_ROOT, check=True)
    return command


def default_stage(name: str | None, target: Any, deploy_dir: Path | None) -> Stage:
    """Local (an endpoint given or found): the demo's state dir; AWS: the project's deploy/.

    Without a name, the stage is the one whose results table the target reads (the running demo's).
    """
    name = name or StackNames.stage_of(target.results_table)
    if not name:
        raise ConfigurationError(
            f"cannot tell the stage of results table {target.results_table}; pass --stage"
        )
    local = bool(target.endpoint_url)
    if deploy_dir is None:
        from infra.local.running import default_cache_dir

        deploy_dir = default_cache_dir() / "demo" / "deploy" if local else PROJECT_ROOT / "deploy"
    return Stage(name=name, deploy_dir=Path(deploy_dir), target=target, local=local)


def now_utc() -> datetime:
    return datetime.now(UTC)
