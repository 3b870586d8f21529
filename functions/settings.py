"""The function's configuration, read once per container from the environment.

Variable names live in :mod:`functions.env`; this module only parses and validates them, so
that a missing or malformed setting fails at start-up with a message naming the variable,
never half-way through a batch of frames.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, overload

from functions import env
from functions.errors import ConfigurationError
from functions.named_models import NamedModel, parse_named_models
from functions.state.camera_health import OK, HealthConfig
from functions.state.smoothing import SmoothingConfig

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class Settings:
    model_uri: str  # local directory or s3://bucket/prefix/
    results_table: str
    frames_prefix: str = env.DEFAULT_FRAMES_PREFIX
    key_pattern: re.Pattern[str] = re.compile(env.DEFAULT_KEY_PATTERN)
    max_bytes: int = env.DEFAULT_MAX_BYTES
    max_pixels: int = env.DEFAULT_MAX_PIXELS
    capture_skew_seconds: int = env.DEFAULT_CAPTURE_SKEW_SECONDS
    max_decode_mib: int = env.DEFAULT_MAX_DECODE_MIB  # per frame (functions/frames/decode_cost.py)
    memory_mb: int | None = None  # the function's memory (Lambda sets it); None: unknown
    onnx_threads: int | None = None  # None: the CPUs this process may use
    # Off by default: each tag write is an S3 PUT ($5 per million frames, more than the compute);
    # the results table is the record. A deployment whose S3-side tools read labels turns it on.
    write_tags: bool = False
    model_cache_dir: str = env.DEFAULT_MODEL_CACHE_DIR
    # The pinned model (load_settings requires it); None only for apps built in process by tests
    # and tools that pass their own ModelSession.
    model_sha256: str | None = None
    review_table: str | None = None  # None: no review marking
    review_margin: float = env.DEFAULT_REVIEW_MARGIN
    review_per_hour: int = env.DEFAULT_REVIEW_PER_HOUR
    candidate_model_uri: str | None = None  # None: no shadow scoring
    candidate_model_sha256: str | None = None
    shadow_sample_rate: float = env.DEFAULT_SHADOW_SAMPLE_RATE
    state_table: str | None = None  # None: no camera state, no events
    event_bus: str | None = None  # None: event items only, nothing published
    smoothing: SmoothingConfig | None = None  # None: the built-in rule (functions/state/smoothing.py)
    named_models: tuple[NamedModel, ...] | None = None  # besides default (CAMSORT_NAMED_MODELS); None: none
    camera_config_ttl_seconds: int = env.DEFAULT_CAMERA_CONFIG_TTL_SECONDS

    @property
    def camera_config_bucket(self) -> str | None:
        """Where cameras/<camera_id>.json live: the model URI's bucket; None (a local model
        directory): no camera has regions."""
        return s3_bucket_of(self.model_uri)

    # Camera health (functions/state/camera_health.py), kept with the camera state.
    camera_health: bool = True
    health_dark_frames: int = env.DEFAULT_HEALTH_DARK_FRAMES
    health_covered_frames: int = env.DEFAULT_HEALTH_COVERED_FRAMES
    health_defocused_frames: int = env.DEFAULT_HEALTH_DEFOCUSED_FRAMES
    health_moved_frames: int = env.DEFAULT_HEALTH_MOVED_FRAMES
    health_recovered_frames: int = env.DEFAULT_HEALTH_RECOVERED_FRAMES
    health_warmup_frames: int = env.DEFAULT_HEALTH_WARMUP_FRAMES

    def health_config(self) -> HealthConfig | None:
        """The camera health's configuration; None: off."""
        if not self.camera_health:
            return None
        persistence = {
            "dark": self.health_dark_frames,
            "covered": self.health_covered_frames,
            "defocused": self.health_defocused_frames,
            "moved": self.health_moved_frames,
            OK: self.health_recovered_frames,
        }
        return HealthConfig(warmup=self.health_warmup_frames, persistence=persistence)


def load_settings(environ: Mapping[str, str] = os.environ) -> Settings:
    """Build :class:`Settings` from ``environ``; raises ``ConfigurationError`` naming the variable."""
    return Settings(
        model_uri=_required(environ, env.MODEL_URI),
        results_table=_required(environ, env.RESULTS_TABLE),
        frames_prefix=environ.get(env.FRAMES_PREFIX, env.DEFAULT_FRAMES_PREFIX),
        key_pattern=compile_key_pattern(
            environ.get(env.KEY_PATTERN, env.DEFAULT_KEY_PATTERN), env.KEY_PATTERN
        ),
        max_bytes=max_bytes_setting(environ),
        max_pixels=_positive_int(environ, env.MAX_PIXELS, env.DEFAULT_MAX_PIXELS),
        capture_skew_seconds=_non_negative_int(
            environ, env.CAPTURE_SKEW_SECONDS, env.DEFAULT_CAPTURE_SKEW_SECONDS
        ),
        max_decode_mib=_positive_int(environ, env.MAX_DECODE_MIB, env.DEFAULT_MAX_DECODE_MIB),
        memory_mb=_positive_int(environ, env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE, None),
        onnx_threads=_positive_int(environ, env.ONNX_THREADS, None),
        write_tags=_boolean(environ, env.WRITE_TAGS, False),
        model_cache_dir=environ.get(env.MODEL_CACHE_DIR, env.DEFAULT_MODEL_CACHE_DIR),
        model_sha256=_pin(environ),
        review_table=environ.get(env.REVIEW_TABLE, "").strip() or None,
        review_margin=_fraction(environ, env.REVIEW_MARGIN, env.DEFAULT_REVIEW_MARGIN),
        review_per_hour=_positive_int(environ, env.REVIEW_PER_HOUR, None) or env.DEFAULT_REVIEW_PER_HOUR,
        **_candidate(environ),
        state_table=environ.get(env.STATE_TABLE, "").strip() or None,
        event_bus=environ.get(env.EVENT_BUS, "").strip() or None,
        smoothing=SmoothingConfig.parse(environ[env.SMOOTHING], env.SMOOTHING)
        if environ.get(env.SMOOTHING, "").strip()
        else None,
        **_camera_health(environ),
        named_models=parse_named_models(environ.get(env.NAMED_MODELS, ""), env.NAMED_MODELS) or None,
        camera_config_ttl_seconds=_non_negative_int(
            environ, env.CAMERA_CONFIG_TTL_SECONDS, env.DEFAULT_CAMERA_CONFIG_TTL_SECONDS
        ),
    )


def s3_bucket_of(uri: str) -> str | None:
    """The bucket of an ``s3://bucket/...`` URI; None for anything else (a local directory)."""
    uri = uri.strip()
    if not uri.startswith("s3://"):
        return None
    return uri[len("s3://") :].partition("/")[0] or None


def _camera_health(environ: Mapping[str, str]) -> dict[str, Any]:
    """Health on unless turned off; each condition's persistence from its variable."""
    frames = {
        "health_dark_frames": (env.HEALTH_DARK_FRAMES, env.DEFAULT_HEALTH_DARK_FRAMES),
        "health_covered_frames": (env.HEALTH_COVERED_FRAMES, env.DEFAULT_HEALTH_COVERED_FRAMES),
        "health_defocused_frames": (env.HEALTH_DEFOCUSED_FRAMES, env.DEFAULT_HEALTH_DEFOCUSED_FRAMES),
        "health_moved_frames": (env.HEALTH_MOVED_FRAMES, env.DEFAULT_HEALTH_MOVED_FRAMES),
        "health_recovered_frames": (env.HEALTH_RECOVERED_FRAMES, env.DEFAULT_HEALTH_RECOVERED_FRAMES),
        "health_warmup_frames": (env.HEALTH_WARMUP_FRAMES, env.DEFAULT_HEALTH_WARMUP_FRAMES),
    }
    return {"camera_health": _boolean(environ, env.CAMERA_HEALTH, True)} | {
        field_name: _positive_int(environ, name, default) for field_name, (name, default) in frames.items()
    }


def _pin(environ: Mapping[str, str]) -> str:
    """The live model's pin: required, so that a missing or empty value never turns pinning off."""
    pin = _sha256(environ, env.MODEL_SHA256)
    if pin is None:
        raise ConfigurationError(
            f"environment variable {env.MODEL_SHA256} is empty or not set; the function runs only a pinned "
            "model: deploy with --param=modelSha256=<sha256> (printed by `camsort upload-model`) or the "
            "stage's deploy/<stage>.json"
        )
    return pin


def max_bytes_setting(environ: Mapping[str, str] = os.environ) -> int:
    """The configured byte limit alone (CAMSORT_MAX_BYTES), e.g. for an upload policy's size range."""
    return _positive_int(environ, env.MAX_BYTES, env.DEFAULT_MAX_BYTES)


def _candidate(environ: Mapping[str, str]) -> dict[str, Any]:
    """The shadow candidate: a URI needs its pinned sha256 (a candidate is never run unpinned)."""
    uri = environ.get(env.CANDIDATE_MODEL_URI, "").strip() or None
    sha256 = _sha256(environ, env.CANDIDATE_MODEL_SHA256)
    if uri and not sha256:
        raise ConfigurationError(
            f"environment variable {env.CANDIDATE_MODEL_URI} is set but {env.CANDIDATE_MODEL_SHA256} is not; "
            "pin the candidate's model.onnx sha256 (its manifest's model_sha256)"
        )
    return {
        "candidate_model_uri": uri,
        "candidate_model_sha256": sha256,
        "shadow_sample_rate": _fraction(environ, env.SHADOW_SAMPLE_RATE, env.DEFAULT_SHADOW_SAMPLE_RATE),
    }


def _fraction(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {name}={raw!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise ConfigurationError(f"environment variable {name}={raw!r} must be between 0 and 1")
    return value


def compile_key_pattern(pattern: str, source: str = "key pattern") -> re.Pattern[str]:
    """Compile the camera key regex; it must define the named group ``camera``."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigurationError(f"{source}: {pattern!r} is not a valid regular expression ({exc})") from exc
    if "camera" not in compiled.groupindex:
        raise ConfigurationError(
            f"{source}: {pattern!r} has no named group 'camera'; write it like (?P<camera>[^/]+)"
        )
    return compiled


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(
            f"environment variable {name} is not set; set it (see docs/reference/configuration.md)"
        )
    return value


@overload
def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int: ...
@overload
def _positive_int(environ: Mapping[str, str], name: str, default: None) -> int | None: ...
def _positive_int(environ: Mapping[str, str], name: str, default: int | None) -> int | None:
    return _whole_number(environ, name, default, minimum=1, rule="must be a positive integer")


def _non_negative_int(environ: Mapping[str, str], name: str, default: int) -> int:
    return _whole_number(environ, name, default, minimum=0, rule="must be 0 or more")


@overload
def _whole_number(environ: Mapping[str, str], name: str, default: int, *, minimum: int, rule: str) -> int: ...
@overload
def _whole_number(
    environ: Mapping[str, str], name: str, default: None, *, minimum: int, rule: str
) -> int | None: ...
def _whole_number(
    environ: Mapping[str, str], name: str, default: int | None, *, minimum: int, rule: str
) -> int | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ConfigurationError(f"environment variable {name}={raw!r} {rule}")
    return value


def _sha256(environ: Mapping[str, str], name: str) -> str | None:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return None
    if not re.fullmatch(r"[0-9a-f]{64}", raw):
        raise ConfigurationError(
            f"environment variable {name}={raw!r} is not a sha256 (64 hex digits); "
            "use the value `camsort upload-model` printed"
        )
    return raw


def _boolean(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigurationError(f"environment variable {name}={raw!r} must be true or false")


@dataclass(frozen=True)
class AuditSettings:
    """The scheduled audit function's configuration (functions/audit_handler.py)."""

    frames_bucket: str
    results_table: str
    dead_letter_queue_url: str
    frames_prefix: str = env.DEFAULT_FRAMES_PREFIX
    audit_window_minutes: int = env.DEFAULT_AUDIT_WINDOW_MINUTES
    audit_grace_minutes: int = env.DEFAULT_AUDIT_GRACE_MINUTES
    audit_listing: str = env.DEFAULT_AUDIT_LISTING
    state_table: str | None = None  # None: no camera outboxes to flush
    event_bus: str | None = None


def load_audit_settings(environ: Mapping[str, str] = os.environ) -> AuditSettings:
    listing = environ.get(env.AUDIT_LISTING, "").strip() or env.DEFAULT_AUDIT_LISTING
    if listing not in ("full", "time-named"):
        raise ConfigurationError(
            f"environment variable {env.AUDIT_LISTING}={listing!r} must be full or time-named"
        )
    settings = AuditSettings(
        frames_bucket=_required(environ, env.FRAMES_BUCKET),
        results_table=_required(environ, env.RESULTS_TABLE),
        dead_letter_queue_url=_required(environ, env.DEAD_LETTER_QUEUE_URL),
        frames_prefix=environ.get(env.FRAMES_PREFIX, env.DEFAULT_FRAMES_PREFIX),
        audit_window_minutes=_positive_int(
            environ, env.AUDIT_WINDOW_MINUTES, env.DEFAULT_AUDIT_WINDOW_MINUTES
        ),
        audit_grace_minutes=_positive_int(environ, env.AUDIT_GRACE_MINUTES, env.DEFAULT_AUDIT_GRACE_MINUTES),
        audit_listing=listing,
        state_table=environ.get(env.STATE_TABLE, "").strip() or None,
        event_bus=environ.get(env.EVENT_BUS, "").strip() or None,
    )
    if settings.audit_grace_minutes >= settings.audit_window_minutes:
        raise ConfigurationError(
            f"{env.AUDIT_GRACE_MINUTES}={settings.audit_grace_minutes} must be below "
            f"{env.AUDIT_WINDOW_MINUTES}={settings.audit_window_minutes}, or nothing is ever old enough to audit"
        )
    return settings
