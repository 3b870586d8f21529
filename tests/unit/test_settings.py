"""Settings from the environment: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import pytest

from functions import env
from functions.errors import ConfigurationError
from functions.settings import Settings, compile_key_pattern, load_settings

PIN = "f" * 64
REQUIRED = {
    env.MODEL_URI: "s3://models/camsort/",
    env.RESULTS_TABLE: "camsort-results-dev",
    env.MODEL_SHA256: PIN,
}


def test_unset_or_blank_optional_variables_take_the_defaults():
    # The default values themselves are checked against docs/reference/configuration.md by tests/unit/test_docs.py.
    defaults = load_settings(REQUIRED)
    assert defaults == Settings(
        model_uri="s3://models/camsort/", results_table="camsort-results-dev", model_sha256=PIN
    )
    blank = {name: "  " for name in (env.MAX_BYTES, env.MAX_PIXELS, env.ONNX_THREADS, env.WRITE_TAGS)}
    assert load_settings({**REQUIRED, **blank}) == defaults


def test_object_tags_are_off_unless_the_deployment_turns_them_on():
    # The function's default, serverless.yml's default parameter and so the local system's
    # worker (infra/local/function_env.py sets no CAMSORT_WRITE_TAGS) all leave tags off.
    import yaml

    from infra import PROJECT_ROOT

    assert load_settings(REQUIRED).write_tags is False
    params = yaml.safe_load((PROJECT_ROOT / "serverless.yml").read_text())["params"]
    stages = {stage: {**params["default"], **overrides} for stage, overrides in params.items()}
    assert {stage: values["writeTags"] for stage, values in stages.items()} == dict.fromkeys(stages, "false")
    assert load_settings({**REQUIRED, env.WRITE_TAGS: params["default"]["writeTags"]}).write_tags is False


def test_the_default_key_pattern_reads_the_documented_key_layout():
    from functions.frames.keys import parse_key

    settings = load_settings(REQUIRED)
    info = parse_key(
        "frames/cam-01/20261122T073900123Z.jpg", prefix=settings.frames_prefix, pattern=settings.key_pattern
    )
    assert info.camera_id == "cam-01"
    assert info.captured_at is not None and info.captured_at.isoformat() == "2026-11-22T07:39:00.123000+00:00"


def test_every_variable_is_read():
    settings = load_settings(
        {
            **REQUIRED,
            env.FRAMES_PREFIX: "cams/",
            env.KEY_PATTERN: r"^(?P<camera>\w+)/(?P<captured>\d+)\.jpg$",
            env.MAX_BYTES: "1000",
            env.MAX_PIXELS: "2000",
            env.ONNX_THREADS: "3",
            env.WRITE_TAGS: "true",
            env.MODEL_CACHE_DIR: "/tmp/elsewhere",
            env.MODEL_SHA256: "AB" * 32,
        }
    )
    assert settings.model_sha256 == "ab" * 32  # normalised to lower case
    assert (settings.frames_prefix, settings.max_bytes, settings.max_pixels) == ("cams/", 1000, 2000)
    assert (settings.onnx_threads, settings.write_tags, settings.model_cache_dir) == (
        3,
        True,
        "/tmp/elsewhere",
    )
    assert settings.key_pattern.groupindex.keys() == {"camera", "captured"}


@pytest.mark.parametrize("missing", [env.MODEL_URI, env.RESULTS_TABLE])
def test_missing_required_variable_is_named(missing):
    environ = {name: value for name, value in REQUIRED.items() if name != missing}
    with pytest.raises(ConfigurationError, match=missing):
        load_settings(environ)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (env.MAX_BYTES, "ten"),
        (env.MAX_BYTES, "0"),
        (env.MAX_PIXELS, "-5"),
        (env.ONNX_THREADS, "1.5"),
        (env.WRITE_TAGS, "maybe"),
        (env.MODEL_SHA256, "abc"),
        (env.MODEL_SHA256, "g" * 64),
        (env.KEY_PATTERN, "(unclosed"),
        (env.KEY_PATTERN, r"^(?P<cam>[^/]+)/.*$"),
    ],
)
def test_malformed_values_are_refused_with_the_variable_name(name, value):
    with pytest.raises(ConfigurationError, match=name):
        load_settings({**REQUIRED, name: value})


def test_key_pattern_needs_a_camera_group():
    with pytest.raises(ConfigurationError, match="camera"):
        compile_key_pattern(r"^(?P<name>.+)$")
