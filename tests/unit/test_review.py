"""Which frames go to review: unknown, or within the margin of the label's threshold."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from functions import env
from functions.errors import ConfigurationError
from functions.frames.decision import Decision
from functions.frames.review import NEAR_THRESHOLD_REASON, UNKNOWN_REASON, quota_window, review_reason
from functions.settings import load_settings

THRESHOLDS = {"bus": 0.5, "car": 0.8}
REQUIRED = {env.MODEL_URI: "s3://m/", env.RESULTS_TABLE: "t", env.MODEL_SHA256: "e" * 64}


def decision(label: str, top: str, confidence: float) -> Decision:
    return Decision(label=label, confidence=confidence, top_label=top, probabilities={})


@pytest.mark.parametrize(
    ("label", "top", "confidence", "expected"),
    [
        ("unknown", "bus", 0.34, UNKNOWN_REASON),
        ("unknown", "car", 0.79, UNKNOWN_REASON),
        ("bus", "bus", 0.54, NEAR_THRESHOLD_REASON),
        ("bus", "bus", 0.5, NEAR_THRESHOLD_REASON),
        ("bus", "bus", 0.56, None),
        ("car", "car", 0.84, NEAR_THRESHOLD_REASON),  # the label's own threshold, not 0.5
        ("car", "car", 0.86, None),
        ("bus", "bus", 0.99, None),
    ],
)
def test_review_reason(label, top, confidence, expected):
    assert review_reason(decision(label, top, confidence), THRESHOLDS, margin=0.05) == expected


def test_zero_margin_reviews_only_unknown():
    assert review_reason(decision("bus", "bus", 0.51), THRESHOLDS, margin=0.0) is None
    assert review_reason(decision("unknown", "bus", 0.49), THRESHOLDS, margin=0.0) == UNKNOWN_REASON


def test_quota_window_is_the_utc_hour():
    assert quota_window(datetime(2026, 11, 22, 7, 59, 59, tzinfo=UTC)) == "2026-11-22T07"
    assert quota_window(datetime(2026, 11, 22, 8, 0, tzinfo=UTC)) == "2026-11-22T08"


def test_review_settings_defaults_and_parsing():
    settings = load_settings(REQUIRED)
    assert (settings.review_table, settings.review_margin, settings.review_per_hour) == (None, 0.05, 20)
    settings = load_settings(
        REQUIRED | {env.REVIEW_TABLE: "rv", env.REVIEW_MARGIN: "0.1", env.REVIEW_PER_HOUR: "3"}
    )
    assert (settings.review_table, settings.review_margin, settings.review_per_hour) == ("rv", 0.1, 3)


@pytest.mark.parametrize(
    ("name", "raw"), [(env.REVIEW_MARGIN, "x"), (env.REVIEW_MARGIN, "1.5"), (env.REVIEW_PER_HOUR, "0")]
)
def test_bad_review_settings_name_the_variable(name, raw):
    with pytest.raises(ConfigurationError, match=name):
        load_settings(REQUIRED | {name: raw})


def test_candidate_settings_need_a_pin():
    assert load_settings(REQUIRED).candidate_model_uri is None
    with pytest.raises(ConfigurationError, match=env.CANDIDATE_MODEL_SHA256):
        load_settings(REQUIRED | {env.CANDIDATE_MODEL_URI: "s3://b/models/v2/"})
    with pytest.raises(ConfigurationError, match="64 hex"):
        load_settings(
            REQUIRED | {env.CANDIDATE_MODEL_URI: "s3://b/models/v2/", env.CANDIDATE_MODEL_SHA256: "abc"}
        )
    settings = load_settings(
        REQUIRED
        | {
            env.CANDIDATE_MODEL_URI: "s3://b/models/v2/",
            env.CANDIDATE_MODEL_SHA256: "A" * 64,
            env.SHADOW_SAMPLE_RATE: "0.5",
        }
    )
    assert (settings.candidate_model_sha256, settings.shadow_sample_rate) == ("a" * 64, 0.5)
